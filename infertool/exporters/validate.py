"""Validation of an exported model: checker, shape inference, then parity with the source model at
the example shapes and at a second size of every dynamic axis."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from infertool import onnx_io
from infertool.agreement import Agreement, Rule, compare, paired_rows
from infertool.dtypes import from_numpy, is_float
from infertool.errors import CheckFailed, first_line
from infertool.exporters.base import Reference, fixed_axis
from infertool.inputs.generated import IntRanges, generated_feeds
from infertool.optional import require
from infertool.records.convert import BatchAgreement, ValidationReport
from infertool.reporting import Reporter
from infertool.tensors import TensorSpec, resolve_shapes

# ops an exporter emits that no ONNX opset defines, and the way out
UNKNOWN_OP_HINTS = {
    "Erfc": "tf2onnx turns an exact gelu (Keras gelu / tf.nn.gelu with approximate=False) into Erfc: "
    "use gelu with approximate=True, or write it as 0.5 * x * (1 + erf(x / sqrt(2)))",
}
UNKNOWN_OP = re.compile(r"No Op registered for (?P<op>\w+) with domain_version of (?P<version>\d+)")


def check_model(path: Path, full: bool = True) -> None:
    """onnx.checker; raise CheckFailed naming the problem (for an op no opset defines: the op and the way out)."""
    import onnx

    try:
        onnx.checker.check_model(str(path), full_check=full)
    except Exception as exc:
        found = UNKNOWN_OP.search(str(exc))
        if found is None:
            raise CheckFailed("the exported model fails onnx.checker; nothing was written", hint=f"{RETRY}; --verbose shows the checker's message",
                              detail=first_line(exc)) from exc
        raise CheckFailed(
            f"the exported model uses op {found['op']}, which ONNX (opset {found['version']}) does not define; nothing was written",
            hint=UNKNOWN_OP_HINTS.get(found["op"], f"change the layer the exporter turns into {found['op']}, or try another --opset"),
        ) from exc


RETRY = "try the other --exporter or another --opset"


def check_structure(path: Path) -> None:
    """onnx.checker (full) and strict shape inference; raise CheckFailed naming the problem. Scratch
    files go beside `path` (convert's staging folder, swept should the process be killed)."""
    import onnx

    check_model(path)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".shapes-") as scratch:
        try:
            onnx.shape_inference.infer_shapes_path(str(path), str(Path(scratch) / "inferred.onnx"), check_type=True, strict_mode=True)
        except Exception as exc:
            raise CheckFailed("shape inference fails on the exported model", hint=f"{RETRY}; --verbose shows onnx's message", detail=first_line(exc)) from exc


@dataclass(frozen=True)
class Axis:
    """A dynamic dimension: its label, where it first appears, and its size in the example."""

    label: str
    input: str
    index: int
    size: int


def dynamic_axes(specs: list[TensorSpec], shapes: Mapping[str, tuple[int, ...]]) -> list[Axis]:
    """Every dynamic dimension of the inputs, once per label (axes that share a label vary together)."""
    found: dict[str, Axis] = {}
    for spec in specs:
        for index, dim in enumerate(spec.shape):
            if not isinstance(dim, int):
                label = dim or f"{spec.name}:{index}"
                found.setdefault(label, Axis(label, spec.name, index, shapes[spec.name][index]))
    return list(found.values())


def with_size(specs: list[TensorSpec], shapes: Mapping[str, tuple[int, ...]], axis: Axis, size: int) -> dict[str, tuple[int, ...]]:
    """`shapes` with every dimension labelled like `axis` set to `size`."""
    def label(spec: TensorSpec, index: int, dim: Any) -> str | None:
        return None if isinstance(dim, int) else dim or f"{spec.name}:{index}"

    return {
        spec.name: tuple(size if label(spec, i, d) == axis.label else shapes[spec.name][i] for i, d in enumerate(spec.shape))
        for spec in specs
    }


def other_sizes(axis: Axis) -> tuple[int, ...]:
    """Sizes to try besides the example's: two more (the batch's only), then twice as many."""
    return (axis.size + 2,) if axis.label == "batch" else (axis.size + 2, 2 * axis.size)


class _Parity:
    """The source model and ONNX Runtime on the same generated inputs."""

    def __init__(self, path: Path, reference: Reference, reference_name: str, specs: list[TensorSpec], tolerance: tuple[float, float], seed: int,
                 int_range: IntRanges, unordered: frozenset[str] = frozenset()) -> None:
        ort = require("onnxruntime", "validating the export")
        self.reference, self.reference_name, self.specs = reference, reference_name, specs
        self.unordered, self.reordered = unordered, []  # outputs whose rows may come in another order; what was found so
        (self.atol, self.rtol), self.seed, self.int_range = tolerance, seed, int_range
        self.rule = Rule("fp32", self.atol, self.rtol, None, kind="values")  # an export computes what its source does
        try:
            self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise CheckFailed("ONNX Runtime cannot load the exported model", hint=f"{RETRY}; --verbose shows ONNX Runtime's message", detail=first_line(exc)) from exc
        self.names = [o.name for o in self.session.get_outputs()]

    def feeds(self, shapes: Mapping[str, tuple[int, ...]], seed: int) -> dict:
        return generated_feeds(shapes, {s.name: s.dtype for s in self.specs}, seed, self.int_range)

    def onnx(self, feeds: dict, where: str) -> list:
        try:
            return self.session.run(self.names, feeds)
        except Exception as exc:
            raise CheckFailed(f"ONNX Runtime fails to run the exported model {where}; nothing was written", hint=f"{RETRY}; --verbose shows why",
                              detail=first_line(exc)) from exc

    def check(self, shapes: Mapping[str, tuple[int, ...]], expected: list, varied: tuple[str, int, int] | None) -> tuple[BatchAgreement, list]:
        where = "at the example shapes" if varied is None else f"at {varied[0]} {varied[2]} (the example has {varied[1]})"
        got = self.onnx(self.feeds(shapes, self.seed), where)
        if len(expected) != len(got):
            raise CheckFailed(f"the source model returns {len(expected)} outputs, the ONNX model {len(got)}", hint=RETRY)
        batch = next((s[0] for s in shapes.values() if s), 1)
        outputs = [compare(n, r, g, self.rule, batch) for n, r, g in zip(self.names, expected, got)]
        self._pair_rows(expected, got, outputs, batch, "" if varied is None else f" {where}")
        return BatchAgreement(batch, tuple(outputs), {n: list(s) for n, s in shapes.items()}, varied), got

    def _pair_rows(self, expected: list, got: list, outputs: list[Agreement], batch: int, where: str) -> None:
        """Outputs sized by the data (top-k / NMS rows, where rows tied within rounding come out in
        either order) that fail element by element: judged again with the ONNX rows paired with the
        source's, all outputs of the same number of rows together; where that passes, it stands, named
        in a warning."""
        groups: dict[int, list[int]] = {}
        for k, name in enumerate(self.names):
            if name in self.unordered and isinstance(got[k], np.ndarray) and got[k].ndim:
                groups.setdefault(got[k].shape[0], []).append(k)
        for group in groups.values():
            if all(outputs[k].passed for k in group):
                continue
            order = paired_rows([np.asarray(expected[k]) for k in group], [got[k] for k in group], self.rule)
            again = [] if order is None else [compare(self.names[k], expected[k], got[k][order], self.rule, batch) for k in group]
            if again and all(a.passed for a in again):
                for k, agreement in zip(group, again):
                    outputs[k] = agreement
                names = ", ".join(f"'{self.names[k]}'" for k in group)
                self.reordered.append(
                    f"outputs {names}{where}: {int(np.sum(order != np.arange(order.size)))} of {order.size} rows came out in another "
                    f"order than {self.reference_name}'s (rows tied within rounding, as top-k and NMS may order them); they agree with the rows paired"
                )


def _at_other_size(parity: _Parity, shapes: dict, axis: Axis) -> tuple[dict, list]:
    """Shapes with `axis` at a size the source model accepts, and its outputs there; an axis the
    model's code fixes (it accepts no other size) fails the check."""
    failure = None
    for size in other_sizes(axis):
        trial = with_size(parity.specs, shapes, axis, size)
        try:
            return trial, parity.reference(parity.feeds(trial, parity.seed))
        except Exception as exc:  # the source model's own error: what its code did with the size
            failure = failure or (size, first_line(exc))
    raise fixed_axis(axis.input, axis.index, axis.label, axis.size, f"the {parity.reference_name} model fails at {failure[0]}: {failure[1]}")


def vacuous_outputs(parity: _Parity, shapes: dict, first: list) -> list[str]:
    """Float outputs that come out the same (within the tolerance) for different inputs: their parity proves nothing."""
    if not parity.specs:
        return []
    again = parity.onnx(parity.feeds(shapes, parity.seed + 1), "on other inputs")
    return [
        name for name, a, b in zip(parity.names, first, again)
        if isinstance(a, np.ndarray) and is_float(from_numpy(a.dtype)) and a.size and compare(name, a, b, parity.rule).passed
    ]


def validate_export(
    path: Path,
    reference: Reference,
    reference_name: str,
    shapes: Mapping[str, tuple[int, ...]],
    atol: float,
    rtol: float,
    seed: int,
    int_range: IntRanges,
    reporter: Reporter,
) -> ValidationReport:
    check_structure(path)
    proto = onnx_io.load(path, load_external_data=False)
    specs = onnx_io.input_specs(proto)
    unordered = frozenset(name for name, axis in onnx_io.data_dependent_axes(specs, onnx_io.output_specs(proto)) if axis == 0)
    del proto
    parity = _Parity(path, reference, reference_name, specs, (atol, rtol), seed, int_range, unordered)
    given = {n: s for n, s in shapes.items() if n in {sp.name for sp in specs}}
    example = resolve_shapes(specs, given, next((s[0] for s in given.values() if s), 1))
    with reporter.task(f"checking parity with {reference_name} at the example shapes"):
        first, got = parity.check(example, reference(parity.feeds(example, seed)), None)
    checks = [first]
    for axis in dynamic_axes(specs, example):
        with reporter.task(f"checking parity with {reference_name} at another {axis.label}"):
            trial, expected = _at_other_size(parity, example, axis)
            checks.append(parity.check(trial, expected, (axis.label, axis.size, trial[axis.input][axis.index]))[0])
    warnings = (*parity.reordered, *(
        f"output '{name}' comes out the same for different inputs (within atol {atol:g} / rtol {rtol:g}), so its parity check "
        "proved nothing: are the weights untrained, or does the output ignore the inputs?"
        for name in vacuous_outputs(parity, example, got)
    ))
    return ValidationReport(reference_name, atol, rtol, tuple(checks), warnings)
