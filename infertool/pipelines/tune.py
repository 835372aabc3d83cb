"""`bench --tune`: per backend and row, search the settings that matter (the backend's tuning space),
measure each configuration with an equal short budget, re-measure the best and the defaults with the
full budget, and say how to reproduce the best.

The search is coordinate descent in the backend's order (most effective setting first): each
dimension's alternatives are tried against the best so far and the fastest is kept when it wins by
more than MIN_GAIN. A configuration counts only when the runtime reads back the settings it asked for
and its outputs agree with the reference, so no setting is reported that was not in effect.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from infertool import onnx_io
from infertool.backends.base import Backend, Choice, Dimension, GraphStep, RunnerOptions
from infertool.errors import InfertoolError
from infertool.files import cache_root, file_sha256, staged_output
from infertool.inputs.feeds import InputOptions
from infertool.measure.timing import Budget, run_for
from infertool.onnx_io import ModelInfo
from infertool.pipelines import perf
from infertool.pipelines.bench import BenchOptions, RowMeasure, RowRequest, judged, measure_alone, measure_row
from infertool.pipelines.quantize import QuantizeOptions, quantize
from infertool.precision.settings import PrecisionSettings
from infertool.present.numbers import ms
from infertool.records.bench import BenchRow
from infertool.reporting import Reporter
from infertool.stats import Stats
from infertool.text import shorten
from infertool.vocabulary import TUNE_GRAPHS

MIN_SAMPLES = 5  # timed iterations a configuration needs at least
MIN_GAIN = 0.02  # a change must be this much faster to replace the best so far (noise guard)
UNSTEADY = 1.25  # one configuration's medians (search, full budget, alone) this far apart: its speedups are flagged


@dataclass(frozen=True)
class Reproduce:
    """What the CLI needs to write the command line of a configuration."""

    backend: str
    batch: int
    model: Path  # the model bench runs: the given one, or a precision graph made from it
    options: RunnerOptions
    graph: tuple[str, str] | None = None  # (precision, target) of a precision graph, calibrated on TuneOptions.calibration
    source: Path | None = None  # the model a made graph was made from (its reference)
    step: tuple[str, ...] | None = None  # the command line making a backend's graph (transformer fusions) from `source`


@dataclass(frozen=True)
class TuneOptions:
    budget: float  # seconds of measurement per row, shared equally by the configurations tried
    reproduce: Callable[[Reproduce], str]  # the command line of a configuration (written by the CLI)
    calibration: InputOptions | None = None  # the user's data for precision graphs; None: the model's precision is kept
    alone: bool = True  # measure the best and the defaults again, each alone in a fresh process (optimize does that for its finalists)


class BudgetTooSmall(InfertoolError):
    """The tuning budget leaves a configuration fewer than MIN_SAMPLES inferences; `needed` seconds would do."""

    def __init__(self, message: str, hint: str, needed: float):
        super().__init__(message, hint=hint)
        self.needed = needed


@dataclass(frozen=True)
class Tuned:
    """A tuned row and the runner options of the configuration it measured."""

    row: BenchRow
    options: RunnerOptions


@dataclass(frozen=True)
class Config:
    options: RunnerOptions
    graph: str | None = None  # a TUNE_GRAPHS name, or None: the model as given
    changes: tuple[str, ...] = ()  # labels of the choices made, from the defaults
    expect: Mapping[str, object] = field(default_factory=dict)  # read-back settings the changes require


@dataclass
class Trial:
    config: Config
    stats: Stats | None = None
    setup_s: float | None = None
    in_effect: dict = field(default_factory=dict)
    agreement: float | None = None  # the lowest cosine against the reference
    error: str = ""  # why it does not count

    @property
    def ok(self) -> bool:
        return self.stats is not None and not self.error

    def to_dict(self) -> dict:
        return {
            "changes": list(self.config.changes) or ["defaults"], "graph": self.config.graph,
            "median_ms": None if self.stats is None else round(self.stats.median, 6),
            "iterations": None if self.stats is None else self.stats.count, "setup_s": self.setup_s,
            "settings_read_back": self.in_effect, "min_cosine": self.agreement, "error": self.error or None,
        }


def _lookup(settings: Mapping, dotted: str) -> object:
    value: object = settings
    for key in dotted.split("."):
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


class _Graphs:
    """Graphs made from the model, kept in the cache per model contents: precision graphs by quantize's
    transform, and those a backend's GraphStep makes."""

    def __init__(self, model: ModelInfo, calibration: InputOptions | None, reporter: Reporter, steps: Mapping[str, GraphStep]):
        self.model, self.calibration, self.reporter, self.steps = model, calibration, reporter, steps
        self._made: dict[str, ModelInfo] = {}

    def get(self, name: str | None) -> ModelInfo:
        if name is None:
            return self.model
        if name in self.steps and name not in self._made:
            path = cache_root() / "tune" / f"{self.model.path.stem}-{self.model.sha256[:16]}-{name}.onnx"
            if not path.is_file():
                path.parent.mkdir(parents=True, exist_ok=True)
                with self.reporter.task(f"making the {name} graph"), staged_output(path, force=True) as staged:
                    self.steps[name].make(self.model.path, staged / path.name)
            self._made[name] = onnx_io.describe(path)
        if name not in self._made:
            precision, target = TUNE_GRAPHS[name]
            calib = self.calibration
            key = hashlib.sha256(json.dumps([self.model.sha256, calib.to_dict(), data_sha256(calib)], sort_keys=True).encode()).hexdigest()[:16]
            path = cache_root() / "tune" / f"{self.model.path.stem}-{key}-{name}.onnx"  # per model contents and calibration
            if not path.is_file():
                path.parent.mkdir(parents=True, exist_ok=True)
                request = QuantizeOptions(path, PrecisionSettings(precision, target), calib, generated=calib, force=True)
                with self.reporter.task(f"making the {name} graph"):
                    quantize(self.model.path, request, self.reporter)
            self._made[name] = onnx_io.describe(path)
        return self._made[name]


@dataclass
class _Row:
    """Everything one row's search shares."""

    backend: Backend
    feeds: dict
    options: BenchOptions
    references: object
    graphs: _Graphs
    reporter: Reporter
    watch: tuple[str, ...] = ()  # every setting the search may change, read back from each configuration

    @property
    def batch(self) -> int:
        return next((a.shape[0] for a in self.feeds.values() if a.ndim), 1)


def _agreement(row: _Row, model: ModelInfo, precision: str | None, outputs: dict[str, np.ndarray]) -> tuple[float | None, str]:
    if row.references is None:
        return None, ""
    judgement = judged(row.references, precision or model.precision, row.feeds, outputs, row.options)
    return judgement.min_cosine, "" if judgement.passed else f"outputs disagree with the reference ({judgement.summary()})"


def _trial(row: _Row, config: Config, budgets: tuple[Budget, Budget]) -> Trial:
    """Open, check the settings read back, warm up, time, and check the outputs of one configuration.
    A configuration that fails is recorded as failed; the defaults (no changes) fail as bench would."""
    trial = Trial(config)
    try:
        model = row.graphs.get(config.graph)
        shapes = {n: tuple(a.shape) for n, a in row.feeds.items()}
        artifact = row.backend.prepare(model, config.options, shapes, row.reporter)
        started = time.perf_counter()
        with row.backend.open(artifact, config.options) as runner:
            info = runner.info()
            trial.in_effect = {key: _lookup(info.settings, key) for key in dict.fromkeys((*row.watch, *config.expect))}
            wrong = [f"{k} reads back {trial.in_effect[k]!r}, not {v!r}" for k, v in config.expect.items() if trial.in_effect[k] != v]
            if wrong:
                trial.error = "not in effect: " + "; ".join(wrong)
                return trial
            call = perf.timed_call(runner, row.feeds)
            call()  # compiles, captures, searches kernels: set-up, timed apart
            trial.setup_s = round(time.perf_counter() - started, 3)
            run_for(call, budgets[0])
            trial.stats = Stats.from_ns(run_for(call, budgets[1]))
            outputs = runner.bound_outputs() if runner.device_resident else runner.infer(row.feeds)
            trial.agreement, trial.error = _agreement(row, model, runner.info().precision, outputs)
    except InfertoolError as exc:
        if not config.changes:
            raise
        trial.error = exc.message
    return trial


def _apply(config: Config, choice: Choice) -> Config:
    return Config(
        choice.apply(config.options) if choice.apply else config.options, choice.graph or config.graph,
        (*config.changes, choice.label), {**config.expect, **choice.expect},
    )


def _satisfied(best: Trial, choice: Choice) -> bool:
    """Whether the best configuration already has what the choice asks for."""
    if choice.graph is not None:
        return best.config.graph == choice.graph
    return bool(choice.expect) and all(k in best.in_effect and best.in_effect[k] == v for k, v in choice.expect.items())


def _search(row: _Row, dimensions: tuple[Dimension, ...], defaults: Trial, budgets: tuple[Budget, Budget]) -> tuple[Trial, list[Trial]]:
    best, tried = defaults, [defaults]
    for dimension in dimensions:
        fastest = best
        for choice in dimension.choices:
            if (choice.needs and not choice.needs(best.config.options)) or _satisfied(best, choice):
                continue
            with row.reporter.task(f"{row.backend.name} batch {row.batch}: trying {choice.label}"):
                trial = _trial(row, _apply(best.config, choice), budgets)
            tried.append(trial)
            if trial.ok and trial.stats.median < fastest.stats.median:
                fastest = trial
        if fastest is not best and fastest.stats.median < best.stats.median * (1 - MIN_GAIN):
            best = fastest
    return best, tried


def _defaults_trial(row: _Row, options: RunnerOptions, budgets: tuple[Budget, Budget], planned: int, budget: float) -> Trial:
    """The configuration as given; it must run, and the budget must leave room for it."""
    defaults = _trial(row, Config(options), budgets)
    needed = planned * MIN_SAMPLES * defaults.stats.median / 1e3 / 0.8  # the timed share is 80 % of a configuration's
    if defaults.stats.median / 1e3 * MIN_SAMPLES > budgets[1].seconds:
        raise BudgetTooSmall(
            f"--tune-budget {budget:g}s is too small for {row.backend.name} batch {row.batch}: it leaves {budgets[1].seconds:.3g} s "
            f"of timing to each of {planned} configurations, and {MIN_SAMPLES} inferences take {defaults.stats.median * MIN_SAMPLES / 1e3:.3g} s here",
            hint=f"give --tune-budget {max(1, round(needed + 0.5))}s or more", needed=needed,
        )
    return defaults


def _space(backend: Backend, model: ModelInfo, runner: RunnerOptions, precision_graphs: bool) -> tuple[Dimension, ...]:
    """The backend's dimensions; precision graphs only when asked for (--tune-precision): by default
    tune keeps the model's precision."""
    dimensions = backend.tuning_space(model, runner)
    if precision_graphs:
        return dimensions
    kept = (replace(d, choices=tuple(c for c in d.choices if c.graph is None or c.step is not None)) for d in dimensions)
    return tuple(d for d in kept if d.choices)


def data_sha256(data: InputOptions) -> str | None:
    """The calibration file's contents (a folder: its files' names, sizes and times), keying cached graphs."""
    path = data.path
    if path is None or not path.exists():
        return None
    if path.is_file():
        return file_sha256(path)
    listing = sorted((str(f.relative_to(path)), f.stat().st_size, f.stat().st_mtime_ns) for f in path.rglob("*") if f.is_file())
    return hashlib.sha256(json.dumps(listing).encode()).hexdigest()


def tune_row(tune: TuneOptions, model: ModelInfo, backend: Backend, feeds: dict, options: BenchOptions, references, reporter: Reporter) -> Tuned:
    """One row tuned: the best configuration found, measured with bench's full budget."""
    dimensions = _space(backend, model, options.runner, tune.calibration is not None)
    watch = tuple(dict.fromkeys(key for d in dimensions for c in d.choices for key in c.expect))
    steps = {c.step.name: c.step for d in dimensions for c in d.choices if c.step is not None}
    row = _Row(backend, feeds, options, references, _Graphs(model, tune.calibration, reporter, steps), reporter, watch)
    if not dimensions:
        reporter.note(f"{backend.name}: nothing to tune; measured as given")
        measured = measure_row(model, backend, feeds, options, references, reporter)
        return Tuned(replace(measured, tune={
            "budget_s": tune.budget, "dimensions": [], "tried": [], "best": ["defaults"], "speedup": 1.0, "confirmed": True,
            "command": tune.reproduce(Reproduce(backend.name, measured.batch, model.path, options.runner)),
        }), options.runner)
    planned = 1 + sum(len(d.choices) for d in dimensions)
    share = tune.budget / planned
    budgets = (Budget(2, share * 0.2), Budget(MIN_SAMPLES, share * 0.8))
    with reporter.task(f"{backend.name} batch {row.batch}: defaults"):
        defaults = _defaults_trial(row, options.runner, budgets, planned, tune.budget)
    best, tried = _search(row, dimensions, defaults, budgets)
    return Tuned(_finish(tune, row, model, best, tried, dimensions, share), best.config.options)


def _finish(tune: TuneOptions, row: _Row, model: ModelInfo, best: Trial, tried: list[Trial], dimensions, share: float) -> BenchRow:
    """The best re-measured as a full row; the defaults re-measured with the same full budget."""
    winner = row.graphs.get(best.config.graph)
    measured = measure_row(winner, row.backend, row.feeds, replace(row.options, runner=best.config.options), row.references, row.reporter)
    defaults_ms = measured.latency.median
    if best is not tried[0]:
        with row.reporter.task(f"{row.backend.name} batch {row.batch}: the defaults, full budget"):
            full = _trial(row, tried[0].config, (row.options.warmup, row.options.measure))
        defaults_ms = full.stats.median if full.stats else None
    alone = _alone(tune, row, model, best, tried[0]) if tune.alone else {}
    settings = dict(measured.settings)
    alone_ms = alone.get("alone_ms") or {}
    warnings = [w for w in (unsteady("best", best.stats.median, measured.latency.median, alone_ms.get("best")),
                            None if best is tried[0] else unsteady("defaults", tried[0].stats.median, defaults_ms, alone_ms.get("defaults"))) if w]
    if best.config.graph is not None:
        settings["graph"] = {"name": best.config.graph, "path": str(winner.path), "sha256": winner.sha256, "precision": winner.precision, "made_from": str(model.path)}
    report = {
        "budget_s": tune.budget, "per_configuration_s": round(share, 4), "dimensions": [d.name for d in dimensions],
        "tried": [{**t.to_dict(), **_reproduced(tune, row, t, model)} for t in tried], "best": list(best.config.changes) or ["defaults"],
        "defaults_ms": None if defaults_ms is None else round(defaults_ms, 6), "best_ms": round(measured.latency.median, 6),
        "speedup": round(defaults_ms / measured.latency.median, 4) if defaults_ms and measured.latency.median > 0 else None,
        # the short-budget winner, re-measured: whether it still beats the defaults with the full budget each
        "confirmed": defaults_ms is not None and measured.latency.median <= defaults_ms,
        "command": _reproduced(tune, row, best, model)["command"], **alone,
    }
    return replace(measured, settings=settings, tune=report, warnings=(*warnings, *measured.warnings))


def unsteady(name: str, search: float, full: float | None, alone: float | None) -> str | None:
    """Where one configuration's medians (the search's short budget, the full budget, alone in a fresh
    process) lie UNSTEADY apart: the speedups built on them are not to be trusted, said why."""
    found = {"in the search": search, "with the full budget": full, "alone in a process": alone}
    medians = {where: m for where, m in found.items() if m}
    if len(medians) < 2 or max(medians.values()) < min(medians.values()) * UNSTEADY:
        return None
    return (f"{name}: {', '.join(f'{ms(m)} ms {where}' for where, m in medians.items())}: "
            f"{max(medians.values()) / min(medians.values()):.2f}x apart: its latency depends on the process it runs in "
            "(what ran there before; a launch-bound runtime's CPU side), so the speedups above rest on an unsteady number: "
            "compare the two alone in a process, where each runs as the reproduce command runs it")


def _found(row: _Row, trial: Trial, model: ModelInfo) -> tuple[Reproduce, ModelInfo]:
    used, name = row.graphs.get(trial.config.graph), trial.config.graph
    step = row.graphs.steps.get(name) if name else None
    graph = TUNE_GRAPHS[name] if name and step is None else None
    command = tuple(part.format(model=model.path, output=used.path) for part in step.command) if step else None
    return Reproduce(row.backend.name, row.batch, used.path, trial.config.options, graph, model.path if name else None, command), used


def _reproduced(tune: TuneOptions, row: _Row, trial: Trial, model: ModelInfo) -> dict:
    """The command line of a measured configuration, and the file it runs."""
    if trial.stats is None:
        return {"command": None, "model_sha256": None}
    found, used = _found(row, trial, model)
    return {"command": tune.reproduce(found), "model_sha256": used.sha256}


def _alone(tune: TuneOptions, row: _Row, model: ModelInfo, best: Trial, defaults: Trial) -> dict:
    """The best and the defaults measured again, each as the only session of a fresh process (a typed
    request, bench's full budget): ONNX Runtime's CUDA EP runs a process's later sessions slower, and every
    configuration after the first tried here is a later session."""
    rows: dict[str, BenchRow] = {}
    with row.reporter.task(f"{row.backend.name} batch {row.batch}: the best and the defaults, each alone in a process"):
        for name, trial in ({"best": best} if best is defaults else {"best": best, "defaults": defaults}).items():
            options = replace(row.options, runner=trial.config.options, profile=0, concurrency=1)
            request = RowRequest(row.graphs.get(trial.config.graph), row.backend.name, row.feeds, options)
            try:
                rows[name] = measure_alone(request, row.reporter)
            except InfertoolError as exc:  # a dead child included: the search's numbers stand, this one is missing
                return {"alone_ms": None, "alone_speedup": None, "alone_error": f"{name}: {shorten(exc.message)}"}
    rows.setdefault("defaults", rows["best"])
    medians = {name: r.latency.median for name, r in rows.items()}
    samples = {name: r.samples.get(r.latency_mode) for name, r in rows.items()} if row.options.save_samples else None
    return {"alone_ms": medians, "alone_speedup": round(medians["defaults"] / medians["best"], 4) if medians["best"] > 0 else None,
            "alone_error": None, "alone_graph_sha256": {name: r.graph_sha256 for name, r in rows.items()}, "alone_samples_ns": samples}


def tuner(tune: TuneOptions) -> RowMeasure:
    """The row measurement `run_bench` uses under --tune."""
    if tune.budget <= 0:
        raise InfertoolError(f"--tune-budget must be positive, not {tune.budget:g}s", hint="e.g. --tune-budget 60s")

    def measure(model: ModelInfo, backend: Backend, feeds: dict, options: BenchOptions, references, reporter: Reporter) -> BenchRow:
        return tune_row(tune, model, backend, feeds, options, references, reporter).row

    return measure
