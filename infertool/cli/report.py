"""`infertool report`: results of many runs and machines merged into one document with plots."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from infertool.cli import parse
from infertool.cli.console import RichReporter, show, showing_failed_checks
from infertool.cli.groups import Output, command
from infertool.cli.show.report import report_result


@command
def report(
    results: List[Path] = typer.Argument(..., help="Result JSON files (bench, quantize, build-engine, sweep) or folders of them, from any machines; or one optimize result (its own HTML report)."),
    result_path: Path = typer.Option(..., "--output", "-o", help="report.md (plots as PNG files in report_files/ beside it) or report.html (one self-contained file)."),
    baseline_row: Optional[str] = typer.Option(None, "--baseline-row", metavar="MODEL|BACKEND|MODEL:BACKEND", help="The row speedups are measured against, per machine and input shapes (default: the first row read)."),
    baseline: Optional[List[Path]] = typer.Option(None, "--baseline", help="Earlier results (files or folders) to gate every row against, on the same hardware (repeatable)."),
    max_regression: str = typer.Option("10%", "--max-regression", help="Slowdown over the baseline that fails the gate (exit 1; the report is still written)."),
    gate_stat: str = typer.Option("median", "--gate-stat", metavar="median|mean|p90|p95|p99|min", help="Statistic the gate compares."),
    output: Output = None,
) -> None:
    """Merge results into one Markdown or HTML report: tables of comparable rows, latency, throughput, speedup and accuracy plots."""
    from infertool.pipelines.report import ReportGate, ReportOptions
    from infertool.pipelines.report import report as run_report
    from infertool.records.gate import GATE_STATS

    gate = None
    if baseline:
        gate = ReportGate(tuple(baseline), parse.regression(max_regression), parse.choice(gate_stat, GATE_STATS, "--gate-stat"))
    options = ReportOptions(result_path, baseline_row, gate, output.force)
    with showing_failed_checks(output.json_out, output.force, report_result), RichReporter(output.quiet) as reporter:
        result = run_report(results, options, reporter)
    show(result, output.json_out, output.force, report_result)


def register(app: typer.Typer) -> None:
    app.command()(report)
