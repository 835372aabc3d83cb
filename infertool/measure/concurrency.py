"""N callers at once, each on its own thread (its own session, context or stream): per-request
latencies and the aggregate rate, as trtexec --infStreams and onnxruntime_perf_test -c measure them."""

from __future__ import annotations

import gc
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from infertool.measure.timing import Budget, run_for


@dataclass(frozen=True)
class Concurrent:
    samples_ns: list[int]  # every request's latency, all threads together
    per_thread: list[int]  # requests each thread completed
    wall_ns: int  # from the common start to the last thread's end


def run_concurrently(calls: Sequence[Callable[[], object]], warmup: Budget, measure: Budget) -> Concurrent:
    """Each call warms up on its own thread; once all are warm they start together, each running
    its share of the iterations for at least the measured seconds. GC is off meanwhile."""
    share = Budget(math.ceil(measure.iterations / len(calls)), measure.seconds)
    start = threading.Barrier(len(calls))
    samples: list[list[int]] = [[] for _ in calls]
    spans: list[tuple[int, int]] = [(0, 0)] * len(calls)
    errors: list[BaseException] = []

    def work(index: int, call: Callable[[], object]) -> None:
        try:
            run_for(call, warmup)
            start.wait()
            began = time.perf_counter_ns()
            samples[index] = run_for(call, share)
            spans[index] = (began, time.perf_counter_ns())
        except BaseException as exc:  # reported on the calling thread
            errors.append(exc)
            start.abort()

    gc_was_enabled = gc.isenabled()
    gc.disable()  # run_for leaves it off when it finds it off, so no thread turns it back on mid-run
    try:
        threads = [threading.Thread(target=work, args=(i, call), daemon=True) for i, call in enumerate(calls)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        if gc_was_enabled:
            gc.enable()
    real = [e for e in errors if not isinstance(e, threading.BrokenBarrierError)]
    if errors:
        raise (real or errors)[0]
    wall = max(end for _, end in spans) - min(began for began, _ in spans)
    return Concurrent([s for thread in samples for s in thread], [len(s) for s in samples], wall)
