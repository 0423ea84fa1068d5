"""The SQL fragments must reproduce the Python sketch exactly, and keep a small bucket's values exactly;
checked against a live PostgreSQL.

Connects to ``SKETCH_TEST_DSN`` or, by default, the PostgreSQL server the suite runs against (the
project's own database, from settings). Everything lives in TEMP tables of one session, so the tests
leave nothing behind and can share a database with other suites.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.metrics.sketch import (
    BINS_PER_BINADE,
    EXACT_MAX_COUNT,
    MANTISSA_THRESHOLDS,
    RELATIVE_ACCURACY,
    QuantileSketch,
    exact_quantiles,
    key_for_value,
    value_for_key,
)
from apps.metrics.sketch_sql import (
    bin_key_sql,
    build_sketches_sql,
    key_value_sql,
    merge_sketches_sql,
    quantile_sql,
    quantiles_sql,
)

psycopg = pytest.importorskip("psycopg")



def _dsn() -> str:
    """The suite's own server: never a machine-wide PostgreSQL the project must not depend on."""
    if os.environ.get("SKETCH_TEST_DSN"):
        return os.environ["SKETCH_TEST_DSN"]
    from django.conf import settings as django_settings

    db = django_settings.DATABASES["default"]
    return psycopg.conninfo.make_conninfo(
        host=db.get("HOST") or None, port=str(db.get("PORT") or "") or None, user=db.get("USER") or None,
        password=db.get("PASSWORD") or None, dbname=db["NAME"],
    )


# Read at import, before pytest-django points settings at the test database: TEMP tables in the
# project's own database keep this session away from test_* databases that pytest creates and drops.
DSN = _dsn()

EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
ORIGIN = "'2000-01-01 00:00:00+00'::timestamptz"
MINUTE = f"date_bin('1 minute', s.time, {ORIGIN})"
QUANTILES = (0.5, 0.95, 0.99)
db_settings = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

any_float = st.floats(allow_nan=True, allow_infinity=True)
metric_values = st.one_of(
    st.floats(min_value=-1e12, max_value=1e12, allow_nan=False),
    st.sampled_from([0.0, -0.0, 1.0, 2.0, 100.0]),
)
# (series_id, second offset within 5 minutes, value)
samples = st.lists(st.tuples(st.integers(1, 3), st.integers(0, 299), metric_values), min_size=1, max_size=150)


@pytest.fixture(scope="module")
def conn() -> Iterator[psycopg.Connection]:
    connection = psycopg.connect(DSN, autocommit=True, connect_timeout=10)
    connection.execute("CREATE TEMP TABLE raw (time timestamptz, series_id int, value float8)")
    connection.execute(
        "CREATE TEMP TABLE rollup (series_id int, bucket timestamptz, exact_values float8[], sketch_keys int[], "
        "sketch_counts int[])"
    )
    yield connection
    connection.close()


def load_raw(conn: psycopg.Connection, rows: list[tuple[int, int, float]]) -> None:
    conn.execute("TRUNCATE raw, rollup")
    with conn.cursor().copy("COPY raw (time, series_id, value) FROM STDIN") as copy:
        for series_id, second, value in rows:
            copy.write_row((EPOCH + timedelta(seconds=second), series_id, value))


def python_sketches(rows: list[tuple[int, int, float]], bucket_seconds: int) -> dict:
    sketches: dict = defaultdict(QuantileSketch)
    for series_id, second, value in rows:
        if math.isfinite(value):
            bucket = EPOCH + timedelta(seconds=second - second % bucket_seconds)
            sketches[(series_id, bucket)].add(value)
    return {group: sketch.to_arrays() for group, sketch in sketches.items()}


def python_buckets(rows: list[tuple[int, int, float]], bucket_seconds: int) -> dict:
    """(series, bucket) -> the finite values of that bucket."""
    buckets: dict = defaultdict(list)
    for series_id, second, value in rows:
        if math.isfinite(value):
            buckets[(series_id, EPOCH + timedelta(seconds=second - second % bucket_seconds))].append(value)
    return buckets


def build_minute_rollup(conn: psycopg.Connection, **kwargs: int) -> None:
    """The 1m rollup of ``raw``; sketches only unless ``exact_max`` says otherwise (most tests here compare
    sketches with the Python ones)."""
    kwargs.setdefault("exact_max", 0)
    conn.execute(f"INSERT INTO rollup {build_sketches_sql(source='raw', bucket_expr=MINUTE, **kwargs)}")


@db_settings
@given(st.lists(any_float, max_size=200))
def test_sql_bin_key_equals_python_key(conn, values):
    rows = conn.execute(
        f"SELECT {bin_key_sql('v')}, {key_value_sql(bin_key_sql('v'))} FROM unnest(%s::float8[]) AS v",
        [values],
    ).fetchall()
    for value, (key, representative) in zip(values, rows, strict=True):
        if math.isfinite(value):
            assert (key, representative) == (key_for_value(value), value_for_key(key_for_value(value)))
        else:
            assert key is None


@pytest.mark.parametrize(
    "value",
    [
        0.0,
        -0.0,
        1.0,
        2.0,
        0.5,
        1e-300,
        1e300,
        5e-324,
        -5e-324,
        1e-310,
        2.2250738585072014e-308,
        2.225073858507201e-308,
        1.7976931348623157e308,
        -1.7976931348623157e308,
        2.0 ** (1 / 35),
        math.nextafter(2.0 ** (1 / 35), 0),
        100.0,
        99.99999999999999,
        -42.5,
    ],
)
def test_sql_bin_key_equals_python_key_at_edges(conn, value):
    key, representative = conn.execute(
        f"SELECT {bin_key_sql('%(v)s')}, {key_value_sql(bin_key_sql('%(v)s'))}", {"v": value}
    ).fetchone()
    assert key == key_for_value(value)
    assert representative == value_for_key(key)


def near_edge(binade: int, index: int, nudge: int, scale: float) -> float:
    """A bin edge moved by ``nudge`` ulps and scaled by ``scale``: the inputs ln() could misplace."""
    value = math.ldexp(1.0 + MANTISSA_THRESHOLDS[index] / 2**52, binade)
    for _ in range(abs(nudge)):
        value = math.nextafter(value, math.inf if nudge > 0 else 0.0)
    return value * scale


edge_neighbours = st.builds(
    near_edge,
    st.integers(-1074, 1023),
    st.integers(0, BINS_PER_BINADE - 1),
    st.integers(-3, 3),
    st.sampled_from([1.0, -1.0, 1 + 1e-12, 1 - 1e-12, 1 + 1e-9, 1 - 1e-9, 1 + 1e-8]),
)


@db_settings
@given(st.lists(edge_neighbours, min_size=1, max_size=200))
def test_sql_bin_key_equals_python_key_next_to_bin_edges(conn, values):
    rows = conn.execute(f"SELECT {bin_key_sql('v')} FROM unnest(%s::float8[]) AS v", [values]).fetchall()
    assert [key for (key,) in rows] == [key_for_value(v) for v in values]


def test_sql_bin_key_is_null_for_non_finite(conn):
    rows = conn.execute(
        f"SELECT {bin_key_sql('v')} FROM unnest(%s::float8[]) AS v", [[math.nan, math.inf, -math.inf]]
    )
    assert [row[0] for row in rows] == [None, None, None]


@db_settings
@given(samples)
def test_sql_built_sketches_equal_python_built(conn, rows):
    load_raw(conn, rows)
    build_minute_rollup(conn)
    built = conn.execute("SELECT series_id, bucket, sketch_keys, sketch_counts FROM rollup").fetchall()
    assert {(s, b): (k, c) for s, b, k, c in built} == python_sketches(rows, 60)


@db_settings
@given(samples)
def test_sql_build_with_stats_adds_count_sum_min_max_of_the_bucket(conn, rows):
    load_raw(conn, rows)
    sql = build_sketches_sql(source="raw", bucket_expr=MINUTE, with_stats=True)
    built = conn.execute(
        f"SELECT series_id, bucket, count, sum, min, max, sketch_keys, sketch_counts FROM ({sql}) r "
        "WHERE exact_values IS NULL UNION ALL "
        f"SELECT series_id, bucket, count, sum, min, max, exact_values, NULL FROM ({sql}) r "
        "WHERE exact_values IS NOT NULL"
    )
    groups: dict = defaultdict(list)
    for series_id, second, value in rows:
        groups[(series_id, EPOCH + timedelta(seconds=second - second % 60))].append(value)
    seen = set()
    for series_id, bucket, count, total, low, high, keys, counts in built:
        values = groups[(series_id, bucket)]
        assert (count, low, high) == (len(values), min(values), max(values))
        assert total == pytest.approx(math.fsum(values), rel=1e-12, abs=1e-3)
        if counts is None:  # kept its values (``keys`` holds them here)
            assert len(values) <= EXACT_MAX_COUNT and keys == sorted(values)
        else:
            assert len(values) > EXACT_MAX_COUNT and (keys, counts) == QuantileSketch.of(values).to_arrays()
        seen.add((series_id, bucket))
    assert seen == set(groups)


def test_merge_sketches_sql_rejects_bad_arguments():
    with pytest.raises(ValueError, match="group_by"):
        merge_sketches_sql(source="rollup", group_by={})
    with pytest.raises(ValueError, match="counts_type"):
        merge_sketches_sql(source="rollup", group_by={"series_id": "s.series_id"}, counts_type="text; DROP")


def test_sql_build_skips_non_finite_values(conn):
    load_raw(conn, [(1, 0, math.nan), (1, 1, math.inf), (1, 2, 3.0), (2, 0, -math.inf)])
    build_minute_rollup(conn)
    built = conn.execute("SELECT series_id, sketch_keys, sketch_counts FROM rollup").fetchall()
    assert built == [(1, [key_for_value(3.0)], [1])]


@db_settings
@given(samples)
def test_sql_merge_equals_python_merge(conn, rows):
    load_raw(conn, rows)
    build_minute_rollup(conn)
    five_minutes = merge_sketches_sql(
        source="rollup",
        group_by={"series_id": "s.series_id", "bucket": f"date_bin('5 minutes', s.bucket, {ORIGIN})"},
        exact_max=0,
    )
    rerolled = conn.execute(
        f"SELECT series_id, bucket, sketch_keys, sketch_counts FROM ({five_minutes}) AS r"
    )
    assert {(s, b): (k, c) for s, b, k, c in rerolled} == python_sketches(rows, 300)

    minute_rows = conn.execute("SELECT series_id, sketch_keys, sketch_counts FROM rollup").fetchall()
    expected: dict[int, QuantileSketch] = defaultdict(QuantileSketch)
    for series_id, keys, counts in minute_rows:
        expected[series_id].merge(QuantileSketch.from_arrays(keys, counts))
    by_series = merge_sketches_sql(
        source="rollup", group_by={"series_id": "s.series_id"}, counts_type="bigint", exact_max=0
    )
    merged = conn.execute(f"SELECT series_id, sketch_keys, sketch_counts FROM ({by_series}) AS r").fetchall()
    assert {s: (k, c) for s, k, c in merged} == {s: sk.to_arrays() for s, sk in expected.items()}


@db_settings
@given(
    st.lists(
        st.tuples(st.integers(1, 2), st.integers(0, 119), st.floats(-1e30, 1e30, allow_nan=False)),
        min_size=1,
        max_size=120,
    ),
    st.integers(min_value=1, max_value=5),
)
def test_sql_collapse_equals_python_collapse(conn, rows, limit):
    load_raw(conn, rows)
    build_minute_rollup(conn, max_bins_per_sign=limit)
    built = conn.execute("SELECT series_id, bucket, sketch_keys, sketch_counts FROM rollup").fetchall()
    expected: dict = defaultdict(lambda: QuantileSketch(max_bins_per_sign=limit))
    for series_id, second, value in rows:
        expected[(series_id, EPOCH + timedelta(seconds=second - second % 60))].add(value)
    assert {(s, b): (k, c) for s, b, k, c in built} == {g: sk.to_arrays() for g, sk in expected.items()}

    by_series = merge_sketches_sql(
        source="rollup", group_by={"series_id": "s.series_id"}, max_bins_per_sign=limit, exact_max=0
    )
    merged = conn.execute(f"SELECT series_id, sketch_keys, sketch_counts FROM ({by_series}) AS r").fetchall()
    union: dict = defaultdict(lambda: QuantileSketch(max_bins_per_sign=limit))
    for series_id, _, value in rows:
        union[series_id].add(value)
    assert {s: (k, c) for s, k, c in merged} == {s: sk.to_arrays() for s, sk in union.items()}


@db_settings
@given(samples)
def test_rolled_up_quantiles_are_within_accuracy_of_percentile_disc_over_raw(conn, rows):
    load_raw(conn, rows)
    build_minute_rollup(conn)
    by_series = merge_sketches_sql(
        source="rollup", group_by={"series_id": "s.series_id"}, counts_type="bigint", exact_max=0
    )
    estimates = conn.execute(
        f"""SELECT r.series_id, q.q, {quantile_sql("r.sketch_keys", "r.sketch_counts", "r.exact_values", "q.q")},
                   r.sketch_keys, r.sketch_counts
            FROM ({by_series}) AS r CROSS JOIN unnest(%s::float8[]) AS q(q)""",
        [list(QUANTILES)],
    ).fetchall()
    exact = dict(
        ((s, q), v)
        for s, q, v in conn.execute(
            """SELECT series_id, q.q, percentile_disc(q.q) WITHIN GROUP (ORDER BY value)
               FROM raw CROSS JOIN unnest(%s::float8[]) AS q(q) GROUP BY series_id, q.q""",
            [list(QUANTILES)],
        )
    )
    assert len(estimates) == len(exact)
    for series_id, q, estimate, keys, counts in estimates:
        truth = exact[(series_id, q)]
        assert abs(estimate - truth) <= RELATIVE_ACCURACY * abs(truth)
        assert estimate == QuantileSketch.from_arrays(keys, counts).quantile(q)


@db_settings
@given(
    st.lists(
        st.tuples(st.integers(1, 3), st.integers(0, 299), st.floats(allow_nan=False, allow_infinity=False))
    ),
    st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=5),
)
def test_quantiles_sql_equals_python_quantiles_for_any_floats(conn, rows, qs):
    load_raw(conn, rows)
    build_minute_rollup(conn)
    picks = quantiles_sql("sketch_keys", "sketch_counts", "exact_values", "%s")
    picked = conn.execute(f"SELECT sketch_keys, sketch_counts, {picks} FROM rollup", [qs]).fetchall()
    for keys, counts, estimates in picked:
        assert estimates == QuantileSketch.from_arrays(keys, counts).quantiles(qs)


def test_quantile_sql_of_an_empty_sketch_is_null(conn):
    empty = quantile_sql("'{}'::int[]", "'{}'::int[]", "NULL::float8[]", "0.5")
    assert conn.execute(f"SELECT {empty}").fetchone() == (None,)
    none = quantiles_sql("'{}'::int[]", "'{}'::int[]", "NULL::float8[]", "ARRAY[0.5, 0.99]")
    assert conn.execute(f"SELECT {none}").fetchone() == ([None, None],)


# -- buckets that keep their values ------------------------------------------------------------------------

def expected_bucket(parts: list[list[float]]) -> tuple[list[float] | None, tuple[list[int], list[int]] | None]:
    """(kept values, sketch) of a merge of buckets ``parts`` (each a source bucket's values): values when
    every part kept its own and the union is small enough, else the sketch of the union."""
    union = [v for part in parts for v in part]
    if all(len(part) <= EXACT_MAX_COUNT for part in parts) and len(union) <= EXACT_MAX_COUNT:
        return sorted(union), None
    return None, QuantileSketch.of(union).to_arrays()


# Up to ~20 values per minute: some buckets keep their values, some need the sketch.
small_buckets = st.lists(st.tuples(st.integers(1, 3), st.integers(0, 299), metric_values), min_size=1, max_size=80)


@db_settings
@given(small_buckets)
def test_a_small_bucket_keeps_its_values_sorted_and_a_larger_one_gets_the_sketch(conn, rows):
    load_raw(conn, rows)
    build_minute_rollup(conn, exact_max=EXACT_MAX_COUNT)
    built = conn.execute("SELECT series_id, bucket, exact_values, sketch_keys, sketch_counts FROM rollup").fetchall()
    expected = {group: expected_bucket([values]) for group, values in python_buckets(rows, 60).items()}
    assert {(s, b): (e, None if k is None else (k, c)) for s, b, e, k, c in built} == expected


@db_settings
@given(small_buckets)
def test_a_merge_keeps_values_while_every_source_did_and_the_union_is_small(conn, rows):
    load_raw(conn, rows)
    build_minute_rollup(conn, exact_max=EXACT_MAX_COUNT)
    minutes = python_buckets(rows, 60)
    for group_by, counts_type, key in (
        ({"series_id": "s.series_id", "bucket": f"date_bin('5 minutes', s.bucket, {ORIGIN})"}, "int",
         lambda s, b: (s, EPOCH + timedelta(seconds=(b - EPOCH).total_seconds() // 300 * 300))),
        ({"series_id": "s.series_id"}, "bigint", lambda s, b: s),
    ):
        parts: dict = defaultdict(list)
        for (series_id, bucket), values in minutes.items():
            parts[key(series_id, bucket)].append(values)
        merge = merge_sketches_sql(source="rollup", group_by=group_by, counts_type=counts_type)
        columns = ", ".join(group_by)
        merged = conn.execute(f"SELECT {columns}, exact_values, sketch_keys, sketch_counts FROM ({merge}) AS r")
        found = {tuple(row[:-3]) if len(row) > 4 else row[0]: (row[-3], None if row[-2] is None else (row[-2], row[-1]))
                 for row in merged}
        assert found == {group: expected_bucket(p) for group, p in parts.items()}


@db_settings
@given(small_buckets, st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=5))
def test_quantiles_of_a_bucket_that_kept_its_values_are_exact(conn, rows, qs):
    load_raw(conn, rows)
    build_minute_rollup(conn, exact_max=EXACT_MAX_COUNT)
    picks = quantiles_sql("sketch_keys", "sketch_counts", "exact_values", "%s")
    picked = conn.execute(
        f"SELECT series_id, bucket, exact_values, sketch_keys, sketch_counts, {picks} FROM rollup", [qs]
    ).fetchall()
    minutes = python_buckets(rows, 60)
    for series_id, bucket, exact, keys, counts, estimates in picked:
        if exact is not None:
            assert estimates == exact_quantiles(minutes[(series_id, bucket)], qs)
        else:
            assert estimates == QuantileSketch.from_arrays(keys, counts).quantiles(qs)
    exact_disc = conn.execute(
        f"""SELECT r.series_id, {quantile_sql("r.sketch_keys", "r.sketch_counts", "r.exact_values", "0.5")},
                   percentile_disc(0.5) WITHIN GROUP (ORDER BY e.v)
            FROM rollup AS r CROSS JOIN LATERAL unnest(r.exact_values) AS e(v) GROUP BY r.series_id, r.bucket,
                 r.sketch_keys, r.sketch_counts, r.exact_values"""
    ).fetchall()
    assert all(ours == theirs for _, ours, theirs in exact_disc)
