"""What `doctor` prints."""

from __future__ import annotations

from rich.console import Console

from infertool.cli.console import escape
from infertool.cli.show.grid import TEXT, Column, grid


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
        [escape(b["name"]), "[green]available[/]" if b["ok"] else "[red]unavailable[/]", escape(b["reason"] or b["description"])]
        for b in report["backends"]
    ]
    console.print()
    grid(console, "backends", [Column("backend", TEXT), Column("status", TEXT), Column("details", TEXT)], backends)
    for warning in report["warnings"]:
        console.print(f"[yellow]warning:[/] {escape(warning)}")
