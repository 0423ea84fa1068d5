"""Properties of the pure-Python quantile sketch: accuracy, mergeability, storage round trip, collapse."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.metrics.sketch import (
    BINS_PER_BINADE,
    GAMMA,
    KEY_OFFSET,
    MANTISSA_THRESHOLDS,
    MAX_BINS_PER_SIGN,
    MAX_MAGNITUDE_KEY,
    MIN_MAGNITUDE_KEY,
    RELATIVE_ACCURACY,
    TARGET_RELATIVE_ACCURACY,
    QuantileSketch,
    key_for_value,
    value_for_key,
)

QUANTILES = (0.5, 0.95, 0.99)
SMALLEST_SUBNORMAL = 5e-324
SMALLEST_NORMAL = 2.2250738585072014e-308
# Subnormal estimates are rounded to the 2**-1074 grid, which adds up to half a grid step.
HALF_SUBNORMAL_STEP = 2.0**-1075

finite = st.floats(allow_nan=False, allow_infinity=False)
metric_values = st.one_of(
    st.floats(min_value=-1e9, max_value=1e9, allow_nan=False),
    st.sampled_from([0.0, -0.0, 1.0, 100.0, -1.0]),
)


def exact_quantile(values: list[float], q: float) -> float:
    """The max(ceil(q*n), 1)-th smallest value: PostgreSQL percentile_disc, the sketch's documented rank."""
    ordered = sorted(values)
    return ordered[max(math.ceil(q * len(ordered)), 1) - 1]


def assert_within_accuracy(estimate: float | None, exact: float) -> None:
    assert estimate is not None
    assert abs(estimate - exact) <= RELATIVE_ACCURACY * abs(exact) + HALF_SUBNORMAL_STEP, (estimate, exact)


def edge(index: int, binade: int) -> float:
    """Bin edge 2**(index/35) * 2**binade exactly as the key table defines it."""
    return math.ldexp(1.0 + MANTISSA_THRESHOLDS[index] / 2**52, binade)


def test_accuracy_constants_meet_the_one_percent_target():
    assert RELATIVE_ACCURACY < TARGET_RELATIVE_ACCURACY
    assert GAMMA <= (1 + TARGET_RELATIVE_ACCURACY) / (1 - TARGET_RELATIVE_ACCURACY)
    assert len(MANTISSA_THRESHOLDS) == BINS_PER_BINADE
    assert list(MANTISSA_THRESHOLDS) == sorted(set(MANTISSA_THRESHOLDS))
    assert MANTISSA_THRESHOLDS[0] == 0


def test_thresholds_are_the_floats_nearest_to_powers_of_gamma():
    for index in range(1, BINS_PER_BINADE):
        ideal = 2.0 ** (index / BINS_PER_BINADE)
        assert abs(edge(index, 0) - ideal) <= 2 * math.ulp(ideal)


@pytest.mark.parametrize(
    ("value", "key"),
    [
        (0.0, 0),
        (-0.0, 0),
        (1.0, KEY_OFFSET),
        (2.0, KEY_OFFSET + BINS_PER_BINADE),
        (0.5, KEY_OFFSET - BINS_PER_BINADE),
        (math.nextafter(1.0, 2.0), KEY_OFFSET + 1),
        (math.nextafter(1.0, 0.0), KEY_OFFSET),
        (SMALLEST_SUBNORMAL, KEY_OFFSET + MIN_MAGNITUDE_KEY),
        (-SMALLEST_SUBNORMAL, -(KEY_OFFSET + MIN_MAGNITUDE_KEY)),
        (SMALLEST_NORMAL, KEY_OFFSET - 1022 * BINS_PER_BINADE),
        (1.7976931348623157e308, KEY_OFFSET + MAX_MAGNITUDE_KEY),
        (-1.0, -KEY_OFFSET),
    ],
)
def test_key_for_value_at_documented_points(value, key):
    assert key_for_value(value) == key


@pytest.mark.parametrize("binade", [-1022, -1, 0, 1, 52, 1023])
@pytest.mark.parametrize("index", range(1, BINS_PER_BINADE))
def test_an_exact_edge_closes_its_bin_and_the_next_float_opens_the_next(index, binade):
    value = edge(index, binade)
    assert key_for_value(value) == KEY_OFFSET + BINS_PER_BINADE * binade + index
    assert key_for_value(math.nextafter(value, math.inf)) == KEY_OFFSET + BINS_PER_BINADE * binade + index + 1


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_values_are_rejected(value):
    with pytest.raises(ValueError, match="finite"):
        QuantileSketch().add(value)


@given(finite, finite)
def test_keys_preserve_order(a, b):
    low, high = sorted((a, b))
    assert key_for_value(low) <= key_for_value(high)


@given(finite)
def test_negative_keys_mirror_positive_keys(value):
    assert key_for_value(-value) == -key_for_value(value)


@given(finite)
def test_representative_is_within_relative_accuracy(value):
    estimate = value_for_key(key_for_value(value))
    assert_within_accuracy(estimate, value)
    assert key_for_value(estimate) == key_for_value(value) or abs(value) < SMALLEST_NORMAL


@given(st.lists(metric_values, min_size=1, max_size=300), st.sampled_from(QUANTILES))
def test_quantiles_are_within_relative_accuracy_of_exact(values, q):
    assert_within_accuracy(QuantileSketch.of(values).quantile(q), exact_quantile(values, q))


@given(st.lists(finite, min_size=1, max_size=100), st.floats(min_value=0.0, max_value=1.0))
def test_any_quantile_of_any_floats_is_within_relative_accuracy(values, q):
    assert_within_accuracy(QuantileSketch.of(values).quantile(q), exact_quantile(values, q))


def test_quantiles_of_a_large_lognormal_sample_are_within_one_percent():
    rng = random.Random(7)
    values = [rng.lognormvariate(3.0, 1.5) for _ in range(50_000)]
    sketch = QuantileSketch.of(values)
    for q in (0.0, *QUANTILES, 1.0):
        assert_within_accuracy(sketch.quantile(q), exact_quantile(values, q))


def test_zero_and_mixed_signs_keep_their_order():
    sketch = QuantileSketch.of([-5.0, -1.0, 0.0, 0.0, 3.0])
    assert [sketch.quantile(q) for q in (0.2, 0.4, 0.6, 0.8)] == [
        value_for_key(key_for_value(-5.0)),
        value_for_key(key_for_value(-1.0)),
        0.0,
        0.0,
    ]
    assert sketch.quantile(1.0) == value_for_key(key_for_value(3.0))


def test_empty_sketch_has_no_quantile():
    sketch = QuantileSketch()
    assert sketch.count == 0
    assert sketch.quantile(0.5) is None
    assert sketch.to_arrays() == ([], [])


@given(
    st.lists(metric_values, min_size=1, max_size=100),
    st.lists(st.floats(min_value=0.0, max_value=1.0), max_size=6),
)
def test_quantiles_in_one_pass_equal_single_quantiles(values, qs):
    sketch = QuantileSketch.of(values)
    assert sketch.quantiles(qs) == [sketch.quantile(q) for q in qs]
    assert QuantileSketch().quantiles(qs) == [None] * len(qs)


@pytest.mark.parametrize("q", [-0.01, 1.01, math.nan])
def test_quantile_outside_unit_interval_is_rejected(q):
    with pytest.raises(ValueError, match="q must be"):
        QuantileSketch.of([1.0]).quantile(q)


def test_add_with_count_equals_repeated_adds():
    weighted = QuantileSketch()
    weighted.add(4.2, count=3)
    weighted.add(7.0, count=0)
    assert weighted == QuantileSketch.of([4.2, 4.2, 4.2])
    assert weighted.count == 3
    with pytest.raises(ValueError, match="count"):
        weighted.add(1.0, count=-1)


@given(st.lists(st.tuples(metric_values, st.integers(min_value=0, max_value=4)), max_size=200))
def test_merging_sketches_of_a_partition_equals_the_sketch_of_the_union(tagged):
    parts = [QuantileSketch() for _ in range(5)]
    for value, part in tagged:
        parts[part].add(value)
    merged = QuantileSketch()
    for part in parts:
        merged.merge(part)
    assert merged == QuantileSketch.of(value for value, _ in tagged)
    assert merged.count == len(tagged)


@given(st.lists(metric_values, max_size=200))
def test_storage_arrays_round_trip(values):
    sketch = QuantileSketch.of(values)
    keys, counts = sketch.to_arrays()
    assert keys == sorted(set(keys))
    assert all(count > 0 for count in counts)
    assert all(-(2**31) < key < 2**31 for key in keys)  # fits sketch_keys int[]
    restored = QuantileSketch.from_arrays(keys, counts)
    assert restored == sketch
    assert restored.count == sketch.count
    for q in QUANTILES:
        assert restored.quantile(q) == sketch.quantile(q)


@pytest.mark.parametrize(
    ("keys", "counts", "message"),
    [
        ([1], [], "length"),
        ([KEY_OFFSET + 2, KEY_OFFSET + 1], [1, 1], "increasing"),
        ([KEY_OFFSET, KEY_OFFSET], [1, 1], "increasing"),
        ([7], [1], "not a sketch key"),
        ([KEY_OFFSET], [0], "positive"),
    ],
)
def test_from_arrays_rejects_arrays_no_sketch_produces(keys, counts, message):
    with pytest.raises(ValueError, match=message):
        QuantileSketch.from_arrays(keys, counts)


def test_merging_sketches_with_different_bin_limits_is_rejected():
    with pytest.raises(ValueError, match="max_bins_per_sign"):
        QuantileSketch().merge(QuantileSketch(max_bins_per_sign=8))


def test_collapse_bounds_bins_per_sign_and_keeps_upper_quantiles():
    # 200 binades of dynamic range on each sign: far beyond 2048 bins per sign.
    values = [2.0**e * 1.3 for e in range(-100, 100) for _ in range(3)] + [
        -(2.0**e) for e in range(-100, 100)
    ]
    values += [2.0**e * m for e in range(-20, 20) for m in (1.1, 1.5, 1.9)]
    sketch = QuantileSketch.of(values)
    keys, _ = sketch.to_arrays()
    assert sum(1 for k in keys if k > 0) <= MAX_BINS_PER_SIGN
    assert sum(1 for k in keys if k < 0) <= MAX_BINS_PER_SIGN
    assert sketch.count == len(values)
    for q in QUANTILES:
        assert_within_accuracy(sketch.quantile(q), exact_quantile(values, q))


@settings(max_examples=200)
@given(
    st.lists(st.floats(min_value=-1e30, max_value=1e30, allow_nan=False), min_size=1, max_size=200),
    st.integers(min_value=1, max_value=6),
    st.sampled_from(QUANTILES),
)
def test_collapse_keeps_quantiles_above_the_lowest_kept_bin_within_accuracy(values, limit, q):
    sketch = QuantileSketch.of(values, max_bins_per_sign=limit)
    keys, _ = sketch.to_arrays()
    for sign in (1, -1):
        signed = sorted({key_for_value(v) for v in values if v * sign > 0}, reverse=True)
        assert sum(1 for k in keys if k * sign > 0) == min(len(signed), limit)
    exact = exact_quantile(values, q)
    lowest_kept = min((k for k in keys if k * math.copysign(1, exact) > 0), default=None)
    if exact == 0 or (lowest_kept is not None and key_for_value(exact) >= lowest_kept):
        assert_within_accuracy(sketch.quantile(q), exact)
    else:
        # Folded values are reported at their sign's lowest kept bin: an overestimate, never an under.
        estimate = sketch.quantile(q)
        assert estimate is not None and estimate >= exact - RELATIVE_ACCURACY * abs(exact)


@given(
    st.lists(st.tuples(st.floats(min_value=-1e30, max_value=1e30, allow_nan=False), st.booleans())),
    st.integers(min_value=1, max_value=6),
)
def test_collapsed_merge_equals_collapsed_union(tagged, limit):
    left = QuantileSketch.of((v for v, side in tagged if side), max_bins_per_sign=limit)
    right = QuantileSketch.of((v for v, side in tagged if not side), max_bins_per_sign=limit)
    left.merge(right)
    assert left == QuantileSketch.of((v for v, _ in tagged), max_bins_per_sign=limit)


def test_memory_stays_bounded_while_adding_a_huge_range():
    sketch = QuantileSketch(max_bins_per_sign=16)
    for exponent in range(-500, 500):
        sketch.add(2.0**exponent)
        assert len(sketch._bins) <= 4 * 16 + 1
    assert len(sketch.to_arrays()[0]) == 16
