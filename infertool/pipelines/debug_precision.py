"""`debug precision`: a few nodes to keep in fp32 (fp16 / bf16) or out of quantization (int8 /
fp8) so that the converted model passes its accuracy gate on every evaluation sample.

The candidates are the nodes the conversion changes (for int8 / fp8: those of the op types the
quantizer quantizes). They are ranked by how much each one breaks the output on its own (int8 / fp8:
the converted graph with only that node reading quantized inputs, judged on a few samples, within
half the budget), then by the layer-wise report of the fully converted model (values beyond fp16's
range, NaN/Inf, error growth over the node's inputs). Keep sets are then checked by converting
(the calibration ranges of step 0 reused) and evaluating for real: the shortest passing head of the
ranking (doubling, then bisection), then each kept node dropped again where the gate passes without
it, within a time budget.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import onnx

from infertool import onnx_io
from infertool.agreement import judge
from infertool.backends import registry
from infertool.errors import CheckFailed
from infertool.files import check_output, write_text_atomic
from infertool.inputs.batches import sample_count, split_batches
from infertool.pipelines.accuracy import batch_outputs, emulated
from infertool.pipelines.debug_layers import Graph, LayersOptions, compare_layers
from infertool.pipelines.quantize import QuantizeOptions, calibration_batch, samples
from infertool.precision import matching, qdq, transform
from infertool.records.debug import LayersResult, PrecisionResult, PrecisionStep
from infertool.reporting import Reporter, SilentReporter
from infertool.vocabulary import tolerance_class

RANKED_SHOWN = 10  # ranked nodes listed in the result
SENSITIVITY_SAMPLES = 8  # evaluation samples each node's own effect is measured on


@dataclass(frozen=True)
class SearchOptions:
    keep: Path  # the keep list to write, one node name a line
    quantize: QuantizeOptions  # the conversion, its data, evaluation backend and gate, as quantize takes them; its output is not written
    budget: float = 600.0  # seconds for the search; past it, the best keep set found so far is returned
    command: str = ""  # the quantize command line the keep list was verified for (written by the CLI)

    @property
    def gate(self) -> dict:
        """The rule each step is judged by: quantize's (agreement.Rule), so the keep list passes quantize's gate."""
        return self.quantize.rule().to_dict()


class _OutOfTime(Exception):
    pass


class _Search:
    """Convert with a keep list, evaluate on every sample, record the step."""

    def __init__(self, source: Path, model: onnx.ModelProto, options: SearchOptions, batches, runs, folder: Path, reporter: Reporter):
        q = options.quantize
        self.source, self.model, self.options, self.batches, self.runs, self.folder, self.reporter = source, model, options, batches, runs, folder, reporter
        cache = q.settings.calib_cache or (folder / "ranges.calib" if q.settings.quantized else None)
        self.settings = replace(q.settings, calib_cache=cache)  # calibrate once, reuse the ranges in every step
        self.started = time.perf_counter()
        self.steps: list[PrecisionStep] = []
        self.emulation = ""  # how the evaluation backend stands in for the precision, if it does
        self.reference = batch_outputs(source, q.eval_backend, runs, lambda steps=1: None)

    def convert(self, keep: tuple[str, ...], path: Path) -> dict:
        settings = replace(self.settings, exclude_nodes=(*self.settings.exclude_nodes, *keep))
        return transform.convert(self.source, self.model, path, settings, self.batches, SilentReporter()).graph

    def step(self, phase: str, keep: tuple[str, ...], keep_file: bool = False) -> PrecisionStep:
        """The verdict on `keep` (a set checked before is not converted again)."""
        done = next((s for s in self.steps if set(s.keep) == set(keep)), None)
        if done is not None:
            return done
        if self.steps and time.perf_counter() - self.started > self.options.budget:
            raise _OutOfTime
        began = time.perf_counter()
        path = self.folder / f"step{len(self.steps)}.onnx"
        with self.reporter.task(f"step {len(self.steps)}: converting with {len(keep)} node(s) kept, evaluating on {len(self.runs)} samples"):
            graph = self.convert(keep, path)
            passed, cosine, top1, failing = self.evaluate(path)
        if not keep_file:
            for leftover in self.folder.glob(f"{path.stem}.*"):  # the model, its external data, its emulation
                leftover.unlink()
        step = PrecisionStep(len(self.steps), phase, keep, passed, cosine, top1, failing, len(self.runs), graph, time.perf_counter() - began)
        self.steps.append(step)
        self.reporter.note(step.describe())
        return step

    def evaluate(self, path: Path, count: int | None = None) -> tuple[bool, float | None, float | None, int]:
        """(passed, worst cosine, top-1 agreement, failing samples) under quantize's rule, every sample
        (or the first `count`) judged."""
        q = self.options.quantize
        runs, references = self.runs[:count], self.reference[:count]
        evaluated, self.emulation = emulated(path, tolerance_class(q.settings.precision), q.eval_backend, self.folder)
        got = batch_outputs(evaluated, q.eval_backend, runs, lambda steps=1: None)
        reference = {n: _joined([r[n] for r in references]) for n in references[0]}
        candidate = {n: _joined([g[n] for g in got]).astype(reference[n].dtype) for n in reference}
        judgement = judge(reference, candidate, q.rule(), len(runs))
        return judgement.passed, judgement.min_cosine, judgement.top1, len(judgement.failing)


def _joined(arrays: list[np.ndarray]) -> np.ndarray:
    """One output over every run: along the batch axis (scalars stacked)."""
    return np.stack(arrays) if arrays[0].ndim == 0 else np.concatenate(arrays)


def debug_precision(model_path: Path, options: SearchOptions, reporter: Reporter) -> PrecisionResult:
    q = options.quantize
    started = time.perf_counter()
    model = onnx_io.load(model_path)
    info = onnx_io.describe(model_path, model)
    transform.check_request(info.precision, q.settings, q.calib is not None)
    check_output(options.keep, q.force)
    registry.require(q.eval_backend)
    specs, notes = list(info.inputs), []
    chosen = samples(specs, q, notes)
    calib, data = chosen.calib, chosen.described
    runs = split_batches(chosen.eval, specs, 1)
    batches = None if calib is None else split_batches(calib, specs, calibration_batch(sample_count(calib), q.settings))
    with tempfile.TemporaryDirectory(prefix="infertool-precision-") as scratch:
        search = _Search(model_path, model, options, batches, runs, Path(scratch), reporter)
        baseline = search.step("convert all", (), keep_file=True)
        notes += [search.emulation] if search.emulation else []
        layers, ranking = None, []
        if not baseline.passed:
            layers = _layers(search, info, model, data)
            candidates = _candidates(search, model, notes)
            ranking = _sensitivity(search, model, _rank(layers, candidates, q.settings.precision, model), notes)
            try:
                keep = _find(search, ranking, notes)
            except CheckFailed as failure:  # say where the conversion breaks and which nodes hurt most on their own
                raise CheckFailed(f"{failure.message}{_where(layers, ranking)}", hint=failure.hint) from None
            if candidates and set(candidates) <= set(keep):
                notes.append(f"the keep list holds every node the conversion changes: no node is left in {q.settings.precision}")
        else:
            keep = ()
    final = next(s for s in reversed(search.steps) if s.passed and set(s.keep) == set(keep))
    _write_keep(options, model_path, keep)
    return PrecisionResult(
        model=str(model_path), sha256=info.sha256, precision=q.settings.precision, gate=options.gate, data=data, samples=len(runs),
        keep=keep, keep_file=str(options.keep), steps=tuple(search.steps), ranking=tuple(ranking[:RANKED_SHOWN]),
        first_divergence=None if layers is None or layers.first is None else layers.first.to_dict(),
        cost=_cost(baseline, final, q.settings.precision), notes=tuple(notes), seconds=time.perf_counter() - started,
        command=options.command,
    )


def _where(layers: LayersResult, ranking: list[str]) -> str:
    first = layers.first
    found = "" if first is None else f"; first divergence: tensor '{first.tensor}' from node {first.node} ({first.op})"
    return found + (f"; worst on their own: {', '.join(ranking[:3])}" if ranking else "")


def _layers(search: _Search, info, model: onnx.ModelProto, data: str) -> LayersResult:
    """The layer-wise report of the fully converted model (step 0's file)."""
    backend = search.options.quantize.eval_backend
    with search.reporter.task(f"comparing every tensor of the {search.settings.precision} model on {backend}"):
        candidate = Graph.read(search.folder / "step0.onnx", backend)
        return compare_layers(Graph(info, model, backend), candidate, search.runs, data, LayersOptions(backend=backend), SilentReporter())


def _candidates(search: _Search, model: onnx.ModelProto, notes: list[str]) -> list[str]:
    """The nodes a keep list can name: those the conversion changed (and named, so they can be listed)."""
    converted = onnx_io.load(search.folder / "step0.onnx")
    found = matching.quantized_nodes(converted) if search.settings.quantized else matching.reduced_nodes(converted)
    unnamed = sum(not n.name and n.op_type != "Constant" for n in model.graph.node)
    if unnamed:
        notes.append(f"{unnamed} nodes have no name and cannot be kept: name them (every exporter can) to let the search use them")
    computing = set(qdq.quantized_op_types(search.settings)) if search.settings.quantized else None  # not Shape, Concat of shapes...
    known = {n.name: n.op_type for n in model.graph.node}
    return [
        name for name in dict.fromkeys(found)
        if name in known and name not in search.settings.exclude_nodes and (computing is None or known[name] in computing)
    ]


def _rank(layers: LayersResult, candidates: list[str], precision: str, model: onnx.ModelProto) -> list[str]:
    """Most suspect first: nodes touching a tensor beyond fp16's range (fp16), nodes whose output
    turns NaN/Inf, nodes whose error grows past their inputs'; then by growth and error."""
    rows = {row.tensor: row for row in layers.rows}
    nodes = {n.name: n for n in model.graph.node if n.name}

    def score(name: str) -> tuple:
        node = nodes[name]
        outputs = [rows[o] for o in node.output if o in rows]
        inputs = [rows[i] for i in node.input if i in rows]
        if not outputs:
            return (-1, 0.0, 0.0)
        overflow = precision == "fp16" and any(r.divergence.overflow for r in [*outputs, *inputs])
        broken = any(r.divergence.nonfinite for r in outputs) and not any(r.divergence.nonfinite for r in inputs)
        grows = any("growth" in r.flags or r.diverged for r in outputs)
        growth = max((r.growth for r in outputs if r.growth is not None and r.growth == r.growth), default=0.0)
        return (3 if overflow else 2 if broken else 1 if grows else 0, growth, max(r.divergence.error for r in outputs))

    return sorted(candidates, key=score, reverse=True)


def _sensitivity(search: _Search, model: onnx.ModelProto, ranking: list[str], notes: list[str]) -> list[str]:
    """int8 / fp8: `ranking` re-ordered by each node's own effect, the worst first: step 0's graph
    with every other candidate reading its fp32 inputs again, judged on a few samples (worst cosine,
    then failing samples). Where errors build up over the whole graph the layer report's growth
    misleads; what one node's quantization does to the output does not. Nodes not measured within
    half the budget follow in the layer order."""
    if not search.settings.quantized or len(ranking) < 2 or model.ByteSize() > onnx_io.EXTERNAL_DATA_THRESHOLD // 2:
        return ranking
    converted = onnx_io.load(search.folder / "step0.onnx")
    count = min(SENSITIVITY_SAMPLES, len(search.runs))
    measured: dict[str, tuple[float, int]] = {}
    began = time.perf_counter()
    with search.reporter.task(f"measuring each of {len(ranking)} nodes quantized alone on {count} samples", total=len(ranking)) as advance:
        for name in ranking:
            if time.perf_counter() - search.started > search.options.budget / 2:
                notes.append(f"half the budget went to measuring {len(measured)} of {len(ranking)} nodes alone; the rest follow in the layer order")
                break
            path = search.folder / "alone.onnx"
            onnx.save(_alone(converted, model, name, ranking), path)
            _, cosine, _, failing = search.evaluate(path, count)
            measured[name] = (-2.0 if cosine is None or cosine != cosine else cosine, -failing)
            advance()
    order = sorted(measured, key=measured.__getitem__) + [n for n in ranking if n not in measured]
    worst = ", ".join(f"{n} (cosine {measured[n][0]:.3f})" for n in order[:3] if n in measured)
    search.reporter.note(f"ranked {len(measured)} nodes by their own effect in {time.perf_counter() - began:.1f} s; worst: {worst}")
    return order


def _alone(converted: onnx.ModelProto, source: onnx.ModelProto, node: str, candidates: list[str]) -> onnx.ModelProto:
    """`converted` with every candidate but `node` reading what it reads in `source` (fp32 tensors, fp32 weights)."""
    alone = onnx.ModelProto()
    alone.CopyFrom(converted)
    originals = {n.name: n for n in source.graph.node if n.name in set(candidates) - {node}}
    weights = {i.name: i for i in source.graph.initializer}
    present = {i.name for i in alone.graph.initializer}
    for current in alone.graph.node:
        if current.name in originals:
            del current.input[:]
            current.input.extend(originals[current.name].input)
            for name in originals[current.name].input:
                if name in weights and name not in present:
                    alone.graph.initializer.append(weights[name])
                    present.add(name)
    return alone


def _find(search: _Search, ranking: list[str], notes: list[str]) -> tuple[str, ...]:
    if not ranking:
        raise CheckFailed("the converted model fails its gate and no node can be kept to fix it", hint="check the evaluation data, or use a wider precision")
    passing: tuple[str, ...] | None = None
    try:
        passing = _shortest_head(search, ranking)
        return _prune(search, passing)
    except _OutOfTime:
        best = next((s.keep for s in sorted(search.steps, key=lambda s: len(s.keep)) if s.passed), passing)
        if best is None:
            raise CheckFailed(
                f"no keep set passed within the {search.options.budget:.0f} s budget ({len(search.steps)} conversions)",
                hint="raise --budget, or give fewer --eval-data samples",
            ) from None
        notes.append(f"the {search.options.budget:.0f} s budget ran out: the keep list passes the gate but may not be the smallest")
        return best


def _shortest_head(search: _Search, ranking: list[str]) -> tuple[str, ...]:
    """The shortest head of the ranking whose keep list passes: doubling, then bisection."""
    failing, size = 0, 1
    while True:
        size = min(size, len(ranking))
        if search.step("grow", tuple(ranking[:size])).passed:
            break
        if size == len(ranking):
            raise CheckFailed(
                f"even with all {len(ranking)} converted nodes kept the model fails its gate",
                hint="the loss is not in the nodes' precision: check the calibration and evaluation data, --keep-io-types, or use a wider precision",
            )
        failing, size = size, size * 2
    while size - failing > 1:
        middle = (failing + size) // 2
        if search.step("bisect", tuple(ranking[:middle])).passed:
            size = middle
        else:
            failing = middle
    return tuple(ranking[:size])


def _prune(search: _Search, keep: tuple[str, ...]) -> tuple[str, ...]:
    """Each kept node dropped again, least suspect first, where the gate passes without it."""
    for name in reversed(keep):
        if len(keep) > 1 and search.step("prune", tuple(n for n in keep if n != name)).passed:
            keep = tuple(n for n in keep if n != name)
    return keep


def _cost(baseline: PrecisionStep, final: PrecisionStep, precision: str) -> dict:
    cost = {"kept_nodes": len(final.keep), "min_cosine_before": baseline.min_cosine, "min_cosine_after": final.min_cosine,
            "top1_before": baseline.top1, "top1_after": final.top1}
    if precision in ("fp16", "bf16"):
        cost["casts_added"] = final.graph.get("casts", 0) - baseline.graph.get("casts", 0)
    else:
        cost["dequantize_removed"] = baseline.graph.get("dequantize_linear", 0) - final.graph.get("dequantize_linear", 0)
    return cost


def _write_keep(options: SearchOptions, model: Path, keep: tuple[str, ...]) -> None:
    what = "in fp32" if options.quantize.settings.precision in ("fp16", "bf16") else "out of quantization"
    header = f"# nodes to keep {what} for {options.quantize.settings.precision}: infertool debug precision {model.name}\n"
    write_text_atomic(options.keep, header + "".join(f"{name}\n" for name in keep), options.quantize.force)

