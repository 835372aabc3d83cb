"""What `quantize` prints: the graph, calibration, accuracy per sample and the gate."""

from __future__ import annotations

from rich.console import Console

from infertool.cli.console import escape
from infertool.cli.show.grid import TEXT, Column, grid, mark, pairs, present
from infertool.present.numbers import cosine, error, failing, percent
from infertool.text import byte_size


def _graph_summary(graph: dict) -> str:
    def value(v: object) -> str:
        return ", ".join(map(str, v)) or "none" if isinstance(v, (list, tuple)) else str(v)

    return "; ".join(f"{k.replace('_', ' ')} {value(v)}" for k, v in graph.items())


def quantize_result(result, console: Console) -> None:
    items = [("size", f"{byte_size(result.source.bytes)} → {byte_size(result.output.bytes)}  ({result.seconds:.1f} s)"), ("graph", escape(_graph_summary(result.graph)))]
    if result.calibration:
        c = result.calibration
        clipped = f", ranges of {c['clipped_tensors']} of {c['tensors']} tensors clipped" if "clipped_tensors" in c else ""
        items.append(("calibration", f"{c['method']} on {c['samples'] or '-'} samples of {escape(str(c['data'] or 'cache'))}" + (", ranges from cache" if c["cache_hit"] else "") + clipped))
    items += [("note", escape(note)) for note in result.notes]
    pairs(console, f"{escape(result.source.path)} → {escape(result.output.path)} ({result.precision})", items)
    console.print()
    accuracy = result.accuracy
    if accuracy.unavailable:
        console.print(f"[yellow]accuracy not evaluated on {escape(accuracy.backend)}:[/] {escape(accuracy.unavailable)}")
    else:
        columns = [Column("output", TEXT, shared="output {}"), Column("rule", TEXT, shared="rule {}", drop=2), Column("max abs err", drop=1),
                   Column("worst cosine"), Column("top-1"), Column("top-5", drop=3), Column("failing"), Column("result")]
        rows = [[escape(a.name), escape(a.rule), error(a.max_abs), cosine(a.cosine), percent(a.top1), percent(a.top5), failing(a), mark(a.passed)]
                for a in accuracy.outputs]
        title = f"accuracy: fp32 vs {result.precision} on {escape(accuracy.backend)}, each of {accuracy.samples} samples of {escape(accuracy.data)} judged"
        grid(console, title, *present(columns, rows))
        if accuracy.emulation:
            console.print(f"[yellow]emulated:[/] {escape(accuracy.emulation)}", highlight=False)
    if accuracy.original_accuracy is not None:
        _ground_truth(result, console)
    _gate_lines(result, console)


def _gate_lines(result, console: Console) -> None:
    for name, gate in result.gates.items():
        console.print(f"gate {name}: {escape(gate.get('summary', 'not evaluated'))} {mark(gate['passed'])}", highlight=False)
    if not result.gates:
        console.print("gate: none (--no-gate)" if not result.settings.get("gate", True) else "gate: none ran")


def _ground_truth(result, console: Console) -> None:
    original, converted = result.accuracy.original_accuracy, result.accuracy.converted_accuracy
    rows = [[f"original ({escape(result.source.path)})", percent(original.top1), percent(original.top5)]]
    if converted is not None:
        rows.append([f"{result.precision} ({escape(result.output.path)})", percent(converted.top1), percent(converted.top5)])
    title = f"accuracy against {escape(original.labels)} ({original.samples} labelled samples, output '{escape(original.output)}')"
    console.print()
    grid(console, title, [Column("model", TEXT), Column("top-1"), Column("top-5")], rows)
