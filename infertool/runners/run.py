"""`run`: one inference on given inputs, output summaries, top-k, and outputs saved to disk."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from infertool import onnx_model, runners
from infertool.errors import InfertoolError, first_line
from infertool.files import staged_output
from infertool.inputs import FeedSource, InputOptions, write_pb_dir
from infertool.reporting import Reporter
from infertool.runners import RunnerOptions


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


def read_labels(path: Path) -> list[str]:
    try:
        return [line.strip() for line in path.read_text().splitlines() if line.strip()]
    except OSError as exc:
        raise InfertoolError(f"cannot read labels {path}: {first_line(exc)}") from exc


def top_k(outputs: dict[str, np.ndarray], k: int, labels: list[str] | None) -> TopK:
    """Top-k classes of the first output shaped [batch, classes] (trailing 1s ignored)."""
    for name, array in outputs.items():
        scores = array.reshape(array.shape[:2]) if array.ndim >= 2 and all(d == 1 for d in array.shape[2:]) else None
        if scores is not None and scores.shape[1] > 1 and array.dtype.kind == "f":
            break
    else:
        raise InfertoolError("--top-k needs an output shaped [batch, classes]", hint="drop --top-k for this model")
    classes = scores.shape[1]
    if labels is not None and len(labels) != classes:
        raise InfertoolError(f"the labels file has {len(labels)} labels, output '{name}' has {classes} classes", hint="give one label per line, in class order")
    scores = scores.astype(np.float64)
    shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
    probabilities = shifted / shifted.sum(axis=1, keepdims=True)
    rows = []
    for row_scores, row_probs in zip(scores, probabilities):
        best = np.argsort(-row_scores)[: min(k, classes)]
        rows.append(tuple((int(c), labels[c] if labels else str(c), float(row_scores[c]), float(row_probs[c])) for c in best))
    return TopK(name, tuple(rows))


def save_outputs(outputs: dict[str, np.ndarray], path: Path, force: bool) -> None:
    """`.npz` keyed by output name, or a folder of `output_K.pb` TensorProtos."""
    if path.suffix == ".npz":
        with staged_output(path, force) as staging:
            np.savez(staging / path.name, **outputs)
    elif path.suffix == "":
        with staged_output(path, force, directory=True) as staging:
            write_pb_dir(outputs, staging / path.name)
    else:
        raise InfertoolError(f"cannot save outputs as '{path.suffix}'", hint="use out.npz, or a folder name for output_K.pb files")


def run_model(
    model: Path, backend: str, runner_options: RunnerOptions, inputs: InputOptions, batch: int | None,
    reporter: Reporter,
) -> tuple[dict[str, np.ndarray], dict[str, list[int]]]:
    runners.require_available(backend)
    feeds = None
    if model.suffix == ".onnx":  # inputs first: a TensorRT engine is built for their shapes
        feeds = FeedSource(onnx_model.input_specs(onnx_model.load(model, load_external_data=False)), inputs).feeds(batch)
    with reporter.task(f"{backend}: loading {model.name}"):
        shapes = None if feeds is None else {n: tuple(a.shape) for n, a in feeds.items()}
        runner = runners.open_runner(backend, model, runner_options, shapes, reporter)
        runner.prepare()
    try:
        for warning in runner.describe().get("warnings", []):
            reporter.note(warning)
        if feeds is None:
            feeds = FeedSource(runner.inputs, inputs).feeds(batch)
        with reporter.task(f"{backend}: inference"):
            outputs = runner.infer(feeds)
    finally:
        runner.close()
    return outputs, {n: list(a.shape) for n, a in feeds.items()}
