"""SQL twins of ``apps/metrics/sketch.py`` for rollups computed inside PostgreSQL 15 (no extensions).

Every helper returns a SQL *fragment* (an expression or a SELECT) rather than a function to install:
rollups and queries inline them, so no migration has to ship DDL (hence no ``CREATE_FUNCTIONS_SQL``),
nothing can drift between the Python constants and an installed function body, and the planner sees
plain expressions. All fragments produce exactly what :class:`~apps.metrics.sketch.QuantileSketch`
produces for the same floats; ``tests/metrics/test_sketch_sql.py`` checks that key by key.

Where quantiles are extracted: merge in SQL (``merge_sketches_sql``), then read the few merged arrays
and call ``QuantileSketch.quantiles`` in Python; ``quantiles_sql`` exists for SQL-only consumers and for
per-bucket series, where it saves shipping every bucket's arrays (numbers in ``bench/sketch.py``).

Column contract: ``sketch_keys int[]`` and ``sketch_counts int[]``, same length, keys strictly
increasing -- or, for a bucket that kept its values (at most ``exact_max``, default
``sketch.EXACT_MAX_COUNT``), NULL sketch columns and ``exact_values float8[]`` ascending; never both.
Stored counts are int4 to keep 1-minute buckets small; a single bin would need 2**31 samples (about
25 000 samples/s into one 2 % bin of one series for a day) to overflow, and then the
``::int`` cast fails that series' step loudly instead of wrapping (the job quarantines the series for
that range and rolls the others: ``rollups.quarantine``). Merges for range queries return bigint[].

Identifiers and expressions passed to these helpers are interpolated verbatim (hence the S608 noqa
markers): pass trusted code such as column names and ``date_bin(...)`` expressions, never user input;
bind values with query parameters.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from apps.metrics.rollups.sums import sum_sql
from apps.metrics.sketch import (
    BINS_PER_BINADE,
    EXACT_MAX_COUNT,
    KEY_OFFSET,
    MANTISSA_THRESHOLDS,
    MAX_BINS_PER_SIGN,
    REPRESENTATIVES,
)

_MANTISSA_MASK = (1 << 52) - 1
_THRESHOLDS_SQL = "ARRAY[" + ",".join(str(t) for t in MANTISSA_THRESHOLDS) + "]::bigint[]"
# repr() of a float round-trips exactly through PostgreSQL's float8 input (strtod is correctly rounded).
_REPRESENTATIVES_SQL = "ARRAY[" + ",".join(repr(r) for r in REPRESENTATIVES) + "]::float8[]"
# Any float near ln(2)/35 works: the edge window below absorbs its rounding.
_LN_GAMMA = math.log(2.0) / BINS_PER_BINADE
_EDGE_WINDOW = 1e-9
_FINITE_CHECK = "abs({v}) < 'Infinity'::float8"  # false for NaN too: PostgreSQL sorts NaN above Infinity


def _bits_sql(value_expr: str) -> str:
    """The float's IEEE-754 bit pattern as bigint; identical to Python's struct view on every platform."""
    return f"(('x' || encode(float8send({value_expr}), 'hex'))::bit(64)::bigint)"


def _normal_magnitude_key_sql(value_expr: str) -> str:
    bits = _bits_sql(value_expr)
    # width_bucket(m - 1, T) counts thresholds <= m - 1, i.e. strictly below m: Python's bisect_left.
    return (
        f"({BINS_PER_BINADE} * (({bits} >> 52) - 1023)"
        f" + width_bucket(({bits} & {_MANTISSA_MASK}) - 1, {_THRESHOLDS_SQL}))"
    )


def _magnitude_key_sql(value_expr: str) -> str:
    """Key of a positive finite float; subnormals are scaled by 2**64 (exact) like the Python side."""
    scaled = f"({value_expr} * 18446744073709551616::float8)"
    return (
        f"(CASE WHEN {value_expr} < '2.2250738585072014e-308'::float8"
        f" THEN {_normal_magnitude_key_sql(scaled)} - {64 * BINS_PER_BINADE}"
        f" ELSE {_normal_magnitude_key_sql(value_expr)} END)"
    )


def _fast_magnitude_key_sql(value_expr: str) -> str:
    """ceil(log_gamma(v)) via ln() when v is clearly inside a bin, else the exact bit-pattern key.

    The computed ``x = ln(v) / ln(gamma)`` is off from the true logarithm by at most a few ulps of
    ``|x| <= 37590`` (~1e-11) for any libm within ~100 ulps, and the table edges are within 1e-14 of
    integer x; so when x is more than 1e-9 from an integer, ``ceil(x)`` *is* the exact key. Only values
    within 1e-9 of an edge (powers of two, edges themselves, ~2e-9 of random values) pay for the exact
    path, which makes the key ~7x cheaper than always decoding float bits (``bench/sketch.py``).
    """
    x = f"(ln({value_expr}) / {_LN_GAMMA!r}::float8)"
    return (
        f"(CASE WHEN abs({x} - round({x})) > {_EDGE_WINDOW!r}::float8 THEN ceil({x})::int"
        f" ELSE {_magnitude_key_sql(value_expr)} END)"
    )


def bin_key_sql(value_expr: str) -> str:
    """int expression: the encoded bin key of a float8 value, equal to ``sketch.key_for_value``.

    NULL for NaN and +-Infinity (the Python side raises; SQL cannot raise per row in a rollup). The
    expression is repeated inside the fragment, so pass a column or another cheap expression.
    """
    v = f"({value_expr})::float8"
    neg = f"(-({value_expr})::float8)"
    return (
        f"(CASE WHEN {v} > 0 AND {v} < 'Infinity'::float8 THEN {KEY_OFFSET} + {_fast_magnitude_key_sql(v)}"
        f" WHEN {v} < 0 AND {v} > '-Infinity'::float8 THEN -({KEY_OFFSET} + {_fast_magnitude_key_sql(neg)})"
        f" WHEN {v} = 0 THEN 0 END)::int"
    )


def key_value_sql(key_expr: str) -> str:
    """float8 expression: the representative value of a key (``sketch.value_for_key``); NULL for NULL.

    ``power(2, q)`` is exact for normal powers of two; below 2**-1022 the value is formed from a normal
    product and one final scaling so it rounds once, like Python's ``math.ldexp``.
    """
    m = f"(abs({key_expr}) - {KEY_OFFSET} - 1)"
    # Integer division truncates toward zero; shifting by a multiple of 35 makes it a floor division.
    shift = 1100
    binade = f"(({m} + {shift * BINS_PER_BINADE}) / {BINS_PER_BINADE} - {shift})"
    rep = f"({_REPRESENTATIVES_SQL})[{m} - {BINS_PER_BINADE} * {binade} + 1]"
    magnitude = (
        f"(CASE WHEN {binade} >= -1022 THEN {rep} * power(2::float8, {binade})"
        f" ELSE ({rep} * power(2::float8, {binade} + 64)) * '5.421010862427522e-20'::float8 END)"
    )
    return (
        f"(CASE WHEN {key_expr} > 0 THEN {magnitude} WHEN {key_expr} < 0 THEN -{magnitude}"
        f" WHEN {key_expr} = 0 THEN 0::float8 END)"
    )


def _collapsed_select(grouped: str, passthrough: list[str], max_bins_per_sign: int, counts_type: str) -> str:
    """Wrap a SELECT producing ``passthrough`` columns plus sketch arrays with the per-sign bin collapse.

    The collapse sits in the untaken branch of a CASE, so ordinary buckets (far below the limit) and buckets
    that kept their values (NULL sketch) never run its window function; a collapsing bucket runs it twice
    (keys, then counts), which only a pathological dynamic range causes.
    """
    cols = ", ".join(f"g.{c}" for c in passthrough)
    limit = max_bins_per_sign
    sign = "CASE WHEN u.k > 0 THEN 1 WHEN u.k < 0 THEN -1 ELSE 0 END"
    collapsed = f"""(
        SELECT CASE WHEN r.k < r.floor_k THEN r.floor_k ELSE r.k END AS k, sum(r.n)::{counts_type} AS n
        FROM (
            SELECT u.k, u.n, nth_value(u.k, {limit}) OVER (
                PARTITION BY {sign} ORDER BY u.k DESC
                ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS floor_k
            FROM unnest(g.sketch_keys, g.sketch_counts) AS u(k, n)
        ) AS r
        GROUP BY 1
    ) AS f"""  # noqa: S608
    small = f"g.sketch_keys IS NULL OR cardinality(g.sketch_keys) <= {limit}"
    keys = f"(SELECT array_agg(f.k ORDER BY f.k) FROM {collapsed})"  # noqa: S608
    counts = f"(SELECT array_agg(f.n ORDER BY f.k) FROM {collapsed})"  # noqa: S608
    return f"""SELECT {cols},
    CASE WHEN {small} THEN g.sketch_keys ELSE {keys} END AS sketch_keys,
    CASE WHEN {small} THEN g.sketch_counts ELSE {counts} END AS sketch_counts
FROM ({grouped}) AS g"""  # noqa: S608


def _keeps_values(exact_max: int) -> str:
    """Condition on a grouped row (``g``): it holds nothing but values (``g.only_values``, ``g.vals``), at most
    ``exact_max`` of them, so it keeps them instead of a sketch."""
    return f"coalesce(g.only_values AND cardinality(g.vals) <= {exact_max}, false)"


_SORTED_VALUES = "(SELECT array_agg(e.v ORDER BY e.v) FROM unnest(g.vals) AS e(v))"


def sketch_of_values_sql(values_expr: str) -> str:
    """SELECT of one row (keys int[], counts int[]): the uncollapsed sketch of a float8[] expression's finite
    values, what a bucket that keeps them would store otherwise (NULLs for no values)."""
    return f"""SELECT array_agg(b.k ORDER BY b.k) AS keys, array_agg(b.n ORDER BY b.k) AS counts
    FROM (SELECT {bin_key_sql("e.v")} AS k, count(*)::int AS n FROM unnest({values_expr}) AS e(v)
          WHERE {_FINITE_CHECK.format(v="e.v")} GROUP BY 1) AS b"""  # noqa: S608


def build_sketches_sql(
    *,
    source: str,
    bucket_expr: str,
    series_col: str = "series_id",
    value_col: str = "value",
    with_stats: bool = False,
    exact_max: int = EXACT_MAX_COUNT,
    max_bins_per_sign: int = MAX_BINS_PER_SIGN,
) -> str:
    """SELECT (series_id, bucket, [count, sum, min, max,] exact_values, sketch_keys, sketch_counts) from raw
    samples.

    One row per (series, bucket): a bucket of at most ``exact_max`` finite values keeps them
    (``exact_values``, ascending; NULL sketch), a larger one gets the sketch (NULL ``exact_values``).
    ``source`` is a table or a parenthesised filtered subquery (aliased ``s``), ``bucket_expr`` e.g.
    ``date_bin('1 minute', s.time, 'epoch')``. Non-finite values are skipped, so a bucket of only NaNs
    gets no row. ``with_stats`` adds count/sum/min/max of the finite values from the same scan (a sum
    saturates at the float8 maximum instead of raising: ``rollups.sums``); ``last`` is not included
    because an arg-max does not decompose per bin cheaply.
    """
    value = f"s.{value_col}"
    stats = f", count(*)::bigint AS count, {sum_sql(value)} AS sum, min({value}) AS min, max({value}) AS max"
    grouped = f"""SELECT s.{series_col} AS series_id, {bucket_expr} AS bucket{stats if with_stats else ""},
        array_agg({value}) AS vals, true AS only_values
    FROM {source} AS s
    WHERE {_FINITE_CHECK.format(v=value)}
    GROUP BY 1, 2"""  # noqa: S608
    passthrough = ["series_id", "bucket", *(["count", "sum", "min", "max"] if with_stats else [])]
    cols = ", ".join(f"g.{c}" for c in passthrough)
    # Bin keys are computed only for the buckets that get a sketch: most of a 1m rollup's cost otherwise.
    chosen = f"""SELECT {cols}, r.exact_values, r.sketch_keys, r.sketch_counts
FROM ({grouped}) AS g
CROSS JOIN LATERAL (
    SELECT {_SORTED_VALUES} AS exact_values, NULL::int[] AS sketch_keys, NULL::int[] AS sketch_counts
    WHERE {_keeps_values(exact_max)}
    UNION ALL
    SELECT NULL, b.keys, b.counts FROM ({sketch_of_values_sql("g.vals")}) AS b WHERE NOT {_keeps_values(exact_max)}
) AS r"""  # noqa: S608
    return _collapsed_select(chosen, [*passthrough, "exact_values"], max_bins_per_sign, "int")


def bucket_entries_sql(row: str, alias: str = "u", *, keys_col: str = "sketch_keys",
                       counts_col: str = "sketch_counts", exact_col: str = "exact_values") -> str:
    """FROM item (``CROSS JOIN LATERAL``) of a bucket row's entries as ``alias(k, n, v)``: one unnest zips the
    three arrays (padding the shorter with NULLs), so a sketch gives (key, count, NULL) per bin and a bucket
    that kept its values (NULL, NULL, value) per value. ``entry_key_sql``/``entry_count_sql`` read either."""
    return f"unnest({row}.{keys_col}, {row}.{counts_col}, {row}.{exact_col}) AS {alias}(k, n, v)"


def entry_key_sql(alias: str = "u") -> str:
    """The bin key of a ``bucket_entries_sql`` entry: its own, or its value's."""
    return f"coalesce({alias}.k, {bin_key_sql(f'{alias}.v')})"


def entry_count_sql(alias: str = "u") -> str:
    """How many samples a ``bucket_entries_sql`` entry stands for."""
    return f"coalesce({alias}.n, 1)"


def merge_sketches_sql(
    *,
    source: str,
    group_by: Mapping[str, str],
    keys_col: str = "sketch_keys",
    counts_col: str = "sketch_counts",
    exact_col: str = "exact_values",
    counts_type: str = "int",
    exact_max: int = EXACT_MAX_COUNT,
    max_bins_per_sign: int = MAX_BINS_PER_SIGN,
) -> str:
    """SELECT (<group_by aliases>, exact_values, sketch_keys, sketch_counts) merging the buckets of many rows.

    ``group_by`` maps output alias to an expression over ``source`` (aliased ``s``), e.g.
    ``{"series_id": "s.series_id", "bucket": "date_bin('5 minutes', s.bucket, 'epoch')"}`` to re-roll
    1m -> 5m, or ``{"series_id": "s.series_id"}`` to answer a range query. A group whose rows all kept
    their values, at most ``exact_max`` in all, keeps them; otherwise the values are binned and merged with
    the sketches bin by bin (exact: the result is the sketch of the union). Use ``counts_type="bigint"``
    for query-time merges whose totals may pass 2**31; storage re-rolls keep ``int``.
    """
    if not group_by:
        raise ValueError("group_by needs at least one column")
    if counts_type not in ("int", "bigint"):
        raise ValueError(f"counts_type must be int or bigint, got {counts_type!r}")
    aliases = list(group_by)
    select_groups = ", ".join(f"{expr} AS {alias}" for alias, expr in group_by.items())
    positions = ", ".join(str(i + 1) for i in range(len(aliases)))
    outer_groups = ", ".join(f"m.{a}" for a in aliases)
    # One pass over every entry groups by bin (the merged sketch; kept values binned here) and by group alone
    # (its values, and whether it holds nothing else): grouping sets.
    key = entry_key_sql("u")
    grouped = f"""SELECT {outer_groups},
        max(m.vals) FILTER (WHERE m.whole) AS vals, bool_and(m.only_values) FILTER (WHERE m.whole) AS only_values,
        array_agg(m.k ORDER BY m.k) FILTER (WHERE NOT m.whole) AS ks,
        array_agg(m.n::{counts_type} ORDER BY m.k) FILTER (WHERE NOT m.whole) AS ns
    FROM (
        SELECT {select_groups}, {key} AS k, GROUPING({key}) = 1 AS whole, sum({entry_count_sql("u")}) AS n,
               array_agg(u.v) FILTER (WHERE u.v IS NOT NULL) AS vals, bool_and(u.v IS NOT NULL) AS only_values
        FROM {source} AS s
        CROSS JOIN LATERAL {bucket_entries_sql("s", keys_col=keys_col, counts_col=counts_col, exact_col=exact_col)}
        GROUP BY GROUPING SETS (({positions}, {len(aliases) + 1}), ({positions}))
    ) AS m
    GROUP BY {outer_groups}"""  # noqa: S608
    keeps = _keeps_values(exact_max)
    chosen = f"""SELECT {", ".join(f"g.{a}" for a in aliases)},
        CASE WHEN {keeps} THEN {_SORTED_VALUES} END AS exact_values,
        CASE WHEN NOT {keeps} THEN g.ks END AS sketch_keys, CASE WHEN NOT {keeps} THEN g.ns END AS sketch_counts
    FROM ({grouped}) AS g"""  # noqa: S608
    return _collapsed_select(chosen, [*aliases, "exact_values"], max_bins_per_sign, counts_type)


def quantiles_sql(keys_expr: str, counts_expr: str, exact_expr: str, qs_expr: str) -> str:
    """float8[] scalar expression: the quantiles of a bucket (or a merge) for every q, server-side.

    ``qs_expr`` is a float8[] expression or parameter (e.g. ``%(qs)s``) of values in [0, 1]. Same rank
    as the Python side and as percentile_disc: the ``max(ceil(q * n), 1)``-th smallest value, picked from
    ``exact_expr`` (sorted values) when the bucket kept them, else the first key whose cumulative count
    reaches that rank (``QuantileSketch.quantiles``). The result always has one element per q (NULL for an
    empty or NULL sketch), so positions never shift.
    """
    exact = f"({exact_expr})[greatest(ceil(x.q * cardinality({exact_expr})), 1)::int]"
    return f"""(SELECT array_agg(CASE WHEN {exact_expr} IS NOT NULL THEN {exact} ELSE {key_value_sql("x.k")} END
                     ORDER BY x.i)
    FROM (
        SELECT t.i, t.q, min(c.k) AS k
        FROM (
            SELECT u.k, sum(u.n) OVER (ORDER BY u.k) AS seen, sum(u.n) OVER () AS total
            FROM unnest({keys_expr}, {counts_expr}) AS u(k, n)
        ) AS c
        RIGHT JOIN unnest(({qs_expr})::float8[]) WITH ORDINALITY AS t(q, i)
            ON c.seen >= greatest(ceil(t.q * c.total::float8), 1)
        GROUP BY t.i, t.q
    ) AS x)"""  # noqa: S608


def quantile_sql(keys_expr: str, counts_expr: str, exact_expr: str, q_expr: str) -> str:
    """float8 scalar expression: ``quantiles_sql`` for one q; NULL for an empty bucket."""
    return f"({quantiles_sql(keys_expr, counts_expr, exact_expr, f'ARRAY[({q_expr})::float8]')})[1]"
