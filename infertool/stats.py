"""Latency statistics over per-iteration samples (nanoseconds in, milliseconds out)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

PERCENTILE_METHOD = "nearest-rank"
NOISY_CV = 0.05


def nearest_rank(ordered: Sequence[float], percent: float) -> float:
    """The smallest sample with at least `percent` % of the samples at or below it."""
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Stats:
    count: int
    min: float
    mean: float
    median: float
    p90: float
    p95: float
    p99: float
    max: float
    std: float
    cv: float
    total: float  # sum of the samples, ms

    @classmethod
    def from_ns(cls, samples_ns: Sequence[int]) -> Stats:
        if not samples_ns:
            raise ValueError("no samples")
        ordered = sorted(s / 1e6 for s in samples_ns)
        n = len(ordered)
        mean = sum(ordered) / n
        std = math.sqrt(sum((x - mean) ** 2 for x in ordered) / (n - 1)) if n > 1 else 0.0
        return cls(
            count=n, min=ordered[0], mean=mean, median=nearest_rank(ordered, 50), p90=nearest_rank(ordered, 90),
            p95=nearest_rank(ordered, 95), p99=nearest_rank(ordered, 99), max=ordered[-1], std=std,
            cv=std / mean if mean > 0 else 0.0, total=sum(ordered),
        )

    @property
    def noisy(self) -> bool:
        return self.cv > NOISY_CV

    def to_dict(self) -> dict:
        keys = ("min", "mean", "median", "p90", "p95", "p99", "max", "std")
        return {**{k: round(getattr(self, k), 6) for k in keys}, "cv": round(self.cv, 6), "count": self.count}


def throughput(stats: Stats, batch: int) -> dict:
    """Inferences and samples per second over the measured time alone."""
    per_second = stats.count / (stats.total / 1e3) if stats.total > 0 else 0.0
    return {"inferences_per_s": round(per_second, 3), "samples_per_s": round(per_second * batch, 3)}
