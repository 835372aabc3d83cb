"""Accuracy against ground truth: `bench` / `quantize` `--labels-csv`, checked against top-1 / top-5
computed here from the model's own outputs, and the labels file's errors."""

import json

import numpy as np
from PIL import Image

from conftest import cli, one_line_error, ort_run
from onnx_models import image_classifier, mlp


def _labelled(tmp_path, count: int = 10):
    """An MLP, `count` inputs, and labels: the model's own top class for the first half, its
    third-best class for the rest (so top-1 is 50 % and top-5 100 % by construction)."""
    model = mlp(tmp_path / "mlp.onnx")
    x = np.random.default_rng(5).standard_normal((count, 16)).astype(np.float32)
    np.savez(tmp_path / "x.npz", x=x)
    order = np.argsort(-ort_run(model, {"x": x})["y"], axis=1)
    classes = [int(order[i, 0] if i < count // 2 else order[i, 2]) for i in range(count)]
    (tmp_path / "labels.csv").write_text("sample,class\n" + "".join(f"{i},{c}\n" for i, c in enumerate(classes)))
    return model, classes


def test_bench_reports_ground_truth_accuracy_per_row(tmp_path):
    model, _ = _labelled(tmp_path)
    done = cli("bench", model, "--inputs", tmp_path / "x.npz", "--labels-csv", tmp_path / "labels.csv", "--batch", "3,10",
                   "--iterations", "3", "--duration", "0", "--warmup", "1", "--json")
    assert done.returncode == 0, done.stderr
    for row in json.loads(done.stdout)["rows"]:  # batch 3 runs 4 batches, the last filled up and cut back
        assert row["accuracy"] == {"labels": str(tmp_path / "labels.csv"), "output": "y", "samples": 10, "top1": 0.5, "top5": 1.0}
    table = cli("bench", model, "--inputs", tmp_path / "x.npz", "--labels-csv", tmp_path / "labels.csv", "--iterations", "3", "--duration", "0")
    assert "accuracy against" in table.stdout and "50.0%" in table.stdout


def test_quantize_reports_both_models_against_the_labels(tmp_path):
    model, _ = _labelled(tmp_path)
    done = cli("quantize", model, "-p", "fp16", "-o", tmp_path / "mlp.fp16.onnx", "--eval-data", tmp_path / "x.npz", "--labels-csv", tmp_path / "labels.csv", "--json")
    assert done.returncode == 0, done.stderr
    truth = json.loads(done.stdout)["accuracy"]["ground_truth"]
    assert truth["original"]["top1"] == 0.5 and truth["original"]["top5"] == 1.0 and truth["converted"]["samples"] == 10


def test_labels_name_image_files_by_name_or_stem(tmp_path):
    model = image_classifier(tmp_path / "img.onnx")
    (tmp_path / "images").mkdir()
    for index, colour in enumerate(((255, 0, 0), (0, 255, 0), (0, 0, 255))):
        Image.new("RGB", (8, 8), colour).save(tmp_path / "images" / f"im{index}.png")
    (tmp_path / "labels.csv").write_text("im0.png,3\nim1,3\n")  # im2 unlabelled
    done = cli("bench", model, "--inputs", tmp_path / "images", "--labels-csv", tmp_path / "labels.csv", "--preprocess", "unit",
                   "--iterations", "2", "--duration", "0", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows"][0]["accuracy"]["samples"] == 2


def test_bad_labels_are_one_line_errors_and_write_nothing(tmp_path):
    model, _ = _labelled(tmp_path)
    cases = {
        "missing.csv": ("0,1\n99,2\nghost.png,1\n", "names 2 samples not in"),
        "range.csv": ("0,1\n1,12\n", "has class 12, but output 'y' has 10 classes"),
        "text.csv": ("0,cat\n1,dog\n", "is not sample,class"),
        "twice.csv": ("0,1\n0,2\n", "labelled both 1 and 2"),
        "empty.csv": ("sample,class\n", "has no sample,class lines"),
    }
    for name, (text, message) in cases.items():
        (tmp_path / name).write_text(text)
        out = tmp_path / f"{name}.onnx"
        done = cli("quantize", model, "-p", "fp16", "-o", out, "--eval-data", tmp_path / "x.npz", "--labels-csv", tmp_path / name)
        assert done.returncode == 2 and message in one_line_error(done), (name, done.stderr)
        assert not out.exists()
    done = cli("bench", model, "--labels-csv", tmp_path / "missing.csv")
    assert done.returncode == 2 and "--labels-csv needs --inputs" in one_line_error(done)
