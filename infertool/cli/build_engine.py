"""`infertool build-engine`: a serialized TensorRT or TensorRT-RTX engine (+ sidecar JSON) from an ONNX model."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from infertool.cli import parse
from infertool.cli.console import RichReporter, show
from infertool.cli.groups import Calibration, Device, Generated, Image, Output, command, data_options
from infertool.cli.show.build import build_result
from infertool.tensors import MAX_DIM


@command
def build_engine(
    model: Path = typer.Argument(..., help="ONNX model."),
    engine_path: Path = typer.Option(..., "--output", "-o", help="Engine file to write (a .engine.json sidecar goes beside it)."),
    backend: str = typer.Option("trt", "--backend", "-b", metavar="trt|trt-rtx", help="Which TensorRT builds: trt (TensorRT 10/11, on this GPU) or trt-rtx (TensorRT-RTX, ahead of time, no GPU needed)."),
    compute_capability: Optional[str] = typer.Option(None, "--compute-capability", metavar="CC[,CC...]", help="trt-rtx: target GPUs, e.g. 8.6,8.9,12.0 or sm86,sm89 (current: this GPU) [default: Ampere and later]."),
    precision: Optional[str] = typer.Option(
        None, "--precision", "-p", metavar="fp32|fp16|bf16|int8|fp8|best",
        help="Requested precision; on TensorRT 11 and TensorRT-RTX it is written into the graph first (casts or Q/DQ) [default: the graph's own].",
    ),
    min_shapes: Optional[List[str]] = typer.Option(None, "--min-shapes", metavar="NAME:DIMS[,...]", help="Profile minimum, trtexec style (repeat the three options for more profiles)."),
    opt_shapes: Optional[List[str]] = typer.Option(None, "--opt-shapes", metavar="NAME:DIMS[,...]", help="Profile optimum."),
    max_shapes: Optional[List[str]] = typer.Option(None, "--max-shapes", metavar="NAME:DIMS[,...]", help="Profile maximum."),
    batch: Optional[int] = typer.Option(
        None, "--batch", min=1, max=MAX_DIM,
        help="Profile batch: a dynamic input without --min/--opt/--max-shapes gets the profile min 1, opt = max = N.",
    ),
    workspace: Optional[str] = typer.Option(None, "--workspace", metavar="SIZE", help="Workspace memory pool limit: MiB (4096) or 512M / 4G."),
    opt_level: Optional[int] = typer.Option(None, "--opt-level", min=0, max=5, help="Builder optimization level (TensorRT default 3)."),
    timing_cache: Optional[Path] = typer.Option(None, "--timing-cache", help="Timing cache: loaded if it exists, saved after the build."),
    version_compatible: bool = typer.Option(False, "--version-compatible", help="Engine runs on later TensorRT versions of the same major."),
    hardware_compat: str = typer.Option("none", "--hardware-compat", metavar="none|ampere+|same-compute-capability", help="Engine portability across GPUs."),
    gate: bool = typer.Option(True, "--gate/--no-gate", help="Fail (exit 1, nothing written) when the precision stage's graph fails quantize's accuracy rule; --no-gate builds it anyway."),
    calibration: Calibration = None, generated: Generated = None, image: Image = None, device: Device = None, output: Output = None,
) -> None:
    """Build a serialized TensorRT engine at a chosen precision and check that the engine really uses it (not yet run on real TensorRT).

    Not yet run on real TensorRT: written against the TensorRT 10.x and 11.x Python APIs, every
    TensorRT name it uses is checked against the real bindings, and its flow is tested with a fake
    TensorRT (TensorRT cannot be installed where infertool is built). No engine has been built or
    timed with it on a GPU. With --backend trt-rtx it drives the real TensorRT-RTX builder, which
    needs no GPU (CI builds real engines that way); running them needs an RTX / Ampere or later GPU
    (not Hopper), and none has been run or timed here.
    """
    from infertool.engine.build import HARDWARE_COMPAT, BuildOptions
    from infertool.pipelines.build import BuildRequest, build
    from infertool.vocabulary import BUILD_PRECISIONS

    options = BuildOptions(
        precision=precision and parse.choice(precision, BUILD_PRECISIONS, "--precision"), workspace=parse.size(workspace) if workspace else None, opt_level=opt_level,
        timing_cache=timing_cache, version_compatible=version_compatible,
        hardware_compat=parse.choice(hardware_compat, HARDWARE_COMPAT, "--hardware-compat"), verbose=output.verbose,
        calib=calibration.to_options(generated, image), calib_method=calibration.calib_method,
        calib_samples=calibration.calib_samples, device=device.device, force=output.force,
        compute_capabilities=parse.compute_capabilities(compute_capability) if compute_capability else (),
    )
    profiles = tuple(parse.profiles(min_shapes or [], opt_shapes or [], max_shapes or []))
    request = BuildRequest(engine_path, options, profiles, generated.shapes(), batch, data_options("random", "--input-shape", generated, image), backend=backend, gate=gate)
    with RichReporter(output.quiet) as reporter:
        result = build(model, request, reporter)
    show(result, output.json_out, output.force, build_result)


def register(app: typer.Typer) -> None:
    app.command("build-engine")(build_engine)
