"""The codec of compressed raw chunks (and, array by array, of compressed rollup chunks): one series'
timestamps and values, each array compressed with pcodec (``pcodec`` on PyPI). Chosen by measurement
(bench/storage.py, bench/README.md "Compressed raw partitions"): it finds regular timestamps
(delta-of-delta) and whole-number or decimal-multiple floats on its own, and round-trips every float64 bit
pattern -- NaN payloads, -0.0, subnormals, +-DBL_MAX -- because it compresses the IEEE bits losslessly
rather than the numbers.

Timestamps are integer microseconds since the Unix epoch (PostgreSQL's timestamptz resolution)."""

from __future__ import annotations

import numpy as np
from pcodec import ChunkConfig, standalone

# Level 8 (pcodec's default): 6 % smaller than level 4 on a day of TSBS values, level 12 no smaller.
_CONFIG = ChunkConfig(compression_level=8)


def encode_ints(ints: np.ndarray) -> bytes:
    """Any int64 array (timestamps, counts, delta-coded sketch keys of rollup chunks)."""
    return bytes(standalone.simple_compress(np.ascontiguousarray(ints, dtype=np.int64), _CONFIG))


def encode_times(times_us: np.ndarray) -> bytes:
    return encode_ints(times_us)


def encode_values(values: np.ndarray) -> bytes:
    return bytes(standalone.simple_compress(np.ascontiguousarray(values, dtype=np.float64), _CONFIG))


def decode_ints(blob: bytes) -> np.ndarray:
    return decode_times(blob)


def decode_times(blob: bytes) -> np.ndarray:
    out = standalone.simple_decompress(bytes(blob))
    if out is None:  # an empty array encodes to a header that decodes to nothing
        return np.empty(0, dtype=np.int64)
    return out.astype(np.int64, copy=False)


def decode_values(blob: bytes) -> np.ndarray:
    out = standalone.simple_decompress(bytes(blob))
    if out is None:
        return np.empty(0, dtype=np.float64)
    return out.astype(np.float64, copy=False)
