"""bench results as CSV and Markdown (the job summary of CI)."""

from __future__ import annotations

from infertool.present import markdown
from infertool.present.numbers import ms, percent, sig
from infertool.stats import throughput
from infertool.tensors import format_shape
from infertool.text import byte_size

MODE_LABELS = {"end_to_end": "e2e", "device_resident": "device"}


def timing(row, mode: str, stat: str = "median") -> float | None:
    stats = row.timings.get(mode)
    return None if stats is None else getattr(stats, stat)


def row_precision(row, model: dict) -> str:
    """The row's precision; for the graph's own, its label (int8-qdq, int8-ort, int8-dyn)."""
    return model.get("precision_label", row.precision) if row.precision == model["precision"] else row.precision


NUMBERS = ("batch", "median ms", "p90 ms", "p99 ms", "CV", "samples/s", "speedup", "GPU mem")
CSV_COLUMNS = (
    "backend", "batch", "precision", "latency_mode", "median_ms", "mean_ms", "min_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms",
    "std_ms", "cv", "iterations", "inferences_per_s", "samples_per_s", "speedup", "end_to_end_median_ms",
    "device_resident_median_ms", "gpu_compute_median_ms", "model_file_bytes", "host_rss_increase_bytes", "gpu_bytes",
    "agreement_passed", "max_abs_err", "min_cosine",
    # against --labels-csv (ground truth)
    "top1_accuracy", "top5_accuracy",
    # which run a row comes from, so rows appended from several runs can be told apart
    "input_shapes", "precision_label", "threads", "model", "sha256", "timestamp",
    # the model's label where one bench compares several
    "model_label",
)


def bench_csv(result) -> str:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in result.rows:
        data = row.to_dict()
        lat = data["latency_ms"]
        outputs = row.agreement.outputs if row.agreement else ()
        writer.writerow(markdown.csv_cell(cell) for cell in [
            row.backend, row.batch, row.precision, row.latency_mode, lat["median"], lat["mean"], lat["min"], lat["p90"],
            lat["p95"], lat["p99"], lat["max"], lat["std"], lat["cv"], lat["count"], data["throughput"]["inferences_per_s"],
            data["throughput"]["samples_per_s"], data["speedup"],
            *(timing(row, m) for m in ("end_to_end", "device_resident", "gpu_compute")),
            row.memory.get("model_file_bytes"), row.memory.get("host_rss_increase_bytes"), row.memory.get("gpu_bytes"),
            None if row.agreement is None else row.agreement.passed,
            max((a.max_abs for a in outputs), default=None), min((a.cosine for a in outputs), default=None),
            None if row.accuracy is None else row.accuracy.top1, None if row.accuracy is None else row.accuracy.top5,
            ",".join(f"{name}:{format_shape(shape)}" for name, shape in row.input_shapes.items()), row_precision(row, result.model),
            row.settings.get("intra_op_threads"), result.model["path"], result.model["sha256"], result.env.get("time"), row.model,
        ])
    return buffer.getvalue()


def bench_markdown(result) -> str:
    """The bench as Markdown (the CI job summary); every name from the user or the model escaped."""
    model = result.model
    several = len({r.backend for r in result.rows}) > 1
    gpu = any(r.memory.get("gpu_bytes") is not None for r in result.rows)
    many = len(result.models) > 1
    header = ["model"] * many + ["backend", "batch", "inputs", "prec", "timed", "median ms", "p90 ms", "p99 ms", "CV", "samples/s"]
    header += ["speedup"] * several + ["GPU mem"] * gpu + ["agreement"]
    titles = ", ".join(f"{m['path']} ({m.get('precision_label', m['precision'])})" for m in (result.models if many else [model]))
    rows = []
    for row in result.rows:
        stats = row.latency
        cells = [row.model] * many + [row.backend, str(row.batch), ", ".join(f"{n} {format_shape(s)}" for n, s in row.input_shapes.items()), row_precision(row, model),
                 MODE_LABELS[row.latency_mode], ms(stats.median), ms(stats.p90), ms(stats.p99), f"{stats.cv:.1%}",
                 sig(throughput(stats, row.batch)["samples_per_s"], thousands=True)]
        cells += ["-" if row.speedup is None else f"{row.speedup:.2f}x"] * several
        cells += ["-" if row.memory.get("gpu_bytes") is None else byte_size(row.memory["gpu_bytes"])] * gpu
        rows.append([*cells, _agreement_word(row)])
    lines = [f"### infertool bench: {markdown.text(titles)}", "", *markdown.table(header, rows, NUMBERS)]
    return "\n".join([*lines, *_markdown_tail(result)]) + "\n"


def _agreement_word(row) -> str:
    if row.agreement is None:
        return "-"
    judgement = row.agreement.judgement
    return "ok" if judgement.passed else f"FAIL ({len(judgement.failing)}/{judgement.samples} samples)"


def _markdown_tail(result) -> list[str]:
    """The gate, the accuracy against ground truth and the skipped backends, below the table."""
    lines = []
    if result.gate is not None:
        judged = sum(r.judged for r in result.gate.rows)
        lines += ["", f"Regression gate ({result.gate.stat}, limit +{result.gate.max_regression * 100:g}%, {judged} of {len(result.gate.rows)} rows compared): "
                  + ("passed" if result.gate.passed else "**FAILED**")]
    labelled = [r for r in result.rows if r.accuracy is not None]
    if labelled:
        lines += ["", f"Accuracy against {markdown.text(labelled[0].accuracy.labels)} ({labelled[0].accuracy.samples} samples):", ""]
        lines += markdown.table(("backend", "batch", "prec", "top-1", "top-5"), [
            (r.backend, r.batch, row_precision(r, result.model), percent(r.accuracy.top1), percent(r.accuracy.top5)) for r in labelled
        ], ("batch", "top-1", "top-5"))
    if result.skipped:
        lines += ["", *(f"Skipped {markdown.text(s['backend'])}: {markdown.text(s['reason'])}" for s in result.skipped)]
    return lines
