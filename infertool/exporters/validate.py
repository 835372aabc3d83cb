"""Validation of an exported model: checker, shape inference, then parity with the source model."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path

from infertool import onnx_io
from infertool.agreement import compare
from infertool.errors import CheckFailed, first_line
from infertool.exporters.base import Reference
from infertool.feeds import generated_feeds
from infertool.optional import require
from infertool.reporting import Reporter
from infertool.results import BatchAgreement, ValidationReport
from infertool.tensors import resolve_shapes

RETRY = "try the other --exporter or another --opset"


def check_structure(path: Path) -> None:
    """onnx.checker (full) and strict shape inference; raise CheckFailed naming the problem."""
    import onnx

    try:
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as exc:
        raise CheckFailed("the exported model fails onnx.checker", hint=f"{RETRY}; --verbose shows the checker's message", detail=first_line(exc)) from exc
    with tempfile.TemporaryDirectory() as scratch:
        try:
            onnx.shape_inference.infer_shapes_path(str(path), str(Path(scratch) / "inferred.onnx"), check_type=True, strict_mode=True)
        except Exception as exc:
            raise CheckFailed("shape inference fails on the exported model", hint=f"{RETRY}; --verbose shows onnx's message", detail=first_line(exc)) from exc


def validation_batches(example_batch: int, dynamic: bool) -> list[int]:
    """The export's batch, plus a different one when the batch is dynamic."""
    return [example_batch, example_batch + 2] if dynamic else [example_batch]


def validate_export(
    path: Path,
    reference: Reference,
    reference_name: str,
    shapes: Mapping[str, tuple[int, ...]],
    atol: float,
    rtol: float,
    seed: int,
    int_range: tuple[int, int],
    reporter: Reporter,
) -> ValidationReport:
    check_structure(path)
    ort = require("onnxruntime", "validating the export")
    model = onnx_io.load(path, load_external_data=False)
    specs = onnx_io.input_specs(model)
    names = [s.name for s in onnx_io.output_specs(model)]
    dynamic = any(s.shape and not isinstance(s.shape[0], int) for s in specs)
    given = {n: s for n, s in shapes.items() if n in {sp.name for sp in specs}}
    example_batch = next((s[0] for s in given.values() if s), 1)
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise CheckFailed("ONNX Runtime cannot load the exported model", hint=f"{RETRY}; --verbose shows ONNX Runtime's message", detail=first_line(exc)) from exc
    batches = []
    for batch in validation_batches(example_batch, dynamic):
        with reporter.task(f"checking parity with {reference_name} at batch {batch}"):
            concrete = resolve_shapes(specs, given, batch if dynamic else None)
            feeds = generated_feeds(concrete, {s.name: s.dtype for s in specs}, seed, int_range)
            expected = reference(feeds)
            try:
                got = session.run(names, feeds)
            except Exception as exc:
                raise CheckFailed(f"ONNX Runtime fails to run the exported model at batch {batch}", hint=f"{RETRY}, or --static-batch; --verbose shows why", detail=first_line(exc)) from exc
            if len(expected) != len(got):
                raise CheckFailed(f"the source model returns {len(expected)} outputs, the ONNX model {len(got)}", hint=RETRY)
            batches.append(BatchAgreement(batch, tuple(compare(n, r, g, atol, rtol) for n, r, g in zip(names, expected, got))))
    return ValidationReport(reference_name, atol, rtol, tuple(batches))
