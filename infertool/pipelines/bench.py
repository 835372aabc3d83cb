"""`bench`: every backend and batch size on the same inputs, timed, sized and checked against a
reference; then the verdicts (agreement, regression gate)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from infertool import environment, onnx_io
from infertool.agreement import compare, tolerance
from infertool.backends import registry
from infertool.backends.base import DEVICE_RESIDENT, END_TO_END, Backend, OrtOptions, RowFailed, Runner, RunnerOptions
from infertool.errors import CheckFailed, InfertoolError
from infertool.feeds import FeedSource, InputOptions
from infertool.measure.gate import gate, load_baseline
from infertool.measure.memory import HostPeak, gpu_used
from infertool.measure.timing import Budget, run_for
from infertool.onnx_io import ModelInfo
from infertool.pipelines import perf
from infertool.reporting import Reporter
from infertool.results import AgreementReport, BenchResult, BenchRow
from infertool.stats import PERCENTILE_METHOD, Stats
from infertool.tensors import format_shape


@dataclass(frozen=True)
class GateOptions:
    baseline: Path
    max_regression: float  # a fraction: 0.1 fails rows more than 10 % slower
    stat: str = "median"


@dataclass(frozen=True)
class BenchOptions:
    backends: tuple[str, ...] = ("ort-cpu",)
    batches: tuple[int | None, ...] = (None,)  # None: the batch of the inputs / shapes given
    inputs: InputOptions = field(default_factory=InputOptions)
    warmup: Budget = Budget(3, 0.2)
    measure: Budget = Budget(100, 1.0)
    runner: RunnerOptions = field(default_factory=RunnerOptions)
    reference: Path | None = None  # an ONNX model whose reference-backend outputs are the reference
    check_outputs: bool = True
    atol: float | None = None
    rtol: float | None = None
    min_cosine: float | None = None
    gate: GateOptions | None = None
    save_optimized: Path | None = None  # the graph the first backend that can optimized
    force: bool = False
    profile: int = 0  # bench --profile: the slowest nodes to list (0: no profile)
    concurrency: int = 1  # bench --concurrency: also run this many sessions / streams at once

    def tolerance(self, precision: str) -> tuple[float, float, float | None]:
        atol, rtol, cosine = tolerance(precision)
        return (
            atol if self.atol is None else self.atol,
            rtol if self.rtol is None else self.rtol,
            cosine if self.min_cosine is None else self.min_cosine,
        )

    def to_dict(self) -> dict:
        runner = self.runner
        return {
            "backends": list(self.backends), "batches": list(self.batches), "inputs": self.inputs.to_dict(),
            "warmup": self.warmup.to_dict(), "measure": self.measure.to_dict(), "device": runner.device,
            "io_binding": runner.io_binding, "cuda_graph": runner.cuda_graph, "ort": runner.ort.to_dict(), "engine": runner.engine.to_dict(),
            "reference": str(self.reference) if self.reference else None, "check_outputs": self.check_outputs,
            "tolerance_overrides": {"atol": self.atol, "rtol": self.rtol, "min_cosine": self.min_cosine},
            "percentile_method": PERCENTILE_METHOD, "timer": "time.perf_counter_ns per inference; CUDA events for gpu_* timings",
            "source": runner.source.to_dict(), "profile_top": self.profile, "concurrency": self.concurrency,
        }


def _check_batches(model: ModelInfo, batches: tuple[int | None, ...]) -> None:
    for spec in model.inputs:
        fixed = spec.shape[0] if spec.shape and isinstance(spec.shape[0], int) else None
        wrong = [b for b in batches if b is not None and fixed is not None and b != fixed]
        if wrong:
            raise InfertoolError(
                f"input '{spec.name}' has a fixed batch of {fixed} ({format_shape(spec.shape)}); --batch {wrong[0]} needs a dynamic batch",
                hint="re-export with a dynamic batch (infertool convert --dynamic-batch), or drop --batch",
            )


class _References:
    """Reference-backend outputs of the reference model, per batch, on the bench inputs."""

    def __init__(self, model: Path, options: BenchOptions):
        self.model = options.reference or model
        self.backend = registry.get(registry.REFERENCE)
        self.label = f"{self.backend.name} on {self.model.name}"
        self._options = RunnerOptions(ort=OrtOptions(graph_optimization=options.runner.ort.graph_optimization))
        self._outputs: dict[int, dict[str, np.ndarray]] = {}

    def outputs(self, batch: int, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if batch not in self._outputs:
            with self.backend.open(self.model, self._options) as runner:
                self._outputs[batch] = runner.infer(feeds)
        return self._outputs[batch]


def _check_request(model: Path, options: BenchOptions) -> list[Backend]:
    if model.suffix == ".engine":
        raise InfertoolError(
            "bench takes the ONNX model, so every backend runs the same graph",
            hint=f"infertool bench MODEL.onnx --backend trt --engine {model}",
        )
    backends = [registry.get(name) for name in options.backends]
    if options.runner.cuda_graph and not any(b.capabilities.cuda_graphs and options.runner.io_binding for b in backends):
        raise InfertoolError("--cuda-graph needs a GPU backend that can replay CUDA graphs (with IO binding)", hint="add --backend ort-cuda or trt, and drop --no-io-binding")
    if options.save_optimized is not None and not any(b.capabilities.saves_optimized for b in backends):
        raise InfertoolError("--save-optimized needs a backend that optimizes the graph (an ORT backend)")
    return backends


# measures one row: (model, backend, feeds, options, references, reporter) -> BenchRow; bench --tune swaps in its own
RowMeasure = Callable[..., BenchRow]


def run_bench(model_path: Path, options: BenchOptions, reporter: Reporter, row_measure: RowMeasure | None = None) -> BenchResult:
    """Measure every row, then judge: raises CheckFailed (carrying the result) on a disagreement
    with the reference, a row that could not be measured, or a regression against the baseline."""
    backends = _check_request(model_path, options)
    baseline = load_baseline(options.gate.baseline) if options.gate else None
    model = onnx_io.describe(model_path)
    for backend in backends:
        registry.require(backend.name)
        backend.check(model, options.runner)
    if options.check_outputs:
        registry.require(registry.REFERENCE)
    _check_batches(model, options.batches)
    if options.save_optimized is not None:
        first = next(b for b in backends if b.capabilities.saves_optimized)
        first.save_optimized(model_path, options.runner, options.save_optimized, options.force)
        reporter.note(f"saved the graph optimized for {first.name} to {options.save_optimized}")
    source = FeedSource(list(model.inputs), options.inputs)
    references = _References(model_path, options) if options.check_outputs else None
    rows, failed = [], []
    for backend in backends:
        for batch in options.batches:
            feeds = source.feeds(batch)
            try:
                rows.append((row_measure or measure_row)(model, backend, feeds, options, references, reporter))
            except RowFailed as exc:  # this row only: the others still run
                failed.append({"backend": backend.name, "batch": next((a.shape[0] for a in feeds.values() if a.ndim), 1), "error": exc.message})
    env = environment.fingerprint()
    rows = perf.with_compute(_with_speedups(rows), model, env, options.runner.device, reporter)
    warnings = [f"{r.backend} batch {r.batch}: {w}" for r in rows for w in r.warnings]
    result = BenchResult(env, model.to_dict(), options.to_dict(), tuple(rows), tuple(warnings), failed=tuple(failed))
    if baseline is not None:
        result = replace(result, gate=gate(result, baseline, options.gate.baseline, options.gate.max_regression, options.gate.stat))
    _verdict(result)
    return result


def _verdict(result: BenchResult) -> None:
    failed = [r for r in result.rows if r.agreement is not None and not r.agreement.passed]
    if failed:
        raise CheckFailed(
            f"outputs disagree with the reference: {', '.join(f'{r.backend} batch {r.batch}' for r in failed)}",
            hint="see the agreement table; loosen --atol/--rtol/--min-cosine only if the difference is expected",
            result=result,
        )
    if result.failed:
        raise CheckFailed("could not measure " + "; ".join(f"{f['backend']} batch {f['batch']}: {f['error']}" for f in result.failed), result=result)
    if result.gate is not None and not result.gate.passed:
        slower = [r for r in result.gate.rows if r.regressed]
        raise CheckFailed(
            "performance regression: " + ", ".join(f"{r.backend} batch {r.batch} {r.change:+.1%}" for r in slower)
            + f" (limit {result.gate.max_regression:.0%} on {result.gate.stat})",
            result=result,
        )


def _measure(call, label: str, options: BenchOptions, reporter: Reporter) -> Stats:
    with reporter.task(f"{label}: warm-up"):
        run_for(call, options.warmup)
    with reporter.task(f"{label}: measuring", total=options.measure.iterations) as advance:
        return Stats.from_ns(run_for(call, options.measure, advance))


def _timings(runner: Runner, feeds: dict, label: str, options: BenchOptions, reporter: Reporter) -> tuple[dict, dict, str]:
    """End-to-end timing, and where the runner can, device-resident and CUDA-event timings."""
    timings = {END_TO_END: _measure(lambda: runner.infer(feeds), f"{label} end-to-end", options, reporter)}
    outputs, mode = runner.infer(feeds), END_TO_END
    if runner.device_resident:
        runner.bind(feeds)
        timings[DEVICE_RESIDENT] = _measure(runner.run_bound, f"{label} device-resident", options, reporter)
        outputs, mode = runner.bound_outputs(), DEVICE_RESIDENT
        with reporter.task(f"{label}: CUDA-event timing"):
            device_ns = runner.device_times(timings[DEVICE_RESIDENT].count)
        timings.update({f"gpu_{phase}": Stats.from_ns(ns) for phase, ns in device_ns.items() if ns})
    return timings, outputs, mode


def measure_row(model: ModelInfo, backend: Backend, feeds, options: BenchOptions, references, reporter) -> BenchRow:
    batch = next((a.shape[0] for a in feeds.values() if a.ndim), 1)
    label = f"{backend.name} batch {batch}"
    device = options.runner.device
    host = HostPeak()
    gpu_before = gpu_used(device) if backend.capabilities.on_gpu else None
    shapes = {name: tuple(array.shape) for name, array in feeds.items()}
    artifact = backend.prepare(model, options.runner, shapes, reporter)
    runner = backend.open(artifact, options.runner)
    with reporter.task(f"{label}: loading"):
        runner.prepare()
    try:
        host.sample()
        timings, outputs, mode = _timings(runner, feeds, label, options, reporter)
        gpu_after = gpu_used(device) if gpu_before is not None else None
        memory = {
            "model_file_bytes": model.bytes, "host_rss_increase_bytes": host.increase(), "host_peak_exact": host.exact,
            "gpu_bytes": None if gpu_before is None or gpu_after is None else max(0, gpu_after - gpu_before),
            **runner.memory(),
        }
        info = runner.info()
    finally:
        runner.close()
    extras = _extras(backend, artifact, feeds, options, timings[mode], label, reporter)
    precision = info.precision or model.precision  # an engine may compute below the graph's type
    agreement = None
    if references is not None:
        atol, rtol, min_cosine = options.tolerance(precision)
        expected = references.outputs(batch, feeds)
        agreement = AgreementReport(
            references.label, precision, tuple(compare(n, expected[n], outputs[n], atol, rtol, min_cosine) for n in expected),
        )
    warnings = list(info.warnings)
    if timings[mode].noisy:
        warnings.insert(0, f"noisy: coefficient of variation {timings[mode].cv:.1%} > 5%; close other work or raise --iterations")
    input_shapes = {name: list(shape) for name, shape in shapes.items()}
    return BenchRow(backend.name, batch, precision, mode, timings, memory, input_shapes, dict(info.settings), agreement, warnings=tuple(warnings), **extras)


def _extras(backend: Backend, artifact: Path, feeds: dict, options: BenchOptions, single: Stats, label: str, reporter: Reporter) -> dict:
    """bench --profile and --concurrency, each in sessions of its own (the timed one stays untouched)."""
    extras = {}
    if options.profile:
        extras["profile"] = perf.profile_row(backend, artifact, feeds, options.runner, options.profile, label, reporter)
    if options.concurrency > 1:
        budgets = (options.warmup, options.measure)
        extras["concurrency"] = perf.concurrent_row(backend, artifact, feeds, options.runner, options.concurrency, budgets, single, label, reporter)
    return extras


def _with_speedups(rows: list[BenchRow]) -> list[BenchRow]:
    """Speedup of each row over the first backend's row at the same batch."""
    first: dict[int, float] = {}
    for row in rows:
        first.setdefault(row.batch, row.latency.median)
    return [replace(r, speedup=first[r.batch] / r.latency.median if r.latency.median > 0 else None) for r in rows]
