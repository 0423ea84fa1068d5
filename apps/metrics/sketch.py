"""Mergeable quantile sketch (DDSketch family) stored with every metric rollup bucket.

Why this shape:

* Rollups are computed in PostgreSQL (``INSERT ... SELECT ... GROUP BY``), so a value's bin key must be
  computable in plain SQL and give *exactly* the key this module gives. The key is therefore defined by
  the IEEE-754 bit pattern of the float (exponent field + a 35-entry table of mantissa edges), not by
  ``log()``: libm ``log`` may differ by an ulp between the app host and the database host, and one ulp
  at a bin edge changes the key. Bit patterns are identical everywhere (``float8send`` in SQL, ``struct``
  here). ``apps/metrics/sketch_sql.py`` is the SQL twin of :func:`key_for_value`; for speed it uses
  ``ln()`` when a value is provably far from an edge and the bit pattern otherwise.
* To make a per-binade table possible, gamma is ``2 ** (1/35)`` instead of ``(1 + 0.01) / (1 - 0.01)``:
  35 bins per power of two is the smallest integer that keeps the relative accuracy below 1 %
  (``RELATIVE_ACCURACY`` = 0.0099018, computed exactly below).
* Storage is two parallel arrays, ``sketch_keys int[]`` and ``sketch_counts int[]`` sorted by key
  (see :meth:`QuantileSketch.to_arrays`), because PostgreSQL merges them with ``unnest`` + ``sum`` +
  ``array_agg`` and no extension; they cost 24 bytes per array plus 8 bytes per bin (~85 bytes for a
  6-sample gauge bucket). ``bench/sketch.py`` measured jsonb and packed alternatives.
* A bucket of at most ``EXACT_MAX_COUNT`` values needs no sketch at all: rollups keep such a bucket's values
  (``exact_values float8[]``, 24 + 8 bytes each) and its quantiles are exact (``exact_quantiles``); merges
  bin the values only once the union outgrows that (``sketch_sql``), so the bound below holds everywhere.

Encoded keys (one signed int per bin, monotone in the value so that ascending keys are ascending
values): ``0`` is the zero bin; a positive value ``v`` maps to ``KEY_OFFSET + magnitude_key(v)`` and a
negative one to ``-(KEY_OFFSET + magnitude_key(-v))`` (the mirrored store). ``KEY_OFFSET`` makes every
non-zero key's magnitude >= 1 so that the three ranges never overlap, even for subnormals.

Rank definition: ``quantile(q)`` estimates the ``max(ceil(q * n), 1)``-th smallest value (1-based),
which is what PostgreSQL ``percentile_disc(q)`` returns, so sketches can be checked against raw data.

Error bound: for every q the estimate ``e`` of the exact value ``x`` at that rank satisfies
``|e - x| <= RELATIVE_ACCURACY * |x|`` (zero is exact; subnormals add at most ``2**-1075`` absolute
rounding) unless the rank falls into a collapsed bin. Collapse happens only when one sign holds more than
``MAX_BINS_PER_SIGN`` distinct bins (a dynamic range above 2**58 within one bucket): the lowest-valued
bins of that sign fold into the lowest kept bin, so upper quantiles (p50/p95/p99) keep the bound.
"""

from __future__ import annotations

import math
import struct
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from fractions import Fraction
from itertools import pairwise

TARGET_RELATIVE_ACCURACY = 0.01
# ceil(ln 2 / ln((1 + a) / (1 - a))) for a = 0.01 is 35: the smallest whole number of bins per binade
# whose accuracy is at least as good as the 1 % target.
BINS_PER_BINADE = 35
GAMMA = 2.0 ** (1.0 / BINS_PER_BINADE)
# Magnitude keys run from -37590 (2**-1074, smallest subnormal) to 35840 (max float); the offset keeps
# every non-zero encoded key away from 0 and from the other sign.
KEY_OFFSET = 40000
MIN_MAGNITUDE_KEY = -1074 * BINS_PER_BINADE
MAX_MAGNITUDE_KEY = 1024 * BINS_PER_BINADE
# 2048 bins per sign cover 2**58 of dynamic range: real metrics never collapse, pathological ones stay
# bounded at ~32 KiB per sketch.
MAX_BINS_PER_SIGN = 2048
# A rollup bucket of at most this many values keeps the values themselves (``exact_values float8[]``, sorted)
# instead of a sketch: a minute scraped every 5 to 60 s. Its percentiles are then exact, and it costs
# 24 + 8n bytes against the sketch's 48 + 8 per bin (bins <= n). Merges keep values while every source is
# exact and the union stays this small, and fold them into bins beyond (``sketch_sql``).
EXACT_MAX_COUNT = 12

_MANTISSA_BITS = 52
_MANTISSA_MASK = (1 << _MANTISSA_BITS) - 1
_EXPONENT_BIAS = 1023
_SMALLEST_NORMAL = 2.0**-1022
# Scaling a subnormal by 2**64 is exact and makes it normal, so subnormals reuse the normal code path.
_SUBNORMAL_SCALE_EXP = 64
_SUBNORMAL_SCALE = 2.0**_SUBNORMAL_SCALE_EXP


def _nearest_mantissa(i: int) -> int:
    """Mantissa field of the float nearest to 2**(i/35), found with exact integer arithmetic.

    Integer roots make the table independent of any libm, so it can never drift between releases.
    """
    target = 1 << (_MANTISSA_BITS * BINS_PER_BINADE + i)  # (2**52 * 2**(i/35)) ** 35
    root = int(2.0 ** (_MANTISSA_BITS + i / BINS_PER_BINADE))
    while root**BINS_PER_BINADE > target:
        root -= 1
    while (root + 1) ** BINS_PER_BINADE <= target:
        root += 1
    # Round to nearest: compare (root + 1/2) ** 35 with the target, scaled by 2**35 to stay integral.
    if (2 * root + 1) ** BINS_PER_BINADE <= target << BINS_PER_BINADE:
        root += 1
    return root - (1 << _MANTISSA_BITS)


# MANTISSA_THRESHOLDS[i] is the mantissa field of bin edge 2**(i/35) inside every binade (index 0 is 1.0).
MANTISSA_THRESHOLDS: tuple[int, ...] = tuple(_nearest_mantissa(i) for i in range(BINS_PER_BINADE))
_EDGES: tuple[Fraction, ...] = (
    *(Fraction((1 << _MANTISSA_BITS) + m, 1 << _MANTISSA_BITS) for m in MANTISSA_THRESHOLDS),
    Fraction(2),
)
# Bin r (1..35) of a binade covers (edge[r-1], edge[r]]; 2LU/(L+U) has the same relative error to both
# ends, which is the smallest worst-case error a single representative can have.
REPRESENTATIVES: tuple[float, ...] = tuple(float(2 * lo * hi / (lo + hi)) for lo, hi in pairwise(_EDGES))


def _relative_accuracy() -> float:
    """Exact worst relative error of a representative over its bin, rounded up to the next float."""
    worst = Fraction(0)
    for rep, (lo, hi) in zip(REPRESENTATIVES, pairwise(_EDGES), strict=True):
        exact = Fraction(rep)
        worst = max(worst, (exact - lo) / lo, (hi - exact) / hi)
    return math.nextafter(float(worst), math.inf)


RELATIVE_ACCURACY = _relative_accuracy()


def _float_bits(value: float) -> int:
    return int(struct.unpack("<q", struct.pack("<d", value))[0])


def magnitude_key(value: float) -> int:
    """Bin of a positive finite float: k such that value lies in (GAMMA**(k-1), GAMMA**k] (table edges)."""
    if value < _SMALLEST_NORMAL:
        return magnitude_key(value * _SUBNORMAL_SCALE) - _SUBNORMAL_SCALE_EXP * BINS_PER_BINADE
    bits = _float_bits(value)
    exponent = (bits >> _MANTISSA_BITS) - _EXPONENT_BIAS
    # Number of edges strictly below the mantissa: an exact edge belongs to the bin it closes.
    return exponent * BINS_PER_BINADE + bisect_left(MANTISSA_THRESHOLDS, bits & _MANTISSA_MASK)


def key_for_value(value: float) -> int:
    """Encoded, order-preserving bin key of a finite float (0 for zero, mirrored for negatives)."""
    if not math.isfinite(value):
        raise ValueError(f"sketch values must be finite, got {value!r}")
    if value > 0:
        return KEY_OFFSET + magnitude_key(value)
    if value < 0:
        return -(KEY_OFFSET + magnitude_key(-value))
    return 0


def value_for_key(key: int) -> float:
    """Representative value of an encoded key; within RELATIVE_ACCURACY of every value in the bin."""
    if key == 0:
        return 0.0
    magnitude = abs(key) - KEY_OFFSET
    if not MIN_MAGNITUDE_KEY <= magnitude <= MAX_MAGNITUDE_KEY:
        raise ValueError(f"not a sketch key: {key}")
    binade, index = divmod(magnitude - 1, BINS_PER_BINADE)
    value = math.ldexp(REPRESENTATIVES[index], binade)
    return value if key > 0 else -value


def _is_key(key: int) -> bool:
    return key == 0 or MIN_MAGNITUDE_KEY <= abs(key) - KEY_OFFSET <= MAX_MAGNITUDE_KEY


def collapse_bins(bins: dict[int, int], max_bins_per_sign: int) -> None:
    """Fold, per sign, every bin below the ``max_bins_per_sign`` highest-valued ones into the lowest kept.

    The result depends only on the multiset of added values, never on the order of adds and merges,
    which is what lets SQL (collapsing once per GROUP BY) and Python (collapsing lazily) agree.
    """
    if len(bins) <= max_bins_per_sign:
        return  # the common case: no sign can be over the limit
    for sign in (1, -1):
        keys = sorted((k for k in bins if k * sign > 0), reverse=True)
        if len(keys) <= max_bins_per_sign:
            continue
        floor_key = keys[max_bins_per_sign - 1]
        folded = sum(bins.pop(k) for k in keys[max_bins_per_sign:])
        bins[floor_key] += folded


class QuantileSketch:
    """Counts per log-spaced bin; answers quantiles within RELATIVE_ACCURACY and merges losslessly.

    Collapse is applied lazily (when the bin dict grows past a slack bound, and before every read),
    which gives the same result as collapsing after each add because collapse is order-independent.
    """

    __slots__ = ("_bins", "_count", "max_bins_per_sign")

    def __init__(self, *, max_bins_per_sign: int = MAX_BINS_PER_SIGN) -> None:
        if max_bins_per_sign < 1:
            raise ValueError("max_bins_per_sign must be at least 1")
        self.max_bins_per_sign = max_bins_per_sign
        self._bins: dict[int, int] = {}
        self._count = 0

    @property
    def count(self) -> int:
        """Number of values added (including merged ones)."""
        return self._count

    def add(self, value: float, count: int = 1) -> None:
        """Record ``count`` occurrences of a finite ``value``; NaN and infinities raise ValueError."""
        if count < 0 or int(count) != count:
            raise ValueError(f"count must be a non-negative integer, got {count!r}")
        key = key_for_value(value)
        if count == 0:
            return
        self._bins[key] = self._bins.get(key, 0) + int(count)
        self._count += int(count)
        self._maybe_collapse()

    def update(self, values: Iterable[float]) -> None:
        """Add every value of an iterable once."""
        for value in values:
            self.add(value)

    def merge(self, other: QuantileSketch) -> None:
        """Add all of ``other``'s counts to this sketch (in place); the result equals the union's sketch."""
        if other.max_bins_per_sign != self.max_bins_per_sign:
            raise ValueError("cannot merge sketches with different max_bins_per_sign")
        for key, count in other._bins.items():
            self._bins[key] = self._bins.get(key, 0) + count
        self._count += other._count
        self._maybe_collapse()

    def quantile(self, q: float) -> float | None:
        """Estimate of the max(ceil(q*n), 1)-th smallest value (percentile_disc's rank); None if empty."""
        return self.quantiles([q])[0]

    def quantiles(self, qs: Sequence[float]) -> list[float | None]:
        """``quantile(q)`` for every q, in one pass over the sorted bins (dashboards ask for several)."""
        if any(not 0.0 <= q <= 1.0 for q in qs):
            raise ValueError(f"q must be within [0, 1], got {list(qs)!r}")
        if self._count == 0:
            return [None] * len(qs)
        ranks = sorted((max(math.ceil(q * self._count), 1), i) for i, q in enumerate(qs))
        result: list[float | None] = [None] * len(qs)
        keys, counts = self.to_arrays()
        seen, position = 0, 0
        for key, count in zip(keys, counts, strict=True):
            seen += count
            while position < len(ranks) and ranks[position][0] <= seen:
                result[ranks[position][1]] = value_for_key(key)
                position += 1
        return result

    def to_arrays(self) -> tuple[list[int], list[int]]:
        """``(keys, counts)`` sorted by key: the ``sketch_keys`` / ``sketch_counts`` column values."""
        collapse_bins(self._bins, self.max_bins_per_sign)
        keys = sorted(self._bins)
        return keys, [self._bins[k] for k in keys]

    @classmethod
    def from_arrays(
        cls, keys: Sequence[int], counts: Sequence[int], *, max_bins_per_sign: int = MAX_BINS_PER_SIGN
    ) -> QuantileSketch:
        """Rebuild a sketch from stored arrays; rejects arrays that no sketch could have produced."""
        if len(keys) != len(counts):
            raise ValueError("sketch keys and counts differ in length")
        sketch = cls(max_bins_per_sign=max_bins_per_sign)
        previous: int | None = None
        for key, count in zip(keys, counts, strict=True):
            if previous is not None and key <= previous:
                raise ValueError("sketch keys must be strictly increasing")
            if not _is_key(key):
                raise ValueError(f"not a sketch key: {key}")
            if count <= 0:
                raise ValueError(f"sketch counts must be positive, got {count}")
            sketch._bins[key] = int(count)
            sketch._count += int(count)
            previous = key
        collapse_bins(sketch._bins, max_bins_per_sign)
        return sketch

    @classmethod
    def of(cls, values: Iterable[float], *, max_bins_per_sign: int = MAX_BINS_PER_SIGN) -> QuantileSketch:
        """Sketch of an iterable of values (convenience for tests and Python-side ingest)."""
        sketch = cls(max_bins_per_sign=max_bins_per_sign)
        sketch.update(values)
        return sketch

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, QuantileSketch):
            return NotImplemented
        return self.max_bins_per_sign == other.max_bins_per_sign and self.to_arrays() == other.to_arrays()

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"QuantileSketch(count={self._count}, bins={len(self._bins)})"

    def _maybe_collapse(self) -> None:
        # Slack of 2x per sign keeps collapse amortised O(1) per add while bounding memory.
        if len(self._bins) > 4 * self.max_bins_per_sign + 1:
            collapse_bins(self._bins, self.max_bins_per_sign)


def exact_quantiles(values: Sequence[float], qs: Sequence[float]) -> list[float | None]:
    """The max(ceil(q*n), 1)-th smallest of ``values`` for every q: what a bucket that kept its values
    answers (the same rank as ``QuantileSketch.quantiles`` and ``percentile_disc``, without its error)."""
    ordered = sorted(values)
    if not ordered:
        return [None] * len(qs)
    return [ordered[max(math.ceil(q * len(ordered)), 1) - 1] for q in qs]
