"""`quantize`: an fp32 ONNX model to fp16 / bf16 / int8 / fp8, with an accuracy report and gates."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from infertool import environment, onnx_io
from infertool.agreement import Rule
from infertool.errors import CheckFailed, InferenceFailed, InfertoolError
from infertool.files import file_sha256, staged_output
from infertool.inputs.batches import sample_count, split_batches
from infertool.inputs.feeds import FeedSource, InputOptions
from infertool.inputs.labels import classes_for, read_labels_csv
from infertool.inputs.reading import sample_names
from infertool.pipelines import isolation
from infertool.pipelines.accuracy import EVALUATION_BATCH, Labelled, evaluate, probe
from infertool.pipelines.run import OpenCheck, opens
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
HOLDOUT_EVERY = 5  # without --eval-data, every 5th calibration sample is evaluated on and not calibrated on


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
    holdout: bool = True  # without --eval-data, evaluate calibrated precisions on held-out calibration samples

    def to_dict(self) -> dict:
        return {
            **self.settings.to_dict(), "calibration_samples": self.calib_samples,
            "eval_backend": self.eval_backend, "min_cosine": self.min_cosine, "min_top1": self.min_top1, "criterion": self.criterion,
            "gate": self.gate, "labels": str(self.labels) if self.labels else None, "holdout": self.holdout,
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


@dataclass(frozen=True)
class Data:
    """The samples a conversion calibrates on and is evaluated on."""

    calib: dict[str, np.ndarray] | None  # None: no calibration data given
    eval: dict[str, np.ndarray]
    described: str  # the evaluation samples, in words
    rows: np.ndarray | None = None  # which samples of the file eval holds (None: all of its file's)
    held_out: bool = False  # eval is calibration data kept out of calibration


def _take(feeds: dict[str, np.ndarray], wanted: int | None, what: str = "the calibration data") -> dict[str, np.ndarray]:
    """The first `wanted` samples (all: None)."""
    available = sample_count(feeds)
    if wanted is not None and available < wanted:
        raise InfertoolError(f"{what} has {available} samples, fewer than the {wanted} asked for", hint=f"give more data or lower --calib-samples to {available}")
    return feeds if wanted is None else {n: a[:wanted] if a.ndim else a for n, a in feeds.items()}


def _rows(feeds: dict[str, np.ndarray], chosen: np.ndarray) -> dict[str, np.ndarray]:
    return {n: a[chosen] if a.ndim else a for n, a in feeds.items()}


def samples(specs: list[TensorSpec], options: QuantizeOptions, notes: list[str]) -> Data:
    """Calibration and evaluation samples. Without --eval-data, a calibrated precision is evaluated
    on every HOLDOUT_EVERY-th sample of --calib-data, which it is not calibrated on (--no-holdout:
    on the calibration set itself, an optimistic verdict)."""
    given = options.calib is not None and options.calib.path is not None
    calib = None if options.calib is None else FeedSource(specs, options.calib).feeds(None if given else options.calib_samples or RANDOM_SAMPLES)
    calibrated = options.settings.precision in ("int8", "fp8")
    if options.eval is not None:
        generated = options.eval.path is None
        found = FeedSource(specs, options.eval).feeds(options.eval_samples if generated else None)
        data = Data(_take(calib, options.calib_samples) if given else calib, found, f"{options.eval_samples} generated samples" if generated else str(options.eval.path))
    elif calib is None:
        data = Data(None, FeedSource(specs, options.generated).feeds(options.eval_samples), f"{options.eval_samples} generated samples (seed {options.generated.seed})")
    elif calibrated and given and options.holdout and sample_count(calib) >= HOLDOUT_EVERY:
        held = np.arange(sample_count(calib)) % HOLDOUT_EVERY == HOLDOUT_EVERY - 1
        kept = _take(_rows(calib, ~held), options.calib_samples, f"the calibration data less its {int(held.sum())} held-out samples")
        described = f"{options.calib.path} (every {HOLDOUT_EVERY}th sample, held out of calibration)"
        data = Data(kept, _rows(calib, held), described, np.flatnonzero(held), held_out=True)
    else:
        calib = _take(calib, options.calib_samples) if given else calib
        data = Data(calib, calib, "the calibration set")
        if calibrated and given:
            why = "--no-holdout" if not options.holdout else f"fewer than {HOLDOUT_EVERY} samples to hold some out"
            notes.append(f"evaluated on the samples it was calibrated on ({why}): an optimistic verdict; give --eval-data for an honest one")
    _calibration_notes(data.calib, given, calibrated, notes)
    return data


def _calibration_notes(calib: dict | None, given: bool, calibrated: bool, notes: list[str]) -> None:
    if calib is not None and not given:
        notes.append("calibrated on generated random data: fine for speed tests, meaningless for accuracy")
    elif calib is not None and calibrated and sample_count(calib) < FEW_SAMPLES:
        notes.append(f"only {sample_count(calib)} calibration samples; a few hundred representative ones calibrate better")


def _ground_truth(options: QuantizeOptions, data: Data) -> Labelled | None:
    """The class of each evaluation sample, from --labels-csv."""
    if options.labels is None:
        return None
    path = options.eval.path if options.eval is not None else options.calib.path if options.calib is not None else None
    if path is None:
        raise InfertoolError("--labels-csv needs real evaluation samples", hint="give --eval-data PATH or --calib-data PATH (the labelled samples)")
    truth = read_labels_csv(options.labels)
    count = sample_count(data.eval)
    names = sample_names(path, count) if data.rows is None else [sample_names(path, int(data.rows[-1]) + 1)[i] for i in data.rows]
    return Labelled(classes_for(truth, names, str(path)), truth)


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


def _opens(converted: Path, original: tuple[Path, list[TensorSpec]], feeds: dict, options: QuantizeOptions, notes: list[str], reporter: Reporter) -> str:
    """The written model opened for real and run once on the evaluation backend, in a fresh process,
    before anything else runs it: a graph the runtime dies on, or fails to run where the original
    runs on the same inputs, is refused (kept, with a note, under --no-gate). Returns why it cannot
    be evaluated ('' where it opened)."""
    try:
        opens(OpenCheck(converted, options.eval_backend, feeds), f"opening the {options.settings.precision} model quantize wrote", reporter)
    except isolation.Crashed as failure:
        if options.gate:
            raise isolation.Crashed(f"{failure.message}; {options.output} was not written", hint=f"{failure.hint}; --no-gate keeps the file for another runtime", detail=failure.detail) from failure
        notes.append(f"{failure.message}; {options.output} was kept anyway (--no-gate)")
        return failure.message
    except InferenceFailed as failed:
        probe(*original, feeds, options.eval_backend, options.timeout, reporter)  # raises where the original fails too
        message = f"the {options.settings.precision} model fails where the original runs: {failed.message}"
        if options.gate:
            raise CheckFailed(f"{message}; nothing was written", hint=f"{failed.hint}; --no-gate keeps the file", detail=failed.detail) from failed
        notes.append(f"{message}; {options.output} was kept anyway (--no-gate)")
        return message
    except InfertoolError as refused:  # the runtime says no (a kernel it lacks): no crash, evaluation says the rest
        notes.append(f"{options.eval_backend} cannot run the {options.settings.precision} model as written: {refused.message}")
    return ""


def quantize(model_path: Path, options: QuantizeOptions, reporter: Reporter) -> QuantizeResult:
    started = time.perf_counter()
    model = onnx_io.load(model_path)
    info = onnx_io.describe(model_path, model)
    settings = options.settings
    transform.check_request(info.precision, settings, options.calib is not None)
    specs = list(info.inputs)
    notes: list[str] = _usage_note(settings)
    data = samples(specs, options, notes)
    calib = data.calib
    labelled = _ground_truth(options, data)
    probe(model_path, specs, calib or data.eval, options.eval_backend, options.timeout, reporter)
    first = split_batches(data.eval, specs, EVALUATION_BATCH)[0]  # as evaluation feeds it
    with staged_output(options.output, options.force) as staging:
        converted = staging / options.output.name
        batches = None if calib is None else split_batches(calib, specs, calibration_batch(sample_count(calib), settings))
        stage = transform.convert(model_path, model, converted, settings, batches, reporter, options.timeout)
        del model
        calibration = None if stage.calibration is None else {
            **stage.calibration, "samples": None if calib is None else sample_count(calib),
            "data": str(options.calib.path) if options.calib and options.calib.path else "random" if options.calib else None,
            "held_out": sample_count(data.eval) if data.held_out else 0,
        }
        died = _opens(converted, (model_path, specs), first, options, notes, reporter)
        accuracy = AccuracyReport(options.eval_backend, data.described, sample_count(data.eval), unavailable=died) if died else evaluate(
            model_path, converted, options.output, specs, data.eval, data.described, options.rule(), options.eval_backend, reporter,
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
