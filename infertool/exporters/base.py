"""What every exporter takes and returns."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from infertool.errors import CheckFailed, InfertoolError
from infertool.inputs.generated import IntRanges


@dataclass(frozen=True)
class DynamicAxis:
    input: str
    axis: int
    label: str


@dataclass(frozen=True)
class ExportOptions:
    input_shapes: Mapping[str | None, tuple[int, ...]] = field(default_factory=dict)
    input_dtypes: Mapping[str | None, str] = field(default_factory=dict)
    dynamic_batch: bool = True
    dynamic_axes: tuple[DynamicAxis, ...] = ()
    opset: int | None = None
    exporter: str = "auto"
    trust_model: bool = False
    custom_objects: tuple[str, ...] = ()
    weights: Path | None = None
    seed: int = 0
    int_range: IntRanges = IntRanges()


# Runs the source model on named numpy inputs; returns its outputs in ONNX output order.
Reference = Callable[[Mapping[str, np.ndarray]], list[np.ndarray]]


@dataclass
class ExportedModel:
    framework: str
    exporter: str
    reference: Reference
    example_shapes: dict[str, tuple[int, ...]]  # by ONNX input name; validation starts from these
    notes: list[str] = field(default_factory=list)


def axis_labels(names: list[str], ranks: Mapping[str, int], options: ExportOptions) -> dict[str, dict[int, str]]:
    """Symbolic dimension names per input: `batch` on axis 0 (unless static), then --dynamic-axis."""
    labels: dict[str, dict[int, str]] = {name: {} for name in names}
    if options.dynamic_batch:
        for name in names:
            if ranks[name] > 0:
                labels[name][0] = "batch"
    for dyn in options.dynamic_axes:
        if dyn.input not in labels:
            raise InfertoolError(
                f"--dynamic-axis names unknown input '{dyn.input}'", hint=f"the model's inputs are: {', '.join(names)}"
            )
        if dyn.axis >= ranks[dyn.input]:
            raise InfertoolError(
                f"--dynamic-axis {dyn.input}:{dyn.axis}:{dyn.label}: input '{dyn.input}' has rank {ranks[dyn.input]}",
                hint=f"its axes are 0 to {ranks[dyn.input] - 1}",
            )
        labels[dyn.input][dyn.axis] = dyn.label
    return labels


def fixed_axis(input: str, axis: int, label: str, size: int, evidence: str) -> CheckFailed:
    """The failure of a dynamic axis whose size the model's code fixes."""
    way_out = "convert with --static-batch" if label == "batch" else f"drop --dynamic-axis {input}:{axis}:{label}"
    return CheckFailed(
        f"axis '{label}' (input '{input}' axis {axis}) is not dynamic: the model's code fixes it at {size} ({evidence}); nothing was written",
        hint=f"{way_out}, or make the code follow the input's size (e.g. x.reshape(x.shape[0], -1) rather than a fixed number)",
    )
