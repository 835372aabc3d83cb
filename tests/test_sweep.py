"""`infertool sweep`: cells expand deterministically with stable IDs, shards partition them, each
cell runs in its own process (a planted crash is recorded and the rest go on), --resume skips
finished cells, cells spread over (pretend) devices one at a time each; and the same sweep as Ray
tasks on a local Ray cluster gives the same cells."""

import itertools
import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from infertool.cli.sweep import cell_options, quantize_options
from infertool.errors import InfertoolError
from infertool.pipelines.sweep import Shard, expand, in_shard, load_spec

from conftest import ROOT, cli, one_line_error
from onnx_models import mlp

FAST = "--warmup 2 --iterations 10 --duration 0"


def write_spec(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "a.onnx").exists():
        mlp(folder / "a.onnx", seed=0)
        mlp(folder / "b.onnx", seed=1)
    (folder / "spec.yaml").write_text(text)
    return folder / "spec.yaml"


GRID = """
models: [a.onnx, {path: b.onnx, label: other}]
precisions: [fp32, fp16]
backends: ort-cpu
batches: [1, 4, 8]
shapes: ["x:2x16", "x:3x16"]
"""


@pytest.fixture
def crash_plugin(tmp_path):
    """The `crash` backend (tests/crash_backend.py), installed through the entry-point group."""
    info = tmp_path / "site" / "crash_plugin-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: crash-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[infertool.backends]\ncrash = crash_backend\n")
    return {"PYTHONPATH": f"{tmp_path / 'site'}:{ROOT / 'tests'}"}


def listed(spec, *args, env=None):
    result = cli("sweep", spec, "--list", "--json", *args, env=env)
    assert result.returncode == 0, result.stderr
    return [c["id"] for c in json.loads(result.stdout)["cells"]]


def test_cells_expand_deterministically_with_stable_ids(tmp_path):
    spec = write_spec(tmp_path / "here", GRID)
    cells = expand(load_spec(spec), tmp_path / "out")
    assert len(cells) == 2 * 2 * 2 * 3
    assert [(c.label, c.precision, c.shapes, c.batch) for c in cells[:4]] == [
        ("a-fp32", "fp32", ("x:2x16",), 1), ("a-fp32", "fp32", ("x:2x16",), 4), ("a-fp32", "fp32", ("x:2x16",), 8), ("a-fp32", "fp32", ("x:3x16",), 1),
    ]
    assert cells[0].id.startswith("a-fp32.ort-cpu.b1.x_2x16-") and len({c.id for c in cells}) == len(cells)
    fp16 = next(c for c in cells if c.precision == "fp16")
    assert fp16.reference == (tmp_path / "here" / "a.onnx").resolve() and fp16.path.parent == (tmp_path / "out" / "models").resolve()
    # the same spec elsewhere (another machine, another checkout) names its cells the same
    elsewhere = write_spec(tmp_path / "there" / "deeper", GRID)
    assert [c.id for c in expand(load_spec(elsewhere), tmp_path / "other-out")] == [c.id for c in cells]
    assert [c.id for c in expand(load_spec(spec), tmp_path / "out")] == [c.id for c in cells]


def test_shards_partition_the_cells(tmp_path):
    spec = write_spec(tmp_path, GRID)
    every = listed(spec)
    shards = [listed(spec, "--shard", f"{i}/3") for i in range(3)]
    assert sorted(itertools.chain(*shards)) == sorted(every) and sum(map(len, shards)) == len(every) == 24
    assert all(len(s) == 8 for s in shards)
    cells = expand(load_spec(spec), tmp_path / "out")
    assert [c.id for c in in_shard(cells, Shard(1, 3, "test"))] == shards[1]
    # the batch systems' own variables pick the shard
    assert listed(spec, env={"SLURM_ARRAY_TASK_ID": "11", "SLURM_ARRAY_TASK_MIN": "10", "SLURM_ARRAY_TASK_COUNT": "3"}) == shards[1]
    assert listed(spec, "--shards", "3", env={"JOB_COMPLETION_INDEX": "2"}) == shards[2]
    assert listed(spec, env={"INFERTOOL_SHARD": "0/3"}) == shards[0]
    unsized = cli("sweep", spec, "--list", env={"JOB_COMPLETION_INDEX": "2"})
    assert unsized.returncode == 2 and "pass --shards N" in one_line_error(unsized)


SPEC_ERRORS = {
    "unknown key": ("models: [a.onnx]\nbatch: [1]\n", "unknown key 'batch'"),
    "missing model": ("models: [nope.onnx]\n", "model nope.onnx not found"),
    "bad batch": ("models: [a.onnx]\nbatches: [0]\n", "'batches' takes whole numbers from 1"),
    "bench arg the sweep sets": ("models: [a.onnx]\nbench_args: [--batch, '4']\n", "bench_args may not hold --batch"),
    "unknown backend": ("models: [a.onnx]\nbackends: [tensorflow]\n", "unknown backend 'tensorflow'"),
    "unknown precision": ("models: [a.onnx]\nprecisions: [fp12]\n", "unknown precision 'fp12'"),
    "not yaml": ("models: [a.onnx\n", "is not YAML"),
}


@pytest.mark.parametrize("case", list(SPEC_ERRORS))
def test_bad_specs_are_one_line(case, tmp_path):
    text, message = SPEC_ERRORS[case]
    result = cli("sweep", write_spec(tmp_path, text), "--list")
    assert result.returncode == 2 and message in one_line_error(result)


def _intervals(cells: list[dict]) -> dict[str, list[tuple[datetime, datetime]]]:
    found: dict[str, list] = {}
    for cell in cells:
        for attempt in cell["attempts"]:
            span = (datetime.fromisoformat(attempt["started_utc"].rstrip("Z")), datetime.fromisoformat(attempt["finished_utc"].rstrip("Z")))
            found.setdefault(cell["cuda_visible_devices"], []).append(span)
    return found


def test_a_crashing_cell_is_recorded_the_rest_run_and_resume_skips_finished(tmp_path, crash_plugin):
    spec = write_spec(tmp_path, f"models: [a.onnx]\nbackends: [ort-cpu, crash]\nbatches: [1, 2]\nbench_args: {FAST}\n")
    out = tmp_path / "out"
    first = cli("sweep", spec, "-o", out, "--devices", "2", "--retries", "1", "--json", env=crash_plugin)
    assert first.returncode == 1 and "2 of 4 cells failed" in one_line_error(first)
    summary = json.loads(first.stdout)
    assert summary == json.loads((out / "sweep.json").read_text())
    assert summary["counts"] == {"ok": 2, "failed": 2} and summary["devices"] == ["0", "1"]
    for cell in summary["cells"]:
        saved = json.loads((out / cell["result"]).read_text())
        assert saved["cell"]["id"] == cell["id"] and cell["cuda_visible_devices"] in ("0", "1")
        if cell["backend"] == "crash":
            assert saved["schema"] == "infertool.sweep-cell/1" and saved["status"] == "failed"
            assert len(cell["attempts"]) == 2 and all(a["error"] == f"crashed (SIGKILL) during crash batch {cell['batch']}: first inference" and a["exit_code"] == -9 for a in cell["attempts"])
        else:
            assert saved["schema"] == "infertool.bench/1" and cell["status"] == "ok" and len(cell["attempts"]) == 1
            assert saved["rows"][0]["batch"] == cell["batch"] and saved["cell"]["device_slot"] == cell["cuda_visible_devices"]
    for device, spans in _intervals(summary["cells"]).items():  # no two cells on one device at once
        spans.sort()
        assert all(end <= next_start for (_, end), (next_start, _) in itertools.pairwise(spans)), (device, spans)
    again = cli("sweep", spec, "-o", out, env=crash_plugin)
    assert again.returncode == 2 and "--resume" in one_line_error(again)
    finished = {p: p.stat().st_mtime_ns for p in (out / "cells").iterdir() if json.loads(p.read_text())["schema"] == "infertool.bench/1"}
    resumed = cli("sweep", spec, "-o", out, "--resume", "--retries", "0", "--json", env=crash_plugin)
    assert resumed.returncode == 1
    statuses = {c["backend"]: c["status"] for c in json.loads(resumed.stdout)["cells"]}
    assert statuses == {"ort-cpu": "skipped", "crash": "failed"}
    assert {p: p.stat().st_mtime_ns for p in finished} == finished  # finished cells untouched
    report = cli("report", out, "-o", tmp_path / "report.md", env=crash_plugin)
    assert report.returncode == 0, report.stderr
    text = (tmp_path / "report.md").read_text()
    assert "Failed cells" in text and text.count(": crashed (SIGKILL)") == 2 and text.count("| a | fp32 | ort-cpu | - |") == 2


def test_shards_and_ray_give_the_same_cells(tmp_path):
    """Two local shards into one folder, merged by `report`; then the same spec as Ray tasks on a
    local Ray cluster (ray.init(num_cpus=2)): the same cells, the same outcomes."""
    ray = pytest.importorskip("ray", reason="the ray extra is not installed")
    from infertool.pipelines.sweep import SweepOptions, sweep
    from infertool.reporting import SilentReporter

    spec = write_spec(tmp_path, f"models: [a.onnx]\nbatches: [1, 3]\nbench_args: {FAST}\n")
    for shard in ("0/2", "1/2"):
        done = cli("sweep", spec, "-o", tmp_path / "local", "--shard", shard)
        assert done.returncode == 0, done.stderr
    local = {}
    for shard in (0, 1):
        for cell in json.loads((tmp_path / "local" / f"sweep.shard-{shard}-of-2.json").read_text())["cells"]:
            local[cell["id"]] = cell
    report = cli("report", tmp_path / "local", "-o", tmp_path / "local.md", "--json")
    assert report.returncode == 0, report.stderr
    merged = json.loads(report.stdout)
    assert sorted(s["kind"] for s in merged["sources"]) == ["bench", "bench", "sweep", "sweep"]
    assert sorted(r["batch"] for g in merged["groups"] for r in g["rows"]) == [1, 3]
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        result = sweep(spec, SweepOptions(tmp_path / "ray", cell_options, quantize_options, executor="ray"), SilentReporter())
    finally:
        ray.shutdown()
    assert {c["id"]: c["status"] for c in result.cells} == {i: c["status"] for i, c in local.items()} == dict.fromkeys(local, "ok")
    for cell in result.cells:
        saved = json.loads((tmp_path / "ray" / cell["result"]).read_text())
        assert saved["cell"]["executor"] == "ray" and saved["rows"][0]["batch"] == local[cell["id"]]["batch"] == cell["batch"]


def test_gpu_cells_go_one_per_gpu_that_nvml_sees(tmp_path):
    """The path a multi-GPU machine takes, on FAKE GPUs (tests/fakes: TensorRT, cuda runtime, NVML):
    GPUs found through NVML, each cell pinned to one with CUDA_VISIBLE_DEVICES in NVML's (PCI) order."""
    fakes = ROOT / "tests" / "fakes"
    env = {"PYTHONPATH": f"{fakes}:{fakes / 'nvml'}", "FAKE_TENSORRT_VERSION": "10.16.1.11", "FAKE_NVML_GPUS": "2",
           "INFERTOOL_CACHE_DIR": str(tmp_path / "cache"), "CUDA_VISIBLE_DEVICES": ""}
    spec = write_spec(tmp_path, f"models: [a.onnx]\nbackends: trt\nbatches: [1, 2]\nbench_args: {FAST}\n")
    result = cli("sweep", spec, "-o", tmp_path / "out", "--json", env=env)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["devices"] == ["0", "1"] and summary["counts"] == {"ok": 2}
    assert sorted(c["cuda_visible_devices"] for c in summary["cells"]) == ["0", "1"]
    for cell in summary["cells"]:
        row = json.loads((tmp_path / "out" / cell["result"]).read_text())["rows"][0]
        assert row["backend"] == "trt" and row["gpu_telemetry"]["before"]["sm_clock_mhz"] == 1980


def test_device_slots(monkeypatch, tmp_path):
    from infertool.pipelines import sweep as sweep_module
    from infertool.reporting import SilentReporter

    spec = write_spec(tmp_path, "models: [a.onnx]\nbackends: [ort-cuda, ort-cpu]\n")
    cells = expand(load_spec(spec), tmp_path / "out")
    options = sweep_module.SweepOptions(tmp_path / "out", cell_options, quantize_options)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")  # a scheduler gave this job GPUs 2 and 3: cells go there, in its numbering
    assert sweep_module._slots(options, cells, SilentReporter()) == (["2", "3"], False)
    assert sweep_module._slots(options, [c for c in cells if not c.on_gpu], SilentReporter()) == ([None], False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    monkeypatch.setattr(sweep_module.environment, "gpus", lambda: ([], "no NVIDIA driver"))
    with pytest.raises(InfertoolError, match="GPU cells but this machine has no GPU"):
        sweep_module._slots(options, cells, SilentReporter())
    assert sweep_module._slots(sweep_module.SweepOptions(tmp_path / "out", cell_options, quantize_options, devices=("0", "1")), cells, SilentReporter()) == (["0", "1"], True)


def test_the_multi_gpu_run_checks_agreement_placement_and_wall_times(tmp_path):
    """benchmarks/multi_gpu.py, the issue-18 run, on FAKE GPUs (tests/fakes: TensorRT, CUDA runtime,
    NVML): the sweep on every GPU, then pinned to GPU 0, each row's physical GPU read back through
    its PCI address, and no GPU running two cells at once."""
    fakes = ROOT / "tests" / "fakes"
    env = {**os.environ, "PYTHONPATH": f"{fakes}:{fakes / 'nvml'}", "FAKE_TENSORRT_VERSION": "10.16.1.11", "FAKE_NVML_GPUS": "2",
           "INFERTOOL_CACHE_DIR": str(tmp_path / "cache")}
    write_spec(tmp_path, "")
    command = [sys.executable, str(ROOT / "benchmarks" / "multi_gpu.py"), str(tmp_path / "run"), "--model", f"a={tmp_path / 'a.onnx'}",
               "--model", f"b={tmp_path / 'b.onnx'}", "--backend", "trt", "--precisions", "fp32", "--batches", "1, 2", "--bench-args", FAST]
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=ROOT)
    verdict = json.loads((tmp_path / "run" / "check.json").read_text())
    assert done.returncode == (0 if verdict["passed"] else 1), done.stderr
    assert verdict["cells"] == 4 and verdict["overlaps"] == [] and verdict["cells_per_device"] == {"gpu0": 2, "gpu1": 2}
    one = json.loads((tmp_path / "run" / "one-gpu" / "sweep.json").read_text())
    assert {c["cuda_visible_devices"] for c in one["cells"]} == {"0"} and verdict["walls"]["one-gpu"]["cells_wall_s"] > 0
    assert "| a-fp32 | 1 | gpu" in (tmp_path / "run" / "check.md").read_text()


def test_quantized_versions_are_made_by_a_typed_request_and_bad_arguments_stop_the_sweep_first(tmp_path):
    spec = write_spec(tmp_path, f"models: [a.onnx]\nprecisions: [fp32, fp16]\nbench_args: {FAST}\nquantize_args: --calib-data random --calib-samples 4\n")
    result = cli("sweep", spec, "-o", tmp_path / "out", "--json")
    assert result.returncode == 0, result.stderr
    cells = {c["precision"]: c for c in json.loads(result.stdout)["cells"]}
    made = Path(cells["fp16"]["path"])
    assert made.is_file() and json.loads(made.with_suffix(".quantize.json").read_text())["schema"].startswith("infertool.quantize/")
    assert json.loads((tmp_path / "out" / cells["fp16"]["result"]).read_text())["rows"][0]["precision"] == "fp16"
    for key, args, said in (("bench_args", "--itrations 3", "the spec's bench_args: No such option: --itrations"),
                            ("quantize_args", "--calib-sample 4", "the spec's quantize_args: No such option: --calib-sample")):
        bad = write_spec(tmp_path / key, f"models: [a.onnx]\nprecisions: [fp16]\n{key}: {args}\n")
        refused = cli("sweep", bad, "-o", tmp_path / key / "out")
        assert refused.returncode == 2 and said in one_line_error(refused)
        assert not (tmp_path / key / "out" / "cells").exists()


def test_each_cell_takes_only_its_own_backends_options(tmp_path):
    """bench_args for the spec's ORT and OpenVINO cells: each cell's bench gets its backend's group alone (the other would be refused)."""
    from types import SimpleNamespace

    from infertool.pipelines.sweep import _jobs

    spec = load_spec(write_spec(tmp_path, "models: [a.onnx]\nbackends: [ort-cpu, openvino]\nbench_args: --threads 2 --ov-threads 1\n"))
    jobs = _jobs(expand(spec, tmp_path / "out"), spec, SimpleNamespace(bench_options=cell_options))
    groups = {job.options.backends[0]: set(job.options.runner.groups) for job in jobs.values()}
    assert groups == {"ort-cpu": {"ort"}, "openvino": {"openvino"}}


def test_options_of_a_backend_the_sweep_does_not_run_stop_it_before_any_cell(tmp_path):
    """bench_args giving OpenVINO's threads to a sweep of ort-cpu alone would change nothing: refused, as bench refuses them."""
    from types import SimpleNamespace

    from infertool.errors import InfertoolError
    from infertool.pipelines.sweep import _jobs

    spec = load_spec(write_spec(tmp_path, "models: [a.onnx]\nbackends: [ort-cpu]\nbench_args: --threads 2 --ov-threads 1\n"))
    with pytest.raises(InfertoolError, match="--ov-threads is an option of openvino, which this sweep does not run"):
        _jobs(expand(spec, tmp_path / "out"), spec, SimpleNamespace(bench_options=cell_options))
