"""`infertool report`: real bench and quantize results merged into Markdown (with PNG plots that
decode) and into one HTML file that a real headless Chromium loads with its images showing."""

import copy
import html
import json
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from infertool.present.numbers import ms

from conftest import ROOT, cli, one_line_error
from onnx_models import mlp

FAST = ["--warmup", "2", "--iterations", "30", "--duration", "0"]
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """A two-model bench (samples kept), a quantize result, and the bench as if from a second machine."""
    folder = tmp_path_factory.mktemp("results")
    fp32 = mlp(folder / "fp32.onnx")
    done = cli("quantize", fp32, "-p", "fp16", "-o", folder / "fp16.onnx", "--json", folder / "quantize.json", "--quiet")
    assert done.returncode == 0, done.stderr
    done = cli("bench", fp32, folder / "fp16.onnx", "--batch", "1,4", *FAST, "--save-samples", "--json", folder / "bench.json")
    assert done.returncode == 0, done.stderr
    other = json.loads((folder / "bench.json").read_text())
    other["env"].update(hostname="gpu-box-2", cpu="Other CPU @ 3.0GHz", timestamp_utc="2030-01-01T00:00:00.000Z")
    for row in other["rows"]:  # the same models and shapes measured elsewhere: slower, no samples kept
        for stats in (row["latency_ms"], row["timings_ms"]["end_to_end"]):  # one measurement, two copies in the file
            stats["median"] *= 2
        row["samples_ns"] = None
    (folder / "elsewhere").mkdir()
    (folder / "elsewhere" / "bench.json").write_text(json.dumps(other))
    return folder


def rows_of(path):
    return json.loads(path.read_text())["rows"]


def test_markdown_report_has_every_row_and_plots_that_decode(results, tmp_path):
    out = tmp_path / "report.md"
    result = cli("report", results / "bench.json", results / "quantize.json", results / "elsewhere", "-o", out, "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["schema"] == "infertool.report/1" and [m["hostname"] for m in summary["machines"]][1] == "gpu-box-2"
    text = out.read_text()
    for run, machine, path in (("R1", "M1", results / "bench.json"), ("R3", "M2", results / "elsewhere" / "bench.json")):
        for row in rows_of(path):
            line = f"| {machine} | {run} | {row['model']} | ort-cpu | - | end-to-end | {ms(row['latency_ms']['median'])} |"
            assert line in text, line
    assert "| R2 | quantize.json | quantize |" in text and "fp16 of" in text
    for machine in ("M1 ", "M2 gpu-box-2"):  # one table per machine: every model, precision and batch it ran
        table = text.split(f"### On {machine}", 1)[1].split("###", 1)[0]
        assert [line.split(" | ")[1:3] for line in table.splitlines() if line.startswith("| x ")] == [
            ["fp32", "fp32"], ["fp16", "fp16"], ["fp32", "fp32"], ["fp16", "fp16"]]
    # the same model, shapes and precision on two machines: one group, both rows, each machine's own speedup
    group = text.split("### fp32 · fp32 · x 4x16", 1)[1].split("###", 1)[0]
    assert "| M1 | R1 |" in group and "| M2 | R3 |" in group and group.count("| 1.00x |") == 2
    assert len(summary["groups"]) == 4 and all(len(g["rows"]) == 2 for g in summary["groups"])
    images = sorted((tmp_path / "report_files").iterdir())
    assert [p.name for p in images] == ["accuracy.png", "latency.png", "speedup.png", "throughput.png"]
    for image in images:
        assert f"](report_files/{image.name})" in text
        assert image.stat().st_size > 10_000
        with Image.open(image) as picture:
            picture.load()
            assert picture.format == "PNG" and picture.width >= 800 and picture.height >= 300
            assert np.asarray(picture.convert("L")).std() > 10  # drawn on, not blank


def _browser():
    return next((shutil.which(name) for name in BROWSERS if shutil.which(name)), None)


def test_html_report_loads_in_a_real_browser_with_its_images(results, tmp_path):
    out = tmp_path / "report.html"
    result = cli("report", results, "-o", out)
    assert result.returncode == 0, result.stderr
    page = out.read_text()
    assert page.count("<img src='data:image/png;base64,") == 4 and "report_files" not in page
    assert not (tmp_path / "report_files").exists()  # one self-contained file
    browser = _browser()
    if browser is None:
        pytest.skip("no Chromium to load the report in (apt-get install chromium; .ci/run does)")
    probe = ("<script>addEventListener('load', () => document.body.setAttribute('data-images', JSON.stringify("
             "[...document.images].map(i => [i.complete, i.naturalWidth, i.naturalHeight, i.getBoundingClientRect().width]))))</script>")
    checked = tmp_path / "checked.html"
    checked.write_text(page.replace("</body>", probe + "</body>"))
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--no-first-run", "--window-size=1280,2400"]
    dom = subprocess.run([*flags, f"--user-data-dir={tmp_path / 'profile-1'}", "--dump-dom", checked.as_uri()], capture_output=True, text=True, timeout=120)
    found = re.search(r'data-images="([^"]*)"', dom.stdout)
    assert found, dom.stderr[-2000:]
    images = json.loads(html.unescape(found.group(1)))
    assert len(images) == 4 and all(complete and width >= 800 and height >= 300 and shown > 0 for complete, width, height, shown in images), images
    shot = tmp_path / "report.png"
    subprocess.run([*flags, f"--user-data-dir={tmp_path / 'profile-2'}", f"--screenshot={shot}", out.as_uri()], capture_output=True, timeout=120)
    with Image.open(shot) as picture:
        assert picture.size == (1280, 2400) and np.asarray(picture.convert("L")).std() > 10
    shutil.copy(shot, results / "report-screenshot.png")  # for a person to look at


def test_a_report_gates_against_a_baseline(results, tmp_path):
    baseline = json.loads((results / "bench.json").read_text())
    fast = copy.deepcopy(baseline)
    for row in fast["rows"]:
        for stats in (row["latency_ms"], row["timings_ms"]["end_to_end"]):
            stats["median"] /= 100  # the baseline claims 100x faster
    (tmp_path / "fast.json").write_text(json.dumps(fast))
    failed = cli("report", results / "bench.json", "-o", tmp_path / "r.md", "--baseline", tmp_path / "fast.json", "--json")
    assert failed.returncode == 1
    assert "performance regression" in one_line_error(failed) and "the report shows it" in failed.stderr
    gate = json.loads(failed.stdout)["gate"]
    assert not gate["passed"] and len(gate["rows"]) == 4 and all(r["regressed"] and r["machine"] == "M1" for r in gate["rows"])
    assert "Regression gate" in (tmp_path / "r.md").read_text() and "REGRESSED" in (tmp_path / "r.md").read_text()
    same = cli("report", results / "bench.json", results / "elsewhere", "-o", tmp_path / "s.md", "--baseline", results / "bench.json", "--json")
    assert same.returncode == 0, same.stderr
    gate = json.loads(same.stdout)["gate"]
    # rows of the other machine have no baseline on their hardware: noted, never compared across machines
    assert gate["passed"] and sum(r["change"] is None for r in gate["rows"]) == 4
    assert gate["notes"] == [gate["notes"][0]] and gate["notes"][0].startswith("4 of 8 rows not judged") and "other hardware" in gate["notes"][0]


def test_bad_report_input(results, tmp_path):
    (tmp_path / "other.json").write_text('{"hello": 1}')
    (tmp_path / "broken.json").write_text("{not json")
    damaged = json.loads((results / "bench.json").read_text())
    del damaged["rows"][1]["latency_ms"]["p99"]
    (tmp_path / "damaged.json").write_text(json.dumps(damaged))
    cases = [
        ((tmp_path / "other.json",), "is not an infertool result"),
        ((tmp_path / "broken.json",), "broken.json is not JSON"),
        ((tmp_path / "missing.json",), "not found"),
        ((tmp_path / "damaged.json",), "damaged.json is a damaged bench result: rows[1].latency_ms.p99 is missing"),
        ((tmp_path / "other.json", tmp_path / "broken.json"), "is not an infertool result"),
    ]
    (tmp_path / "empty").mkdir()
    cases.append(((tmp_path / "empty",), "no infertool results found"))
    for paths, message in cases:
        result = cli("report", *paths, "-o", tmp_path / "r.md")
        assert result.returncode == 2 and message in one_line_error(result), (paths, result.stderr)
    wrong = cli("report", results / "bench.json", "-o", tmp_path / "r.txt")
    assert wrong.returncode == 2 and "should end in .md or .html" in one_line_error(wrong)
    assert not (tmp_path / "r.md").exists() and not (tmp_path / "r.txt").exists()
    (tmp_path / "r.md").write_text("mine")
    kept = cli("report", results / "bench.json", "-o", tmp_path / "r.md")
    assert kept.returncode == 2 and "already exists" in one_line_error(kept) and (tmp_path / "r.md").read_text() == "mine"


def test_real_gpu_sweeps_merge_and_only_real_setting_differences_show(tmp_path):
    """The committed two-GPU and one-GPU sweeps (ONNX Runtime CUDA EP on H100s, benchmarks/results/
    multi-gpu): the same cells run twice, so rows pair up and their settings show no difference; a
    setting that really differs (CUDA graph off) is named alone, not as a whole provider-options blob."""
    folder = ROOT / "benchmarks" / "results" / "multi-gpu"
    result = cli("report", folder / "all-gpus", folder / "one-gpu", "-o", tmp_path / "r.md", "--json")
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "r.md").read_text()
    assert "user_compute_stream" not in text and "provider_options={" not in text
    cell = json.loads(next((folder / "one-gpu" / "cells").glob("resnet50-fp16*b32*.json")).read_text())
    changed = copy.deepcopy(cell)
    changed["rows"][0]["settings"]["provider_options"]["enable_cuda_graph"] = "0"
    changed["env"]["time"] = "2026-11-28T03:00:00+00:00"
    (tmp_path / "a.json").write_text(json.dumps(cell))
    (tmp_path / "b.json").write_text(json.dumps(changed))
    result = cli("report", tmp_path / "a.json", tmp_path / "b.json", "-o", tmp_path / "two.md")
    assert result.returncode == 0, result.stderr
    assert "provider_options.enable_cuda_graph=0" in (tmp_path / "two.md").read_text()


def test_an_optimize_result_given_alone_is_its_own_html_report(results, tmp_path):
    """optimize --json, rendered later (a CI job or a GPU machine without matplotlib): the same document
    `optimize --report` writes, from the committed CPU result; mixed with bench results it is left out, said."""
    committed = ROOT / "benchmarks" / "results" / "optimize" / "cpu" / "cls.optimize.json"
    record = json.loads(committed.read_text())
    page = tmp_path / "optimize.html"
    done = cli("report", committed, "-o", page, "--json", tmp_path / "report.json")
    assert done.returncode == 0, done.stderr
    text = page.read_text()
    assert f"infertool optimize {html.escape(record['source']['path'], quote=True)}" in text
    assert f"picked: {record['picked']['candidate']} on {record['picked']['backend']}" in text
    assert all(f"<td>{html.escape(c['name'])}</td>" in text for c in record["candidates"])
    assert "data:image/png;base64," in text
    assert json.loads((tmp_path / "report.json").read_text())["sources"][0]["kind"] == "optimize"
    refused = cli("report", committed, "-o", tmp_path / "optimize.md")
    assert refused.returncode == 2 and "an optimize report is one HTML file" in one_line_error(refused)
    assert not (tmp_path / "optimize.md").exists()
    mixed = cli("report", committed, results / "bench.json", "-o", tmp_path / "both.html", "--json", tmp_path / "both.json")
    assert mixed.returncode == 0, mixed.stderr
    assert any("an optimize result is a report of its own" in n for n in json.loads((tmp_path / "both.json").read_text())["notes"])
