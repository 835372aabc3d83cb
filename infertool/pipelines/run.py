"""`run`: one inference on given inputs, output summaries, top-k, and outputs saved to disk."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from infertool import onnx_io
from infertool.backends import registry
from infertool.backends.base import Backend, RunnerOptions
from infertool.errors import InfertoolError
from infertool.feeds import FeedSource, InputOptions, write_pb_dir
from infertool.files import check_input, check_output, read_bytes, staged_output
from infertool.reporting import Reporter
from infertool.results import OutputSummary, RunResult, TopK
from infertool.text import decode, shorten

LABELS_LIMIT = 16 * 2**20


@dataclass(frozen=True)
class RunRequest:
    model: Path  # ONNX, or an engine file for backends that run engines
    backend: str | None = None  # None: registry.default_for(model)
    inputs: InputOptions = field(default_factory=InputOptions)
    batch: int | None = None
    runner: RunnerOptions = field(default_factory=RunnerOptions)
    output: Path | None = None  # out.npz, or a folder of output_K.pb
    top_k: int | None = None
    labels: Path | None = None
    force: bool = False


def read_labels(path: Path, reporter: Reporter) -> list[str]:
    """One class name per line, in UTF-8 (or UTF-16/32 with a BOM; Latin-1 as a fallback)."""
    decoded = decode(read_bytes(path, "labels file", LABELS_LIMIT, hint="give a text file with one class name per line"))
    if decoded is None:
        raise InfertoolError(f"labels file {shorten(path)} is binary, not text", hint="give a UTF-8 text file with one class name per line")
    text, encoding = decoded
    if encoding == "latin-1":
        reporter.note(f"{path} is not UTF-8; read it as Latin-1")
    return [line.strip() for line in text.splitlines() if line.strip()]


def _classifier_scores(outputs: dict[str, np.ndarray]) -> tuple[str, np.ndarray]:
    """The first float output shaped [batch, classes] (trailing 1s ignored)."""
    for name, array in outputs.items():
        if array.ndim >= 2 and all(d == 1 for d in array.shape[2:]) and array.shape[1] > 1 and array.dtype.kind == "f":
            return name, array.reshape(array.shape[:2])
    raise InfertoolError("--top-k needs an output shaped [batch, classes]", hint="drop --top-k for this model")


def top_k(outputs: dict[str, np.ndarray], k: int, labels: list[str] | None) -> TopK:
    """Top-k classes of the classifier output, with softmax probabilities."""
    name, scores = _classifier_scores(outputs)
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
        with staged_output(path, force, directory=True, owned="output_*.pb") as staging:
            write_pb_dir(outputs, staging / path.name)
    else:
        raise InfertoolError(f"cannot save outputs as '{path.suffix}'", hint="use out.npz, or a folder name for output_K.pb files")


def _check(request: RunRequest) -> Backend:
    backend = registry.get(request.backend) if request.backend else registry.default_for(request.model)
    if request.model.suffix == ".engine" and not backend.capabilities.runs_engines:
        raise InfertoolError(f"{request.model} is a TensorRT engine; backend {backend.name} runs ONNX models", hint="drop --backend, or name a backend that runs engines")
    if request.labels is not None and request.top_k is None:
        raise InfertoolError("--labels needs --top-k", hint="e.g. --top-k 5 --labels labels.txt")
    if request.output is not None:
        check_output(request.output, request.force, directory=request.output.suffix == "")
    return backend


def _infer(backend: Backend, request: RunRequest, reporter: Reporter) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    registry.require(backend.name)
    model, feeds, artifact = None, None, request.model
    if request.model.suffix != ".engine":  # inputs first: an engine is built for their shapes
        model = onnx_io.describe(request.model)
        feeds = FeedSource(list(model.inputs), request.inputs).feeds(request.batch)
    with reporter.task(f"{backend.name}: loading {request.model.name}"):
        if model is not None:
            artifact = backend.prepare(model, request.runner, {n: tuple(a.shape) for n, a in feeds.items()}, reporter)
        runner = backend.open(artifact, request.runner)
        runner.prepare()
    try:
        for warning in runner.info().warnings:
            reporter.note(warning)
        if feeds is None:
            feeds = FeedSource(runner.inputs, request.inputs).feeds(request.batch)
        with reporter.task(f"{backend.name}: inference"):
            return feeds, runner.infer(feeds)
    finally:
        runner.close()


def run(request: RunRequest, reporter: Reporter) -> RunResult:
    """One inference: summaries of every output, optional top-k, outputs saved."""
    backend = _check(request)
    labels = read_labels(request.labels, reporter) if request.labels else None
    check_input(request.model, "model file")
    feeds, outputs = _infer(backend, request, reporter)
    ranked = top_k(outputs, request.top_k, labels) if request.top_k else None
    if request.output is not None:
        save_outputs(outputs, request.output, request.force)
    return RunResult(
        str(request.model), backend.name, {n: list(a.shape) for n, a in feeds.items()},
        tuple(OutputSummary.of(n, a) for n, a in outputs.items()), str(request.output) if request.output else None, ranked,
    )
