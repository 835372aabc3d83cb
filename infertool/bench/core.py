"""`bench`: every backend and batch size on the same inputs, timed, sized and checked against a reference."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from infertool import environment, onnx_model, runners
from infertool.bench.memory import HostPeak, gpu_used
from infertool.bench.stats import PERCENTILE_METHOD, Stats
from infertool.bench.timing import Budget, run_for
from infertool.compare import compare, tolerance
from infertool.errors import InfertoolError
from infertool.files import file_sha256
from infertool.inputs import FeedSource, InputOptions
from infertool.precision.detect import graph_precision
from infertool.reporting import Reporter
from infertool.results import AgreementReport, BenchResult, BenchRow
from infertool.runners import RunnerOptions
from infertool.runners.base import DEVICE_RESIDENT, END_TO_END
from infertool.specs import format_shape

REFERENCE_BACKEND = "ort-cpu"


@dataclass(frozen=True)
class BenchOptions:
    backends: tuple[str, ...] = ("ort-cpu",)
    batches: tuple[int | None, ...] = (None,)  # None: the batch of the inputs / shapes given
    inputs: InputOptions = field(default_factory=InputOptions)
    warmup: Budget = Budget(3, 0.2)
    measure: Budget = Budget(100, 1.0)
    runner: RunnerOptions = field(default_factory=RunnerOptions)
    reference: Path | None = None  # an ONNX model whose ort-cpu outputs are the reference
    check_outputs: bool = True
    atol: float | None = None
    rtol: float | None = None
    min_cosine: float | None = None

    def tolerance(self, precision: str) -> tuple[float, float, float | None]:
        atol, rtol, cosine = tolerance(precision)
        return (
            atol if self.atol is None else self.atol,
            rtol if self.rtol is None else self.rtol,
            cosine if self.min_cosine is None else self.min_cosine,
        )

    def to_dict(self) -> dict:
        return {
            "backends": list(self.backends), "batches": list(self.batches), "inputs": self.inputs.to_dict(),
            "warmup": self.warmup.to_dict(), "measure": self.measure.to_dict(),
            "device": self.runner.device, "ort": self.runner.ort.to_dict(), "trt": self.runner.trt.to_dict(),
            "reference": str(self.reference) if self.reference else None, "check_outputs": self.check_outputs,
            "tolerance_overrides": {"atol": self.atol, "rtol": self.rtol, "min_cosine": self.min_cosine},
            "percentile_method": PERCENTILE_METHOD, "timer": "time.perf_counter_ns per inference; CUDA events for gpu_* timings",
        }


def model_summary(path: Path) -> tuple[dict, list, str]:
    proto = onnx_model.load(path, load_external_data=False)
    specs = onnx_model.input_specs(proto)
    precision = graph_precision(proto)
    data = onnx_model.external_data_path(path)
    size = path.stat().st_size + (data.stat().st_size if data.exists() else 0)
    summary = {
        "path": str(path), "sha256": file_sha256(path), "bytes": size, "precision": precision, "opset": onnx_model.opset(proto),
        "inputs": [s.to_dict() for s in specs], "outputs": [s.to_dict() for s in onnx_model.output_specs(proto)],
    }
    return summary, specs, precision


def _check_batches(specs: list, batches: tuple[int | None, ...]) -> None:
    for spec in specs:
        fixed = spec.shape[0] if spec.shape and isinstance(spec.shape[0], int) else None
        wrong = [b for b in batches if b is not None and fixed is not None and b != fixed]
        if wrong:
            raise InfertoolError(
                f"input '{spec.name}' has a fixed batch of {fixed} ({format_shape(spec.shape)}); --batch {wrong[0]} needs a dynamic batch",
                hint="re-export with a dynamic batch (infertool convert --dynamic-batch), or drop --batch",
            )


class _References:
    """ort-cpu outputs of the reference model, per batch, on the bench inputs."""

    def __init__(self, model: Path, options: BenchOptions):
        self.model = options.reference or model
        self.label = f"{REFERENCE_BACKEND} on {self.model.name}"
        self._options = RunnerOptions(runners.ort.OrtOptions(graph_optimization=options.runner.ort.graph_optimization))
        self._outputs: dict[int, dict[str, np.ndarray]] = {}

    def outputs(self, batch: int, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if batch not in self._outputs:
            with runners.open_runner(REFERENCE_BACKEND, self.model, self._options) as runner:
                self._outputs[batch] = runner.infer(feeds)
        return self._outputs[batch]


def run_bench(model: Path, options: BenchOptions, reporter: Reporter) -> BenchResult:
    summary, specs, precision = model_summary(model)
    for backend in options.backends:
        runners.require_available(backend)
    if options.check_outputs:
        runners.require_available(REFERENCE_BACKEND)
    _check_batches(specs, options.batches)
    source = FeedSource(specs, options.inputs)
    references = _References(model, options) if options.check_outputs else None
    rows = []
    for backend in options.backends:
        for batch in options.batches:
            feeds = source.feeds(batch)
            rows.append(_measure_row(model, backend, feeds, precision, options, references, reporter))
    rows = _with_speedups(rows)
    warnings = [f"{r.backend} batch {r.batch}: {w}" for r in rows for w in r.warnings]
    return BenchResult(environment.fingerprint(), summary, options.to_dict(), tuple(rows), tuple(warnings))


def _measure(call, label: str, options: BenchOptions, reporter: Reporter) -> Stats:
    with reporter.task(f"{label}: warm-up"):
        run_for(call, options.warmup)
    with reporter.task(f"{label}: measuring", total=options.measure.iterations) as advance:
        return Stats.from_ns(run_for(call, options.measure, advance))


def _measure_row(model, backend, feeds, precision, options, references, reporter) -> BenchRow:
    batch = next((a.shape[0] for a in feeds.values() if a.ndim), 1)
    label = f"{backend} batch {batch}"
    device = options.runner.device
    host = HostPeak()
    on_gpu = backend != "ort-cpu"
    gpu_before = gpu_used(device) if on_gpu else None
    shapes = {name: tuple(array.shape) for name, array in feeds.items()}
    runner = runners.open_runner(backend, model, options.runner, shapes, reporter)
    with reporter.task(f"{label}: loading"):
        runner.prepare()
    try:
        host.sample()
        timings = {END_TO_END: _measure(lambda: runner.infer(feeds), f"{label} end-to-end", options, reporter)}
        outputs = runner.infer(feeds)
        mode = END_TO_END
        if runner.device_resident:
            runner.bind(feeds)
            timings[DEVICE_RESIDENT] = _measure(runner.run_bound, f"{label} device-resident", options, reporter)
            outputs, mode = runner.bound_outputs(), DEVICE_RESIDENT
            with reporter.task(f"{label}: CUDA-event timing"):
                device_ns = runner.device_times(timings[DEVICE_RESIDENT].count)
            timings.update({f"gpu_{phase}": Stats.from_ns(ns) for phase, ns in device_ns.items() if ns})
        memory = {
            "model_file_bytes": sum(p.stat().st_size for p in (model, onnx_model.external_data_path(model)) if p.exists()),
            "host_rss_increase_bytes": host.increase(),
            "host_peak_exact": host.exact,
            "gpu_bytes": None if gpu_before is None or gpu_used(device) is None else max(0, gpu_used(device) - gpu_before),
            **runner.memory(),
        }
        settings = runner.describe()
    finally:
        runner.close()
    agreement = None
    warnings = []
    row_precision = settings.get("precision") or precision  # a TensorRT engine may compute below the graph's type
    if references is not None:
        atol, rtol, min_cosine = options.tolerance(row_precision)
        expected = references.outputs(batch, feeds)
        agreement = AgreementReport(
            references.label, row_precision,
            tuple(compare(name, expected[name], outputs[name], atol, rtol, min_cosine) for name in expected),
        )
    latency = timings[mode]
    if latency.noisy:
        warnings.append(f"noisy: coefficient of variation {latency.cv:.1%} > 5%; close other work or raise --iterations")
    warnings += settings.get("warnings", [])
    input_shapes = {name: list(shape) for name, shape in shapes.items()}
    return BenchRow(backend, batch, row_precision, mode, timings, memory, input_shapes, settings, agreement, warnings=tuple(warnings))


def _with_speedups(rows: list[BenchRow]) -> list[BenchRow]:
    """Speedup of each row over the first backend's row at the same batch."""
    first: dict[int, float] = {}
    for row in rows:
        first.setdefault(row.batch, row.latency.median)
    return [replace(r, speedup=first[r.batch] / r.latency.median if r.latency.median > 0 else None) for r in rows]
