"""The report's pictures, drawn with matplotlib (the `report` extra) off screen: plain data in, PNG bytes out."""

from __future__ import annotations

import io
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from infertool.optional import require

WIDTH = 9.0  # inches, at DPI: 900 px wide
DPI = 100
MAX_SERIES = 12  # lines or bars one panel shows before it gets unreadable


@dataclass(frozen=True)
class Curve:
    """A latency distribution: every sample (sorted, ms), or only the summary percentiles."""

    label: str
    values: tuple[float, ...]
    percentiles: tuple[float, ...]  # the cumulative share (0-100) of each value
    from_samples: bool


@dataclass(frozen=True)
class Line:
    label: str
    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    group: str  # colour (the precision)
    label: str  # written beside the point


def _pyplot() -> Any:
    matplotlib = require("matplotlib", "report plots")
    matplotlib.use("Agg", force=True)
    matplotlib.rcParams["text.parse_math"] = False  # labels come from result files: '$' is text, never mathtext
    import matplotlib.pyplot as plt

    return plt


def _log(ax: Any, *axes: str) -> None:
    """Log scale with plain tick labels (LogFormatter): the default writes them as mathtext, which
    `text.parse_math = False` would print as its source."""
    from matplotlib.ticker import LogFormatter

    for name in axes:
        getattr(ax, f"set_{name}scale")("log")
        axis = getattr(ax, f"{name}axis")
        axis.set_major_formatter(LogFormatter())
        axis.set_minor_formatter(LogFormatter(labelOnlyBase=False))


def _png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    _pyplot().close(figure)
    return buffer.getvalue()


def _panels(count: int, height: float, columns: int = 2) -> tuple[Any, list[Any]]:
    columns = min(count, columns)
    rows = -(-count // columns)
    figure, axes = _pyplot().subplots(rows, columns, figsize=(WIDTH, height * rows), squeeze=False, layout="constrained")
    flat = [a for row in axes for a in row]
    for unused in flat[count:]:
        unused.set_visible(False)
    return figure, flat[:count]


def latency_cdf(panels: Sequence[tuple[str, Sequence[Curve]]]) -> bytes:
    """Cumulative latency distributions, one panel per set of input shapes."""
    figure, axes = _panels(len(panels), 3.6)
    for ax, (title, curves) in zip(axes, panels):
        for curve in curves[:MAX_SERIES]:
            style = {"drawstyle": "steps-post"} if curve.from_samples else {"marker": "o", "markersize": 3, "linestyle": "--"}
            ax.plot(curve.values, curve.percentiles, label=curve.label, linewidth=1.4, **style)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("latency (ms)")
        ax.set_ylabel("share of iterations (%)")
        ax.set_ylim(0, 101)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    figure.suptitle("latency distribution (solid: every iteration; dashed: percentiles only)", fontsize=11)
    return _png(figure)


def throughput(panels: Sequence[tuple[str, Sequence[Line]]]) -> bytes:
    """Samples per second against batch size, one line per model and backend, one panel per machine."""
    figure, axes = _panels(len(panels), 3.6)
    for ax, (title, lines) in zip(axes, panels):
        batches = sorted({x for line in lines for x, _ in line.points})
        for line in lines[:MAX_SERIES]:
            xs, ys = zip(*sorted(line.points))
            ax.plot(xs, ys, marker="o", label=line.label)
        ax.set_xscale("log", base=2)
        ax.set_xticks(batches, [f"{b:g}" for b in batches])
        ax.minorticks_off()
        ax.yaxis.set_major_formatter(_pyplot().FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("batch")
        ax.set_ylabel("samples / s")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    figure.suptitle("throughput vs batch", fontsize=11)
    return _png(figure)


def speedup_bars(panels: Sequence[tuple[str, Sequence[tuple[str, float]]]]) -> bytes:
    """Horizontal bars of speedup over the baseline row (1.0), one panel per machine and shapes."""
    labelled = [(title, [(textwrap.fill(label, 48), value) for label, value in bars[: MAX_SERIES * 2]]) for title, bars in panels]
    lines = max(sum(label.count("\n") + 1 for label, _ in bars) for _, bars in labelled)
    figure, axes = _panels(len(panels), max(2.0, 0.3 * lines + 1.2), columns=1)
    for ax, (title, bars) in zip(axes, labelled):
        labels, values = zip(*bars)
        colors = ["#4c72b0" if v >= 1 else "#c44e52" for v in values]
        ax.barh(range(len(values)), values, color=colors)
        ax.set_yticks(range(len(values)), labels, fontsize=8)
        ax.invert_yaxis()
        ax.axvline(1.0, color="black", linewidth=0.8)
        for y, value in enumerate(values):
            ax.text(value, y, f" {value:.2f}x", va="center", fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("speedup: baseline median / row median")
        ax.set_xlim(0, max(values) * 1.25)
    figure.suptitle("speedup", fontsize=11)
    return _png(figure)


def accuracy_vs_speed(panels: Sequence[tuple[str, Sequence[Point]]]) -> bytes:
    """Distance from the reference (1 - cosine, log) against throughput, coloured by precision."""
    figure, axes = _panels(len(panels), 4.0)
    for ax, (title, points) in zip(axes, panels):
        for group in sorted({p.group for p in points}):
            mine = [p for p in points if p.group == group]
            ax.scatter([p.x for p in mine], [p.y for p in mine], label=group, s=36)
            for p in mine:
                ax.annotate(p.label, (p.x, p.y), fontsize=7, xytext=(4, 3), textcoords="offset points")
        _log(ax, "x", "y")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("samples / s")
        ax.set_ylabel("1 - cosine vs the reference")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, title="precision", title_fontsize=8)
    figure.suptitle("accuracy vs speed", fontsize=11)
    return _png(figure)


def pareto(points: Sequence[Point], picked: str, y_label: str) -> bytes:
    """Accuracy against median latency, one point per candidate and backend; the front (no other point
    both faster and more accurate) joined, the pick ringed."""
    plt = _pyplot()
    figure, ax = plt.subplots(figsize=(WIDTH, 4.5))
    for group in sorted({p.group for p in points}):
        mine = [p for p in points if p.group == group]
        ax.scatter([p.x for p in mine], [p.y for p in mine], label=group, s=36)
    front, best = [], float("-inf")
    for p in sorted(points, key=lambda p: (p.x, -p.y)):
        if p.y > best:
            front.append(p)
            best = p.y
    ax.step([p.x for p in front], [p.y for p in front], where="post", color="grey", alpha=0.5, label="front")
    for p in points:
        ax.annotate(p.label, (p.x, p.y), fontsize=7, xytext=(4, 3), textcoords="offset points")
        if p.label == picked:
            ax.scatter([p.x], [p.y], s=220, facecolors="none", edgecolors="black", linewidths=1.5)
    _log(ax, "x")
    ax.ticklabel_format(axis="y", useOffset=False)
    ax.set_xlabel("median latency, ms")
    ax.set_ylabel(y_label)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, title="precision", title_fontsize=8)
    figure.suptitle("accuracy vs latency (ringed: the pick)", fontsize=11)
    figure.tight_layout()
    return _png(figure)
