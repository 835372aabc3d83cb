"""`infertool.quantize/1`: a precision graph and its accuracy against the original."""

from __future__ import annotations

from dataclasses import dataclass, field

from infertool.agreement import Judgement
from infertool.records.bench import TaskAccuracy, read_env, read_judgement
from infertool.records.fields import Damaged, Fields
from infertool.records.model_file import ModelFile

SCHEMA = "infertool.quantize/1"


@dataclass(frozen=True)
class AccuracyReport:
    """The original and the converted model on the same evaluation inputs."""

    backend: str
    data: str
    samples: int
    judgement: Judgement | None = None  # None: the converted model could not be evaluated
    unavailable: str = ""  # why the converted model could not be evaluated
    original_accuracy: TaskAccuracy | None = None  # both models against --labels-csv
    converted_accuracy: TaskAccuracy | None = None
    emulation: str = ""  # how the backend stood in for a precision it does not compute

    @property
    def outputs(self):
        return () if self.judgement is None else self.judgement.outputs

    @property
    def min_cosine(self) -> float | None:
        return None if self.judgement is None else self.judgement.min_cosine

    @property
    def top1(self) -> float | None:
        return None if self.judgement is None else self.judgement.top1

    def to_dict(self) -> dict:
        judged = {"passed": None, "outputs": []} if self.judgement is None else self.judgement.to_dict()
        return {
            "backend": self.backend, "data": self.data, "unavailable": self.unavailable or None,
            **judged, "samples": self.samples, "min_cosine": self.min_cosine, "top1": self.top1,
            "ground_truth": None if self.original_accuracy is None else {
                "original": self.original_accuracy.to_dict(),
                "converted": self.converted_accuracy.to_dict() if self.converted_accuracy else None,
            },
            "emulation": self.emulation or None,
        }

    @classmethod
    def read(cls, f: Fields, precision: str) -> AccuracyReport:
        evaluated = f.has("outputs") and not f.has("unavailable")
        truth = f.obj("ground_truth") if f.has("ground_truth") else None
        return cls(
            f.text("backend"), f.text("data", ""), f.integer("samples", 0), read_judgement(f, precision) if evaluated else None,
            f.text("unavailable", ""), TaskAccuracy.read(truth.obj("original")) if truth else None,
            TaskAccuracy.read(truth.obj("converted")) if truth and truth.has("converted") else None, f.text("emulation", ""),
        )


@dataclass(frozen=True)
class QuantizeResult:
    source: ModelFile
    output: ModelFile
    precision: str
    settings: dict
    graph: dict  # node counts of the converted graph
    calibration: dict | None
    accuracy: AccuracyReport
    gates: dict
    seconds: float
    notes: tuple[str, ...] = ()
    env: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(g["passed"] for g in self.gates.values())

    def to_dict(self) -> dict:
        return {
            "schema": "infertool.quantize/1", "env": self.env, "source": self.source.to_dict(), "output": self.output.to_dict(),
            "precision": self.precision, "settings": self.settings, "graph": self.graph,
            "calibration": self.calibration, "accuracy": self.accuracy.to_dict(), "gates": self.gates,
            "passed": self.passed, "seconds": round(self.seconds, 3), "notes": list(self.notes),
        }

    @classmethod
    def read(cls, f: Fields) -> QuantizeResult:
        if f.data.get("schema") != SCHEMA:
            raise Damaged("schema", f"is {f.data.get('schema')!r}, not {SCHEMA}")
        precision = f.text("precision")
        gates = f.obj("gates", Fields({}, "gates"))
        for name, _ in gates.entries():
            gates.obj(name).flag("passed")
        return cls(
            ModelFile.read(f.obj("source")), ModelFile.read(f.obj("output")), precision, f.mapping("settings", {}), f.mapping("graph", {}),
            f.mapping("calibration", None), AccuracyReport.read(f.obj("accuracy"), precision.replace("int8-dynamic", "int8")), gates.data,
            f.number("seconds", 0.0, 0.0), tuple(f.texts("notes", ())), read_env(f.obj("env", Fields({}, "env"))),
        )
