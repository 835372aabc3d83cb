"""An original and a converted model on the same inputs, through one backend: the accuracy
report of quantize and of build-engine's precision stage."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from infertool import onnx_io
from infertool.agreement import Rule, judge
from infertool.backends import registry
from infertool.backends.base import RunnerOptions
from infertool.dtypes import numpy_dtype
from infertool.errors import InfertoolError, first_line
from infertool.inputs.batches import sample_count, split_batches
from infertool.inputs.labels import GroundTruth, task_accuracy
from infertool.precision.emulate import emulate
from infertool.records.quantize import AccuracyReport
from infertool.reporting import Reporter
from infertool.tensors import TensorSpec

EVALUATION_BATCH = 8


@dataclass(frozen=True)
class Labelled:
    classes: np.ndarray  # per evaluation sample; -1: unlabelled
    truth: GroundTruth


def batch_outputs(path: Path, backend: str, batches: list[dict[str, np.ndarray]], advance, timeout: float | None = None) -> list[dict[str, np.ndarray]]:
    """The model's outputs on `backend`, batch by batch (each inference stopped past `timeout` seconds)."""
    found = []
    with registry.get(backend).open(path, RunnerOptions(timeout=timeout)) as runner:
        wanted = {s.name: numpy_dtype(s.dtype) for s in runner.inputs}  # fp16 IO without --keep-io-types
        for batch in batches:
            found.append(runner.infer({n: a.astype(wanted[n], copy=False) for n, a in batch.items()}))
            advance(1)
    return found


def _outputs(path: Path, backend: str, batches: list[dict[str, np.ndarray]], advance, timeout: float | None = None) -> dict[str, np.ndarray]:
    found = batch_outputs(path, backend, batches, advance, timeout)
    return {n: np.concatenate([b[n] for b in found]) for n in found[0]}


def probe(original: Path, specs: list[TensorSpec], samples: dict[str, np.ndarray], backend: str, timeout: float | None, reporter: Reporter) -> None:
    """One inference of the original model, with a deadline, before anything else runs it: a
    model that never finishes (an endless Loop) stops here, naming the node, rather than hang
    inside onnxruntime's calibrator."""
    registry.require(backend)
    with reporter.task(f"running {original.name} once on {backend}"):
        _outputs(original, backend, split_batches(samples, specs, EVALUATION_BATCH)[:1], lambda steps: None, timeout)


def emulated(converted: Path, precision: str, backend: str, folder: Path) -> tuple[Path, str]:
    """The model to run in place of `converted` on `backend`, and how it stands in: a backend that
    computes fp16 / bf16 graphs in fp32 gets an fp32 graph rounding each tensor as the converted
    graph stores it (precision/emulate.py); '' where the converted model runs as it is."""
    if precision not in ("fp16", "bf16") or registry.get(backend).capabilities.reduced_floats:
        return converted, ""
    model = emulate(onnx_io.load(converted))
    if model is None:
        return converted, f"{backend} computes most {precision} ops in fp32 and this graph could not be emulated, so {precision} errors are understated"
    path = folder / f"{converted.stem}.emulated.onnx"
    onnx_io.save(model, path)
    return path, f"{backend} computes most {precision} ops in fp32: evaluated an fp32 graph that rounds every tensor the model stores in {precision}"


def evaluate(
    original: Path, converted: Path, shown_as: Path, specs: list[TensorSpec], samples: dict[str, np.ndarray],
    data: str, rule: Rule, backend: str, reporter: Reporter, labelled: Labelled | None = None, timeout: float | None = None,
) -> AccuracyReport:
    """Both models on `samples`, the converted one's outputs judged sample by sample under `rule`;
    `shown_as` names the converted model in messages; with `labelled`, each model's accuracy against
    the ground truth as well."""
    count = sample_count(samples)
    batches = split_batches(samples, specs, EVALUATION_BATCH)
    on_gpu = registry.require(backend).capabilities.on_gpu
    with tempfile.TemporaryDirectory(prefix="infertool-") as scratch, reporter.task(f"evaluating on {backend} ({data})", total=2 * len(batches)) as advance:
        evaluated, emulation = emulated(converted, rule.precision, backend, Path(scratch))
        reference = _outputs(original, backend, batches, advance, timeout)
        try:
            candidate = _outputs(evaluated, backend, batches, advance, timeout)
        except InfertoolError as exc:
            reason = exc.message.replace(str(evaluated), str(shown_as)) + ("" if on_gpu else " (try --eval-backend ort-cuda on a GPU)")
            return AccuracyReport(backend, data, count, unavailable=reason, original_accuracy=_truth(reference, labelled))
        except Exception as exc:
            return AccuracyReport(backend, data, count, unavailable=first_line(exc), original_accuracy=_truth(reference, labelled))
    judgement = judge(reference, {n: candidate[n].astype(reference[n].dtype) for n in reference}, rule, count)
    return AccuracyReport(
        backend, data, count, judgement, original_accuracy=_truth(reference, labelled), converted_accuracy=_truth(candidate, labelled), emulation=emulation,
    )


def _truth(outputs: dict[str, np.ndarray], labelled: Labelled | None):
    return None if labelled is None else task_accuracy(outputs, labelled.classes, labelled.truth)
