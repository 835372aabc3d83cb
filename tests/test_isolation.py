"""Library code in a fresh process (pipelines/isolation.py): a typed request and result, infertool's
errors carried back whole, a dead child a typed error naming the runtime and the stage; bench --isolate
on top of it; and the reproduce command of bench --tune, which round-trips through the CLI's parser."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from infertool.errors import InfertoolError
from infertool.pipelines import isolation
from infertool.pipelines.bench import BenchOptions, isolating

from conftest import cli, one_line_error


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


@pytest.mark.parametrize("backend", ["ort-cpu", "trt", "torch", "openvino"])
def test_the_reproduce_command_round_trips_through_the_cli_parser(tmp_path, backend):
    """What --tune found, written by to_argv and read back by bench's own parser: the same settings, the backend's own
    option group included and the other backends' left out (a bench of this backend alone would refuse them)."""
    from infertool.backends import registry
    from infertool.backends.onnxruntime import OrtOptions
    from infertool.backends.openvino import OpenVinoOptions
    from infertool.backends.tensorrt import EngineOptions
    from infertool.backends.torch import SourceOptions
    from infertool.cli.bench import GIVEN, _read, _with_every_backend, read_args, settings, to_argv
    from infertool.pipelines.tune import Reproduce

    model = tmp_path / "m.onnx"
    given_argv = [str(model), "-b", "ort-cpu", "--batch", "1,4", "--seed", "3", "--int-range", "0:7", "--warmup", "5", "-n", "17",
                  "--duration", "0.5", "--min-cosine", "0.99", "--timeout", "30", "--threads", "2", "--input-shape", "x:1x16"]
    values = read_args(_with_every_backend(), given_argv, "test")
    given, asked = _read(values)
    groups = (
        OrtOptions(intra_op_threads=1, inter_op_threads=2, execution_mode="parallel", graph_optimization="basic",
                   provider_options={"arena_extend_strategy": "kSameAsRequested"}, model_type="bert"),
        EngineOptions(precision="fp16", workspace=2**30, opt_level=5, timing_cache=tmp_path / "t.cache", cache_dir=tmp_path / "engines"),
        SourceOptions(source="models.py:cnn", weights=tmp_path / "w.pt", trust_model=True, channels_last=True, compile_mode="max-autotune-no-cudagraphs"),
        OpenVinoOptions(threads=3, hint="throughput"),
    )
    found_options = dataclasses.replace(asked.runner, io_binding=False, cuda_graph=False, groups={type(g).key: g for g in groups})
    own = registry.get(backend).option_group
    expected = dataclasses.replace(found_options, groups={own.key: found_options.groups[own.key]})
    for graph in (None, ("fp16", "tensorrt")):
        found = Reproduce(backend, 4, tmp_path / "made.onnx" if graph else model, found_options, graph, model if graph else None)
        models, read = settings(to_argv(found, given))
        assert models == [found.model] and read.backends == (backend,) and read.batches == (4,)
        assert read.runner == expected
        assert read.reference == (model if graph else None)
        same = ("inputs", "warmup", "measure", "min_cosine", "atol", "rtol", "check_outputs")
        assert {k: getattr(read, k) for k in same} == {k: getattr(asked, k) for k in same}
    assert set(GIVEN) == {f for f in values if dataclasses.is_dataclass(values[f])} - {"output"}


def test_a_mistake_in_bench_arguments_is_one_line_naming_where_they_came_from():
    from infertool.cli.bench import settings

    with pytest.raises(InfertoolError, match="spec's bench_args: No such option: --itrations"):
        settings([str(Path("m.onnx")), "--itrations", "3"], "spec's bench_args")


# ---------------------------------------------------------------- tune dimensions for attention models


def attention_block(path: Path, hidden: int = 16, seq: int = 8) -> Path:
    """One encoder block built with onnx.helper: layer norm, single-head attention (MatMul, Softmax,
    MatMul), a residual, and an erf GELU feed-forward: what ONNX Runtime's bert fusions look for."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weights = {name: rng.normal(0, 0.2, shape).astype(np.float32) for name, shape in
               (("wq", (hidden, hidden)), ("wk", (hidden, hidden)), ("wv", (hidden, hidden)), ("w1", (hidden, 4 * hidden)), ("w2", (4 * hidden, hidden)))}
    weights.update(gamma=np.ones(hidden, np.float32), beta=np.zeros(hidden, np.float32), half=np.float32(0.5), one=np.float32(1.0),
                   root2=np.float32(2**0.5), scale=np.float32(hidden**-0.5))
    node = helper.make_node
    nodes = [
        node("LayerNormalization", ["x", "gamma", "beta"], ["n"], axis=-1), *(node("MatMul", ["n", w], [w[1]]) for w in ("wq", "wk", "wv")),
        node("Transpose", ["k"], ["kt"], perm=[0, 2, 1]), node("MatMul", ["q", "kt"], ["s"]), node("Mul", ["s", "scale"], ["ss"]),
        node("Softmax", ["ss"], ["p"], axis=-1), node("MatMul", ["p", "v"], ["c"]), node("Add", ["x", "c"], ["r"]),
        node("LayerNormalization", ["r", "gamma", "beta"], ["n2"], axis=-1), node("MatMul", ["n2", "w1"], ["f"]),
        node("Div", ["f", "root2"], ["fd"]), node("Erf", ["fd"], ["fe"]), node("Add", ["fe", "one"], ["fa"]), node("Mul", ["f", "fa"], ["fm"]),
        node("Mul", ["fm", "half"], ["g"]), node("MatMul", ["g", "w2"], ["y"]),
    ]
    graph = helper.make_graph(nodes, "encoder", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", seq, hidden])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", seq, hidden])],
                              [numpy_helper.from_array(v, k) for k, v in weights.items()])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_an_attention_graph_is_detected_and_others_are_not(tmp_path):
    from infertool import onnx_io
    from infertool.backends.onnxruntime import transformer_type

    from onnx_models import mlp

    assert transformer_type(onnx_io.describe(attention_block(tmp_path / "enc.onnx"))) == "bert"
    assert transformer_type(onnx_io.describe(mlp(tmp_path / "mlp.onnx"))) is None


def test_tune_tries_the_transformer_fusions_and_its_command_makes_the_graph_first(tmp_path):
    model = attention_block(tmp_path / "enc.onnx")
    out, cache = tmp_path / "tune.json", {"INFERTOOL_CACHE_DIR": str(tmp_path / "cache")}
    result = cli("bench", model, "--batch", "2", "--warmup", "2", "-n", "5", "--duration", "0", "--tune", "--tune-budget", "3s", "--json", out, env=cache)
    assert result.returncode == 0, result.stderr
    tune = json.loads(out.read_text())["rows"][0]["tune"]
    assert tune["dimensions"][0] == "transformer fusions"
    [fused] = [t for t in tune["tried"] if t["changes"] == ["bert transformer fusions"]]
    assert fused["error"] is None and fused["graph"] == "bert-fused" and fused["min_cosine"] > 0.999
    step, bench = fused["command"].split(" && ")
    assert step.startswith(f"python -m onnxruntime.transformers.optimizer --input {model} --output ") and step.endswith("--model_type bert")
    assert f"--reference {model}" in bench and fused["model_sha256"] != json.loads(out.read_text())["model"]["sha256"]
    venv = str(Path(sys.executable).parent)
    again = subprocess.run(f"{fused['command']} --json {tmp_path / 'again.json'}", shell=True, capture_output=True, text=True,
                           env={**os.environ, **cache, "PATH": f"{venv}:{os.environ['PATH']}"}, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.loads((tmp_path / "again.json").read_text())["rows"][0]["agreement"]["passed"]


def test_torch_compile_tunes_its_modes():
    from infertool.backends.base import RunnerOptions
    from infertool.backends.torch import SourceOptions, TorchCompileBackend

    backend = TorchCompileBackend()
    [dimension] = backend.tuning_space(None, RunnerOptions())
    labels = [c.label for c in dimension.choices]
    expected = ["compile mode default", *(["compile mode reduce-overhead"] if backend.capabilities.cuda_graphs else []), "compile mode max-autotune-no-cudagraphs"]
    assert labels == expected
    applied = [c.apply(RunnerOptions()).group(SourceOptions).compile_mode for c in dimension.choices if c.needs(RunnerOptions())]
    assert "default" not in applied and "max-autotune-no-cudagraphs" in applied  # the defaults already are 'default'


def test_a_model_type_given_overrides_the_detection(tmp_path):
    from infertool import onnx_io
    from infertool.backends import registry
    from infertool.backends.base import RunnerOptions
    from infertool.backends.onnxruntime import OrtOptions

    from onnx_models import mlp

    model, backend = onnx_io.describe(mlp(tmp_path / "mlp.onnx")), registry.get("ort-cpu")
    given = RunnerOptions().with_group(OrtOptions(model_type="vit"))
    assert backend.tuning_space(model, given)[0].name == "transformer fusions"
    assert backend.tuning_space(model, given)[0].choices[0].step.command[-1] == "vit"
    assert "transformer fusions" not in [d.name for d in backend.tuning_space(model, RunnerOptions())]
    refused = cli("bench", tmp_path / "mlp.onnx", "--tune", "--model-type", "bort")
    assert refused.returncode == 2 and "--model-type" in one_line_error(refused)
