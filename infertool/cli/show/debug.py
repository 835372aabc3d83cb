"""What `debug layers` and `debug precision` print."""

from __future__ import annotations

from rich.console import Console

from infertool.cli.console import escape
from infertool.cli.show.grid import TEXT, Column, grid, mark
from infertool.present.debug import divergence_cosine, layer_cells, node_text
from infertool.present.numbers import percent

LAYER_ROWS = 60  # a longer report shows its flagged and diverged rows (JSON and Markdown have all)


def _shown_rows(result) -> list[int]:
    rows = result.rows
    if len(rows) <= LAYER_ROWS:
        return list(range(len(rows)))
    first = result.first_divergence
    near = set(range(max(0, first - 2), min(len(rows), first + 3))) if first is not None else set()
    picked = sorted(near | {i for i, r in enumerate(rows) if r.flags or r.diverged})
    return picked[:LAYER_ROWS]


def debug_layers(result, console: Console) -> None:
    ref, cand = result.reference, result.candidate
    title = (f"{escape(ref['path'])} on {ref['backend']}  vs  {escape(cand['path'])} ({cand['precision']}) on {cand['backend']}: "
             f"{len(result.rows)} tensors, {result.samples} samples, {result.precision} tolerance")
    shown = _shown_rows(result)
    caption = f"worst sample per tensor; tensors read as {result.read_as}; >tol: share of elements {result.tolerance['elements']}"
    if any(row.quantized for row in result.rows):
        caption += "; q/dq: compared as its readers see it, dequantized"
    if len(shown) < len(result.rows):
        caption += f"; {len(result.rows) - len(shown)} unflagged tensors not shown (--json / --markdown have all)"
    columns = [Column("#"), Column("tensor", TEXT), Column("node (op)", TEXT, drop=1), Column("max abs err"), Column("max rel err", drop=3),
               Column("cosine"), Column(">tol", drop=2), Column("growth", drop=4), Column("flags", TEXT)]
    rows = []
    for index in shown:
        row = result.rows[index]
        style = "bold red" if index == result.first_divergence else "red" if row.diverged else None
        cells = [str(index), escape(row.tensor) + (" ◀ first divergence" if index == result.first_divergence else ""), escape(node_text(row)), *map(escape, layer_cells(row))]
        rows.append([f"[{style}]{c}[/]" for c in cells] if style else cells)
    rows += [["out", escape(row.tensor), "(unmodified candidate)", *map(escape, layer_cells(row))] for row in result.outputs]
    grid(console, title, columns, rows, escape(caption))
    _first_divergence(result, console)
    for note in result.notes:
        console.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
    if result.unmatched:
        listed = ", ".join(result.unmatched[:5]) + (", …" if len(result.unmatched) > 5 else "")
        console.print(f"not compared: {len(result.unmatched)} tensors the candidate does not have ({escape(listed)})", highlight=False)


def _first_divergence(result, console: Console) -> None:
    row = result.first
    if row is None:
        verdict = "the outputs diverge, no single tensor does" if any(o.diverged for o in result.outputs) else "every tensor within tolerance"
        console.print(f"no tensor diverges beyond the {result.precision} tolerance: {verdict}")
        return
    d = row.divergence
    why = []
    if d.overflow:
        why.append(f"reference values up to {d.ref_absmax:.3g}, beyond fp16's 65504")
    if d.nonfinite:
        why.append(f"{d.nonfinite} NaN/Inf values in the candidate")
    if not why:
        why.append(f"cosine {divergence_cosine(d.cosine)} under {result.tolerance['min_cosine']}")
    console.print(
        f"[bold red]first divergence:[/] tensor {escape(row.tensor)!r} from node {escape(node_text(row))}, worst on sample {d.worst_run}: {escape('; '.join(why))}",
        highlight=False,
    )


def _gate_text(gate: dict) -> str:
    """debug precision's rule (agreement.Rule as a dict) in words."""
    from infertool.agreement import Rule

    rule = Rule(**gate)
    kinds = ("values", "classes") if rule.kind == "auto" else (rule.kind,)
    return f"{rule.precision}, " + " / ".join(rule.describe(kind) for kind in kinds)


def debug_precision(result, console: Console) -> None:
    title = escape(f"{result.model} → {result.precision}: gate {_gate_text(result.gate)} ({result.samples} samples: {result.data})")
    columns = [Column("step"), Column("phase", TEXT), Column("kept"), Column("nodes kept", TEXT, drop=1), Column("result", TEXT),
               Column("min cosine"), Column("top-1", drop=2), Column("failing"), Column("s", drop=3)]
    rows = []
    for step in result.steps:
        kept = ", ".join(step.keep[:3]) + (f" +{len(step.keep) - 3}" if len(step.keep) > 3 else "")
        rows.append([str(step.index), step.phase, str(len(step.keep)), escape(kept or "-"), mark(step.passed),
                     "-" if step.min_cosine is None else divergence_cosine(step.min_cosine), percent(step.top1),
                     f"{step.failing}/{step.samples}", f"{step.seconds:.1f}"])
    grid(console, title, columns, rows)
    first = result.first_divergence
    if first is not None:
        console.print(f"first divergence of the converted model: tensor {escape(first['tensor'])!r} from node {escape(first['node'] or '(unnamed)')} ({first['op']})", highlight=False)
    what = "in fp32" if result.precision in ("fp16", "bf16") else "out of quantization"
    listed = ", ".join(result.keep) if result.keep else "none (the converted model passes as it is)"
    console.print(f"[bold]keep {len(result.keep)} node(s) {what}:[/] {escape(listed)}  → {escape(result.keep_file)}", highlight=False)
    cost = result.cost
    added = f"{cost['casts_added']} casts added" if "casts_added" in cost else f"{cost.get('dequantize_removed', 0)} DequantizeLinear nodes fewer"
    before, after = (divergence_cosine(cost[k]) if cost[k] is not None else "-" for k in ("min_cosine_before", "min_cosine_after"))
    console.print(f"cost: {added}; worst cosine {before} → {after}", highlight=False)
    for note in result.notes:
        console.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
    console.print(f"next: {escape(result.command)}", highlight=False)
