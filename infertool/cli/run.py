"""`infertool run`: run a model on given inputs, summarize and save the outputs."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from infertool.cli import options, render
from infertool.cli.console import RichReporter, show
from infertool.errors import InfertoolError


def run(
    model: Path = typer.Argument(..., help="ONNX model or TensorRT engine (.engine)."),
    backend: Optional[str] = typer.Option(None, "--backend", "-b", help="ort-cpu, ort-cuda, ort-trt or trt [default: trt for .engine files, else ort-cpu]."),
    inputs: Optional[Path] = options.inputs_option,
    input_data: str = options.input_data_option,
    input_shape: Optional[List[str]] = options.input_shape_option,
    batch: Optional[int] = typer.Option(None, "--batch", min=1, help="Batch size (dynamic batch only; file inputs are repeated or cut to it)."),
    seed: int = options.seed_option,
    int_range: str = options.int_range_option,
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Save every output: out.npz (by output name) or a folder of output_K.pb."),
    top_k: Optional[int] = typer.Option(None, "--top-k", min=1, help="Show the top K classes of a classifier output."),
    labels: Optional[Path] = typer.Option(None, "--labels", help="Class names, one per line (with --top-k)."),
    device: int = typer.Option(0, "--device", min=0, help="CUDA device index."),
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
    """Run MODEL once on real inputs: a summary per output (shape, dtype, range, NaN/Inf), optional top-k, saved outputs."""
    from infertool.files import check_output
    from infertool.runners import RunnerOptions, check_name
    from infertool.runners.run import OutputSummary, RunResult, read_labels, run_model, save_outputs
    from infertool.runners.run import top_k as classify

    backend = backend or ("trt" if model.suffix == ".engine" else "ort-cpu")
    check_name(backend)
    if model.suffix == ".engine" and backend != "trt":
        raise InfertoolError(f"{model} is a TensorRT engine; backend {backend} runs ONNX models", hint="drop --backend, or use --backend trt")
    if labels is not None and top_k is None:
        raise InfertoolError("--labels needs --top-k", hint="e.g. --top-k 5 --labels labels.txt")
    if output is not None:
        check_output(output, force, directory=output.suffix == "")
    if json_out and json_out != "-":
        check_output(Path(json_out), force)
    label_names = read_labels(labels) if labels else None
    if not model.is_file():
        raise InfertoolError(f"model file {model} not found", hint="check the path")
    feeds_from = options.input_options(inputs, input_data, input_shape, seed, int_range, preprocess, resize, crop, mean, std, bgr, layout)
    with RichReporter(quiet) as reporter:
        outputs, shapes = run_model(model, backend, RunnerOptions(device=device), feeds_from, batch, reporter)
    ranked = classify(outputs, top_k, label_names) if top_k else None
    if output is not None:
        save_outputs(outputs, output, force)
    result = RunResult(
        str(model), backend, shapes, tuple(OutputSummary.of(n, a) for n, a in outputs.items()),
        str(output) if output else None, ranked,
    )
    show(result, json_out, force, render.run_result)


def register(app: typer.Typer) -> None:
    app.command()(run)
