"""`infertool debug`: where reduced precision breaks a model (`layers`), and the nodes to keep to fix it (`precision`)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from infertool.cli import parse
from infertool.cli.console import RichReporter, show, showing_failed_checks
from infertool.cli.groups import MAX_SAMPLES, Calibration, Conversion, Device, Generated, Image, Inputs, Output, command
from infertool.cli.show import debug as show_debug
from infertool.present.debug import debug_layers_markdown

debug_app = typer.Typer(
    name="debug", no_args_is_help=True, rich_markup_mode="rich",
    help="Find the layer where fp16 / int8 accuracy breaks (layers), and the nodes to keep so the model passes its gate (precision).",
)


@command
def layers(
    reference: Path = typer.Argument(..., help="The reference ONNX model (fp32), or the one model to run on two backends."),
    candidate: Optional[Path] = typer.Argument(None, help="Its converted version (from infertool quantize) [default: REFERENCE again, on --candidate-backend]."),
    backend: str = typer.Option("ort-cpu", "--backend", "-b", help="Backend running the reference."),
    candidate_backend: Optional[str] = typer.Option(None, "--candidate-backend", help="Backend running the candidate [default: --backend]."),
    samples: int = typer.Option(8, "--samples", min=1, max=MAX_SAMPLES, help="Generated samples when --inputs is not given; every sample is compared."),
    graph_opt: str = typer.Option("all", "--graph-opt", metavar="all|extended|basic|disable", help="ONNX Runtime graph optimization level, both sides."),
    keep_fusions: bool = typer.Option(True, "--keep-fusions/--no-keep-fusions", help="TensorRT: read the tensors that survive fusion (TensorRT >= 10.12), not each tensor (which stops fusion there)."),
    markdown_out: Optional[Path] = typer.Option(None, "--markdown", help="Also write the report as a Markdown table."),
    inputs: Inputs = None, generated: Generated = None, image: Image = None, device: Device = None, output: Output = None,
) -> None:
    """Run REFERENCE and CANDIDATE on the same inputs and compare every intermediate float tensor, in topological order: errors, cosine, fp16 range, NaN/Inf, error growth; the first divergence highlighted."""
    from infertool.backends.onnxruntime import OPTIMIZATION_LEVELS
    from infertool.files import check_output, write_text_atomic
    from infertool.pipelines.debug_layers import LayersOptions, debug_layers

    options = LayersOptions(
        candidate=candidate, inputs=inputs.to_options(generated, image), samples=samples, backend=backend, candidate_backend=candidate_backend,
        graph_optimization=parse.choice(graph_opt, OPTIMIZATION_LEVELS, "--graph-opt"), keep_fusions=keep_fusions, device=device.device,
    )
    for path in (output.json_path, markdown_out):
        if path is not None:
            check_output(path, output.force)
    with RichReporter(output.quiet) as reporter:
        result = debug_layers(reference, options, reporter)
    if markdown_out is not None:
        write_text_atomic(markdown_out, debug_layers_markdown(result), output.force)
    show(result, output.json_out, output.force, show_debug.debug_layers)


@command
def precision(
    model: Path = typer.Argument(..., help="fp32 ONNX model."),
    precision: str = typer.Option(..., "--precision", "-p", metavar="fp16|bf16|int8|fp8", help="The precision it converts to."),
    keep_path: Path = typer.Option(..., "--output", "-o", help="The keep list to write (text, one node name a line; quantize --exclude-nodes @FILE reads it)."),
    calibration: Calibration = None, conversion: Conversion = None,
    budget: float = typer.Option(600.0, "--budget", min=1.0, help="Seconds for the search; past them the smallest passing keep list found so far is written."),
    generated: Generated = None, image: Image = None, output: Output = None,
) -> None:
    """Find a few nodes to keep in fp32 (fp16/bf16) or out of quantization (int8/fp8) so the converted MODEL passes its
    accuracy gate on every evaluation sample: ranked by the layer-wise report, checked by converting and evaluating."""
    from infertool.errors import InfertoolError
    from infertool.files import check_output
    from infertool.pipelines.debug_precision import SearchOptions, debug_precision

    parse.choice(precision, ("fp16", "bf16", "int8", "fp8"), "--precision")
    if keep_path.suffix == ".onnx":
        raise InfertoolError(f"{keep_path} would hold a list of node names, not a model", hint="e.g. -o keep.txt")
    request = conversion.to_options(precision, keep_path, calibration, generated, image, output.force)
    if output.json_path is not None:
        check_output(output.json_path, output.force)
    with showing_failed_checks(output.json_out, output.force, show_debug.debug_precision), RichReporter(output.quiet) as reporter:
        result = debug_precision(model, SearchOptions(keep_path, request, budget, _verified(model, precision, keep_path, calibration, conversion, generated, image)), reporter)
    show(result, output.json_out, output.force, show_debug.debug_precision)


def _verified(model: Path, precision: str, keep: Path, *groups) -> str:
    """The quantize command line the search verifies: the same conversion, data and gate, with the keep list."""
    import shlex

    from infertool.cli.perf import group_args

    calibration, conversion, generated, image = groups
    exclude = [*(f"--exclude-nodes={n}" for n in conversion.exclude_nodes or ()), f"--exclude-nodes=@{keep}"]
    argv = ["infertool", "quantize", str(model), "-p", precision, *group_args(calibration), *group_args(conversion, skip=("exclude_nodes",)),
            *exclude, *group_args(generated), *group_args(image), "-o", str(keep.with_name(f"{model.stem}.{precision}.onnx"))]
    return shlex.join(argv)


def register(app: typer.Typer) -> None:
    debug_app.command("layers")(layers)
    debug_app.command("precision")(precision)
    app.add_typer(debug_app)
