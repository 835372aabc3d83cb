"""`infertool build-engine`: a serialized TensorRT engine (+ sidecar JSON) from an ONNX model."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from infertool.cli import options, render
from infertool.cli.console import RichReporter, show


def build_engine(
    model: Path = typer.Argument(..., help="ONNX model."),
    output: Path = typer.Option(..., "--output", "-o", help="Engine file to write (a .engine.json sidecar goes beside it)."),
    precision: str = typer.Option("fp32", "--precision", "-p", metavar="fp32|fp16|bf16|int8|fp8|best", help="Requested precision; on TensorRT 11 it is written into the graph first (casts or Q/DQ)."),
    min_shapes: Optional[List[str]] = typer.Option(None, "--min-shapes", metavar="NAME:DIMS[,...]", help="Profile minimum, trtexec style (repeat the three options for more profiles)."),
    opt_shapes: Optional[List[str]] = typer.Option(None, "--opt-shapes", metavar="NAME:DIMS[,...]", help="Profile optimum."),
    max_shapes: Optional[List[str]] = typer.Option(None, "--max-shapes", metavar="NAME:DIMS[,...]", help="Profile maximum."),
    input_shape: Optional[List[str]] = options.input_shape_option,
    batch: Optional[int] = typer.Option(None, "--batch", min=1, help="Batch for profiles derived for dynamic inputs without one (min 1, opt = max = batch)."),
    workspace: Optional[str] = typer.Option(None, "--workspace", metavar="SIZE", help="Workspace memory pool limit: MiB (4096) or 512M / 4G."),
    opt_level: Optional[int] = typer.Option(None, "--opt-level", min=0, max=5, help="Builder optimization level (TensorRT default 3)."),
    timing_cache: Optional[Path] = typer.Option(None, "--timing-cache", help="Timing cache: loaded if it exists, saved after the build."),
    version_compatible: bool = typer.Option(False, "--version-compatible", help="Engine runs on later TensorRT versions of the same major."),
    hardware_compat: str = typer.Option("none", "--hardware-compat", metavar="none|ampere+|same-compute-capability", help="Engine portability across GPUs."),
    calib_data: Optional[str] = typer.Option(None, "--calib-data", metavar="PATH|random", help="int8/fp8 on an fp32 graph: calibration inputs for the Q/DQ stage."),
    calib_method: str = typer.Option("minmax", "--calib-method", metavar="minmax|entropy|percentile", help="int8 calibration method."),
    calib_samples: Optional[int] = typer.Option(None, "--calib-samples", min=1, help="Calibration samples to use."),
    seed: int = options.seed_option,
    int_range: str = options.int_range_option,
    preprocess: str = options.preprocess_option,
    device: int = typer.Option(0, "--device", min=0, help="CUDA device index."),
    verbose: bool = typer.Option(False, "--verbose", help="Print TensorRT's build log."),
    json_out: Optional[str] = options.json_option,
    force: bool = options.force_option,
    quiet: bool = options.quiet_option,
) -> None:
    """Build a serialized TensorRT engine at a chosen precision and check that the engine really uses it."""
    from dataclasses import replace

    from infertool.engine.build import HARDWARE_COMPAT, BuildOptions, parse_size, profiles_for
    from infertool.engine.build import build_engine as run_build
    from infertool.engine.profiles import parse_profiles
    from infertool.engine.tensorrt_api import tensorrt
    from infertool.errors import InfertoolError
    from infertool.files import check_output
    from infertool.specs import parse_named_shapes

    if hardware_compat not in HARDWARE_COMPAT:
        raise InfertoolError(f"unknown --hardware-compat '{hardware_compat}'", hint=f"choose from {', '.join(HARDWARE_COMPAT)}")
    check_output(output, force)
    tensorrt()  # fail first, naming the extra, where TensorRT is missing
    if not model.is_file():
        raise InfertoolError(f"model file {model} not found", hint="check the path")
    requests = parse_profiles(min_shapes or [], opt_shapes or [], max_shapes or [])
    profiles, notes = profiles_for(model, requests, parse_named_shapes(input_shape or []), batch)
    calib = None
    if calib_data is not None:
        path = None if calib_data == "random" else Path(calib_data)
        calib = options.input_options(path, "random", input_shape, seed, int_range, preprocess, None, None, None, None, False, None)
    settings = BuildOptions(
        precision=precision, profiles=profiles, workspace=parse_size(workspace) if workspace else None, opt_level=opt_level,
        timing_cache=timing_cache, version_compatible=version_compatible, hardware_compat=hardware_compat, verbose=verbose,
        calib=calib, calib_method=calib_method, calib_samples=calib_samples, device=device, force=force,
    )
    with RichReporter(quiet) as reporter:
        for note in notes:
            reporter.note(note)
        result = run_build(model, output, settings, reporter)
    result = replace(result, notes=(*notes, *result.notes))
    show(result, json_out, force, render.build_result)


def register(app: typer.Typer) -> None:
    app.command("build-engine")(build_engine)
