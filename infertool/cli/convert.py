"""`infertool convert`: a PyTorch or Keras model to validated ONNX."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer

from infertool.cli import options, render
from infertool.cli.console import RichReporter, show, showing_failed_checks


class Exporter(str, Enum):
    auto = "auto"
    dynamo = "dynamo"
    torchscript = "torchscript"


def convert(
    source: str = typer.Argument(
        ..., metavar="SOURCE",
        help="file.py:factory or package.module:factory (PyTorch), .pt/.ts (TorchScript), .pt2 (torch.export), "
        ".pt/.pth (torch.save, needs --trust-model), .keras, .h5, or a SavedModel directory.",
    ),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="ONNX file to write [default: <name>.onnx here]."),
    input_shape: Optional[List[str]] = options.input_shape_option,
    dtype: Optional[List[str]] = typer.Option(None, "--dtype", metavar="[NAME:]DTYPE", help="Input dtype, for all inputs or one (repeatable) [default: float32]."),
    dynamic_batch: bool = typer.Option(True, "--dynamic-batch/--static-batch", help="Name axis 0 of every input 'batch' and keep it dynamic."),
    dynamic_axis: Optional[List[str]] = typer.Option(None, "--dynamic-axis", metavar="NAME:INDEX:LABEL", help="Another dynamic axis, e.g. input_ids:1:seq (repeatable)."),
    opset: Optional[int] = typer.Option(None, "--opset", help="ONNX opset [default: 18 with dynamo, 17 with TorchScript and tf2onnx]."),
    exporter: Exporter = typer.Option(Exporter.auto, "--exporter", help="PyTorch exporter; auto tries dynamo, then TorchScript."),
    atol: float = typer.Option(1e-4, "--atol", help="Absolute tolerance of the parity check."),
    rtol: float = typer.Option(1e-3, "--rtol", help="Relative tolerance of the parity check."),
    validate: bool = typer.Option(True, "--validate/--no-validate", help="Check the ONNX (checker, shape inference, parity with the source on ONNX Runtime)."),
    trust_model: bool = typer.Option(False, "--trust-model", help="Allow loading that runs code from the model file (pickled modules, Keras Lambda layers)."),
    custom_objects: Optional[List[str]] = typer.Option(None, "--custom-objects", metavar="MODULE", help="Module defining custom Keras layers (repeatable)."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="State dict loaded into the factory's model (torch.load weights_only)."),
    seed: int = options.seed_option,
    int_range: str = options.int_range_option,
    force: bool = options.force_option,
    json_out: Optional[str] = options.json_option,
    quiet: bool = options.quiet_option,
) -> None:
    """Convert a PyTorch or Keras model to ONNX and validate it against the source model."""
    from infertool.exporters import ConvertOptions
    from infertool.exporters import convert as run_convert
    from infertool.exporters.base import DynamicAxis, ExportOptions
    from infertool.inputs import parse_int_range
    from infertool.specs import parse_named_dtypes, parse_named_shapes

    export = ExportOptions(
        input_shapes=parse_named_shapes(input_shape or []),
        input_dtypes=parse_named_dtypes(dtype or []),
        dynamic_batch=dynamic_batch,
        dynamic_axes=tuple(DynamicAxis.parse(a) for a in dynamic_axis or []),
        opset=opset,
        exporter=exporter.value,
        trust_model=trust_model,
        custom_objects=tuple(custom_objects or []),
        weights=weights,
        seed=seed,
        int_range=parse_int_range(int_range),
    )
    settings = ConvertOptions(output, export, atol, rtol, validate, force)
    with showing_failed_checks(json_out, force, render.convert_result), RichReporter(quiet) as reporter:
        result = run_convert(source, settings, reporter)
    show(result, json_out, force, render.convert_result)


def register(app: typer.Typer) -> None:
    app.command()(convert)
