"""Result records of every command, with `to_dict()`: each command's JSON schema lives here
(the engine sidecar, a file format rather than a result, in engine/sidecar.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from infertool.agreement import Agreement
from infertool.stats import throughput
from infertool.tensors import TensorSpec


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
    """Optimum-style checks of an export: checker and strict shape inference (a report exists
    only when both passed; a failure raises instead), then parity with the source model."""

    reference: str  # what the ONNX outputs were compared with
    atol: float
    rtol: float
    batches: tuple[BatchAgreement, ...]

    @property
    def passed(self) -> bool:
        return all(b.passed for b in self.batches)

    def to_dict(self) -> dict:
        return {
            "passed": self.passed, "checker": "ok", "shape_inference": "ok",
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


@dataclass(frozen=True)
class AgreementReport:
    """Outputs of one row against the reference outputs on the same inputs."""

    reference: str
    precision: str  # the tolerance class applied
    outputs: tuple[Agreement, ...]

    @property
    def passed(self) -> bool:
        return all(a.passed for a in self.outputs)

    def to_dict(self) -> dict:
        return {"reference": self.reference, "precision": self.precision, "passed": self.passed, "outputs": [a.to_dict() for a in self.outputs]}


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
    compute: dict | None = None  # FLOPs, bytes, TFLOP/s and share of the device's peak
    profile: dict | None = None  # bench --profile: per op type and top nodes
    concurrency: dict | None = None  # bench --concurrency N: aggregate rate, per-request latency
    tune: dict | None = None  # bench --tune: the configurations tried and the reproduce command

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
            "input_shapes": self.input_shapes, "settings": self.settings, "warnings": list(self.warnings),
            "compute": self.compute, "profile": self.profile, "concurrency": self.concurrency, "tune": self.tune,
        }


@dataclass(frozen=True)
class GateRow:
    backend: str
    batch: int
    baseline_ms: float | None
    current_ms: float
    change: float | None  # (current - baseline) / baseline
    regressed: bool

    def to_dict(self) -> dict:
        return {
            "backend": self.backend, "batch": self.batch, "baseline_ms": self.baseline_ms, "current_ms": self.current_ms,
            "change": None if self.change is None else round(self.change, 4), "regressed": self.regressed,
        }


@dataclass(frozen=True)
class GateReport:
    baseline: str
    stat: str
    max_regression: float
    rows: tuple[GateRow, ...]
    notes: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return not any(r.regressed for r in self.rows)

    def to_dict(self) -> dict:
        return {
            "baseline": self.baseline, "stat": self.stat, "max_regression": self.max_regression, "passed": self.passed,
            "rows": [r.to_dict() for r in self.rows], "notes": list(self.notes),
        }


@dataclass(frozen=True)
class BenchResult:
    env: dict
    model: dict
    settings: dict
    rows: tuple[BenchRow, ...]
    warnings: tuple[str, ...] = ()
    gate: GateReport | None = None
    failed: tuple[dict, ...] = ()  # rows that could not be measured: backend, batch, error

    def to_dict(self) -> dict:
        return {
            "schema": "infertool.bench/1", "env": self.env, "model": self.model, "settings": self.settings,
            "rows": [r.to_dict() for r in self.rows], "warnings": list(self.warnings),
            "gate": self.gate.to_dict() if self.gate else None, "failed_rows": list(self.failed),
        }


@dataclass(frozen=True)
class AccuracyReport:
    """The original and the converted model on the same evaluation inputs."""

    backend: str
    data: str
    samples: int
    outputs: tuple[Agreement, ...] = ()
    unavailable: str = ""  # why the converted model could not be evaluated

    @property
    def min_cosine(self) -> float | None:
        return min((a.cosine for a in self.outputs), default=None)

    @property
    def top1(self) -> float | None:
        return next((a.top1 for a in self.outputs if a.top1 is not None), None)

    def to_dict(self) -> dict:
        return {
            "backend": self.backend, "data": self.data, "samples": self.samples, "unavailable": self.unavailable or None,
            "min_cosine": self.min_cosine, "top1": self.top1, "outputs": [a.to_dict() for a in self.outputs],
        }


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

    @property
    def passed(self) -> bool:
        return all(g["passed"] for g in self.gates.values())

    def to_dict(self) -> dict:
        return {
            "schema": "infertool.quantize/1", "source": self.source.to_dict(), "output": self.output.to_dict(),
            "precision": self.precision, "settings": self.settings, "graph": self.graph,
            "calibration": self.calibration, "accuracy": self.accuracy.to_dict(), "gates": self.gates,
            "passed": self.passed, "seconds": round(self.seconds, 3), "notes": list(self.notes),
        }


@dataclass(frozen=True)
class BuildResult:
    engine: ModelFile
    sidecar: dict  # everything the .engine.json holds
    timing_cache_loaded: bool
    precision_report: dict | None  # the precision stage (graph, calibration, accuracy), when one ran
    seconds: float
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {
            "schema": "infertool.build/1", "engine": self.engine.to_dict(), "sidecar": self.sidecar,
            "timing_cache_loaded": self.timing_cache_loaded, "precision_stage": self.precision_report,
            "seconds": round(self.seconds, 3), "notes": list(self.notes),
        }


@dataclass(frozen=True)
class OutputSummary:
    name: str
    shape: tuple[int, ...]
    dtype: str
    min: float | None
    max: float | None
    mean: float | None
    nan: int
    inf: int

    @classmethod
    def of(cls, name: str, array: np.ndarray) -> OutputSummary:
        if array.size == 0 or array.dtype.kind not in "biuf":
            return cls(name, array.shape, str(array.dtype), None, None, None, 0, 0)
        values = array.astype(np.float64)
        finite = values[np.isfinite(values)]
        return cls(
            name, array.shape, str(array.dtype),
            float(finite.min()) if finite.size else None, float(finite.max()) if finite.size else None,
            float(finite.mean()) if finite.size else None, int(np.isnan(values).sum()), int(np.isinf(values).sum()),
        )

    def to_dict(self) -> dict:
        return {**self.__dict__, "shape": list(self.shape)}


@dataclass(frozen=True)
class TopK:
    output: str
    rows: tuple[tuple[tuple[int, str, float, float], ...], ...]  # per sample: (class, label, score, probability)

    def to_dict(self) -> dict:
        return {
            "output": self.output,
            "rows": [[{"class": c, "label": label, "score": s, "probability": p} for c, label, s, p in row] for row in self.rows],
        }


@dataclass(frozen=True)
class RunResult:
    model: str
    backend: str
    inputs: dict
    outputs: tuple[OutputSummary, ...]
    saved: str | None
    top_k: TopK | None

    def to_dict(self) -> dict:
        return {
            "schema": "infertool.run/1", "model": self.model, "backend": self.backend, "inputs": self.inputs,
            "outputs": [o.to_dict() for o in self.outputs], "saved": self.saved,
            "top_k": self.top_k.to_dict() if self.top_k else None,
        }


@dataclass(frozen=True)
class DoctorReport:
    fingerprint: dict
    components: tuple[dict, ...]
    backends: tuple[dict, ...]
    warnings: tuple[str, ...]

    def to_dict(self) -> dict:
        return {
            "schema": "infertool.doctor/1", **self.fingerprint, "components": list(self.components),
            "backends": list(self.backends), "warnings": list(self.warnings),
        }
