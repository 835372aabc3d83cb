"""`quantize`: an fp32 ONNX model to fp16 / bf16 / int8 / fp8, with an accuracy report and gates."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from infertool import onnx_io
from infertool.errors import CheckFailed, InfertoolError
from infertool.feeds import FeedSource, InputOptions, sample_count, split_batches
from infertool.files import file_sha256, staged_output
from infertool.pipelines.accuracy import evaluate, probe
from infertool.precision import transform
from infertool.precision.settings import PrecisionSettings
from infertool.reporting import Reporter
from infertool.results import AccuracyReport, ModelFile, QuantizeResult
from infertool.tensors import TensorSpec

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
    min_cosine: float | None = None
    min_top1: float | None = None
    timeout: float | None = None  # seconds one inference may take
    force: bool = False

    def to_dict(self) -> dict:
        return {
            **self.settings.to_dict(), "calibration_samples": self.calib_samples,
            "eval_backend": self.eval_backend, "min_cosine": self.min_cosine, "min_top1": self.min_top1,
        }


def _samples(source: FeedSource, options: InputOptions, wanted: int | None, what: str) -> dict[str, np.ndarray]:
    """Stacked samples from a file, or `wanted` generated ones."""
    if options.path is None:
        return source.feeds(wanted or RANDOM_SAMPLES)
    feeds = source.feeds(None)
    available = sample_count(feeds)
    if wanted is not None and available < wanted:
        raise InfertoolError(f"{what} has {available} samples, fewer than the {wanted} asked for", hint=f"give more data or lower --calib-samples to {available}")
    return {n: a[: wanted or available] if a.ndim else a for n, a in feeds.items()}


def _calibration(specs: list[TensorSpec], options: QuantizeOptions, notes: list[str]) -> dict[str, np.ndarray] | None:
    if options.calib is None:
        return None
    samples = _samples(FeedSource(specs, options.calib), options.calib, options.calib_samples, "the calibration data")
    count = sample_count(samples)
    if options.calib.path is None:
        notes.append("calibrated on generated random data: fine for speed tests, meaningless for accuracy")
    elif count < FEW_SAMPLES and options.settings.precision in ("int8", "fp8"):
        notes.append(f"only {count} calibration samples; a few hundred representative ones calibrate better")
    return samples


def _evaluation_data(specs: list[TensorSpec], options: QuantizeOptions, calib: dict | None) -> tuple[dict[str, np.ndarray], str]:
    if options.eval is not None:
        generated = options.eval.path is None
        samples = _samples(FeedSource(specs, options.eval), options.eval, options.eval_samples if generated else None, "the evaluation data")
        return samples, f"{options.eval_samples} generated samples" if generated else str(options.eval.path)
    if calib is not None:
        return calib, "the calibration set"
    return FeedSource(specs, options.generated).feeds(options.eval_samples), f"{options.eval_samples} generated samples (seed {options.generated.seed})"


def _gates(accuracy: AccuracyReport, options: QuantizeOptions) -> dict:
    gates = {}
    for name, minimum, value in (("min_cosine", options.min_cosine, accuracy.min_cosine), ("min_top1", options.min_top1, accuracy.top1)):
        if minimum is not None:
            gates[name] = {"min": minimum, "value": value, "passed": value is not None and value >= minimum}
    return gates


def quantize(model_path: Path, options: QuantizeOptions, reporter: Reporter) -> QuantizeResult:
    started = time.perf_counter()
    model = onnx_io.load(model_path)
    info = onnx_io.describe(model_path, model)
    settings = options.settings
    transform.check_request(info.precision, settings, options.calib is not None)
    specs = list(info.inputs)
    notes: list[str] = []
    calib = _calibration(specs, options, notes)
    samples, data = _evaluation_data(specs, options, calib)
    probe(model_path, specs, calib or samples, options.eval_backend, options.timeout, reporter)
    with staged_output(options.output, options.force) as staging:
        converted = staging / options.output.name
        batches = None if calib is None else split_batches(calib, specs, CALIBRATION_BATCH)
        stage = transform.convert(model_path, model, converted, settings, batches, reporter)
        del model
        calibration = None if stage.calibration is None else {
            **stage.calibration, "samples": None if calib is None else sample_count(calib),
            "data": str(options.calib.path) if options.calib and options.calib.path else "random" if options.calib else None,
        }
        accuracy = evaluate(
            model_path, converted, options.output, specs, samples, data, settings.precision, options.eval_backend, reporter, options.timeout,
        )
        result = QuantizeResult(
            source=ModelFile(str(model_path), info.sha256, model_path.stat().st_size),
            output=ModelFile(str(options.output), file_sha256(converted), converted.stat().st_size, onnx_io.external_data_path(converted).exists()),
            precision=settings.precision, settings=options.to_dict(), graph=stage.graph, calibration=calibration,
            accuracy=accuracy, gates=_gates(accuracy, options), seconds=time.perf_counter() - started, notes=(*notes, *stage.notes),
        )
        if not result.passed:
            failed = [f"{name} {g['value']} < {g['min']}" if g["value"] is not None else f"{name}: not evaluated" for name, g in result.gates.items() if not g["passed"]]
            raise CheckFailed(
                f"accuracy gate failed ({'; '.join(failed)}); {options.output} was not written",
                hint="exclude sensitive layers (--exclude-nodes / --exclude-op-types), calibrate on more data, or use a wider precision",
                result=result,
            )
    return result
