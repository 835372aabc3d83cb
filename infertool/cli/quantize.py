"""`infertool quantize`: precision as an ONNX transform, with an accuracy report."""

from __future__ import annotations

from pathlib import Path

import typer

from infertool.cli.console import RichReporter, show, showing_failed_checks
from infertool.cli.groups import Calibration, Conversion, Generated, Image, Limits, Output, Truth, command, read_args
from infertool.cli.show.quantize import quantize_result


@command
def quantize(
    model: Path = typer.Argument(..., help="fp32 ONNX model."),
    precision: str = typer.Option(
        ..., "--precision", "-p", metavar="fp16|bf16|int8|fp8|int8-dynamic",
        help="Target precision. int8 / fp8: calibrated Q/DQ, shaped for --target. int8-dynamic: int8 weights, activations "
        "quantized per inference, for ONNX Runtime on the CPU and MatMul-heavy models (transformers); on CNNs it is often slower than fp32.",
    ),
    result_path: Path = typer.Option(..., "--output", "-o", help="ONNX file to write."),
    calibration: Calibration = None, conversion: Conversion = None,
    gate: bool = typer.Option(True, "--gate/--no-gate", help="Fail (exit 1, nothing written) when an output is outside the precision's tolerance; --no-gate keeps the file."),
    truth: Truth = None, generated: Generated = None, image: Image = None, limits: Limits = None, output: Output = None,
) -> None:
    """Convert an fp32 ONNX model to fp16/bf16 (casts) or int8/fp8 (Q/DQ, calibrated) and report its accuracy."""
    from infertool.cli import parse
    from infertool.errors import InfertoolError
    from infertool.files import check_not_read
    from infertool.pipelines.quantize import quantize as run_quantize

    if result_path.suffix != ".onnx":
        raise InfertoolError(f"output {result_path} should end in .onnx", hint="e.g. -o model.int8.onnx")
    request = _request(precision, result_path, calibration, conversion, gate, truth, generated, image, limits, output)
    check_not_read(
        {"-o": result_path, "--json": output.json_path, "--calib-cache": conversion.calib_cache},
        {"the model": model, "--calib-data": parse.data_file(calibration.calib_data), "--eval-data": parse.data_file(conversion.eval_data), "--labels-csv": truth.labels_csv},
    )
    with showing_failed_checks(output.json_out, output.force, quantize_result), RichReporter(output.quiet) as reporter:
        result = run_quantize(model, request, reporter)
    show(result, output.json_out, output.force, quantize_result)


def _request(precision, result_path, calibration, conversion, gate, truth, generated, image, limits, output):
    return conversion.to_options(
        precision, result_path, calibration, generated, image, output.force, gate=gate, timeout=limits.seconds(), labels=truth.labels_csv,
    )


def settings(argv: list[str], what: str = "quantize arguments"):
    """`infertool quantize ARGV` read into QuantizeOptions as the command reads it, running nothing."""
    values = read_args(quantize, argv, what)
    return _request(*(values[k] for k in ("precision", "result_path", "calibration", "conversion", "gate", "truth", "generated", "image", "limits", "output")))


def register(app: typer.Typer) -> None:
    app.command()(quantize)
