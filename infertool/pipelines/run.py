"""`run`: one inference on given inputs, output summaries, top-k, and outputs saved to disk."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from infertool import environment, onnx_io
from infertool.backends import registry
from infertool.backends.base import Backend, RunnerOptions
from infertool.dtypes import from_numpy, widened
from infertool.errors import InfertoolError
from infertool.files import check_input, check_output, read_bytes, staged_output
from infertool.inputs.batches import value_shape
from infertool.inputs.feeds import FeedSource, InputOptions
from infertool.inputs.labels import classifier_output
from infertool.inputs.tensor_files import write_npz, write_pb_dir
from infertool.pipelines import isolation
from infertool.records.run import OutputSummary, RunResult, TopK
from infertool.reporting import Reporter
from infertool.tensors import TensorSpec
from infertool.text import decode, shorten

SCORE_MODES = ("auto", "raw", "softmax", "sigmoid")
PROBABILITY_SUM_TOLERANCE = 0.01
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
    save_inputs: Path | None = None  # the exact tensors fed: in.npz, or a folder of input_K.pb (readable by --inputs)
    scores: str = "auto"  # how --top-k turns scores into probabilities: auto, raw, softmax, sigmoid
    isolate: bool = True  # load and infer in a fresh process, so a runtime that crashes is one line, not a dead infertool


@dataclass(frozen=True)
class OpenCheck:
    """A model file opened for real and run once (in a fresh process: `opens`)."""

    model: Path
    backend: str
    feeds: dict
    runner: RunnerOptions = field(default_factory=RunnerOptions)


def read_labels(path: Path, reporter: Reporter) -> list[str]:
    """One class name per line, in UTF-8 (or UTF-16/32 with a BOM; Latin-1 as a fallback)."""
    decoded = decode(read_bytes(path, "labels file", LABELS_LIMIT, hint="give a text file with one class name per line"))
    if decoded is None:
        raise InfertoolError(f"labels file {shorten(path)} is binary, not text", hint="give a UTF-8 text file with one class name per line")
    text, encoding = decoded
    if encoding == "latin-1":
        reporter.note(f"{path} is not UTF-8; read it as Latin-1")
    return [line.strip() for line in text.splitlines() if line.strip()]


def _classifier_scores(outputs: dict[str, Any]) -> tuple[str, np.ndarray]:
    found = classifier_output(outputs)
    if found is None:
        raise InfertoolError("--top-k needs an output shaped [batch, classes]", hint="drop --top-k for this model")
    return found


def are_probabilities(scores: np.ndarray) -> bool:
    """Rows that are non-negative and sum to 1 (within 1 %): a softmax the model applied itself."""
    return bool(np.all(scores >= 0) and np.allclose(scores.sum(axis=1), 1.0, rtol=0, atol=PROBABILITY_SUM_TOLERANCE))


def probabilities(scores: np.ndarray, mode: str) -> tuple[np.ndarray | None, str]:
    """Probabilities per `mode` (auto: the scores themselves where they are probabilities, else their
    softmax), and the way they were obtained."""
    if mode == "auto":
        mode = "probabilities" if are_probabilities(scores) else "softmax"
    if mode == "probabilities":
        return scores, mode
    if mode == "sigmoid":
        return 1 / (1 + np.exp(-scores)), mode
    if mode == "softmax":
        shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True), mode
    if mode != "raw":
        raise InfertoolError(f"unknown --scores '{mode}'", hint=f"choose from {', '.join(SCORE_MODES)}")
    return None, mode


def top_k(outputs: dict[str, Any], k: int, labels: list[str] | None, scores_mode: str = "auto") -> TopK:
    """Top-k classes of the classifier output, with probabilities as `scores_mode` says."""
    name, scores = _classifier_scores(outputs)
    classes = scores.shape[1]
    if labels is not None and len(labels) != classes:
        raise InfertoolError(f"the labels file has {len(labels)} labels, output '{name}' has {classes} classes", hint="give one label per line, in class order")
    scores = scores.astype(np.float64)
    probs, used = probabilities(scores, scores_mode)
    rows = []
    for index, row_scores in enumerate(scores):
        best = np.argsort(-row_scores, kind="stable")[: min(k, classes)]
        rows.append(tuple(
            (int(c), labels[c] if labels else str(c), float(row_scores[c]), None if probs is None else float(probs[index, c])) for c in best
        ))
    return TopK(name, tuple(rows), used)


def _unit_interval(array: np.ndarray) -> bool:
    values = widened(array)
    return bool(np.all((values >= 0) & (values <= 1)))


def check_saveable(path: Path, outputs: tuple[TensorSpec, ...]) -> None:
    """An .npz holds tensors: a model with sequence or optional outputs saves to a .pb folder."""
    if path.suffix == ".npz":
        other = [o for o in outputs if not o.is_tensor]
        if other:
            raise InfertoolError(
                f"output '{other[0].name}' is a {other[0].type_name}, which .npz cannot hold",
                hint=f"save to a folder instead (-o {path.with_suffix('')}) for output_K.pb files",
            )


def save_outputs(outputs: dict[str, Any], path: Path, force: bool, specs: tuple[TensorSpec, ...] = (), prefix: str = "output") -> list[str]:
    """`.npz` keyed by tensor name, or a folder of `<prefix>_K.pb` protos; returns notes on what changed."""
    notes: list[str] = []
    if path.suffix == ".npz":
        with staged_output(path, force) as staging:
            notes = write_npz(outputs, staging / path.name)
    elif path.suffix == "":
        with staged_output(path, force, directory=True, owned=f"{prefix}_*.pb") as staging:
            write_pb_dir(outputs, staging / path.name, prefix, specs=specs)
    else:
        raise InfertoolError(f"cannot save {prefix}s as '{path.suffix}'", hint=f"use a .npz file, or a folder name for {prefix}_K.pb files")
    return notes


def _check(request: RunRequest) -> Backend:
    backend = registry.get(request.backend) if request.backend else registry.default_for(request.model)
    registry.check_groups([backend], request.runner, f"and this run uses {backend.name}")
    if request.model.suffix == ".engine" and not backend.capabilities.runs_engines:
        raise InfertoolError(f"{request.model} is a TensorRT engine; backend {backend.name} runs ONNX models", hint="drop --backend, or name a backend that runs engines")
    if request.labels is not None and request.top_k is None:
        raise InfertoolError("--labels needs --top-k", hint="e.g. --top-k 5 --labels labels.txt")
    for path in (request.output, request.save_inputs):
        if path is not None:
            check_output(path, request.force, directory=path.suffix == "")
    if request.output is not None and request.output == request.save_inputs:
        raise InfertoolError(f"--output and --save-inputs are both {request.output}", hint="give two paths")
    return backend


def _infer(backend: Backend, request: RunRequest, reporter: Reporter, startup: dict) -> tuple[dict[str, Any], dict[str, Any], tuple[TensorSpec, ...]]:
    """Inputs, outputs and output specs of one inference; the load and inference times go into `startup` (ms)."""
    registry.require(backend.name)
    model, feeds, artifact = None, None, request.model
    if request.model.suffix != ".engine":  # inputs first: an engine is built for their shapes
        model = onnx_io.describe(request.model)
        if request.output is not None:
            check_saveable(request.output, model.outputs)
        source = FeedSource(list(model.inputs), request.inputs)
        feeds = source.feeds(request.batch)
        for note in source.notes:
            reporter.note(note)
    with reporter.task(f"{backend.name}: loading {request.model.name}"):
        if model is not None:
            shapes = {n: tuple(a.shape) for n, a in feeds.items() if isinstance(a, np.ndarray)}
            artifact = backend.prepare(model, request.runner, shapes, reporter)
        runner = backend.open(artifact, request.runner)
        started = time.perf_counter()
        runner.prepare()
        startup["load_ms"] = round((time.perf_counter() - started) * 1e3, 3)
    try:
        for warning in runner.info().warnings:
            reporter.note(warning)
        if feeds is None:
            feeds = FeedSource(runner.inputs, request.inputs).feeds(request.batch)
        with reporter.task(f"{backend.name}: inference"):
            started = time.perf_counter()
            outputs = runner.infer(feeds)
            startup["first_inference_ms"] = round((time.perf_counter() - started) * 1e3, 3)
            return feeds, outputs, model.outputs if model is not None else tuple(runner.outputs)
    finally:
        runner.close()


def infer_once(request: RunRequest, reporter: Reporter) -> tuple[dict, dict, tuple[TensorSpec, ...], dict]:
    """Inputs, outputs, output specs and load / first-inference times of the request's one inference."""
    backend = registry.get(request.backend) if request.backend else registry.default_for(request.model)
    startup: dict = {}
    return (*_infer(backend, request, reporter, startup), startup)


def _open_and_infer(check: OpenCheck, reporter: Reporter) -> None:
    backend = registry.get(check.backend)
    model = onnx_io.describe(check.model)
    with reporter.task(f"{backend.name}: loading {check.model.name}"):
        shapes = {n: tuple(a.shape) for n, a in check.feeds.items() if isinstance(a, np.ndarray)}
        runner = backend.open(backend.prepare(model, check.runner, shapes, reporter), check.runner)
        runner.prepare()
    try:
        with reporter.task(f"{backend.name}: inference"):
            runner.infer(check.feeds)
    finally:
        runner.close()


def opens(check: OpenCheck, what: str, reporter: Reporter) -> None:
    """The model loaded and run once on its backend in a fresh process: a runtime that dies on it
    is a BackendFailure naming the stage, never a dead infertool."""
    backend = registry.get(check.backend)
    isolation.guarded(isolation.Job(_open_and_infer, check, backend.name), backend.crash_advice, what, reporter)


def run(request: RunRequest, reporter: Reporter) -> RunResult:
    """One inference: summaries of every output, optional top-k, outputs saved."""
    backend = _check(request)
    labels = read_labels(request.labels, reporter) if request.labels else None
    check_input(request.model, "model file")
    if request.isolate:
        job = isolation.Job(infer_once, replace(request, backend=backend.name), backend.name)
        feeds, outputs, specs, startup = isolation.guarded(job, backend.crash_advice, f"running {shorten(request.model.name)}", reporter)
    else:
        feeds, outputs, specs, startup = infer_once(replace(request, backend=backend.name), reporter)
    ranked = top_k(outputs, request.top_k, labels, request.scores) if request.top_k else None
    notes: list[str] = []
    if ranked is not None and request.scores == "auto" and ranked.scores == "softmax" and _unit_interval(outputs[ranked.output]):
        notes.append(f"every score of '{ranked.output}' lies in [0, 1] but its rows do not sum to 1 (sigmoid outputs?): "
                     "the probabilities shown are their softmax; --scores raw shows them as they are")
    if request.output is not None:
        notes += save_outputs(outputs, request.output, request.force, specs)
    if request.save_inputs is not None:
        notes += save_outputs(feeds, request.save_inputs, request.force, prefix="input")
    for note in notes:
        reporter.note(note)
    fed = request.inputs.describe({n: from_numpy(a.dtype) for n, a in feeds.items() if isinstance(a, np.ndarray)})
    return RunResult(
        str(request.model), backend.name, {n: value_shape(a) for n, a in feeds.items()},
        tuple(OutputSummary.of(n, a) for n, a in outputs.items()), str(request.output) if request.output else None, ranked,
        str(request.save_inputs) if request.save_inputs else None, startup, tuple(notes), env=environment.fingerprint(), fed=fed,
    )
