"""Result records of every command, with `to_dict()`: the JSON schemas live here."""

from __future__ import annotations

from dataclasses import dataclass, field

from infertool.compare import Agreement
from infertool.specs import TensorSpec


@dataclass(frozen=True)
class ModelFile:
    path: str
    sha256: str
    bytes: int
    external_data: bool = False

    def to_dict(self) -> dict:
        return {"path": self.path, "sha256": self.sha256, "bytes": self.bytes, "external_data": self.external_data}


@dataclass(frozen=True)
class BatchAgreement:
    batch: int
    outputs: tuple[Agreement, ...]

    @property
    def passed(self) -> bool:
        return all(a.passed for a in self.outputs)

    def to_dict(self) -> dict:
        return {"batch": self.batch, "passed": self.passed, "outputs": [a.to_dict() for a in self.outputs]}


@dataclass(frozen=True)
class ValidationReport:
    """Optimum-style checks of an export: checker, shape inference, parity with the source model."""

    checker: str
    shape_inference: str
    reference: str  # what the ONNX outputs were compared with
    atol: float
    rtol: float
    batches: tuple[BatchAgreement, ...]

    @property
    def passed(self) -> bool:
        return all(b.passed for b in self.batches)

    def to_dict(self) -> dict:
        return {
            "passed": self.passed, "checker": self.checker, "shape_inference": self.shape_inference,
            "reference": self.reference, "atol": self.atol, "rtol": self.rtol,
            "batches": [b.to_dict() for b in self.batches],
        }


@dataclass(frozen=True)
class ConvertResult:
    source: str
    framework: str
    exporter: str
    output: ModelFile
    opset: int
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    seconds: float
    validation: ValidationReport | None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        return {
            "schema": "infertool.convert/1",
            "source": self.source, "framework": self.framework, "exporter": self.exporter,
            "output": self.output.to_dict(), "opset": self.opset,
            "inputs": [s.to_dict() for s in self.inputs], "outputs": [s.to_dict() for s in self.outputs],
            "seconds": round(self.seconds, 3),
            "validation": self.validation.to_dict() if self.validation else None,
            "notes": list(self.notes),
        }
