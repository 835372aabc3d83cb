"""What `run` prints: output summaries and top-k."""

from __future__ import annotations

from rich.console import Console

from infertool.cli.console import escape
from infertool.cli.show.grid import TEXT, Column, grid
from infertool.present.numbers import general, ms, percent
from infertool.tensors import format_shape


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
