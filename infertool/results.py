"""Result records of every command, with `to_dict()`: each command's JSON schema lives here
(the engine sidecar, a file format rather than a result, in engine/sidecar.py)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from infertool import dtypes
from infertool.agreement import Agreement, Judgement
from infertool.divergence import Divergence
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
        }


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


@dataclass(frozen=True)
class BuildResult:
    engine: ModelFile
    sidecar: dict  # everything the .engine.json holds
    timing_cache_loaded: bool
    precision_report: dict | None  # the precision stage (graph, calibration, accuracy), when one ran
    seconds: float
    notes: tuple[str, ...] = ()
    env: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "schema": "infertool.build/1", "env": self.env, "engine": self.engine.to_dict(), "sidecar": self.sidecar,
            "timing_cache_loaded": self.timing_cache_loaded, "precision_stage": self.precision_report,
            "seconds": round(self.seconds, 3), "notes": list(self.notes),
        }


@dataclass(frozen=True)
class OutputSummary:
    """One output: its ONNX type (bfloat16, float8... by name, not numpy's stand-in) and the range of
    its values; a sequence counts its tensors (`elements`), an empty optional is not `present`."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    min: float | None
    max: float | None
    mean: float | None
    nan: int
    inf: int
    elements: int | None = None
    present: bool = True

    @classmethod
    def of(cls, name: str, value: Any) -> OutputSummary:
        if value is None:
            return cls(name, (), "none", None, None, None, 0, 0, present=False)
        if isinstance(value, list):
            arrays = [np.asarray(v) for v in value]
            shapes = {a.shape for a in arrays}
            kinds = {dtypes.from_numpy(a.dtype) for a in arrays}
            flat = np.concatenate([a.ravel() for a in arrays]) if arrays and len(kinds) == 1 else np.zeros(0)
            stats = cls.of(name, flat)
            shape = next(iter(shapes)) if len(shapes) == 1 else ()
            return replace(stats, shape=shape, dtype=f"sequence({kinds.pop() if len(kinds) == 1 else '?'})", elements=len(arrays))
        dtype = dtypes.from_numpy(value.dtype)
        numeric = dtypes.widened(value)
        if value.size == 0 or numeric.dtype.kind not in "biuf":
            return cls(name, value.shape, dtype, None, None, None, 0, 0)
        values = numeric.astype(np.float64)
        finite = values[np.isfinite(values)]
        return cls(
            name, value.shape, dtype,
            float(finite.min()) if finite.size else None, float(finite.max()) if finite.size else None,
            float(finite.mean()) if finite.size else None, int(np.isnan(values).sum()), int(np.isinf(values).sum()),
        )

    def to_dict(self) -> dict:
        return {**self.__dict__, "shape": list(self.shape)}


@dataclass(frozen=True)
class TopK:
    output: str
    rows: tuple[tuple[tuple[int, str, float, float | None], ...], ...]  # per sample: (class, label, score, probability)
    scores: str = "softmax"  # how probabilities came from the scores: probabilities (as given), softmax, sigmoid, raw (none)

    def to_dict(self) -> dict:
        return {
            "output": self.output, "scores": self.scores,
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
    saved_inputs: str | None = None
    startup: dict = field(default_factory=dict)  # load_ms, first_inference_ms (the one inference: a first one)
    notes: tuple[str, ...] = ()
    env: dict = field(default_factory=dict)
    fed: dict = field(default_factory=dict)  # input -> what it was fed, in words (a file, or the generated values)

    def to_dict(self) -> dict:
        return {
            "schema": "infertool.run/1", "env": self.env, "model": self.model, "backend": self.backend, "inputs": self.inputs, "fed": self.fed,
            "outputs": [o.to_dict() for o in self.outputs], "saved": self.saved,
            "top_k": self.top_k.to_dict() if self.top_k else None, "saved_inputs": self.saved_inputs, "startup_ms": self.startup,
            "notes": list(self.notes),
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


@dataclass(frozen=True)
class LayerRow:
    """One tensor of `debug layers`: where it comes from and how far the candidate's strays."""

    tensor: str
    node: str  # the reference node producing it ("" when unnamed)
    op: str
    candidate: str  # the candidate tensor compared (a DequantizeLinear output where quantized)
    quantized: bool
    divergence: Divergence
    growth: float | None  # its error over its node's inputs' (None: not known)
    flags: tuple[str, ...]
    diverged: bool  # past the precision's tolerance

    def to_dict(self) -> dict:
        return {
            "tensor": self.tensor, "node": self.node, "op": self.op, "candidate": self.candidate, "quantized": self.quantized,
            **self.divergence.to_dict(), "growth": self.growth, "flags": list(self.flags), "diverged": self.diverged,
        }


@dataclass(frozen=True)
class ReportResult:
    env: dict
    output: str
    images: tuple[str, ...]  # the plots drawn (files beside a Markdown report; embedded in HTML)
    summary: dict  # sources, machines, comparable groups
    gate: GateReport | None = None
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {
            "schema": "infertool.report/1", "env": self.env, "output": self.output, "images": list(self.images), **self.summary,
            "gate": self.gate.to_dict() if self.gate else None, "notes": list(self.notes),
        }


@dataclass(frozen=True)
class LayersResult:
    reference: dict  # path, sha256, backend, precision
    candidate: dict
    precision: str  # the tolerance class applied
    tolerance: dict  # atol, rtol, min_cosine
    samples: int
    data: str
    rows: tuple[LayerRow, ...]  # topological order
    outputs: tuple[LayerRow, ...]  # the final outputs of the unmodified candidate
    first_divergence: int | None  # index into rows
    unmatched: tuple[str, ...]  # reference tensors not compared
    read_as: str  # how the candidate's tensors were read
    notes: tuple[str, ...] = ()
    seconds: float = 0.0

    @property
    def first(self) -> LayerRow | None:
        return None if self.first_divergence is None else self.rows[self.first_divergence]

    def to_dict(self) -> dict:
        first = self.first
        return {
            "schema": "infertool.debug-layers/1", "reference": self.reference, "candidate": self.candidate, "precision": self.precision,
            "tolerance": self.tolerance, "samples": self.samples, "data": self.data, "read_as": self.read_as,
            "first_divergence": None if first is None else {"index": self.first_divergence, "tensor": first.tensor, "node": first.node, "op": first.op},
            "diverged": first is not None or any(o.diverged for o in self.outputs),
            "rows": [r.to_dict() for r in self.rows], "outputs": [o.to_dict() for o in self.outputs],
            "unmatched": list(self.unmatched), "notes": list(self.notes), "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class PrecisionStep:
    """One conversion of `debug precision`'s search, evaluated on every sample."""

    index: int
    phase: str  # convert all | grow | bisect | prune
    keep: tuple[str, ...]
    passed: bool
    min_cosine: float | None  # the worst output cosine of any sample
    top1: float | None
    failing: int  # samples that fail the gate
    samples: int
    graph: dict  # node counts of the converted graph
    seconds: float

    def describe(self) -> str:
        kept = ", ".join(self.keep[:4]) + (f" and {len(self.keep) - 4} more" if len(self.keep) > 4 else "")
        verdict = "passes" if self.passed else f"fails ({self.failing}/{self.samples} samples)" if self.failing else "fails"
        cosine = "-" if self.min_cosine is None else "NaN/Inf" if self.min_cosine != self.min_cosine else f"{self.min_cosine:.6f}"
        return f"step {self.index} ({self.phase}): keeping {len(self.keep)} node(s){': ' + kept if kept else ''} -> {verdict}, min cosine {cosine}"

    def to_dict(self) -> dict:
        return {
            "index": self.index, "phase": self.phase, "keep": list(self.keep), "passed": self.passed, "min_cosine": self.min_cosine,
            "top1": self.top1, "failing_samples": self.failing, "samples": self.samples, "graph": self.graph, "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class PrecisionResult:
    model: str
    sha256: str
    precision: str
    gate: dict  # the gate applied: the precision's tolerance, or min_cosine / min_top1
    data: str
    samples: int
    keep: tuple[str, ...]
    keep_file: str
    steps: tuple[PrecisionStep, ...]
    ranking: tuple[str, ...]  # the most suspect nodes, first first
    first_divergence: dict | None  # the first diverging tensor of the fully converted model
    cost: dict  # kept nodes, casts added / dequantize nodes removed, accuracy before and after
    notes: tuple[str, ...] = ()
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {
            "schema": "infertool.debug-precision/1", "model": {"path": self.model, "sha256": self.sha256}, "precision": self.precision,
            "gate": self.gate, "data": self.data, "samples": self.samples, "keep": list(self.keep), "keep_file": self.keep_file,
            "first_divergence": self.first_divergence, "ranking": list(self.ranking), "cost": self.cost,
            "steps": [s.to_dict() for s in self.steps], "notes": list(self.notes), "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class SweepResult:
    env: dict
    spec: dict  # path and sha256 of the spec file
    shard: str | None  # "i/N (where it came from)"
    executor: str
    devices: tuple  # the device slots cells ran on (local executor)
    cells: tuple[dict, ...]  # id, what it measures, status, result file, device, times, attempts
    listed: bool = False  # --list: nothing ran

    @property
    def counts(self) -> dict:
        counts: dict[str, int] = {}
        for cell in self.cells:
            counts[cell["status"]] = counts.get(cell["status"], 0) + 1
        return counts

    def to_dict(self) -> dict:
        return {
            "schema": "infertool.sweep/1", "env": self.env, "spec": self.spec, "shard": self.shard, "executor": self.executor,
            "devices": list(self.devices), "listed": self.listed, "counts": self.counts, "cells": list(self.cells),
        }
