"""What `optimize` prints: every candidate with its accuracy, speed and verdict, then the pick."""

from __future__ import annotations

from rich.console import Console

from infertool.cli.console import escape
from infertool.cli.show.grid import TEXT, Column, grid, pairs, present
from infertool.present.numbers import ms
from infertool.records.optimize import PICKED
from infertool.stats import throughput


def _lines(result) -> list[list[str]]:
    rows = []
    for candidate in result.candidates:
        accuracy = "the model" if candidate.given else escape(candidate.found) or "-"
        kept = str(len(candidate.kept)) if candidate.kept else "-"
        for run in candidate.runs or (None,):
            row = run.decisive if run else None
            timed = "-" if row is None else "alone" if run.alone is not None else "in-process"
            verdict = (run.verdict if run else "") or candidate.rejected or "-"
            verdict = f"[bold green]{verdict}[/]" if verdict == PICKED else escape(verdict)
            rows.append([
                escape(candidate.name), kept, accuracy, escape(run.backend) if run else "-", ms(row.latency.median) if row else "-",
                f"{throughput(row.latency, row.batch)['samples_per_s']:,.0f}" if row else "-",
                f"{row.speedup:.2f}x" if row and row.speedup is not None else "-", timed, verdict,
            ])
    return rows


def optimize_result(result, console: Console) -> None:
    settings = result.settings
    items = [
        ("budget", escape(result.budget.describe())),
        ("judged on", escape(f"{settings.get('evaluation_data') or 'generated inputs'} ({settings['conversion']['eval_backend']})")),
        ("timed", f"batch {settings.get('batch') or 'as given'}, {result.seconds:.0f} s of a {settings['time_budget_s']:g} s budget"),
        ("objective", f"{settings.get('objective', 'latency')}; {'each candidate tuned' if settings.get('tune', True) else 'as given'}, finalists measured alone"),
    ]
    items += [("skipped", escape(s)) for s in result.skipped] + [("note", escape(n)) for n in result.notes]
    pairs(console, f"optimize {escape(result.source.path)}", items)
    console.print()
    columns = [
        Column("candidate", TEXT), Column("kept"), Column("accuracy", TEXT), Column("backend", TEXT, shared="on {}"),
        Column("median ms"), Column("samples/s", drop=1), Column("speedup"), Column("timed", TEXT, drop=2), Column("verdict", TEXT),
    ]
    grid(console, "candidates (speedup: over the model as given, on the same backend)", *present(columns, _lines(result)))
    winner = result.winner()
    if winner is None:
        console.print("[red]no candidate meets the budget[/]: nothing written", highlight=False)
        return
    candidate, run = winner
    row = run.decisive
    tuned = ", ".join((row.tune or {}).get("best", ())) if row else ""
    console.print(
        f"picked [bold]{escape(candidate.name)}[/] on {escape(run.backend)}"
        + (f" ({escape(tuned)})" if tuned else "")
        + (f", {row.speedup:.2f}x the model as given" if row and row.speedup is not None else ", timing missing" if row is None else "")
        + (f" → {escape(result.output.path)}; rebuild it with {escape(result.reproduce)}" if result.output else ""),
        highlight=False,
    )
