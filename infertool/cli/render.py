"""Results -> rich tables (JSON comes from each result's to_dict())."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from infertool.stats import throughput
from infertool.tensors import format_shape
from infertool.text import printable


def text(value: object) -> str:
    """Printable and markup-escaped: names, labels, paths and notes come from files and users."""
    return escape(printable(value))


def _num(value: float | None, digits: int = 3) -> str:
    if value is None or value != value:
        return "-"
    return f"{value:.{digits}g}"


def size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


def _mark(ok: bool) -> str:
    return "[green]ok[/]" if ok else "[red]FAIL[/]"


def convert_result(result, console: Console) -> None:
    table = Table(title=f"{text(result.source)} → {text(result.output.path or '(not written)')}", show_header=False, title_justify="left")
    table.add_row("exporter", f"{result.framework} / {result.exporter}, opset {result.opset}, {result.seconds:.1f} s")
    if result.output.path:
        extra = " + external data" if result.output.external_data else ""
        table.add_row("file", f"{size(result.output.bytes)}{extra}, sha256 {result.output.sha256[:16]}…")
    for spec in result.inputs:
        table.add_row("input", text(f"{spec.name}  {spec.dtype}  {format_shape(spec.shape)}"))
    for spec in result.outputs:
        table.add_row("output", text(f"{spec.name}  {spec.dtype}  {format_shape(spec.shape)}"))
    for note in result.notes:
        table.add_row("note", text(note))
    console.print(table)
    report = result.validation
    if report is None:
        console.print("validation: skipped (--no-validate)")
        return
    parity = Table(
        title="validation: checker ok, shape inference ok; "
        f"ONNX Runtime (CPU) vs {text(report.reference)}, atol {report.atol:g} rtol {report.rtol:g}",
        title_justify="left",
    )
    for column in ("batch", "output", "max abs err", "max rel err", "cosine", "result"):
        parity.add_column(column, justify="left" if column == "output" else "right")
    for batch in report.batches:
        for agreement in batch.outputs:
            parity.add_row(
                str(batch.batch), text(agreement.name), _num(agreement.max_abs), _num(agreement.max_rel),
                f"{agreement.cosine:.6f}", _mark(agreement.passed),
            )
    console.print(parity)


def doctor_report(result, console: Console) -> None:
    report = result.to_dict()
    table = Table(title="infertool doctor", title_justify="left")
    for column in ("component", "version", "details"):
        table.add_column(column)
    table.add_row("python", report["python"], text(report["platform"]))
    table.add_row("cpu", str(report["cpu_count"]) + " cores", text(report["cpu"]))
    for component in report["components"]:
        version = component["version"] or "[red]not installed[/]"
        table.add_row(component["name"], text(version) if component["version"] else version, text(component["detail"] or component["hint"]))
    for gpu in report["gpus"]:
        table.add_row(
            f"gpu {gpu['index']}", text(gpu["name"]),
            f"{gpu['memory_total_mb']} MiB, sm {gpu['compute_capability']}, driver {gpu['driver']} (CUDA {gpu['cuda_driver']})",
        )
    if not report["gpus"]:
        table.add_row("gpu", "[yellow]none[/]", text(report["gpu_note"]))
    console.print(table)
    backends = Table(title="backends", title_justify="left")
    for column in ("backend", "status", "details"):
        backends.add_column(column)
    for backend in report["backends"]:
        backends.add_row(text(backend["name"]), "[green]available[/]" if backend["ok"] else "[red]unavailable[/]", text(backend["reason"] or backend["description"]))
    console.print(backends)
    for warning in report["warnings"]:
        console.print(f"[yellow]warning:[/] {text(warning)}")


MODE_LABELS = {"end_to_end": "end-to-end", "device_resident": "device-resident"}


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if value < 100 else f"{value:.1f}"


def _timing(row, mode: str, stat: str = "median") -> float | None:
    stats = row.timings.get(mode)
    return None if stats is None else getattr(stats, stat)


def _latency_table(result) -> Table:
    model = result.model
    title = f"{text(model['path'])}  ({model['precision']}, opset {model['opset']}, {size(model['bytes'])})"
    latency = Table(title=title, title_justify="left", caption=(
        "timed: end-to-end = host arrays in and out; device-resident = inputs/outputs kept on the GPU (IO binding). "
        "Percentiles by nearest rank."
    ), caption_justify="left")
    for column in ("backend", "batch", "prec", "timed", "median ms", "p90", "p99", "mean", "CV", "samples/s", "speedup"):
        latency.add_column(column, justify="left" if column in ("backend", "prec", "timed") else "right")
    for row in result.rows:
        stats = row.latency
        cv = f"{stats.cv:.1%}" if not stats.noisy else f"[yellow]{stats.cv:.1%}[/]"
        latency.add_row(
            text(row.backend), str(row.batch), row.precision, MODE_LABELS[row.latency_mode], _ms(stats.median), _ms(stats.p90),
            _ms(stats.p99), _ms(stats.mean), cv, f"{throughput(stats, row.batch)['samples_per_s']:,.1f}",
            "-" if row.speedup is None else f"{row.speedup:.2f}x",
        )
    return latency


def _split_table(result) -> Table:
    split = Table(title="where the time goes (median ms): copies vs device work", title_justify="left", caption=(
        "GPU columns are CUDA-event times on the runtime's stream."
    ), caption_justify="left")
    for column in ("backend", "batch", "end-to-end", "device-resident", "GPU compute", "GPU H2D", "GPU D2H"):
        split.add_column(column, justify="left" if column == "backend" else "right")
    for row in result.rows:
        split.add_row(text(row.backend), str(row.batch), *(_ms(_timing(row, m)) for m in ("end_to_end", "device_resident", "gpu_compute", "gpu_h2d", "gpu_d2h")))
    return split


def _memory_table(result) -> Table:
    memory = Table(title="memory", title_justify="left")
    keys = {"model_file_bytes": "model file", "host_rss_increase_bytes": "host RSS peak +", "gpu_bytes": "GPU memory +",
            "engine_bytes": "engine", "device_memory_bytes": "engine device mem"}
    shown = [k for k in keys if any(r.memory.get(k) is not None for r in result.rows)]
    for column in ("backend", "batch", *(keys[k] for k in shown)):
        memory.add_column(column, justify="left" if column == "backend" else "right")
    for row in result.rows:
        memory.add_row(text(row.backend), str(row.batch), *("-" if row.memory.get(k) is None else size(row.memory[k]) for k in shown))
    return memory


def _agreement_table(checked: list) -> Table:
    agreement = Table(
        title=f"output agreement with {text(checked[0].agreement.reference)} (same inputs)", title_justify="left",
        caption="tolerance: precision (atol/rtol); a cosine at or above the precision's floor also passes", caption_justify="left",
    )
    for column in ("backend", "batch", "output", "tolerance", "max abs err", "max rel err", "cosine", "top-1", "result"):
        agreement.add_column(column, justify="left" if column in ("backend", "output", "tolerance") else "right")
    for row in checked:
        for a in row.agreement.outputs:
            tolerance = f"{row.agreement.precision} ({a.atol:g}/{a.rtol:g})"
            agreement.add_row(
                text(row.backend), str(row.batch), text(a.name), tolerance, _num(a.max_abs), _num(a.max_rel), f"{a.cosine:.6f}",
                "-" if a.top1 is None else f"{a.top1:.0%}", _mark(a.passed),
            )
    return agreement


def _gate_table(gate) -> Table:
    table = Table(title=f"regression gate vs {text(gate.baseline)} ({gate.stat}, limit +{gate.max_regression:.0%})", title_justify="left")
    for column in ("backend", "batch", "baseline ms", "now ms", "change", "result"):
        table.add_column(column, justify="left" if column == "backend" else "right")
    for r in gate.rows:
        change = "-" if r.change is None else f"{r.change:+.1%}"
        table.add_row(text(r.backend), str(r.batch), _ms(r.baseline_ms), _ms(r.current_ms), change, "[red]REGRESSED[/]" if r.regressed else "[green]ok[/]")
    return table


def bench_tables(result, console: Console) -> None:
    console.print(_latency_table(result))
    if any(len(r.timings) > 1 for r in result.rows):
        console.print(_split_table(result))
    console.print(_memory_table(result))
    checked = [r for r in result.rows if r.agreement is not None]
    if checked:
        console.print(_agreement_table(checked))
    if result.gate is not None:
        console.print(_gate_table(result.gate))
        for note in result.gate.notes:
            console.print(f"[yellow]gate note:[/] {text(note)}", highlight=False)


CSV_COLUMNS = (
    "backend", "batch", "precision", "latency_mode", "median_ms", "mean_ms", "min_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms",
    "std_ms", "cv", "iterations", "inferences_per_s", "samples_per_s", "speedup", "end_to_end_median_ms",
    "device_resident_median_ms", "gpu_compute_median_ms", "model_file_bytes", "host_rss_increase_bytes", "gpu_bytes",
    "agreement_passed", "max_abs_err", "min_cosine",
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
        ])
    return buffer.getvalue()


def bench_markdown(result) -> str:
    model = result.model
    lines = [
        f"### infertool bench: `{model['path']}` ({model['precision']})",
        "",
        "| backend | batch | timed | median ms | p90 ms | p99 ms | CV | samples/s | speedup | GPU mem | agreement |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in result.rows:
        stats = row.latency
        gpu = row.memory.get("gpu_bytes")
        agreement = "-" if row.agreement is None else ("ok" if row.agreement.passed else "**FAIL**")
        lines.append(
            f"| {row.backend} | {row.batch} | {MODE_LABELS[row.latency_mode]} | {_ms(stats.median)} | {_ms(stats.p90)} | "
            f"{_ms(stats.p99)} | {stats.cv:.1%} | {throughput(stats, row.batch)['samples_per_s']:,.1f} | "
            f"{'-' if row.speedup is None else f'{row.speedup:.2f}x'} | {'-' if gpu is None else size(gpu)} | {agreement} |"
        )
    if result.gate is not None:
        lines += ["", f"Regression gate ({result.gate.stat}, limit +{result.gate.max_regression:.0%}): "
                  + ("passed" if result.gate.passed else "**FAILED**")]
    return "\n".join(lines) + "\n"


def run_result(result, console: Console) -> None:
    shapes = ", ".join(f"{n} {format_shape(s)}" for n, s in result.inputs.items())
    table = Table(title=text(f"{result.model} on {result.backend}  (inputs: {shapes})"), title_justify="left")
    for column in ("output", "shape", "dtype", "min", "max", "mean", "NaN", "Inf"):
        table.add_column(column, justify="left" if column in ("output", "dtype") else "right")
    for o in result.outputs:
        bad = lambda n: f"[red]{n}[/]" if n else "0"  # noqa: E731
        table.add_row(text(o.name), format_shape(o.shape), o.dtype, _num(o.min, 5), _num(o.max, 5), _num(o.mean, 5), bad(o.nan), bad(o.inf))
    console.print(table)
    if result.top_k is not None:
        ranked = Table(title=f"top-{len(result.top_k.rows[0])} of '{text(result.top_k.output)}'", title_justify="left")
        for column in ("sample", "rank", "class", "label", "score", "softmax"):
            ranked.add_column(column, justify="left" if column == "label" else "right")
        for sample, row in enumerate(result.top_k.rows):
            for rank, (cls, label, score, probability) in enumerate(row, 1):
                ranked.add_row(str(sample), str(rank), str(cls), text(label), f"{score:.4g}", f"{probability:.2%}")
        console.print(ranked)
    if result.saved:
        console.print(f"saved outputs to {text(result.saved)}", highlight=False)


def quantize_result(result, console: Console) -> None:
    table = Table(title=f"{text(result.source.path)} → {text(result.output.path)} ({result.precision})", show_header=False, title_justify="left")
    table.add_row("size", f"{size(result.source.bytes)} → {size(result.output.bytes)}  ({result.seconds:.1f} s)")
    table.add_row("graph", ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in result.graph.items()))
    if result.calibration:
        c = result.calibration
        table.add_row("calibration", text(f"{c['method']} on {c['samples'] or '-'} samples of {c['data'] or 'cache'}") + (", ranges from cache" if c["cache_hit"] else ""))
    for note in result.notes:
        table.add_row("note", text(note))
    console.print(table)
    accuracy = result.accuracy
    if accuracy.unavailable:
        console.print(f"[yellow]accuracy not evaluated on {text(accuracy.backend)}:[/] {text(accuracy.unavailable)}")
    else:
        report = Table(title=f"accuracy: fp32 vs {result.precision} on {accuracy.backend}, {accuracy.samples} samples of {text(accuracy.data)}", title_justify="left")
        for column in ("output", "max abs err", "mean abs err", "cosine", "top-1", "top-5", f"within {result.precision} tolerance"):
            report.add_column(column, justify="left" if column == "output" else "right")
        for a in accuracy.outputs:
            pct = lambda v: "-" if v is None else f"{v:.1%}"  # noqa: E731
            report.add_row(text(a.name), _num(a.max_abs), _num(a.mean_abs), f"{a.cosine:.6f}", pct(a.top1), pct(a.top5), _mark(a.passed))
        console.print(report)
    for name, gate in result.gates.items():
        value = "-" if gate["value"] is None else f"{gate['value']:.4f}"
        console.print(f"gate {name}: {value} (min {gate['min']}) {_mark(gate['passed'])}")


def build_result(result, console: Console) -> None:
    car = result.sidecar
    table = Table(title=f"{text(car['onnx']['path'])} → {text(result.engine.path)}", show_header=False, title_justify="left")
    table.add_row("TensorRT", text(f"{car['tensorrt_version']} on {car['gpu']['name']} (sm {car['gpu']['compute_capability']})"))
    plan = car["plan"]
    path = f"graph precision stage: {plan['transform']}" if plan["transform"] else f"builder flags: {', '.join(plan['builder_flags']) or 'none'}"
    table.add_row("precision", f"{car['precision']} ({path}; strongly typed: {plan['strongly_typed']})")
    layers = car.get("layer_precisions")
    table.add_row("layers", ", ".join(f"{k} {v}" for k, v in sorted(layers.items())) if layers else "-")
    for index, profile in enumerate(car["profiles"]):
        shapes = "; ".join(f"{n} {format_shape(s['min'])} / {format_shape(s['opt'])} / {format_shape(s['max'])}" for n, s in profile.items())
        table.add_row(f"profile {index}", text(shapes) or "static shapes")
    table.add_row("engine", f"{size(car['engine_bytes'])}, device memory {size(car['device_memory_bytes'])}, built in {car['build_seconds']:.1f} s")
    table.add_row("timing cache", "loaded and saved" if result.timing_cache_loaded else "saved" if car["options"]["timing_cache"] else "-")
    for note in result.notes:
        table.add_row("note", text(note))
    console.print(table)
