"""`infertool optimize`: the fastest deployable model within an accuracy budget, in one command."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import List, Optional

import typer

from infertool.cli import parse
from infertool.cli.console import RichReporter, show, showing_failed_checks
from infertool.cli.groups import MAX_SAMPLES, Calibration, Generated, Image, Limits, Output, Truth, command, data_options
from infertool.cli.perf import group_args
from infertool.errors import CheckFailed

MAX_SECONDS = 7 * 24 * 3600.0


@command
def optimize(
    model: Path = typer.Argument(..., help="The ONNX model (fp32 for precision graphs to be made from it)."),
    result_path: Path = typer.Option(
        ..., "--output", "-o", help="The pick to write: an ONNX graph (.onnx), or an engine (.engine, with its sidecar) built by the engine backend; OUT.reproduce.sh beside it rebuilds it.",
    ),
    backend: Optional[List[str]] = typer.Option(None, "--backend", "-b", metavar="NAME[,NAME]", help="Backends to deploy on (repeatable) [default: ort-cpu]."),
    candidates: Optional[str] = typer.Option(
        None, "--candidates", metavar="NAME[,NAME]",
        help="Graphs to try: the model's precision (the model as given) and fp16, bf16, int8-qdq, int8-ort, int8-dyn, fp8 [default: the model and every graph the backends run].",
    ),
    max_accuracy_drop: Optional[str] = typer.Option(
        None, "--max-accuracy-drop", metavar="X%", help="Budget: top-1 against --labels-csv at most X points below the model's own (e.g. 1%).",
    ),
    min_cosine: Optional[float] = typer.Option(
        None, "--min-cosine", help="Budget: quantize's gate with this cosine (every output of every evaluation sample) [default: each precision's tolerance].",
    ),
    time_budget: str = typer.Option("10m", "--budget", metavar="T", help="Time for the whole search (e.g. 90s, 10m); what it leaves out is said, one step at most past it."),
    batch: Optional[int] = typer.Option(None, "--batch", min=1, help="Batch the candidates are timed at [default: the model's, else 1]."),
    objective: str = typer.Option("latency", "--objective", metavar="latency|throughput", help="What ranks the candidates: median latency at --batch, or samples per second at --batch."),
    resume: bool = typer.Option(False, "--resume", help="Reuse the candidates made and judged by an earlier run with the same model and settings (kept in infertool's cache); timings are measured again."),
    tune: bool = typer.Option(True, "--tune/--no-tune", help="Tune each candidate's runtime settings (bench --tune's search, a share of the time budget each)."),
    duration: float = typer.Option(1.0, "--duration", metavar="SECONDS", help="Timing per candidate and backend, after a warm-up."),
    rescue: bool = typer.Option(True, "--rescue/--no-rescue", help="Rescue a graph that misses the budget with debug precision's keep list."),
    eval_data: Optional[str] = typer.Option(None, "--eval-data", metavar="PATH|random", help="Held-out samples the budget is judged on [default: generated]."),
    eval_samples: int = typer.Option(8, "--eval-samples", min=1, max=MAX_SAMPLES, help="Generated evaluation samples."),
    eval_backend: str = typer.Option("ort-cpu", "--eval-backend", metavar="NAME", help="Backend that runs the model and each graph for the budget (as quantize's)."),
    report_path: Optional[Path] = typer.Option(None, "--report", metavar="PATH.html", help="Also write an HTML report: every candidate and accuracy against latency (the `report` extra)."),
    calibration: Calibration = None, truth: Truth = None, generated: Generated = None, image: Image = None, limits: Limits = None, output: Output = None,
) -> None:
    """Make every precision graph the backends run from MODEL, judge each against the accuracy budget on held-out data (rescuing
    a graph that misses it with debug precision's keep list), time those within it with bench, and write the fastest.
    Exit 1, nothing written, where no candidate meets the budget."""
    from infertool.cli.show.optimize import optimize_result
    from infertool.errors import InfertoolError
    from infertool.pipelines.optimize import optimize as run_optimize

    if result_path.suffix not in (".onnx", ".engine", ".plan"):
        raise InfertoolError(f"output {result_path} should end in .onnx (a graph) or .engine (an engine)", hint="e.g. -o model.opt.onnx")
    if max_accuracy_drop is not None and min_cosine is not None:
        raise InfertoolError("give one budget: --max-accuracy-drop or --min-cosine", hint="the budget is the one threshold that decides")
    given = {"calibration": calibration, "generated": generated, "image": image, "truth": truth, "limits": limits}
    data = {"eval_data": eval_data or "random", "eval_samples": eval_samples, "eval_backend": eval_backend}
    search = {"candidates": candidates, "budget": time_budget, "batch": batch, "duration": duration, "rescue": rescue, "objective": objective, "tune": tune, "resume": resume}
    request = _options(model, result_path, backend, max_accuracy_drop, min_cosine, search, data, given, output.force)
    if report_path is not None:
        _check_report(report_path, output.force)
    try:
        with showing_failed_checks(output.json_out, output.force, optimize_result), RichReporter(output.quiet) as reporter:
            result = run_optimize(model, request, reporter)
    except CheckFailed as failure:  # nothing met the budget: the report still says why
        if report_path is not None and failure.result is not None:
            _write_report(report_path, failure.result, output.force)
        raise
    if report_path is not None:
        _write_report(report_path, result, output.force)
    show(result, output.json_out, output.force, optimize_result)


def _check_report(path: Path, force: bool) -> None:
    from infertool.errors import InfertoolError
    from infertool.files import check_output
    from infertool.optional import require

    if path.suffix.lower() not in (".html", ".htm"):
        raise InfertoolError(f"--report {path} should end in .html", hint="e.g. --report optimize.html")
    check_output(path, force)
    require("matplotlib", "optimize --report")


def _write_report(path: Path, result, force: bool) -> None:
    from infertool.cli.console import emit_text
    from infertool.present.optimize import report_html

    emit_text(report_html(result), str(path), force)


def _options(model, result_path, backend, max_drop, min_cosine, search: dict, data: dict, given: dict, force: bool):
    """OptimizeOptions from the command's arguments."""
    import math
    from dataclasses import replace

    from infertool.backends import registry
    from infertool.backends.base import RunnerOptions
    from infertool.cli.bench import reproduce
    from infertool.measure.timing import Budget
    from infertool.pipelines.bench import BenchOptions
    from infertool.pipelines.optimize import OBJECTIVES, OptimizeOptions
    from infertool.pipelines.quantize import QuantizeOptions
    from infertool.precision.settings import PrecisionSettings
    from infertool.records.optimize import AccuracyBudget

    calibration, generated, image, limits = given["calibration"], given["generated"], given["image"], given["limits"]
    backends = parse.names(backend or ["ort-cpu"])
    for name in (*backends, data["eval_backend"]):
        registry.get(name)
    budget = AccuracyBudget(
        parse.percentage(max_drop, "--max-accuracy-drop") if max_drop is not None else None, parse.finite(min_cosine, "--min-cosine", -math.inf, 1.0),
    )
    inputs = data_options("random", "--input-shape", generated, image)
    conversion = QuantizeOptions(
        output=result_path, settings=PrecisionSettings("fp16", calib_method=calibration.calib_method, replace_cache=force),
        calib=calibration.to_options(generated, image) or inputs, calib_samples=calibration.calib_samples,
        eval=data_options(data["eval_data"], "--eval-data", generated, image), eval_samples=data["eval_samples"], generated=inputs,
        eval_backend=data["eval_backend"], min_cosine=budget.min_cosine, timeout=limits.seconds(), labels=given["truth"].labels_csv,
        criterion="auto" if budget.min_cosine is None else "values",  # the cosine decides, not a class output's arg-max
    )
    duration = parse.finite(search["duration"], "--duration", 0, MAX_SECONDS)
    bench = BenchOptions(batches=(search["batch"],), inputs=inputs, measure=Budget(100, duration), runner=RunnerOptions(timeout=limits.seconds()))
    request = OptimizeOptions(
        result_path, conversion, bench, budget, backends, parse.names([search["candidates"]]) if search["candidates"] else None, search["rescue"],
        parse.seconds(search["budget"], "--budget"), parse.choice(search["objective"], OBJECTIVES, "--objective"), search["tune"], search["resume"], force=force,
    )
    groups = _bench_groups(model, duration, given)
    return replace(
        request, reproduce=lambda candidate, run, runner: _script(model, request, candidate, run, runner, data, given, groups),
        tuned_command=lambda found: reproduce(found, groups),
    )


def _bench_groups(model: Path, duration: float, given: dict):
    """bench's option groups as `infertool bench MODEL` with optimize's data and timing options reads them:
    what the bench lines of tuned configurations keep as given."""
    from infertool.cli.bench import given_groups

    shared = [*group_args(given["generated"]), *group_args(given["image"]), *group_args(given["limits"])]
    return given_groups([str(model), "--duration", repr(duration), *shared], "optimize's bench settings")


def _quantize_line(model: Path, out: str, request, candidate, data: dict, given: dict) -> list[str]:
    """The quantize command making a candidate's graph at OUT, judged as optimize judged it."""
    quantize = ["infertool", "quantize", str(model), "-p", candidate.precision]
    if candidate.precision not in ("fp16", "bf16"):  # Q/DQ shaped for a runtime
        quantize += ["--target", candidate.target]
    if candidate.precision in ("int8", "fp8"):
        quantize += [*group_args(given["calibration"]), *([] if given["calibration"].calib_data else ["--calib-data", "random"])]
    for name in candidate.kept:
        quantize += ["--exclude-nodes", name]
    quantize += ["--eval-data", data["eval_data"], "--eval-samples", str(data["eval_samples"]), "--eval-backend", data["eval_backend"]]
    quantize += group_args(given["truth"]) + group_args(given["limits"])
    if request.budget.min_cosine is not None:
        quantize += ["--min-cosine", repr(request.budget.min_cosine), "--criterion", "values"]
    elif request.budget.max_drop is not None:  # the budget is top-1 against the labels, which quantize reports; its gate is agreement
        quantize += ["--no-gate"]
    return [*quantize, *group_args(given["generated"]), *group_args(given["image"]), "-o", out, "--force"]


def _script(model: Path, request, candidate, run, runner, data: dict, given: dict, groups) -> str:
    """The plain infertool commands that rebuild the pick, and the bench line timing it with its tuned
    settings against the model as given (run from where optimize ran)."""
    from infertool.backends.tensorrt import EngineOptions
    from infertool.cli.bench import to_argv
    from infertool.pipelines.tune import Reproduce

    out, backend = str(request.output), run.backend
    graph = str(request.output.with_suffix(".graph.onnx")) if request.engine else out
    if candidate.given:
        made = [] if request.engine else [f"cp -- {shlex.quote(str(model))} {shlex.quote(out)}"]
        graph = str(model) if request.engine else graph
    else:
        made = [shlex.join(_quantize_line(model, graph, request, candidate, data, given))]
    batch = request.bench.batches[0]
    if request.engine:
        opt_level = runner.group(EngineOptions).opt_level
        level = ["--opt-level", str(opt_level)] if opt_level is not None else []
        built = ["infertool", "build-engine", graph, "-b", backend, *(["--batch", str(batch)] if batch else []), *level,
                 *group_args(given["generated"]), "-o", out, "--force"]
        made.append(shlex.join(built))
    timed = to_argv(Reproduce(backend, run.decisive.batch if run.decisive else batch or 1, Path(graph), runner), groups)
    against = [] if candidate.given else [str(model), "--label", f"{candidate.name},model", "--baseline-row", "model", "--no-check"]
    lines = [
        "#!/bin/sh",
        f"# Rebuilds {out}: infertool optimize picked {candidate.name} on {backend} within the budget ({request.budget.describe()}).",
        "# Run it from the folder infertool optimize ran in; the bench line times it with the settings optimize tuned.",
        "set -e", *made, shlex.join(["infertool", "bench", timed[0], *against, *timed[1:]]),
    ]
    return "\n".join(lines) + "\n"


def register(app: typer.Typer) -> None:
    app.command()(optimize)
