"""The timing loop: warm-up, then timed iterations until both the count and the duration are reached."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass

PROGRESS_EVERY_NS = 100_000_000
MAX_SAMPLES = 1_000_000  # timed iterations at most, whatever the duration asks: samples must fit in memory
MAX_SECONDS = 3600  # a warm-up or measurement longer than an hour is a typo
MAX_WARMUP = 100_000  # warm-up iterations


@dataclass(frozen=True)
class Budget:
    """Run at least `iterations` times and for at least `seconds` (either may be 0), and at most
    MAX_SAMPLES times."""

    iterations: int
    seconds: float

    def to_dict(self) -> dict:
        return {"iterations": self.iterations, "seconds": self.seconds}


def run_for(call: Callable[[], object], budget: Budget, advance: Callable[[int], None] | None = None) -> list[int]:
    """Call repeatedly; return each call's wall time in ns (perf_counter_ns). GC is off meanwhile."""
    clock = time.perf_counter_ns
    samples: list[int] = []
    record = samples.append
    need_ns = int(budget.seconds * 1e9)
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = clock()
        next_report, reported = start + PROGRESS_EVERY_NS, 0
        while True:
            t0 = clock()
            call()
            t1 = clock()
            record(t1 - t0)
            done = (len(samples) >= budget.iterations and t1 - start >= need_ns) or len(samples) >= MAX_SAMPLES
            if advance is not None and (done or t1 >= next_report):
                advance(len(samples) - reported)
                reported, next_report = len(samples), t1 + PROGRESS_EVERY_NS
            if done:
                return samples
    finally:
        if gc_was_enabled:
            gc.enable()
