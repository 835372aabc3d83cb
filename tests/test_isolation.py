"""Library code in a fresh process (pipelines/isolation.py): a typed request and result, infertool's
errors carried back whole, a dead child a typed error naming the runtime and the stage; bench --isolate
on top of it; and the reproduce command of bench --tune, which round-trips through the CLI's parser."""

import dataclasses
import json
import os
import signal
from pathlib import Path

import pytest

from infertool.errors import InfertoolError
from infertool.pipelines import isolation
from infertool.pipelines.bench import BenchOptions, isolating

from conftest import ROOT, cli, one_line_error


class Notes:
    def __init__(self):
        self.notes = []

    def note(self, message):
        self.notes.append(message)

    def task(self, description, total=None):
        from infertool.reporting import SilentReporter

        return SilentReporter().task(description, total)


@dataclasses.dataclass(frozen=True)
class Square:
    value: int


def square(request: Square, reporter) -> int:
    reporter.note(f"squaring {request.value} in {os.getpid()}")
    return request.value**2


def segfault(request, reporter) -> None:
    with reporter.task("the runtime: loading"):
        os.write(2, b"the runtime's last words\n")
        os.kill(os.getpid(), signal.SIGSEGV)


def refuse(request, reporter) -> None:
    raise InfertoolError("that input is wrong", hint="give another", detail="the library said so")


def test_a_typed_request_comes_back_as_a_typed_result_from_another_process():
    notes = Notes()
    assert isolation.run(isolation.Job(square, Square(7), "squarer"), notes) == 49
    assert notes.notes[0].startswith("squaring 7 in ") and notes.notes[0] != f"squaring 7 in {os.getpid()}"


def test_infertool_errors_come_back_whole():
    with pytest.raises(InfertoolError) as raised:
        isolation.run(isolation.Job(refuse, None, "refuser"), Notes())
    assert (raised.value.message, raised.value.hint, raised.value.detail) == ("that input is wrong", "give another", "the library said so")


def test_a_dead_child_is_a_typed_error_naming_the_runtime_and_the_stage():
    with pytest.raises(isolation.ChildDied) as raised:
        isolation.run(isolation.Job(segfault, None, "the runtime"), Notes())
    died = raised.value
    assert (died.runtime, died.stage, died.cause) == ("the runtime", "loading", "killed by SIGSEGV")
    assert died.exit_code == 2 and "the runtime's last words" in died.detail


def test_isolation_is_on_by_default_only_where_several_rows_run_on_a_gpu():
    assert isolating(BenchOptions(), gpu_rows=2) and not isolating(BenchOptions(), gpu_rows=1) and not isolating(BenchOptions(), gpu_rows=0)
    assert not isolating(BenchOptions(isolate=False), gpu_rows=4) and isolating(BenchOptions(isolate=True), gpu_rows=0)


@pytest.fixture
def crash_plugin(tmp_path):
    info = tmp_path / "site" / "crash_plugin-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: crash-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[infertool.backends]\ncrash = crash_backend\n")
    return {"PYTHONPATH": f"{tmp_path / 'site'}:{ROOT / 'tests'}"}


def test_bench_isolate_keeps_the_rows_of_a_crashing_runtime_s_neighbours(tmp_path, crash_plugin):
    from onnx_models import mlp

    model, out = mlp(tmp_path / "m.onnx"), tmp_path / "out.json"
    result = cli("bench", model, "-b", "crash", "-b", "ort-cpu", "--isolate", "-n", "5", "--duration", "0", "--json", out, env=crash_plugin)
    line = one_line_error(result)
    assert result.returncode == 2 and "the process running crash batch 1 died (first inference): killed by SIGKILL" in line
    report = json.loads(out.read_text())
    assert report["settings"]["isolate"] is True
    [row] = report["rows"]
    assert row["backend"] == "ort-cpu" and row["isolated"] and row["agreement"]["passed"]
    from infertool.files import file_sha256

    assert row["graph_sha256"] == file_sha256(model)
    assert report["failed_rows"][0]["crashed"] == "first inference"


def test_bench_isolate_with_tune_is_refused(tmp_path):
    from onnx_models import mlp

    result = cli("bench", mlp(tmp_path / "m.onnx"), "--tune", "--isolate")
    assert result.returncode == 2 and "--tune measures its best and its defaults each alone" in one_line_error(result)


# ---------------------------------------------------------------- the reproduce command


def test_the_reproduce_command_round_trips_through_the_cli_parser(tmp_path):
    """What --tune found, written by to_argv and read back by bench's own parser: the same settings."""
    from infertool.cli.bench import GIVEN, _read, declared, read_args, settings, to_argv
    from infertool.pipelines.tune import Reproduce

    model = tmp_path / "m.onnx"
    given_argv = [str(model), "-b", "ort-cpu", "--batch", "1,4", "--seed", "3", "--int-range", "0:7", "--warmup", "5", "-n", "17",
                  "--duration", "0.5", "--min-cosine", "0.99", "--timeout", "30", "--threads", "2", "--input-shape", "x:1x16"]
    values = read_args(declared(), given_argv, "test")
    given, asked = _read(values)
    found_options = dataclasses.replace(
        asked.runner, io_binding=False, cuda_graph=False,
        ort=dataclasses.replace(asked.runner.ort, intra_op_threads=1, inter_op_threads=2, execution_mode="parallel", graph_optimization="basic",
                                provider_options={"arena_extend_strategy": "kSameAsRequested"}),
        engine=dataclasses.replace(asked.runner.engine, opt_level=5),
        source=dataclasses.replace(asked.runner.source, channels_last=True, compile_mode="max-autotune-no-cudagraphs"),
    )
    for graph in (None, ("fp16", "tensorrt")):
        found = Reproduce("ort-cpu", 4, tmp_path / "made.onnx" if graph else model, found_options, graph, model if graph else None)
        models, read = settings(to_argv(found, given))
        assert models == [found.model] and read.backends == ("ort-cpu",) and read.batches == (4,)
        assert read.runner == found_options
        assert read.reference == (model if graph else None)
        same = ("inputs", "warmup", "measure", "min_cosine", "atol", "rtol", "check_outputs")
        assert {k: getattr(read, k) for k in same} == {k: getattr(asked, k) for k in same}
    assert set(GIVEN) == {f for f in values if dataclasses.is_dataclass(values[f])} - {"output"}


def test_a_mistake_in_bench_arguments_is_one_line_naming_where_they_came_from():
    from infertool.cli.bench import settings

    with pytest.raises(InfertoolError, match="spec's bench_args: No such option: --itrations"):
        settings([str(Path("m.onnx")), "--itrations", "3"], "spec's bench_args")
