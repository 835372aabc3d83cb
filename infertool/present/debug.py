"""debug layers as Markdown, and the cells its tables share."""

from __future__ import annotations

from infertool.present import markdown
from infertool.present.numbers import cosine, error


def node_text(row) -> str:
    return f"{row.node or '(unnamed)'} ({row.op})" if row.op != "output" else "(graph output)"


def divergence_cosine(value: float) -> str:
    return "NaN/Inf" if value != value else cosine(value)


def layer_cells(row) -> list[str]:
    d = row.divergence
    growth = "-" if row.growth is None else ("inf" if row.growth == float("inf") else f"{row.growth:.3g}x")
    return [error(d.max_abs), error(d.max_rel), divergence_cosine(d.cosine), f"{d.over_share:.1%}", growth, ", ".join(row.flags) or "-"]


def debug_layers_markdown(result) -> str:
    """Every compared tensor as Markdown; tensor and node names escaped."""
    ref, cand = result.reference, result.candidate
    first = result.first
    where = "none" if first is None else f"{first.tensor} from {first.node or '(unnamed)'} ({first.op})"
    lines = [
        f"### infertool debug layers: {markdown.text(ref['path'])} ({markdown.text(ref['backend'])}) vs {markdown.text(cand['path'])} "
        f"({cand['precision']}, {markdown.text(cand['backend'])})",
        "",
        f"{result.samples} samples ({markdown.text(result.data)}); {result.precision} tolerance; first divergence: **{markdown.text(where)}**",
        "",
    ]
    rows = [(index, row.tensor + (" ◀ first divergence" if index == result.first_divergence else ""), node_text(row), *layer_cells(row))
            for index, row in enumerate(result.rows)]
    rows += [("out", row.tensor, "(unmodified candidate)", *layer_cells(row)) for row in result.outputs]
    lines += markdown.table(("#", "tensor", "node (op)", "max abs err", "max rel err", "cosine", ">tol", "growth", "flags"), rows,
                            ("#", "max abs err", "max rel err", "cosine", ">tol", "growth"))
    lines += ["", *[f"- {markdown.text(note)}" for note in result.notes]]
    return "\n".join(lines) + "\n"
