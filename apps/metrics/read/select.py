"""Series selection: label matchers, the read API's filters and the capped id lookup every window
starts from.

Label matchers follow PromQL: ``name="v"``, ``name!="v"``, ``name=~"re"``, ``name!~"re"``; regexes are
fully anchored, and checked here by RE2 (``apps.core.user_regex``: Prometheus's syntax, and the engine
silences match with) before PostgreSQL's ``~`` runs them. A missing label counts as the empty string (so
``x=""`` matches series without ``x``), and ``__name__`` addresses the metric name. Backslashes that are
not escapes (``"10\\..*"`` and ``"10\\\\..*"`` alike) reach the regex unchanged, as users type them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Q, QuerySet, TextField, Value
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Coalesce

from apps.core.user_regex import UserRegexError, compile_user_regex
from apps.metrics.read.params import QueryError

_MATCHER_RE = re.compile(
    r"""\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)\s*(?:,|$)""",
    re.DOTALL,
)
_SELECTOR_RE = re.compile(r"\s*([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*(?:\{(.*)\})?\s*", re.DOTALL)


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
                compile_user_regex(value)
            except UserRegexError as exc:
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


@dataclass(frozen=True, slots=True)
class Selector:
    """Which series a window reads: the read API's filters (all ANDed; several ``match`` selectors are
    ORed), or explicit ``ids`` (for callers that picked series themselves; re-checked against the
    organization, so an id of another tenant reads nothing)."""

    name: str | None = None
    host: str | None = None
    labels: str | None = None
    match: tuple[str, ...] = ()
    ids: tuple[int, ...] | None = None


def max_series_per_query() -> int:
    return int(getattr(settings, "FIBERSTACK_QUERY_MAX_SERIES", 1000))


def select_ids(organization: Any, selector: Selector, *, max_series: int | None) -> list[int]:
    """The organization's series ``selector`` names, ordered by name then id; more than ``max_series``
    (None: no cap) is a QueryError naming ``name``, so a query never silently drops series."""
    if selector.ids is not None:
        from apps.metrics.models import Series

        mine = set(Series.objects.filter(organization=organization, id__in=selector.ids).values_list("id", flat=True))
        ids = [sid for sid in dict.fromkeys(selector.ids) if sid in mine]
    else:
        ids = select_series_ids(organization, name=selector.name, host=selector.host, labels=selector.labels,
                                selectors=list(selector.match),
                                limit=None if max_series is None else max_series + 1)
    if max_series is not None and len(ids) > max_series:
        raise QueryError("name", f"more than {max_series} series match: narrow the query with name, host or labels")
    return ids


def select_series_ids(organization: Any, *, name: str | None = None, host: str | None = None,
                      labels: str | None = None, selectors: list[str] | None = None,
                      limit: int | None) -> list[int]:
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
