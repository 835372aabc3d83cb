"""Several versions of one model in one bench (fp32 / fp16 / int8): their labels, the row speedups
are measured against, and the inputs they must share."""

from __future__ import annotations

from pathlib import Path

from infertool.errors import InfertoolError
from infertool.onnx_io import ModelInfo


def labels(paths: list[Path], given: tuple[str, ...]) -> list[str]:
    """One short name per model: --label values, else the file names without `.onnx`
    (with the folder where two share a name)."""
    if len(set(map(str, paths))) != len(paths):
        raise InfertoolError("a model is given twice", hint="give each model once")
    if given and len(given) != len(paths):
        raise InfertoolError(f"{len(given)} --label for {len(paths)} models", hint="give one --label per model, in the models' order")
    found = list(given) or [p.stem for p in paths]
    if not given and len(set(found)) != len(found):
        found = [f"{p.parent.name}/{p.stem}" for p in paths]
    twice = sorted({label for label in found if found.count(label) > 1})
    if twice:
        raise InfertoolError(f"two models share the label '{twice[0]}'", hint="name each with --label")
    return found


def check_inputs(labels: list[str], models: list[ModelInfo]) -> None:
    """Several models are compared on the same inputs: they must take the same ones."""
    first = [s.name for s in models[0].inputs]
    for label, model in zip(labels[1:], models[1:]):
        names = [s.name for s in model.inputs]
        if sorted(names) != sorted(first):
            raise InfertoolError(
                f"{label} takes inputs {', '.join(names)}, {labels[0]} takes {', '.join(first)}",
                hint="bench several models together only when they are versions of one model (same inputs)",
            )
