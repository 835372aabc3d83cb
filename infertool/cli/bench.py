"""`infertool bench`: latency, throughput, memory and output agreement, side by side."""

from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional

import typer

from infertool.cli import options, render
from infertool.cli.console import RichReporter, emit_json, err, out
from infertool.errors import CheckFailed, InfertoolError


def parse_batches(text: str | None) -> tuple[int | None, ...]:
    if not text:
        return (None,)
    batches = []
    for part in text.split(","):
        if not part.strip().isdigit() or int(part) < 1:
            raise InfertoolError(f"malformed --batch '{text}': '{part.strip()}' is not a batch size >= 1", hint="e.g. --batch 1,8,32")
        batches.append(int(part))
    return tuple(dict.fromkeys(batches))


def bench(
    model: Path = typer.Argument(..., help="ONNX model."),
    backend: Optional[List[str]] = typer.Option(None, "--backend", "-b", help="ort-cpu, ort-cuda, ort-trt, trt (repeatable; the first is the speedup baseline) [default: ort-cpu]."),
    batch: Optional[str] = typer.Option(None, "--batch", metavar="N[,N...]", help="Batch sizes to sweep, one row each (the model's batch must be dynamic)."),
    inputs: Optional[Path] = options.inputs_option,
    input_data: str = options.input_data_option,
    input_shape: Optional[List[str]] = options.input_shape_option,
    seed: int = options.seed_option,
    int_range: str = options.int_range_option,
    warmup: str = typer.Option("200ms", "--warmup", metavar="N|Tms|Ts", help="Warm-up: iterations (10) or time (200ms; at least 3 iterations)."),
    iterations: int = typer.Option(100, "--iterations", "-n", min=1, help="Timed iterations, at least."),
    duration: float = typer.Option(1.0, "--duration", min=0.0, help="Timed seconds, at least (0: iterations alone)."),
    threads: Optional[int] = typer.Option(None, "--threads", min=0, help="ORT intra-op threads [default: ORT's choice]."),
    inter_op_threads: Optional[int] = typer.Option(None, "--inter-op-threads", min=0, help="ORT inter-op threads (sets parallel execution)."),
    graph_optimization: str = typer.Option("all", "--graph-opt", metavar="all|extended|basic|disable", help="ORT graph optimization level."),
    ort_option: Optional[List[str]] = typer.Option(None, "--ort-option", metavar="KEY=VALUE", help="Execution provider option, e.g. prefer_nhwc=1 (repeatable)."),
    io_binding: bool = typer.Option(True, "--io-binding/--no-io-binding", help="On GPU backends also time device-resident inputs/outputs (IO binding)."),
    cuda_graph: bool = typer.Option(False, "--cuda-graph", help="Capture and replay a CUDA graph (ort-cuda, with IO binding)."),
    device: int = typer.Option(0, "--device", min=0, help="CUDA device index."),
    save_optimized: Optional[Path] = typer.Option(None, "--save-optimized", help="Save the graph ORT optimized for the first ORT backend."),
    trt_precision: Optional[str] = typer.Option(None, "--trt-precision", metavar="fp32|fp16|bf16|best", help="trt backend: engine precision [default: what the ONNX graph carries, so both runtimes run the same graph]."),
    workspace: Optional[str] = typer.Option(None, "--workspace", metavar="SIZE", help="trt backend: workspace limit, MiB (4096) or 512M / 4G."),
    opt_level: Optional[int] = typer.Option(None, "--opt-level", min=0, max=5, help="trt backend: builder optimization level."),
    timing_cache: Optional[Path] = typer.Option(None, "--timing-cache", help="trt backend: timing cache to load and save."),
    engine: Optional[Path] = typer.Option(None, "--engine", help="trt backend: run this prebuilt engine instead of building one."),
    engine_cache: Optional[Path] = typer.Option(None, "--engine-cache", help="trt backend: folder of cached engines [default: ~/.cache/infertool/engines]."),
    reference: Optional[Path] = typer.Option(None, "--reference", help="ONNX model whose ort-cpu outputs are the reference [default: MODEL]; e.g. the fp32 original of a quantized model."),
    check: bool = typer.Option(True, "--check/--no-check", help="Compare every backend's outputs with the reference (mismatch: exit 1)."),
    atol: Optional[float] = typer.Option(None, "--atol", help="Agreement tolerance override [default: by precision]."),
    rtol: Optional[float] = typer.Option(None, "--rtol", help="Agreement tolerance override [default: by precision]."),
    min_cosine: Optional[float] = typer.Option(None, "--min-cosine", help="Cosine similarity that passes regardless of atol/rtol [default: by precision]."),
    baseline: Optional[Path] = typer.Option(None, "--baseline", help="A previous --json result to gate against."),
    max_regression: str = typer.Option("10%", "--max-regression", help="Slowdown over the baseline that fails the gate (exit 1)."),
    gate_stat: str = typer.Option("median", "--gate-stat", metavar="median|mean|p90|p95|p99|min", help="Statistic the gate compares."),
    preprocess: str = options.preprocess_option,
    resize: Optional[int] = options.resize_option,
    crop: Optional[str] = options.crop_option,
    mean: Optional[str] = options.mean_option,
    std: Optional[str] = options.std_option,
    bgr: bool = options.bgr_option,
    layout: Optional[str] = options.layout_option,
    json_out: Optional[str] = options.json_option,
    csv_out: Optional[Path] = typer.Option(None, "--csv", help="Write one CSV line per row."),
    markdown_out: Optional[Path] = typer.Option(None, "--markdown", help="Write a Markdown table (also appended to $GITHUB_STEP_SUMMARY when set)."),
    force: bool = options.force_option,
    quiet: bool = options.quiet_option,
) -> None:
    """Benchmark an ONNX model on one or more backends: latency statistics, throughput, memory, output agreement."""
    from infertool.bench.core import BenchOptions, run_bench
    from infertool.bench.gate import GATE_STATS, gate, load_baseline, parse_regression
    from infertool.bench.timing import Budget
    from infertool.files import check_output, write_text_atomic
    from infertool.runners import RunnerOptions, check_name
    from infertool.engine.build import parse_size
    from infertool.runners.ort import OPTIMIZATION_LEVELS, OrtOptions, parse_provider_options, save_optimized_model
    from infertool.runners.trt import TrtOptions

    backends = tuple(dict.fromkeys(backend or ["ort-cpu"]))
    for name in backends:
        check_name(name)
    if graph_optimization not in OPTIMIZATION_LEVELS:
        raise InfertoolError(f"unknown --graph-opt '{graph_optimization}'", hint=f"choose from {', '.join(OPTIMIZATION_LEVELS)}")
    if gate_stat not in GATE_STATS:
        raise InfertoolError(f"unknown --gate-stat '{gate_stat}'", hint=f"choose from {', '.join(GATE_STATS)}")
    if cuda_graph and not any(b == "trt" or (b != "ort-cpu" and io_binding) for b in backends):
        raise InfertoolError("--cuda-graph needs a GPU backend (with IO binding for ORT)", hint="add --backend ort-cuda or trt, and drop --no-io-binding")
    regression = parse_regression(max_regression)
    baseline_data = load_baseline(baseline) if baseline else None
    for path in (Path(json_out) if json_out and json_out != "-" else None, csv_out, markdown_out):
        if path is not None:
            check_output(path, force)
    if not model.is_file():
        raise InfertoolError(f"model file {model} not found", hint="check the path")
    if model.suffix == ".engine":
        raise InfertoolError(
            "bench takes the ONNX model, so every backend runs the same graph",
            hint=f"infertool bench MODEL.onnx --backend trt --engine {model}",
        )
    ort_options = OrtOptions(
        intra_op_threads=threads, inter_op_threads=inter_op_threads, graph_optimization=graph_optimization,
        provider_options=parse_provider_options(ort_option or []), io_binding=io_binding, cuda_graph=cuda_graph,
    )
    settings = BenchOptions(
        backends=backends,
        batches=parse_batches(batch),
        inputs=options.input_options(inputs, input_data, input_shape, seed, int_range, preprocess, resize, crop, mean, std, bgr, layout),
        warmup=Budget.parse_warmup(warmup),
        measure=Budget(iterations, duration),
        runner=RunnerOptions(device=device, ort=ort_options, trt=TrtOptions(
            precision=trt_precision, workspace=parse_size(workspace) if workspace else None, opt_level=opt_level,
            timing_cache=timing_cache, engine=engine, cache_dir=engine_cache, cuda_graph=cuda_graph,
        )),
        reference=reference,
        check_outputs=check,
        atol=atol, rtol=rtol, min_cosine=min_cosine,
    )
    with RichReporter(quiet) as reporter:
        if save_optimized is not None:
            first_ort = next((b for b in backends if b.startswith("ort-")), None)
            if first_ort is None:
                raise InfertoolError("--save-optimized needs an ORT backend")
            save_optimized_model(model, first_ort, ort_options, device, save_optimized, force)
            reporter.note(f"saved the graph optimized for {first_ort} to {save_optimized}")
        result = run_bench(model, settings, reporter)
    if baseline_data is not None:
        from dataclasses import replace

        result = replace(result, gate=gate(result, baseline_data, baseline, regression, gate_stat))
    payload = result.to_dict()
    if json_out:
        emit_json(payload, json_out, force)
    if csv_out:
        write_text_atomic(csv_out, render.bench_csv(result), force)
    if markdown_out:
        text = render.bench_markdown(result)
        write_text_atomic(markdown_out, text, force)
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary:
            with open(summary, "a", encoding="utf-8") as handle:
                handle.write(text + "\n")
    if json_out != "-":
        render.bench_tables(result, out)
    for warning in result.warnings:
        err.print(f"[yellow]warning:[/] {render.escape(warning)}", highlight=False)
    failed = [r for r in result.rows if r.agreement is not None and not r.agreement.passed]
    if failed:
        raise CheckFailed(
            f"outputs disagree with the reference: {', '.join(f'{r.backend} batch {r.batch}' for r in failed)}",
            hint="see the agreement table; loosen --atol/--rtol/--min-cosine only if the difference is expected",
        )
    if result.gate is not None and not result.gate.passed:
        slower = [r for r in result.gate.rows if r.regressed]
        raise CheckFailed(
            "performance regression: " + ", ".join(f"{r.backend} batch {r.batch} {r.change:+.1%}" for r in slower)
            + f" (limit {regression:.0%} on {gate_stat})",
        )


def register(app: typer.Typer) -> None:
    app.command()(bench)
