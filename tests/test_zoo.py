"""The zoo's fast subset (benchmarks/zoo.py --fast): real architectures from torchvision,
transformers and keras.applications, built with random weights, through infertool's convert ->
quantize fp16 -> run, each step a real command line in its own process. torchvision does not
import beside the pinned torch, so the zoo runs in its own environment (`make zoo-venv`)."""

import json
import subprocess

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow
ZOO_PYTHON = ROOT / ".venv-zoo" / "bin" / "python"


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    if not ZOO_PYTHON.exists():
        pytest.skip("the zoo's environment is missing: make zoo-venv (make test makes it)")
    out = tmp_path_factory.mktemp("zoo")
    done = subprocess.run([str(ZOO_PYTHON), str(ROOT / "benchmarks" / "zoo.py"), "--fast", "--out", str(out), "--timeout", "400"],
                          capture_output=True, text=True, timeout=3000)
    assert done.returncode == 0, done.stderr
    return {row["name"]: row["steps"] for row in json.loads((out / "zoo.json").read_text())["rows"]}


@pytest.mark.parametrize("name", ["resnet18", "fasterrcnn_mobilenet_v3_320", "gated_if", "keras_normalization"])
def test_converts_quantizes_and_runs(zoo, name):
    steps = zoo[name]
    assert {k: v["status"] for k, v in steps.items() if k in ("convert", "fp16", "run")} == {"convert": "ok", "fp16": "ok", "run": "ok"}, steps
    assert any(steps[e]["status"] == "ok" for e in ("dynamo", "torchscript", "tf2onnx") if e in steps)  # a plain exporter manages it too
