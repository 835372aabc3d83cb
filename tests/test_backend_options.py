"""Backends own their options and checks: a backend's option group reaches the command line from the
registry, every option is checked before the first row of any backend runs, unknown precisions are
usage errors whatever the backends, and each backend names the settings a regression gate must match."""

import json
import re
from dataclasses import fields, replace

import pytest

from infertool.backends import registry
from infertool.backends.base import RunnerOptions
from infertool.errors import InfertoolError
from infertool.pipelines.bench import BenchOptions, run_bench
from infertool.records.bench import BenchRow
from infertool.records.gate import Measured, gate
from infertool.stats import Stats

from conftest import cli, one_line_error, run_cli, run_main
from onnx_models import mlp, strings

QUICK = ["--warmup", "1", "--iterations", "3", "--duration", "0"]


class CountingReporter:
    """Counts the work started: a check that refuses must refuse before any."""

    def __init__(self):
        self.tasks = []

    def note(self, message):
        pass

    def task(self, description, total=None):
        import contextlib

        self.tasks.append(description)
        return contextlib.nullcontext(lambda steps=1: None)


def test_an_unknown_precision_is_a_usage_error_before_any_row(tmp_path):
    model = mlp(tmp_path / "m.onnx")
    result = run_main("bench", model, "-b", "ort-cpu", "-p", "fp17", *QUICK, "--json", tmp_path / "b.json")
    assert result.returncode == 2
    assert "unknown --precision 'fp17'" in one_line_error(result) and "fp16" in one_line_error(result)
    assert result.stdout == "" and not (tmp_path / "b.json").exists()


def test_build_engine_refuses_an_unknown_precision(tmp_path):
    model = mlp(tmp_path / "m.onnx")
    result = run_main("build-engine", model, "-o", tmp_path / "m.engine", "-b", "trt-rtx", "-p", "fp17")
    assert result.returncode == 2 and "unknown --precision 'fp17'" in one_line_error(result)


@pytest.mark.slow
def test_build_engine_builds_an_fp16_graph_at_its_own_precision_without_p(tmp_path):
    fp16 = tmp_path / "m.fp16.onnx"
    assert run_main("quantize", mlp(tmp_path / "m.onnx"), "-p", "fp16", "-o", fp16).returncode == 0
    result = cli("build-engine", fp16, "-o", tmp_path / "m.engine", "-b", "trt-rtx", "--compute-capability", "8.6", "--batch", "2", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["sidecar"]["precision"] == "fp16"


def test_options_of_a_backend_the_bench_does_not_run_are_refused(tmp_path):
    result = run_main("bench", mlp(tmp_path / "m.onnx"), "-b", "ort-cpu", "--ov-threads", "1", *QUICK)
    assert result.returncode == 2
    assert "--ov-threads is an option of openvino, which this bench does not run" in one_line_error(result)


def test_a_choice_outside_a_backend_option_is_a_usage_error(tmp_path):
    result = run_main("bench", mlp(tmp_path / "m.onnx"), "-b", "openvino", "--ov-hint", "fastest", *QUICK)
    assert result.returncode == 2 and "unknown --ov-hint 'fastest'" in one_line_error(result)


def _shows(help_text: str, flag: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(flag.split('/')[0])}(?![\w-])", help_text) is not None


def test_backend_option_groups_come_from_the_registry_onto_their_commands():
    """Every registered group's options, ONNX Runtime's, TensorRT's and the framework sources' included, on the commands they name."""
    helps = {command: run_main(command, "--help").stdout for command in ("bench", "run")}
    for kind in registry.option_groups():
        assert kind.title.split(" (")[0] in helps["bench"]
        for item in (f for f in fields(kind) if "flag" in f.metadata):
            for command, help_text in helps.items():
                assert _shows(help_text, item.metadata["flag"]) == (command in item.metadata["commands"]), (command, item.metadata["flag"])
    assert {"--threads", "--precision", "--source"} <= {f.metadata["flag"].split("/")[0] for k in registry.option_groups() for f in fields(k) if "flag" in f.metadata}


def test_a_plug_in_backends_options_reach_run_and_bench_only_through_the_registry():
    """Without the plug-in (a fresh process: this one may have imported it for another test) its option is absent."""
    for command in ("bench", "run"):
        assert not _shows(run_cli(command, "--help", env={"COLUMNS": "200"}).stdout, "--ref-verbose")
        shown = run_main(command, "--help", imports=("toy_backend",)).stdout
        assert "onnx-reference backend" in shown and _shows(shown, "--ref-verbose")


def test_a_bad_value_of_a_plug_in_backends_option_is_refused_before_any_row(tmp_path):
    model, out = mlp(tmp_path / "m.onnx"), tmp_path / "out.json"
    for args in (("bench", model, "-b", "ort-cpu", "-b", "onnx-reference", *QUICK), ("run", model, "-b", "onnx-reference")):
        result = run_main(*args, "--ref-verbose", "9", "--json", out, imports=("toy_backend",))
        assert result.returncode == 2 and "--ref-verbose" in one_line_error(result), result.stderr
        assert result.stdout == "" and not out.exists()
    taken = run_main("bench", model, "-b", "onnx-reference", "--ref-verbose", "1", *QUICK, "--json", out, imports=("toy_backend",))
    assert taken.returncode == 0, taken.stderr
    assert json.loads(out.read_text())["settings"]["backend_options"] == {"onnx-reference": {"verbose": 1}}


def test_engine_options_on_a_bench_without_an_engine_backend_are_refused(tmp_path):
    result = run_main("bench", mlp(tmp_path / "m.onnx"), "-b", "ort-cpu", "-p", "fp16", *QUICK)
    assert result.returncode == 2
    assert "--precision is an option of trt, trt-rtx, which this bench does not run" in one_line_error(result)


def test_every_backend_checks_before_the_first_row_of_any(tmp_path):
    """openvino refuses a string model; the ort-cpu rows listed before it never start."""
    model = strings(tmp_path / "s.onnx")
    reporter = CountingReporter()
    with pytest.raises(InfertoolError, match="openvino: infertool feeds OpenVINO numpy tensors"):
        run_bench(model, BenchOptions(backends=("ort-cpu", "openvino"), check_outputs=False), reporter)
    assert reporter.tasks == []


def _row(backend: str, **settings) -> list[Measured]:
    stats = Stats.from_ns([1_000_000] * 5)
    return [Measured(BenchRow(backend, 1, "fp32", "end_to_end", {"end_to_end": stats}, {}, {}, settings), {"path": "m.onnx", "sha256": "0"}, {})]


def test_each_backend_names_the_settings_its_gate_matches():
    assert "performance_hint" in registry.gate_settings("openvino") and "intra_op_threads" in registry.gate_settings("ort-cpu")
    judge = lambda now, base: gate(now, base, "b.json", registry.gate_settings, 0.1, "median").rows[0]  # noqa: E731
    assert judge(_row("openvino", performance_hint="LATENCY"), _row("openvino", performance_hint="LATENCY")).status == "ok"
    other = judge(_row("openvino", performance_hint="LATENCY"), _row("openvino", performance_hint="THROUGHPUT"))
    assert other.status == "not compared" and "performance_hint 'THROUGHPUT' in the baseline" in other.reason
    # a setting another backend declares does not hold this one's rows apart
    assert judge(_row("openvino", intra_op_threads=1), _row("openvino", intra_op_threads=2)).status == "ok"
    unknown = judge(_row("no-such-runtime"), _row("no-such-runtime"))
    assert unknown.status == "not compared" and "not installed here" in unknown.reason


def test_runner_options_hand_each_backend_its_own_group():
    kind = registry.get("openvino").option_group
    options = RunnerOptions().with_group(replace(kind(), threads=3))
    assert options.group(kind).threads == 3 and RunnerOptions().group(kind) == kind()


def test_run_refuses_options_of_a_backend_it_does_not_use(tmp_path):
    result = run_main("run", mlp(tmp_path / "m.onnx"), "-b", "ort-cpu", "--runtime-cache", tmp_path / "cache.bin")
    assert result.returncode == 2 and result.stdout == ""
    assert "--runtime-cache is an option of trt-rtx, and this run uses ort-cpu" in one_line_error(result)


@pytest.mark.parametrize(("args", "said"), [
    (("-b", "trt", "--skip-unavailable", "--runtime-cache", "cache.bin"), "--runtime-cache is an option of trt-rtx"),  # trt shares the group, not the option
    (("-b", "torch", "--source", "m.py:build", "--compile-mode", "default"), "--compile-mode is an option of torch-compile"),
    (("-b", "ort-cpu", "--no-channels-last"), "--no-channels-last is an option of torch, torch-compile"),  # the flag as typed
])
def test_an_option_only_some_backends_of_its_family_read_is_refused_on_the_others(tmp_path, args, said):
    result = run_main("bench", mlp(tmp_path / "m.onnx"), *[tmp_path / a if a.endswith((".bin", ".py:build")) else a for a in args], *QUICK)
    assert result.returncode == 2 and said in one_line_error(result), result.stderr
