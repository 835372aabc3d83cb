"""Results -> tables that fit the terminal (JSON comes from each result's to_dict()).

No table cuts a number: a column that carries nothing is left out, a value every row shares moves
into the heading, and when the table is still too wide the least needed columns go, then each row
is shown as a list of fields. Numbers keep one style per column: times in ms with 5 significant
digits (as trtexec), errors in e-notation, cosines with 6 decimals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from infertool.cli.console import escape
from infertool.stats import throughput
from infertool.tensors import format_shape
from infertool.text import byte_size

NUM, TEXT = "num", "text"
COMFORTABLE = 20  # text columns narrower than this make way for droppable columns first
MODE_LABELS = {"end_to_end": "e2e", "device_resident": "device"}


# ---------------------------------------------------------------- numbers


def sig(value: float | None, digits: int = 5, thousands: bool = False) -> str:
    """Fixed point with `digits` significant digits (all of the integer part): 0.013123, 16.123, 1234.5."""
    if value is None or not math.isfinite(value):
        return "-" if value is None or math.isnan(value) else str(value)
    if value == 0:
        return "0"
    rounded = float(f"{value:.{digits}g}")
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(rounded))))
    shown = rounded if decimals else value
    return f"{shown:,.{decimals}f}" if thousands else f"{shown:.{decimals}f}"


def ms(value: float | None) -> str:
    return sig(value)


def error(value: float | None) -> str:
    """Absolute / relative errors: 0, or e-notation with 3 significant digits."""
    if value is None or math.isnan(value):
        return "-"
    return "0" if value == 0 else f"{value:.2e}"


def cosine(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.6f}"


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def general(value: float | None) -> str:
    """Values of any magnitude (output ranges): 5 significant digits, e-notation where needed."""
    return "-" if value is None or value != value else f"{value:.5g}"


def _mark(ok: bool) -> str:
    return "[green]ok[/]" if ok else "[red]FAIL[/]"


def shapes_text(shapes: dict) -> str:
    return ", ".join(f"{escape(name)} {format_shape(shape)}" for name, shape in shapes.items())


# ---------------------------------------------------------------- fitting tables


@dataclass(frozen=True)
class Column:
    name: str
    kind: str = NUM  # NUM: right-aligned, never wrapped; TEXT: left-aligned, wraps between words
    shared: str | None = None  # a value every row shares goes into the heading, formatted so ("batch {}")
    drop: int = 0  # when too wide, the highest goes first; 0: stays


def _cell_range(text: str, kind: str) -> tuple[int, int]:
    plain = Text.from_markup(text).plain
    widest = max((Text(line).cell_len for line in plain.splitlines()), default=0)
    if kind == NUM:
        return widest, widest
    return max((Text(word).cell_len for word in plain.split()), default=0), widest


def _ranges(columns: list[Column], rows: list[list[str]], squeeze: bool) -> list[tuple[int, int]]:
    """(narrowest, widest) width of each column without cutting a word or a number; unless
    `squeeze`, text keeps COMFORTABLE columns before it wraps."""
    found = []
    for index, column in enumerate(columns):
        header = _cell_range(column.name, TEXT)
        cells = [_cell_range(row[index], column.kind) for row in rows]
        lo, hi = max([header[0], *(c[0] for c in cells)]), max([header[1], *(c[1] for c in cells)])
        found.append((lo if squeeze or column.kind == NUM else max(lo, min(hi, COMFORTABLE)), hi))
    return found


def _table(columns: list[Column], rows: list[list[str]], widths: list[int]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0))
    for column, width in zip(columns, widths):
        # a width at least each number's keeps numbers whole; headers may wrap between words
        table.add_column(column.name, justify="right" if column.kind == NUM else "left", width=width, overflow="fold")
    for row in rows:
        table.add_row(*row)
    return table


def _fitted(console: Console, columns: list[Column], rows: list[list[str]], squeeze: bool) -> Table | None:
    """The table at the console's width, or None when its narrowest layout is too wide."""
    ranges = _ranges(columns, rows, squeeze)
    narrow = [lo for lo, _ in ranges]
    unbounded = console.options.update_width(sum(hi for _, hi in ranges) + 4 * len(columns) + 4)
    overhead = console.measure(_table(columns, rows, narrow), options=unbounded).maximum - sum(narrow)
    slack = console.width - overhead - sum(narrow)
    if slack < 0:
        return None
    widths = list(narrow)
    for index, (lo, hi) in enumerate(ranges):  # room for headers and text to spread, left to right
        extra = min(hi - lo, slack)
        widths[index] += extra
        slack -= extra
    return _table(columns, rows, widths)


def _shared(columns: list[Column], rows: list[list[str]]) -> tuple[list[Column], list[list[str]], list[str]]:
    """Move columns whose value every row shares into the heading."""
    keep, heading = [], []
    for index, column in enumerate(columns):
        values = {row[index] for row in rows}
        if column.shared is not None and len(values) == 1 and rows:
            if column.shared:  # an empty format hides a shared value (the title says it)
                heading.append(column.shared.format(values.pop()))
        else:
            keep.append(index)
    return [columns[i] for i in keep], [[row[i] for i in keep] for row in rows], heading


def _stacked(console: Console, columns: list[Column], rows: list[list[str]]) -> None:
    """One block per row, one field per line: for terminals too narrow for the table."""
    for number, row in enumerate(rows):
        block = Table(box=None, show_header=False, pad_edge=False, padding=(0, 2, 0, 0))
        block.add_column(no_wrap=True, style="bold")
        block.add_column(overflow="fold")
        for column, value in zip(columns, row):
            block.add_row(column.name, value)
        console.print(block)
        if number < len(rows) - 1:
            console.print()


def _dropping(console: Console, columns: list[Column], rows: list[list[str]]) -> Table | None:
    """Leave out droppable columns, the least needed first, until the table fits; text wraps only
    once nothing is left to drop."""
    shown, cells = list(columns), [list(row) for row in rows]
    while any(c.drop for c in shown):
        index = shown.index(max(shown, key=lambda c: c.drop))
        del shown[index]
        for row in cells:
            del row[index]
        table = _fitted(console, shown, cells, squeeze=False)
        if table is not None:
            return table
    return _fitted(console, shown, cells, squeeze=True)


def grid(console: Console, title: str, columns: list[Column], rows: list[list[str]], caption: str | None = None) -> None:
    """`rows` of markup strings under `columns`, fitted to the console (see the module's docstring)."""
    columns, rows, heading = _shared(columns, rows)
    console.print(Text.from_markup(title + ("\n" + ", ".join(heading) if heading else ""), style="italic"))
    table = _fitted(console, columns, rows, squeeze=False) or _dropping(console, columns, rows)
    if table is None:
        _stacked(console, columns, rows)
    else:
        console.print(table)
    if caption:
        console.print(Text.from_markup(caption, style="dim"))


def pairs(console: Console, title: str, items: list[tuple[str, str]]) -> None:
    """A heading and `name  value` lines (values wrap)."""
    console.print(Text.from_markup(title, style="italic"))
    table = Table(box=None, show_header=False, pad_edge=False, padding=(0, 2, 0, 0))
    table.add_column(no_wrap=True, style="bold")
    table.add_column(overflow="fold")
    for name, value in items:
        table.add_row(name, value)
    console.print(table)


def present(columns: list[Column], rows: list[list[str]]) -> tuple[list[Column], list[list[str]]]:
    """Leave out the columns with nothing but '-'."""
    keep = [i for i in range(len(columns)) if any(row[i] != "-" for row in rows)]
    return [columns[i] for i in keep], [[row[i] for i in keep] for row in rows]


# ---------------------------------------------------------------- convert, doctor


def convert_result(result, console: Console) -> None:
    items = [("exporter", f"{result.framework} / {result.exporter}, opset {result.opset}, {result.seconds:.1f} s")]
    if result.output.path:
        extra = " + external data" if result.output.external_data else ""
        items.append(("file", f"{byte_size(result.output.bytes)}{extra}, sha256 {result.output.sha256[:16]}"))
    items += [("input", f"{escape(s.name)}  {s.dtype}  {format_shape(s.shape)}") for s in result.inputs]
    items += [("output", f"{escape(s.name)}  {s.dtype}  {format_shape(s.shape)}") for s in result.outputs]
    items += [("note", escape(note)) for note in result.notes]
    pairs(console, f"{escape(result.source)} → {escape(str(result.output.path or '(not written)'))}", items)
    report = result.validation
    if report is None:
        console.print("validation: skipped (--no-validate)")
        return
    columns = [Column("batch", shared="batch {}"), Column("varied", TEXT, shared="varied {}", drop=2), Column("output", TEXT, shared="output {}"),
               Column("max abs err"), Column("max rel err", drop=1), Column("cosine"), Column("failing", drop=3), Column("result")]
    rows = [
        [str(b.batch), escape("-" if b.varied is None else f"{b.varied[0]} {b.varied[1]} → {b.varied[2]}"), escape(a.name),
         error(a.max_abs), error(a.max_rel), cosine(a.cosine), failing(a), _mark(a.passed)]
        for b in report.batches for a in b.outputs
    ]
    title = (f"validation: checker ok, shape inference ok; ONNX Runtime (CPU) vs {escape(report.reference)}, each sample within "
             f"{report.atol:g} x max|ref| + {report.rtol:g} x |ref|")
    console.print()
    grid(console, title, columns, rows)
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)


def doctor_report(result, console: Console) -> None:
    report = result.to_dict()
    rows = [["python", report["python"], escape(report["platform"])], ["cpu", f"{report['cpu_count']} cores", escape(report["cpu"])]]
    for component in report["components"]:
        rows.append([component["name"], component["version"] or "[red]not installed[/]", escape(component["detail"] or component["hint"])])
    for gpu in report["gpus"]:
        rows.append([
            f"gpu {gpu['index']}", escape(gpu["name"]),
            f"{gpu['memory_total_mb']} MiB, sm {gpu['compute_capability']}, driver {gpu['driver']} (CUDA {gpu['cuda_driver']})",
        ])
    if not report["gpus"]:
        rows.append(["gpu", "[yellow]none[/]", escape(report["gpu_note"])])
    grid(console, "infertool doctor", [Column("component", TEXT), Column("version", TEXT), Column("details", TEXT)], rows)
    backends = [
        [b["name"], "[green]available[/]" if b["ok"] else "[red]unavailable[/]", escape(b["reason"] or b["description"])]
        for b in report["backends"]
    ]
    console.print()
    grid(console, "backends", [Column("backend", TEXT), Column("status", TEXT), Column("details", TEXT)], backends)
    for warning in report["warnings"]:
        console.print(f"[yellow]warning:[/] {escape(warning)}")


# ---------------------------------------------------------------- bench


# the model column shows where one bench compares several models (the title names a single one)
KEYS = [Column("model", TEXT, shared=""), Column("backend", TEXT, shared="{}"), Column("batch", shared="batch {}"), Column("inputs", TEXT, shared="inputs {}")]


def row_keys(row) -> list[str]:
    return [escape(row.model or ""), row.backend, str(row.batch), shapes_text(row.input_shapes)]


def _timing(row, mode: str, stat: str = "median") -> float | None:
    stats = row.timings.get(mode)
    return None if stats is None else getattr(stats, stat)


def _precision(row, model: dict) -> str:
    """The row's precision; for the graph's own, its label (int8-qdq, int8-ort, int8-dyn)."""
    return model.get("precision_label", row.precision) if row.precision == model["precision"] else row.precision


Section = tuple  # (title, columns, rows, caption): the arguments of grid()


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
        cells = [*row_keys(row), _precision(row, model), MODE_LABELS[row.latency_mode], ms(stats.median), ms(stats.p90), ms(stats.p99),
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
    first = next((r for r in result.rows if r.speedup is not None and abs(r.speedup - 1) < 1e-12), result.rows[0])
    return f"{first.model} {first.backend}" if len(result.models) > 1 else first.backend


def _split(result) -> Section | None:
    if not any(len(r.timings) > 1 for r in result.rows):
        return None
    modes = ("end_to_end", "device_resident", "gpu_compute", "gpu_h2d", "gpu_d2h")
    columns = [*KEYS, Column("e2e"), Column("device"), Column("GPU compute"), Column("GPU H2D"), Column("GPU D2H")]
    rows = [[*row_keys(row), *(ms(_timing(row, m)) for m in modes)] for row in result.rows]
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
         cosine(a.cosine), percent(a.top1), failing(a), _mark(a.passed)]
        for row in checked for a in row.agreement.outputs
    ]
    return (f"output agreement with {escape(checked[0].agreement.reference)} (same inputs, each sample judged)", *present(columns, rows),
            "failing: samples of the batch outside the rule (a NaN/Inf or all-zero output always fails); worst cosine: the worst sample's")


def failing(agreement) -> str:
    """'k/N' samples failing one output, with the worst sample where some fail."""
    shown = f"{len(agreement.failing)}/{agreement.samples}"
    return shown + (f" (worst {agreement.worst})" if agreement.failing and agreement.worst is not None and agreement.samples > 1 else "")


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
    rows = [[*row_keys(r), _precision(r, result.model), str(r.accuracy.samples), percent(r.accuracy.top1), percent(r.accuracy.top5)] for r in labelled]
    return f"accuracy against {escape(first.labels)} (ground truth; output '{escape(first.output)}')", *present(columns, rows), None


GATE_STATUS = {"ok": "[green]ok[/]", "regressed": "[red]REGRESSED[/]", "not compared": "[yellow]not compared[/]", "left out": "[yellow]left out (noisy)[/]"}


def _gate(gate) -> Section:
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
        sections.append(_gate(result.gate))
    for index, section in enumerate(s for s in sections if s is not None):
        if index:
            console.print()
        grid(console, *section)
    lines = [f"[yellow]gate note:[/] {escape(note)}" for note in (result.gate.notes if result.gate else ())]
    lines += [f"[yellow]skipped {escape(s['backend'])}:[/] {escape(s['reason'])}" for s in result.skipped]
    lines += [f"[yellow]note:[/] {escape(note)}" for note in result.notes]
    for line in lines:
        console.print(line, highlight=False)


CSV_COLUMNS = (
    "backend", "batch", "precision", "latency_mode", "median_ms", "mean_ms", "min_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms",
    "std_ms", "cv", "iterations", "inferences_per_s", "samples_per_s", "speedup", "end_to_end_median_ms",
    "device_resident_median_ms", "gpu_compute_median_ms", "model_file_bytes", "host_rss_increase_bytes", "gpu_bytes",
    "agreement_passed", "max_abs_err", "min_cosine",
    # against --labels-csv (ground truth)
    "top1_accuracy", "top5_accuracy",
    # which run a row comes from, so rows appended from several runs can be told apart
    "input_shapes", "precision_label", "threads", "model", "sha256", "timestamp",
    # the model's label where one bench compares several
    "model_label",
)


def bench_csv(result) -> str:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in result.rows:
        data = row.to_dict()
        lat = data["latency_ms"]
        outputs = row.agreement.outputs if row.agreement else ()
        writer.writerow([
            row.backend, row.batch, row.precision, row.latency_mode, lat["median"], lat["mean"], lat["min"], lat["p90"],
            lat["p95"], lat["p99"], lat["max"], lat["std"], lat["cv"], lat["count"], data["throughput"]["inferences_per_s"],
            data["throughput"]["samples_per_s"], data["speedup"],
            *(_timing(row, m) for m in ("end_to_end", "device_resident", "gpu_compute")),
            row.memory.get("model_file_bytes"), row.memory.get("host_rss_increase_bytes"), row.memory.get("gpu_bytes"),
            None if row.agreement is None else row.agreement.passed,
            max((a.max_abs for a in outputs), default=None), min((a.cosine for a in outputs), default=None),
            None if row.accuracy is None else row.accuracy.top1, None if row.accuracy is None else row.accuracy.top5,
            ",".join(f"{name}:{format_shape(shape)}" for name, shape in row.input_shapes.items()), _precision(row, result.model),
            row.settings.get("intra_op_threads"), result.model["path"], result.model["sha256"], result.env.get("time"), row.model,
        ])
    return buffer.getvalue()


def bench_markdown(result) -> str:
    model = result.model
    several = len({r.backend for r in result.rows}) > 1
    gpu = any(r.memory.get("gpu_bytes") is not None for r in result.rows)
    many = len(result.models) > 1
    header = ["model"] * many + ["backend", "batch", "inputs", "prec", "timed", "median ms", "p90 ms", "p99 ms", "CV", "samples/s"]
    header += ["speedup"] * several + ["GPU mem"] * gpu + ["agreement"]
    lines = [
        "### infertool bench: " + (", ".join(f"`{m['path']}` ({m.get('precision_label', m['precision'])})" for m in result.models) if many
                                   else f"`{model['path']}` ({model.get('precision_label', model['precision'])})"), "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" if h in ("model", "backend", "inputs", "prec", "timed", "agreement") else "---:" for h in header) + "|",
    ]
    for row in result.rows:
        stats = row.latency
        agreement = "-" if row.agreement is None else ("ok" if row.agreement.passed else "**FAIL**")
        cells = [row.model] * many + [row.backend, str(row.batch), ", ".join(f"{n} {format_shape(s)}" for n, s in row.input_shapes.items()), _precision(row, model),
                 MODE_LABELS[row.latency_mode], ms(stats.median), ms(stats.p90), ms(stats.p99), f"{stats.cv:.1%}",
                 sig(throughput(stats, row.batch)["samples_per_s"], thousands=True)]
        cells += ["-" if row.speedup is None else f"{row.speedup:.2f}x"] * several
        cells += ["-" if row.memory.get("gpu_bytes") is None else byte_size(row.memory["gpu_bytes"])] * gpu
        lines.append("| " + " | ".join([*cells, agreement]) + " |")
    if result.gate is not None:
        judged = sum(r.judged for r in result.gate.rows)
        lines += ["", f"Regression gate ({result.gate.stat}, limit +{result.gate.max_regression * 100:g}%, {judged} of {len(result.gate.rows)} rows compared): "
                  + ("passed" if result.gate.passed else "**FAILED**")]
    labelled = [r for r in result.rows if r.accuracy is not None]
    if labelled:
        lines += ["", f"Accuracy against `{labelled[0].accuracy.labels}` ({labelled[0].accuracy.samples} samples):", "",
                  "| backend | batch | prec | top-1 | top-5 |", "|---|---:|---|---:|---:|"]
        lines += [f"| {r.backend} | {r.batch} | {_precision(r, model)} | {percent(r.accuracy.top1)} | {percent(r.accuracy.top5)} |" for r in labelled]
    if result.skipped:
        lines += ["", *(f"Skipped {s['backend']}: {s['reason']}" for s in result.skipped)]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- run, quantize, build-engine


def _value_shape(shape) -> str:
    if shape is None:
        return "none"
    if shape and isinstance(shape[0], list):
        return "[" + ", ".join(_value_shape(s) for s in shape) + "]"
    return format_shape(shape)


SCORE_LABELS = {"probabilities": "probability (the output's own)", "softmax": "probability (softmax)", "sigmoid": "probability (sigmoid)"}


def _top_k(top_k, console: Console) -> None:
    scored = top_k.scores in SCORE_LABELS
    columns = [Column("sample", shared="sample {}"), Column("rank"), Column("class"), Column("label", TEXT), Column("score"),
               *([Column(SCORE_LABELS[top_k.scores])] if scored else [])]
    rows = [
        [str(sample), str(rank), str(cls), escape(label), general(score), *([percent(probability)] if scored else [])]
        for sample, row in enumerate(top_k.rows) for rank, (cls, label, score, probability) in enumerate(row, 1)
    ]
    if all(row[2] == row[3] for row in rows):  # no --labels: the label is the class number
        columns, rows = columns[:3] + columns[4:], [row[:3] + row[4:] for row in rows]
    console.print()
    grid(console, f"top-{len(top_k.rows[0])} of '{escape(top_k.output)}'", columns, rows)


def run_result(result, console: Console) -> None:
    columns = [Column("output", TEXT), Column("shape", TEXT), Column("dtype", TEXT, shared="dtype {}"), Column("min"), Column("max"),
               Column("mean"), Column("NaN/Inf")]
    rows = []
    for o in result.outputs:
        bad = f"[red]{o.nan}/{o.inf}[/]" if o.nan or o.inf else "0/0"
        shape = "none" if not o.present else format_shape(o.shape) if o.elements is None else f"{o.elements} × {format_shape(o.shape)}"
        rows.append([escape(o.name), shape, o.dtype, general(o.min), general(o.max), general(o.mean), bad])
    inputs = ", ".join(f"{escape(n)} {_value_shape(s)}" + (f" {escape(result.fed[n])}" if n in result.fed else "") for n, s in result.inputs.items()) or "none"
    grid(console, f"{escape(result.model)} on {escape(result.backend)}\ninputs {inputs}", columns, rows)
    if result.top_k is not None:
        _top_k(result.top_k, console)
    if result.startup:
        console.print(f"load {ms(result.startup.get('load_ms'))} ms, inference {ms(result.startup.get('first_inference_ms'))} ms (a first inference: not a steady-state latency)")
    if result.saved:
        console.print(f"saved outputs to {escape(result.saved)}")
    if result.saved_inputs:
        console.print(f"saved inputs to {escape(result.saved_inputs)}")


def _graph_summary(graph: dict) -> str:
    def value(v: object) -> str:
        return ", ".join(map(str, v)) or "none" if isinstance(v, (list, tuple)) else str(v)

    return "; ".join(f"{k.replace('_', ' ')} {value(v)}" for k, v in graph.items())


def quantize_result(result, console: Console) -> None:
    items = [("size", f"{byte_size(result.source.bytes)} → {byte_size(result.output.bytes)}  ({result.seconds:.1f} s)"), ("graph", escape(_graph_summary(result.graph)))]
    if result.calibration:
        c = result.calibration
        items.append(("calibration", f"{c['method']} on {c['samples'] or '-'} samples of {escape(str(c['data'] or 'cache'))}" + (", ranges from cache" if c["cache_hit"] else "")))
    items += [("note", escape(note)) for note in result.notes]
    pairs(console, f"{escape(result.source.path)} → {escape(result.output.path)} ({result.precision})", items)
    console.print()
    accuracy = result.accuracy
    if accuracy.unavailable:
        console.print(f"[yellow]accuracy not evaluated on {escape(accuracy.backend)}:[/] {escape(accuracy.unavailable)}")
    else:
        columns = [Column("output", TEXT, shared="output {}"), Column("rule", TEXT, shared="rule {}", drop=2), Column("max abs err", drop=1),
                   Column("worst cosine"), Column("top-1"), Column("top-5", drop=3), Column("failing"), Column("result")]
        rows = [[escape(a.name), escape(a.rule), error(a.max_abs), cosine(a.cosine), percent(a.top1), percent(a.top5), failing(a), _mark(a.passed)]
                for a in accuracy.outputs]
        title = f"accuracy: fp32 vs {result.precision} on {escape(accuracy.backend)}, each of {accuracy.samples} samples of {escape(accuracy.data)} judged"
        grid(console, title, *present(columns, rows))
        if accuracy.emulation:
            console.print(f"[yellow]emulated:[/] {escape(accuracy.emulation)}", highlight=False)
    if accuracy.original_accuracy is not None:
        _ground_truth(result, console)
    _gate_lines(result, console)


def _gate_lines(result, console: Console) -> None:
    for name, gate in result.gates.items():
        console.print(f"gate {name}: {escape(gate.get('summary', 'not evaluated'))} {_mark(gate['passed'])}", highlight=False)
    if not result.gates:
        console.print("gate: none (--no-gate)" if not result.settings.get("gate", True) else "gate: none ran")


def _ground_truth(result, console: Console) -> None:
    original, converted = result.accuracy.original_accuracy, result.accuracy.converted_accuracy
    rows = [[f"original ({escape(result.source.path)})", percent(original.top1), percent(original.top5)]]
    if converted is not None:
        rows.append([f"{result.precision} ({escape(result.output.path)})", percent(converted.top1), percent(converted.top5)])
    title = f"accuracy against {escape(original.labels)} ({original.samples} labelled samples, output '{escape(original.output)}')"
    console.print()
    grid(console, title, [Column("model", TEXT), Column("top-1"), Column("top-5")], rows)


def build_result(result, console: Console) -> None:
    car = result.sidecar
    plan = car["plan"]
    path = f"graph precision stage: {plan['transform']}" if plan["transform"] else f"builder flags: {', '.join(plan['builder_flags']) or 'none'}"
    layers = car.get("layer_precisions")
    flavour = car.get("flavour", "TensorRT")
    if car["gpu"] is not None:
        built_for = f"{car['tensorrt_version']} on {escape(car['gpu']['name'])} (sm {car['gpu']['compute_capability']})"
    else:
        targets = car.get("compute_capabilities")
        built_for = f"{car['tensorrt_version']}, ahead of time for " + (f"compute capability {', '.join(targets)}" if targets else "its default targets")
    items = [
        (flavour, built_for),
        ("precision", f"{car['precision']} ({path}; strongly typed: {plan['strongly_typed']})"),
        ("layers", ", ".join(f"{k} {v}" for k, v in sorted(layers.items())) if layers else "-"),
    ]
    for index, profile in enumerate(car["profiles"]):
        shapes = "; ".join(f"{escape(n)} {format_shape(s['min'])} / {format_shape(s['opt'])} / {format_shape(s['max'])}" for n, s in profile.items())
        items.append((f"profile {index}", shapes or "static shapes"))
    memory = "not known until loaded on a GPU" if car["device_memory_bytes"] is None else byte_size(car["device_memory_bytes"])
    items.append(("engine", f"{byte_size(car['engine_bytes'])}, device memory {memory}, built in {car['build_seconds']:.1f} s"))
    items.append(("timing cache", "loaded and saved" if result.timing_cache_loaded else "saved" if car["options"]["timing_cache"] else "-"))
    items += [("note", escape(note)) for note in result.notes]
    pairs(console, f"{escape(car['onnx']['path'])} → {escape(str(result.engine.path))}", items)


# ---------------------------------------------------------------- debug layers, debug precision

LAYER_ROWS = 60  # a longer report shows its flagged and diverged rows (JSON and Markdown have all)


def _node(row) -> str:
    return f"{row.node or '(unnamed)'} ({row.op})" if row.op != "output" else "(graph output)"


def _divergence_cosine(value: float) -> str:
    return "NaN/Inf" if value != value else cosine(value)


def _layer_cells(row) -> list[str]:
    d = row.divergence
    growth = "-" if row.growth is None else ("inf" if row.growth == float("inf") else f"{row.growth:.3g}x")
    return [error(d.max_abs), error(d.max_rel), _divergence_cosine(d.cosine), f"{d.over_share:.1%}", growth, ", ".join(row.flags) or "-"]


def _shown_rows(result) -> list[int]:
    rows = result.rows
    if len(rows) <= LAYER_ROWS:
        return list(range(len(rows)))
    first = result.first_divergence
    near = set(range(max(0, first - 2), min(len(rows), first + 3))) if first is not None else set()
    picked = sorted(near | {i for i, r in enumerate(rows) if r.flags or r.diverged})
    return picked[:LAYER_ROWS]


def debug_layers(result, console: Console) -> None:
    ref, cand = result.reference, result.candidate
    title = (f"{escape(ref['path'])} on {ref['backend']}  vs  {escape(cand['path'])} ({cand['precision']}) on {cand['backend']}: "
             f"{len(result.rows)} tensors, {result.samples} samples, {result.precision} tolerance")
    shown = _shown_rows(result)
    caption = f"worst sample per tensor; tensors read as {result.read_as}; >tol: share of elements {result.tolerance['elements']}"
    if any(row.quantized for row in result.rows):
        caption += "; q/dq: compared as its readers see it, dequantized"
    if len(shown) < len(result.rows):
        caption += f"; {len(result.rows) - len(shown)} unflagged tensors not shown (--json / --markdown have all)"
    columns = [Column("#"), Column("tensor", TEXT), Column("node (op)", TEXT, drop=1), Column("max abs err"), Column("max rel err", drop=3),
               Column("cosine"), Column(">tol", drop=2), Column("growth", drop=4), Column("flags", TEXT)]
    rows = []
    for index in shown:
        row = result.rows[index]
        style = "bold red" if index == result.first_divergence else "red" if row.diverged else None
        cells = [str(index), escape(row.tensor) + (" ◀ first divergence" if index == result.first_divergence else ""), escape(_node(row)), *map(escape, _layer_cells(row))]
        rows.append([f"[{style}]{c}[/]" for c in cells] if style else cells)
    rows += [["out", escape(row.tensor), "(unmodified candidate)", *map(escape, _layer_cells(row))] for row in result.outputs]
    grid(console, title, columns, rows, escape(caption))
    _first_divergence(result, console)
    for note in result.notes:
        console.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
    if result.unmatched:
        listed = ", ".join(result.unmatched[:5]) + (", …" if len(result.unmatched) > 5 else "")
        console.print(f"not compared: {len(result.unmatched)} tensors the candidate does not have ({escape(listed)})", highlight=False)


def _first_divergence(result, console: Console) -> None:
    row = result.first
    if row is None:
        verdict = "the outputs diverge, no single tensor does" if any(o.diverged for o in result.outputs) else "every tensor within tolerance"
        console.print(f"no tensor diverges beyond the {result.precision} tolerance: {verdict}")
        return
    d = row.divergence
    why = []
    if d.overflow:
        why.append(f"reference values up to {d.ref_absmax:.3g}, beyond fp16's 65504")
    if d.nonfinite:
        why.append(f"{d.nonfinite} NaN/Inf values in the candidate")
    if not why:
        why.append(f"cosine {_divergence_cosine(d.cosine)} under {result.tolerance['min_cosine']}")
    console.print(
        f"[bold red]first divergence:[/] tensor {escape(row.tensor)!r} from node {escape(_node(row))}, worst on sample {d.worst_run}: {escape('; '.join(why))}",
        highlight=False,
    )


def debug_layers_markdown(result) -> str:
    ref, cand = result.reference, result.candidate
    first = result.first
    lines = [
        f"### infertool debug layers: `{ref['path']}` ({ref['backend']}) vs `{cand['path']}` ({cand['precision']}, {cand['backend']})",
        "",
        f"{result.samples} samples ({result.data}); {result.precision} tolerance; first divergence: "
        + ("none" if first is None else f"**`{first.tensor}`** from `{first.node or '(unnamed)'}` ({first.op})"),
        "",
        "| # | tensor | node (op) | max abs err | max rel err | cosine | >tol | growth | flags |",
        "|---:|---|---|---:|---:|---:|---:|---:|---|",
    ]
    cell = lambda text: text.replace("|", "\\|")  # noqa: E731
    for index, row in enumerate(result.rows):
        mark = " **◀ first divergence**" if index == result.first_divergence else ""
        lines.append(f"| {index} | `{cell(row.tensor)}`{mark} | {cell(_node(row))} | " + " | ".join(_layer_cells(row)) + " |")
    for row in result.outputs:
        lines.append(f"| out | `{cell(row.tensor)}` | (unmodified candidate) | " + " | ".join(_layer_cells(row)) + " |")
    lines += ["", *[f"- {note}" for note in result.notes]]
    return "\n".join(lines) + "\n"


def _gate_text(gate: dict) -> str:
    """debug precision's rule (agreement.Rule as a dict) in words."""
    from infertool.agreement import Rule

    rule = Rule(**gate)
    kinds = ("values", "classes") if rule.kind == "auto" else (rule.kind,)
    return f"{rule.precision}, " + " / ".join(rule.describe(kind) for kind in kinds)


def debug_precision(result, console: Console) -> None:
    title = escape(f"{result.model} → {result.precision}: gate {_gate_text(result.gate)} ({result.samples} samples: {result.data})")
    columns = [Column("step"), Column("phase", TEXT), Column("kept"), Column("nodes kept", TEXT, drop=1), Column("result", TEXT),
               Column("min cosine"), Column("top-1", drop=2), Column("failing"), Column("s", drop=3)]
    rows = []
    for step in result.steps:
        kept = ", ".join(step.keep[:3]) + (f" +{len(step.keep) - 3}" if len(step.keep) > 3 else "")
        rows.append([str(step.index), step.phase, str(len(step.keep)), escape(kept or "-"), _mark(step.passed),
                     "-" if step.min_cosine is None else _divergence_cosine(step.min_cosine), percent(step.top1),
                     f"{step.failing}/{step.samples}", f"{step.seconds:.1f}"])
    grid(console, title, columns, rows)
    first = result.first_divergence
    if first is not None:
        console.print(f"first divergence of the converted model: tensor {escape(first['tensor'])!r} from node {escape(first['node'] or '(unnamed)')} ({first['op']})", highlight=False)
    what = "in fp32" if result.precision in ("fp16", "bf16") else "out of quantization"
    listed = ", ".join(result.keep) if result.keep else "none (the converted model passes as it is)"
    console.print(f"[bold]keep {len(result.keep)} node(s) {what}:[/] {escape(listed)}  → {escape(result.keep_file)}", highlight=False)
    cost = result.cost
    added = f"{cost['casts_added']} casts added" if "casts_added" in cost else f"{cost.get('dequantize_removed', 0)} DequantizeLinear nodes fewer"
    before, after = (_divergence_cosine(cost[k]) if cost[k] is not None else "-" for k in ("min_cosine_before", "min_cosine_after"))
    console.print(f"cost: {added}; worst cosine {before} → {after}", highlight=False)
    for note in result.notes:
        console.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
    console.print(
        f"next: infertool quantize {escape(result.model)} -p {result.precision} --exclude-nodes @{escape(result.keep_file)} -o MODEL.{result.precision}.onnx",
        highlight=False,
    )


# ---------------------------------------------------------------- report, sweep


def report_result(result, console: Console) -> None:
    summary = result.summary
    kinds: dict[str, int] = {}
    for source in summary["sources"]:
        kinds[source["kind"]] = kinds.get(source["kind"], 0) + 1
    items = [
        ("results", ", ".join(f"{n} {kind}" for kind, n in kinds.items())),
        ("machines", escape(", ".join(f"{m['id']} {m['hostname']} ({', '.join(m['gpus']) or m['cpu']})" for m in summary["machines"]))),
        ("groups", f"{len(summary['groups'])} of comparable rows ({sum(len(g['rows']) for g in summary['groups'])} rows)"),
        ("plots", escape(", ".join(result.images)) or "-"),
        *(("note", escape(note)) for note in result.notes),
    ]
    pairs(console, f"report → {escape(result.output)}", items)
    if result.gate is not None:
        console.print()
        grid(console, *_gate(result.gate))


SWEEP_STATUS = {"ok": "[green]ok[/]", "failed": "[red]failed[/]", "check-failed": "[yellow]check failed[/]"}


def sweep_result(result, console: Console) -> None:
    shard = f", shard {result.shard}" if result.shard else ""
    counts = ", ".join(f"{n} {status}" for status, n in result.counts.items())
    title = f"sweep {escape(result.spec['path'])}{shard}: {counts}"
    if result.listed:
        columns = [Column("cell", TEXT), Column("model", TEXT), Column("prec", TEXT), Column("backend", TEXT), Column("batch"), Column("status", TEXT)]
        rows = [[c["id"], escape(c["label"]), c["precision"], c["backend"], str(c["batch"] or "-"), c["status"]] for c in result.cells]
        grid(console, title, columns, rows)
        return
    columns = [Column("cell", TEXT), Column("status", TEXT), Column("device", TEXT), Column("attempts"), Column("seconds"), Column("error", TEXT, drop=1)]
    rows = []
    for cell in result.cells:
        attempts = cell.get("attempts") or []
        seconds = sum(a["seconds"] or 0 for a in attempts)
        device = cell.get("cuda_visible_devices") or cell.get("device_slot") or "-"
        rows.append([cell["id"], SWEEP_STATUS.get(cell["status"], cell["status"]), str(device), str(len(attempts) or "-"),
                     f"{seconds:.1f}" if attempts else "-", escape(cell.get("error") or "")])
    grid(console, title, columns, rows)
