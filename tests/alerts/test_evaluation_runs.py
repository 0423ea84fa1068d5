"""Running rules: outcomes handed to the lifecycle (a recorder here), schedule and error bookkeeping, a
failing rule never stopping the others, the tick's claim and fan-out, the default host-down rule, and
the ingest consumer (through the real ingest door) with its per-rule coalescing."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import pytest
from django.utils import timezone

from apps.alerts.evaluation import consumer, engine, heartbeats, tick
from apps.alerts.models import AlertRule
from apps.alerts.services import lifecycle
from apps.alerts.services.defaults import HOST_DOWN, ensure_default_rules
from apps.alerts.tasks.evaluation import check_rules
from apps.audit.models import AuditEvent
from apps.core import redis
from apps.hosts.models import Host
from tests.alerts.factories import AlertRuleFactory
from tests.alerts.factories_evaluation import Recorder, series_with
from tests.metrics.factories import post
from tests.organizations.factories import OrganizationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    recording = Recorder()
    monkeypatch.setattr(lifecycle, "record_outcomes", recording)
    monkeypatch.setattr(lifecycle, "record_chunk", recording.chunk)
    return recording


@pytest.fixture
def at() -> dt.datetime:
    return timezone.now().replace(microsecond=0) - dt.timedelta(seconds=30)


def test_run_rules_hands_outcomes_over_and_schedules_the_next_evaluation(org: Any, at: dt.datetime,
                                                                         recorder: Recorder) -> None:
    series_with(org, "cpu", {"host": "web-1"}, at, [(5, 95.0)])
    rule = AlertRuleFactory(organization=org, metric="cpu", critical=90, evaluation_interval_seconds=15)
    summary = engine.run_rules([rule.pk], at=at)
    assert summary.evaluated == [rule.pk] and summary.errors == {} and summary.outcomes == 1
    [call] = recorder.calls
    assert call["complete"] is True and call["at"] == at
    [outcome] = call["outcomes"]
    assert (outcome.labels, outcome.value, outcome.severity, outcome.threshold) == ({"host": "web-1"}, 95.0,
                                                                                    "critical", 90.0)
    rule.refresh_from_db()
    assert rule.last_evaluated_at == at and rule.next_evaluation_at == at + dt.timedelta(seconds=15)
    assert rule.consecutive_errors == 0


def test_an_erroring_rule_is_recorded_backs_off_and_never_stops_the_others(org: Any, at: dt.datetime,
                                                                         recorder: Recorder) -> None:
    series_with(org, "cpu", {"host": "web-1"}, at, [(5, 95.0)])
    good = AlertRuleFactory(organization=org, metric="cpu", critical=90, evaluation_interval_seconds=10)
    bad_matchers = AlertRuleFactory(organization=org, metric="cpu", label_matchers="host=", critical=90,
                                    evaluation_interval_seconds=10)
    lifecycle_fails = AlertRuleFactory(organization=org, metric="cpu", critical=50, evaluation_interval_seconds=10)
    recorder.fail_for.add(lifecycle_fails.pk)
    summary = engine.run_rules([bad_matchers.pk, good.pk, lifecycle_fails.pk], at=at)
    assert summary.evaluated == [good.pk]
    assert set(summary.errors) == {bad_matchers.pk, lifecycle_fails.pk}
    assert [c["rule"] for c in recorder.calls] == [good.pk]
    for rule in (bad_matchers, lifecycle_fails):
        rule.refresh_from_db()
        assert rule.consecutive_errors == 1 and rule.last_error_at == at
        assert rule.next_evaluation_at == at + dt.timedelta(seconds=10)  # retried at the next regular turn
    assert "label matcher" in bad_matchers.last_error
    assert lifecycle_fails.last_error == "RuntimeError: lifecycle down"
    # Still failing: the retry backs off (interval doubled per consecutive error, capped).
    later = at + dt.timedelta(seconds=10)
    engine.run_rules([bad_matchers.pk], at=later)
    bad_matchers.refresh_from_db()
    assert bad_matchers.consecutive_errors == 2 and bad_matchers.next_evaluation_at == later + dt.timedelta(seconds=20)
    # Fixed: the error count resets, the last error stays for the record.
    AlertRule.objects.filter(pk=bad_matchers.pk).update(label_matchers='host="web-1"')
    engine.run_rules([bad_matchers.pk], at=later)
    bad_matchers.refresh_from_db()
    assert bad_matchers.consecutive_errors == 0 and bad_matchers.last_evaluated_at == later
    assert bad_matchers.last_error


def test_a_failing_shared_read_is_retried_rule_by_rule(org: Any, at: dt.datetime, recorder: Recorder,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    series_with(org, "cpu", {"host": "a"}, at, [(5, 1.0)])
    series_with(org, "cpu", {"host": "b"}, at, [(5, 2.0)])
    rules = [AlertRuleFactory(organization=org, metric="cpu", label_matchers=f'host="{h}"', critical=0)
             for h in ("a", "b")]
    real = engine.reduced_values

    def flaky(organization: Any, ids: list[int], *args: Any) -> Any:
        if len(ids) > 1:
            raise RuntimeError("statement timeout")
        return real(organization, ids, *args)

    monkeypatch.setattr(engine, "reduced_values", flaky)
    results = engine.evaluate_rules(rules, at)
    assert [[o.value for o in results[r.pk].outcomes] for r in rules] == [[1.0], [2.0]]


def test_disabled_rules_are_not_run(org: Any, at: dt.datetime, recorder: Recorder) -> None:
    rule = AlertRuleFactory(organization=org, enabled=False)
    assert engine.run_rules([rule.pk], at=at).evaluated == []
    assert recorder.calls == []


# -- tick --------------------------------------------------------------------------------------------------

def test_the_tick_claims_due_rules_once_and_fans_them_out_in_chunks(org: Any, recorder: Recorder,
                                                                    settings: Any) -> None:
    settings.FIBERSTACK_ALERTS_EVALUATION_CHUNK = 2
    now = timezone.now()
    new = AlertRuleFactory(organization=org, next_evaluation_at=None)  # created a moment ago (e.g. by the API)
    due = [AlertRuleFactory(organization=org, next_evaluation_at=now - dt.timedelta(seconds=s)) for s in (1, 5, 60)]
    later = AlertRuleFactory(organization=org, next_evaluation_at=now + dt.timedelta(seconds=30))
    off = AlertRuleFactory(organization=org, enabled=False, next_evaluation_at=None)
    ensure_default_rules(org)  # its own rule would be due too; the tick creates it for orgs without one
    host_down = AlertRule.objects.get(organization=org, system_key=HOST_DOWN)
    result = check_rules()  # eager in tests: the chunks run inline
    assert result.startswith("5 rules due, 3 chunks queued")
    assert sorted(c["rule"] for c in recorder.calls) == sorted([new.pk, host_down.pk, *(r.pk for r in due)])
    assert later.pk not in {c["rule"] for c in recorder.calls} and off.pk not in {c["rule"] for c in recorder.calls}
    new.refresh_from_db()
    assert new.last_evaluated_at is not None
    assert new.next_evaluation_at == new.last_evaluated_at + dt.timedelta(seconds=new.evaluation_interval_seconds)
    assert check_rules().startswith("0 rules due")


def test_a_claim_is_a_lease_that_a_second_tick_skips(org: Any) -> None:
    now = timezone.now()
    rule = AlertRuleFactory(organization=org, next_evaluation_at=now - dt.timedelta(seconds=1))
    assert [row[0] for row in tick.claim_due(now)] == [rule.pk]
    assert tick.claim_due(now) == []
    assert [row[0] for row in tick.claim_due(now + dt.timedelta(seconds=tick.LEASE_SECONDS + 1))] == [rule.pk]


def test_chunks_keep_rules_of_one_metric_together() -> None:
    claimed = [(5, 1, "mem"), (1, 1, "cpu"), (9, 2, "cpu"), (3, 1, "cpu"), (4, 1, "mem")]
    assert tick.chunks(claimed, size=2) == [[1, 3], [4, 5], [9]]


# -- default rules -----------------------------------------------------------------------------------------

def test_every_organization_gets_a_tunable_host_down_rule(org: Any, other_org: Any, recorder: Recorder) -> None:
    AlertRuleFactory(organization=other_org, name="Host down")  # a rule of theirs already has the name
    check_rules()
    mine = AlertRule.objects.get(organization=org, system_key=HOST_DOWN)
    theirs = AlertRule.objects.get(organization=other_org, system_key=HOST_DOWN)
    assert (mine.kind, mine.metric, mine.absence_seconds, mine.enabled) == ("absence", "", 120, True)
    assert theirs.name == "Host down (2)"
    assert AuditEvent.objects.filter(action="alerts.rule.created", organization=org).count() == 1
    assert ensure_default_rules(org) == []
    # Tuned or disabled by the organization: kept as it is.
    AlertRule.objects.filter(pk=mine.pk).update(enabled=False, absence_seconds=600)
    check_rules()
    assert AlertRule.objects.filter(organization=org, system_key=HOST_DOWN).count() == 1
    assert AlertRule.objects.get(pk=mine.pk).absence_seconds == 600


def test_the_default_rule_reports_a_silent_host(org: Any, recorder: Recorder) -> None:
    [rule] = ensure_default_rules(org)
    now = timezone.now()
    Host.objects.create(organization=org, name="gone", last_seen_at=now - dt.timedelta(seconds=300))
    Host.objects.create(organization=org, name="fine", last_seen_at=now - dt.timedelta(seconds=5))
    engine.run_rules([rule.pk], at=now)
    [call] = recorder.for_rule(rule)
    assert {o.labels["host"]: o.severity for o in call["outcomes"]} == {"gone": "critical", "fine": None}


# -- ingest consumer ---------------------------------------------------------------------------------------

def push(token: str, rows: list[dict[str, Any]], capture: Any) -> None:
    with capture(execute=True):
        response = post("/api/v1/metrics", json.dumps(rows), token=token, content_type="application/json")
    assert response.status_code == 200, response.content


def test_ingest_evaluates_the_rules_its_metrics_answer(org: Any, other_org: Any, write_token: str,
                                                       recorder: Recorder,
                                                       django_capture_on_commit_callbacks: Any) -> None:
    cpu = AlertRuleFactory(organization=org, metric="cpu", reducer="last", window_seconds=60, critical=90)
    AlertRuleFactory(organization=org, metric="mem", critical=90)
    AlertRuleFactory(organization=org, metric="cpu", critical=90, enabled=False)
    AlertRuleFactory(organization=other_org, metric="cpu", critical=90)
    push(write_token, [{"host": "web-1", "name": "cpu", "value": 97, "time": time.time()}],
         django_capture_on_commit_callbacks)
    [call] = recorder.calls
    assert call["rule"] == cpu.pk
    [outcome] = call["outcomes"]
    assert (outcome.labels, outcome.value, outcome.severity) == ({"host": "web-1"}, 97.0, "critical")
    # The push also recorded the host's exact heartbeat for host down.
    host = Host.objects.get(organization=org, name="web-1")
    assert heartbeats.last_seen(org.pk, [host.id])[host.id] == pytest.approx(time.time(), abs=30)


def test_ingest_evaluation_is_coalesced_per_rule(org: Any, write_token: str, recorder: Recorder,
                                                 django_capture_on_commit_callbacks: Any,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    rule = AlertRuleFactory(organization=org, metric="cpu", critical=90)
    queued: list[tuple[list[int], float]] = []
    monkeypatch.setattr(consumer, "enqueue", lambda ids, delay: queued.append((ids, delay)))
    monkeypatch.setattr(consumer, "COALESCE_MS", 3000)  # wide enough for four pushes on a loaded machine
    for value in (1, 2, 3, 4):
        push(write_token, [{"host": "web-1", "name": "cpu", "value": value, "time": time.time()}],
             django_capture_on_commit_callbacks)
    # The first batch evaluates at once, the second queues one trailing run for when the first's window
    # ends, the rest are covered by it.
    assert len(queued) == 2
    assert queued[0] == ([rule.pk], 0.0)
    assert queued[1][0] == [rule.pk] and 0 < queued[1][1] <= consumer.COALESCE_MS / 1000
    time.sleep(consumer.COALESCE_MS / 1000 + 0.1)
    push(write_token, [{"host": "web-1", "name": "cpu", "value": 5, "time": time.time()}],
         django_capture_on_commit_callbacks)
    assert queued[2] == ([rule.pk], 0.0)


def test_ingest_queues_only_rules_that_may_see_the_batch_in_one_task(
        org: Any, write_token: str, recorder: Recorder, django_capture_on_commit_callbacks: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    per_host = {h: AlertRuleFactory(organization=org, metric="cpu", label_matchers=f'host="{h}"', critical=1)
                for h in ("web-1", "web-2", "web-3")}
    regex = AlertRuleFactory(organization=org, metric="cpu", label_matchers='host=~"db-.*"', critical=1)
    negated = AlertRuleFactory(organization=org, metric="cpu", label_matchers='host!="web-1"', critical=1)
    everything = AlertRuleFactory(organization=org, metric="cpu", critical=1)
    queued: list[tuple[list[int], float]] = []
    monkeypatch.setattr(consumer, "enqueue", lambda ids, delay: queued.append((ids, delay)))
    push(write_token, [{"host": "web-1", "name": "cpu", "value": 1, "time": time.time()},
                       {"host": "web-2", "name": "mem", "value": 1, "time": time.time()}],
         django_capture_on_commit_callbacks)
    # Conservative: regexes and negations are left to the evaluation; web-2's rule is on cpu, not mem.
    assert queued == [(sorted([per_host["web-1"].pk, regex.pk, negated.pk, everything.pk]), 0.0)]


def test_a_batch_of_several_rules_is_one_evaluation_run(org: Any, write_token: str, recorder: Recorder,
                                                        django_capture_on_commit_callbacks: Any) -> None:
    rules = [AlertRuleFactory(organization=org, metric="cpu", critical=c) for c in (1, 50, 99)]
    push(write_token, [{"host": "web-1", "name": "cpu", "value": 60, "time": time.time()}],
         django_capture_on_commit_callbacks)
    assert [(c["rule"], [o.severity for o in c["outcomes"]]) for c in recorder.calls] == [
        (rules[0].pk, ["critical"]), (rules[1].pk, ["critical"]), (rules[2].pk, [None])]


def test_coalescing_fails_open_when_redis_is_down(org: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def down() -> Any:
        raise redis.RedisError("connection refused")

    monkeypatch.setattr(redis, "client", down)
    assert consumer.coalesce(org.pk, [7, 8], [1], timezone.now()) == [(7, 0.0), (8, 0.0)]
    assert consumer.coalesce(org.pk, [7, 8], [1], timezone.now()) == [(7, 0.0), (8, 0.0)]


def test_a_new_rule_takes_effect_on_the_next_batch(org: Any, write_token: str, recorder: Recorder,
                                                   django_capture_on_commit_callbacks: Any) -> None:
    push(write_token, [{"host": "web-1", "name": "cpu", "value": 1, "time": time.time()}],
         django_capture_on_commit_callbacks)
    rule = AlertRuleFactory(organization=org, metric="cpu", critical=0)
    push(write_token, [{"host": "web-1", "name": "cpu", "value": 2, "time": time.time()}],
         django_capture_on_commit_callbacks)
    assert [c["rule"] for c in recorder.calls] == [rule.pk]


def test_a_push_queues_host_level_absence_rules_and_series_names_are_cached(
        org: Any, write_token: str, recorder: Recorder, django_capture_on_commit_callbacks: Any,
        django_assert_num_queries: Any) -> None:
    [host_down] = ensure_default_rules(org)
    push(write_token, [{"host": "web-1", "name": "cpu", "value": 1, "time": time.time()}],
         django_capture_on_commit_callbacks)
    assert [c["rule"] for c in recorder.for_rule(host_down)] == [host_down.pk]
    [call] = recorder.for_rule(host_down)
    assert [(o.labels, o.severity) for o in call["outcomes"]] == [({"host": "web-1"}, None)]
    series_id = org.series.get(name="cpu").id
    with django_assert_num_queries(0):
        assert consumer.metric_names(org.pk, [series_id]) == {"cpu"}


def test_a_batchs_series_are_worked_out_once_per_set_and_per_organization(
        org: Any, other_org: Any, at: dt.datetime, django_assert_num_queries: Any) -> None:
    consumer._batches.clear()
    cpu = series_with(org, "cpu", {"host": "web-1"}, at, [])
    mem = series_with(org, "mem", {"host": "web-1"}, at, [])
    names, seen = consumer.batch_series(org.pk, [cpu.id, mem.id])
    assert names == {"cpu", "mem"}
    assert sorted(seen) == [("cpu", frozenset({("host", "web-1")})), ("mem", frozenset({("host", "web-1")}))]
    with django_assert_num_queries(0):
        assert consumer.batch_series(org.pk, [mem.id, cpu.id]) == (names, seen)
    # Another organization naming these ids sees none of them, and that answer is not memoised.
    assert consumer.batch_series(other_org.pk, [cpu.id, mem.id]) == (frozenset(), ())
    assert all(key[1] == org.pk for key in consumer._batches)


def test_rules_that_keep_raising_are_left_to_the_tick(org: Any) -> None:
    rule = AlertRuleFactory(organization=org, metric="cpu", consecutive_errors=consumer.ERROR_CUTOFF)
    ok = AlertRuleFactory(organization=org, metric="cpu")
    assert [row[0] for row in consumer.rules_for(org.pk, {"cpu"}, False)] == [ok.pk]
    assert rule.pk not in [row[0] for row in consumer.rules_for(org.pk, {"cpu"}, True)]


def test_organizations_without_the_default_rule_are_found_cheaply(db: Any) -> None:
    from apps.alerts.services.defaults import organizations_missing_defaults

    a, b = OrganizationFactory(), OrganizationFactory()
    ensure_default_rules(a)
    assert organizations_missing_defaults() == [b]


def test_a_slow_rule_is_cancelled_by_the_statement_timeout_and_the_others_run(
        org: Any, at: dt.datetime, recorder: Recorder, settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from django.db import connection

    from apps.alerts.evaluation import selection

    settings.FIBERSTACK_ALERTS_STATEMENT_TIMEOUT_MS = 200
    series_with(org, "cpu", {"host": "web-1"}, at, [(5, 95.0)])
    slow = AlertRuleFactory(organization=org, metric="cpu", label_matchers='host=~"web-.*"', critical=90)
    fast = AlertRuleFactory(organization=org, metric="cpu", label_matchers='host="web-1"', critical=90)

    def sleepy(*args: Any, **kwargs: Any) -> list[int]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_sleep(2)")
        return []

    monkeypatch.setattr(selection, "select_series_ids", sleepy)
    started = time.monotonic()
    summary = engine.run_rules([slow.pk, fast.pk], at=at)
    assert time.monotonic() - started < 1.5
    assert summary.evaluated == [fast.pk] and list(summary.errors) == [slow.pk]
    assert "statement timeout" in summary.errors[slow.pk]
    assert [c["rule"] for c in recorder.calls] == [fast.pk]


def test_the_consumer_finds_rules_through_the_org_metric_index(org: Any) -> None:
    from django.db import connection

    for i in range(300):
        AlertRuleFactory(organization=org, metric=f"m{i}")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE alerts_alertrule")
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(
            "EXPLAIN SELECT id FROM alerts_alertrule WHERE organization_id = %s AND enabled AND metric = ANY(%s) "
            "AND (metric <> '' OR kind = 'absence') AND consecutive_errors < 3 ORDER BY id", [org.pk, ["m1", ""]])
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "alerts_rule_org_metric_idx" in plan, plan
