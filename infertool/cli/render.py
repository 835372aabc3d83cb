"""Results -> rich tables (JSON comes from each result's to_dict())."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from infertool.specs import format_shape


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
    table = Table(title=f"{result.source} → {result.output.path or '(not written)'}", show_header=False, title_justify="left")
    table.add_row("exporter", f"{result.framework} / {result.exporter}, opset {result.opset}, {result.seconds:.1f} s")
    if result.output.path:
        extra = " + external data" if result.output.external_data else ""
        table.add_row("file", f"{size(result.output.bytes)}{extra}, sha256 {result.output.sha256[:16]}…")
    for spec in result.inputs:
        table.add_row("input", f"{spec.name}  {spec.dtype}  {format_shape(spec.shape)}")
    for spec in result.outputs:
        table.add_row("output", f"{spec.name}  {spec.dtype}  {format_shape(spec.shape)}")
    for note in result.notes:
        table.add_row("note", escape(note))
    console.print(table)
    report = result.validation
    if report is None:
        console.print("validation: skipped (--no-validate)")
        return
    parity = Table(
        title=f"validation: checker {report.checker}, shape inference {report.shape_inference}; "
        f"ONNX Runtime (CPU) vs {report.reference}, atol {report.atol:g} rtol {report.rtol:g}",
        title_justify="left",
    )
    for column in ("batch", "output", "max abs err", "max rel err", "cosine", "result"):
        parity.add_column(column, justify="left" if column == "output" else "right")
    for batch in report.batches:
        for agreement in batch.outputs:
            parity.add_row(
                str(batch.batch), agreement.name, _num(agreement.max_abs), _num(agreement.max_rel),
                f"{agreement.cosine:.6f}", _mark(agreement.passed),
            )
    console.print(parity)


def doctor_report(report: dict, console: Console) -> None:
    table = Table(title="infertool doctor", title_justify="left")
    for column in ("component", "version", "details"):
        table.add_column(column)
    table.add_row("python", report["python"], report["platform"])
    table.add_row("cpu", str(report["cpu_count"]) + " cores", report["cpu"])
    for component in report["components"]:
        version = component["version"] or "[red]not installed[/]"
        table.add_row(component["name"], version, escape(component["detail"] or component["hint"]))
    for gpu in report["gpus"]:
        table.add_row(
            f"gpu {gpu['index']}", gpu["name"],
            f"{gpu['memory_total_mb']} MiB, sm {gpu['compute_capability']}, driver {gpu['driver']} (CUDA {gpu['cuda_driver']})",
        )
    if not report["gpus"]:
        table.add_row("gpu", "[yellow]none[/]", escape(report["gpu_note"]))
    console.print(table)
    for warning in report["warnings"]:
        console.print(f"[yellow]warning:[/] {escape(warning)}")
