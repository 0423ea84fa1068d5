"""evaluate_rule: reducers through the metrics read side, comparators and severities, rate across a
counter reset, host filters and label matchers, absence per series and per host, anomaly baselines.
Every test writes real samples to PostgreSQL and checks the Outcomes directly (no lifecycle)."""

from __future__ import annotations

import datetime as dt
import statistics
from typing import Any

import pytest
from django.utils import timezone

from apps.alerts.evaluation import heartbeats
from apps.alerts.evaluation.engine import RuleError, evaluate_rule, evaluate_rules
from apps.alerts.evaluation.reducers import counter_rate, severity_for
from apps.core import redis
from apps.metrics import hot
from apps.metrics.read import QueryError
from tests.alerts.factories import AlertRuleFactory
from tests.alerts.factories_evaluation import series_with
from tests.hosts.factories import HostFactory

pytestmark = pytest.mark.django_db

VALUES = [10.0, 20.0, 30.0, 40.0, 100.0]  # oldest first, 10 s apart, the newest 5 s before AT


@pytest.fixture
def at() -> dt.datetime:
    return timezone.now().replace(microsecond=0) - dt.timedelta(minutes=5)


@pytest.fixture
def cpu(org: Any, at: dt.datetime) -> Any:
    samples = [(45 - 10 * i, v) for i, v in enumerate(VALUES)]
    return series_with(org, "cpu", {"host": "web-1", "cpu": "total"}, at, samples)


def one(rule: Any, at: dt.datetime) -> Any:
    evaluation = evaluate_rule(rule, at)
    assert evaluation.complete
    [outcome] = evaluation.outcomes
    return outcome


@pytest.mark.parametrize(("reducer", "expected"), [
    ("avg", statistics.fmean(VALUES)), ("min", 10.0), ("max", 100.0), ("last", 100.0), ("sum", 200.0),
    ("count", 5.0), ("p50", 30.0), ("p95", 100.0), ("p99", 100.0),
])
def test_each_reducer_folds_the_window(org: Any, cpu: Any, at: dt.datetime, reducer: str, expected: float) -> None:
    rule = AlertRuleFactory(organization=org, metric="cpu", reducer=reducer, window_seconds=60, critical=1e9)
    outcome = one(rule, at)
    assert outcome.value == pytest.approx(expected)
    assert outcome.severity is None and outcome.threshold == 1e9
    assert outcome.labels == {"host": "web-1", "cpu": "total"}
    assert outcome.series_id == cpu.id and outcome.host_id == cpu.host_id


def test_the_window_excludes_older_samples(org: Any, cpu: Any, at: dt.datetime) -> None:
    rule = AlertRuleFactory(organization=org, metric="cpu", reducer="min", window_seconds=20, critical=1e9)
    assert one(rule, at).value == 40.0  # only the samples 15 s and 5 s before AT


@pytest.mark.parametrize(("comparator", "critical", "warning", "severity", "threshold"), [
    (">", 90, 50, "critical", 90), (">", 150, 90, "warning", 90), (">", 150, 120, None, 150),
    (">=", 100, None, "critical", 100), ("<", 200, None, "critical", 200), ("<=", 100, None, "critical", 100),
    ("<", 50, None, None, 50), ("==", 100, None, "critical", 100), ("!=", 100, 7, "warning", 7),
    ("==", None, 100, "warning", 100),
])
def test_comparators_and_warning_versus_critical(org: Any, cpu: Any, at: dt.datetime, comparator: str,
                                                 critical: float | None, warning: float | None, severity: str | None,
                                                 threshold: float) -> None:
    rule = AlertRuleFactory(organization=org, metric="cpu", reducer="last", comparator=comparator,
                            critical=critical, warning=warning)
    outcome = one(rule, at)
    assert (outcome.severity, outcome.threshold, outcome.value) == (severity, threshold, 100.0)


def test_severity_for_is_critical_first() -> None:
    assert severity_for(5, ">", 4, 3) == ("critical", 4)
    assert severity_for(3.5, ">", 4, 3) == ("warning", 3)
    assert severity_for(1, ">", 4, 3) == (None, 4)


def test_rate_handles_a_counter_reset(org: Any, at: dt.datetime) -> None:
    # 100 -> 160 -> 220, reset, 30 -> 90 over 40 s: increases 60 + 60 + 30 + 60 = 210.
    series_with(org, "requests_total", {"host": "web-1"}, at, [(40, 100), (30, 160), (20, 220), (10, 30), (0, 90)])
    rule = AlertRuleFactory(organization=org, metric="requests_total", reducer="rate", window_seconds=60, critical=5)
    outcome = one(rule, at)
    assert outcome.value == pytest.approx(210 / 40)
    assert outcome.severity == "critical"
    assert counter_rate([[0, 5]]) is None


def test_a_series_without_data_in_the_window_has_no_outcome(org: Any, cpu: Any, at: dt.datetime) -> None:
    series_with(org, "cpu", {"host": "web-2", "cpu": "total"}, at, [(600, 99.0)])
    rule = AlertRuleFactory(organization=org, metric="cpu", reducer="max", window_seconds=60, critical=50)
    assert [o.series_id for o in evaluate_rule(rule, at).outcomes] == [cpu.id]
    counted = AlertRuleFactory(organization=org, metric="cpu", reducer="count", window_seconds=60, comparator="<",
                               critical=1)
    assert sorted((o.value, o.severity) for o in evaluate_rule(counted, at).outcomes) == [(0.0, "critical"),
                                                                                          (5.0, None)]


def test_label_matchers_use_the_query_api_syntax(org: Any, at: dt.datetime) -> None:
    for host in ("web-1", "web-2", "db-1"):
        for mode in ("user", "idle"):
            series_with(org, "cpu", {"host": host, "mode": mode}, at, [(5, 1.0)])
    series_with(org, "mem", {"host": "web-1", "mode": "user"}, at, [(5, 1.0)])

    def hosts_modes(matchers: str) -> list[tuple[str, str]]:
        rule = AlertRuleFactory(organization=org, metric="cpu", label_matchers=matchers, critical=0)
        return sorted((o.labels["host"], o.labels["mode"]) for o in evaluate_rule(rule, at).outcomes)

    assert hosts_modes('mode="user"') == [("db-1", "user"), ("web-1", "user"), ("web-2", "user")]
    assert hosts_modes('{host=~"web-.*",mode!="idle"}') == [("web-1", "user"), ("web-2", "user")]
    assert hosts_modes('host!~"web-.*"') == [("db-1", "idle"), ("db-1", "user")]
    assert hosts_modes('mode="user",host="db-1"') == [("db-1", "user")]
    assert hosts_modes('missing=""') == hosts_modes("")
    assert len(hosts_modes("")) == 6
    assert hosts_modes('missing="x"') == []
    bad = AlertRuleFactory(organization=org, metric="cpu", label_matchers="host=web", critical=0)
    with pytest.raises(QueryError) as caught:
        evaluate_rule(bad, at)
    assert caught.value.parameter == "label_matchers"


def test_host_filters_narrow_the_selection(org: Any, at: dt.datetime) -> None:
    specs = {"web-1": ("production", {"role": "web", "dc": "fra"}), "web-2": ("staging", {"role": "web"}),
             "db-1": ("production", {"role": "db", "dc": "fra"})}
    for name, (env, tags) in specs.items():
        host = HostFactory(organization=org, name=name, environment=env, tags=tags)
        series_with(org, "cpu", {"host": name}, at, [(5, 1.0)], host=host)
    series_with(org, "cpu", {"job": "batch"}, at, [(5, 1.0)])  # no host at all

    def hosts(**filters: Any) -> list[str]:
        rule = AlertRuleFactory(organization=org, metric="cpu", critical=0, **filters)
        return sorted(o.labels.get("host", "-") for o in evaluate_rule(rule, at).outcomes)

    assert hosts() == ["-", "db-1", "web-1", "web-2"]
    assert hosts(host_environment="production") == ["db-1", "web-1"]
    assert hosts(host_tags={"role": "web"}) == ["web-1", "web-2"]
    assert hosts(host_tags={"role": "web", "dc": "fra"}) == ["web-1"]
    assert hosts(host_names=["db-1", "web-2"]) == ["db-1", "web-2"]
    assert hosts(host_environment="production", host_tags={"role": "db"}, host_names=["web-1"]) == []


def test_the_host_label_is_added_when_the_series_names_its_host_otherwise(org: Any, at: dt.datetime) -> None:
    host = HostFactory(organization=org, name="node-7")
    series_with(org, "load", {"instance": "node-7:9100"}, at, [(5, 3.0)], host=host)
    rule = AlertRuleFactory(organization=org, metric="load", critical=1)
    assert one(rule, at).labels == {"instance": "node-7:9100", "host": "node-7"}


def test_other_organizations_series_are_never_selected(org: Any, other_org: Any, at: dt.datetime) -> None:
    series_with(other_org, "cpu", {"host": "web-1"}, at, [(5, 99.0)])
    rule = AlertRuleFactory(organization=org, metric="cpu", critical=0)
    assert evaluate_rule(rule, at).outcomes == []


def test_a_threshold_rule_without_thresholds_or_metric_raises(org: Any, at: dt.datetime) -> None:
    with pytest.raises(RuleError):
        evaluate_rule(AlertRuleFactory(organization=org, metric="cpu", critical=None, warning=None), at)
    with pytest.raises(RuleError):
        evaluate_rule(AlertRuleFactory(organization=org, metric="", critical=1), at)


def test_rules_sharing_a_read_get_their_own_series_and_thresholds(org: Any, at: dt.datetime) -> None:
    for i in range(5):
        series_with(org, "cpu", {"host": f"h{i}"}, at, [(5, float(10 * i))])
    rules = [AlertRuleFactory(organization=org, metric="cpu", reducer="last", window_seconds=60,
                              label_matchers=f'host="h{i}"', critical=15) for i in range(5)]
    results = evaluate_rules(rules, at)
    assert [[(o.labels["host"], o.value, o.severity) for o in results[r.pk].outcomes] for r in rules] == [
        [("h0", 0.0, None)], [("h1", 10.0, None)], [("h2", 20.0, "critical")], [("h3", 30.0, "critical")],
        [("h4", 40.0, "critical")]]


# -- absence ---------------------------------------------------------------------------------------------

def test_absence_per_series(org: Any, at: dt.datetime) -> None:
    alive = series_with(org, "heartbeat", {"host": "a"}, at, [(30, 1.0)])
    silent = series_with(org, "heartbeat", {"host": "b"}, at, [(300, 1.0)])
    never = series_with(org, "heartbeat", {"host": "c"}, at, [])
    rule = AlertRuleFactory(organization=org, kind="absence", metric="heartbeat", absence_seconds=120,
                            critical=None)
    outcomes = {o.series_id: o for o in evaluate_rule(rule, at).outcomes}
    assert {sid: o.severity for sid, o in outcomes.items()} == {alive.id: None, silent.id: "critical",
                                                                never.id: "critical"}
    assert outcomes[silent.id].threshold == 120 and outcomes[silent.id].labels == {"host": "b"}


def test_absence_per_series_trusts_the_hot_tier_and_falls_back_to_postgres(org: Any, at: dt.datetime) -> None:
    series = series_with(org, "heartbeat", {"host": "a"}, at, [(300, 1.0)])
    rule = AlertRuleFactory(organization=org, kind="absence", metric="heartbeat", absence_seconds=120)
    assert one(rule, at).severity == "critical"
    # A newer sample known to the hot tier only (e.g. not yet visible to this reader) counts.
    hot.store_latest(org.pk, {series.id: (int((at.timestamp() - 10) * 1e6), 1.0)}, {series.id: series.host_id})
    outcome = one(rule, at)
    assert (outcome.severity, outcome.value) == (None, 10.0)


def test_absence_per_host_uses_the_exact_heartbeats(org: Any, at: dt.datetime) -> None:
    up = HostFactory(organization=org, name="up", last_seen_at=at - dt.timedelta(seconds=20))
    down = HostFactory(organization=org, name="down", last_seen_at=at - dt.timedelta(seconds=500))
    # last_seen_at is written at most every 30 s: this host last pushed 100 s ago, last_seen_at says 130 s.
    coarse = HostFactory(organization=org, name="coarse", last_seen_at=at - dt.timedelta(seconds=130))
    HostFactory(organization=org, name="never-seen")
    HostFactory(organization=org, name="retired", is_active=False, last_seen_at=at - dt.timedelta(days=3))
    pipe = redis.client().pipeline()
    heartbeats.record_seen(pipe, org.pk, [coarse.id], at - dt.timedelta(seconds=100))
    pipe.execute()
    rule = AlertRuleFactory(organization=org, kind="absence", metric="", absence_seconds=120)
    outcomes = {o.labels["host"]: o for o in evaluate_rule(rule, at).outcomes}
    assert {name: (o.severity, o.value) for name, o in outcomes.items()} == {
        "up": (None, 20.0), "down": ("critical", 500.0), "coarse": (None, 100.0)}
    assert outcomes["down"].host_id == down.id and outcomes["up"].host_id == up.id
    assert outcomes["down"].threshold == 120.0


def test_absence_per_host_honours_host_filters(org: Any, at: dt.datetime) -> None:
    HostFactory(organization=org, name="p", environment="production", last_seen_at=at - dt.timedelta(hours=1))
    HostFactory(organization=org, name="s", environment="staging", last_seen_at=at - dt.timedelta(hours=1))
    rule = AlertRuleFactory(organization=org, kind="absence", metric="", absence_seconds=60,
                            host_environment="production")
    assert [o.labels for o in evaluate_rule(rule, at).outcomes] == [{"host": "p"}]


# -- anomaly ---------------------------------------------------------------------------------------------

def _trained(org: Any, at: dt.datetime, values: list[float], *, current: float, step: int = 60,
             labels: dict[str, str] | None = None) -> Any:
    """One sample per ``step`` before the rule's 60 s window (oldest first), then ``current`` in it."""
    n = len(values)
    samples = [(60 + step * (n - i) - step // 2, v) for i, v in enumerate(values)] + [(10, current)]
    return series_with(org, "latency", labels or {"host": "api"}, at, samples)


def test_anomaly_mean_stddev_fires_above_the_band_and_stores_the_baseline(org: Any, at: dt.datetime) -> None:
    training = [100.0 + (i % 5) for i in range(60)]
    _trained(org, at, training, current=150.0)
    rule = AlertRuleFactory(organization=org, kind="anomaly", metric="latency", reducer="avg", window_seconds=60,
                            anomaly_method="mean_stddev", anomaly_k=3, training_seconds=3720, critical=None)
    outcome = one(rule, at)
    mean, sd = statistics.fmean(training), statistics.stdev(training)
    assert outcome.severity == "critical" and outcome.value == 150.0
    b = outcome.baseline
    assert b["method"] == "mean_stddev" and b["samples"] == 60 and b["seasonal"] is False and b["k"] == 3
    assert b["center"] == pytest.approx(mean) and b["spread"] == pytest.approx(sd)
    assert (b["lower"], b["upper"]) == (pytest.approx(mean - 3 * sd), pytest.approx(mean + 3 * sd))
    assert outcome.threshold == pytest.approx(mean + 3 * sd)
    assert b["training_end"] == (at - dt.timedelta(seconds=60)).isoformat()
    assert b["training_start"] == (at - dt.timedelta(seconds=3720)).isoformat()


def test_anomaly_within_the_band_is_clear_with_its_baseline(org: Any, at: dt.datetime) -> None:
    _trained(org, at, [100.0 + (i % 5) for i in range(60)], current=102.0)
    rule = AlertRuleFactory(organization=org, kind="anomaly", metric="latency", reducer="avg", window_seconds=60,
                            training_seconds=3720)
    outcome = one(rule, at)
    assert outcome.severity is None and outcome.baseline["samples"] == 60


def test_anomaly_median_mad_resists_outliers_and_follows_the_comparator(org: Any, at: dt.datetime) -> None:
    training = [50.0, 51.0, 49.0, 50.0, 52.0, 48.0, 50.0, 51.0, 49.0, 50.0, 5000.0, 50.0]
    _trained(org, at, training, current=40.0)
    below = AlertRuleFactory(organization=org, kind="anomaly", metric="latency", reducer="last", window_seconds=60,
                             anomaly_method="median_mad", anomaly_k=3, training_seconds=3600, comparator="<")
    outcome = one(below, at)
    median = statistics.median(training)
    mad = 1.4826 * statistics.median(abs(x - median) for x in training)
    assert outcome.baseline["center"] == median and outcome.baseline["spread"] == pytest.approx(mad)
    assert outcome.severity == "critical" and outcome.threshold == pytest.approx(median - 3 * mad)
    above = AlertRuleFactory(organization=org, kind="anomaly", metric="latency", reducer="last", window_seconds=60,
                             anomaly_method="median_mad", training_seconds=3600, comparator=">")
    assert one(above, at).severity is None  # 40 is anomalous only downwards


def test_anomaly_with_too_little_training_gives_no_outcome(org: Any, at: dt.datetime) -> None:
    _trained(org, at, [1.0, 2.0, 3.0], current=100.0)
    rule = AlertRuleFactory(organization=org, kind="anomaly", metric="latency", window_seconds=60,
                            training_seconds=3600)
    assert evaluate_rule(rule, at).outcomes == []


def test_seasonal_anomaly_learns_only_from_the_same_hour_of_previous_weeks(org: Any, at: dt.datetime) -> None:
    week = 7 * 86400
    samples: list[tuple[float, float]] = []
    for weeks_ago in (1, 2):
        # Same hour of previous weeks: a busy period around 1000; the rest of the week idles around 10.
        samples += [(weeks_ago * week + offset, 1000.0 + offset % 7) for offset in range(-1500, 1500, 300)]
        samples += [(weeks_ago * week + 4 * 3600 + offset, 10.0) for offset in range(0, 3000, 300)]
    samples.append((10, 10.0))  # idle now, in what is the busy hour of every previous week
    series_with(org, "traffic", {"host": "lb"}, at, samples)
    seasonal = AlertRuleFactory(organization=org, kind="anomaly", metric="traffic", reducer="avg", comparator="!=",
                                window_seconds=300, training_seconds=2 * week + 3600, seasonal=True)
    outcome = one(seasonal, at)
    assert outcome.baseline["seasonal"] is True and outcome.baseline["samples"] == 20
    assert 1000 <= outcome.baseline["center"] <= 1006
    assert outcome.severity == "critical" and outcome.threshold == outcome.baseline["lower"]
    flat = AlertRuleFactory(organization=org, kind="anomaly", metric="traffic", reducer="avg", comparator="!=",
                            window_seconds=300, training_seconds=2 * week + 3600, seasonal=False)
    outcome = one(flat, at)
    assert outcome.baseline["samples"] == 30 and outcome.severity is None  # the whole week's spread hides it


def test_anomaly_training_reads_a_coarse_rollup_tier(org: Any, at: dt.datetime,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from apps.alerts.evaluation import windows
    from apps.metrics import read

    _trained(org, at, [100.0 + (i % 5) for i in range(60)], current=150.0, step=300)
    tiers: list[tuple[int | None, str]] = []
    real = read.window

    def spy(*args: Any, **kwargs: Any) -> Any:
        answer = real(*args, **kwargs)
        tiers.append((kwargs.get("step"), answer.plan.tier))
        return answer

    monkeypatch.setattr(windows.read, "window", spy)
    rule = AlertRuleFactory(organization=org, kind="anomaly", metric="latency", reducer="avg", window_seconds=300,
                            training_seconds=6 * 3600)
    outcome = one(rule, at)
    assert outcome.severity == "critical" and outcome.baseline["step"] == 300
    assert outcome.baseline["samples"] == 59  # the newest of the 60 falls inside the 300 s window
    # The current value from raw samples over exactly the window, the training from the 5-minute tier.
    assert tiers == [(300, "raw"), (300, "5m")]
