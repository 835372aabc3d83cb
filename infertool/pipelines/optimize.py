"""`optimize`: the fastest deployable model within an accuracy budget.

The candidates are the model as given and each precision graph the backends run
(`Capabilities.precision_graphs`), made by quantize and judged by the user's budget on held-out data
(records/optimize.AccuracyBudget: the one threshold that decides). A graph that misses the budget is
rescued with debug precision's keep list and competes again under its own name. Each candidate within
the budget is tuned on every backend that runs it (bench --tune's row tuner, pipelines/tune.py, with a
share of the time left), in this process; the FINALISTS best by the objective and the model as given
are then measured again, each tuned configuration as the only session of a fresh process
(pipelines/isolation.py), and those numbers decide. A graph below the model's precision must beat the
model as given by more than MIN_GAIN (noise is no reason to lose accuracy). A backend that cannot run
here (TensorRT-RTX builds engines without a GPU) has its timing missing, never guessed. The time budget
is checked before every step, so it is overrun by one step at most; what it left out is said.
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from infertool import environment, onnx_io
from infertool.backends import registry
from infertool.backends.base import RunnerOptions
from infertool.backends.tensorrt import EngineOptions
from infertool.engine.build import BuildOptions
from infertool.engine.sidecar import sidecar_path
from infertool.errors import CheckFailed, InfertoolError
from infertool.files import check_output, file_sha256, staged_output
from infertool.pipelines.bench import BenchOptions, measure_row, run_bench
from infertool.pipelines.build import BuildRequest, build
from infertool.pipelines.debug_precision import SearchOptions, debug_precision
from infertool.pipelines.optimize_cache import Cache
from infertool.pipelines.quantize import QuantizeOptions, quantize
from infertool.pipelines.tune import BudgetTooSmall, Reproduce, TuneOptions, tune_row
from infertool.records.bench import BenchRow
from infertool.records.gate import Measured
from infertool.records.model_file import ModelFile
from infertool.records.optimize import PICKED, AccuracyBudget, Candidate, OptimizeResult, Run
from infertool.records.quantize import QuantizeResult
from infertool.records.speedup import Baseline, speedups
from infertool.reporting import Reporter, SilentReporter
from infertool.stats import throughput
from infertool.vocabulary import PRECISION_GRAPHS

MIN_GAIN = 0.02  # a graph below the model's precision must be this much better than the model as given
RESCUED = "-rescued"
FINALISTS = 3  # the best candidates measured again alone, with the model as given
STATIC = ("int8", "fp8")  # precisions calibrated on data
OBJECTIVES = ("latency", "throughput")
TIMING_SHARE = 0.4  # of the time budget kept for timing: making, judging and rescuing candidates stop short of it
TUNE_SHARE = 0.4  # of the time left, shared by the rows still to tune: the most a row's tuning may take
TUNE_DURATIONS = 5  # a row's tuning budget: this many --duration, at least TUNE_MIN_S (more where the model needs it)
TUNE_MIN_S = 1.0
ENGINE_SUFFIXES = (".engine", ".plan")


@dataclass(frozen=True)
class OptimizeOptions:
    output: Path  # the picked graph (or its engine); its reproduce script beside it (script_path)
    conversion: QuantizeOptions  # calibration and evaluation data, evaluation backend, labels; precision and output set per candidate
    bench: BenchOptions  # batch, generated inputs, timing budgets, runner options; backends set per candidate
    budget: AccuracyBudget = AccuracyBudget()
    backends: tuple[str, ...] = ("ort-cpu",)
    graphs: tuple[str, ...] | None = None  # PRECISION_GRAPHS names to try; None: every one a backend runs
    rescue: bool = True  # rescue a graph that misses the budget with debug precision's keep list
    seconds: float = 600.0  # the time budget of the whole search
    objective: str = "latency"  # OBJECTIVES: median latency at the batch, or samples per second
    tune: bool = True  # tune each candidate's runtime settings (bench --tune's search)
    resume: bool = False  # reuse the candidates made and judged before (pipelines/optimize_cache.py)
    # the script rebuilding a pick (candidate, its run, its tuned runner options), and a tuned configuration's bench line: written by the CLI
    reproduce: Callable[[Candidate, Run, RunnerOptions], str] = lambda candidate, run, runner: ""
    tuned_command: Callable[[Reproduce], str] = lambda found: ""
    force: bool = False

    @property
    def script_path(self) -> Path:
        return self.output.with_suffix(".reproduce.sh")

    @property
    def engine(self) -> bool:
        """Whether OUT is an engine (built by the picked engine backend) rather than an ONNX graph."""
        return self.output.suffix in ENGINE_SUFFIXES

    def to_dict(self) -> dict:
        bench = self.bench
        return {
            "backends": list(self.backends), "graphs": None if self.graphs is None else list(self.graphs), "rescue": self.rescue,
            "time_budget_s": self.seconds, "objective": self.objective, "tune": self.tune, "resume": self.resume, "batch": bench.batches[0],
            "inputs": bench.inputs.to_dict(), "warmup": bench.warmup.to_dict(), "measure": bench.measure.to_dict(),
            "conversion": self.conversion.to_dict(),
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


def _check_backend(name: str, info: onnx_io.ModelInfo, options: OptimizeOptions, notes: list[str]) -> None:
    """A backend that runs here, or one that builds engines here (its timing will be missing)."""
    backend = registry.get(name)
    reason = registry.status(name).reason
    if reason and not backend.capabilities.builds_engines:
        registry.require(name)  # raises, naming why
    if reason:
        backend.check_builder()  # raises where it cannot build either
        notes.append(f"{name} cannot run here ({reason}): its timings are missing; optimize judges and builds, it does not guess speed")
    if options.engine and not backend.capabilities.builds_engines:
        builders = [n for n in registry.names() if registry.get(n).capabilities.builds_engines]
        raise InfertoolError(f"-o {options.output.name} is an engine, and {name} does not build engines", hint=f"choose -b {' or '.join(builders)}, or -o an .onnx file")
    backend.check(info, options.bench.runner)


def _check(info: onnx_io.ModelInfo, options: OptimizeOptions, notes: list[str]) -> None:
    """Refuse what cannot work before the first step."""
    if options.seconds <= 0:
        raise InfertoolError(f"--budget must be positive, not {options.seconds:g}s", hint="e.g. --budget 10m")
    if options.objective not in OBJECTIVES:
        raise InfertoolError(f"unknown objective '{options.objective}'", hint=f"choose {' or '.join(OBJECTIVES)}")
    for name in options.backends:
        _check_backend(name, info, options, notes)
    if options.budget.max_drop is not None and options.conversion.labels is None:
        raise InfertoolError("--max-accuracy-drop is measured against ground truth", hint="give --labels-csv FILE with --eval-data, or use --min-cosine")
    check_output(options.output, options.force, options.script_path)


def cost(row: BenchRow, objective: str) -> float:
    """What the objective minimises: the median latency at the batch, or the time per sample (1 / samples per second)."""
    if objective == "throughput":
        rate = throughput(row.latency, row.batch)["samples_per_s"]
        return 1.0 / rate if rate > 0 else math.inf
    return row.latency.median


def _gap(ratio: float, objective: str) -> str:
    return f"{1 / ratio:.2f}x the pick's samples/s" if objective == "throughput" else f"{ratio:.2f}x the pick's time"


class _Clock:
    def __init__(self, seconds: float):
        self.seconds, self.started = seconds, time.perf_counter()

    @property
    def left(self) -> float:
        return self.seconds - (time.perf_counter() - self.started)


class _Search:
    """Make, judge and measure candidates, made in (and, with --resume, found again in) the cache."""

    def __init__(self, model: Path, info: onnx_io.ModelInfo, options: OptimizeOptions, reporter: Reporter):
        self.model, self.info, self.options, self.reporter = model, info, options, reporter
        self.cache = Cache.of(info.sha256, options.conversion, options.budget, options.resume)
        self.resumed: list[str] = []  # candidates found in the cache
        self.clock = _Clock(options.seconds)
        self.skipped: list[str] = []
        self.notes: list[str] = []
        self.tuned: dict[tuple[str, str], RunnerOptions] = {}  # (candidate, backend): the configuration tune found
        self.spent: dict[str, float] = {}  # seconds spent timing each candidate

    @property
    def conversion_left(self) -> float:
        """The time left for making, judging and rescuing candidates: the timing keeps TIMING_SHARE of the budget."""
        return self.clock.left - TIMING_SHARE * self.options.seconds

    def out_of_time(self, what: str, converting: bool = False) -> bool:
        if (self.conversion_left if converting else self.clock.left) > 0:
            return False
        spent = f"the {(1 - TIMING_SHARE) * self.options.seconds:g} s of the budget for making candidates" if converting else f"the {self.options.seconds:g} s budget"
        self.skipped.append(f"{what}: not tried, {spent} ran out")
        self.reporter.note(self.skipped[-1])
        return True

    def graph(self, name: str, kept: tuple[str, ...] = ()) -> Candidate:
        """A precision graph made by quantize and judged by the budget (timed later, where it passes)."""
        precision, target = PRECISION_GRAPHS[name]
        label = f"{name}{RESCUED}" if kept else name
        cached = self.cache.get(label)
        if cached is not None:
            self.resumed.append(label)
            return cached
        started = time.perf_counter()
        with self.reporter.task(f"{label}: converting and judging on {self.options.conversion.eval_backend}"):
            made = self.convert(label, precision, target, kept)
        if isinstance(made, str):
            candidate = Candidate(label, precision, target, kept, rejected=f"could not convert: {made}", seconds=time.perf_counter() - started)
        else:
            within, found = self.options.budget.judge(made.accuracy)
            self.reporter.note(f"{label}: {found}: {'within' if within else 'misses'} the budget")
            model = ModelFile(str(made.output.path), made.output.sha256, made.output.bytes, made.output.external_data)
            candidate = Candidate(label, precision, target, kept, model, made.accuracy, within, found, rejected="" if within else "misses the budget",
                                  seconds=time.perf_counter() - started)
        self.cache.put(candidate)
        return candidate

    def convert(self, label: str, precision: str, target: str, kept: tuple[str, ...]) -> QuantizeResult | str:
        """quantize's conversion and evaluation, its gate left to the budget; why not, where it fails."""
        q = self.options.conversion
        settings = replace(q.settings, precision=precision, target=target, exclude_nodes=(*q.settings.exclude_nodes, *kept))
        request = replace(q, output=self.cache.graph(label), settings=settings, gate=False, force=True,
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
        search = SearchOptions(self.cache.folder / f"{name}.keep.txt", request, budget=max(1.0, self.conversion_left))
        with self.reporter.task(f"{name}: searching the nodes to keep in float"):
            try:
                keep = debug_precision(self.model, search, SilentReporter()).keep
            except InfertoolError as exc:  # CheckFailed included: no keep set passes
                self.reporter.note(f"{name}: no rescue: {exc.message}")
                return replace(failed, rejected=f"{failed.rejected}; no rescue: {exc.message}")
        if not keep:  # passes quantize's rule without keeping any node, yet misses the budget (top-1 against ground truth)
            return replace(failed, rejected=f"{failed.rejected}; no rescue: debug precision keeps no node under quantize's rule")
        return self.graph(name, keep)

    def path(self, candidate: Candidate) -> Path:
        return self.model if candidate.given else Path(candidate.model.path)

    def measure(self, candidate: Candidate, backend: str, cap: float) -> Run:
        """One candidate on one backend in this process: tuned in at most `cap` seconds (0: as given). A backend that
        cannot run here has its timing missing; the model as given must run where its backend does."""
        reason = registry.status(backend).reason
        if reason:
            return Run(backend, verdict=f"timing missing: {backend} cannot run here")
        options = replace(self.options.bench, backends=(backend,), model_labels=(candidate.name,), force=True)
        found: dict = {}
        try:
            with self.reporter.task(f"{candidate.name}: {'tuning' if cap else 'timing'} on {backend}"):
                result = run_bench(self.path(candidate), options, SilentReporter(), self._tuner(cap, found) if cap else None)
        except CheckFailed as failure:  # a row that could not be measured, or outputs that disagree with the reference
            if candidate.given:
                raise
            return Run(backend, verdict=f"could not run: {failure.message}")
        except InfertoolError as exc:
            if candidate.given:
                raise
            return Run(backend, verdict=f"could not run: {exc.message}")
        if "untuned" in found:
            self.notes.append(f"{candidate.name} on {backend}: not tuned ({found['untuned']}); measured as given")
        self.tuned[candidate.name, backend] = found.get("options", options.runner)
        return Run(backend, result.rows[0])

    def _tuner(self, cap: float, found: dict):
        """bench's row measurement under bench --tune's search, keeping the runner options it found: a
        budget of TUNE_DURATIONS timings, or what the model needs up to `cap`; else measured as given."""
        seconds = min(cap, max(TUNE_MIN_S, TUNE_DURATIONS * self.options.bench.measure.seconds))

        def measure(model, backend, feeds, options, references, reporter) -> BenchRow:
            try:
                try:
                    tuned = tune_row(TuneOptions(seconds, self.options.tuned_command, alone=False), model, backend, feeds, options, references, reporter)
                except BudgetTooSmall as small:
                    if small.needed > cap:
                        raise
                    tuned = tune_row(TuneOptions(small.needed, self.options.tuned_command, alone=False), model, backend, feeds, options, references, reporter)
            except InfertoolError as exc:  # the time left is too short for this model, say: measured as given
                found["untuned"] = exc.message
                return measure_row(model, backend, feeds, options, references, reporter)
            found["options"] = tuned.options
            return tuned.row

        return measure

    def alone(self, candidate: Candidate, run: Run) -> Run:
        """The configuration tune found, measured again as the only session of a fresh process."""
        runner = self.tuned.get((candidate.name, run.backend), self.options.bench.runner)
        options = replace(self.options.bench, backends=(run.backend,), model_labels=(candidate.name,), runner=runner,
                          check_outputs=False, isolate=True, force=True)
        try:
            with self.reporter.task(f"{candidate.name}: on {run.backend}, alone in a fresh process"):
                result = run_bench(self.path(candidate), options, SilentReporter())
        except InfertoolError as exc:  # CheckFailed too: the child died or failed; this number is missing
            failed = getattr(exc, "result", None)
            why = failed.failed[0]["error"] if failed is not None and getattr(failed, "failed", None) else exc.message
            return replace(run, finalist=True, alone_error=why)
        return replace(run, finalist=True, alone=replace(result.rows[0], tune=run.row.tune))  # the same configuration


def _share(search: _Search, rows: int) -> float:
    """The most a row's tuning may take: TUNE_SHARE of the time left, shared by the rows still to time (0: not tuned)."""
    if not search.options.tune or search.clock.left <= 0:
        return 0.0
    return search.clock.left * TUNE_SHARE / max(rows, 1)


def _time(search: _Search, candidates: list[Candidate]) -> list[Candidate]:
    """The model as given (it must run: its errors are the command's) and each candidate within the
    budget, tuned on every backend that runs it."""
    plan = [(c, b) for c in candidates if c.given or c.within_budget for b in search.options.backends
            if c.given or c.name.removesuffix(RESCUED) in registry.get(b).capabilities.precision_graphs]
    runs: dict[str, list[Run]] = {}
    for index, (candidate, backend) in enumerate(plan):
        started = time.perf_counter()
        if not candidate.given and search.out_of_time(f"{candidate.name} on {backend}"):
            continue
        run = search.measure(candidate, backend, _share(search, len(plan) - index))
        runs.setdefault(candidate.name, []).append(run)
        search.spent[candidate.name] = search.spent.get(candidate.name, 0.0) + time.perf_counter() - started
    return [replace(c, runs=tuple(runs.get(c.name, ())), seconds=c.seconds + search.spent.get(c.name, 0.0)) for c in candidates]


def _finalists(search: _Search, candidates: list[Candidate]) -> list[Candidate]:
    """The FINALISTS best runs within the budget and the model as given, each measured again alone in a
    fresh process: the in-process round (one session after another) screens, the alone one decides."""
    objective = search.options.objective
    timed = [(c, r) for c in candidates for r in c.runs if r.row is not None and (c.given or c.within_budget)]
    ranked = sorted((pair for pair in timed if not pair[0].given), key=lambda pair: cost(pair[1].row, objective))[:FINALISTS]
    again: dict[tuple[str, str], Run] = {}
    for candidate, run in [*(pair for pair in timed if pair[0].given), *ranked] if ranked else ():
        if search.out_of_time(f"{candidate.name} on {run.backend}, measured alone"):
            again[candidate.name, run.backend] = replace(run, finalist=True, alone_error="the time budget ran out")
        else:
            again[candidate.name, run.backend] = search.alone(candidate, run)
    return [replace(c, runs=tuple(again.get((c.name, r.backend), r) for r in c.runs)) for c in candidates]


def _measured(candidates: list[Candidate]) -> list[Candidate]:
    """Every row's speedup over the model as given on its backend, by the one rule (records/speedup.py):
    in-process rows against its in-process row, rows measured alone against its row measured alone."""
    baseline = Baseline(model=candidates[0].name)

    def found(pick: Callable[[Run], BenchRow | None]):
        rows = [pick(r) for c in candidates for r in c.runs if pick(r) is not None]
        return iter(speedups([Measured(r, {"label": r.model or "", "path": ""}, {}) for r in rows], baseline))

    in_process, alone = found(lambda r: r.row), found(lambda r: r.alone)
    with_speedup = lambda row, speeds: replace(row, speedup=next(speeds)) if row else None  # noqa: E731
    return [replace(c, runs=tuple(replace(r, row=with_speedup(r.row, in_process), alone=with_speedup(r.alone, alone)) for r in c.runs)) for c in candidates]


def _decisive(candidates: list[Candidate]) -> tuple[bool, list[str]]:
    """Whether the numbers measured alone decide (every finalist has one), and the notes where one is missing."""
    finalists = [(c, r) for c in candidates for r in c.runs if r.finalist]
    missing = [f"{c.name} on {r.backend} was not measured alone ({r.alone_error}): the pick compares the numbers measured in this process"
               for c, r in finalists if r.alone is None]
    return bool(finalists) and not missing, missing


def _untimed(candidates: list[Candidate], given_competes: bool) -> tuple[tuple[Candidate, Run] | None, str]:
    """Where nothing was timed (a backend that cannot run here): the one candidate within the budget, or why none is picked."""
    untimed = [(c, r) for c in candidates for r in c.runs if r.row is None and r.verdict.startswith("timing missing")
               and (c.within_budget or (c.given and given_competes))]
    if len(untimed) == 1:
        return untimed[0], ""
    if untimed:
        backends = sorted({r.backend for _, r in untimed})
        return None, (f"{len(untimed)} candidates meet the budget, and none could be timed ({', '.join(backends)} cannot run here): "
                      "optimize does not rank by a guess")
    return None, ""


def _pick(candidates: list[Candidate], given_competes: bool, objective: str) -> tuple[list[Candidate], dict | None, list[str], str]:
    """The best run within the budget by the objective (numbers measured alone where every finalist has one),
    each other run's verdict, notes, and why nothing was picked; a graph below the model's precision wins
    only where it beats the model as given by MIN_GAIN (where that competes)."""
    alone, notes = _decisive(candidates)
    figure = (lambda r: r.alone) if alone else (lambda r: r.row)
    eligible = [(c, r) for c in candidates for r in c.runs if figure(r) is not None and (c.within_budget or (c.given and given_competes))]
    if not eligible:
        best, why = _untimed(candidates, given_competes)
        if best is None:
            return candidates, None, notes, why
        notes.append(f"picked without a timing: {best[0].name} is the only candidate within the budget, and {best[1].backend} cannot run here")
        judged = [replace(c, runs=tuple(replace(r, verdict=PICKED) if (c, r) == best else r for r in c.runs)) for c in candidates]
        return judged, {"candidate": best[0].name, "backend": best[1].backend}, notes, ""
    key = lambda pair: cost(figure(pair[1]), objective)  # noqa: E731
    best = min(eligible, key=key)
    given = [pair for pair in eligible if pair[0].given]
    if given and not best[0].given:
        own = min(given, key=key)
        if key(best) * (1 + MIN_GAIN) > key(own):
            best = own

    def verdict(candidate: Candidate, run: Run) -> str:
        if (candidate, run) == best:
            return PICKED
        if run.row is None:
            return run.verdict
        if candidate.given and not given_competes:
            return "baseline only"
        if alone and not run.finalist:
            return f"not a finalist: {_gap(cost(run.row, objective) / cost(best[1].row, objective), objective)} in this process"
        ratio = key((candidate, run)) / key(best) if key(best) > 0 else 1.0
        return f"within {MIN_GAIN:.0%} of the model" if ratio < 1 else _gap(ratio, objective)

    judged = [replace(c, runs=tuple(replace(r, verdict=verdict(c, r)) for r in c.runs)) for c in candidates]
    return judged, {"candidate": best[0].name, "backend": best[1].backend, "measured_alone": alone}, notes, ""


def _search(search: _Search, graphs: list[str]) -> list[Candidate]:
    """The model as given, each graph, then the rescues of those that missed the budget (none timed yet)."""
    candidates = [Candidate(search.info.precision, search.info.precision)]
    for name in graphs:
        if search.out_of_time(name, converting=True):
            candidates.append(Candidate(name, *PRECISION_GRAPHS[name], rejected="not tried: the time budget ran out"))
            continue
        candidates.append(search.graph(name))
    if search.options.rescue:
        for index, failed in enumerate(list(candidates)):
            if failed.within_budget is not False or failed.model is None or "no rescue" in failed.rejected:
                continue
            rescued = search.cache.get(f"{failed.name}{RESCUED}")
            if rescued is not None:
                search.resumed.append(rescued.name)
            elif search.out_of_time(f"rescue of {failed.name}", converting=True):
                continue
            else:
                rescued = search.rescue(failed)
            if rescued.name == failed.name:  # no keep list: why, in its verdict
                search.cache.put(rescued)
                candidates[index] = rescued
            else:
                candidates[index] = replace(failed, rejected=f"{failed.rejected}: rescued below")
                candidates.append(rescued)
    return candidates


def optimize(model_path: Path, options: OptimizeOptions, reporter: Reporter) -> OptimizeResult:
    """Search, pick, and write the pick and its reproduce script; raises CheckFailed (with the result,
    nothing written) where no candidate meets the budget, or none can be ranked."""
    started = time.perf_counter()
    info = onnx_io.describe(model_path)
    notes: list[str] = []
    _check(info, options, notes)
    graphs = _graphs(options, info.precision, notes)
    if options.conversion.eval is not None and options.conversion.eval.path is None:
        notes.append("judged on generated inputs: give --eval-data (and --calib-data) to judge accuracy on real data")
    search = _Search(model_path, info, options, reporter)
    given_competes = options.graphs is None or info.precision in options.graphs
    judged = _search(search, graphs)
    if options.resume:
        notes.append(f"resumed from {search.cache.folder}: {', '.join(search.resumed) or 'nothing'} made and judged before (timed again)")
    candidates, picked, picking, why = _pick(_measured(_finalists(search, _time(search, judged))), given_competes, options.objective)
    result = OptimizeResult(
        environment.fingerprint(), ModelFile(str(model_path), info.sha256, info.bytes), options.budget, options.to_dict(),
        tuple(candidates), picked, skipped=tuple(search.skipped), notes=(*notes, *search.notes, *picking), seconds=time.perf_counter() - started,
    )
    if picked is None:
        raise CheckFailed(
            f"no pick: {why}; nothing was written" if why else f"no candidate meets the budget ({options.budget.describe()}); nothing was written",
            result=result, hint="time it where the backend runs, or name the one candidate to build with --candidates" if why else
            "relax --max-accuracy-drop / --min-cosine, give more calibration data, or include the model's own precision",
        )
    row = result.winner()[1].decisive
    if row is not None and row.speedup is not None and row.speedup < 1:
        result = replace(result, notes=(*result.notes, f"the pick runs at {row.speedup:.2f}x the model as given: --candidates left the model out"))
    return _write(result, search)


def _write(result: OptimizeResult, search: _Search) -> OptimizeResult:
    """The pick at OUT (its graph, or its engine and sidecar) and its reproduce script beside it, all or none."""
    options = search.options
    candidate, run = result.winner()
    runner = search.tuned.get((candidate.name, run.backend), options.bench.runner)
    source = search.path(candidate)
    script = options.reproduce(candidate, run, runner)
    with staged_output(options.output, options.force) as staging:
        written, external = staging / options.output.name, False
        if options.engine:
            _engine(source, written, run.backend, runner, options)
        elif onnx_io.external_data_path(source).exists():  # saved again, so the graph names its external data file by the new name
            external = True
            onnx_io.save(onnx_io.load(source), written)
        else:  # the very bytes quantize wrote: the reproduce script rebuilds this file
            shutil.copyfile(source, written)
        (staging / options.script_path.name).write_text(script)
        output = ModelFile(str(options.output), file_sha256(written), onnx_io.file_bytes(written), external)
    notes = (f"the engine's sidecar: {sidecar_path(options.output)}",) if options.engine else ()
    return replace(result, output=output, reproduce=str(options.script_path), notes=(*result.notes, *notes))


def _engine(graph: Path, path: Path, backend: str, runner: RunnerOptions, options: OptimizeOptions) -> None:
    """The pick's engine, built by its backend for the timed batch (the tuned builder level), its sidecar beside it."""
    request = BuildRequest(path, BuildOptions(opt_level=runner.group(EngineOptions).opt_level, force=True), shapes=dict(options.bench.inputs.shapes or {}),
                           batch=options.bench.batches[0], generated=options.bench.inputs, backend=backend, gate=False)
    build(graph, request, SilentReporter())
