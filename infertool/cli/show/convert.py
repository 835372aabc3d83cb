"""What `convert` prints: the export and its validation."""

from __future__ import annotations

from rich.console import Console

from infertool.cli.console import escape
from infertool.cli.show.grid import TEXT, Column, grid, mark, pairs
from infertool.present.numbers import cosine, error, failing
from infertool.tensors import format_shape
from infertool.text import byte_size


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
         error(a.max_abs), error(a.max_rel), cosine(a.cosine), failing(a), mark(a.passed)]
        for b in report.batches for a in b.outputs
    ]
    title = (f"validation: checker ok, shape inference ok; ONNX Runtime (CPU) vs {escape(report.reference)}, each sample within "
             f"{report.atol:g} x max|ref| + {report.rtol:g} x |ref|")
    console.print()
    grid(console, title, columns, rows)
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)
