"""`infertool run`: run a model on given inputs, summarize and save the outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from infertool.cli import backend_options
from infertool.cli.console import RichReporter, show
from infertool.cli.groups import Device, Generated, Image, Inputs, Limits, Output, command
from infertool.cli.show.run import run_result
from infertool.tensors import MAX_DIM

BackendOptions = backend_options.NONE  # the backends' own options on run, once run runs (with_backend_options)


def run(
    model: Path = typer.Argument(..., help="ONNX model or TensorRT engine (.engine)."),
    backend: Optional[str] = typer.Option(
        None, "--backend", "-b", metavar="NAME",
        help="Backend (`infertool doctor` lists them; trt, ort-trt: not run on real TensorRT here) [default: ort-cpu; engines: their builder's].",
    ),
    batch: Optional[int] = typer.Option(None, "--batch", min=1, max=MAX_DIM, help="The one batch size to run (dynamic batch only; file inputs are repeated or cut to it)."),
    result_path: Optional[Path] = typer.Option(None, "--output", "-o", help="Save every output: out.npz (by output name) or a folder of output_K.pb."),
    top_k: Optional[int] = typer.Option(None, "--top-k", min=1, max=MAX_DIM, help="Show the top K classes of a classifier output."),
    labels: Optional[Path] = typer.Option(None, "--labels", help="Class names, one per line (with --top-k)."),
    save_inputs: Optional[Path] = typer.Option(None, "--save-inputs", help="Save the exact tensors fed: in.npz (by input name) or a folder of input_K.pb; --inputs reads either back."),
    scores: str = typer.Option(
        "auto", "--scores", metavar="auto|raw|softmax|sigmoid",
        help="How --top-k turns scores into probabilities [default: auto: rows already probabilities (>= 0, summing to 1) as they are, else softmax].",
    ),
    in_process: bool = typer.Option(
        False, "--no-isolate",
        help="Load and run the model in this process: saves starting a fresh one (about a second), where a runtime that crashes on the model is one line, not a dead infertool.",
    ),
    inputs: Inputs = None, generated: Generated = None, image: Image = None, device: Device = None, limits: Limits = None,
    backend_options: BackendOptions = None, output: Output = None,
) -> None:
    """Run MODEL once on real inputs: a summary per output (shape, dtype, range, NaN/Inf), optional top-k, saved outputs."""
    from infertool.backends.base import RunnerOptions
    from infertool.cli import parse
    from infertool.files import check_not_read, check_output
    from infertool.pipelines.run import SCORE_MODES, RunRequest
    from infertool.pipelines.run import run as run_model

    request = RunRequest(
        model, backend, inputs.to_options(generated, image), batch,
        RunnerOptions(device=device.device, timeout=limits.seconds(), groups=backend_options.to_groups()), result_path, top_k,
        labels, output.force, save_inputs, parse.choice(scores, SCORE_MODES, "--scores"), not in_process,
    )
    check_not_read(
        {"-o": result_path, "--save-inputs": save_inputs, "--json": output.json_path, **backend_options.files("out")},
        {"the model": model, "--inputs": parse.data_file(inputs.inputs), "--labels": labels, **backend_options.files("in")},
    )
    if output.json_path is not None:
        check_output(output.json_path, output.force)
    with RichReporter(output.quiet) as reporter:
        result = run_model(request, reporter)
    show(result, output.json_out, output.force, run_result)


def register(app: typer.Typer) -> None:
    app.command("run")(command(run))


def with_backend_options(app: typer.Typer) -> None:
    """run with the backends' own options: loading them imports every backend, so only a run that runs does."""
    global BackendOptions
    BackendOptions = backend_options.group("run")
    declared = next(c for c in app.registered_commands if c.name == "run")
    declared.callback = command(run)
