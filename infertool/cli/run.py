"""`infertool run`: run a model on given inputs, summarize and save the outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from infertool.cli import render
from infertool.cli.console import RichReporter, show
from infertool.cli.groups import Device, Generated, Image, Inputs, Limits, Output, command
from infertool.tensors import MAX_DIM


@command
def run(
    model: Path = typer.Argument(..., help="ONNX model or TensorRT engine (.engine)."),
    backend: Optional[str] = typer.Option(None, "--backend", "-b", help="Backend to run on (`infertool doctor` lists them) [default: trt for .engine files, else ort-cpu]."),
    batch: Optional[int] = typer.Option(None, "--batch", min=1, max=MAX_DIM, help="Batch size (dynamic batch only; file inputs are repeated or cut to it)."),
    result_path: Optional[Path] = typer.Option(None, "--output", "-o", help="Save every output: out.npz (by output name) or a folder of output_K.pb."),
    top_k: Optional[int] = typer.Option(None, "--top-k", min=1, max=MAX_DIM, help="Show the top K classes of a classifier output."),
    labels: Optional[Path] = typer.Option(None, "--labels", help="Class names, one per line (with --top-k)."),
    inputs: Inputs = None, generated: Generated = None, image: Image = None, device: Device = None, limits: Limits = None,
    output: Output = None,
) -> None:
    """Run MODEL once on real inputs: a summary per output (shape, dtype, range, NaN/Inf), optional top-k, saved outputs."""
    from infertool.backends.base import RunnerOptions
    from infertool.files import check_output
    from infertool.pipelines.run import RunRequest
    from infertool.pipelines.run import run as run_model

    request = RunRequest(
        model, backend, inputs.to_options(generated, image), batch, RunnerOptions(device=device.device, timeout=limits.seconds()), result_path, top_k,
        labels, output.force,
    )
    if output.json_path is not None:
        check_output(output.json_path, output.force)
    with RichReporter(output.quiet) as reporter:
        result = run_model(request, reporter)
    show(result, output.json_out, output.force, render.run_result)


def register(app: typer.Typer) -> None:
    app.command()(run)
