"""`infertool.bench/1`: rows of measurements, each with its agreement and accuracy."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from infertool.agreement import Agreement, Judgement, Rule
from infertool.records.fields import Damaged, Fields
from infertool.stats import Stats, throughput

SCHEMA = "infertool.bench/1"
STATS = ("min", "mean", "median", "p90", "p95", "p99", "max")


@dataclass(frozen=True)
class AgreementReport:
    """Outputs of one row against the reference outputs on the same inputs."""

    reference: str
    precision: str  # the tolerance class applied
    judgement: Judgement
    self_check: bool = False  # the row ran the reference's own runtime on the reference model

    @property
    def outputs(self):
        return self.judgement.outputs

    @property
    def passed(self) -> bool:
        return self.judgement.passed

    def to_dict(self) -> dict:
        return {
            "reference": self.reference, "precision": self.precision, "self_check": self.self_check, **self.judgement.to_dict(),
        }

    @classmethod
    def read(cls, f: Fields) -> AgreementReport:
        """As bench recorded it; files from before per-sample judging carry no rule or samples."""
        precision = f.text("precision", "fp32")
        return cls(f.text("reference", "?"), precision, read_judgement(f, precision), f.flag("self_check", False))


def read_judgement(f: Fields, precision: str) -> Judgement:
    """A judgement as recorded (agreement.Judgement.to_dict); files from before per-sample judging
    carry no rule or sample count: the precision's rule, one sample."""
    rule = Rule.of(precision)
    if f.has("rule"):
        r = f.obj("rule")
        rule = Rule(r.text("precision", precision), r.number("atol", 0.0), r.number("rtol", 0.0), r.number("min_cosine", None, -1.0, 1.0),
                    r.text("kind", "auto"), r.number("min_share", None, 0.0, 1.0))
    return Judgement(rule, f.integer("samples", 1, low=1), tuple(f.items("outputs", read_agreement)))


def read_agreement(f: Fields) -> Agreement:
    """One output's agreement: the fields a verdict or a table reads, each checked (a cosine may be NaN:
    the candidate had NaN/Inf)."""
    cosine = f.data.get("cosine")
    if not (cosine is None or (isinstance(cosine, float) and cosine != cosine)):
        cosine = f.number("cosine", low=-1.0, high=1.0)
    failing = f.numbers("failing", ())
    return Agreement(
        f.text("name"), f.flag("shape_match", True), _error(f, "max_abs"), _error(f, "mean_abs"), _error(f, "max_rel"),
        float("nan") if cosine is None else cosine, f.number("atol", 0.0), f.number("rtol", 0.0), f.flag("passed"),
        f.number("top1", None, 0.0, 1.0), f.number("top5", None, 0.0, 1.0), f.number("min_cosine", None, -1.0, 1.0),
        f.text("kind", "values"), f.integer("samples", 1, low=1), tuple(int(i) for i in failing),
        f.integer("worst", None), f.integer("nonfinite", 0), f.text("rule", ""),
    )


def _error(f: Fields, key: str) -> float:
    value = f.data.get(key)
    return value if isinstance(value, float) and value != value else f.number(key, float("nan"), 0.0)


@dataclass(frozen=True)
class TaskAccuracy:
    """A classifier's accuracy against ground truth (a labels CSV), not against another model."""

    labels: str  # the labels file
    output: str  # the classifier output judged
    samples: int  # labelled samples evaluated
    top1: float
    top5: float | None  # None with fewer than 5 classes

    def to_dict(self) -> dict:
        return {"labels": self.labels, "output": self.output, "samples": self.samples, "top1": self.top1, "top5": self.top5}

    @classmethod
    def read(cls, f: Fields) -> TaskAccuracy:
        return cls(f.text("labels"), f.text("output"), f.integer("samples"), f.number("top1", low=0.0, high=1.0), f.number("top5", None, 0.0, 1.0))


def read_stats(f: Fields) -> Stats:
    """Latency statistics in ms, as `Stats.to_dict` wrote them."""
    values = {k: f.number(k, low=0.0) for k in STATS}
    count = f.integer("count", 1, low=1)
    return Stats(count, values["min"], values["mean"], values["median"], values["p90"], values["p95"], values["p99"], values["max"],
                 f.number("std", 0.0, 0.0), f.number("cv", 0.0, 0.0), values["mean"] * count)


@dataclass(frozen=True)
class BenchRow:
    backend: str
    batch: int
    precision: str
    latency_mode: str  # which timing `latency_ms` is: end_to_end or device_resident
    timings: dict  # mode -> Stats: end_to_end, device_resident, gpu_compute, h2d, d2h
    memory: dict
    input_shapes: dict
    settings: dict
    agreement: AgreementReport | None = None
    speedup: float | None = None
    warnings: tuple[str, ...] = ()
    accuracy: TaskAccuracy | None = None  # against --labels-csv, on every labelled sample
    startup: dict = field(default_factory=dict)  # load_ms, first_inference_ms: kept apart from the steady-state timings
    model: str | None = None  # the model's label (bench compares several models)
    samples: dict = field(default_factory=dict)  # mode -> every iteration's time in ns (--save-samples)
    gpu: dict | None = None  # NVML clocks, temperature and power before and after the row
    compute: dict | None = None  # FLOPs, bytes, TFLOP/s and share of the device's peak
    profile: dict | None = None  # bench --profile: per op type and top nodes
    concurrency: dict | None = None  # bench --concurrency N: aggregate rate, per-request latency
    tune: dict | None = None  # bench --tune: the configurations tried and the reproduce command
    graph_sha256: str | None = None  # the graph this row ran (a tuned row's may be a graph made from the model)
    isolated: bool = False  # measured in a fresh process of its own (bench --isolate)

    @property
    def latency(self):
        return self.timings[self.latency_mode]

    def to_dict(self) -> dict:
        return {
            "backend": self.backend, "batch": self.batch, "precision": self.precision,
            "latency_mode": self.latency_mode, "latency_ms": self.latency.to_dict(),
            "throughput": throughput(self.latency, self.batch),
            "timings_ms": {mode: stats.to_dict() for mode, stats in self.timings.items()},
            "speedup": None if self.speedup is None else round(self.speedup, 4),
            "memory": self.memory, "agreement": self.agreement.to_dict() if self.agreement else None,
            "input_shapes": self.input_shapes, "settings": self.settings, "warnings": list(self.warnings), "startup_ms": self.startup,
            "accuracy": self.accuracy.to_dict() if self.accuracy else None,
            "model": self.model, "samples_ns": self.samples or None, "gpu_telemetry": self.gpu,
            "compute": self.compute, "profile": self.profile, "concurrency": self.concurrency, "tune": self.tune,
            "graph_sha256": self.graph_sha256, "isolated": self.isolated,
        }

    @classmethod
    def read(cls, f: Fields) -> BenchRow:
        mode = f.text("latency_mode")
        recorded = f.obj("timings_ms", Fields({}, "timings_ms"))
        timings = {m: read_stats(recorded.obj(m)) for m, _ in recorded.entries()}
        latency = read_stats(f.obj("latency_ms"))  # what the row's latency is, as written
        if mode in timings and timings[mode].to_dict() != latency.to_dict():  # one number, or the file is not one bench wrote
            raise Damaged(f"{f.where}.latency_ms", f"disagrees with timings_ms.{mode}, the same measurement")
        timings[mode] = latency
        samples = f.obj("samples_ns").data if f.has("samples_ns") else {}
        return cls(
            f.text("backend"), f.integer("batch", low=1), f.text("precision"), mode, timings, f.mapping("memory", {}), _shapes(f.obj("input_shapes")),
            f.mapping("settings", {}), AgreementReport.read(f.obj("agreement")) if f.has("agreement") else None,
            f.number("speedup", None, 0.0), tuple(f.texts("warnings", ())),
            TaskAccuracy.read(f.obj("accuracy")) if f.has("accuracy") else None, f.mapping("startup_ms", {}), f.text("model", None),
            {m: [int(v) for v in f.obj("samples_ns").numbers(m)] for m in samples}, f.mapping("gpu_telemetry", None),
            f.mapping("compute", None), f.mapping("profile", None), f.mapping("concurrency", None), f.mapping("tune", None),
            f.text("graph_sha256", None), f.flag("isolated", False),
        )


def _shapes(f: Fields) -> dict:
    """input name -> dims (whole numbers)."""
    found = {}
    for name, _ in f.entries():
        dims = f.numbers(name)
        if any(d != int(d) or d < 0 for d in dims):
            raise Damaged(f"{f.where}.{name}", "holds a dimension that is not a whole number")
        found[name] = [int(d) for d in dims]
    return found


@dataclass(frozen=True)
class GateRow:
    backend: str
    batch: int
    baseline_ms: float | None
    current_ms: float
    change: float | None  # (current - baseline) / baseline
    regressed: bool
    status: str = "ok"  # ok | regressed | not compared (no matching baseline row) | left out (too noisy)
    reason: str | None = None  # why a row was not compared or left out

    model: str | None = None
    machine: str | None = None  # report gates rows of several machines

    @property
    def judged(self) -> bool:
        return self.status in ("ok", "regressed")

    def to_dict(self) -> dict:
        return {
            "backend": self.backend, "batch": self.batch, "baseline_ms": self.baseline_ms, "current_ms": self.current_ms,
            "change": None if self.change is None else round(self.change, 4), "regressed": self.regressed,
            "status": self.status, "compared": self.judged, "reason": self.reason, "model": self.model, "machine": self.machine,
        }


@dataclass(frozen=True)
class GateReport:
    baseline: str
    stat: str
    max_regression: float  # a fraction: 0.1 fails rows more than 10 % slower
    rows: tuple[GateRow, ...]
    notes: tuple[str, ...] = ()
    max_cv: float | None = None  # rows noisier than this (now or in the baseline) are left out of the verdict

    @property
    def passed(self) -> bool:
        return not any(r.regressed for r in self.rows)

    def to_dict(self) -> dict:
        return {
            "baseline": self.baseline, "stat": self.stat, "max_regression": self.max_regression, "max_cv": self.max_cv,
            "passed": self.passed, "compared": sum(r.judged for r in self.rows), "rows": [r.to_dict() for r in self.rows],
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class BenchResult:
    env: dict
    model: dict
    settings: dict
    rows: tuple[BenchRow, ...]
    warnings: tuple[str, ...] = ()
    gate: GateReport | None = None
    skipped: tuple[dict, ...] = ()  # backends asked for that cannot run here: {"backend", "reason"}
    notes: tuple[str, ...] = ()
    models: tuple[dict, ...] = ()  # every model benchmarked, with its label; `model` is the first
    failed: tuple[dict, ...] = ()  # rows that could not be measured: backend, batch, error

    def to_dict(self) -> dict:
        return {
            "schema": "infertool.bench/1", "env": self.env, "model": self.model, "settings": self.settings,
            "rows": [r.to_dict() for r in self.rows], "warnings": list(self.warnings),
            "gate": self.gate.to_dict() if self.gate else None, "skipped": list(self.skipped), "notes": list(self.notes),
            "models": list(self.models), "failed_rows": list(self.failed),
        }

    @classmethod
    def read(cls, f: Fields) -> BenchResult:
        """A bench result read back: every field a command uses checked (records.fields)."""
        if f.data.get("schema") != SCHEMA:
            raise Damaged("schema", f"is {f.data.get('schema')!r}, not {SCHEMA}")
        model = _model(f.obj("model"))
        return cls(
            read_env(f.obj("env", Fields({}, "env"))), model, f.mapping("settings", {}), tuple(f.items("rows", BenchRow.read)),
            tuple(f.texts("warnings", ())), None, tuple(f.items("skipped", lambda s: s.data, ())), tuple(f.texts("notes", ())),
            tuple(f.items("models", _model, ())), tuple(f.items("failed_rows", lambda s: s.data, ())),
        )

    def labelled_models(self) -> dict[str, dict]:
        """Each model by the label its rows carry (a result from before labels: the one model, by its file's stem)."""
        models = self.models or ({"label": Path(self.model["path"]).stem, **self.model},)
        return {m.get("label") or Path(m["path"]).stem: m for m in models}


def _model(f: Fields) -> dict:
    """A model as results name it: path, sha256, precision (and label, where several were compared)."""
    return {**f.data, "path": f.text("path"), "sha256": f.text("sha256"), "precision": f.text("precision", "fp32"),
            **({"label": f.text("label")} if f.has("label") else {})}


def read_env(f: Fields) -> dict:
    """The environment block (environment.fingerprint) with the fields reports and gates read checked."""
    for key in ("hostname", "cpu", "timestamp_utc", "infertool_version", "git_commit"):
        f.text(key, None)
    f.integer("cpu_count", None, low=1)
    f.flag("git_dirty", None)
    f.items("gpus", lambda g: (g.text("name"), g.text("driver", None), g.text("compute_capability", None)), ())
    packages = f.obj("packages", Fields({}, "packages"))
    for name, _ in packages.entries():
        packages.text(name, None)
    return f.data
