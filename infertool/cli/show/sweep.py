"""What `sweep` prints: its cells."""

from __future__ import annotations

from rich.console import Console

from infertool.cli.console import escape
from infertool.cli.show.grid import TEXT, Column, grid

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
