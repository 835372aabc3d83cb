"""An original and a converted model on the same inputs, through one backend: the accuracy
report of quantize and of build-engine's precision stage."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from infertool.agreement import compare, tolerance
from infertool.backends import registry
from infertool.backends.base import RunnerOptions
from infertool.dtypes import numpy_dtype
from infertool.errors import InfertoolError, first_line
from infertool.feeds import sample_count, split_batches
from infertool.reporting import Reporter
from infertool.results import AccuracyReport
from infertool.tensors import TensorSpec
from infertool.vocabulary import tolerance_class

EVALUATION_BATCH = 8


def _outputs(path: Path, backend: str, batches: list[dict[str, np.ndarray]], advance, timeout: float | None = None) -> dict[str, np.ndarray]:
    collected: dict[str, list[np.ndarray]] = {}
    backend_ = registry.get(backend)
    with backend_.open(path, RunnerOptions(timeout=timeout)) as runner:
        wanted = {s.name: numpy_dtype(s.dtype) for s in runner.inputs}  # fp16 IO without --keep-io-types
        for batch in batches:
            for name, value in runner.infer({n: a.astype(wanted[n], copy=False) for n, a in batch.items()}).items():
                collected.setdefault(name, []).append(value)
            advance(1)
    return {n: np.concatenate(v) for n, v in collected.items()}


def probe(original: Path, specs: list[TensorSpec], samples: dict[str, np.ndarray], backend: str, timeout: float | None, reporter: Reporter) -> None:
    """One inference of the original model, with a deadline, before anything else runs it: a
    model that never finishes (an endless Loop) stops here, naming the node, rather than hang
    inside onnxruntime's calibrator."""
    registry.require(backend)
    with reporter.task(f"running {original.name} once on {backend}"):
        _outputs(original, backend, split_batches(samples, specs, EVALUATION_BATCH)[:1], lambda steps: None, timeout)


def evaluate(
    original: Path, converted: Path, shown_as: Path, specs: list[TensorSpec], samples: dict[str, np.ndarray],
    data: str, precision: str, backend: str, reporter: Reporter, timeout: float | None = None,
) -> AccuracyReport:
    """Both models on `samples`; `shown_as` names the converted model in messages."""
    count = sample_count(samples)
    batches = split_batches(samples, specs, EVALUATION_BATCH)
    registry.require(backend)
    with reporter.task(f"evaluating on {backend} ({data})", total=2 * len(batches)) as advance:
        reference = _outputs(original, backend, batches, advance, timeout)
        try:
            candidate = _outputs(converted, backend, batches, advance, timeout)
        except InfertoolError as exc:
            reason = exc.message.replace(str(converted), str(shown_as))
            return AccuracyReport(backend, data, count, unavailable=f"{reason} (try --eval-backend ort-cuda on a GPU)")
        except Exception as exc:
            return AccuracyReport(backend, data, count, unavailable=first_line(exc))
    atol, rtol, cosine = tolerance(tolerance_class(precision))
    outputs = tuple(compare(n, reference[n], candidate[n].astype(reference[n].dtype), atol, rtol, cosine) for n in reference)
    return AccuracyReport(backend, data, count, outputs)
