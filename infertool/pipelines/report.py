"""`report`: any number of results (bench, quantize, build-engine, sweep; from several machines)
merged into one document with tables and plots, and optionally gated against a baseline. An
optimize result given alone is its own document: its candidates and accuracy against latency (HTML).

Results are read through their typed records (records/): a damaged file given by name is one line
(exit 2); one found in a folder is left out, named in a note, and the others still report. A sweep
summary's cells are read in its order and only from inside its folder. Speedups follow the one rule
(records/speedup.py) with the baseline the results recorded; the gate is records/gate.py's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from infertool import environment
from infertool.backends import registry
from infertool.errors import CheckFailed, InfertoolError
from infertool.files import check_output, write_text_atomic
from infertool.optional import require
from infertool.records.bench import BenchResult
from infertool.records.build import BuildResult
from infertool.records.fields import Damaged, Fields, load_json
from infertool.records.gate import Measured, gate, measured
from infertool.records.optimize import OptimizeResult
from infertool.records.quantize import QuantizeResult
from infertool.records.report import ReportResult
from infertool.records.speedup import Baseline, speedups
from infertool.records.sweep import CellFailure, SweepResult
from infertool.reporting import Reporter
from infertool.text import printable, shorten

READERS: dict[str, tuple[str, Callable[[Fields], object]]] = {
    "infertool.bench/1": ("bench", BenchResult.read), "infertool.quantize/1": ("quantize", QuantizeResult.read),
    "infertool.build/1": ("build-engine", BuildResult.read), "infertool.sweep/1": ("sweep", SweepResult.read),
    "infertool.sweep-cell/1": ("sweep cell", CellFailure.read),
}
NOTHING_TO_REPORT = ("infertool.convert/1", "infertool.run/1", "infertool.doctor/1", "infertool.report/1")
OPTIMIZE = "infertool.optimize/1"
FORMATS = {".md": "markdown", ".markdown": "markdown", ".html": "html", ".htm": "html"}
MAX_FILES = 10_000  # result files one report reads
HINT = "give JSON written by bench, quantize, build-engine or sweep (--json), or folders of them"


@dataclass(frozen=True)
class ReportGate:
    baseline: tuple[Path, ...]  # results (files or folders) to compare against
    max_regression: float
    stat: str = "median"
    max_cv: float | None = None


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


@dataclass(frozen=True)
class Source:
    id: str  # R1, R2, ...
    path: Path
    kind: str
    record: object  # the typed record (records/)
    machine: Machine | None
    cell: str | None = None  # the sweep cell it is the result of

    @property
    def env(self) -> dict:
        return getattr(self.record, "env", None) or {}


@dataclass(frozen=True)
class Row:
    """One bench row with its source and speedup."""

    measured: Measured
    source: Source
    speedup: float | None = None  # over the baseline row of its machine and input shapes

    @property
    def shapes(self) -> str:
        return ", ".join(f"{name} {'x'.join(map(str, dims))}" for name, dims in sorted(self.measured.row.input_shapes.items()))

    @property
    def key(self) -> tuple[str, str, str]:
        return self.measured.model["sha256"], self.shapes, self.measured.row.precision


@dataclass
class Merged:
    sources: list[Source]
    machines: list[Machine]
    rows: list[Row]
    notes: list[str] = field(default_factory=list)
    baseline: Baseline = field(default_factory=Baseline)

    def of_kind(self, kind: str) -> list[Source]:
        return [s for s in self.sources if s.kind == kind]

    def groups(self) -> dict[tuple[str, str, str], list[Row]]:
        """Comparable rows, in the order models and shapes first appear."""
        found: dict[tuple[str, str, str], list[Row]] = {}
        for row in self.rows:
            found.setdefault(row.key, []).append(row)
        return {k: sorted(v, key=lambda r: (r.measured.row.backend, r.source.machine.id, r.source.id)) for k, v in found.items()}


# ---------------------------------------------------------------- reading


class _Files:
    """The result files under the paths given, each read once, in a stable order: a sweep summary's
    cells in its order, right after it."""

    def __init__(self, notes: list[str]):
        self.found: dict[Path, tuple[str, object, str | None]] = {}  # path -> (kind, record, cell id)
        self.notes, self.skipped = notes, 0

    def add(self, path: Path, strict: bool, inside: Path | None = None) -> None:
        resolved = path.resolve()
        if resolved in self.found or (inside is not None and not resolved.is_relative_to(inside)):
            return
        if len(self.found) >= MAX_FILES:
            raise InfertoolError(f"more than {MAX_FILES} result files", hint="report on fewer folders at a time")
        read = self._read(path, strict)
        if read is None:
            return
        self.found[resolved] = read
        if read[0] == "sweep":
            self._cells(path, read[1])

    def _read(self, path: Path, strict: bool) -> tuple[str, object, str | None] | None:
        """(kind, typed record, sweep cell id), or None for what is not a result to report; a file
        that cannot be read is an error where given by name, else a note."""
        try:
            return self._typed(path, load_json(path, "result", HINT), strict)
        except InfertoolError as exc:
            if strict:
                raise
            self.notes.append(f"left out {exc.message}")
            return None

    def _typed(self, path: Path, data: object, strict: bool) -> tuple[str, object, str | None] | None:
        schema = data.get("schema") if isinstance(data, dict) else None
        if schema == OPTIMIZE:
            self.notes.append(f"left out {shorten(path)}: an optimize result is a report of its own (give it alone, -o NAME.html)")
            return None
        if schema not in READERS:
            if strict and schema not in NOTHING_TO_REPORT:
                raise InfertoolError(f"{shorten(path)} is not an infertool result (schema {shorten(printable(repr(schema)), 40)})", hint=HINT)
            self.skipped += schema not in NOTHING_TO_REPORT
            return None
        kind, read = READERS[schema]
        try:
            cell = Fields(data, "").obj("cell").text("id") if isinstance(data.get("cell"), dict) else None
            return kind, read(Fields(data, "")), cell
        except Damaged as exc:
            raise InfertoolError(f"{shorten(path)} is a damaged {kind} result: {exc.where or 'the file'} {exc.problem}", hint="write it again with --json") from None

    def _cells(self, path: Path, sweep: SweepResult) -> None:
        """The cells' results a sweep summary names, read only from inside its folder."""
        folder = path.parent.resolve()
        for cell in sweep.cells:
            name = cell.get("result")
            if not name or len(name) > 1024:
                continue
            target = folder / name
            if not target.resolve().is_relative_to(folder):
                self.notes.append(f"{shorten(path)} names a cell result outside its folder ({shorten(printable(name), 60)}): not read")
            elif target.is_file():
                self.add(target, strict=False, inside=folder)

    def walk(self, paths: Sequence[Path]) -> None:
        for path in paths:
            if path.is_dir():
                sweeps = sorted(path.rglob("sweep*.json"))
                for file in [*sweeps, *sorted(set(path.rglob("*.json")) - set(sweeps))]:
                    self.add(file, strict=False, inside=path.resolve())
            elif path.is_file():
                self.add(path, strict=True)
            else:
                raise InfertoolError(f"{shorten(path)} not found", hint="give result JSON files or folders of them")
        if self.skipped:
            self.notes.append(f"skipped {self.skipped} JSON file{'s' * (self.skipped > 1)} that are not infertool results")


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


def merge(paths: Sequence[Path]) -> Merged:
    """Every result under `paths`, with its machine and an id, and the bench rows of all of them."""
    notes: list[str] = []
    files = _Files(notes)
    files.walk(paths)
    if not files.found:
        raise InfertoolError("no infertool results found", hint=HINT)
    machines: list[Machine] = []
    sources = []
    for index, (path, (kind, record, cell)) in enumerate(files.found.items(), 1):
        sources.append(Source(f"R{index}", path, kind, record, _machine(getattr(record, "env", None) or {}, machines), cell))
    rows = [Row(m, s) for s in sources if s.kind == "bench" and s.machine is not None for m in measured(s.record, s.machine.id, s.cell)]
    unplaced = [s for s in sources if s.kind == "bench" and s.machine is None]
    if unplaced:
        notes.append(f"left out {len(unplaced)} bench result(s) without an environment block: their machine is unknown")
    return Merged(sources, machines, rows, notes)


# ---------------------------------------------------------------- speedups and the gate


def _recorded_baseline(merged: Merged) -> Baseline:
    """The baseline the results recorded: a sweep's first cell, else the first bench result's own."""
    for source in merged.sources:
        if source.kind == "sweep" and source.record.baseline:
            return Baseline(cell=source.record.baseline["cell"])
        if source.kind == "bench":
            recorded = Baseline.read(source.record.settings.get("speedup_baseline"))
            if recorded is not None:
                return recorded
    return Baseline()


def with_speedups(merged: Merged, baseline_row: str | None) -> None:
    """Speedups by the one rule, over the baseline row given, else the one the results recorded."""
    if baseline_row is not None:
        labels = sorted({r.measured.label for r in merged.rows})
        backends = sorted({r.measured.row.backend for r in merged.rows})
        merged.baseline = Baseline.parse(baseline_row, labels, backends, "these results")
    else:
        merged.baseline = _recorded_baseline(merged)
    found = speedups([r.measured for r in merged.rows], merged.baseline)
    merged.rows = [Row(r.measured, r.source, s) for r, s in zip(merged.rows, found)]


def run_gate(merged: Merged, options: ReportGate):
    """records/gate.py's gate, every row against the baseline results' rows."""
    baseline = merge(options.baseline)
    name = ", ".join(map(str, options.baseline))
    return gate([r.measured for r in merged.rows], [r.measured for r in baseline.rows], name, registry.gate_settings, options.max_regression, options.stat, options.max_cv)


def report(paths: Sequence[Path], options: ReportOptions, reporter: Reporter) -> ReportResult:
    """Merge, draw and write the report; raises CheckFailed (carrying the result, the report
    written) when the gate finds a regression."""
    from infertool.present.report import write_document

    if options.output.suffix.lower() not in FORMATS:
        raise InfertoolError(f"report output {options.output} should end in .md or .html", hint="e.g. -o report.md, or -o report.html for one self-contained file")
    check_output(options.output, options.force)
    searched = _optimize_result(paths)
    if searched is not None:
        return _optimize_report(searched, paths[0], options, reporter)
    merged = merge(paths)
    with_speedups(merged, options.baseline_row)
    gated = run_gate(merged, options.gate) if options.gate else None
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


def _optimize_result(paths: Sequence[Path]) -> OptimizeResult | None:
    """The optimize result where that is the one file given, else None."""
    if len(paths) != 1 or not paths[0].is_file():
        return None
    data = load_json(paths[0], "result", HINT)
    if not isinstance(data, dict) or data.get("schema") != OPTIMIZE:
        return None
    try:
        return OptimizeResult.read(Fields(data, ""))
    except Damaged as exc:
        raise InfertoolError(f"{shorten(paths[0])} is a damaged optimize result: {exc.where or 'the file'} {exc.problem}", hint="write it again with --json") from None


def _optimize_report(searched: OptimizeResult, path: Path, options: ReportOptions, reporter: Reporter) -> ReportResult:
    """optimize's own document (what `optimize --report` writes), from its JSON."""
    from infertool.present.optimize import report_html

    if options.baseline_row or options.gate:
        raise InfertoolError("--baseline-row and --baseline compare bench rows; an optimize result is reported alone", hint="drop them")
    if options.format != "html":
        raise InfertoolError(f"an optimize report is one HTML file, not {options.output.suffix}", hint=f"-o {options.output.with_suffix('.html').name}")
    require("matplotlib", "report (its plots)")
    with reporter.task("drawing and writing the report"):
        write_text_atomic(options.output, report_html(searched), options.force)
    source = {"id": "R1", "path": str(path), "kind": "optimize", "machine": None, "timestamp_utc": searched.env.get("timestamp_utc")}
    return ReportResult(environment.fingerprint(), str(options.output), ("pareto.png",), {"sources": [source], "machines": [], "groups": []}, None, ())


def _summary(merged: Merged) -> dict:
    return {
        "sources": [{"id": s.id, "path": str(s.path), "kind": s.kind, "machine": s.machine.id if s.machine else None,
                     "timestamp_utc": s.env.get("timestamp_utc")} for s in merged.sources],
        "machines": [{"id": m.id, "hostname": m.hostname, "cpu": m.cpu, "gpus": list(m.gpus)} for m in merged.machines],
        "speedup_baseline": merged.baseline.to_dict(),
        "groups": [
            {"model": rows[0].measured.label, "sha256": sha, "shapes": shapes, "precision": precision,
             "rows": [{"source": r.source.id, "machine": r.source.machine.id, "backend": r.measured.row.backend, "batch": r.measured.row.batch,
                       "median_ms": r.measured.row.latency.median, "speedup": None if r.speedup is None else round(r.speedup, 4)} for r in rows]}
            for (sha, shapes, precision), rows in merged.groups().items()
        ],
    }
