"""Hostile input on the surfaces added after the first fuzz campaign (issue 28): sweep specs and
output folders, result files given to `report`, plug-ins, environment variables, sizes.

Bad input is one line naming the problem and a fix (exit 2), never a traceback or exit 3, never a
hang, and nothing is written or read outside the folders given."""

import json
import os
import time

import pytest
from test_fuzz import snapshot

from conftest import one_line_error, run_main
from onnx_models import mlp

# ---------------------------------------------------------------- sweep specs


def laughs(levels: int, width: int = 10) -> str:
    """YAML anchors, each level `width` aliases of the one before: width**levels values once expanded."""
    lines = ["l0: &l0 [" + ", ".join(["x"] * width) + "]"]
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]" for i in range(1, levels)]
    return "\n".join(lines) + f"\nmodels: [a.onnx]\nbench_args: *l{levels - 1}\n"


HOSTILE_SPECS = {
    "deep nesting": ("models: " + "[" * 20_000 + "]" * 20_000, "nested more than"),
    "billion laughs": (laughs(6), "more than 100,000 values"),
    "a million cells": ("models: [a.onnx]\nbatches: [" + ", ".join(map(str, range(1, 1001))) + "]\nshapes: ["
                        + ", ".join(f"'x:{i}x16'" for i in range(1, 1001)) + "]\n", "expands to 1,000,000 cells"),
    "superscript batch": ("models: [a.onnx]\nbatches: '²,abc'\n", "'batches' takes whole numbers"),
    "superscript device": ("models: [a.onnx]\ndevices: '²'\n", "'devices' takes whole numbers"),
    "huge batch": ("models: [a.onnx]\nbatches: [99999999999999999999]\n", "'batches' takes whole numbers"),
    "mapping precision": ("models: [a.onnx]\nprecisions: [{a: 1}]\n", "'precisions' holds a mapping"),
    "mapping backend": ("models: [a.onnx]\nbackends: [[ort-cpu]]\n", "'backends' holds a list"),
    "mapping label": ("models: [{path: a.onnx, label: {x: 1}}]\n", "a model is a path or"),
    "mapping bench arg": ("models: [a.onnx]\nbench_args: [{a: 1}]\n", "'bench_args' holds a mapping"),
    "unclosed quote": ("models: [a.onnx]\nbench_args: \"--iterations '3\"\n", "'bench_args' is not a command line"),
    "NUL in a model path": ('models: ["a\\0.onnx"]\n', "not found"),
    "long model name": ("models: [" + "m" * 300 + ".onnx]\n", "not found"),
    "Arabic digits in a shape": ("models: [a.onnx]\nshapes: ['x:٣x16']\n", "malformed shape"),
    "bench writes a CSV anywhere": ("models: [a.onnx]\nbench_args: [--csv, /tmp/victim.csv]\n", "bench_args may not hold --csv"),
    "bench writes Markdown anywhere": ("models: [a.onnx]\nbench_args: --markdown=/tmp/victim.md\n", "bench_args may not hold --markdown"),
    "bench forced": ("models: [a.onnx]\nbench_args: [-f]\n", "bench_args may not hold -f"),
    "quantize -oPATH": ("models: [a.onnx]\nprecisions: [fp16]\nquantize_args: [-o/tmp/victim.onnx]\n", "quantize_args may not hold -o/tmp"),
    "quantize forced": ("models: [a.onnx]\nprecisions: [fp16]\nquantize_args: [--force]\n", "quantize_args may not hold --force"),
    "a big spec": ("models: [a.onnx]\n#" + "x" * 2**21 + "\n", "more than the 1,048,576"),
    "not UTF-8": (b"models: [a.onnx]\n\xff\xfe\n", "is not YAML"),
}


@pytest.fixture
def sweep_dir(tmp_path):
    mlp(tmp_path / "a.onnx", seed=0)
    return tmp_path


def _spec(folder, text) -> str:
    path = folder / "spec.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(path)


@pytest.mark.parametrize("case", list(HOSTILE_SPECS))
def test_hostile_specs_are_one_line_and_quick(sweep_dir, case):
    text, message = HOSTILE_SPECS[case]
    started = time.monotonic()
    result = run_main("sweep", _spec(sweep_dir, text), "--list", cwd=sweep_dir)
    assert result.returncode == 2 and message in one_line_error(result)
    assert time.monotonic() - started < 10


def test_sweep_outputs_that_cannot_be_folders(sweep_dir):
    spec = _spec(sweep_dir, "models: [a.onnx]\n")
    (sweep_dir / "afile").write_text("mine\n")
    os.symlink(sweep_dir / "loop", sweep_dir / "loop")
    before = snapshot(sweep_dir)
    for out, message in [("afile", "is not a folder"), ("/dev/null", "is not a folder"), ("loop", "is not a folder"),
                         ("/proc/infertool-sweep", "cannot write"), ("n" * 300, "longer than 255 bytes")]:
        result = run_main("sweep", spec, "-o", out, cwd=sweep_dir)
        assert result.returncode == 2 and message in one_line_error(result), out
    assert snapshot(sweep_dir) == before


def test_sweep_overwrites_nothing_without_force(sweep_dir):
    spec = _spec(sweep_dir, "models: [a.onnx]\n")
    (sweep_dir / "out").mkdir()
    (sweep_dir / "out" / "sweep.json").write_text("my notes\n")
    before = snapshot(sweep_dir)
    result = run_main("sweep", spec, "-o", "out", cwd=sweep_dir)
    assert result.returncode == 2 and "already holds sweep.json" in one_line_error(result)
    # a spec that lives where its summary goes is never overwritten, even with --force
    (sweep_dir / "out" / "sweep.json").write_text("models: [../a.onnx]\n")
    forced = run_main("sweep", "out/sweep.json", "-o", "out", "--force", cwd=sweep_dir)
    assert forced.returncode == 2 and "would overwrite its own spec" in one_line_error(forced)
    assert (sweep_dir / "out" / "sweep.json").read_text() == "models: [../a.onnx]\n"
    assert set(snapshot(sweep_dir)) == set(before)


def test_resume_over_damaged_cell_files(sweep_dir):
    spec = _spec(sweep_dir, "models: [a.onnx]\nbatches: [1, 2, 3, 4]\n")
    listed = run_main("sweep", spec, "-o", "out", "--list", "--json", cwd=sweep_dir)
    ids = [c["id"] for c in json.loads(listed.stdout)["cells"]]
    cells = sweep_dir / "out" / "cells"
    cells.mkdir(parents=True)
    (cells / f"{ids[0]}.json").write_text("[" * 100_000 + "]" * 100_000)
    os.symlink("/dev/zero", cells / f"{ids[1]}.json")
    os.mkfifo(cells / f"{ids[2]}.json")
    (cells / f"{ids[3]}.json").write_text('{"schema": "infertool.bench/1"}')
    result = run_main("sweep", spec, "-o", "out", "--list", "--resume", "--json", cwd=sweep_dir)
    assert result.returncode == 0, result.stderr
    assert [c["status"] for c in json.loads(result.stdout)["cells"]] == ["to run", "to run", "to run", "finished"]


def test_a_label_that_climbs_writes_only_inside_the_output_folder(sweep_dir):
    (sweep_dir / "out").mkdir()
    spec = _spec(sweep_dir / "out", "models: [{path: ../a.onnx, label: ../../../evil}]\nprecisions: [fp16]\n"
                                    "bench_args: --iterations 2 --duration 0 --warmup 1\n")
    outside = snapshot(sweep_dir)
    result = run_main("sweep", spec, "-o", sweep_dir / "out" / "results", "--json", cwd=sweep_dir)
    assert result.returncode == 0, result.stderr
    changed = set(snapshot(sweep_dir)) ^ set(outside)
    assert changed and all(k.startswith("out/results") for k in changed), sorted(changed)
    assert json.loads(result.stdout)["counts"] == {"ok": 1}


# ---------------------------------------------------------------- report


@pytest.fixture(scope="module")
def bench_json(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bench")
    mlp(folder / "a.onnx", seed=0)
    result = run_main("bench", "a.onnx", "-n", "3", "--duration", "0", "--warmup", "1", "--json", "a.json", "-q", cwd=folder)
    assert result.returncode == 0, result.stderr
    return folder / "a.json"


def test_report_force_replaces_only_its_own_plots(bench_json, tmp_path):
    (tmp_path / "x_files").mkdir()
    (tmp_path / "x_files" / "mine.txt").write_text("mine\n")
    (tmp_path / "x_files" / "mine.png").write_bytes(b"not a plot")
    (tmp_path / "x.md").write_text("an old report\n")
    result = run_main("report", bench_json, "-o", "x.md", "--force", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "x_files" / "mine.txt").read_text() == "mine\n" and (tmp_path / "x_files" / "mine.png").read_bytes() == b"not a plot"
    assert (tmp_path / "x_files" / "latency.png").is_file()
