"""`quantize`: an fp32 ONNX model to fp16 / bf16 / int8 / fp8, with an accuracy report and gates."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from infertool import environment, onnx_io
from infertool.agreement import Rule
from infertool.errors import CheckFailed, InfertoolError
from infertool.files import file_sha256, staged_output
from infertool.inputs.batches import sample_count, split_batches
from infertool.inputs.feeds import FeedSource, InputOptions
from infertool.inputs.labels import classes_for, read_labels_csv
from infertool.inputs.reading import sample_names
from infertool.pipelines.accuracy import Labelled, evaluate, probe
from infertool.precision import transform
from infertool.precision.settings import PrecisionSettings
from infertool.records.model_file import ModelFile
from infertool.records.quantize import AccuracyReport, QuantizeResult
from infertool.reporting import Reporter
from infertool.tensors import TensorSpec
from infertool.vocabulary import tolerance_class

CALIBRATION_BATCH = 8
RANDOM_SAMPLES = 32
FEW_SAMPLES = 16


@dataclass(frozen=True)
class QuantizeOptions:
    output: Path
    settings: PrecisionSettings
    calib: InputOptions | None = None  # None: no calibration data given
    calib_samples: int | None = None
    eval: InputOptions | None = None  # None: the calibration set, else generated inputs
    generated: InputOptions = field(default_factory=InputOptions)  # shapes, seed, int range for generated inputs
    eval_samples: int = 8
    eval_backend: str = "ort-cpu"
    min_cosine: float | None = None  # replaces the precision's cosine floor
    min_top1: float | None = None  # the share of samples whose arg-max must agree (judges class scores by arg-max)
    criterion: str = "auto"  # agreement.KINDS: how each output is judged
    gate: bool = True  # the precision's tolerance decides (exit 1, nothing written); False keeps the file regardless
    timeout: float | None = None  # seconds one inference may take
    force: bool = False
    labels: Path | None = None  # ground truth (sample -> class) of the evaluation samples

    def to_dict(self) -> dict:
        return {
            **self.settings.to_dict(), "calibration_samples": self.calib_samples,
            "eval_backend": self.eval_backend, "min_cosine": self.min_cosine, "min_top1": self.min_top1, "criterion": self.criterion,
            "gate": self.gate, "labels": str(self.labels) if self.labels else None,
        }

    def rule(self) -> Rule:
        """The rule the converted model's outputs are judged by: the precision's tolerance, with the
        user's thresholds in its place."""
        kind = "classes" if self.min_top1 is not None and self.criterion == "auto" else self.criterion
        return Rule.of(tolerance_class(self.settings.precision), min_cosine=self.min_cosine, kind=kind, min_share=self.min_top1)

    @property
    def gated(self) -> bool:
        """Whether the rule decides: by default, unless --no-gate; always with a threshold of the user's."""
        return self.gate or self.min_cosine is not None or self.min_top1 is not None


def _samples(source: FeedSource, options: InputOptions, wanted: int | None, what: str) -> dict[str, np.ndarray]:
    """Stacked samples from a file, or `wanted` generated ones."""
    if options.path is None:
        return source.feeds(wanted or RANDOM_SAMPLES)
    feeds = source.feeds(None)
    available = sample_count(feeds)
    if wanted is not None and available < wanted:
        raise InfertoolError(f"{what} has {available} samples, fewer than the {wanted} asked for", hint=f"give more data or lower --calib-samples to {available}")
    if wanted is None:
        return feeds
    return {n: a[:wanted] if a.ndim else a for n, a in feeds.items()}


def calibration_data(specs: list[TensorSpec], options: QuantizeOptions, notes: list[str]) -> dict[str, np.ndarray] | None:
    if options.calib is None:
        return None
    samples = _samples(FeedSource(specs, options.calib), options.calib, options.calib_samples, "the calibration data")
    count = sample_count(samples)
    if options.calib.path is None:
        notes.append("calibrated on generated random data: fine for speed tests, meaningless for accuracy")
    elif count < FEW_SAMPLES and options.settings.precision in ("int8", "fp8"):
        notes.append(f"only {count} calibration samples; a few hundred representative ones calibrate better")
    return samples


def evaluation_data(specs: list[TensorSpec], options: QuantizeOptions, calib: dict | None) -> tuple[dict[str, np.ndarray], str]:
    if options.eval is not None:
        generated = options.eval.path is None
        samples = _samples(FeedSource(specs, options.eval), options.eval, options.eval_samples if generated else None, "the evaluation data")
        return samples, f"{options.eval_samples} generated samples" if generated else str(options.eval.path)
    if calib is not None:
        return calib, "the calibration set"
    return FeedSource(specs, options.generated).feeds(options.eval_samples), f"{options.eval_samples} generated samples (seed {options.generated.seed})"


def _ground_truth(options: QuantizeOptions, samples: dict[str, np.ndarray]) -> Labelled | None:
    """The class of each evaluation sample, from --labels-csv."""
    if options.labels is None:
        return None
    path = options.eval.path if options.eval is not None else options.calib.path if options.calib is not None else None
    if path is None:
        raise InfertoolError("--labels-csv needs real evaluation samples", hint="give --eval-data PATH or --calib-data PATH (the labelled samples)")
    truth = read_labels_csv(options.labels)
    return Labelled(classes_for(truth, sample_names(path, sample_count(samples)), str(path)), truth)


def _usage_note(settings: PrecisionSettings) -> list[str]:
    """Which graph to use where: the right int8 graph depends on the runtime."""
    if settings.precision == "int8" and settings.target == "tensorrt":
        return ["a TensorRT-shaped Q/DQ graph (int8-qdq in bench): ONNX Runtime's CPU provider cannot fuse it into int8 kernels "
                "and often runs it slower than fp32; for the CPU quantize with --target ort"]
    if settings.precision == "int8" and settings.target == "ort":
        return ["onnxruntime's CPU layout (int8-ort in bench): for ONNX Runtime on the CPU; for TensorRT use --target tensorrt"]
    if settings.precision == "int8-dynamic":
        return ["int8-dynamic (int8-dyn in bench) suits MatMul-heavy models (transformers) on the CPU; on convolutional models it is "
                "often slower than fp32: use -p int8 --target ort there"]
    return []


def calibration_batch(count: int, settings: PrecisionSettings) -> int:
    """Samples per calibration batch. onnxruntime's histogram calibrators (entropy, percentile, and
    fp8's distribution) stack every batch's activations into one array, so their batches must all be
    the same size: the largest divisor of the sample count up to CALIBRATION_BATCH."""
    if settings.precision != "fp8" and settings.calib_method == "minmax":
        return CALIBRATION_BATCH
    return max(size for size in range(1, CALIBRATION_BATCH + 1) if count % size == 0)


def _gates(accuracy: AccuracyReport, options: QuantizeOptions, notes: list[str]) -> dict:
    """The agreement gate: every output of every evaluation sample under the rule (agreement.Rule),
    unless --no-gate; not evaluated counts as failed only where the user set a threshold."""
    judgement = accuracy.judgement
    if judgement is None:
        if options.gated:
            notes.append(f"accuracy not evaluated, so the gate did not run: {accuracy.unavailable}")
        explicit = options.min_cosine is not None or options.min_top1 is not None
        return {"agreement": {"rule": options.rule().to_dict(), "value": None, "passed": False}} if explicit else {}
    if not options.gated:
        if not judgement.passed:
            notes.append(f"{judgement.summary()} under the {options.settings.precision} rule; {options.output} was kept anyway (--no-gate)")
        return {}
    rules = list(dict.fromkeys(f"{a.name}: {a.rule}" for a in judgement.outputs))
    return {"agreement": {
        "rule": options.rule().to_dict(), "rules": rules, "samples": judgement.samples, "failing": len(judgement.failing),
        "value": judgement.min_cosine, "top1": judgement.top1, "summary": judgement.summary(), "passed": judgement.passed,
    }}


def _failure(result: QuantizeResult, output: Path) -> CheckFailed:
    gate = result.gates["agreement"]
    found = "not evaluated" if gate["value"] is None and "summary" not in gate else gate["summary"]
    rules = "; ".join(gate.get("rules", ())) or "the rule"
    return CheckFailed(
        f"accuracy gate failed: {found} ({rules}); {output} was not written",
        hint="debug precision finds the nodes to keep in float (--exclude-nodes @keep.txt); or calibrate on more data, or use a wider precision; "
        "--no-gate keeps the file anyway",
        result=result,
    )


def quantize(model_path: Path, options: QuantizeOptions, reporter: Reporter) -> QuantizeResult:
    started = time.perf_counter()
    model = onnx_io.load(model_path)
    info = onnx_io.describe(model_path, model)
    settings = options.settings
    transform.check_request(info.precision, settings, options.calib is not None)
    specs = list(info.inputs)
    notes: list[str] = _usage_note(settings)
    calib = calibration_data(specs, options, notes)
    samples, data = evaluation_data(specs, options, calib)
    labelled = _ground_truth(options, samples)
    probe(model_path, specs, calib or samples, options.eval_backend, options.timeout, reporter)
    with staged_output(options.output, options.force) as staging:
        converted = staging / options.output.name
        batches = None if calib is None else split_batches(calib, specs, calibration_batch(sample_count(calib), settings))
        stage = transform.convert(model_path, model, converted, settings, batches, reporter)
        del model
        calibration = None if stage.calibration is None else {
            **stage.calibration, "samples": None if calib is None else sample_count(calib),
            "data": str(options.calib.path) if options.calib and options.calib.path else "random" if options.calib else None,
        }
        accuracy = evaluate(
            model_path, converted, options.output, specs, samples, data, options.rule(), options.eval_backend, reporter,
            labelled=labelled, timeout=options.timeout,
        )
        gates = _gates(accuracy, options, notes)
        result = QuantizeResult(
            source=ModelFile(str(model_path), info.sha256, model_path.stat().st_size),
            output=ModelFile(str(options.output), file_sha256(converted), converted.stat().st_size, onnx_io.external_data_path(converted).exists()),
            precision=settings.precision, settings=options.to_dict(), graph=stage.graph, calibration=calibration,
            accuracy=accuracy, gates=gates, seconds=time.perf_counter() - started, notes=(*notes, *stage.notes),
            env=environment.fingerprint(),
        )
        if not result.passed:
            raise _failure(result, options.output)
    return result
