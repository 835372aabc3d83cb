"""`infertool quantize`: precision as an ONNX transform, with an accuracy report."""

from __future__ import annotations

import math
from pathlib import Path
from typing import List, Optional

import typer

from infertool.cli import parse, render
from infertool.cli.console import RichReporter, show, showing_failed_checks
from infertool.cli.groups import MAX_SAMPLES, Calibration, Generated, Image, Limits, Output, Truth, command, data_options


@command
def quantize(
    model: Path = typer.Argument(..., help="fp32 ONNX model."),
    precision: str = typer.Option(
        ..., "--precision", "-p", metavar="fp16|bf16|int8|fp8|int8-dynamic",
        help="Target precision. int8 / fp8: calibrated Q/DQ, shaped for --target. int8-dynamic: int8 weights, activations "
        "quantized per inference, for ONNX Runtime on the CPU and MatMul-heavy models (transformers); on CNNs it is often slower than fp32.",
    ),
    result_path: Path = typer.Option(..., "--output", "-o", help="ONNX file to write."),
    target: str = typer.Option(
        "tensorrt", "--target", metavar="tensorrt|ort",
        help="Runtime the graph is for. tensorrt: symmetric Q/DQ on Conv/MatMul/Gemm inputs, float biases (bench shows int8-qdq); "
        "ONNX Runtime's CPU provider cannot fuse it and often runs it slower than fp32. ort: onnxruntime's CPU defaults (int8-ort), the one for the CPU.",
    ),
    calibration: Calibration = None,
    calib_cache: Optional[Path] = typer.Option(None, "--calib-cache", help="Tensor ranges cache: reused when it exists, written after calibrating otherwise."),
    per_channel: bool = typer.Option(True, "--per-channel/--per-tensor", help="Weight scales per output channel."),
    exclude_op_types: Optional[List[str]] = typer.Option(None, "--exclude-op-types", metavar="OP[,OP]", help="Op types to keep in fp32 (repeatable; @FILE reads one a line)."),
    exclude_nodes: Optional[List[str]] = typer.Option(None, "--exclude-nodes", metavar="NAME[,NAME]", help="Node names to keep in fp32 (repeatable; @FILE reads one a line, e.g. debug precision's keep list)."),
    keep_io_types: bool = typer.Option(True, "--keep-io-types/--no-keep-io-types", help="fp16/bf16: keep graph inputs and outputs fp32."),
    block_fragile: bool = typer.Option(True, "--block-fragile/--no-block-fragile", help="fp16/bf16: keep the reductions, Exp, Pow and Sqrt of decomposed Softmax/LayerNorm in fp32."),
    eval_data: Optional[str] = typer.Option(None, "--eval-data", metavar="PATH|random", help="Accuracy-report inputs [default: the calibration set, else generated]."),
    eval_samples: int = typer.Option(8, "--eval-samples", min=1, max=MAX_SAMPLES, help="Generated evaluation samples."),
    eval_backend: str = typer.Option("ort-cpu", "--eval-backend", metavar="NAME", help="Backend that runs both models for the report (ort-cuda where the CPU lacks kernels)."),
    min_cosine: Optional[float] = typer.Option(None, "--min-cosine", help="Cosine similarity every output must reach (where not within atol/rtol) [default: the precision's floor]."),
    gate: bool = typer.Option(True, "--gate/--no-gate", help="Fail (exit 1, nothing written) when an output is outside the precision's tolerance; --no-gate keeps the file."),
    min_top1: Optional[float] = typer.Option(None, "--min-top1", help="Fail (exit 1) below this top-1 agreement (0-1)."),
    truth: Truth = None, generated: Generated = None, image: Image = None, limits: Limits = None, output: Output = None,
) -> None:
    """Convert an fp32 ONNX model to fp16/bf16 (casts) or int8/fp8 (Q/DQ, calibrated) and report its accuracy."""
    from infertool.backends import registry
    from infertool.errors import InfertoolError
    from infertool.pipelines.quantize import QuantizeOptions
    from infertool.pipelines.quantize import quantize as run_quantize
    from infertool.precision.settings import PrecisionSettings

    registry.get(eval_backend)
    if result_path.suffix != ".onnx":
        raise InfertoolError(f"output {result_path} should end in .onnx", hint="e.g. -o model.int8.onnx")
    settings = PrecisionSettings(
        precision=precision, target=target, keep_io_types=keep_io_types, block_fragile=block_fragile,
        exclude_op_types=parse.names(exclude_op_types), exclude_nodes=parse.names(exclude_nodes),
        calib_method=calibration.calib_method, per_channel=per_channel, calib_cache=calib_cache, replace_cache=output.force,
    )
    request = QuantizeOptions(
        output=result_path, settings=settings, calib=calibration.to_options(generated, image), calib_samples=calibration.calib_samples,
        eval=data_options(eval_data, "--eval-data", generated, image), eval_samples=eval_samples, eval_backend=eval_backend,
        min_cosine=parse.finite(min_cosine, "--min-cosine", -math.inf), min_top1=parse.finite(min_top1, "--min-top1", -math.inf), gate=gate,
        timeout=limits.seconds(), force=output.force, generated=data_options("random", "--input-shape", generated, image), labels=truth.labels_csv,
    )
    with showing_failed_checks(output.json_out, output.force, render.quantize_result), RichReporter(output.quiet) as reporter:
        result = run_quantize(model, request, reporter)
    show(result, output.json_out, output.force, render.quantize_result)


def register(app: typer.Typer) -> None:
    app.command()(quantize)
