"""`bench`: every backend and batch size on the same inputs, timed, sized and checked against a
reference; then the verdicts (agreement, regression gate)."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from infertool import environment, onnx_io
from infertool.agreement import compare, tolerance
from infertool.backends import registry
from infertool.backends.base import DEVICE_RESIDENT, END_TO_END, Backend, OrtOptions, Runner, RunnerOptions
from infertool.errors import CheckFailed, InfertoolError
from infertool.feeds import FeedSource, InputOptions, value_shape
from infertool.labels import LabelledSet, classes_for, read_labels_csv
from infertool.measure.gate import gate, load_baseline
from infertool.measure.memory import HostPeak, gpu_used
from infertool.measure.timing import Budget, run_for
from infertool.onnx_io import ModelInfo
from infertool.reporting import Reporter
from infertool.results import AgreementReport, BenchResult, BenchRow
from infertool.stats import PERCENTILE_METHOD, Stats
from infertool.tensors import format_shape
from infertool.vocabulary import INT8_QDQ


@dataclass(frozen=True)
class GateOptions:
    baseline: Path
    max_regression: float  # a fraction: 0.1 fails rows more than 10 % slower
    stat: str = "median"
    max_cv: float | None = None  # a fraction: rows noisier than this are left out of the verdict


@dataclass(frozen=True)
class BenchOptions:
    backends: tuple[str, ...] = ("ort-cpu",)
    batches: tuple[int | None, ...] = (None,)  # None: the batch of the inputs / shapes given
    shape_sets: tuple[Mapping[str | None, tuple[int, ...]], ...] = ()  # a shape sweep: each set replaces inputs.shapes
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
    labels: Path | None = None  # ground truth (sample -> class) for top-1 / top-5 accuracy per row
    skip_unavailable: bool = False  # run the backends that can run here, note the others

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
            "shape_sets": [{k or "": list(v) for k, v in shapes.items()} for shapes in self.shape_sets],
            "skip_unavailable": self.skip_unavailable,
            "warmup": self.warmup.to_dict(), "measure": self.measure.to_dict(), "device": runner.device,
            "io_binding": runner.io_binding, "cuda_graph": runner.cuda_graph, "ort": runner.ort.to_dict(), "engine": runner.engine.to_dict(),
            "reference": str(self.reference) if self.reference else None, "check_outputs": self.check_outputs,
            "tolerance_overrides": {"atol": self.atol, "rtol": self.rtol, "min_cosine": self.min_cosine},
            "percentile_method": PERCENTILE_METHOD, "timer": "time.perf_counter_ns per inference; CUDA events for gpu_* timings",
            "labels": str(self.labels) if self.labels else None,
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
        self._outputs: dict[tuple, dict[str, np.ndarray]] = {}

    def outputs(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        shapes = tuple((name, repr(value_shape(value))) for name, value in feeds.items())
        if shapes not in self._outputs:
            with self.backend.open(self.model, self._options) as runner:
                self._outputs[shapes] = runner.infer(feeds)
        return self._outputs[shapes]

    def is_itself(self, backend: Backend, model: Path) -> bool:
        """Whether a row of `backend` on `model` is checked against its own runtime and graph."""
        return backend is self.backend and model == self.model


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
    if options.labels is not None and options.inputs.path is None:
        raise InfertoolError("--labels-csv needs --inputs: the labelled samples", hint="e.g. --inputs crops/ --labels-csv crops/labels.csv")
    if options.shape_sets and options.inputs.path is not None:
        raise InfertoolError("a shape sweep needs generated inputs: --inputs files have their own shapes", hint="drop --inputs, or the shape list")
    return backends


def _runnable(backends: list[Backend], skip: bool) -> tuple[list[Backend], tuple[dict, ...]]:
    """The backends that can run here and, with `skip`, the others with the reason; without it a
    backend that cannot run is an error."""
    if not skip:
        return [registry.require(b.name) for b in backends], ()
    statuses = [registry.status(b.name) for b in backends]
    skipped = tuple({"backend": s.name, "reason": s.reason} for s in statuses if not s.ok)
    runnable = [b for b, s in zip(backends, statuses) if s.ok]
    if not runnable:
        raise InfertoolError(
            "none of the backends can run here: " + "; ".join(f"{s['backend']}: {s['reason']}" for s in skipped),
            hint="run 'infertool doctor' to see what is installed",
        )
    return runnable, skipped


def _pinned() -> bool:
    """Whether this process may run on fewer cores than the machine has (taskset, cgroups)."""
    affinity = getattr(os, "sched_getaffinity", None)
    return affinity is not None and len(affinity(0)) < (os.cpu_count() or 1)


def _notes(model: ModelInfo, backends: list[Backend], rows: list[BenchRow], options: BenchOptions) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Advice on the result as a whole: (notes, warnings)."""
    notes, warnings = [], []
    on_cpu = {b.name for b in backends if not b.capabilities.on_gpu}
    if model.label == INT8_QDQ and on_cpu:
        notes.append(
            f"{model.path.name} is a TensorRT-shaped int8 Q/DQ graph (int8-qdq): ONNX Runtime on the CPU cannot fuse its "
            "Q/DQ pairs into int8 kernels and often runs it slower than fp32. For the CPU, quantize with --target ort (int8-ort)."
        )
    noisy = [r for r in rows if r.latency.noisy]
    if noisy:
        advice = ["--threads 1"] if options.runner.ort.intra_op_threads is None and any(r.backend in on_cpu for r in noisy) else []
        if not _pinned():
            advice.append(f"taskset -c {(os.cpu_count() or 1) - 1} infertool bench ... (a core nothing else uses)")
        warnings.append(
            "noisy timings (CV over 5%): more iterations will not steady them; "
            + (f"fewer threads and a pinned core do: {', '.join(advice)}; " if advice else "")
            + "close other work"
        )
    return tuple(notes), tuple(warnings)


def run_bench(model_path: Path, options: BenchOptions, reporter: Reporter) -> BenchResult:
    """Measure every row, then judge: raises CheckFailed (carrying the result) on a disagreement
    with the reference or a regression against the baseline."""
    backends, skipped = _runnable(_check_request(model_path, options), options.skip_unavailable)
    for name in (s["backend"] for s in skipped):
        reporter.note(f"skipping {name}: it cannot run here")
    baseline = load_baseline(options.gate.baseline) if options.gate else None
    model = onnx_io.describe(model_path)
    if options.check_outputs:
        registry.require(registry.REFERENCE)
    _check_batches(model, options.batches)
    if options.save_optimized is not None:
        first = next(b for b in backends if b.capabilities.saves_optimized)
        first.save_optimized(model_path, options.runner, options.save_optimized, options.force)
        reporter.note(f"saved the graph optimized for {first.name} to {options.save_optimized}")
    sets = options.shape_sets or (options.inputs.shapes,)
    sources = [FeedSource(list(model.inputs), replace(options.inputs, shapes=shapes)) for shapes in sets]
    for note in sources[0].notes:
        reporter.note(note)
    labelled = None
    if options.labels is not None:
        truth = read_labels_csv(options.labels)
        labelled = LabelledSet(sources[0].feeds(None), classes_for(truth, sources[0].samples(), str(options.inputs.path)), truth)
    references = _References(model_path, options) if options.check_outputs else None
    rows = [
        _measure_row(model, backend, source.feeds(batch), options, references, reporter, labelled)
        for backend in backends for source in sources for batch in options.batches
    ]
    rows = _with_speedups(rows)
    notes, advice = _notes(model, backends, rows, options)
    warnings = [f"{r.backend} batch {r.batch}: {w}" for r in rows for w in r.warnings]
    result = BenchResult(
        environment.fingerprint(), model.to_dict(), options.to_dict(), tuple(rows), (*warnings, *advice), skipped=skipped, notes=notes,
    )
    if baseline is not None:
        settings = options.gate
        result = replace(result, gate=gate(result, baseline, settings.baseline, settings.max_regression, settings.stat, settings.max_cv))
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
    if result.gate is not None and not result.gate.passed:
        slower = [r for r in result.gate.rows if r.regressed]
        raise CheckFailed(
            "performance regression: " + ", ".join(f"{r.backend} batch {r.batch} {r.change:+.1%}" for r in slower)
            + f" (limit +{result.gate.max_regression * 100:g}% on {result.gate.stat})",
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


def _measure_row(model: ModelInfo, backend: Backend, feeds, options: BenchOptions, references, reporter, labelled: LabelledSet | None) -> BenchRow:
    batch = next((a.shape[0] for a in feeds.values() if isinstance(a, np.ndarray) and a.ndim), 1)
    label = f"{backend.name} batch {batch}"
    device = options.runner.device
    host = HostPeak()
    gpu_before = gpu_used(device) if backend.capabilities.on_gpu else None
    shapes = {name: tuple(array.shape) for name, array in feeds.items() if isinstance(array, np.ndarray)}
    artifact = backend.prepare(model, options.runner, shapes, reporter)
    runner = backend.open(artifact, options.runner)
    with reporter.task(f"{label}: loading"):
        started = time.perf_counter()
        runner.prepare()
        startup = {"load_ms": (time.perf_counter() - started) * 1e3}
    try:
        host.sample()
        with reporter.task(f"{label}: first inference"):  # where lazy set-up lands (TensorRT-RTX: kernels for the shape)
            started = time.perf_counter()
            runner.infer(feeds)
            startup["first_inference_ms"] = (time.perf_counter() - started) * 1e3
        timings, outputs, mode = _timings(runner, feeds, label, options, reporter)
        gpu_after = gpu_used(device) if gpu_before is not None else None
        memory = {
            "model_file_bytes": model.bytes, "host_rss_increase_bytes": host.increase(), "host_peak_exact": host.exact,
            "gpu_bytes": None if gpu_before is None or gpu_after is None else max(0, gpu_after - gpu_before),
            **runner.memory(),
        }
        info = runner.info()
        accuracy = None
        if labelled is not None:
            with reporter.task(f"{label}: accuracy on {len(labelled.classes)} labelled samples"):
                accuracy = labelled.evaluate(runner.infer, batch)
    finally:
        runner.close()
    precision = info.precision or model.precision  # an engine may compute below the graph's type
    agreement = None
    if references is not None:
        atol, rtol, min_cosine = options.tolerance(precision)
        expected = references.outputs(feeds)
        agreement = AgreementReport(
            references.label, precision, tuple(compare(n, expected[n], outputs[n], atol, rtol, min_cosine) for n in expected),
            self_check=references.is_itself(backend, model.path),
        )
    warnings = list(info.warnings)
    if timings[mode].noisy:
        warnings.insert(0, f"noisy: coefficient of variation {timings[mode].cv:.1%} > 5%")
    input_shapes = {name: value_shape(value) for name, value in feeds.items()}
    return BenchRow(
        backend.name, batch, precision, mode, timings, memory, input_shapes, dict(info.settings), agreement, warnings=tuple(warnings),
        accuracy=accuracy, startup={k: round(v, 3) for k, v in startup.items()},
    )


def _with_speedups(rows: list[BenchRow]) -> list[BenchRow]:
    """Speedup of each row over the first backend's row at the same input shapes."""
    first: dict[str, float] = {}
    for row in rows:
        first.setdefault(repr(row.input_shapes), row.latency.median)
    return [replace(r, speedup=first[repr(r.input_shapes)] / r.latency.median if r.latency.median > 0 else None) for r in rows]
