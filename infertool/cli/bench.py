"""`infertool bench`: latency, throughput, memory and output agreement, side by side."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import typer

from infertool.cli import parse, render, render_perf
from infertool.cli.console import RichReporter, emit_json, err, out
from infertool.cli.groups import Device, Generated, Image, Inputs, Output, command
from infertool.cli.perf import Perf, Source
from infertool.errors import CheckFailed


@dataclass
class Timing:
    warmup: str = typer.Option("200ms", "--warmup", metavar="N|Tms|Ts", help="Warm-up: iterations (10) or time (200ms; at least 3 iterations).")
    iterations: int = typer.Option(100, "--iterations", "-n", min=1, help="Timed iterations, at least.")
    duration: float = typer.Option(1.0, "--duration", min=0.0, help="Timed seconds, at least (0: iterations alone).")


@dataclass
class Ort:
    threads: Optional[int] = typer.Option(None, "--threads", min=0, help="ORT intra-op threads [default: ORT's choice].")
    inter_op_threads: Optional[int] = typer.Option(None, "--inter-op-threads", min=0, help="ORT inter-op threads (sets parallel execution).")
    graph_opt: str = typer.Option("all", "--graph-opt", metavar="all|extended|basic|disable", help="ORT graph optimization level.")
    execution_mode: Optional[str] = typer.Option(None, "--execution-mode", metavar="sequential|parallel", help="ORT execution mode [default: parallel with --inter-op-threads, else sequential].")
    ort_option: Optional[List[str]] = typer.Option(None, "--ort-option", metavar="KEY=VALUE", help="Execution provider option, e.g. prefer_nhwc=1 (repeatable).")
    io_binding: bool = typer.Option(True, "--io-binding/--no-io-binding", help="On GPU backends also time device-resident inputs/outputs (IO binding).")
    cuda_graph: bool = typer.Option(False, "--cuda-graph", help="Capture and replay a CUDA graph (ort-cuda and trt, with IO binding).")
    save_optimized: Optional[Path] = typer.Option(None, "--save-optimized", help="Save the graph ORT optimized for the first ORT backend.")


@dataclass
class Engine:
    trt_precision: Optional[str] = typer.Option(None, "--trt-precision", metavar="fp32|fp16|bf16|best", help="trt backend: engine precision [default: what the ONNX graph carries, so both runtimes run the same graph].")
    workspace: Optional[str] = typer.Option(None, "--workspace", metavar="SIZE", help="trt backend: workspace limit, MiB (4096) or 512M / 4G.")
    opt_level: Optional[int] = typer.Option(None, "--opt-level", min=0, max=5, help="trt backend: builder optimization level.")
    timing_cache: Optional[Path] = typer.Option(None, "--timing-cache", help="trt backend: timing cache to load and save.")
    engine: Optional[Path] = typer.Option(None, "--engine", help="trt backend: run this prebuilt engine instead of building one.")
    engine_cache: Optional[Path] = typer.Option(None, "--engine-cache", help="trt backend: folder of cached engines [default: ~/.cache/infertool/engines].")


@dataclass
class Agreement:
    reference: Optional[Path] = typer.Option(None, "--reference", help="ONNX model whose ort-cpu outputs are the reference [default: MODEL]; e.g. the fp32 original of a quantized model.")
    check: bool = typer.Option(True, "--check/--no-check", help="Compare every backend's outputs with the reference (mismatch: exit 1).")
    atol: Optional[float] = typer.Option(None, "--atol", help="Agreement tolerance override [default: by precision].")
    rtol: Optional[float] = typer.Option(None, "--rtol", help="Agreement tolerance override [default: by precision].")
    min_cosine: Optional[float] = typer.Option(None, "--min-cosine", help="Cosine similarity that passes regardless of atol/rtol [default: by precision].")


@dataclass
class Gate:
    baseline: Optional[Path] = typer.Option(None, "--baseline", help="A previous --json result to gate against.")
    max_regression: str = typer.Option("10%", "--max-regression", help="Slowdown over the baseline that fails the gate (exit 1).")
    gate_stat: str = typer.Option("median", "--gate-stat", metavar="median|mean|p90|p95|p99|min", help="Statistic the gate compares.")


@dataclass
class Reports:
    csv_out: Optional[Path] = typer.Option(None, "--csv", help="Write one CSV line per row.")
    markdown_out: Optional[Path] = typer.Option(None, "--markdown", help="Write a Markdown table (also appended to $GITHUB_STEP_SUMMARY when set).")


def _options(backend, batch, inputs, generated, image, timing, ort, engine, agreement, gate, device, force, perf, source):
    from infertool.backends.base import EngineOptions, OrtOptions, RunnerOptions
    from infertool.backends.onnxruntime import EXECUTION_MODES, OPTIMIZATION_LEVELS
    from infertool.measure.gate import GATE_STATS
    from infertool.measure.timing import Budget
    from infertool.pipelines.bench import BenchOptions, GateOptions

    regression, stat = parse.regression(gate.max_regression), parse.choice(gate.gate_stat, GATE_STATS, "--gate-stat")
    gate_options = GateOptions(gate.baseline, regression, stat) if gate.baseline is not None else None
    runner = RunnerOptions(
        device=device.device, io_binding=ort.io_binding, cuda_graph=ort.cuda_graph,
        ort=OrtOptions(ort.threads, ort.inter_op_threads, parse.choice(ort.graph_opt, OPTIMIZATION_LEVELS, "--graph-opt"),
                       parse.provider_options(ort.ort_option or []),
                       ort.execution_mode and parse.choice(ort.execution_mode, EXECUTION_MODES, "--execution-mode")),
        engine=EngineOptions(engine.trt_precision, parse.size(engine.workspace) if engine.workspace else None, engine.opt_level,
                             engine.timing_cache, engine.engine, engine.engine_cache),
        source=source.to_options(),
    )
    return BenchOptions(
        backends=tuple(dict.fromkeys(backend or ["ort-cpu"])), batches=parse.batches(batch),
        inputs=inputs.to_options(generated, image), warmup=parse.warmup(timing.warmup),
        measure=Budget(timing.iterations, timing.duration), runner=runner, reference=agreement.reference,
        check_outputs=agreement.check, atol=agreement.atol, rtol=agreement.rtol, min_cosine=agreement.min_cosine,
        gate=gate_options, save_optimized=ort.save_optimized, force=force,
        profile=perf.profile_top if perf.profile else 0, concurrency=perf.concurrency,
    )


def _emit(result, output: Output, reports: Reports) -> None:
    from infertool.files import write_text_atomic

    if output.json_out:
        emit_json(result.to_dict(), output.json_out, output.force)
    if reports.csv_out:
        write_text_atomic(reports.csv_out, render.bench_csv(result), output.force)
    if reports.markdown_out:
        text = render.bench_markdown(result)
        write_text_atomic(reports.markdown_out, text, output.force)
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary:
            with open(summary, "a", encoding="utf-8") as handle:
                handle.write(text + "\n")
    if output.json_out != "-":
        render.bench_tables(result, out)
        render_perf.tables(result, out)
    for warning in result.warnings:
        err.print(f"[yellow]warning:[/] {render.escape(warning)}", highlight=False)


@command
def bench(
    model: Path = typer.Argument(..., help="ONNX model."),
    backend: Optional[List[str]] = typer.Option(None, "--backend", "-b", help="Backend to run (repeatable; the first is the speedup baseline; `infertool doctor` lists them) [default: ort-cpu]."),
    batch: Optional[str] = typer.Option(None, "--batch", metavar="N[,N...]", help="Batch sizes to sweep, one row each (the model's batch must be dynamic)."),
    inputs: Inputs = None, generated: Generated = None, image: Image = None, timing: Timing = None, ort: Ort = None,
    engine: Engine = None, agreement: Agreement = None, gate: Gate = None, device: Device = None, reports: Reports = None,
    perf: Perf = None, source: Source = None, output: Output = None,
) -> None:
    """Benchmark an ONNX model on one or more backends: latency statistics, throughput, memory, output agreement."""
    from infertool.files import check_output
    from infertool.pipelines.bench import run_bench

    settings = _options(backend, batch, inputs, generated, image, timing, ort, engine, agreement, gate, device, output.force, perf, source)
    row_measure = None
    if perf.tune:
        from infertool.cli.perf import reproduce
        from infertool.pipelines.tune import TuneOptions, tuner

        groups = {"inputs": inputs, "generated": generated, "image": image, "timing": timing, "agreement": agreement, "device": device}
        row_measure = tuner(TuneOptions(parse.seconds(perf.tune_budget, "--tune-budget"), reproduce(groups, Ort, engine, source)))
    for path in (output.json_path, reports.csv_out, reports.markdown_out):
        if path is not None:
            check_output(path, output.force)
    with RichReporter(output.quiet) as reporter:
        try:
            result = run_bench(model, settings, reporter, row_measure)
        except CheckFailed as failure:
            if failure.result is not None:
                _emit(failure.result, output, reports)
            raise
    _emit(result, output, reports)


def register(app: typer.Typer) -> None:
    app.command()(bench)
