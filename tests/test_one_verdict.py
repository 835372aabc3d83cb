"""Each verdict has one home: the same result files get the same speedups and the same gate verdict
from bench, report and sweep (records/speedup.py, records/gate.py)."""

import copy
import json
import re
import shutil

from conftest import cli, one_line_error
from onnx_models import mlp

FAST = ["--warmup", "1", "--iterations", "20", "--duration", "0"]


def _bench(tmp_path, *args):
    fp32 = mlp(tmp_path / "fp32.onnx")
    assert cli("quantize", fp32, "-p", "fp16", "-o", tmp_path / "fp16.onnx", "--quiet").returncode == 0
    done = cli("bench", fp32, tmp_path / "fp16.onnx", *FAST, "--json", tmp_path / "bench.json", *args)
    assert done.returncode == 0, done.stderr
    return json.loads((tmp_path / "bench.json").read_text())


def test_report_uses_the_baseline_row_bench_recorded(tmp_path):
    bench = _bench(tmp_path, "--baseline-row", "fp16")
    assert bench["settings"]["speedup_baseline"] == {"model": "fp16", "backend": None, "cell": None}
    by_model = {r["model"]: r["speedup"] for r in bench["rows"]}
    assert by_model["fp16"] == 1.0 and by_model["fp32"] != 1.0
    done = cli("report", tmp_path / "bench.json", "-o", tmp_path / "r.md", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    reported = {g["model"]: g["rows"][0]["speedup"] for g in summary["groups"]}
    assert reported == {k: round(v, 4) for k, v in by_model.items()}  # not re-based on the first row read
    assert summary["speedup_baseline"]["model"] == "fp16" and "(fp16)" in (tmp_path / "r.md").read_text()


def test_a_sweep_folder_takes_its_baseline_from_the_sweep_not_the_file_names(tmp_path):
    bench = _bench(tmp_path)
    folder = tmp_path / "sweep"
    (folder / "cells").mkdir(parents=True)
    cells = []
    for cell, label in (("z-first", "fp32"), ("a-second", "fp16")):  # file names sort the other way
        one = copy.deepcopy(bench)
        one["rows"] = [r for r in one["rows"] if r["model"] == label]
        one["cell"] = {"id": cell, "status": "ok"}
        (folder / "cells" / f"{cell}.json").write_text(json.dumps(one))
        cells.append({"id": cell, "status": "ok", "result": f"cells/{cell}.json"})
    summary = {"schema": "infertool.sweep/1", "env": bench["env"], "spec": {"path": "s.yaml", "sha256": "0"}, "cells": cells,
               "speedup_baseline": {"cell": "z-first"}}
    (folder / "sweep.json").write_text(json.dumps(summary))
    done = cli("report", folder, "-o", tmp_path / "r.md", "--json")
    assert done.returncode == 0, done.stderr
    speedups = {g["model"]: g["rows"][0]["speedup"] for g in json.loads(done.stdout)["groups"]}
    assert speedups["fp32"] == 1.0 and speedups["fp16"] != 1.0


def test_bench_and_report_give_one_gate_verdict_on_the_same_files(tmp_path):
    _bench(tmp_path)
    shutil.copy(tmp_path / "bench.json", tmp_path / "old.json")
    old = json.loads((tmp_path / "old.json").read_text())
    for row in old["rows"]:
        row["settings"]["graph_optimization"] = "basic"  # measured with other settings: not comparable
        for stats in (row["latency_ms"], *row["timings_ms"].values()):
            stats["median"] /= 10
    (tmp_path / "old.json").write_text(json.dumps(old))
    fp32 = tmp_path / "fp32.onnx"
    bench = cli("bench", fp32, tmp_path / "fp16.onnx", *FAST, "--baseline", tmp_path / "old.json", "--json")
    report = cli("report", tmp_path / "bench.json", "-o", tmp_path / "r.md", "--baseline", tmp_path / "old.json", "--json")
    assert bench.returncode == report.returncode == 0, (bench.stderr, report.stderr)
    statuses = lambda gate: sorted((r["model"], r["backend"], r["batch"], r["status"]) for r in gate["rows"])  # noqa: E731
    bench_gate, report_gate = json.loads(bench.stdout)["gate"], json.loads(report.stdout)["gate"]
    assert statuses(bench_gate) == statuses(report_gate) and {s for *_, s in statuses(bench_gate)} == {"not compared"}
    old = json.loads((tmp_path / "old.json").read_text())
    for row in old["rows"]:
        row["settings"] = json.loads((tmp_path / "bench.json").read_text())["rows"][0]["settings"]  # comparable again: 10x slower now
    (tmp_path / "old.json").write_text(json.dumps(old))
    bench = cli("bench", fp32, tmp_path / "fp16.onnx", *FAST, "--baseline", tmp_path / "old.json")
    report = cli("report", tmp_path / "bench.json", "-o", tmp_path / "r2.md", "--baseline", tmp_path / "old.json")
    assert bench.returncode == report.returncode == 1
    assert "performance regression" in one_line_error(bench) and "performance regression" in one_line_error(report)


def test_markdown_carries_no_markup_from_labels(tmp_path):
    hostile = "<script>alert(1)</script>[x](javascript:alert(1))"
    model = mlp(tmp_path / "<img src=x onerror=alert(1)>.onnx")
    done = cli("bench", model, *FAST, "--label", hostile, "--json", tmp_path / "b.json", "--markdown", tmp_path / "b.md")
    assert done.returncode == 0, done.stderr
    assert cli("report", tmp_path / "b.json", "-o", tmp_path / "r.md").returncode == 0
    for text in ((tmp_path / "b.md").read_text(), (tmp_path / "r.md").read_text()):
        assert "<script>" not in text and "<img" not in text
        assert re.search(r"(?<!\\)\]\(javascript:", text) is None  # a link only where the bracket is not escaped
    assert "&lt;img src=x" in (tmp_path / "b.md").read_text() and "&lt;script&gt;" in (tmp_path / "r.md").read_text()
