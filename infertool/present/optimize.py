"""optimize's HTML report: what was asked, every candidate, and accuracy against latency (the front)."""

from __future__ import annotations

from infertool.present import plots
from infertool.present.numbers import ms
from infertool.present.report import Image, Table, to_html
from infertool.records.optimize import OptimizeResult


def _accuracy(result: OptimizeResult, candidate) -> float | None:
    """What the picture's y axis shows: top-1 against the labels where the budget is, else the worst cosine."""
    accuracy = candidate.accuracy
    if result.budget.max_drop is not None:
        truth = next((c.accuracy.original_accuracy for c in result.candidates if c.accuracy and c.accuracy.original_accuracy), None)
        known = truth if candidate.given else accuracy.converted_accuracy if accuracy else None
        return None if known is None else known.top1
    return 1.0 if candidate.given else accuracy.min_cosine if accuracy else None


def _label(result: OptimizeResult, name: str, backend: str) -> str:
    return f"{name} {backend}" if len(result.settings.get("backends", ())) > 1 else name


def _points(result: OptimizeResult) -> list[plots.Point]:
    points = []
    for candidate in result.candidates:
        y = _accuracy(result, candidate)
        for run in candidate.runs:
            if run.decisive is not None and y is not None and y == y:
                points.append(plots.Point(run.decisive.latency.median, y, candidate.precision, _label(result, candidate.name, run.backend)))
    return points


def _table(result: OptimizeResult) -> Table:
    rows = []
    for candidate in result.candidates:
        for run in candidate.runs or (None,):
            row = run.decisive if run else None
            rows.append((
                candidate.name, str(len(candidate.kept)), "the model" if candidate.given else candidate.found or "-", run.backend if run else "-",
                ms(row.latency.median) if row else "-", f"{row.speedup:.2f}x" if row and row.speedup is not None else "-",
                ", ".join((row.tune or {}).get("best", ())) if row else "-", "alone" if run and run.alone else "in-process" if row else "-",
                (run.verdict if run else "") or candidate.rejected or "-",
            ))
    header = ("candidate", "kept", "accuracy", "backend", "median ms", "speedup", "tuned", "timed", "verdict")
    return Table(header, rows, frozenset({"kept", "median ms", "speedup"}))


def report_html(result: OptimizeResult) -> str:
    picked = result.winner()
    blocks = [
        ("h", 1, f"infertool optimize {result.source.path}"),
        ("list", [f"budget: {result.budget.describe()}", f"backends: {', '.join(result.settings.get('backends', []))}",
                  f"picked: {picked[0].name} on {picked[1].backend}" if picked else "picked: nothing meets the budget",
                  *(f"skipped: {s}" for s in result.skipped), *(f"note: {n}" for n in result.notes)]),
        ("h", 2, "Candidates"), _table(result),
    ]
    points = _points(result)
    if points:
        label = "top-1 against the labels" if result.budget.max_drop is not None else "worst cosine against the model"
        png = plots.pareto(points, _label(result, picked[0].name, picked[1].backend) if picked else "", label)
        blocks += [("h", 2, "Accuracy against latency"), Image("pareto.png", png, "accuracy against latency")]
    return to_html(blocks)
