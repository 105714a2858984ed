"""Streaming statistics: exact moments and threshold counts over batches, and deterministic
hash-selected samples for quantiles, so a split of millions of rows never sits in memory.

Moments are merged with Chan et al.'s pairwise update (float64), so the result does not depend
on batch boundaries beyond rounding. The sample keeps a row when a salted hash of its
``task_id`` falls below a fraction fixed from the split's row count (footers only): all rows
below the cap (exact quantiles), a uniform deterministic subset above.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

PERCENTILES = (5, 25, 50, 75, 95)

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _salt64(salt: str) -> np.uint64:
    return np.uint64(int.from_bytes(hashlib.blake2b(salt.encode(), digest_size=8).digest(), "little"))


def hash_unit_array(keys: np.ndarray, salt: str) -> np.ndarray:
    """Uniform [0, 1) per int64 key from a salted splitmix64 finaliser (vectorised, stable)."""
    z = np.asarray(keys).astype(np.int64).view(np.uint64) ^ _salt64(salt)
    with np.errstate(over="ignore"):
        z = z + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(2**53)


def hash64_strings(values: list) -> np.ndarray:
    """uint64 blake2b hash of each string (None -> 0); for set operations on millions of ids."""
    out = np.empty(len(values), dtype=np.uint64)
    for i, v in enumerate(values):
        out[i] = 0 if v is None else int.from_bytes(hashlib.blake2b(str(v).encode(), digest_size=8).digest(), "little")
    return out


@dataclass
class Moments:
    """Exact count, mean, M2 (sum of squared deviations), min and max of a float stream."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0
    min: float = np.inf
    max: float = -np.inf

    def update(self, values: np.ndarray) -> None:
        v = np.asarray(values, dtype=np.float64)
        v = v[np.isfinite(v)]
        if v.size == 0:
            return
        nb, mb = v.size, float(v.mean())
        m2b = float(np.sum((v - mb) ** 2))
        n = self.n + nb
        delta = mb - self.mean
        self.mean += delta * nb / n
        self.m2 += m2b + delta * delta * self.n * nb / n
        self.n = n
        self.min = min(self.min, float(v.min()))
        self.max = max(self.max, float(v.max()))

    @property
    def std(self) -> float:
        """Population standard deviation (ddof = 0)."""
        return float(np.sqrt(self.m2 / self.n)) if self.n else float("nan")


@dataclass
class ColumnStats:
    """Streaming statistics of one column: moments, nulls, counts above thresholds; the sampled
    values (for quantiles) are kept by the caller's :class:`RowSample`."""

    thresholds: tuple[float, ...] = ()
    moments: Moments = field(default_factory=Moments)
    n_null: int = 0
    above: dict = field(default_factory=dict)

    def update(self, values: np.ndarray) -> None:
        v = np.asarray(values, dtype=np.float64)
        finite = np.isfinite(v)
        self.n_null += int((~finite).sum())
        v = v[finite]
        self.moments.update(v)
        for t in self.thresholds:
            self.above[t] = self.above.get(t, 0) + int(np.count_nonzero(v > t))

    def summary(self, sample: np.ndarray | None, exact: bool) -> dict:
        """Table entry: n, nulls, min, max, mean, std, P5..P95 (median = P50), % above thresholds."""
        m = self.moments
        out = {"n": m.n, "n_null": self.n_null, "min": None, "max": None, "mean": None, "std": None}
        if m.n:
            out.update(min=m.min, max=m.max, mean=m.mean, std=m.std)
        vals = None if sample is None else np.asarray(sample, dtype=np.float64)
        vals = None if vals is None else vals[np.isfinite(vals)]
        for p in PERCENTILES:
            out[f"p{p}"] = float(np.percentile(vals, p)) if vals is not None and vals.size else None
        out["median"] = out["p50"]
        out["quantiles_exact"] = bool(exact)
        for t in self.thresholds:
            out[f"pct_gt_{t:g}"] = 100.0 * self.above.get(t, 0) / m.n if m.n else None
        return out


class RowSample:
    """Named float columns of the hash-selected rows of one split (aligned across columns)."""

    def __init__(self) -> None:
        self._parts: dict[str, list[np.ndarray]] = {}

    def add(self, columns: dict[str, np.ndarray]) -> None:
        for name, values in columns.items():
            self._parts.setdefault(name, []).append(np.asarray(values))

    def get(self, name: str) -> np.ndarray:
        parts = self._parts.get(name)
        return np.concatenate(parts) if parts else np.empty(0)
