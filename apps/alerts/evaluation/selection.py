"""Which series a rule watches: ``metric`` + ``label_matchers`` (the query API's syntax, parsed by
``apps.metrics.read.select.parse_matchers``) narrowed by host environment, tags and names.

The tick evaluates thousands of rules per chunk, and one selection statement per rule would not fit
its budget, so the series of each (organization, metric) are loaded once per chunk (with their host's
name, environment, tags and active flag: one indexed statement on ``metrics_series_org_name``) and:

* equality matchers (``=``, ``!=``) are applied here through an inverted index. This is exactly the
  read side's meaning (``select.matcher_q``): label values are strings, so ``labels @> {"k": "v"}`` is
  ``labels.get("k") == "v"``, and ``k=""`` means "no label k";
* a rule with any regex matcher (``=~``, ``!~``) is selected by PostgreSQL through
  ``select.select_series_ids`` -- regexes keep PostgreSQL's semantics and there is no second regex
  engine or matcher parser here;
* host filters compare the host columns loaded with the series (environment equality, every tag
  key/value present, name in the list)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import connection

from apps.alerts.models import AlertRule
from apps.metrics.read.select import Matcher, parse_matchers, select_series_ids


@dataclass(frozen=True, slots=True)
class SeriesInfo:
    """A selected series: its id, labels for the outcome (the host's name added as ``host`` when the
    series names its host through another label) and host id."""

    id: int
    labels: dict[str, str]
    host_id: int | None
    host_active: bool = True


@dataclass
class MetricSeries:
    """Every series of one (organization, metric) with its host columns and an index label -> value -> ids."""

    rows: dict[int, tuple[SeriesInfo, str | None, str, dict[str, str]]] = field(default_factory=dict)
    index: dict[str, dict[str, set[int]]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(set)))

    def add(self, sid: int, labels: dict[str, str], host_id: int | None, host_name: str | None,
            environment: str | None, tags: dict[str, str] | None, active: bool | None) -> None:
        shown = dict(labels)
        if host_name and "host" not in shown:
            shown["host"] = host_name
        info = SeriesInfo(sid, shown, host_id, active is not False)
        self.rows[sid] = (info, host_name, environment or "", tags or {})
        for key, value in labels.items():
            self.index[key][value].add(sid)


def load_metric_series(org_id: int, metric: str) -> MetricSeries:
    """One statement: the organization's series of ``metric`` joined to their hosts."""
    loaded = MetricSeries()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT s.id, s.labels, s.host_id, h.name, h.environment, h.tags, h.is_active "
            "FROM metrics_series AS s LEFT JOIN hosts_host AS h ON h.id = s.host_id "
            "WHERE s.organization_id = %s AND s.name = %s", [org_id, metric])
        for sid, labels, host_id, name, env, tags, active in cursor.fetchall():
            loaded.add(sid, _json(labels), host_id, name, env, _json(tags) if tags is not None else None, active)
    return loaded


def _json(value: Any) -> Any:
    if isinstance(value, str):
        return json.loads(value)
    return value


def matchers_of(rule: AlertRule) -> list[Matcher]:
    """The rule's parsed label matchers (QueryError naming ``label_matchers`` when they do not parse)."""
    return parse_matchers(rule.label_matchers, "label_matchers") if rule.label_matchers.strip() else []


def _equality_ids(loaded: MetricSeries, metric: str, matchers: list[Matcher]) -> Iterable[int]:
    positive = [m for m in matchers if m.op == "=" and m.value != "" and m.label != "__name__"]
    if positive:
        sets = [loaded.index.get(m.label, {}).get(m.value, set()) for m in positive]
        candidates: Iterable[int] = set.intersection(*sets) if sets else set()
    else:
        candidates = loaded.rows.keys()
    rest = [m for m in matchers if m not in positive]
    if not rest:
        return candidates
    return [sid for sid in candidates if all(_equal_holds(loaded.rows[sid][0], metric, m, loaded) for m in rest)]


def _equal_holds(info: SeriesInfo, metric: str, matcher: Matcher, loaded: MetricSeries) -> bool:
    if matcher.label == "__name__":
        found = matcher.value == metric
    elif matcher.value == "":
        found = info.id not in _ids_with_label(loaded, matcher.label)
    else:
        found = info.id in loaded.index.get(matcher.label, {}).get(matcher.value, ())
    return found if matcher.op == "=" else not found


def _ids_with_label(loaded: MetricSeries, label: str) -> set[int]:
    return set().union(*loaded.index.get(label, {}).values())


def host_filters_pass(rule: AlertRule, host_name: str | None, environment: str, tags: dict[str, str]) -> bool:
    """The rule's host narrowing; a rule with any host filter never selects host-less series."""
    if not (rule.host_environment or rule.host_tags or rule.host_names):
        return True
    if host_name is None:
        return False
    if rule.host_environment and environment != rule.host_environment:
        return False
    if rule.host_tags and any(tags.get(k) != v for k, v in rule.host_tags.items()):
        return False
    return not rule.host_names or host_name in rule.host_names


def needs_sql(rule: AlertRule) -> bool:
    """Does selecting the rule's series take a statement (regex matchers) rather than the loaded index?"""
    return "~" in rule.label_matchers and any(m.op in ("=~", "!~") for m in matchers_of(rule))


def select(rule: AlertRule, loaded: MetricSeries) -> list[SeriesInfo]:
    """The series ``rule`` watches among ``loaded`` (the series of its organization and metric), by id."""
    matchers = matchers_of(rule)
    if any(m.op in ("=~", "!~") for m in matchers):
        ids: Iterable[int] = select_series_ids(rule.organization, name=rule.metric, labels=rule.label_matchers,
                                               limit=None)
    else:
        ids = _equality_ids(loaded, rule.metric, matchers)
    chosen = []
    for sid in ids:
        row = loaded.rows.get(sid)
        if row is not None and host_filters_pass(rule, row[1], row[2], row[3]):
            chosen.append(row[0])
    chosen.sort(key=lambda info: info.id)
    return chosen
