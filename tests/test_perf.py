"""bench's performance answers on the CPU: FLOPs and % of peak, --profile, --concurrency, --tune and
its reproduce command, and the torch / torch-compile framework baselines against ONNX Runtime."""

import json
import shlex
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from infertool.measure import peaks
from infertool.measure.concurrency import run_concurrently
from infertool.measure.flops import count
from infertool.measure.timing import Budget

from conftest import ROOT, cli, one_line_error, run_cli
from onnx_models import image_classifier, mlp

FAST = ["--warmup", "2", "--iterations", "20", "--duration", "0"]
ONNX_DATA = Path(onnx.__file__).parent / "backend" / "test" / "data"


def bench_json(*args, env=None, code=0):
    result = cli("bench", *args, "--json", env=env)
    assert result.returncode == code, result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def cnn(cnn_onnx):
    """tests/models.py:cnn converted as a user would, with a dynamic batch."""
    return cnn_onnx


# ---------------------------------------------------------------- FLOPs and peaks


def test_resnet50_counts_the_published_4_1_gmac():
    """ONNX's own ResNet-50 test model (light: small weights, real shapes): 4.09 GMAC per 224x224 image, as
    torchvision publishes (ResNet50_Weights: 4.09 GFLOPS, counted as multiply-adds)."""
    model = onnx.load(str(ONNX_DATA / "light" / "light_resnet50.onnx"))
    name = model.graph.input[0].name
    one = count(model, {name: (1, 3, 224, 224)})
    assert one.macs["conv"] + one.macs["matmul"] == pytest.approx(4.09e9, rel=0.005)
    assert one.macs["matmul"] == 2048 * 1000  # the classifier


@pytest.mark.parametrize(("case", "macs"), [
    ("test_conv_with_strides_padding", 108),  # y 1x1x4x3, each a 1x3x3 window
    ("test_convtranspose", 162),  # 9 inputs, each spread over 2 channels x 3x3
    ("test_gemm_transposeA", 72),  # (6x3)^T @ (6x4): 3 x 6 x 4
    ("test_gemm_transposeB", 72),
    ("test_matmul_4d", 72),  # batch 1x2 of 3x4 @ 4x3
])
def test_counts_on_onnx_node_tests(case, macs):
    import onnx.backend.test.case.node as cases
    from onnx.backend.test.case.node import conv, convtranspose, gemm, matmul  # noqa: F401  (importing registers their cases)

    model = next(c for c in cases._NodeTestCases if c.name == case).model
    shapes = {i.name: tuple(d.dim_value for d in i.type.tensor_type.shape.dim) for i in model.graph.input}
    assert sum(count(model, shapes).macs.values()) == macs


def _attention_block(path: Path) -> onnx.ModelProto:
    """x[b,s,8] @ wq -> q; q @ q^T -> scores; scores @ q -> context; plus an Einsum the counter cannot model."""
    w = numpy_helper.from_array(np.ones((8, 8), np.float32), "wq")
    nodes = [
        helper.make_node("MatMul", ["x", "wq"], ["q"]),
        helper.make_node("Transpose", ["q"], ["qt"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["q", "qt"], ["scores"]),
        helper.make_node("MatMul", ["scores", "q"], ["context"]),
        helper.make_node("Einsum", ["context", "context"], ["y"], equation="bsd,bsd->bs", name="einsum"),
    ]
    graph = helper.make_graph(nodes, "attn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", "s", 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", "s"])], [w])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_attention_matmuls_are_told_apart(tmp_path):
    found = count(_attention_block(tmp_path / "a.onnx"), {"x": (2, 5, 8)})
    assert found.macs == {"matmul": 2 * 5 * 8 * 8, "attention": 2 * (2 * 5 * 8 * 5)}
    assert found.uncounted == ("einsum",)
    assert found.weight_bytes == 8 * 8 * 4 and found.io_bytes == (2 * 5 * 8 + 2 * 5) * 4


def test_attention_column_only_where_there_is_attention(cnn, tmp_path):
    """A CNN has no attention work: its table leaves the column out rather than print 0 %."""
    onnx.save(_attention_block(tmp_path / "a.onnx"), tmp_path / "a.onnx")
    tables = {}
    for name, model, shape in (("cnn", cnn, []), ("attention", tmp_path / "a.onnx", ["--input-shape", "x:1x5x8"])):
        result = cli("bench", model, *shape, *FAST, env={"COLUMNS": "80"})
        assert result.returncode == 0, result.stderr
        tables[name] = result.stdout.split("work per inference")[1].splitlines()[2]
    assert "GFLOP" in tables["cnn"] and "attention" not in tables["cnn"]
    assert "attention" in tables["attention"]


def test_peak_table_by_driver_name():
    assert peaks.peak("NVIDIA H100 80GB HBM3", "fp16").to_dict() == {"device": "H100 SXM", "precision": "fp16", "dense_tflops": 989.5}
    assert peaks.peak("NVIDIA H100 PCIe", "fp16").tflops == 756.5
    assert peaks.peak("NVIDIA H100 NVL", "bf16").tflops == 835.5
    assert peaks.peak("NVIDIA H200", "fp8").tflops == 1979.0
    assert peaks.peak("NVIDIA L40S", "fp16").device == "L40S" and peaks.peak("NVIDIA L4", "fp16").device == "L4"
    assert peaks.peak("NVIDIA A100-SXM4-80GB", "fp32", tf32=True).to_dict()["precision"] == "tf32"
    assert peaks.peak("NVIDIA A100-SXM4-80GB", "fp32").tflops == 19.5
    assert peaks.peak("NVIDIA A100 80GB PCIe", "fp8") is None  # no fp8 on Ampere: no share claimed
    assert peaks.peak("Intel(R) Xeon(R) CPU", "fp32") is None


# ---------------------------------------------------------------- rows: compute, profile, concurrency


def test_rows_report_work_profile_and_concurrency(cnn):
    report = bench_json(cnn, "--batch", "1,4", *FAST, "--profile", "--profile-top", "3", "--concurrency", "2")
    one, four = report["rows"]
    assert one["compute"]["flops"] > 0 and four["compute"]["flops"] == 4 * one["compute"]["flops"]
    assert one["compute"]["macs_by_kind"]["conv"] > 0 and one["compute"]["device"] == "cpu"
    assert one["compute"]["peak"] is None and one["compute"]["peak_share"] is None  # CPUs: TFLOP/s only
    seconds = one["latency_ms"]["median"] / 1e3
    assert one["compute"]["tflops_per_s"] == pytest.approx(one["compute"]["flops"] / seconds / 1e12, rel=1e-3)
    profile = one["profile"]
    assert profile["clock"] == "host" and profile["runs"] == 10
    assert "Conv" in [op["op_type"] for op in profile["by_op_type"]]
    assert sum(op["share"] for op in profile["by_op_type"]) == pytest.approx(1.0, abs=0.01)
    assert len(profile["top_nodes"]) == 3 and profile["top_nodes"][0]["share"] >= profile["top_nodes"][-1]["share"]
    concurrent = four["concurrency"]
    assert concurrent["workers"] == 2 and concurrent["requests"] == sum(concurrent["requests_per_worker"]) >= 20
    assert concurrent["samples_per_s"] == pytest.approx(concurrent["inferences_per_s"] * 4, rel=1e-3)
    assert concurrent["latency_ms"]["median"] > 0


def test_concurrent_callers_overlap():
    """Four callers that each wait 20 ms take about 20 ms together, not 80: the threads really run at once."""
    done = run_concurrently([lambda: time.sleep(0.02)] * 4, Budget(1, 0), Budget(8, 0))
    assert done.per_thread == [2, 2, 2, 2] and len(done.samples_ns) == 8
    assert done.wall_ns < 2 * 2 * 20e6  # two rounds of 20 ms, with room for scheduling; serial would be 160 ms


# ---------------------------------------------------------------- --tune


def _run_command(command: str, *extra: str, env=None):
    """A printed command line, run here: `infertool` is this checkout's CLI."""
    result = None
    for part in command.split(" && "):
        argv = shlex.split(part)
        assert argv[0] == "infertool"
        result = cli(*argv[1:], *(extra if argv[1] == "bench" else ()), env=env)
        assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_tune_picks_a_configuration_and_its_command_reproduces_it(cnn, tmp_path):
    cache = {"INFERTOOL_CACHE_DIR": str(tmp_path / "cache")}  # where the precision graphs go
    calib = tmp_path / "calib.npz"
    np.savez(calib, image=np.random.default_rng(1).standard_normal((24, 3, 16, 16)).astype(np.float32))
    report = bench_json(cnn, "--batch", "2", *FAST, "--tune", "--tune-budget", "4s", "--tune-precision", calib, env=cache)
    row = report["rows"][0]
    tune = row["tune"]
    tried = {t["changes"][-1]: t for t in tune["tried"]}  # keyed by the change each tried (on top of the best so far)
    assert {"defaults", "int8-tensorrt graph", "int8-ort graph", "graph-opt basic", "graph-opt disable"} <= set(tried)
    assert "graph-opt all" not in tried  # the defaults read back ORT_ENABLE_ALL already: not tried twice
    assert tried["defaults"]["settings_read_back"]["session_options.graph_optimization_level"] == "ORT_ENABLE_ALL"
    assert all(t["iterations"] >= 5 for t in tune["tried"] if not t["error"])
    assert tune["best"] and tune["speedup"] > 0 and tune["best_ms"] == row["latency_ms"]["median"]
    # the best and the defaults again, each the only session of a fresh bench process (its reproduce command)
    assert tune["alone_error"] is None and tune["alone_ms"]["best"] > 0 and tune["alone_ms"]["defaults"] > 0
    assert tune["alone_speedup"] == pytest.approx(tune["alone_ms"]["defaults"] / tune["alone_ms"]["best"], rel=1e-3)
    best = next(t for t in tune["tried"] if t["changes"] == tune["best"])
    again = _run_command(tune["command"], "--json", env=cache)["rows"][0]
    assert again["backend"] == row["backend"] and again["batch"] == 2 and again["precision"] == row["precision"]
    for key, value in best["settings_read_back"].items():  # the same settings, read back from the new session
        section, name = key.split(".") if "." in key else (None, key)
        assert (again["settings"][section][name] if section else again["settings"][name]) == value, key
    # every configuration's command reproduces it, a precision graph included
    graph = tried["int8-ort graph"]
    assert graph["command"].startswith(f"infertool quantize {cnn} -p int8 --target ort --calib-data {calib}") and str(tmp_path / "cache") in graph["command"]
    reproduced = _run_command(graph["command"], "--json", env=cache)
    assert reproduced["rows"][0]["precision"] == "int8" and reproduced["rows"][0]["agreement"]["passed"]
    assert reproduced["model"]["sha256"] == graph["model_sha256"]


def test_tune_keeps_the_models_precision_unless_asked(cnn, tmp_path):
    """Precision graphs are tried only with --tune-precision and the user's calibration data; the
    row records the graph it measured."""
    report = bench_json(cnn, "--batch", "2", *FAST, "--tune", "--tune-budget", "2s", env={"INFERTOOL_CACHE_DIR": str(tmp_path / "cache")})
    row = report["rows"][0]
    assert not [t for t in row["tune"]["tried"] if t["graph"]] and row["precision"] == "fp32"
    assert "graph" not in row["settings"]


@pytest.mark.parametrize("args, words", [
    (["--tune", "--no-check"], "--tune with --no-check"),
    (["--tune-precision", "random"], "--tune-precision is a dimension of --tune"),
    (["--tune", "--tune-precision", "random"], "--tune-precision"),  # calibration data is the user's, never generated
])
def test_tune_refuses_what_would_mislead(cnn, args, words):
    result = cli("bench", cnn, *FAST, *args)
    assert result.returncode == 2 and words in one_line_error(result), result.stderr


def test_tune_budget_too_small_is_one_line(tmp_path):
    model = mlp(tmp_path / "wide.onnx", hidden=4096)  # milliseconds per inference at batch 256
    result = cli("bench", model, *FAST, "--batch", "256", "--tune", "--tune-budget", "1ms", "--json", tmp_path / "out.json")
    assert result.returncode == 2
    line = one_line_error(result)
    assert "--tune-budget 0.001s is too small for ort-cpu batch 256" in line and "give --tune-budget" in line
    assert not (tmp_path / "out.json").exists()


# ---------------------------------------------------------------- torch / torch-compile baselines


def test_torch_and_torch_compile_agree_with_ort(cnn):
    report = bench_json(cnn, "-b", "ort-cpu", "-b", "torch", "-b", "torch-compile", "--source", "tests/models.py:cnn", "--batch", "2", *FAST)
    rows = {r["backend"]: r for r in report["rows"]}
    assert set(rows) == {"ort-cpu", "torch", "torch-compile"}
    for row in rows.values():
        assert row["agreement"]["passed"] and row["agreement"]["outputs"][0]["cosine"] > 0.99999
        assert row["latency_ms"]["count"] >= 20 and row["compute"]["flops"] == rows["ort-cpu"]["compute"]["flops"]
    torch_row, compiled = rows["torch"]["settings"], rows["torch-compile"]["settings"]
    assert torch_row["inference_mode"] and torch_row["device"] == "cpu" and torch_row["dtype"] == "float32" and not torch_row["compiled"]
    assert compiled["compiled"] and list(compiled["compile_seconds"]) == ["image 2x3x16x16"]
    assert compiled["compile_seconds"]["image 2x3x16x16"] > 0
    assert report["settings"]["source"]["source"] == "tests/models.py:cnn"


def test_a_failed_compile_fails_its_row_only(cnn, tmp_path):
    broken = {"CXX": str(tmp_path / "no-such-compiler"), "TORCHINDUCTOR_FORCE_DISABLE_CACHES": "1"}
    # a process of its own: torch reads CXX when it is imported, and keeps what it compiled before
    result = run_cli("bench", cnn, "-b", "ort-cpu", "-b", "torch-compile", "-b", "torch", "--source", "tests/models.py:cnn", *FAST, "--json", env=broken)
    assert result.returncode == 1
    assert "could not measure torch-compile batch 1: torch.compile failed" in one_line_error(result)
    report = json.loads(result.stdout)
    assert [r["backend"] for r in report["rows"]] == ["ort-cpu", "torch"]
    assert report["failed_rows"][0]["backend"] == "torch-compile" and "compiler" in report["failed_rows"][0]["error"]


BAD = {
    "other input names": (["-b", "torch", "--source", "tests/models.py:tagger"], "does not match cnn.onnx: its forward() takes input_ids, mask, the ONNX model's inputs are image"),
    "no source": (["-b", "torch-compile"], "backend torch-compile runs the PyTorch model the ONNX came from: give it with --source"),
    "unknown compile mode": (["-b", "torch-compile", "--source", "tests/models.py:cnn", "--compile-mode", "fast"], "unknown --compile-mode 'fast'"),
    "malformed budget": (["--tune", "--tune-budget", "soon"], "malformed --tune-budget 'soon'"),
    "zero budget": (["--tune", "--tune-budget", "0s"], "--tune-budget must be positive"),
    "bad execution mode": (["--execution-mode", "eager"], "unknown --execution-mode 'eager'"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input(case, cnn, tmp_path):
    args, message = BAD[case]
    result = cli("bench", cnn, *FAST, *args, "--json", tmp_path / "out.json")
    assert result.returncode == 2, result.stderr
    assert message in one_line_error(result)
    assert not (tmp_path / "out.json").exists()


def test_a_source_with_other_outputs_is_one_line(tmp_path):
    model = image_classifier(tmp_path / "img.onnx", classes=4)  # input 'image' as the cnn's, but 4 classes, not 5
    result = cli("bench", model, "-b", "torch", "--source", "tests/models.py:cnn", *FAST)
    assert result.returncode == 2
    assert "output 'logits' has shape 1x5, the ONNX model's batchx4" in one_line_error(result)


# ---------------------------------------------------------------- TensorRT through the fake


FAKE = {"PYTHONPATH": str(ROOT / "tests" / "fakes")}


def test_trt_profile_and_tune_with_the_fake(cnn, tmp_path):
    env = {**FAKE, "INFERTOOL_CACHE_DIR": str(tmp_path / "cache")}
    report = bench_json(cnn, "-b", "trt", "--batch", "2", *FAST, "--profile", "--tune", "--tune-budget", "2s", env=env)
    row = report["rows"][0]
    assert row["settings"]["tensorrt_module"].startswith(str(ROOT / "tests" / "fakes"))  # never passes for TensorRT
    profile = row["profile"]
    assert profile["clock"] == "device" and {"Conv", "Relu"} <= {op["op_type"] for op in profile["by_op_type"]}
    tried = [", ".join(t["changes"]) for t in row["tune"]["tried"]]
    assert tried[:2] == ["defaults", "CUDA graph"] and any("builder optimization level 5" in t for t in tried)
    assert "builder optimization level 3" not in " ".join(tried)  # the default level, read back: not built twice
    assert row["tune"]["tried"][0]["settings_read_back"] == {"cuda_graph": False, "builder_optimization_level": 3}


def test_attention_through_shape_arithmetic(tmp_path, monkeypatch):
    """A BERT layer (benchmarks/models.py) reshapes by its own Shape ops: ONNX's shape inference stops there,
    ONNX Runtime's symbolic inference carries on, and the attention MatMuls are counted, to the MAC."""
    import torch

    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks.models import BertBase

    torch.manual_seed(0)
    model = BertBase(vocab=100, hidden=32, layers=1, heads=4, intermediate=64).eval()
    ids, mask = torch.zeros(1, 16, dtype=torch.int64), torch.ones(1, 16, dtype=torch.int64)
    torch.onnx.export(model, (ids, mask), str(tmp_path / "bert.onnx"), dynamo=False, input_names=["input_ids", "attention_mask"],
                      dynamic_axes={"input_ids": {0: "b", 1: "s"}, "attention_mask": {0: "b", 1: "s"}}, opset_version=17)
    found = count(onnx.load(str(tmp_path / "bert.onnx")), {"input_ids": (1, 16), "attention_mask": (1, 16)})
    s, h, i = 16, 32, 64
    assert found.uncounted == ()
    assert found.macs == {"matmul": s * (h * 3 * h + h * h + 2 * h * i) + h * 2, "attention": 2 * s * s * h}


def test_a_compile_reused_from_earlier_in_the_process_is_said_so_not_timed_as_0_s(cnn):
    """torch.compile keeps what it compiled per process: a second runner of the same mode (bench --tune's
    full-budget row after its search) compiles nothing; its compile time is the first's, said reused."""
    from infertool.backends import registry
    from infertool.backends.base import RunnerOptions
    from infertool.backends.torch import SourceOptions

    backend, feeds = registry.get("torch-compile"), {"image": np.zeros((3, 3, 16, 16), np.float32)}
    options = RunnerOptions().with_group(SourceOptions(source=str(ROOT / "tests" / "models.py") + ":cnn"))
    settings = []
    for _ in range(2):
        with backend.open(cnn, options) as runner:
            runner.infer(feeds)
            settings.append(runner.info().settings)
    first, again = settings
    assert first["compile_reused"] == [] and first["compile_seconds"]["image 3x3x16x16"] > 0.05
    assert again["compile_reused"] == ["image 3x3x16x16"] and again["compile_seconds"] == first["compile_seconds"]


def test_tune_warns_where_one_configuration_measures_far_apart():
    """bench --tune on an H100 (stage2): torch-compile's defaults measured 2.67 ms in the search, 4.55 ms with
    the full budget and 4.02 ms alone in a process; its 2.01x must not stand unflagged."""
    from infertool.pipelines.tune import unsteady

    warning = unsteady("defaults", 2.6666, 4.549909, 4.024782)
    assert warning.startswith("defaults: 2.6666 ms in the search, 4.5499 ms with the full budget, 4.0248 ms alone in a process: 1.71x apart")
    assert unsteady("best", 2.0864, 2.260314, 2.226267) is None  # within noise
    assert unsteady("best", 2.0, None, None) is None and unsteady("best", 2.0, 3.0, None).startswith("best: 2.0000 ms in the search, 3.0000 ms with")
