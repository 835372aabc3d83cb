"""`bench`: every model, backend and batch size (or shape set) on the same inputs, timed, sized and
checked against a reference; then the verdicts (agreement, regression gate)."""

from __future__ import annotations

import functools
import hashlib
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from infertool import environment, onnx_io
from infertool.agreement import Judgement, Rule, judge
from infertool.backends import registry
from infertool.backends.base import DEVICE_RESIDENT, END_TO_END, Backend, RowFailed, Runner, RunnerOptions
from infertool.backends.onnxruntime import OrtOptions
from infertool.dtypes import numpy_dtype
from infertool.errors import CheckFailed, InfertoolError, RuntimeCrashed
from infertool.inputs.batches import value_shape
from infertool.inputs.feeds import FeedSource, InputOptions
from infertool.inputs.labels import LabelledSet, classes_for, read_labels_csv
from infertool.measure.gpu_telemetry import GpuProbe, clock_drop
from infertool.measure.memory import HostPeak, gpu_used
from infertool.measure.timing import Budget, run_for
from infertool.onnx_io import ModelInfo
from infertool.pipelines import isolation, perf, versions
from infertool.records.bench import AgreementReport, BenchResult, BenchRow
from infertool.records.gate import Measured, gate, load_baseline, measured
from infertool.records.speedup import Baseline, speedups
from infertool.reporting import Reporter
from infertool.stats import PERCENTILE_METHOD, Stats
from infertool.tensors import format_shape
from infertool.text import listing
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
    reference: Path | None = None  # an ONNX model whose reference-backend outputs are the reference [default: the first model]
    check_outputs: bool = True
    atol: float | None = None
    rtol: float | None = None
    min_cosine: float | None = None
    gate: GateOptions | None = None
    save_optimized: Path | None = None  # the graph the first backend that can optimized
    force: bool = False
    ground_truth: Path | None = None  # --labels-csv (sample -> class): top-1 / top-5 accuracy per row
    skip_unavailable: bool = False  # run the backends that can run here, note the others
    model_labels: tuple[str, ...] = ()  # one short name per model [default: the file names]
    baseline_row: str | None = None  # the speedup baseline: MODEL, BACKEND or MODEL:BACKEND [default: the first row]
    save_samples: bool = False  # keep every iteration's time in the result
    profile: int = 0  # bench --profile: the slowest nodes to list (0: no profile)
    concurrency: int = 1  # bench --concurrency: also run this many sessions / streams at once
    isolate: bool | None = None  # each row in a fresh process [default: where more than one row runs on a GPU]

    def rule(self, precision: str) -> Rule:
        """The rule a row of this graph precision is judged by, with --atol / --rtol / --min-cosine in place of the precision's."""
        return Rule.of(precision, self.atol, self.rtol, self.min_cosine)

    def to_dict(self) -> dict:
        runner = self.runner
        return {
            "backends": list(self.backends), "batches": list(self.batches), "inputs": self.inputs.to_dict(),
            "shape_sets": [{k or "": list(v) for k, v in shapes.items()} for shapes in self.shape_sets],
            "skip_unavailable": self.skip_unavailable,
            "warmup": self.warmup.to_dict(), "measure": self.measure.to_dict(), "device": runner.device,
            "io_binding": runner.io_binding, "cuda_graph": runner.cuda_graph,
            **{kind.key: runner.group(kind).to_dict() for kind in _recorded()},
            "reference": str(self.reference) if self.reference else None, "check_outputs": self.check_outputs,
            "tolerance_overrides": {"atol": self.atol, "rtol": self.rtol, "min_cosine": self.min_cosine},
            "percentile_method": PERCENTILE_METHOD, "timer": "time.perf_counter_ns per inference; CUDA events for gpu_* timings",
            "labels_csv": str(self.ground_truth) if self.ground_truth else None,
            "labels": list(self.model_labels), "baseline_row": self.baseline_row, "save_samples": self.save_samples,
            "profile_top": self.profile, "concurrency": self.concurrency, "isolate": self.isolate,
            "backend_options": {key: asdict(value) for key, value in runner.groups.items() if key not in RECORDED},
        }


RECORDED = ("ort", "engine", "source")  # option groups the bench JSON has always held at the top of its settings, given or not


def _recorded() -> list[type]:
    return [kind for kind in registry.option_groups() if kind.key in RECORDED]


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
    """Reference-backend outputs of the reference model on the bench inputs (cast to its input
    types), computed once per distinct set of inputs."""

    def __init__(self, model: Path, options: BenchOptions):
        self.model = options.reference or model
        self.info = onnx_io.describe(self.model)
        self.backend = registry.get(registry.REFERENCE)
        self.label = f"{self.backend.name} on {self.model.name}"
        graph_optimization = options.runner.group(OrtOptions).graph_optimization
        self._options = RunnerOptions(timeout=options.runner.timeout).with_group(OrtOptions(graph_optimization=graph_optimization))
        self._outputs: dict[str, dict[str, np.ndarray]] = {}

    def outputs(self, feeds: dict) -> dict:
        types = {s.name: s.dtype for s in self.info.inputs if s.is_tensor}
        feeds = {n: v.astype(numpy_dtype(types[n]), copy=False) if isinstance(v, np.ndarray) and n in types else v for n, v in feeds.items()}
        digest = hashlib.sha256()
        for name, value in sorted(feeds.items()):
            digest.update(f"{name}{value_shape(value)!r}".encode())
            digest.update(np.ascontiguousarray(value).tobytes() if isinstance(value, np.ndarray) else repr(value).encode())
        key = digest.hexdigest()
        if key not in self._outputs:
            with self.backend.open(self.model, self._options) as runner:
                self._outputs[key] = runner.infer(feeds)
        return self._outputs[key]

    def check(self, label: str | None, model: ModelInfo) -> None:
        """A model is compared output by output: it takes the reference's inputs and produces every
        output the reference does."""
        for what, mine, theirs in (("inputs", model.inputs, self.info.inputs), ("outputs", model.outputs, self.info.outputs)):
            names, others = [s.name for s in mine], [s.name for s in theirs]
            if (sorted(names) != sorted(others)) if what == "inputs" else not set(others) <= set(names):
                raise InfertoolError(
                    f"the reference model's {what} ({listing(others)}) differ from {f'{label}' if label else 'the model'}'s ({listing(names)})",
                    hint="give a --reference this one was made from (same input and output names), or --no-check",
                )

    def is_itself(self, backend: Backend, model: Path) -> bool:
        """Whether a row of `backend` on `model` is checked against its own runtime and graph."""
        return backend is self.backend and model == self.model

    def fixed(self, feeds: dict, backend: Backend, model: Path) -> FixedReferences:
        return FixedReferences(self.label, self.outputs(feeds), self.is_itself(backend, model))


@dataclass(frozen=True)
class FixedReferences:
    """The reference outputs of one row's feeds, computed here: what a row measured in another process is checked against."""

    label: str
    expected: dict
    itself: bool

    def outputs(self, feeds: dict) -> dict:
        return self.expected

    def is_itself(self, backend: Backend, model: Path) -> bool:
        return self.itself


def _check_request(models: list[Path], options: BenchOptions) -> list[Backend]:
    engine = next((m for m in models if m.suffix == ".engine"), None)
    if engine is not None:
        raise InfertoolError(
            "bench takes the ONNX model, so every backend runs the same graph",
            hint=f"infertool bench MODEL.onnx --backend trt --engine {engine}",
        )
    backends = [registry.get(name) for name in options.backends]
    registry.check_groups(backends, options.runner, "which this bench does not run")
    if options.runner.cuda_graph and not any(b.capabilities.cuda_graphs and options.runner.io_binding for b in backends):
        raise InfertoolError("--cuda-graph needs a GPU backend that can replay CUDA graphs (with IO binding)", hint="add --backend ort-cuda or trt, and drop --no-io-binding")
    if options.save_optimized is not None and not any(b.capabilities.saves_optimized for b in backends):
        raise InfertoolError("--save-optimized needs a backend that optimizes the graph (an ORT backend)", hint="add --backend ort-cpu")
    if options.ground_truth is not None and options.inputs.path is None:
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


def _notes(models: list[ModelInfo], backends: list[Backend], rows: list[BenchRow], options: BenchOptions) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Advice on the result as a whole: (notes, warnings)."""
    notes, warnings = [], []
    on_cpu = {b.name for b in backends if not b.capabilities.on_gpu}
    for model in (m for m in models if m.label == INT8_QDQ and on_cpu):
        notes.append(
            f"{model.path.name} is a TensorRT-shaped int8 Q/DQ graph (int8-qdq): ONNX Runtime on the CPU cannot fuse its "
            "Q/DQ pairs into int8 kernels and often runs it slower than fp32. For the CPU, quantize with --target ort (int8-ort)."
        )
    noisy = [r for r in rows if r.latency.noisy]
    if noisy:
        advice = ["--threads 1"] if options.runner.group(OrtOptions).intra_op_threads is None and any(r.backend in on_cpu for r in noisy) else []
        if not _pinned():
            advice.append(f"taskset -c {(os.cpu_count() or 1) - 1} infertool bench ... (a core nothing else uses)")
        warnings.append(
            "noisy timings (CV over 5%): more iterations will not steady them; "
            + (f"fewer threads and a pinned core do: {', '.join(advice)}; " if advice else "")
            + "close other work"
        )
    return tuple(notes), tuple(warnings)


@dataclass
class _Plan:
    """What a bench run measures, checked before the first row."""

    backends: list[Backend]
    skipped: tuple[dict, ...]
    labels: list[str]
    models: list[ModelInfo]
    baseline_row: Baseline
    references: _References | None
    isolate: bool = False


def _plan(paths: list[Path], options: BenchOptions, reporter: Reporter) -> _Plan:
    backends, skipped = _runnable(_check_request(paths, options), options.skip_unavailable)
    for name in (s["backend"] for s in skipped):
        reporter.note(f"skipping {name}: it cannot run here")
    labels = versions.labels(paths, options.model_labels)
    baseline_row = Baseline.parse(options.baseline_row, labels, [b.name for b in backends])
    models = [onnx_io.describe(path) for path in paths]
    versions.check_inputs(labels, models)
    for backend in backends:
        for model in models:
            backend.check(model, options.runner)
    if options.check_outputs:
        registry.require(registry.REFERENCE)
    for model in models:
        _check_batches(model, options.batches)
    references = _References(paths[0], options) if options.check_outputs else None
    for label, model in zip(labels, models):
        if references is not None:
            references.check(label if len(models) > 1 else None, model)
    gpu_rows = len(models) * max(1, len(options.shape_sets)) * len(options.batches) * sum(b.capabilities.on_gpu for b in backends)
    return _Plan(backends, skipped, labels, models, baseline_row, references, isolating(options, gpu_rows))


# measures one row: (model, backend, feeds, options, references, reporter) -> BenchRow; bench --tune swaps in its own
RowMeasure = Callable[..., BenchRow]


@dataclass(frozen=True)
class RowRequest:
    """One row to measure in a fresh process (bench --isolate, tune's alone-measurements)."""

    model: ModelInfo
    backend: str
    feeds: dict
    options: BenchOptions
    references: FixedReferences | None = None
    labelled: LabelledSet | None = None
    named: str | None = None  # prefixes its progress lines

    @property
    def label(self) -> str:
        return f"{self.named + ' ' if self.named else ''}{self.backend} batch {_batch(self.feeds)}"


def measure_request(request: RowRequest, reporter: Reporter) -> BenchRow:
    """The row a RowRequest asks for, measured in this process (the child's side of `measure_alone`)."""
    backend = registry.get(request.backend)
    return measure_row(request.model, backend, request.feeds, request.options, request.references, reporter, request.labelled, request.named)


def measure_alone(request: RowRequest, reporter: Reporter, timeout: float | None = None) -> BenchRow:
    """The row measured as the only session of a fresh process: raises isolation.ChildDied where that process dies."""
    row = isolation.run(isolation.Job(measure_request, request, request.label, timeout=timeout), reporter)
    return replace(row, isolated=True)


def _isolated_row(model, backend, feeds, options, references, reporter, labelled=None, named=None) -> BenchRow:
    fixed = None if references is None else references.fixed(feeds, backend, model.path)
    return measure_alone(RowRequest(model, backend.name, feeds, options, fixed, labelled, named), reporter)


def isolating(options: BenchOptions, gpu_rows: int) -> bool:
    """Whether each row runs in a fresh process: as asked, else where more than one row runs on a GPU
    (ONNX Runtime's CUDA EP runs a process's later sessions slower: the order of rows would show)."""
    return options.isolate if options.isolate is not None else gpu_rows > 1


def _rows(plan: _Plan, options: BenchOptions, reporter: Reporter, row_measure: RowMeasure | None) -> tuple[list[BenchRow], list[dict]]:
    """Every row measured, and those that could not be (their error): a failed row does not stop the others."""
    rows, failed = [], []
    for label, model in zip(plan.labels, plan.models):
        sources = [FeedSource(list(model.inputs), replace(options.inputs, shapes=shapes)) for shapes in options.shape_sets or (options.inputs.shapes,)]
        for note in sources[0].notes:
            reporter.note(note)
        labelled = None
        if options.ground_truth is not None:
            truth = read_labels_csv(options.ground_truth)
            labelled = LabelledSet(sources[0].feeds(None), classes_for(truth, sources[0].samples(), str(options.inputs.path)), truth)
        named = label if len(plan.models) > 1 else None  # progress names the model where several are compared
        measure = row_measure or functools.partial(_isolated_row if plan.isolate else measure_row, labelled=labelled, named=named)
        for backend, source, batch in ((b, s, n) for b in plan.backends for s in sources for n in options.batches):
            feeds = source.feeds(batch)
            try:
                rows.append(replace(measure(model, backend, feeds, options, plan.references, reporter), model=label))
            except (RowFailed, isolation.ChildDied) as exc:  # this row only: the others still run
                crashed = {"crashed": exc.stage} if isinstance(exc, isolation.ChildDied) else {}
                failed.append({"model": label, "backend": backend.name, "batch": _batch(feeds), "error": exc.message, **crashed})
    return _with_speedups(rows, plan.baseline_row), failed


def run_bench(model_paths: Path | Sequence[Path], options: BenchOptions, reporter: Reporter, row_measure: RowMeasure | None = None) -> BenchResult:
    """Measure every row (model x backend x shapes x batch), then judge: raises CheckFailed
    (carrying the result) on a disagreement with the reference, a row that could not be measured,
    or a regression against the baseline."""
    paths = [model_paths] if isinstance(model_paths, Path) else list(model_paths)
    plan = _plan(paths, options, reporter)
    plan.isolate = plan.isolate and row_measure is None  # --tune measures its best and defaults alone itself
    baseline = load_baseline(options.gate.baseline) if options.gate else None
    if options.save_optimized is not None:
        first = next(b for b in plan.backends if b.capabilities.saves_optimized)
        first.save_optimized(paths[0], options.runner, options.save_optimized, options.force)
        reporter.note(f"saved the graph optimized for {first.name} to {options.save_optimized}")
    rows, failed = _rows(plan, options, reporter, row_measure)
    env, by_label = environment.fingerprint(), dict(zip(plan.labels, plan.models))
    rows = [perf.with_compute([row], by_label[row.model], env, options.runner.device, reporter)[0] for row in rows]
    notes, advice = _notes(plan.models, plan.backends, rows, options)
    if plan.isolate:
        notes = ("each row measured as the only session of a fresh process (--isolate): no row runs after another in one process", *notes)
    if options.inputs.path is None:
        fed = options.inputs.describe({s.name: s.dtype for m in plan.models for s in m.inputs})
        notes = (f"generated inputs: {'; '.join(f'{n} {v}' for n, v in fed.items())}", *notes)
    warnings = [f"{_name(r, len(plan.models) > 1)}: {w}" for r in rows for w in r.warnings]
    described = tuple({"label": label, **model.to_dict()} for label, model in zip(plan.labels, plan.models))
    result = BenchResult(
        env, plan.models[0].to_dict(), {**options.to_dict(), "speedup_baseline": plan.baseline_row.to_dict(), "isolate": plan.isolate}, tuple(rows), (*warnings, *advice),
        skipped=plan.skipped, notes=notes, models=described, failed=tuple(failed),
    )
    if baseline is not None:
        settings = options.gate
        verdict = gate(measured(result), measured(baseline), str(settings.baseline), registry.gate_settings, settings.max_regression, settings.stat, settings.max_cv)
        result = replace(result, gate=verdict)
    _verdict(result)
    return result


def _name(row: BenchRow, with_model: bool) -> str:
    return f"{row.model} {row.backend} batch {row.batch}" if with_model else f"{row.backend} batch {row.batch}"


_CRASH_HINT = "a crash inside the runtime; the other rows were measured. Rerun that row alone with --verbose for the runtime's last words"


def _verdict(result: BenchResult) -> None:
    many = len(result.models) > 1
    failed = [r for r in result.rows if r.agreement is not None and not r.agreement.passed]
    if failed:
        raise CheckFailed(
            f"outputs disagree with the reference: {', '.join(_name(r, many) for r in failed)}",
            hint="see the agreement table; loosen --atol/--rtol/--min-cosine only if the difference is expected",
            result=result,
        )
    crashed = [f for f in result.failed if f.get("crashed")]
    if crashed:
        raise RuntimeCrashed("; ".join(f["error"] for f in crashed), hint=_CRASH_HINT, result=result)
    if result.failed:
        raise CheckFailed("could not measure " + "; ".join(f"{f['backend']} batch {f['batch']}: {f['error']}" for f in result.failed), result=result)
    if result.gate is not None and not result.gate.passed:
        slower = [r for r in result.gate.rows if r.regressed]
        raise CheckFailed(
            "performance regression: " + ", ".join(f"{f'{r.model} ' if many else ''}{r.backend} batch {r.batch} {r.change:+.1%}" for r in slower)
            + f" (limit +{result.gate.max_regression * 100:g}% on {result.gate.stat})",
            hint="if the change is expected, save a new baseline with --json; --max-regression sets the limit",
            result=result,
        )


def _measure(call, label: str, options: BenchOptions, reporter: Reporter, warm=None) -> list[int]:
    """Per-iteration ns after a warm-up; `warm` runs between the two."""
    with reporter.task(f"{label}: warm-up"):
        run_for(call, options.warmup)
    if warm is not None:
        warm()
    with reporter.task(f"{label}: measuring", total=options.measure.iterations) as advance:
        return run_for(call, options.measure, advance)


def _timings(runner: Runner, feeds: dict, label: str, options: BenchOptions, reporter: Reporter, warm=None) -> tuple[dict, dict, str, dict]:
    """End-to-end timing, and where the runner can, device-resident and CUDA-event timings:
    statistics and the samples behind them, by mode."""
    samples = {END_TO_END: _measure(lambda: runner.infer(feeds), f"{label} end-to-end", options, reporter, warm)}
    outputs, mode = runner.infer(feeds), END_TO_END
    if runner.device_resident:
        runner.bind(feeds)
        samples[DEVICE_RESIDENT] = _measure(runner.run_bound, f"{label} device-resident", options, reporter)
        outputs, mode = runner.bound_outputs(), DEVICE_RESIDENT
        with reporter.task(f"{label}: CUDA-event timing"):
            device_ns = runner.device_times(len(samples[DEVICE_RESIDENT]))
        samples.update({f"gpu_{phase}": ns for phase, ns in device_ns.items() if ns})
    return {m: Stats.from_ns(ns) for m, ns in samples.items()}, outputs, mode, samples


def judged(references, precision: str, feeds: dict, outputs: dict, options: BenchOptions) -> Judgement:
    """A row's outputs against the reference's on the same feeds, each sample of the batch judged."""
    return judge(references.outputs(feeds), outputs, options.rule(precision), _batch(feeds))


def _agreement(references, precision: str, feeds: dict, outputs: dict, options: BenchOptions, self_check: bool) -> AgreementReport | None:
    if references is None:
        return None
    return AgreementReport(references.label, precision, judged(references, precision, feeds, outputs, options), self_check=self_check)


def _first_inference(runner: Runner, feeds: dict, label: str, reporter: Reporter, startup: dict) -> None:
    """The first inference, timed apart: where lazy set-up lands (TensorRT-RTX: kernels for the shape)."""
    with reporter.task(f"{label}: first inference"):
        started = time.perf_counter()
        runner.infer(feeds)
        startup["first_inference_ms"] = (time.perf_counter() - started) * 1e3


def _batch(feeds: dict) -> int:
    return next((a.shape[0] for a in feeds.values() if isinstance(a, np.ndarray) and a.ndim), 1)


@dataclass
class _Measured:
    timings: dict
    outputs: dict
    mode: str
    samples: dict
    memory: dict
    info: object
    startup: dict
    accuracy: object
    telemetry: dict | None


def _run(backend: Backend, runner: Runner, feeds: dict, options: BenchOptions, label: str, reporter: Reporter, labelled: LabelledSet | None) -> _Measured:
    """Load, a first inference, the timed loops, memory and (where labelled) task accuracy."""
    device = options.runner.device
    host = HostPeak()
    gpu_before = gpu_used(device) if backend.capabilities.on_gpu else None
    with reporter.task(f"{label}: loading"):
        started = time.perf_counter()
        runner.prepare()
        startup = {"load_ms": (time.perf_counter() - started) * 1e3}
    probe = GpuProbe(device) if backend.capabilities.on_gpu else None
    try:
        host.sample()
        _first_inference(runner, feeds, label, reporter, startup)
        timings, outputs, mode, samples = _timings(runner, feeds, label, options, reporter, probe.start if probe else None)
        gpu_after = gpu_used(device) if gpu_before is not None else None
        memory = {
            "model_file_bytes": None, "host_rss_increase_bytes": host.increase(), "host_peak_exact": host.exact,
            "gpu_bytes": None if gpu_before is None or gpu_after is None else max(0, gpu_after - gpu_before), **runner.memory(),
        }
        info = runner.info()
        accuracy = None
        if labelled is not None:
            with reporter.task(f"{label}: accuracy on {len(labelled.classes)} labelled samples"):
                accuracy = labelled.evaluate(runner.infer, _batch(feeds))
    finally:
        runner.close()
        telemetry = probe.finish() if probe else None
    return _Measured(timings, outputs, mode, samples, memory, info, startup, accuracy, telemetry)


def measure_row(
    model: ModelInfo, backend: Backend, feeds, options: BenchOptions, references, reporter: Reporter,
    labelled: LabelledSet | None = None, named: str | None = None,
) -> BenchRow:
    """One row: `backend` on `feeds`, timed, sized and checked (`named` prefixes its progress lines)."""
    batch = _batch(feeds)
    label = f"{named + ' ' if named else ''}{backend.name} batch {batch}"
    shapes = {name: tuple(array.shape) for name, array in feeds.items() if isinstance(array, np.ndarray)}
    artifact = backend.prepare(model, options.runner, shapes, reporter)
    m = _run(backend, backend.open(artifact, options.runner), feeds, options, label, reporter, labelled)
    extras = _extras(backend, artifact, feeds, options, m.timings[m.mode], label, reporter)
    precision = m.info.precision or model.precision  # an engine may compute below the graph's type
    agreement = _agreement(references, precision, feeds, m.outputs, options, references is not None and references.is_itself(backend, model.path))
    warnings = list(m.info.warnings)
    if m.telemetry is not None and clock_drop(m.telemetry):
        warnings.insert(0, clock_drop(m.telemetry))
    if m.timings[m.mode].noisy:
        warnings.insert(0, f"noisy: coefficient of variation {m.timings[m.mode].cv:.1%} > 5%")
    return BenchRow(
        backend.name, batch, precision, m.mode, m.timings, {**m.memory, "model_file_bytes": model.bytes}, {n: value_shape(v) for n, v in feeds.items()},
        dict(m.info.settings), agreement, warnings=tuple(warnings), accuracy=m.accuracy, startup={k: round(v, 3) for k, v in m.startup.items()},
        samples=m.samples if options.save_samples else {}, gpu=m.telemetry, graph_sha256=model.sha256, **extras,
    )


def _extras(backend: Backend, artifact: Path, feeds: dict, options: BenchOptions, single: Stats, label: str, reporter: Reporter) -> dict:
    """bench --profile and --concurrency, each in sessions of its own (the timed one stays untouched)."""
    extras = {}
    if options.profile:
        extras["profile"] = perf.profile_row(backend, artifact, feeds, options.runner, options.profile, label, reporter)
    if options.concurrency > 1:
        budgets = (options.warmup, options.measure)
        extras["concurrency"] = perf.concurrent_row(backend, artifact, feeds, options.runner, options.concurrency, budgets, single, label, reporter)
    return extras


def _with_speedups(rows: list[BenchRow], baseline: Baseline) -> list[BenchRow]:
    """Each row's speedup by the one rule (records/speedup.py)."""
    found = speedups([Measured(r, {"label": r.model or "", "path": ""}, {}) for r in rows], baseline)
    return [replace(r, speedup=s) for r, s in zip(rows, found)]
