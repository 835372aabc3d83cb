"""What `bench` prints: latency, models, device timings, memory, start-up, agreement, accuracy, gate."""

from __future__ import annotations

from rich.console import Console

from infertool.cli.console import escape
from infertool.cli.show.grid import TEXT, Column, grid, mark, present, shapes_text
from infertool.present.bench import MODE_LABELS, row_precision, timing
from infertool.present.numbers import cosine, error, failing, ms, percent, sig
from infertool.stats import throughput
from infertool.text import byte_size

Section = tuple  # (title, columns, rows, caption): the arguments of grid()


# the model column shows where one bench compares several models (the title names a single one)
KEYS = [Column("model", TEXT, shared=""), Column("backend", TEXT, shared="{}"), Column("batch", shared="batch {}"), Column("inputs", TEXT, shared="inputs {}")]


def row_keys(row) -> list[str]:
    return [escape(row.model or ""), row.backend, str(row.batch), shapes_text(row.input_shapes)]


def _latency(result) -> Section:
    model = result.model
    several = len({(r.model, r.backend) for r in result.rows}) > 1
    columns = [*KEYS, Column("prec", TEXT, shared="{}"), Column("timed", TEXT, shared="timed {}"), Column("median ms"),
               Column("p90", drop=3), Column("p99", drop=1), Column("CV"), Column("samples/s", drop=2)]
    columns += [Column("speedup")] if several else []
    rows = []
    for row in result.rows:
        stats = row.latency
        cv = f"{stats.cv:.1%}" if not stats.noisy else f"[yellow]{stats.cv:.1%}[/]"
        cells = [*row_keys(row), row_precision(row, model), MODE_LABELS[row.latency_mode], ms(stats.median), ms(stats.p90), ms(stats.p99),
                 cv, sig(throughput(stats, row.batch)["samples_per_s"], thousands=True)]
        rows.append(cells + (["-" if row.speedup is None else f"{row.speedup:.2f}x"] if several else []))
    modes = {r.latency_mode for r in result.rows}
    timed = [text for mode, text in (("end_to_end", "e2e = host arrays in and out"), ("device_resident", "device = inputs and outputs kept on the GPU (IO binding)")) if mode in modes]
    caption = f"ms per inference, percentiles by nearest rank; timed {', '.join(timed)}" + (
        f"; speedup over {escape(_baseline_name(result))} at the same inputs" if several else ""
    )
    title = "latency" if len(result.models) > 1 else f"{escape(model['path'])}  ({model.get('precision_label', model['precision'])}, opset {model['opset']}, {byte_size(model['bytes'])})"
    return title, columns, rows, caption


def _models(result) -> Section | None:
    if len(result.models) < 2:
        return None
    columns = [Column("model", TEXT), Column("file", TEXT), Column("prec", TEXT), Column("opset"), Column("size"), Column("sha256", TEXT, drop=1)]
    rows = [[escape(m["label"]), escape(m["path"]), m.get("precision_label", m["precision"]), str(m["opset"]), byte_size(m["bytes"]), m["sha256"][:12]]
            for m in result.models]
    return "models", columns, rows, None


def _baseline_name(result) -> str:
    """The baseline row the bench recorded (records/speedup.py)."""
    from infertool.records.speedup import Baseline

    recorded = Baseline.read(result.settings.get("speedup_baseline")) or Baseline()
    first = result.rows[0]
    return recorded.describe() if recorded != Baseline() else f"{first.model} {first.backend}" if len(result.models) > 1 else first.backend


def _split(result) -> Section | None:
    if not any(len(r.timings) > 1 for r in result.rows):
        return None
    modes = ("end_to_end", "device_resident", "gpu_compute", "gpu_h2d", "gpu_d2h")
    columns = [*KEYS, Column("e2e"), Column("device"), Column("GPU compute"), Column("GPU H2D"), Column("GPU D2H")]
    rows = [[*row_keys(row), *(ms(timing(row, m)) for m in modes)] for row in result.rows]
    return ("where the time goes (median ms): copies vs device work", *present(columns, rows),
            "GPU columns are CUDA-event times on the runtime's stream")


def _memory(result) -> Section | None:
    keys = {"host_rss_increase_bytes": "host RSS peak +", "gpu_bytes": "GPU memory +", "engine_bytes": "engine", "device_memory_bytes": "engine device mem"}
    shown = [k for k in keys if any(r.memory.get(k) is not None for r in result.rows)]
    if not shown:
        return None
    rows = [[*row_keys(row), *("-" if row.memory.get(k) is None else byte_size(row.memory[k]) for k in shown)] for row in result.rows]
    return "memory", [*KEYS, *(Column(keys[k]) for k in shown)], rows, None


def _agreement(result) -> Section | None:
    """Rows checked against another runtime or model, and any that failed: a passing check of the
    reference runtime against itself carries nothing."""
    checked = [r for r in result.rows if r.agreement is not None and not (r.agreement.self_check and r.agreement.passed)]
    if not checked:
        return None
    columns = [*KEYS, Column("output", TEXT, shared="output {}"), Column("rule", TEXT, shared="rule {}", drop=3),
               Column("max abs err", drop=2), Column("worst cosine"), Column("top-1", drop=1), Column("failing"), Column("result")]
    rows = [
        [*row_keys(row), escape(a.name), escape(f"{row.agreement.precision}: {a.rule}"), error(a.max_abs),
         cosine(a.cosine), percent(a.top1), failing(a), mark(a.passed)]
        for row in checked for a in row.agreement.outputs
    ]
    return (f"output agreement with {escape(checked[0].agreement.reference)} (same inputs, each sample judged)", *present(columns, rows),
            "failing: samples of the batch outside the rule (a NaN/Inf or all-zero output always fails); worst cosine: the worst sample's")


def _startup(result) -> Section | None:
    """Load and first-inference times, apart from the steady state (TensorRT-RTX compiles kernels then)."""
    if not any(r.startup for r in result.rows):
        return None
    jit = any(r.settings.get("jit_context_ms") is not None for r in result.rows)
    columns = [*KEYS, Column("load ms"), *([Column("of which JIT ms")] if jit else []), Column("first inference ms")]
    rows = [
        [*row_keys(row), ms(row.startup.get("load_ms")), *([ms(row.settings.get("jit_context_ms"))] if jit else []), ms(row.startup.get("first_inference_ms"))]
        for row in result.rows
    ]
    return "start-up (not in the latencies above)", *present(columns, rows), None


def _task_accuracy(result) -> Section | None:
    labelled = [r for r in result.rows if r.accuracy is not None]
    if not labelled:
        return None
    first = labelled[0].accuracy
    columns = [*KEYS, Column("prec", TEXT, shared="{}"), Column("samples"), Column("top-1"), Column("top-5")]
    rows = [[*row_keys(r), row_precision(r, result.model), str(r.accuracy.samples), percent(r.accuracy.top1), percent(r.accuracy.top5)] for r in labelled]
    return f"accuracy against {escape(first.labels)} (ground truth; output '{escape(first.output)}')", *present(columns, rows), None


GATE_STATUS = {"ok": "[green]ok[/]", "regressed": "[red]REGRESSED[/]", "not compared": "[yellow]not compared[/]", "left out": "[yellow]left out (noisy)[/]"}


def gate_section(gate) -> Section:
    columns = [Column("machine", TEXT, shared=""), *KEYS[:3], Column("baseline ms"), Column("now ms"), Column("change"), Column("result", TEXT)]
    rows = [
        [escape(r.machine or ""), escape(r.model or ""), r.backend, str(r.batch), ms(r.baseline_ms), ms(r.current_ms),
         "-" if r.change is None else f"{r.change:+.1%}", GATE_STATUS[r.status]]
        for r in gate.rows
    ]
    noise = "" if gate.max_cv is None else f", rows over CV {gate.max_cv:.1%} left out"
    return f"regression gate vs {escape(gate.baseline)} ({gate.stat}, limit +{gate.max_regression * 100:g}%{noise})", columns, rows, None


def bench_tables(result, console: Console) -> None:
    sections = [_models(result), _latency(result), _split(result), _memory(result), _startup(result), _agreement(result), _task_accuracy(result)]
    if result.gate is not None:
        sections.append(gate_section(result.gate))
    for index, section in enumerate(s for s in sections if s is not None):
        if index:
            console.print()
        grid(console, *section)
    lines = [f"[yellow]gate note:[/] {escape(note)}" for note in (result.gate.notes if result.gate else ())]
    lines += [f"[yellow]skipped {escape(s['backend'])}:[/] {escape(s['reason'])}" for s in result.skipped]
    lines += [f"[yellow]note:[/] {escape(note)}" for note in result.notes]
    for line in lines:
        console.print(line, highlight=False)
