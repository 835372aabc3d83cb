"""`infertool quantize`: precision as an ONNX transform, with an accuracy report."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from infertool.cli import options, render
from infertool.cli.console import RichReporter, show, showing_failed_checks


def _names(values: Optional[List[str]]) -> tuple[str, ...]:
    return tuple(n.strip() for v in values or [] for n in v.split(",") if n.strip())


def quantize(
    model: Path = typer.Argument(..., help="fp32 ONNX model."),
    precision: str = typer.Option(..., "--precision", "-p", metavar="fp16|bf16|int8|fp8|int8-dynamic", help="Target precision."),
    output: Path = typer.Option(..., "--output", "-o", help="ONNX file to write."),
    target: str = typer.Option("tensorrt", "--target", metavar="tensorrt|ort", help="Runtime the graph is for: tensorrt (symmetric Q/DQ on Conv/MatMul/Gemm inputs, float biases) or ort (onnxruntime's CPU defaults)."),
    calib_data: Optional[str] = typer.Option(None, "--calib-data", metavar="PATH|random", help="Calibration inputs: npz, .npy, .pb dir, images; 'random' for speed tests only."),
    calib_method: str = typer.Option("minmax", "--calib-method", metavar="minmax|entropy|percentile", help="int8 calibration (fp8 always uses onnxruntime's distribution method)."),
    calib_samples: Optional[int] = typer.Option(None, "--calib-samples", min=1, help="Calibration samples to use [default: all; 32 with random]."),
    calib_cache: Optional[Path] = typer.Option(None, "--calib-cache", help="Tensor ranges cache: reused when it exists, written after calibrating otherwise."),
    per_channel: bool = typer.Option(True, "--per-channel/--per-tensor", help="Weight scales per output channel."),
    exclude_op_types: Optional[List[str]] = typer.Option(None, "--exclude-op-types", metavar="OP[,OP]", help="Op types to keep in fp32 (repeatable)."),
    exclude_nodes: Optional[List[str]] = typer.Option(None, "--exclude-nodes", metavar="NAME[,NAME]", help="Node names to keep in fp32 (repeatable)."),
    keep_io_types: bool = typer.Option(True, "--keep-io-types/--no-keep-io-types", help="fp16/bf16: keep graph inputs and outputs fp32."),
    block_fragile: bool = typer.Option(True, "--block-fragile/--no-block-fragile", help="fp16/bf16: keep the reductions, Exp, Pow and Sqrt of decomposed Softmax/LayerNorm in fp32."),
    eval_data: Optional[str] = typer.Option(None, "--eval-data", metavar="PATH|random", help="Accuracy-report inputs [default: the calibration set, else generated]."),
    eval_samples: int = typer.Option(8, "--eval-samples", min=1, help="Generated evaluation samples."),
    eval_backend: str = typer.Option("ort-cpu", "--eval-backend", help="Backend that runs both models for the report (ort-cuda where the CPU lacks kernels)."),
    min_cosine: Optional[float] = typer.Option(None, "--min-cosine", help="Fail (exit 1) below this cosine similarity on any output."),
    min_top1: Optional[float] = typer.Option(None, "--min-top1", help="Fail (exit 1) below this top-1 agreement (0-1)."),
    input_shape: Optional[List[str]] = options.input_shape_option,
    seed: int = options.seed_option,
    int_range: str = options.int_range_option,
    preprocess: str = options.preprocess_option,
    resize: Optional[int] = options.resize_option,
    crop: Optional[str] = options.crop_option,
    mean: Optional[str] = options.mean_option,
    std: Optional[str] = options.std_option,
    bgr: bool = options.bgr_option,
    layout: Optional[str] = options.layout_option,
    json_out: Optional[str] = options.json_option,
    force: bool = options.force_option,
    quiet: bool = options.quiet_option,
) -> None:
    """Convert an fp32 ONNX model to fp16/bf16 (casts) or int8/fp8 (Q/DQ, calibrated) and report its accuracy."""
    from infertool.errors import InfertoolError
    from infertool.precision.quantize import QuantizeOptions
    from infertool.precision.quantize import quantize as run_quantize
    from infertool.runners import check_name

    check_name(eval_backend)
    if output.suffix != ".onnx":
        raise InfertoolError(f"output {output} should end in .onnx", hint="e.g. -o model.int8.onnx")

    def data(value: Optional[str]):
        if value is None:
            return None
        path = None if value == "random" else Path(value)
        return options.input_options(path, "random", input_shape, seed, int_range, preprocess, resize, crop, mean, std, bgr, layout)

    settings = QuantizeOptions(
        precision=precision, output=output, target=target, keep_io_types=keep_io_types, block_fragile=block_fragile,
        exclude_op_types=_names(exclude_op_types), exclude_nodes=_names(exclude_nodes), calib=data(calib_data),
        calib_method=calib_method, calib_samples=calib_samples, calib_cache=calib_cache, per_channel=per_channel,
        eval=data(eval_data), eval_samples=eval_samples, eval_backend=eval_backend, min_cosine=min_cosine,
        min_top1=min_top1, force=force, generated=data("random"),
    )
    with showing_failed_checks(json_out, force, render.quantize_result), RichReporter(quiet) as reporter:
        result = run_quantize(model, settings, reporter)
    show(result, json_out, force, render.quantize_result)


def register(app: typer.Typer) -> None:
    app.command()(quantize)
