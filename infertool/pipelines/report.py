"""`report`: any number of results (bench, quantize, build-engine, sweep; from several machines)
merged into one document with tables and plots, and optionally gated against a baseline.

Rows measured on the same model file (sha256), input shapes and precision are comparable; each
keeps its machine and run, so different machines stand side by side and are never averaged.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from infertool import environment
from infertool.errors import CheckFailed, InfertoolError, first_line
from infertool.files import check_output
from infertool.reporting import Reporter
from infertool.results import GateReport, GateRow, ReportResult

KINDS = {
    "infertool.bench/1": "bench", "infertool.quantize/1": "quantize", "infertool.build/1": "build-engine",
    "infertool.sweep/1": "sweep", "infertool.sweep-cell/1": "sweep cell",
}
NOTHING_TO_REPORT = ("infertool.convert/1", "infertool.run/1", "infertool.doctor/1", "infertool.report/1")
FORMATS = {".md": "markdown", ".markdown": "markdown", ".html": "html", ".htm": "html"}


@dataclass(frozen=True)
class ReportGate:
    baseline: tuple[Path, ...]  # results (files or folders) to compare against
    max_regression: float
    stat: str = "median"


@dataclass(frozen=True)
class ReportOptions:
    output: Path
    baseline_row: str | None = None  # MODEL, BACKEND or MODEL:BACKEND: the row speedups are measured against
    gate: ReportGate | None = None
    force: bool = False

    @property
    def format(self) -> str:
        return FORMATS[self.output.suffix.lower()]


@dataclass(frozen=True)
class Machine:
    id: str  # M1, M2, ...
    hostname: str
    cpu: str
    gpus: tuple[str, ...]
    env: dict

    @property
    def title(self) -> str:
        return f"{self.id} {self.hostname}"

    @property
    def hardware(self) -> tuple:
        return self.cpu, self.gpus


@dataclass(frozen=True)
class Source:
    id: str  # R1, R2, ...
    path: Path
    kind: str
    data: dict
    machine: Machine | None

    @property
    def env(self) -> dict:
        return self.data.get("env") or {}


@dataclass(frozen=True)
class Row:
    """One bench row with what makes it comparable: model file, input shapes, precision."""

    source: Source
    data: dict
    model: dict  # label, path, sha256, precision of the model it ran
    speedup: float | None = None  # against the baseline row of its machine and input shapes

    @property
    def shapes(self) -> str:
        return ", ".join(f"{name} {'x'.join(map(str, dims))}" for name, dims in sorted(self.data["input_shapes"].items()))

    @property
    def key(self) -> tuple[str, str, str]:
        return self.model["sha256"], self.shapes, self.data["precision"]

    @property
    def median(self) -> float:
        return self.data["latency_ms"]["median"]

    @property
    def cell(self) -> str | None:
        return (self.source.data.get("cell") or {}).get("id")


@dataclass
class Merged:
    sources: list[Source]
    machines: list[Machine]
    rows: list[Row]
    notes: list[str] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[Source]:
        return [s for s in self.sources if s.kind == kind]

    def groups(self) -> dict[tuple[str, str, str], list[Row]]:
        """Comparable rows, in the order models and shapes first appear."""
        found: dict[tuple[str, str, str], list[Row]] = {}
        for row in self.rows:
            found.setdefault(row.key, []).append(row)
        return {k: sorted(v, key=lambda r: (r.data["backend"], r.source.machine.id, r.source.id)) for k, v in found.items()}


# ---------------------------------------------------------------- reading


def _read(path: Path, strict: bool) -> dict | None:
    """An infertool result, or None for a file a folder holds that is not one (strict: an error)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        if strict:
            raise InfertoolError(f"{path} is not a JSON result: {first_line(exc)}", hint="give files written with --json, or folders of them") from exc
        return None
    schema = data.get("schema") if isinstance(data, dict) else None
    if schema in KINDS or (not strict and schema in NOTHING_TO_REPORT):
        return data
    if strict:
        raise InfertoolError(f"{path} is not an infertool result (schema {schema!r})", hint="give JSON written by bench, quantize, build-engine or sweep")
    return None


def _files(paths: Sequence[Path], notes: list[str]) -> dict[Path, dict]:
    found: dict[Path, dict] = {}
    skipped = 0
    for path in paths:
        if path.is_dir():
            for file in sorted(path.rglob("*.json")):
                data = _read(file, strict=False)
                skipped += data is None
                if data is not None:
                    found.setdefault(file.resolve(), data)
        elif path.is_file():
            found.setdefault(path.resolve(), _read(path, strict=True))
        else:
            raise InfertoolError(f"{path} not found", hint="give result JSON files or folders of them")
    for file, data in list(found.items()):
        if data["schema"] == "infertool.sweep/1":  # a sweep's summary names its cells' results
            for cell in data.get("cells", []):
                result = file.parent / cell["result"] if cell.get("result") else None
                if result is not None and result.resolve() not in found and result.is_file():
                    found[result.resolve()] = _read(result, strict=True)
    if skipped:
        notes.append(f"skipped {skipped} JSON file{'s' * (skipped > 1)} that are not infertool results")
    ignored = [f for f, d in found.items() if d["schema"] in NOTHING_TO_REPORT]
    if ignored:
        notes.append(f"left out {len(ignored)} result{'s' * (len(ignored) > 1)} with nothing to report (convert, run, doctor, report)")
    return {f: d for f, d in found.items() if d["schema"] in KINDS}


def _machine(env: dict, machines: list[Machine]) -> Machine | None:
    if not env:
        return None
    hostname = env.get("hostname") or "unknown host"
    gpus = tuple(g.get("name", "?") for g in env.get("gpus") or [])
    for machine in machines:
        if (machine.hostname, machine.cpu, machine.gpus) == (hostname, env.get("cpu") or "?", gpus):
            return machine
    machines.append(Machine(f"M{len(machines) + 1}", hostname, env.get("cpu") or "?", gpus, env))
    return machines[-1]


REQUIRED = {"quantize": ("source", "output", "precision", "accuracy"), "build-engine": ("engine", "sidecar"), "sweep cell": ("cell",)}
ROW_KEYS = ("backend", "batch", "precision", "latency_mode", "latency_ms", "throughput", "input_shapes")
LATENCY_KEYS = ("min", "median", "p90", "p95", "p99", "max", "cv")


def _check_bench(source: Source) -> None:
    """A bench result damaged or edited by hand is named, not a crash later on."""
    data = source.data
    model = data.get("model")
    problem = None if isinstance(model, dict) and {"path", "sha256"} <= set(model) else "its model (path, sha256)"
    for index, row in enumerate(data.get("rows") if isinstance(data.get("rows"), list) else [None]):
        if not isinstance(row, dict) or not set(ROW_KEYS) <= set(row) or not set(LATENCY_KEYS) <= set(row["latency_ms"] or {}):
            problem = problem or f"row {index} ({', '.join(ROW_KEYS)}, latency_ms {', '.join(LATENCY_KEYS)})"
    if problem:
        raise InfertoolError(f"{source.path} is a damaged bench result: it lacks {problem}", hint="write it again with infertool bench --json")


def _bench_rows(source: Source) -> list[Row]:
    _check_bench(source)
    data = source.data
    models = data.get("models") or [{"label": Path(data["model"]["path"]).stem, **data["model"]}]
    by_label = {m["label"]: m for m in models}
    return [Row(source, row, by_label.get(row.get("model"), models[0])) for row in data.get("rows", [])]


def merge(paths: Sequence[Path]) -> Merged:
    """Every result under `paths`, with its machine and an id, and the bench rows of all of them."""
    notes: list[str] = []
    files = _files(paths, notes)
    if not files:
        raise InfertoolError("no infertool results found", hint="give JSON written by bench, quantize, build-engine or sweep (--json), or folders of them")
    machines: list[Machine] = []
    sources = [
        Source(f"R{index}", path, KINDS[data["schema"]], data, _machine(data.get("env") or {}, machines))
        for index, (path, data) in enumerate(files.items(), 1)
    ]
    for source in sources:
        missing = [k for k in REQUIRED.get(source.kind, ()) if not source.data.get(k)]
        if missing:
            raise InfertoolError(f"{source.path} is a damaged {source.kind} result: it lacks {', '.join(missing)}", hint="write it again with --json")
    rows = [row for s in sources if s.kind == "bench" and s.machine is not None for row in _bench_rows(s)]
    unplaced = [s for s in sources if s.kind == "bench" and s.machine is None]
    if unplaced:
        notes.append(f"left out {len(unplaced)} bench result(s) without an environment block: their machine is unknown")
    return Merged(sources, machines, rows, notes)


# ---------------------------------------------------------------- speedups and the gate


def _matches(row: Row, baseline: str | None) -> bool:
    if baseline is None:
        return True
    label, sep, backend = baseline.rpartition(":")
    if sep:
        return row.model["label"] == label and row.data["backend"] == backend
    return baseline in (row.model["label"], row.data["backend"])


def with_speedups(merged: Merged, baseline: str | None) -> None:
    """Speedup of every row over the baseline row measured on the same machine at the same input
    shapes (by default the first such row read); never across machines."""
    if baseline is not None and not any(_matches(r, baseline) for r in merged.rows):
        labels = sorted({r.model["label"] for r in merged.rows})
        backends = sorted({r.data["backend"] for r in merged.rows})
        raise InfertoolError(f"--baseline-row '{baseline}' names no model or backend of these results", hint=f"models: {', '.join(labels)}; backends: {', '.join(backends)}")
    bases: dict[tuple, float] = {}
    for row in merged.rows:
        if _matches(row, baseline):
            bases.setdefault((row.source.machine.id, row.shapes), row.median)
    merged.rows = [
        Row(r.source, r.data, r.model, bases[(r.source.machine.id, r.shapes)] / r.median if (r.source.machine.id, r.shapes) in bases and r.median > 0 else None)
        for r in merged.rows
    ]


def _gate_key(row: Row) -> tuple:
    return (*row.key, row.data["backend"], row.data["latency_mode"], row.source.machine.hardware)


def _stat(row: Row, stat: str) -> float | None:
    timing = (row.data.get("timings_ms") or {}).get(row.data["latency_mode"]) or row.data["latency_ms"]
    return timing.get(stat)


def gate(merged: Merged, options: ReportGate) -> GateReport:
    """Every row against the newest baseline row of the same model file, shapes, precision,
    backend and timing mode on the same hardware (the host name may differ: CI runners come and go)."""
    baseline = merge(options.baseline)
    newest: dict[tuple, Row] = {}
    for row in sorted(baseline.rows, key=lambda r: r.source.env.get("timestamp_utc") or ""):
        newest[_gate_key(row)] = row
    rows, notes = [], []
    for row in merged.rows:
        current, base = _stat(row, options.stat), newest.get(_gate_key(row))
        base_ms = None if base is None else _stat(base, options.stat)
        name = f"{row.model['label']} {row.data['backend']} batch {row.data['batch']} on {row.source.machine.id}"
        if current is None or not base_ms:
            notes.append(f"{name}: no baseline row on the same hardware; not gated")
            rows.append(GateRow(row.data["backend"], row.data["batch"], None, current or 0.0, None, False, "not compared",
                                "no baseline row on the same hardware", model=row.model["label"], machine=row.source.machine.id))
            continue
        change = (current - base_ms) / base_ms
        regressed = change > options.max_regression
        rows.append(GateRow(row.data["backend"], row.data["batch"], base_ms, current, change, regressed, "regressed" if regressed else "ok",
                            model=row.model["label"], machine=row.source.machine.id))
    return GateReport(", ".join(map(str, options.baseline)), options.stat, options.max_regression, tuple(rows), tuple(notes))


def report(paths: Sequence[Path], options: ReportOptions, reporter: Reporter) -> ReportResult:
    """Merge, draw and write the report; raises CheckFailed (carrying the result, the report
    written) when the gate finds a regression."""
    from infertool.pipelines.report_doc import write_document

    if options.output.suffix.lower() not in FORMATS:
        raise InfertoolError(f"report output {options.output} should end in .md or .html", hint="e.g. -o report.md, or -o report.html for one self-contained file")
    check_output(options.output, options.force)
    merged = merge(paths)
    with_speedups(merged, options.baseline_row)
    gated = gate(merged, options.gate) if options.gate else None
    with reporter.task("drawing and writing the report"):
        images = write_document(merged, gated, options)
    for note in merged.notes:
        reporter.note(note)
    result = ReportResult(environment.fingerprint(), str(options.output), tuple(images), _summary(merged), gated, tuple(merged.notes))
    if gated is not None and not gated.passed:
        slower = [r for r in gated.rows if r.regressed]
        raise CheckFailed(
            "performance regression: " + ", ".join(f"{r.model} {r.backend} batch {r.batch} on {r.machine} {r.change:+.1%}" for r in slower)
            + f" (limit {gated.max_regression:.0%} on {gated.stat}); the report shows it",
            result=result,
        )
    return result


def _summary(merged: Merged) -> dict:
    return {
        "sources": [{"id": s.id, "path": str(s.path), "kind": s.kind, "machine": s.machine.id if s.machine else None,
                     "timestamp_utc": s.env.get("timestamp_utc")} for s in merged.sources],
        "machines": [{"id": m.id, "hostname": m.hostname, "cpu": m.cpu, "gpus": list(m.gpus)} for m in merged.machines],
        "groups": [
            {"model": rows[0].model["label"], "sha256": sha, "shapes": shapes, "precision": precision,
             "rows": [{"source": r.source.id, "machine": r.source.machine.id, "backend": r.data["backend"], "batch": r.data["batch"],
                       "median_ms": r.median, "speedup": None if r.speedup is None else round(r.speedup, 4)} for r in rows]}
            for (sha, shapes, precision), rows in merged.groups().items()
        ],
    }
