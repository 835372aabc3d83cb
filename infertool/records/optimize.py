"""`infertool.optimize/1`: every candidate `optimize` tried (the model, a precision graph made from it,
or one rescued with a keep list), its accuracy against the user's budget, its speed on each backend,
and the one it picked."""

from __future__ import annotations

from dataclasses import dataclass

from infertool.records.bench import BenchRow, read_env
from infertool.records.fields import Damaged, Fields
from infertool.records.model_file import ModelFile
from infertool.records.quantize import AccuracyReport

SCHEMA = "infertool.optimize/1"
PICKED = "picked"


@dataclass(frozen=True)
class AccuracyBudget:
    """The one threshold that decides whether a candidate is accurate enough.

    max_drop: top-1 against the ground truth (--labels-csv) at most this far below the model's own,
      as a fraction (0.01: one point).
    min_cosine: quantize's gate judging every output by its values (agreement.Rule, criterion values):
      each sample's cosine at least this, or within the precision's atol/rtol.
    neither: quantize's gate as it is, each precision's tolerance on every evaluation sample.
    """

    max_drop: float | None = None
    min_cosine: float | None = None

    def describe(self) -> str:
        if self.max_drop is not None:
            return f"top-1 at most {self.max_drop * 100:g} pts below the model's"
        if self.min_cosine is not None:
            return f"cosine >= {self.min_cosine:g} on every sample (quantize's gate, by values)"
        return "quantize's gate (each precision's tolerance)"

    def judge(self, accuracy: AccuracyReport) -> tuple[bool, str]:
        """(within the budget, what was found in words) from quantize's evaluation of a candidate."""
        if self.max_drop is not None:
            original, converted = accuracy.original_accuracy, accuracy.converted_accuracy
            if original is None or converted is None:
                return False, f"not evaluated: {accuracy.unavailable or 'no ground truth'}"
            change = converted.top1 - original.top1
            return -change <= self.max_drop + 1e-9, f"top-1 {converted.top1:.1%} ({change * 100:+.1f} pts)"
        judgement = accuracy.judgement
        if judgement is None:
            return False, f"not evaluated: {accuracy.unavailable}"
        failing = len(judgement.failing)
        found = f"{failing}/{judgement.samples} fail" if failing else f"{judgement.samples}/{judgement.samples} ok"
        cosine = judgement.min_cosine
        return judgement.passed, found + ("" if cosine is None else f", cos {cosine:.4f}" if cosine == cosine else ", cos NaN")

    def to_dict(self) -> dict:
        return {"max_accuracy_drop": self.max_drop, "min_cosine": self.min_cosine, "rule": self.describe()}

    @classmethod
    def read(cls, f: Fields) -> AccuracyBudget:
        return cls(f.number("max_accuracy_drop", None, 0.0, 1.0), f.number("min_cosine", None, -1.0, 1.0))


@dataclass(frozen=True)
class Run:
    """A candidate on one backend: its bench row, or why it has none; and the verdict."""

    backend: str
    row: BenchRow | None = None  # measured in optimize's process: the configuration bench --tune found (row.tune), or as given
    verdict: str = ""  # PICKED, or why not (slower, could not run, timing missing)
    finalist: bool = False  # measured again alone
    alone: BenchRow | None = None  # a finalist's configuration measured again as the only session of a fresh process
    alone_error: str = ""  # why a finalist has no such number

    @property
    def decisive(self) -> BenchRow | None:
        """The number that ranked this run: measured alone where it was, else in optimize's process."""
        return self.alone or self.row

    def to_dict(self) -> dict:
        return {
            "backend": self.backend, "row": self.row.to_dict() if self.row else None, "verdict": self.verdict, "finalist": self.finalist,
            "alone": self.alone.to_dict() if self.alone else None, "alone_error": self.alone_error or None,
        }

    @classmethod
    def read(cls, f: Fields) -> Run:
        row = BenchRow.read(f.obj("row")) if f.has("row") else None
        alone = BenchRow.read(f.obj("alone")) if f.has("alone") else None
        return cls(f.text("backend"), row, f.text("verdict", ""), f.flag("finalist", False), alone, f.text("alone_error", ""))


@dataclass(frozen=True)
class Candidate:
    """A graph optimize made (or the model as given) and what became of it."""

    name: str  # the model's precision (the model as given), a vocabulary.PRECISION_GRAPHS name, or NAME-rescued
    precision: str  # quantize -p; the model's own precision for the model as given
    target: str | None = None  # quantize --target (None: the model as given)
    kept: tuple[str, ...] = ()  # nodes kept in float (debug precision's keep list)
    model: ModelFile | None = None  # the graph as made (in optimize's scratch folder; None: not made)
    accuracy: AccuracyReport | None = None  # quantize's evaluation (None: the model itself, or not evaluated)
    within_budget: bool | None = None  # None: not judged (the model itself is the reference)
    found: str = ""  # what the accuracy check found, in words
    runs: tuple[Run, ...] = ()
    rejected: str = ""  # why the candidate as a whole was not measured (accuracy, conversion, time budget)
    seconds: float = 0.0

    @property
    def given(self) -> bool:
        """Whether this is the model as given (the baseline)."""
        return self.target is None

    def to_dict(self) -> dict:
        return {
            "name": self.name, "precision": self.precision, "target": self.target, "kept": list(self.kept),
            "model": self.model.to_dict() if self.model else None, "accuracy": self.accuracy.to_dict() if self.accuracy else None,
            "within_budget": self.within_budget, "found": self.found, "runs": [r.to_dict() for r in self.runs],
            "rejected": self.rejected or None, "seconds": round(self.seconds, 3),
        }

    @classmethod
    def read(cls, f: Fields) -> Candidate:
        precision = f.text("precision")
        return cls(
            f.text("name"), precision, f.text("target", None), tuple(f.texts("kept", ())),
            ModelFile.read(f.obj("model")) if f.has("model") else None,
            AccuracyReport.read(f.obj("accuracy"), precision.replace("int8-dynamic", "int8")) if f.has("accuracy") else None,
            f.flag("within_budget", None), f.text("found", ""), tuple(f.items("runs", Run.read, ())), f.text("rejected", ""),
            f.number("seconds", 0.0, 0.0),
        )


@dataclass(frozen=True)
class OptimizeResult:
    env: dict
    source: ModelFile
    budget: AccuracyBudget
    settings: dict  # backends, batch, time budget, data, what was asked
    candidates: tuple[Candidate, ...]
    picked: dict | None = None  # {"candidate", "backend"}; None: nothing met the budget
    output: ModelFile | None = None  # the picked graph as written (None: nothing written)
    reproduce: str | None = None  # the script that rebuilds it
    skipped: tuple[str, ...] = ()  # steps left out when the time budget ran out
    notes: tuple[str, ...] = ()
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.picked is not None

    def winner(self) -> tuple[Candidate, Run] | None:
        if self.picked is None:
            return None
        candidate = next(c for c in self.candidates if c.name == self.picked["candidate"])
        return candidate, next(r for r in candidate.runs if r.backend == self.picked["backend"])

    def baseline(self, backend: str) -> BenchRow | None:
        """The model as given, measured on `backend`: what speedups are against."""
        given = next((c for c in self.candidates if c.given), None)
        return next((r.row for r in given.runs if r.backend == backend and r.row), None) if given else None

    def to_dict(self) -> dict:
        return {
            "schema": SCHEMA, "env": self.env, "source": self.source.to_dict(), "budget": self.budget.to_dict(), "settings": self.settings,
            "candidates": [c.to_dict() for c in self.candidates], "picked": self.picked, "passed": self.passed,
            "output": self.output.to_dict() if self.output else None, "reproduce": self.reproduce,
            "skipped": list(self.skipped), "notes": list(self.notes), "seconds": round(self.seconds, 3),
        }

    @classmethod
    def read(cls, f: Fields) -> OptimizeResult:
        if f.data.get("schema") != SCHEMA:
            raise Damaged("schema", f"is {f.data.get('schema')!r}, not {SCHEMA}")
        candidates = tuple(f.items("candidates", Candidate.read))
        picked = f.obj("picked") if f.has("picked") else None
        if picked is not None:
            name, backend = picked.text("candidate"), picked.text("backend")
            if not any(c.name == name and any(r.backend == backend for r in c.runs) for c in candidates):
                raise Damaged("picked", f"names {name} on {backend}, which no candidate ran")
        return cls(
            read_env(f.obj("env", Fields({}, "env"))), ModelFile.read(f.obj("source")), AccuracyBudget.read(f.obj("budget")),
            f.mapping("settings", {}), candidates, picked.data if picked else None,
            ModelFile.read(f.obj("output")) if f.has("output") else None, f.text("reproduce", None),
            tuple(f.texts("skipped", ())), tuple(f.texts("notes", ())), f.number("seconds", 0.0, 0.0),
        )

