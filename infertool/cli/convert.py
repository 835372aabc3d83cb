"""`infertool convert`: a PyTorch or Keras model to validated ONNX."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer

from infertool.cli import parse
from infertool.cli.console import RichReporter, show, showing_failed_checks
from infertool.cli.groups import MAX_SEED, Output, command
from infertool.cli.show.convert import convert_result


class Exporter(str, Enum):
    auto = "auto"
    dynamo = "dynamo"
    torchscript = "torchscript"


@command
def convert(
    source: str = typer.Argument(
        ..., metavar="SOURCE",
        help="file.py:factory or package.module:factory (PyTorch), .pt/.ts (TorchScript), .pt2 (torch.export), "
        ".pt/.pth (torch.save, needs --trust-model), .keras, .h5, or a SavedModel directory.",
    ),
    onnx_path: Optional[Path] = typer.Option(None, "--output", "-o", help="ONNX file to write [default: <name>.onnx here]."),
    input_shape: Optional[List[str]] = typer.Option(
        None, "--input-shape", metavar="NAME:DIMS",
        help="Input shape, e.g. x:1x3x224x224 (repeatable; the name may be left out for a single-input model).",
    ),
    dtype: Optional[List[str]] = typer.Option(None, "--dtype", metavar="[NAME:]DTYPE", help="Input dtype, for all inputs or one (repeatable) [default: float32]."),
    dynamic_batch: bool = typer.Option(True, "--dynamic-batch/--static-batch", help="Name axis 0 of every input 'batch' and keep it dynamic."),
    dynamic_axis: Optional[List[str]] = typer.Option(None, "--dynamic-axis", metavar="NAME:INDEX:LABEL", help="Another dynamic axis, e.g. input_ids:1:seq (repeatable)."),
    opset: Optional[int] = typer.Option(None, "--opset", min=7, max=99, help="ONNX opset [default: 18 with dynamo, 17 with TorchScript and tf2onnx]."),
    exporter: Exporter = typer.Option(Exporter.auto, "--exporter", help="PyTorch exporter; auto tries dynamo, then TorchScript."),
    atol: float = typer.Option(1e-4, "--atol", help="Absolute tolerance of the parity check."),
    rtol: float = typer.Option(1e-3, "--rtol", help="Relative tolerance of the parity check."),
    validate: bool = typer.Option(True, "--validate/--no-validate", help="Check the ONNX (checker, shape inference, parity with the source on ONNX Runtime)."),
    trust_model: bool = typer.Option(False, "--trust-model", help="Allow loading that runs code from the model file (pickled modules, Keras Lambda layers)."),
    custom_objects: Optional[List[str]] = typer.Option(None, "--custom-objects", metavar="MODULE", help="Module defining custom Keras layers (repeatable)."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="State dict loaded into the factory's model (torch.load weights_only)."),
    seed: int = typer.Option(0, "--seed", min=0, max=MAX_SEED, help="Seed of the generated validation inputs."),
    int_range: Optional[List[str]] = typer.Option(
        None, "--int-range", metavar="[NAME:]LOW:HIGH",
        help="Range [LOW, HIGH) of generated integer inputs, for all or one input (repeatable) [default: 0:100; inputs named like masks 1, token types 0:2].",
    ),
    output: Output = None,
) -> None:
    """Convert a PyTorch or Keras model to ONNX and validate it against the source model."""
    from infertool.exporters.base import DynamicAxis, ExportOptions
    from infertool.files import check_not_read
    from infertool.pipelines.convert import ConvertOptions
    from infertool.pipelines.convert import convert as run_convert

    export = ExportOptions(
        input_shapes=parse.named_shapes(input_shape or []),
        input_dtypes=parse.named_dtypes(dtype or []),
        dynamic_batch=dynamic_batch,
        dynamic_axes=tuple(DynamicAxis(*parse.dynamic_axis(a)) for a in dynamic_axis or []),
        opset=opset,
        exporter=exporter.value,
        trust_model=trust_model,
        custom_objects=tuple(custom_objects or []),
        weights=weights,
        seed=seed,
        int_range=parse.int_ranges(int_range or []),
    )
    check_not_read({"-o": onnx_path, "--json": output.json_path}, {"the source": parse.source_file(source), "--weights": weights})
    settings = ConvertOptions(onnx_path, export, parse.finite(atol, "--atol"), parse.finite(rtol, "--rtol"), validate, output.force)
    with showing_failed_checks(output.json_out, output.force, convert_result), RichReporter(output.quiet) as reporter:
        result = run_convert(source, settings, reporter)
    show(result, output.json_out, output.force, convert_result)


def register(app: typer.Typer) -> None:
    app.command()(convert)
