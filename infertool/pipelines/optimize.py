"""`optimize`: the fastest deployable model within an accuracy budget.

The candidates are the model as given and each precision graph the backends run
(`Capabilities.precision_graphs`), made by quantize and judged by the user's budget on held-out data
(records/optimize.AccuracyBudget: the one threshold that decides). A graph that misses the budget is
rescued with debug precision's keep list and competes again under its own name. Each candidate
within the budget is measured by bench on every backend that runs it; the fastest FINALISTS and the
model as given are measured a second time, and of those the fastest wins, but a graph below the
model's precision must beat the model as given by more than MIN_GAIN (noise is no reason to lose
accuracy). Everything runs in this process (candidates' sessions one after another). The time budget is checked before every step, so it is overrun by one step at
most; what it left out is said.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from infertool import environment, onnx_io
from infertool.backends import registry
from infertool.errors import CheckFailed, InfertoolError
from infertool.files import check_output, file_sha256, staged_output
from infertool.pipelines.bench import BenchOptions, run_bench
from infertool.pipelines.debug_precision import SearchOptions, debug_precision
from infertool.pipelines.quantize import QuantizeOptions, quantize
from infertool.records.gate import Measured
from infertool.records.model_file import ModelFile
from infertool.records.optimize import PICKED, AccuracyBudget, Candidate, OptimizeResult, Run
from infertool.records.quantize import QuantizeResult
from infertool.records.speedup import Baseline, speedups
from infertool.reporting import Reporter, SilentReporter
from infertool.vocabulary import PRECISION_GRAPHS

MIN_GAIN = 0.02  # a graph below the model's precision must be this much faster than the model as given
RESCUED = "-rescued"
FINALISTS = 3  # the fastest candidates measured a second time, with the model as given
STATIC = ("int8", "fp8")  # precisions calibrated on data


@dataclass(frozen=True)
class OptimizeOptions:
    output: Path  # the picked graph; its reproduce script beside it (script_path)
    conversion: QuantizeOptions  # calibration and evaluation data, evaluation backend, labels; precision and output set per candidate
    bench: BenchOptions  # batch, generated inputs, timing budgets, runner options; backends set per candidate
    budget: AccuracyBudget = AccuracyBudget()
    backends: tuple[str, ...] = ("ort-cpu",)
    graphs: tuple[str, ...] | None = None  # PRECISION_GRAPHS names to try; None: every one a backend runs
    rescue: bool = True  # rescue a graph that misses the budget with debug precision's keep list
    seconds: float = 600.0  # the time budget of the whole search
    reproduce: Callable[[Candidate, str], str] = lambda candidate, backend: ""  # the script rebuilding a pick (written by the CLI)
    force: bool = False

    @property
    def script_path(self) -> Path:
        return self.output.with_suffix(".reproduce.sh")

    def to_dict(self) -> dict:
        bench = self.bench
        return {
            "backends": list(self.backends), "graphs": None if self.graphs is None else list(self.graphs), "rescue": self.rescue,
            "time_budget_s": self.seconds, "batch": bench.batches[0], "inputs": bench.inputs.to_dict(),
            "warmup": bench.warmup.to_dict(), "measure": bench.measure.to_dict(), "conversion": self.conversion.to_dict(),
            "calibration_data": str(self.conversion.calib.path or "random") if self.conversion.calib else None,
            "evaluation_data": str(self.conversion.eval.path or "generated") if self.conversion.eval else None,
        }


def _graphs(options: OptimizeOptions, precision: str, notes: list[str]) -> list[str]:
    """The precision graphs to make: those the backends run, in vocabulary order (or as asked)."""
    runs = {g for name in options.backends for g in registry.get(name).capabilities.precision_graphs}
    if options.graphs is not None:
        unknown = [g for g in options.graphs if g not in PRECISION_GRAPHS and g != precision]
        if unknown:
            raise InfertoolError(f"unknown candidate '{unknown[0]}'", hint=f"choose from {precision}, {', '.join(PRECISION_GRAPHS)}")
        idle = [g for g in options.graphs if g in PRECISION_GRAPHS and g not in runs]
        if idle:
            raise InfertoolError(f"none of {', '.join(options.backends)} runs {idle[0]} graphs", hint=f"they run {', '.join(sorted(runs)) or 'no precision graphs'}")
    wanted = [g for g in PRECISION_GRAPHS if g in runs and (options.graphs is None or g in options.graphs)]
    if wanted and precision != "fp32":
        notes.append(f"the model is {precision}: optimize makes precision graphs from fp32 models only, so it measured the model as given")
        return []
    return wanted


def _check(info: onnx_io.ModelInfo, options: OptimizeOptions) -> None:
    """Refuse what cannot work before the first step."""
    if options.seconds <= 0:
        raise InfertoolError(f"--budget must be positive, not {options.seconds:g}s", hint="e.g. --budget 10m")
    for name in options.backends:
        backend = registry.require(name)
        backend.check(info, options.bench.runner)
    if options.budget.max_drop is not None and options.conversion.labels is None:
        raise InfertoolError("--max-accuracy-drop is measured against ground truth", hint="give --labels-csv FILE with --eval-data, or use --min-cosine")
    check_output(options.output, options.force, options.script_path)


class _Clock:
    def __init__(self, seconds: float):
        self.seconds, self.started = seconds, time.perf_counter()

    @property
    def left(self) -> float:
        return self.seconds - (time.perf_counter() - self.started)


class _Search:
    """Make, judge and measure candidates in a scratch folder."""

    def __init__(self, model: Path, info: onnx_io.ModelInfo, options: OptimizeOptions, folder: Path, reporter: Reporter):
        self.model, self.info, self.options, self.folder, self.reporter = model, info, options, folder, reporter
        self.clock = _Clock(options.seconds)
        self.skipped: list[str] = []

    def out_of_time(self, what: str) -> bool:
        if self.clock.left > 0:
            return False
        self.skipped.append(f"{what}: not tried, the {self.options.seconds:g} s budget ran out")
        self.reporter.note(self.skipped[-1])
        return True

    def given(self) -> Candidate:
        """The model as given: the baseline every speedup is against (it must run: its errors are the command's)."""
        started = time.perf_counter()
        runs = tuple(self.measure(self.model, self.info.precision, name, strict=True) for name in self.options.backends)
        return Candidate(self.info.precision, self.info.precision, runs=runs, seconds=time.perf_counter() - started)

    def graph(self, name: str, kept: tuple[str, ...] = ()) -> Candidate:
        """A precision graph made by quantize, judged by the budget, measured where it passes."""
        precision, target = PRECISION_GRAPHS[name]
        label = f"{name}{RESCUED}" if kept else name
        started = time.perf_counter()
        with self.reporter.task(f"{label}: converting and judging on {self.options.conversion.eval_backend}"):
            made = self.convert(label, precision, target, kept)
        if isinstance(made, str):
            return Candidate(label, precision, target, kept, rejected=f"could not convert: {made}", seconds=time.perf_counter() - started)
        within, found = self.options.budget.judge(made.accuracy)
        self.reporter.note(f"{label}: {found}: {'within' if within else 'misses'} the budget")
        model = ModelFile(str(made.output.path), made.output.sha256, made.output.bytes, made.output.external_data)
        candidate = Candidate(label, precision, target, kept, model, made.accuracy, within, found)
        if not within:
            return replace(candidate, rejected="misses the budget", seconds=time.perf_counter() - started)
        backends = [b for b in self.options.backends if name in registry.get(b).capabilities.precision_graphs]
        runs = tuple(self.measure(Path(model.path), label, b) for b in backends if not self.out_of_time(f"{label} on {b}"))
        return replace(candidate, runs=runs, seconds=time.perf_counter() - started)

    def convert(self, label: str, precision: str, target: str, kept: tuple[str, ...]) -> QuantizeResult | str:
        """quantize's conversion and evaluation, its gate left to the budget; why not, where it fails."""
        q = self.options.conversion
        settings = replace(q.settings, precision=precision, target=target, exclude_nodes=(*q.settings.exclude_nodes, *kept))
        request = replace(q, output=self.folder / f"{label}.onnx", settings=settings, gate=False, force=True,
                          calib=q.calib if precision in STATIC else None)
        try:
            return quantize(self.model, request, SilentReporter())
        except CheckFailed as failure:  # a user threshold gates quantize itself: the result still holds the evaluation
            if isinstance(failure.result, QuantizeResult):
                return failure.result
            return failure.message
        except InfertoolError as exc:
            return exc.message

    def rescue(self, failed: Candidate) -> Candidate:
        """debug precision's keep list for a graph that missed the budget, and the graph made with it."""
        name = failed.name
        q = self.options.conversion
        settings = replace(q.settings, precision=failed.precision, target=failed.target)
        request = replace(q, settings=settings, force=True, calib=q.calib if failed.precision in STATIC else None)
        search = SearchOptions(self.folder / f"{name}.keep.txt", request, budget=max(1.0, self.clock.left))
        with self.reporter.task(f"{name}: searching the nodes to keep in float"):
            try:
                keep = debug_precision(self.model, search, SilentReporter()).keep
            except InfertoolError as exc:  # CheckFailed included: no keep set passes
                self.reporter.note(f"{name}: no rescue: {exc.message}")
                return replace(failed, rejected=f"{failed.rejected}; no rescue: {exc.message}")
        if not keep:  # passes quantize's rule without keeping any node, yet misses the budget (top-1 against ground truth)
            return replace(failed, rejected=f"{failed.rejected}; no rescue: debug precision keeps no node under quantize's rule")
        return self.graph(name, keep)

    def measure(self, path: Path, label: str, backend: str, strict: bool = False) -> Run:
        """bench of one candidate on one backend (its accuracy was judged already: no output check)."""
        options = replace(self.options.bench, backends=(backend,), model_labels=(label,), check_outputs=False, force=True)
        try:
            with self.reporter.task(f"{label}: timing on {backend}"):
                result = run_bench(path, options, SilentReporter())
        except CheckFailed as failure:  # a row that could not be measured
            result = failure.result
            if strict or result is None or not result.rows:
                raise
        except InfertoolError as exc:
            if strict:
                raise
            return Run(backend, verdict=f"could not run: {exc.message}")
        return Run(backend, result.rows[0])


def _finalists(search: _Search, candidates: list[Candidate]) -> list[Candidate]:
    """The FINALISTS fastest runs within the budget and the model as given, measured again, one
    after the other: the first round screens, the second decides (a row timed while the machine
    was busy does not win or lose on that)."""
    eligible = [(c, r) for c in candidates for r in c.runs if r.row is not None and (c.given or c.within_budget)]
    ranked = sorted((pair for pair in eligible if not pair[0].given), key=lambda pair: pair[1].row.latency.median)[:FINALISTS]
    again: dict[tuple[str, str], Run] = {}
    for candidate, run in [*(pair for pair in eligible if pair[0].given), *ranked]:
        if len(eligible) < 2 or search.out_of_time(f"{candidate.name} on {run.backend}, measured again"):
            break
        path = search.model if candidate.given else Path(candidate.model.path)
        second = search.measure(path, candidate.name, run.backend, strict=candidate.given)
        again[candidate.name, run.backend] = replace(second, screened_ms=run.row.latency.median) if second.row else second
    return [replace(c, runs=tuple(again.get((c.name, r.backend), r) for r in c.runs)) for c in candidates]


def _measured(candidates: list[Candidate]) -> list[Candidate]:
    """Every row's speedup over the model as given on its backend, by the one rule (records/speedup.py)."""
    rows = [r.row for c in candidates for r in c.runs if r.row is not None]
    found = iter(speedups([Measured(r, {"label": r.model or "", "path": ""}, {}) for r in rows], Baseline(model=candidates[0].name)))
    return [replace(c, runs=tuple(replace(r, row=replace(r.row, speedup=next(found))) if r.row else r for r in c.runs)) for c in candidates]


def _pick(candidates: list[Candidate], given_competes: bool) -> tuple[list[Candidate], dict | None]:
    """The fastest run within the budget, each other run's verdict; a graph below the model's
    precision wins only where it beats the model as given by MIN_GAIN (where that competes)."""
    eligible = [(c, r) for c in candidates for r in c.runs if r.row is not None and (c.within_budget or (c.given and given_competes))]
    if not eligible:
        return candidates, None
    best = min(eligible, key=lambda pair: pair[1].row.latency.median)
    given = [pair for pair in eligible if pair[0].given]
    if given and not best[0].given:
        own = min(given, key=lambda pair: pair[1].row.latency.median)
        if best[1].row.latency.median * (1 + MIN_GAIN) > own[1].row.latency.median:
            best = own
    fastest = best[1].row.latency.median

    def verdict(candidate: Candidate, run: Run) -> str:
        if run.row is None:
            return run.verdict
        if (candidate, run) == best:
            return PICKED
        if candidate.given and not given_competes:
            return "baseline only"
        ratio = run.row.latency.median / fastest if fastest > 0 else 1.0
        return f"within {MIN_GAIN:.0%} of the model" if ratio < 1 else f"{ratio:.2f}x the pick's time"

    judged = [replace(c, runs=tuple(replace(r, verdict=verdict(c, r)) for r in c.runs)) for c in candidates]
    return judged, {"candidate": best[0].name, "backend": best[1].backend}


def _search(search: _Search, graphs: list[str]) -> list[Candidate]:
    """The model as given, each graph, then the rescues of those that missed the budget."""
    candidates = [search.given()]
    for name in graphs:
        if search.out_of_time(name):
            candidates.append(Candidate(name, *PRECISION_GRAPHS[name], rejected="not tried: the time budget ran out"))
            continue
        candidates.append(search.graph(name))
    if search.options.rescue:
        for index, failed in enumerate(list(candidates)):
            if failed.within_budget is False and failed.model is not None and not search.out_of_time(f"rescue of {failed.name}"):
                rescued = search.rescue(failed)
                if rescued.name == failed.name:  # no keep list: why, in its verdict
                    candidates[index] = rescued
                else:
                    candidates[index] = replace(failed, rejected=f"{failed.rejected}: rescued below")
                    candidates.append(rescued)
    return candidates


def optimize(model_path: Path, options: OptimizeOptions, reporter: Reporter) -> OptimizeResult:
    """Search, pick, and write the pick and its reproduce script; raises CheckFailed (with the result,
    nothing written) where no candidate meets the budget."""
    started = time.perf_counter()
    info = onnx_io.describe(model_path)
    _check(info, options)
    notes: list[str] = []
    graphs = _graphs(options, info.precision, notes)
    if options.conversion.eval is not None and options.conversion.eval.path is None:
        notes.append("judged on generated inputs: give --eval-data (and --calib-data) to judge accuracy on real data")
    with tempfile.TemporaryDirectory(prefix="infertool-optimize-") as scratch:
        search = _Search(model_path, info, options, Path(scratch), reporter)
        given_competes = options.graphs is None or info.precision in options.graphs
        candidates, picked = _pick(_measured(_finalists(search, _search(search, graphs))), given_competes)
        result = OptimizeResult(
            environment.fingerprint(), ModelFile(str(model_path), info.sha256, info.bytes), options.budget, options.to_dict(),
            tuple(candidates), picked, skipped=tuple(search.skipped), notes=tuple(notes), seconds=time.perf_counter() - started,
        )
        if picked is None:
            raise CheckFailed(
                f"no candidate meets the budget ({options.budget.describe()}); nothing was written", result=result,
                hint="relax --max-accuracy-drop / --min-cosine, give more calibration data, or include the model's own precision",
            )
        speedup = result.winner()[1].row.speedup
        if speedup is not None and speedup < 1:
            result = replace(result, notes=(*result.notes, f"the pick runs at {speedup:.2f}x the model as given: --candidates left the model out"))
        return _write(result, model_path, options)


def _write(result: OptimizeResult, model_path: Path, options: OptimizeOptions) -> OptimizeResult:
    """The pick at OUT and its reproduce script beside it, both or neither."""
    candidate, run = result.winner()
    source = model_path if candidate.given else Path(candidate.model.path)
    script = options.reproduce(candidate, run.backend)
    with staged_output(options.output, options.force) as staging:
        written = staging / options.output.name
        external = onnx_io.external_data_path(source).exists()
        if external:  # saved again, so the graph names its external data file by the new name
            onnx_io.save(onnx_io.load(source), written)
        else:  # the very bytes quantize wrote: the reproduce script rebuilds this file
            shutil.copyfile(source, written)
        (staging / options.script_path.name).write_text(script)
        output = ModelFile(str(options.output), file_sha256(written), onnx_io.file_bytes(written), external)
    return replace(result, output=output, reproduce=str(options.script_path))
