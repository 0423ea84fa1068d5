"""Building metric queries: parameter parsing, series selection (name, host, label matchers) and the
per-process series catalogue. Which tier answers, and the point retrieval from it, live in
``apps/metrics/rollups/read.py``.

Label matchers follow PromQL: ``name="v"``, ``name!="v"``, ``name=~"re"``, ``name!~"re"``; regexes are
fully anchored, a missing label counts as the empty string (so ``x=""`` matches series without ``x``),
and ``__name__`` addresses the metric name. Backslashes that are not escapes (``"10\\..*"`` and
``"10\\\\..*"`` alike) reach the regex unchanged, as users type them.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import Q, QuerySet, TextField, Value
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Coalesce

from apps.metrics.ingest.native_json import parse_timestamp

DEFAULT_RANGE = dt.timedelta(hours=1)

_MATCHER_RE = re.compile(
    r"""\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)\s*(?:,|$)""",
    re.DOTALL,
)
_SELECTOR_RE = re.compile(r"\s*([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*(?:\{(.*)\})?\s*", re.DOTALL)


class QueryError(ValueError):
    """A bad query parameter; the view answers 400 naming ``parameter`` (plus ``extra`` fields that tell
    the client what would be accepted)."""

    extra: dict[str, Any] = {}

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter
        self.message = message


@dataclass(frozen=True, slots=True)
class Matcher:
    label: str
    op: str
    value: str


def _unquote(token: str) -> str:
    if token[0] == "`":
        return token[1:-1]
    quote = token[0]
    inner = token[1:-1]
    return re.sub(r"\\(.)", lambda m: m.group(1) if m.group(1) in (quote, "\\") else m.group(0), inner)


def parse_matchers(text: str, parameter: str = "labels") -> list[Matcher]:
    """``job="node",instance=~"10\\..*"`` (braces optional) -> matchers; QueryError names the problem."""
    text = text.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    matchers: list[Matcher] = []
    pos = 0
    while pos < len(text):
        if not text[pos:].strip():
            break
        match = _MATCHER_RE.match(text, pos)
        if match is None:
            raise QueryError(parameter, f"cannot parse label matcher at {text[pos:pos + 40]!r}: expected "
                                        'label="value" with one of =, !=, =~, !~')
        label, op, raw = match.groups()
        value = _unquote(raw)
        if op in ("=~", "!~"):
            try:
                re.compile(value)
            except re.error as exc:
                raise QueryError(parameter, f"invalid regular expression for {label}: {exc}") from None
        matchers.append(Matcher(label, op, value))
        pos = match.end()
    return matchers


def parse_selector(text: str, parameter: str = "match[]") -> list[Matcher]:
    """``metric{a="b"}``, ``metric`` or ``{a="b"}`` -> matchers (the name as a ``__name__`` matcher)."""
    match = _SELECTOR_RE.fullmatch(text)
    if match is None or not (match.group(1) or match.group(2) is not None):
        raise QueryError(parameter, f"cannot parse series selector {text[:80]!r}: expected name{{label=\"value\"}}")
    matchers = [Matcher("__name__", "=", match.group(1))] if match.group(1) else []
    return matchers + parse_matchers(match.group(2) or "", parameter)


def apply_matchers(queryset: QuerySet, matchers: list[Matcher], prefix: str = "m") -> QuerySet:
    """Filter a Series queryset; equality uses ``labels @> ...`` (GIN index), regexes the ``->>`` text."""
    for index, matcher in enumerate(matchers):
        if matcher.op in ("=", "!="):
            queryset = queryset.filter(matcher_q(matcher))
        else:
            queryset = _regex_filter(queryset, matcher, f"_{prefix}{index}")
    return queryset


def matcher_q(matcher: Matcher) -> Q:
    if matcher.label == "__name__":
        q = Q(name=matcher.value)
    elif matcher.value == "":
        q = ~Q(labels__has_key=matcher.label)
    else:
        q = Q(labels__contains={matcher.label: matcher.value})
    return ~q if matcher.op == "!=" else q


def _regex_filter(queryset: QuerySet, matcher: Matcher, alias: str) -> QuerySet:
    pattern = f"^(?:{matcher.value})$"
    if matcher.label == "__name__":
        q = Q(name__regex=pattern)
        return queryset.filter(q) if matcher.op == "=~" else queryset.exclude(q)
    queryset = queryset.annotate(**{alias: Coalesce(KeyTextTransform(matcher.label, "labels"), Value(""),
                                                    output_field=TextField())})
    q = Q(**{f"{alias}__regex": pattern})
    return queryset.filter(q) if matcher.op == "=~" else queryset.exclude(q)


def select_series(queryset: QuerySet, *, organization: Any, name: str | None = None, host: str | None = None,
                  labels: str | None = None, selectors: list[str] | None = None) -> QuerySet:
    """Apply the read API's series filters (all ANDed; several ``match[]`` selectors are ORed) to the
    organization's series. Every statement on metrics_series, the selectors' subqueries included, is
    filtered by organization_id: the answer is right either way (the outer query is scoped), but an
    unscoped subquery would scan and lock-step with every tenant's series (and a later edit that drops
    the outer filter would leak them)."""
    texts = [("name", name), ("host", host), ("labels", labels), *(("match[]", t) for t in selectors or ())]
    for parameter, text in texts:
        refuse_nul(text, parameter)
    queryset = queryset.filter(organization=organization)
    if name:
        queryset = queryset.filter(name=name)
    if host:
        queryset = queryset.filter(host__name=host)
    if labels:
        queryset = apply_matchers(queryset, parse_matchers(labels, "labels"), "l")
    if selectors:
        any_of = Q()
        for position, text in enumerate(selectors):
            part = apply_matchers(queryset.model.objects.filter(organization=organization), parse_selector(text),
                                  f"s{position}_")
            any_of |= Q(id__in=part.values("id"))
        queryset = queryset.filter(any_of)
    return queryset


def refuse_nul(text: str | None, parameter: str) -> None:
    """PostgreSQL text cannot hold NUL, so no stored name, host or label has one; a statement that sends
    one fails (as a DataError that used to be answered as a bad `labels` matcher, SQL included)."""
    if text and "\x00" in text:
        raise QueryError(parameter, f"{parameter} contains the NUL character (U+0000), which no metric name, "
                                    "host or label can contain")


#: Epoch seconds of 9999-12-31T23:59:59Z + 1 s, the end of the range ``parse_time`` accepts: no step can be
#: longer than that range (and PostgreSQL's interval cannot hold much longer ones).
MAX_EPOCH_SECONDS = 253402300800


def parse_time(value: str | None, parameter: str, default: dt.datetime) -> dt.datetime:
    """Epoch seconds (``1700000000``, ``1700000000.5``) or RFC 3339 (``2026-11-21T10:00:00Z``)."""
    if value is None or value == "":
        return default
    try:
        seconds = float(value)
    except ValueError:
        try:
            t_us = parse_timestamp(value)
        except ValueError as exc:
            raise QueryError(parameter, f"{parameter} must be epoch seconds or RFC 3339: {exc}") from None
        return dt.datetime.fromtimestamp(t_us / 1_000_000, tz=dt.UTC)
    if not math.isfinite(seconds) or not 0 <= seconds < MAX_EPOCH_SECONDS:
        raise QueryError(parameter, f"{parameter} must be epoch seconds between 1970 and 9999, not {value!r}")
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)


def parse_step(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        step = float(value.rstrip("s"))
    except ValueError:
        raise QueryError("step", f"step must be a number of seconds, not {value!r}") from None
    if not math.isfinite(step) or step < 1 or step != int(step):
        raise QueryError("step", "step must be a whole number of seconds, at least 1")
    if step > MAX_EPOCH_SECONDS:
        raise QueryError("step", f"step must be at most {MAX_EPOCH_SECONDS} s (1970 to 9999), not {value[:40]!r}")
    return int(step)


class SeriesCatalogue:
    """Per-process cache of how the read API renders a series: ``{"id":…,"name":…,"labels":…,"host":…``
    as JSON text, by series id, per organization.

    Matching stays in PostgreSQL (one indexed statement returning ids, so matcher semantics are
    PostgreSQL's everywhere); only the rows' text is cached. A series' organization, name and labels
    never change and its id is never reused within one database (the ingest caches rely on the same),
    so an id missing from the cache is simply a new series: its rows are fetched, nothing is invalidated.
    What can change -- the host's name, the unit -- is refreshed after ``ttl`` seconds. Keys carry the
    database identity and the organization's public_id (``apps.hosts.cache_scope.org_scope``), so a
    re-created database or organization never reads another's rows."""

    def __init__(self, ttl: float = 60.0, max_entries: int = 200_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._orgs: dict[str, tuple[float, dict[int, CatalogueEntry]]] = {}
        self._size = 0
        self._lock = threading.Lock()

    def entries(self, organization: Any, series_ids: list[int]) -> list[CatalogueEntry]:
        """The entries of ``series_ids`` (all of the organization's), in the order given."""
        from apps.hosts.cache_scope import org_scope

        scope = org_scope(organization)
        now = time.monotonic()
        found = self._orgs.get(scope)
        if found is None or found[0] <= now:
            found = (now + self.ttl, {})
        cached = found[1]
        missing = [sid for sid in series_ids if sid not in cached]
        if missing:
            fetched = _catalogue_rows(organization.pk, missing)
            with self._lock:
                if self._size + len(fetched) > self.max_entries:
                    self._orgs.clear()
                    self._size = 0
                cached = {**cached, **fetched}
                self._size += len(fetched)
                self._orgs[scope] = (found[0], cached)
        elif scope not in self._orgs:
            self._orgs[scope] = found
        return [cached[sid] for sid in series_ids if sid in cached]

    def clear(self) -> None:
        with self._lock:
            self._orgs.clear()
            self._size = 0


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    """One series as the read API shows it; ``head`` is ``{"id":…,"name":…,"labels":…,"host":…`` (open)."""

    id: int
    name: str
    host: str | None
    unit: str
    head: str


def _catalogue_rows(org_id: int, series_ids: list[int]) -> dict[int, CatalogueEntry]:
    sql = """SELECT s.id, s.public_id::text, s.name, s.labels::text, h.name, s.unit
        FROM metrics_series AS s LEFT JOIN hosts_host AS h ON h.id = s.host_id
        WHERE s.organization_id = %s AND s.id = ANY(%s)"""
    with connection.cursor() as cursor:
        cursor.execute(sql, [org_id, series_ids])
        rows = cursor.fetchall()
    dumps = json.dumps
    return {
        sid: CatalogueEntry(sid, name, host, unit, f'{{"id":"{public_id}","name":{dumps(name, ensure_ascii=False)},'
                                                   f'"labels":{labels},"host":{dumps(host, ensure_ascii=False)}')
        for sid, public_id, name, labels, host, unit in rows
    }


CATALOGUE = SeriesCatalogue()


def select_series_ids(organization: Any, *, name: str | None = None, host: str | None = None,
                      labels: str | None = None, selectors: list[str] | None = None, limit: int) -> list[int]:
    """Ids of the organization's series matching the read API's filters (``select_series``), ordered by name
    then id, at most ``limit``. The SQL Django compiles depends only on these arguments, so it is compiled
    once per distinct filter and kept (compiling cost more than running it for a one-host query)."""
    key = (organization.pk, name, host, labels, tuple(selectors or ()), limit)
    compiled = _COMPILED.get(key)
    if compiled is None:
        from apps.metrics.models import Series

        selected = select_series(Series.objects.all(), organization=organization, name=name, host=host,
                                 labels=labels, selectors=selectors)
        compiled = selected.order_by("name", "id").values_list("id", flat=True)[:limit].query.sql_with_params()
        if len(_COMPILED) >= _COMPILED_MAX:
            _COMPILED.clear()
        _COMPILED[key] = compiled
    with connection.cursor() as cursor:
        cursor.execute(*compiled)
        return [row[0] for row in cursor.fetchall()]


_COMPILED: dict[tuple, tuple[str, tuple]] = {}
_COMPILED_MAX = 512
