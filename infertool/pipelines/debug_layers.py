"""`debug layers`: a reference and a candidate (a converted graph, or the same graph on another
backend) on the same inputs, compared tensor by tensor in topological order, sample by sample.

The candidate's intermediate tensors are read as extra graph outputs, or as TensorRT debug
tensors where the backend has them. Extra outputs can change what a runtime fuses, so the
candidate also runs unmodified: its final outputs are the ones reported, and the report says
whether exposing the tensors changed the optimized graph or the outputs.
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import onnx

from infertool import onnx_io
from infertool.agreement import tolerance
from infertool.backends import registry
from infertool.backends.base import Runner, RunnerOptions
from infertool.backends.onnxruntime import OrtOptions
from infertool.backends.tensorrt import EngineOptions
from infertool.divergence import GROWTH, ROUNDOFF, Divergence, element_tolerance_text
from infertool.dtypes import numpy_dtype
from infertool.engine import debug_tensors
from infertool.engine import sidecar as sidecars
from infertool.errors import InfertoolError
from infertool.inputs.batches import split_batches
from infertool.inputs.feeds import FeedSource, InputOptions
from infertool.onnx_io import ModelInfo
from infertool.pipelines.accuracy import emulated
from infertool.precision import matching
from infertool.records.debug import LayerRow, LayersResult
from infertool.reporting import Reporter
from infertool.vocabulary import tolerance_class

MIN_SAME_SHAPES = 0.5  # below this share of same-named tensors with the same shape, the graphs do not correspond
FP16_RANGE_MATTERS = ("fp16", "fp32", "fp64")  # fp32: a backend may run the graph in fp16 (TensorRT's builder flags)


@dataclass(frozen=True)
class LayersOptions:
    candidate: Path | None = None  # None: the reference graph itself, on the candidate backend
    inputs: InputOptions = field(default_factory=InputOptions)
    samples: int = 8  # generated samples, when no input file is given
    backend: str = registry.REFERENCE
    candidate_backend: str | None = None  # None: `backend`
    graph_optimization: str = "all"  # ONNX Runtime's level, for both sides
    keep_fusions: bool = True  # TensorRT: mark unfused tensors (fusion untouched) where it can, rather than each tensor
    device: int = 0

    def runner(self, debug: tuple[str, ...] = ()) -> RunnerOptions:
        engine = EngineOptions(debug_tensors=debug, keep_fusions=self.keep_fusions)
        return RunnerOptions(device=self.device).with_group(OrtOptions(graph_optimization=self.graph_optimization)).with_group(engine)


@dataclass(frozen=True)
class Graph:
    """One side of the comparison: a model, read once, and the backend that runs it."""

    info: ModelInfo
    proto: onnx.ModelProto
    backend: str

    @classmethod
    def read(cls, path: Path, backend: str) -> Graph:
        proto = onnx_io.load(path)
        return cls(onnx_io.describe(path, proto), proto, backend)


def samples(info: ModelInfo, inputs: InputOptions, count: int) -> tuple[list[dict[str, np.ndarray]], str]:
    """One feed per sample (per fixed batch where the model fixes one), and where they came from."""
    specs = list(info.inputs)
    source = FeedSource(specs, inputs)
    stacked = source.feeds(None if inputs.path else count)
    data = str(inputs.path) if inputs.path else f"{count} generated samples (seed {inputs.seed})"
    return split_batches(stacked, specs, 1), data


def debug_layers(reference_path: Path, options: LayersOptions, reporter: Reporter) -> LayersResult:
    candidate_backend = options.candidate_backend or options.backend
    if options.candidate is None and candidate_backend == options.backend:
        raise InfertoolError("nothing to compare: one model on one backend", hint="give a CANDIDATE.onnx, or --candidate-backend (e.g. -b ort-cpu --candidate-backend ort-cuda)")
    for name in dict.fromkeys((options.backend, candidate_backend)):
        registry.require(name)
    reference = Graph.read(reference_path, options.backend)
    candidate = Graph.read(options.candidate, candidate_backend) if options.candidate else replace(reference, backend=candidate_backend)
    runs, data = samples(reference.info, options.inputs, options.samples)
    return compare_layers(reference, candidate, runs, data, options, reporter)


def compare_layers(reference: Graph, candidate: Graph, runs: list[dict[str, np.ndarray]], data: str, options: LayersOptions, reporter: Reporter) -> LayersResult:
    """Both graphs on every run, tensor by tensor."""
    started = time.perf_counter()
    _check_inputs(reference.info, candidate.info)
    found = matching.match(reference.proto, candidate.proto)
    _check_matched(found, {s.name for s in reference.info.outputs}, candidate.info.path)
    precision = tolerance_class(candidate.info.precision) if candidate.info.precision != "fp64" else "fp32"
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="infertool-debug-") as scratch, ExitStack() as stack:
        folder = Path(scratch)
        exposed, untyped = matching.expose(reference.proto, [m.name for m in found.tensors])
        found = replace(found, tensors=tuple(m for m in found.tensors if m.name not in untyped), unmatched=(*found.unmatched, *untyped))
        ref_runner = stack.enter_context(_open(reference, _saved(exposed, folder / "reference.onnx"), options, runs[0], reporter))
        reader = stack.enter_context(_reader(candidate, found, precision, options, runs[0], folder, notes, reporter))
        stats, outputs, drift = _accumulate(ref_runner, reader, found, reference.info, precision, runs, reporter)
    found = _read_only(found, stats, notes)
    _shapes_correspond(stats, found, candidate.info.path)
    notes += _drift_notes(drift, candidate.backend)
    rows = _rows(found, stats, reference.info, precision)
    final = tuple(_output_row(name, outputs[name], precision) for name in outputs)
    first = next((i for i, row in enumerate(rows) if row.diverged), None)
    atol, rtol, min_cosine = tolerance(precision)
    return LayersResult(
        reference=_side(reference), candidate=_side(candidate), precision=precision,
        tolerance={"atol": atol, "rtol": rtol, "min_cosine": min_cosine, "elements": element_tolerance_text(precision)}, samples=len(runs), data=data, rows=tuple(rows),
        outputs=final, first_divergence=first, unmatched=found.unmatched, read_as=reader.read_as, notes=tuple(notes),
        seconds=time.perf_counter() - started,
    )


def _side(graph: Graph) -> dict:
    return {"path": str(graph.info.path), "sha256": graph.info.sha256, "backend": graph.backend, "precision": graph.info.precision}


def _saved(model: onnx.ModelProto, path: Path) -> Path:
    onnx_io.save(model, path)
    return path


def _check_inputs(reference: ModelInfo, candidate: ModelInfo) -> None:
    ours, theirs = [s.name for s in reference.inputs], [s.name for s in candidate.inputs]
    if sorted(ours) != sorted(theirs):
        raise InfertoolError(
            f"{candidate.path} takes inputs {', '.join(theirs) or '(none)'}, the reference {', '.join(ours) or '(none)'}: not the same model",
            hint="give the model and its own converted version (infertool quantize keeps tensor names)",
        )


def _check_matched(found: matching.Matching, outputs: set[str], path: Path) -> None:
    if all(m.name in outputs for m in found.tensors):
        raise InfertoolError(
            f"no intermediate tensor of the reference has a counterpart in {path}: nothing to compare layer by layer",
            hint="give the model and its own converted version (infertool quantize keeps tensor names), not a re-exported one",
        )
    if found.same_ops == 0:
        raise InfertoolError(
            f"the tensors {path} shares with the reference by name are all produced by other ops: the graphs do not correspond",
            hint="give the model and its own converted version (infertool quantize keeps tensor names)",
        )


def _shapes_correspond(stats: _Stats, found: matching.Matching, path: Path) -> None:
    same = sum(not stats.read[m.name].shape_mismatch for m in found.tensors)
    if same < MIN_SAME_SHAPES * len(found.tensors):
        raise InfertoolError(
            f"{len(found.tensors) - same} of the {len(found.tensors)} tensors {path} shares with the reference by name have other shapes: the graphs do not correspond",
            hint="give the model and its own converted version (infertool quantize keeps tensor names)",
        )


def _read_only(found: matching.Matching, stats: _Stats, notes: list[str]) -> matching.Matching:
    """The tensors the candidate run returned (a TensorRT engine returns those fusion left)."""
    read = tuple(m for m in found.tensors if stats.read[m.name].runs)
    if not read:
        raise InfertoolError("no intermediate tensor could be read from the candidate", hint="try --no-keep-fusions, or another --candidate-backend")
    unread = tuple(m.name for m in found.tensors if not stats.read[m.name].runs)
    if unread:
        notes.append(f"{len(unread)} tensors were not returned by the candidate run (fused away) and are listed as unmatched")
    return replace(found, tensors=read, unmatched=(*found.unmatched, *unread))


@contextmanager
def _open(graph: Graph, path: Path, options: LayersOptions, feeds: dict, reporter: Reporter, debug: tuple[str, ...] = ()) -> Iterator[Runner]:
    """A runner over `path` (a file standing for `graph`) on the graph's backend."""
    backend = registry.get(graph.backend)
    runner_options = options.runner(debug)
    info = graph.info if path == graph.info.path else onnx_io.describe(path)  # its own hash: engine caches key on it
    artifact = backend.prepare(info, runner_options, {n: tuple(a.shape) for n, a in feeds.items()}, reporter)
    with backend.open(artifact, runner_options) as runner:
        yield runner


def _infer(runner: Runner, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    wanted = {s.name: numpy_dtype(s.dtype) for s in runner.inputs}  # fp16 inputs without --keep-io-types
    return runner.infer({n: a.astype(wanted.get(n, a.dtype), copy=False) for n, a in feeds.items()})


class _Reader:
    """How the candidate's tensors are read: `run` returns (tensors by candidate name, the final
    outputs of the candidate as deployed, the final outputs of the run that read the tensors)."""

    read_as = ""

    def run(self, feeds: dict[str, np.ndarray]) -> tuple[dict, dict, dict]:
        raise NotImplementedError


class _Exposed(_Reader):
    """The candidate with its matched tensors as graph outputs, next to the unmodified candidate."""

    read_as = "graph outputs"

    def __init__(self, exposed: Runner, plain: Runner, outputs: list[str]):
        self.exposed, self.plain, self.outputs = exposed, plain, outputs

    def run(self, feeds):
        tensors = _infer(self.exposed, feeds)
        return tensors, _infer(self.plain, feeds), {n: tensors[n] for n in self.outputs}


class _DebugTensors(_Reader):
    """An engine built with debug tensors (read through an IDebugListener), next to the plain engine."""

    def __init__(self, debug: Runner, plain: Runner, resolve: Callable[[list[str]], dict[str, str]], read_as: str):
        self.debug, self.plain, self.resolve, self.read_as = debug, plain, resolve, read_as

    def run(self, feeds):
        outputs = _infer(self.debug, feeds)
        captured = self.debug.intermediates()
        names = self.resolve(list(captured))
        return {**{names[n]: v for n, v in captured.items() if n in names}, **outputs}, _infer(self.plain, feeds), outputs


@contextmanager
def _reader(
    candidate: Graph, found: matching.Matching, precision: str, options: LayersOptions, feeds: dict, folder: Path,
    notes: list[str], reporter: Reporter,
) -> Iterator[_Reader]:
    wanted = list(dict.fromkeys(n for m in found.tensors for n in (m.candidate, m.produced)))
    with ExitStack() as stack:
        if registry.get(candidate.backend).capabilities.debug_tensors:
            plain = stack.enter_context(_open(candidate, candidate.info.path, options, feeds, reporter))
            debug = stack.enter_context(_open(candidate, candidate.info.path, options, feeds, reporter, tuple(wanted)))
            resolve, read_as = _engine_names(debug, candidate.proto, notes)
            yield _DebugTensors(debug, plain, resolve, read_as)
            return
        path, emulation = emulated(candidate.info.path, precision, candidate.backend, folder)
        notes += [emulation] if emulation else []
        plain = stack.enter_context(_open(candidate, path, options, feeds, reporter))
        model = onnx_io.load(path) if emulation else candidate.proto
        exposed = _saved(matching.expose(model, wanted)[0], folder / "candidate.exposed.onnx")
        notes += _fusion_notes(candidate, path, exposed, options, folder)
        outputs = [o.name for o in candidate.proto.graph.output]
        yield _Exposed(stack.enter_context(_open(candidate, exposed, options, feeds, reporter)), plain, outputs)


def _engine_names(runner: Runner, proto: onnx.ModelProto, notes: list[str]) -> tuple[Callable[[list[str]], dict[str, str]], str]:
    """How the engine's debug tensor names become ONNX tensor names: as they are where each was
    marked, else through the engine's layers and the ONNX nodes they came from."""
    sidecar = sidecars.read(runner.model) or {}
    marked = debug_tensors.Marked.from_dict(sidecar.get("debug_tensors") or {})
    if marked.unfused:
        layers = sidecar.get("layers") or []
        node_outputs = {n.name: [o for o in n.output if o] for n in proto.graph.node if n.name}
        notes.append("TensorRT debug tensors: the tensors that survive fusion (fusion untouched), mapped to ONNX tensors by the engine's layer metadata")
        return (lambda names: debug_tensors.onnx_tensors(names, layers, node_outputs)), "TensorRT debug tensors (unfused, fusion kept)"
    if marked.missing:
        notes.append(f"{len(marked.missing)} tensors are not in TensorRT's parsed network (renamed or folded by its parser)")
    notes.append("TensorRT debug tensors marked one by one: TensorRT does not fuse across them, so the layer numbers come from another engine than the deployed one")
    chosen = set(marked.tensors)
    return (lambda names: {n: n for n in names if n in chosen}), "TensorRT debug tensors (marked, fusion stopped at each)"


def _fusion_notes(candidate: Graph, plain: Path, exposed: Path, options: LayersOptions, folder: Path) -> list[str]:
    """Whether the extra outputs changed the graph the backend optimized (where it can save it)."""
    backend = registry.get(candidate.backend)
    if not backend.capabilities.saves_optimized:
        return []
    counts = []
    for path in (plain, exposed):
        target = folder / f"{path.stem}.optimized.onnx"
        backend.save_optimized(path, options.runner(), target, True)
        counts.append(Counter(n.op_type for n in onnx_io.load(target).graph.node))
    changed = sorted(op for op in set(counts[0]) | set(counts[1]) if counts[0][op] != counts[1][op])
    if not changed:
        return [f"exposing the tensors left {backend.name}'s optimized graph as it was (graph optimization: {options.graph_optimization})"]
    shown = ", ".join(f"{op} {counts[0][op]}→{counts[1][op]}" for op in changed[:8])
    return [f"exposing the tensors changed {backend.name}'s fusions ({shown}): the layer numbers come from that graph, the output rows from the unmodified one"]


def _accumulate(
    ref: Runner, reader: _Reader, found: matching.Matching, info: ModelInfo, precision: str, runs: list[dict], reporter: Reporter,
) -> tuple[_Stats, dict[str, Divergence], dict[str, float]]:
    """Divergence over all runs per tensor and per final output; and how far the outputs of the run
    that read the tensors stray from the unmodified candidate's."""
    stats = _Stats({m.name: Divergence(precision) for m in found.tensors}, {m.name: Divergence(precision) for m in found.tensors if m.quantized})
    outputs = {s.name: Divergence(precision) for s in info.outputs}
    drift: dict[str, float] = {}
    with reporter.task(f"comparing {len(found.tensors)} tensors on {len(runs)} samples", total=len(runs)) as advance:
        for index, feeds in enumerate(runs):
            expected = _infer(ref, feeds)
            tensors, deployed, read = reader.run(feeds)
            for m in found.tensors:
                if m.candidate in tensors:
                    stats.read[m.name].add(expected[m.name], tensors[m.candidate], index)
                if m.quantized and m.produced in tensors:
                    stats.produced[m.name].add(expected[m.name], tensors[m.produced], index)
            for name, divergence in outputs.items():
                divergence.add(expected[name], deployed[name], index)
                if name in read:
                    drift[name] = max(drift.get(name, 0.0), _gap(read[name], deployed[name]))
            advance(1)
    return stats, outputs, drift


@dataclass(frozen=True)
class _Stats:
    read: dict[str, Divergence]  # each tensor as its readers see it (dequantized where quantized)
    produced: dict[str, Divergence]  # quantized tensors as their producer wrote them

    def error_before(self, name: str) -> float | None:
        """A node input's error before any Q/DQ the node adds; None where not compared."""
        found = self.produced.get(name) or self.read.get(name)
        return None if found is None or not found.runs else found.error


def _gap(a: np.ndarray, b: np.ndarray) -> float:
    """The largest difference between two runs' outputs (inf where shapes or NaN/Inf places differ)."""
    if a.shape != b.shape:
        return float("inf")
    a, b = a.astype(np.float64), b.astype(np.float64)
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    with np.errstate(invalid="ignore"):
        gap = np.where(same, 0.0, np.abs(a - b))
    return float(np.nan_to_num(gap, nan=np.inf).max()) if gap.size else 0.0


def _drift_notes(drift: dict[str, float], backend: str) -> list[str]:
    if not drift:
        return []
    worst = max(drift.values())
    if worst == 0:
        return [f"the candidate's outputs on {backend} are bit-identical with and without its tensors read"]
    return [f"reading the tensors changed the candidate's outputs on {backend} by up to {worst:.3g} (output rows: the unmodified candidate)"]


def _rows(found: matching.Matching, stats: _Stats, info: ModelInfo, precision: str) -> list[LayerRow]:
    inputs = {s.name for s in info.inputs}
    floor = ROUNDOFF.get(precision, ROUNDOFF["fp32"])
    min_cosine = tolerance(precision)[2]
    rows = []
    for m in found.tensors:
        divergence = stats.read[m.name]
        before = [0.0 if i in inputs else stats.error_before(i) for i in m.inputs]  # weights: None
        known = [e for e in before if e is not None]
        growth = _growth(divergence.error, max(known, default=0.0), floor) if known else None
        flags = ("q/dq", *_flags(divergence, growth, precision)) if m.quantized else _flags(divergence, growth, precision)
        rows.append(LayerRow(m.name, m.node, m.op, m.candidate, m.quantized, divergence, growth, flags, divergence.diverged(min_cosine)))
    return rows


def _growth(error: float, before: float, floor: float) -> float | None:
    if np.isinf(before) or np.isnan(error):
        return None
    return error / max(before, floor)


def _flags(divergence: Divergence, growth: float | None, precision: str) -> tuple[str, ...]:
    flags = []
    if precision in FP16_RANGE_MATTERS and divergence.overflow:
        flags.append("fp16-overflow")
    if precision in FP16_RANGE_MATTERS and divergence.underflows:
        flags.append("fp16-underflow")
    if divergence.nonfinite:
        flags.append("nan/inf")
    if divergence.shape_mismatch:
        flags.append("shape")
    if growth is not None and growth >= GROWTH and divergence.error > GROWTH * ROUNDOFF.get(precision, ROUNDOFF["fp32"]):
        flags.append("growth")
    return tuple(flags)


def _output_row(name: str, divergence: Divergence, precision: str) -> LayerRow:
    return LayerRow(name, "", "output", name, False, divergence, None, _flags(divergence, None, precision), divergence.diverged(tolerance(precision)[2]))
