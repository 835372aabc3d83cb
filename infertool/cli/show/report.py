"""What `report` prints about the document it wrote."""

from __future__ import annotations

from rich.console import Console

from infertool.cli.console import escape
from infertool.cli.show.bench import gate_section
from infertool.cli.show.grid import grid, pairs


def report_result(result, console: Console) -> None:
    summary = result.summary
    kinds: dict[str, int] = {}
    for source in summary["sources"]:
        kinds[source["kind"]] = kinds.get(source["kind"], 0) + 1
    merged = [
        ("machines", escape(", ".join(f"{m['id']} {m['hostname']} ({', '.join(m['gpus']) or m['cpu']})" for m in summary["machines"]))),
        ("groups", f"{len(summary['groups'])} of comparable rows ({sum(len(g['rows']) for g in summary['groups'])} rows)"),
    ]
    items = [
        ("results", ", ".join(f"{n} {kind}" for kind, n in kinds.items())),
        *(merged if summary["machines"] else []),  # an optimize result is reported alone, its rows in its own table
        ("plots", escape(", ".join(result.images)) or "-"),
        *(("note", escape(note)) for note in result.notes),
    ]
    pairs(console, f"report → {escape(result.output)}", items)
    if result.gate is not None:
        console.print()
        grid(console, *gate_section(result.gate))
