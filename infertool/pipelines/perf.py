"""Per-row answers beyond the latency: FLOPs and share of the device's peak, where the time goes
(the runtime's profiler), and N concurrent sessions / streams."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import numpy as np

from infertool.backends import registry
from infertool.backends.base import DEVICE_RESIDENT, END_TO_END, Backend, RunnerOptions
from infertool.errors import InfertoolError
from infertool.measure import flops, peaks
from infertool.measure.concurrency import run_concurrently
from infertool.measure.profile import summarize
from infertool.measure.timing import Budget
from infertool.onnx_io import ModelInfo
from infertool.optional import is_available
from infertool.records.bench import BenchRow
from infertool.reporting import Reporter
from infertool.stats import Stats, throughput

PROFILED_RUNS = 10


def _gpu_name(env: dict, device: int) -> str | None:
    for gpu in env.get("gpus", []):
        if gpu["index"] == device:
            return gpu["name"]
    if is_available("cuda"):
        from infertool import cuda

        try:
            return cuda.device_properties(device)["name"]
        except InfertoolError:
            return None
    return None


def compute(row: BenchRow, count: flops.Count, gpu: str | None) -> dict:
    """The row's work, achieved TFLOP/s at its median, and the share of the GPU's dense peak."""
    seconds = row.latency.median / 1e3
    achieved = count.flops / seconds / 1e12 if seconds > 0 else None
    peak = peaks.peak(gpu, row.precision, bool(row.settings.get("tf32"))) if gpu else None
    return {
        **count.to_dict(), "timed": row.latency_mode, "tflops_per_s": None if achieved is None else float(f"{achieved:.4g}"),
        "gbytes_per_s": float(f"{count.bytes / seconds / 1e9:.4g}") if seconds > 0 else None,
        "device": gpu or "cpu", "peak": peak.to_dict() if peak else None,
        "peak_share": round(achieved / peak.tflops, 4) if peak and achieved is not None else None,
    }


def with_compute(rows: list[BenchRow], model: ModelInfo, env: dict, device: int, reporter: Reporter) -> list[BenchRow]:
    """Every row with its FLOPs, bytes and % of peak (rows keep going without them if counting fails)."""
    found = []
    for row in rows:
        # tensors only: a sequence or optional input carries no work of its own to count
        shapes = {name: tuple(shape) for name, shape in row.input_shapes.items() if isinstance(shape, (list, tuple)) and all(isinstance(d, int) for d in shape)}
        try:
            count = flops.count_file(model.path, model.sha256, shapes)
        except InfertoolError as exc:
            reporter.note(f"FLOPs not counted for {row.backend} batch {row.batch}: {exc.message}")
            found.append(row)
            continue
        gpu = _gpu_name(env, device) if registry.get(row.backend).capabilities.on_gpu else None
        found.append(replace(row, compute=compute(row, count, gpu)))
    return found


def timed_call(runner, feeds: Mapping[str, np.ndarray]):
    if runner.device_resident:
        runner.bind(feeds)
        return runner.run_bound
    return lambda: runner.infer(feeds)


def profile_row(backend: Backend, artifact: Path, feeds: dict, options: RunnerOptions, top: int, label: str, reporter: Reporter) -> dict:
    """A separate, profiled session (profiling slows the timed one down): one warm-up run dropped, then PROFILED_RUNS."""
    if not backend.capabilities.profiles:
        return {"unavailable": f"backend {backend.name} has no per-op profiler"}
    runs = PROFILED_RUNS + 1
    with reporter.task(f"{label}: profiling"), backend.open(artifact, replace(options, profile=True, cuda_graph=False)) as runner:
        call = timed_call(runner, feeds)
        for _ in range(runs):
            call()
        clock, events = runner.profile()
    if events and len(events) % runs == 0:
        events, runs = events[len(events) // runs:], PROFILED_RUNS
    report = summarize(clock, events, runs, top)
    if clock == "host" and backend.capabilities.on_gpu:
        report["note"] = "host-side time of each node (this runtime build records no GPU kernel times): on a GPU, launch cost rather than GPU time"
    return report


def concurrent_row(
    backend: Backend, artifact: Path, feeds: dict, options: RunnerOptions, workers: int, budgets: tuple[Budget, Budget],
    single: Stats, label: str, reporter: Reporter,
) -> dict:
    """`workers` runners (sessions / contexts, each with its own stream on a GPU), one thread each, at once."""
    batch = next((a.shape[0] for a in feeds.values() if a.ndim), 1)
    runners = [backend.open(artifact, options) for _ in range(workers)]
    try:
        with reporter.task(f"{label}: {workers} concurrent sessions"):
            for runner in runners:
                runner.prepare()
            calls = [timed_call(runner, feeds) for runner in runners]
            mode = DEVICE_RESIDENT if runners[0].device_resident else END_TO_END
            done = run_concurrently(calls, *budgets)
    finally:
        for runner in runners:
            runner.close()
    per_second = len(done.samples_ns) / (done.wall_ns / 1e9)
    alone = throughput(single, batch)["inferences_per_s"]
    return {
        "workers": workers, "timed": mode, "latency_ms": Stats.from_ns(done.samples_ns).to_dict(), "requests": len(done.samples_ns),
        "requests_per_worker": done.per_thread, "wall_s": round(done.wall_ns / 1e9, 4),
        "inferences_per_s": round(per_second, 3), "samples_per_s": round(per_second * batch, 3),
        "scaling": round(per_second / alone, 3) if alone else None,
    }
