"""`infertool bench`: latency, throughput, memory and output agreement, side by side."""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import shlex
import stat
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import List, Optional

import typer

from infertool.cli import backend_options, parse
from infertool.cli.console import RichReporter, emit_json, emit_text, out, warn
from infertool.cli.groups import Device, Generated, Image, Inputs, Limits, Output, Truth, command, data_options, read_args
from infertool.cli.perf import Perf, group_args
from infertool.errors import CheckFailed, InfertoolError, first_line
from infertool.measure.timing import MAX_SAMPLES, MAX_SECONDS
from infertool.text import printable, shorten

BackendOptions = backend_options.NONE  # every backend's own options, once bench runs (with_backend_options)


@dataclass
class Timing:
    warmup: str = typer.Option("200ms", "--warmup", metavar="N|Tms|Ts", help="Warm-up: iterations (10) or time (200ms; at least 3 iterations).")
    iterations: int = typer.Option(100, "--iterations", "-n", min=1, max=MAX_SAMPLES, help="Timed iterations, at least.")
    duration: float = typer.Option(1.0, "--duration", min=0.0, help=f"Timed seconds, at least (0: iterations alone; at most {MAX_SECONDS} s, {MAX_SAMPLES:,} iterations).")


@dataclass
class Runtime:
    io_binding: bool = typer.Option(True, "--io-binding/--no-io-binding", help="On GPU backends also time device-resident inputs/outputs (IO binding).")
    cuda_graph: bool = typer.Option(False, "--cuda-graph", help="Capture and replay a CUDA graph (ort-cuda and trt, with IO binding; trt-rtx: its whole-graph capture strategy).")
    save_optimized: Optional[Path] = typer.Option(None, "--save-optimized", help="Save the graph ORT optimized for the first ORT backend (of the first model).")


@dataclass
class Agreement:
    reference: Optional[Path] = typer.Option(None, "--reference", help="ONNX model whose ort-cpu outputs are the reference [default: the first MODEL]; e.g. the fp32 original of a quantized model.")
    check: bool = typer.Option(True, "--check/--no-check", help="Compare every backend's outputs with the reference (mismatch: exit 1).")
    atol: Optional[float] = typer.Option(None, "--atol", help="Agreement tolerance override [default: by precision].")
    rtol: Optional[float] = typer.Option(None, "--rtol", help="Agreement tolerance override [default: by precision].")
    min_cosine: Optional[float] = typer.Option(None, "--min-cosine", help="Cosine similarity that passes regardless of atol/rtol [default: by precision].")


@dataclass
class Gate:
    baseline: Optional[Path] = typer.Option(None, "--baseline", help="A previous --json result to gate against.")
    max_regression: str = typer.Option("10%", "--max-regression", metavar="PERCENT", help="Slowdown over the baseline that fails the gate (exit 1), with its % sign: 10%, 0.5%.")
    max_cv: Optional[str] = typer.Option(None, "--max-cv", metavar="PERCENT", help="Leave rows whose coefficient of variation (now or in the baseline) exceeds this out of the verdict, e.g. 5%.")
    gate_stat: str = typer.Option("median", "--gate-stat", metavar="median|mean|p90|p95|p99|min", help="Statistic the gate compares.")


@dataclass
class Compare:
    label: Optional[List[str]] = typer.Option(None, "--label", metavar="NAME[,NAME]", help="Short names of the models, in order (repeatable) (default: the file names).")
    baseline_row: Optional[str] = typer.Option(None, "--baseline-row", metavar="MODEL|BACKEND|MODEL:BACKEND", help="The row speedups are measured against, at each batch (default: the first model's first backend).")


@dataclass
class Reports:
    csv_out: Optional[str] = typer.Option(
        None, "--csv", metavar="[PATH]",
        help="One CSV line per row (model, sha256, shapes, threads, time included): to stdout with a bare --csv (or --csv -), else to PATH.",
    )
    markdown_out: Optional[str] = typer.Option(
        None, "--markdown", metavar="[PATH]",
        help="A Markdown table (also appended to $GITHUB_STEP_SUMMARY when set): to stdout with a bare --markdown, else to PATH.",
    )
    save_samples: bool = typer.Option(False, "--save-samples", help="Keep every iteration's time (ns) in the JSON, as trtexec --exportTimes (infertool report draws their distribution).")


def _gate(gate: Gate):
    from infertool.pipelines.bench import GateOptions
    from infertool.records.gate import GATE_STATS

    regression, stat = parse.regression(gate.max_regression), parse.choice(gate.gate_stat, GATE_STATS, "--gate-stat")
    max_cv = parse.percentage(gate.max_cv, "--max-cv") if gate.max_cv is not None else None
    return GateOptions(gate.baseline, regression, stat, max_cv) if gate.baseline is not None else None


def _options(backend, batch, shapes, skip, force, given: SimpleNamespace):
    """BenchOptions from the command's arguments; `given` holds its option groups by name."""
    from infertool.backends.base import RunnerOptions
    from infertool.measure.timing import Budget
    from infertool.pipelines.bench import BenchOptions

    timing, agreement, perf, generated = given.timing, given.agreement, given.perf, given.generated
    runner = RunnerOptions(
        device=given.device.device, io_binding=given.runtime.io_binding, cuda_graph=given.runtime.cuda_graph, timeout=given.limits.seconds(),
        groups=given.backend_options.to_groups(),
    )
    shape_sets = parse.shape_sets(generated.input_shape or [], shapes or [])
    fixed = dataclasses.replace(generated, input_shape=None) if shape_sets else generated  # each set holds the fixed shapes
    return BenchOptions(
        backends=tuple(dict.fromkeys(backend or ["ort-cpu"])), batches=parse.batches(batch), shape_sets=shape_sets,
        inputs=given.inputs.to_options(fixed, given.image), warmup=parse.warmup(timing.warmup),
        measure=Budget(timing.iterations, parse.finite(timing.duration, "--duration", 0, MAX_SECONDS)), runner=runner,
        reference=agreement.reference, check_outputs=agreement.check, atol=parse.finite(agreement.atol, "--atol"),
        rtol=parse.finite(agreement.rtol, "--rtol"), min_cosine=parse.finite(agreement.min_cosine, "--min-cosine", -math.inf),
        gate=_gate(given.gate), save_optimized=given.runtime.save_optimized, force=force, skip_unavailable=skip, ground_truth=given.truth.labels_csv,
        model_labels=parse.names(given.compare.label, unique=False), baseline_row=given.compare.baseline_row,
        save_samples=given.reports.save_samples, profile=perf.profile_top if perf.profile else 0, concurrency=perf.concurrency, isolate=perf.isolate,
    )


def _targets(output: Output, reports: Reports) -> dict[str, str]:
    """--json / --csv / --markdown given, by option; one of them at most may take stdout."""
    targets = {name: value for name, value in (("--json", output.json_out), ("--csv", reports.csv_out), ("--markdown", reports.markdown_out)) if value}
    to_stdout = [name for name, value in targets.items() if value == "-"]
    if len(to_stdout) > 1:
        raise InfertoolError(f"{' and '.join(to_stdout)} both write to stdout", hint="give all but one of them a PATH")
    return targets


def _check_not_read(targets: dict[str, str], models: list[Path], given: SimpleNamespace) -> None:
    """No output (--json, --csv, --markdown, a cache or graph saved) is a file bench reads."""
    from infertool.files import check_not_read

    outputs = {**targets, "--save-optimized": given.runtime.save_optimized, **given.backend_options.files("out")}
    inputs = {**{f"the model {i + 1}" if len(models) > 1 else "the model": m for i, m in enumerate(models)},
              "--inputs": parse.data_file(given.inputs.inputs), "--baseline": given.gate.baseline, "--reference": given.agreement.reference,
              "--labels-csv": given.truth.labels_csv, "--tune-precision": parse.data_file(given.perf.tune_precision), **given.backend_options.files("in")}
    check_not_read(outputs, inputs)


def _append_step_summary(text: str) -> None:
    """Add the Markdown to $GITHUB_STEP_SUMMARY, a regular file (CI's, not an output of this
    command): a pipe or a device is refused without blocking, with a warning."""
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if not summary:
        return
    shown = shorten(printable(summary), 80)
    try:
        handle = os.fdopen(os.open(summary, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK, 0o644), "a", encoding="utf-8")
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        warn(f"cannot append to $GITHUB_STEP_SUMMARY ({shown}): {getattr(exc, 'strerror', None) or first_line(exc)}")
        return
    with handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            warn(f"$GITHUB_STEP_SUMMARY ({shown}) is not a regular file (a pipe or a device): nothing appended")
            return
        handle.write(text + "\n")


def _emit(result, output: Output, reports: Reports) -> None:
    from infertool.cli.show import bench as show_bench
    from infertool.cli.show import perf as show_perf
    from infertool.present.bench import bench_csv, bench_markdown

    targets = _targets(output, reports)
    if output.json_out:
        emit_json(result.to_dict(), output.json_out, output.force)
    if reports.csv_out:
        emit_text(bench_csv(result), reports.csv_out, output.force)
    if reports.markdown_out:
        text = bench_markdown(result)
        emit_text(text, reports.markdown_out, output.force)
        _append_step_summary(text)
    if "-" not in targets.values():
        show_bench.bench_tables(result, out)
        show_perf.tables(result, out)
    for warning in result.warnings:
        warn(warning)


GIVEN = ("compare", "inputs", "generated", "image", "timing", "runtime", "agreement", "gate", "device", "reports", "truth", "limits", "perf", "backend_options")
REPRODUCED = ("inputs", "generated", "image", "timing", "agreement", "device", "limits")  # the groups a tuned configuration keeps as given


def _read(values: dict):
    """(the option groups by name, BenchOptions) of the command's arguments."""
    given = SimpleNamespace(**{name: values[name] for name in GIVEN})
    return given, _options(values["backend"], values["batch"], values["shapes"], values["skip_unavailable"], values["output"].force, given)


def given_groups(argv: list[str], what: str) -> SimpleNamespace:
    """bench's option groups as `infertool bench ARGV` reads them, running nothing (for `to_argv`)."""
    values = read_args(_with_every_backend(), argv, what)
    return SimpleNamespace(**{name: values[name] for name in GIVEN})


def settings(argv: list[str], what: str = "bench arguments"):
    """`infertool bench ARGV` read into (models, BenchOptions) as the command reads it, running nothing."""
    values = read_args(_with_every_backend(), argv, what)
    return values["model"], _read(values)[1]


def to_argv(found, given: SimpleNamespace) -> list[str]:
    """The `bench` arguments measuring a configuration `bench --tune` found (pipelines/tune.Reproduce), the
    command's other settings as `given`: `settings` reads them back to the same options (tested)."""
    from infertool.backends import registry

    options = found.options
    runtime = Runtime(io_binding=options.io_binding, cuda_graph=options.cuda_graph, save_optimized=None)
    groups = options.only(registry.get(found.backend).option_group).groups  # the other backends' options: refused on a bench of this one alone
    args = [str(found.model), "--backend", found.backend, "--batch", str(found.batch)]
    for group in (*(getattr(given, name) for name in REPRODUCED), runtime, type(given.backend_options).from_groups(groups)):
        args += group_args(group)
    if found.source is not None and given.agreement.reference is None:
        args += ["--reference", str(found.source)]
    return args


def reproduce(found, given: SimpleNamespace) -> str:
    """The command line reproducing a tuned configuration: the step making its graph first, where it has one."""
    bench = shlex.join(["infertool", "bench", *to_argv(found, given)])
    if found.step is not None:
        return f"{shlex.join(found.step)} && {bench}"
    if found.graph is None:
        return bench
    precision, target = found.graph
    made = ["infertool", "quantize", str(found.source), "-p", precision, "--target", target, "--calib-data", str(given.perf.tune_precision),
            *group_args(given.generated), *group_args(given.image), "-o", str(found.model), "--force"]
    return f"{shlex.join(made)} && {bench}"


def _tuner(given: SimpleNamespace):
    """bench --tune's row measurement, which writes the command line reproducing what it found."""
    from infertool.pipelines.tune import TuneOptions, tuner

    if given.perf.isolate:
        raise InfertoolError("--tune measures its best and its defaults each alone in a fresh process already", hint="drop --isolate")
    budget = parse.seconds(given.perf.tune_budget, "--tune-budget")
    if not given.agreement.check:
        raise InfertoolError("--tune with --no-check would report configurations whose outputs are wrong", hint="drop --no-check")
    calibration = data_options(given.perf.tune_precision, "--tune-precision", given.generated, given.image, ())
    if calibration is not None and not calibration.path.exists():
        raise InfertoolError(f"--tune-precision {shorten(calibration.path)} not found", hint="give calibration inputs: .npz, .npy, a .pb folder, images or audio")
    return tuner(TuneOptions(budget, functools.partial(reproduce, given=given), calibration))


def bench(
    model: List[Path] = typer.Argument(..., help="ONNX model, or several versions of one (fp32.onnx fp16.onnx int8.onnx) compared in one table."),
    backend: Optional[List[str]] = typer.Option(
        None, "--backend", "-b", metavar="NAME",
        help="Backend to run (repeatable; the first is the speedup baseline; `infertool doctor` lists them; "
        "trt and ort-trt have not been run on real TensorRT here) [default: ort-cpu].",
    ),
    skip_unavailable: bool = typer.Option(
        False, "--skip-unavailable", help="Run the backends that can run here and note the others, instead of failing (one CI config for CPU and GPU runners).",
    ),
    batch: Optional[str] = typer.Option(None, "--batch", metavar="N[,N...]", help="Batch sizes to sweep: one row per size (the model's batch must be dynamic)."),
    shapes: Optional[List[str]] = typer.Option(
        None, "--shapes", metavar="NAME:DIMS[,NAME:DIMS...]",
        help="One set of input shapes per row, trtexec style; repeat to sweep, e.g. --shapes ids:1x32,mask:1x32 --shapes ids:1x128,mask:1x128.",
    ),
    compare: Compare = None, inputs: Inputs = None, generated: Generated = None, image: Image = None, timing: Timing = None, runtime: Runtime = None,
    agreement: Agreement = None, gate: Gate = None, device: Device = None, reports: Reports = None,
    truth: Truth = None, limits: Limits = None, perf: Perf = None, backend_options: BackendOptions = None,
    output: Output = None,
) -> None:
    """Benchmark ONNX models on one or more backends: latency statistics, throughput, memory, output agreement."""
    given, settings = _read(dict(locals()))
    from infertool.files import check_output
    from infertool.pipelines.bench import run_bench

    if perf.tune_precision and not perf.tune:
        raise InfertoolError("--tune-precision is a dimension of --tune", hint="add --tune")
    row_measure = _tuner(given) if perf.tune else None
    targets = {flag: target for flag, target in _targets(output, reports).items() if target != "-"}
    _check_not_read(targets, model, given)
    for target in targets.values():
        check_output(Path(target), output.force)
    with RichReporter(output.quiet) as reporter:
        try:
            result = run_bench(model, settings, reporter, row_measure)
        except CheckFailed as failure:
            if failure.result is not None:
                _emit(failure.result, output, reports)
            raise
    _emit(result, output, reports)


def register(app: typer.Typer) -> None:
    app.command("bench")(command(bench))


def _with_every_backend():
    """The bench command with every backend's own options (loading them imports every backend)."""
    global BackendOptions
    BackendOptions = backend_options.group("bench")
    return command(bench)


def with_backend_options(app: typer.Typer) -> None:
    """bench with every backend's own options: loading them imports every backend, so only a bench that runs does."""
    declared = next(c for c in app.registered_commands if c.name == "bench")
    declared.callback = _with_every_backend()
