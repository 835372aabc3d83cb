"""`infertool.convert/1`: an export and its validation."""

from __future__ import annotations

from dataclasses import dataclass, field

from infertool.agreement import Agreement
from infertool.records.model_file import ModelFile
from infertool.tensors import TensorSpec


@dataclass(frozen=True)
class BatchAgreement:
    """One parity check: at the example shapes (`varied` None), or with one dynamic axis at another size."""

    batch: int
    outputs: tuple[Agreement, ...]
    input_shapes: dict = field(default_factory=dict)
    varied: tuple[str, int, int] | None = None  # the dynamic axis given another size: (label, example size, size here)

    @property
    def passed(self) -> bool:
        return all(a.passed for a in self.outputs)

    def to_dict(self) -> dict:
        return {
            "batch": self.batch, "input_shapes": self.input_shapes, "passed": self.passed,
            "varied": None if self.varied is None else dict(zip(("axis", "from", "to"), self.varied)),
            "outputs": [a.to_dict() for a in self.outputs],
        }


@dataclass(frozen=True)
class ValidationReport:
    """Optimum-style checks of an export: checker and strict shape inference (a report exists
    only when both passed; a failure raises instead), then parity with the source model."""

    reference: str  # what the ONNX outputs were compared with
    atol: float
    rtol: float
    batches: tuple[BatchAgreement, ...]
    warnings: tuple[str, ...] = ()  # e.g. outputs that do not depend on the inputs: a parity that proves nothing

    @property
    def passed(self) -> bool:
        return all(b.passed for b in self.batches)

    def to_dict(self) -> dict:
        return {
            "passed": self.passed, "checker": "ok", "shape_inference": "ok",
            "reference": self.reference, "atol": self.atol, "rtol": self.rtol,
            "batches": [b.to_dict() for b in self.batches], "warnings": list(self.warnings),
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
    env: dict = field(default_factory=dict)  # environment.fingerprint(): where, when and by what it ran

    def to_dict(self) -> dict:
        return {
            "schema": "infertool.convert/1", "env": self.env,
            "source": self.source, "framework": self.framework, "exporter": self.exporter,
            "output": self.output.to_dict(), "opset": self.opset,
            "inputs": [s.to_dict() for s in self.inputs], "outputs": [s.to_dict() for s in self.outputs],
            "seconds": round(self.seconds, 3),
            "validation": self.validation.to_dict() if self.validation else None,
            "notes": list(self.notes),
        }
