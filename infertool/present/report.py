"""The report document: sections of headings, text, tables and plots, written as Markdown (PNG files
in a folder beside it) or as one self-contained HTML file (images embedded as data URIs)."""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass

from infertool import __version__
from infertool.environment import utc_now
from infertool.files import check_output, staged_output, write_text_atomic
from infertool.present import markdown, plots
from infertool.present.numbers import ms
from infertool.stats import throughput
from infertool.text import byte_size

MAX_PANELS = 8  # a plot shows this many panels (shapes, machines) at most
COSINE_FLOOR = 1e-9  # 1 - cosine below this is drawn at it (a log axis has no zero)


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: list[tuple[str, ...]]
    right: frozenset[str] = frozenset()  # columns aligned right (numbers)


@dataclass(frozen=True)
class Image:
    name: str
    png: bytes
    alt: str


# a block: ("h", level, text) | ("p", text) | ("list", [text]) | Table | Image
Block = tuple | Table | Image
NUMBERS = frozenset({"median ms", "p90", "p99", "CV", "samples/s", "speedup", "cosine", "cores", "size", "batch", "seconds", "change", "baseline ms", "now ms"})


def _commit(env: dict) -> str:
    commit = env.get("git_commit")
    return f"{env.get('infertool_version', '?')}" + (f" @ {commit[:10]}{'+' if env.get('git_dirty') else ''}" if commit else "")


# ---------------------------------------------------------------- sections


def _overview(merged, gate) -> list[Block]:
    kinds: dict[str, int] = {}
    for source in merged.sources:
        kinds[source.kind] = kinds.get(source.kind, 0) + 1
    what = ", ".join(f"{n} {kind}" for kind, n in kinds.items())
    text = (f"{len(merged.sources)} results ({what}) from {len(merged.machines)} machine{'s' * (len(merged.machines) != 1)}; "
            f"{len(merged.rows)} benchmark rows in {len(merged.groups())} comparable groups. Written {utc_now()} by infertool {__version__}.")
    blocks: list[Block] = [("h", 1, "infertool report"), ("p", text)]
    if gate is not None:
        blocks.append(("p", f"Regression gate ({gate.stat}, limit +{gate.max_regression:.0%}): {'passed' if gate.passed else 'FAILED'}."))
    return blocks


def _machines(merged) -> list[Block]:
    table = Table(("machine", "host", "CPU", "cores", "GPUs", "onnxruntime", "TensorRT", "infertool"), [], frozenset({"cores"}))
    for m in merged.machines:
        packages = m.env.get("packages") or {}
        gpus = ", ".join(m.gpus) + (f" (driver {m.env['gpus'][0].get('driver')})" if m.gpus else "") if m.gpus else "none"
        table.rows.append((m.id, m.hostname, m.cpu, str(m.env.get("cpu_count", "?")), gpus, packages.get("onnxruntime") or "-",
                           packages.get("tensorrt") or "-", _commit(m.env)))
    return [("h", 2, "Machines"), table]


def _what(source) -> str:
    record = source.record
    if source.kind == "bench":
        models = ", ".join(record.labelled_models())
        return f"{len(record.rows)} rows of {models}" + (f" (sweep cell {source.cell})" if source.cell else "")
    if source.kind == "quantize":
        return f"{record.precision} of {record.source.path}"
    if source.kind == "build-engine":
        return f"{record.sidecar.get('precision')} engine {record.engine.path}"
    if source.kind == "sweep":
        return f"{len(record.cells)} cells of {record.spec.get('path', '?')}"
    return f"cell {record.cell['id']} failed"


def _sources(merged) -> list[Block]:
    table = Table(("run", "file", "kind", "machine", "time (UTC)", "what"), [])
    for s in merged.sources:
        table.rows.append((s.id, s.path.name, s.kind, s.machine.id if s.machine else "-", s.env.get("timestamp_utc") or "-", _what(s)))
    return [("h", 2, "Results"), table]


def _agreement(row) -> str:
    """The verdict bench recorded (agreement.Judgement), with its worst cosine."""
    agreement = row.measured.row.agreement
    if agreement is None:
        return "-"
    judgement = agreement.judgement
    cosine = judgement.min_cosine
    verdict = "ok" if judgement.passed else "FAIL" if not judgement.failing else f"FAIL {len(judgement.failing)}/{judgement.samples}"
    return verdict + ("" if cosine is None else f" (cos {cosine:.6f})")


def _threads(row) -> str:
    threads = row.measured.row.settings.get("effective_threads")
    if not isinstance(threads, dict):
        return "-"
    return f"{threads.get('intra_op', '?')}/{threads.get('inter_op', '?')}"


def _group_table(rows) -> Table:
    differ = variants(rows)
    table = Table(("machine", "run", "model", "backend", "settings", "timed", "median ms", "p90", "p99", "CV", "samples/s", "speedup", "agreement",
                   "threads", "warnings"), [], NUMBERS)
    for r in rows:
        row, lat = r.measured.row, r.measured.row.latency
        table.rows.append((
            r.source.machine.id, r.source.id, r.measured.label, row.backend, differ[id(r)] or "-", row.latency_mode.replace("_", "-"),
            ms(lat.median), ms(lat.p90), ms(lat.p99), f"{lat.cv:.1%}", f"{_rate(r):,.1f}",
            "-" if r.speedup is None else f"{r.speedup:.2f}x", _agreement(r), _threads(r), str(len(row.warnings) or "-"),
        ))
    return table


def _comparison(rows) -> Table:
    """Every row of one machine, by input shapes: the models, precisions and backends side by side."""
    differ = variants(rows)
    order = list(dict.fromkeys(r.shapes for r in rows))
    table = Table(("shapes", "model", "prec", "backend", "settings", "run", "median ms", "p99", "CV", "samples/s", "speedup", "agreement"), [], NUMBERS)
    for r in sorted(rows, key=lambda r: order.index(r.shapes)):
        row, lat = r.measured.row, r.measured.row.latency
        table.rows.append((
            r.shapes, r.measured.label, row.precision, row.backend, differ[id(r)] or "-", r.source.id, ms(lat.median), ms(lat.p99),
            f"{lat.cv:.1%}", f"{_rate(r):,.1f}", "-" if r.speedup is None else f"{r.speedup:.2f}x", _agreement(r),
        ))
    return table


def _rate(row) -> float:
    return throughput(row.measured.row.latency, row.measured.row.batch)["samples_per_s"]


def _benchmarks(merged) -> list[Block]:
    if not merged.rows:
        return []
    blocks: list[Block] = [("h", 2, "Benchmarks"), ("p", (
        f"Speedup: median latency of the baseline row on the same machine and input shapes ({merged.baseline.describe()}) over "
        "the row's; never across machines. Settings: what differs between rows of one model and backend. "
        "Agreement: with each run's reference, every sample judged (k/N: samples failing)."
    ))]
    for machine in merged.machines:
        mine = [r for r in merged.rows if r.source.machine is machine]
        if mine:
            blocks += [("h", 3, f"On {machine.title} ({', '.join(machine.gpus) or machine.cpu})"), _comparison(mine)]
    shared = {key: rows for key, rows in merged.groups().items() if len(rows) > 1}
    blocks += [("h", 2, "The same measurement in several runs"), ("p", (
        "Rows on the same model file (sha256), input shapes and precision, from different runs or machines: each keeps its machine (M) "
        "and run (R), never averaged together. Threads: intra-/inter-op threads ONNX Runtime ran with."
        if shared else "Each row measured a different model file, input shapes or precision: nothing to set side by side."
    ))]
    for (sha, shapes, precision), rows in shared.items():
        labels = " = ".join(dict.fromkeys(r.measured.label for r in rows))
        blocks += [("h", 3, f"{labels} · {precision} · {shapes} · sha256 {sha[:12]}"), _group_table(rows)]
    return blocks


def _quantize(merged) -> list[Block]:
    sources = merged.of_kind("quantize")
    if not sources:
        return []
    table = Table(("run", "source", "output", "precision", "size", "worst cosine", "top-1", "failing", "gates"), [], frozenset({"size", "worst cosine", "top-1"}))
    for s in sources:
        q = s.record
        judgement = q.accuracy.judgement
        cosine, top1 = q.accuracy.min_cosine, q.accuracy.top1
        failing = "-" if judgement is None else f"{len(judgement.failing)}/{judgement.samples}"
        gates = ", ".join(f"{name} {'ok' if g['passed'] else 'FAIL'}" for name, g in q.gates.items()) or "-"
        table.rows.append((s.id, q.source.path, q.output.path, q.precision, f"{byte_size(q.source.bytes)} → {byte_size(q.output.bytes)}",
                           "-" if cosine is None else f"{cosine:.6f}", "-" if top1 is None else f"{top1:.1%}", failing, gates))
    return [("h", 2, "Quantization (accuracy on the evaluation data)"), table]


def _engines(merged) -> list[Block]:
    sources = merged.of_kind("build-engine")
    if not sources:
        return []
    table = Table(("run", "engine", "precision", "TensorRT", "GPU", "seconds", "size"), [], frozenset({"seconds", "size"}))
    for s in sources:
        car = s.record.sidecar
        table.rows.append((s.id, s.record.engine.path, str(car.get("precision")), str(car.get("tensorrt_version")),
                           _built_on(car.get("gpu")), f"{car.get('build_seconds') or 0:.1f}", byte_size(car.get("engine_bytes") or 0)))
    return [("h", 2, "Engines"), table]


def _built_on(gpu: dict | None) -> str:
    return "built without a GPU" if gpu is None else f"{gpu['name']} (sm {gpu['compute_capability']})"


def _sweeps(merged) -> list[Block]:
    sweeps, failed = merged.of_kind("sweep"), merged.of_kind("sweep cell")
    if not sweeps and not failed:
        return []
    table = Table(("run", "spec", "shard", "executor", "cells", "ok", "failed", "skipped"), [], frozenset({"cells", "ok", "failed", "skipped"}))
    for s in sweeps:
        counts = s.record.counts
        table.rows.append((s.id, str(s.record.spec.get("path")), s.record.shard or "-", s.record.executor or "-",
                           str(len(s.record.cells)), str(counts.get("ok", 0)), str(counts.get("failed", 0)), str(counts.get("skipped", 0))))
    blocks: list[Block] = [("h", 2, "Sweeps"), table]
    if failed:
        blocks.append(("p", "Failed cells (no result; each was retried):"))
        blocks.append(("list", [f"{s.record.cell['id']} on {s.machine.id if s.machine else '?'}: {s.record.error}" for s in failed]))
    return blocks


def _warnings(merged) -> list[Block]:
    lines = [f"{r.source.id} {r.measured.label} {r.measured.row.backend} batch {r.measured.row.batch}: {w}" for r in merged.rows for w in r.measured.row.warnings]
    lines += [f"{s.id}: {n}" for s in merged.of_kind("quantize") for n in s.record.notes]
    return [("h", 2, "Warnings"), ("list", lines)] if lines else []


def _gate(gate) -> list[Block]:
    if gate is None:
        return []
    table = Table(("machine", "model", "backend", "batch", "baseline ms", "now ms", "change", "result"), [], NUMBERS)
    for r in gate.rows:
        table.rows.append((r.machine or "-", r.model or "-", r.backend, str(r.batch), ms(r.baseline_ms), ms(r.current_ms),
                           "-" if r.change is None else f"{r.change:+.1%}", "REGRESSED" if r.regressed else "ok"))
    blocks: list[Block] = [("h", 2, f"Regression gate vs {gate.baseline} ({gate.stat}, limit +{gate.max_regression:.0%})"), table]
    return blocks + ([("list", list(gate.notes))] if gate.notes else [])


# ---------------------------------------------------------------- plots


def _by(rows, key) -> dict:
    found: dict = {}
    for row in rows:
        found.setdefault(key(row), []).append(row)
    return found


def _value(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))


# settings that differ from run to run without changing what runs: a thread count ORT chose, the
# address of the CUDA stream infertool handed it (results written before it was left out)
VOLATILE = {"effective_threads", "provider_options.user_compute_stream"}


def _flat_settings(row) -> dict:
    """A row's settings with nested groups spelled out: provider_options.prefer_nhwc."""
    flat = {}
    for key, value in row.measured.row.settings.items():
        items = value.items() if isinstance(value, dict) else [(None, value)]
        flat.update({key if sub is None else f"{key}.{sub}": item for sub, item in items})
    return {k: v for k, v in flat.items() if k not in VOLATILE}


def variants(rows) -> dict[int, str]:
    """For rows of one model and backend run with different settings (CUDA graphs on and off, thread
    counts...): what differs, e.g. 'cuda_graph=true', by id(row); '' where nothing does."""
    found = {}
    for group in _by(rows, lambda r: (r.measured.model["sha256"], r.measured.row.backend)).values():
        settings = [_flat_settings(r) for r in group]
        keys = sorted({k for s in settings for k in s})
        differ = [k for k in keys if len({_value(s.get(k)) for s in settings}) > 1]
        for r, s in zip(group, settings):
            found[id(r)] = ", ".join(f"{k}={_value(s.get(k))}" for k in differ)
    return found


def _labels(rows, machines: bool) -> dict[int, str]:
    """A name per row, unique within `rows`: model and backend, then machine, settings and run as needed."""
    differ = variants(rows)
    labels = {id(r): " · ".join(filter(None, (r.measured.label, r.measured.row.backend, machines and r.source.machine.id, differ[id(r)]))) for r in rows}
    taken = [labels[id(r)] for r in rows]
    return {id(r): labels[id(r)] + (f" · {r.source.id}" if taken.count(labels[id(r)]) > 1 else "") for r in rows}


def _rest(row) -> str:
    """The input shapes without the batch axis: rows that differ only in batch share it."""
    return ", ".join(f"{n} {'x'.join(map(str, ['N', *d[1:]]))}" for n, d in sorted(row.measured.row.input_shapes.items()))


def _curve(row, label: str) -> plots.Curve:
    bench = row.measured.row
    samples = bench.samples.get(bench.latency_mode)
    if samples:
        values = sorted(s / 1e6 for s in samples)
        return plots.Curve(label, tuple(values), tuple(100 * (i + 1) / len(values) for i in range(len(values))), True)
    lat = bench.latency
    return plots.Curve(label, (lat.min, lat.median, lat.p90, lat.p95, lat.p99, lat.max), (0, 50, 90, 95, 99, 100), False)


def _latency(merged) -> Image:
    panels = []
    for shapes, group in list(_by(merged.rows, lambda r: r.shapes).items())[:MAX_PANELS]:
        names = _labels(group, len(merged.machines) > 1)
        panels.append((shapes, [_curve(r, names[id(r)]) for r in group]))
    return Image("latency.png", plots.latency_cdf(panels), "latency distribution per row")


def _throughput(merged) -> Image | None:
    """One line per model, backend and settings; one panel per machine and input shapes but the batch."""
    panels = []
    for (machine, rest), group in list(_by(merged.rows, lambda r: (r.source.machine.title, _rest(r))).items())[:MAX_PANELS]:
        differ = variants(group)
        series = _by(group, lambda r, differ=differ: (r.measured.label, r.measured.row.backend, differ[id(r)]))
        panels.append((f"{machine} · {rest}", [
            plots.Line(" · ".join(filter(None, key)), tuple((r.measured.row.batch, _rate(r)) for r in mine)) for key, mine in series.items()
        ]))
    if not any(len({x for x, _ in line.points}) > 1 for _, lines in panels for line in lines):
        return None  # one batch size each: no line to draw
    return Image("throughput.png", plots.throughput(panels), "throughput vs batch per backend")


def _speedups(merged) -> Image | None:
    panels = []
    for (machine, shapes), group in _by([r for r in merged.rows if r.speedup is not None], lambda r: (r.source.machine.id, r.shapes)).items():
        names = _labels(group, False)
        if len(group) > 1:
            panels.append((f"{machine} · {shapes}", [(names[id(r)], r.speedup) for r in group]))
    return Image("speedup.png", plots.speedup_bars(panels[:MAX_PANELS]), "speedup over the baseline row") if panels else None


def _accuracy(merged) -> Image | None:
    panels = []
    for machine, group in _by([r for r in merged.rows if _min_cosine(r) is not None], lambda r: r.source.machine.title).items():
        panels.append((machine, [plots.Point(_rate(r), max(1 - _min_cosine(r), COSINE_FLOOR), r.measured.row.precision,
                                             f"{r.measured.label} b{r.measured.row.batch}") for r in group]))
    return Image("accuracy.png", plots.accuracy_vs_speed(panels[:MAX_PANELS]), "accuracy vs speed per precision") if panels else None


def _plots(merged) -> list[Image]:
    if not merged.rows:
        return []
    return [i for i in (_latency(merged), _throughput(merged), _speedups(merged), _accuracy(merged)) if i is not None]


def _min_cosine(row) -> float | None:
    """The worst sample's cosine bench recorded; None without an agreement check (or with NaN outputs)."""
    agreement = row.measured.row.agreement
    cosine = None if agreement is None else agreement.judgement.min_cosine
    return None if cosine is None or cosine != cosine else cosine


PLOT_TEXT = {
    "latency.png": "Latency distribution of every row at each input shape: the share of iterations at or under a latency "
                   "(solid where the run kept its samples with --save-samples, dashed through the percentiles otherwise).",
    "throughput.png": "Samples per second against batch size, per model, backend and settings; a panel per machine and input shapes.",
    "speedup.png": "Speedup of each row over the baseline row of its machine and input shapes.",
    "accuracy.png": f"Distance of each row's outputs from the reference (1 - cosine, drawn at {COSINE_FLOOR:g} when closer) against throughput, by precision.",
}


# ---------------------------------------------------------------- writing


def build(merged, gate) -> tuple[list[Block], list[Image]]:
    images = _plots(merged)
    figures: list[Block] = [("h", 2, "Plots")] if images else []
    for image in images:
        figures += [("h", 3, image.alt), ("p", PLOT_TEXT[image.name]), image]
    blocks = [
        *_overview(merged, gate), *_gate(gate), *_machines(merged), *_sources(merged), *_benchmarks(merged), *figures,
        *_quantize(merged), *_engines(merged), *_sweeps(merged), *_warnings(merged),
    ]
    if merged.notes:
        blocks += [("h", 2, "Notes"), ("list", list(merged.notes))]
    return blocks, images


def to_markdown(blocks: list[Block], folder: str) -> str:
    """The document as Markdown: every text escaped (present/markdown.py), images in `folder`."""
    out: list[str] = []
    for block in blocks:
        if isinstance(block, Table):
            out += markdown.table(block.header, block.rows, block.right)
        elif isinstance(block, Image):
            out.append(f"![{markdown.text(block.alt)}]({markdown.link_target(f'{folder}/{block.name}')})")
        elif block[0] == "h":
            out.append("#" * block[1] + " " + markdown.text(block[2]))
        elif block[0] == "p":
            out.append(markdown.text(block[1]))
        else:
            out += [f"- {markdown.text(item)}" for item in block[1]]
        out.append("")
    return "\n".join(out)


STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1200px;padding:0 1rem;color:#222}"
    "table{border-collapse:collapse;margin:.5rem 0 1.5rem;font-size:.85rem}th,td{border:1px solid #ccc;padding:.25rem .5rem}"
    "th{background:#f0f0f0}td.r{text-align:right;font-variant-numeric:tabular-nums}img{max-width:100%;border:1px solid #eee}"
)


def _html_table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.header)
    body = "".join(
        "<tr>" + "".join(f"<td class='r'>{html.escape(v)}</td>" if c in table.right else f"<td>{html.escape(v)}</td>" for c, v in zip(table.header, row)) + "</tr>"
        for row in table.rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def to_html(blocks: list[Block]) -> str:
    parts = []
    for block in blocks:
        if isinstance(block, Table):
            parts.append(_html_table(block))
        elif isinstance(block, Image):
            data = base64.b64encode(block.png).decode()
            parts.append(f"<figure><img src='data:image/png;base64,{data}' alt='{html.escape(block.alt)}'></figure>")
        elif block[0] == "h":
            parts.append(f"<h{block[1]}>{html.escape(block[2])}</h{block[1]}>")
        elif block[0] == "p":
            parts.append(f"<p>{html.escape(block[1])}</p>")
        else:
            parts.append("<ul>" + "".join(f"<li>{html.escape(item)}</li>" for item in block[1]) + "</ul>")
    return f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>infertool report</title><style>{STYLE}</style></head>\n<body>\n" + "\n".join(parts) + "\n</body></html>\n"


def write_document(merged, gate, options) -> list[str]:
    """Write the report; returns the plots' names. Markdown keeps them in `<stem>_files/` beside it."""
    blocks, images = build(merged, gate)
    if options.format == "html":
        write_text_atomic(options.output, to_html(blocks), options.force)
        return [i.name for i in images]
    folder = f"{options.output.stem}_files"
    check_output(options.output, options.force, options.output.parent / folder, directory=True)
    # the plots a report may draw are the only files of the folder it replaces: the rest are the user's
    with staged_output(options.output, options.force, directory=True, owned=tuple(PLOT_TEXT)) as staging:
        (staging / options.output.name).write_text(to_markdown(blocks, folder), encoding="utf-8")
        if images:
            (staging / folder).mkdir()
            for image in images:
                (staging / folder / image.name).write_bytes(image.png)
    return [f"{folder}/{i.name}" for i in images]
