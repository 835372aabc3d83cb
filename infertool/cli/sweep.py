"""`infertool sweep`: a grid of bench runs from a YAML spec, one isolated process per cell, on local
devices or a Ray cluster, sharded across SLURM arrays, Kubernetes Indexed Jobs or CI matrices."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from infertool.cli import parse
from infertool.cli.console import RichReporter, show, showing_failed_checks
from infertool.cli.groups import Output, command
from infertool.cli.show.sweep import sweep_result
from infertool.errors import InfertoolError
from infertool.text import printable, shorten

SPEC_HELP = """Run a grid of benchmarks described by SPEC (YAML); each cell is one `infertool bench` process writing OUT/cells/ID.json.

\b
models:                  # paths relative to the spec
  - fp32.onnx
  - {path: other.onnx, label: other}
precisions: fp32, fp16, int8   # optional: quantized versions made first (default: as-is)
backends: ort-cpu, ort-cuda    # default: ort-cpu
batches: 1, 8, 32              # optional
shapes: x:1x3x224x224          # optional: --input-shape sets (a list per set for several inputs)
devices: 0, 1                  # optional: run every cell on each of these GPUs
bench_args: --iterations 200   # optional: more bench options
quantize_args: --calib-data random
(a key takes one value, values separated by commas, or a YAML list)

Shards: --shard i/N, or taken from SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT, INFERTOOL_SHARD=i/N (a CI matrix) or JOB_COMPLETION_INDEX with --shards N (a Kubernetes Indexed Job).
Merge the results with `infertool report OUT -o report.html`."""


def shard_from(text: str | None, count: int | None, environ: dict):
    """--shard i/N, else the batch system's variables; None: every cell."""
    from infertool.pipelines.sweep import Shard

    if text:
        return Shard(*parse.shard(text), "--shard")
    if environ.get("INFERTOOL_SHARD"):
        return Shard(*parse.shard(environ["INFERTOOL_SHARD"], "INFERTOOL_SHARD"), "INFERTOOL_SHARD")
    if environ.get("SLURM_ARRAY_TASK_ID"):
        task, first = (_variable(environ, name) for name in ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_MIN"))
        total = count or _variable(environ, "SLURM_ARRAY_TASK_COUNT")
        if total is None:
            raise InfertoolError("SLURM_ARRAY_TASK_ID is set but not SLURM_ARRAY_TASK_COUNT", hint="pass --shards N, the array's size")
        return Shard(*parse.shard(f"{task - (first or 0)}/{total}", "shard from SLURM_ARRAY_TASK_ID"), "SLURM_ARRAY_TASK_ID")
    if environ.get("JOB_COMPLETION_INDEX"):
        if count is None:
            raise InfertoolError("JOB_COMPLETION_INDEX is set (a Kubernetes Indexed Job) but not the number of shards", hint="pass --shards N, the Job's completions")
        return Shard(*parse.shard(f"{environ['JOB_COMPLETION_INDEX']}/{count}", "shard from JOB_COMPLETION_INDEX"), "JOB_COMPLETION_INDEX")
    if count is not None:
        raise InfertoolError("--shards N takes the shard's index from JOB_COMPLETION_INDEX, SLURM_ARRAY_TASK_ID or INFERTOOL_SHARD; none is set", hint="or give --shard i/N")
    return None


def _variable(environ: dict, name: str) -> int | None:
    """A batch system's variable as a whole number; None where it is not set."""
    if not environ.get(name):
        return None
    value = parse.whole(environ[name])
    if value is None:
        raise InfertoolError(f"{name} is {shorten(printable(environ[name]), 24)!r}, not a whole number", hint=f"unset {name} or give --shard i/N")
    return value


def cell_options(bench_args: tuple[str, ...], shapes: tuple[str, ...]):
    """A cell's BenchOptions: the spec's bench_args read as `bench` reads its arguments, with the cell's input shapes."""
    from infertool.cli.bench import settings

    shape_args = [part for shape in shapes for part in ("--input-shape", shape)]
    return settings(["MODEL", *bench_args, *shape_args], "the spec's bench_args")[1]


def quantize_options(quantize_args: tuple[str, ...], precision: str, output: Path):
    """The QuantizeOptions making a sweep's quantized version: the spec's quantize_args read as `quantize` reads its arguments."""
    from infertool.cli.quantize import settings

    return settings(["MODEL", "-p", precision, "-o", str(output), "--force", *quantize_args], "the spec's quantize_args")


@command
def sweep(
    spec: Path = typer.Argument(..., help="The sweep spec (YAML)."),
    out: Optional[Path] = typer.Option(None, "--output", "-o", help="Folder for the results (default: SPEC's name + '-results', beside it)."),
    shard: Optional[str] = typer.Option(None, "--shard", metavar="i/N", help="Run shard i of N (0-based): cell k runs in shard k mod N."),
    shards: Optional[int] = typer.Option(None, "--shards", min=1, help="N shards, this one's index from the batch system (JOB_COMPLETION_INDEX, SLURM_ARRAY_TASK_ID)."),
    resume: bool = typer.Option(False, "--resume", help="Skip cells whose result is already in the output folder (failed cells run again)."),
    retries: int = typer.Option(1, "--retries", min=0, help="Attempts after a failed one, per cell (a crash, a timeout, an error exit)."),
    cell_timeout: float = typer.Option(3600.0, "--cell-timeout", min=1.0, help="Seconds one attempt of a cell may take."),
    executor: str = typer.Option("local", "--executor", metavar="local|ray", help="local: processes on this machine, one per device at a time; ray: tasks on a Ray cluster."),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster address (e.g. auto, or ray://host:10001) (default: start a local Ray)."),
    devices: Optional[str] = typer.Option(None, "--devices", metavar="N|i,j", help="Device slots to spread cells over (default: CUDA_VISIBLE_DEVICES, else every GPU NVML sees; without GPUs one cell at a time)."),
    list_cells: bool = typer.Option(False, "--list", help="List this shard's cells and their IDs; run nothing."),
    output: Output = None,
) -> None:
    from infertool.pipelines.sweep import SweepOptions
    from infertool.pipelines.sweep import sweep as run_sweep

    options = SweepOptions(
        output=out or spec.parent / f"{spec.stem}-results", bench_options=cell_options, quantize_options=quantize_options, shard=shard_from(shard, shards, dict(os.environ)), resume=resume, force=output.force,
        retries=retries, timeout=cell_timeout, executor=parse.choice(executor, ("local", "ray"), "--executor"), address=address,
        devices=parse.devices(devices) if devices else None, list_only=list_cells,
    )
    with showing_failed_checks(output.json_out, output.force, sweep_result), RichReporter(output.quiet) as reporter:
        result = run_sweep(spec, options, reporter)
    show(result, output.json_out, output.force, sweep_result)


sweep.__doc__ = SPEC_HELP


def register(app: typer.Typer) -> None:
    app.command()(sweep)
