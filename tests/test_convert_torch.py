"""Real PyTorch -> ONNX conversions through the CLI, checked in ONNX Runtime at a new batch size."""

import json

import numpy as np
import pytest
import torch

from conftest import MODELS, cli, one_line_error, ort_run
from models import cnn, encoder, kept_boxes, tagger

pytestmark = pytest.mark.slow


def convert(*args):
    result = cli("convert", *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_cnn_factory_dynamic_batch(tmp_path):
    out = tmp_path / "cnn.onnx"
    report = convert(f"{MODELS}:cnn", "--input-shape", "image:2x3x16x16", "-o", out)
    assert report["exporter"] == "dynamo" and report["opset"] == 18
    assert report["inputs"] == [{"name": "image", "dtype": "float32", "shape": ["batch", 3, 16, 16]}]
    assert report["validation"]["passed"] and [b["batch"] for b in report["validation"]["batches"]] == [2, 4]
    x = np.random.default_rng(0).standard_normal((5, 3, 16, 16), dtype=np.float32)
    expected = cnn()(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(ort_run(out, {"image": x})["output"], expected, atol=1e-4, rtol=1e-3)


def test_factory_file_with_a_dataclass(tmp_path):
    """A factory's file defining a dataclass (string annotations) imports as `python file.py` would."""
    report = convert(f"{MODELS}:configured", "--input-shape", "2x4", "-o", tmp_path / "c.onnx")
    assert report["validation"]["passed"]


def test_two_inputs_with_dynamic_sequence(tmp_path):
    out = tmp_path / "tagger.onnx"
    report = convert(
        f"{MODELS}:tagger", "--input-shape", "input_ids:2x7", "--input-shape", "mask:2x7",
        "--dtype", "input_ids:int64", "--dynamic-axis", "input_ids:1:seq", "--dynamic-axis", "mask:1:seq",
        "--int-range", "0:50", "-o", out,
    )
    assert [i["shape"] for i in report["inputs"]] == [["batch", "seq"], ["batch", "seq"]]
    assert [o["name"] for o in report["outputs"]] == ["tags", "pooled"]
    ids = np.random.default_rng(1).integers(0, 50, (3, 11))
    mask = np.ones((3, 11), dtype=np.float32)
    mask[:, 8:] = 0
    got = ort_run(out, {"input_ids": ids, "mask": mask})
    expected = tagger()(torch.from_numpy(ids), torch.from_numpy(mask))
    np.testing.assert_allclose(got["tags"], expected["tags"].detach().numpy(), atol=1e-5)
    np.testing.assert_allclose(got["pooled"], expected["pooled"].detach().numpy(), atol=1e-5)


def test_transformer_encoder(tmp_path):
    out = tmp_path / "encoder.onnx"
    report = convert(
        f"{MODELS}:encoder", "--input-shape", "1x12", "--dtype", "int64", "--dynamic-axis", "input_ids:1:seq", "-o", out,
    )
    assert report["validation"]["passed"]
    ids = np.random.default_rng(2).integers(0, 100, (4, 9))
    expected = encoder()(torch.from_numpy(ids)).detach().numpy()
    np.testing.assert_allclose(ort_run(out, {"input_ids": ids})["output"], expected, atol=1e-4, rtol=1e-3)


def test_torchscript_archive_and_static_batch(tmp_path):
    archive = tmp_path / "cnn.ts"
    torch.jit.trace(cnn(), torch.zeros(1, 3, 16, 16)).save(str(archive))
    out = tmp_path / "ts.onnx"
    report = convert(archive, "--input-shape", "1x3x16x16", "--static-batch", "-o", out)
    assert report["exporter"] == "torchscript" and report["opset"] == 17
    assert report["inputs"][0]["shape"] == [1, 3, 16, 16]
    assert [b["batch"] for b in report["validation"]["batches"]] == [1]
    assert any("TorchScript archive" in n for n in report["notes"])


def test_scripted_archive_with_dynamic_batch(tmp_path):
    archive = tmp_path / "cnn.pt"
    torch.jit.script(cnn()).save(str(archive))
    out = tmp_path / "scripted.onnx"
    report = convert(archive, "--input-shape", "2x3x16x16", "-o", out)
    x = np.ones((3, 3, 16, 16), dtype=np.float32)
    np.testing.assert_allclose(ort_run(out, {report["inputs"][0]["name"]: x})["output"], cnn()(torch.from_numpy(x)).detach().numpy(), atol=1e-4)


def test_exported_program_carries_its_shapes(tmp_path):
    program = torch.export.export(cnn(), (torch.zeros(2, 3, 16, 16),), dynamic_shapes={"image": {0: torch.export.Dim("batch")}})
    archive = tmp_path / "cnn.pt2"
    torch.export.save(program, str(archive))
    report = convert(archive, "-o", tmp_path / "ep.onnx")
    assert report["exporter"] == "dynamo" and report["inputs"][0]["shape"] == ["batch", 3, 16, 16]
    assert report["validation"]["passed"]


def test_low_opset_falls_back_to_torchscript_with_a_reason(tmp_path):
    report = convert(f"{MODELS}:cnn", "--input-shape", "1x3x16x16", "--opset", "16", "-o", tmp_path / "o16.onnx")
    assert report["exporter"] == "torchscript" and report["opset"] == 16
    assert any("fell back to the TorchScript exporter" in n and "opset" in n for n in report["notes"])


def test_a_batch_torch_export_specializes_falls_back_to_torchscript(tmp_path):
    """RAFT's pattern (two images encoded as one batch, then split): torch.export fixes the batch,
    the TorchScript export keeps it dynamic and is right at another batch."""
    out = tmp_path / "pair.onnx"
    report = convert(f"{MODELS}:pair_encoder", "--input-shape", "image1:1x3x8x8", "--input-shape", "image2:1x3x8x8", "-o", out)
    assert report["exporter"] == "torchscript" and report["inputs"][0]["shape"][0] == "batch"
    assert report["notes"] == ["torch.export specialized axis 'batch' (input 'image1' axis 0) to 2; fell back to the TorchScript exporter, "
                               "checked at another size of that axis"]
    assert [b["batch"] for b in report["validation"]["batches"]] == [1, 3] and report["validation"]["passed"]


def test_the_fallback_note_names_torchs_cause(tmp_path):
    """Not torch's colour codes and its "This is step 1/3 ... Next steps" preamble."""
    report = convert(f"{MODELS}:gated", "--input-shape", "2x16", "-o", tmp_path / "gated.onnx")
    (note,) = report["notes"]
    assert note.startswith("dynamo export failed (torch.export could not trace the model: GuardOnDataDependentSymNode: Could not guard"), note
    assert "\x1b" not in note and "step 1/3" not in note and "Next steps" not in note
    assert note.endswith("; fell back to the TorchScript exporter") and report["exporter"] == "torchscript"


def test_outputs_sized_by_the_data_are_named(tmp_path):
    """A detector's boxes: their number comes from the data; convert says which outputs those are."""
    report = convert(f"{MODELS}:positives", "--input-shape", "2x8", "--static-batch", "-o", tmp_path / "p.onnx")
    assert report["notes"] == ["output sizes no input dimension names: output (axis 0): the data decides them (a detector's boxes) or the "
                               "exporter did not name how the inputs' sizes do; a runtime sizes them on every run (TensorRT: data-dependent shapes)"]
    assert not convert(f"{MODELS}:cnn", "--input-shape", "image:2x3x16x16", "-o", tmp_path / "cnn.onnx")["notes"]


def test_rows_tied_in_score_may_come_in_another_order(tmp_path):
    """torch.topk and ONNX Runtime's TopK order tied scores differently: a correct export whose
    data-sized outputs agree with their rows paired passes, with a warning naming them."""
    report = convert(f"{MODELS}:tied_detections", "--input-shape", "1x16", "--static-batch", "--exporter", "torchscript",
                     "-o", tmp_path / "t.onnx")
    warning = next(w for w in report["validation"]["warnings"] if "another order" in w)
    assert warning.startswith("outputs 'output_0', 'output_1', 'output_2': ") and " of 30 rows came out in another order than pytorch's" in warning
    assert report["validation"]["passed"] and (tmp_path / "t.onnx").exists()


def test_a_row_that_truly_differs_still_fails(tmp_path):
    out = tmp_path / "t.onnx"
    result = cli("convert", f"{MODELS}:tied_detections_wrong_row", "--input-shape", "1x16", "--static-batch", "--exporter", "torchscript", "-o", out)
    assert result.returncode == 1 and "output 'output_0' max abs error" in one_line_error(result) and not out.exists()


def test_an_empty_detection_set_reshapes_on_onnx_runtime(tmp_path):
    """reshape(k, -1) of kept (k, 2, 2) corners: ONNX Runtime cannot infer -1 from zero elements, so
    convert writes the 4 in (precision/reshapes.py) and the model runs where nothing passes."""
    out = tmp_path / "k.onnx"
    report = convert(f"{MODELS}:kept_boxes", "--input-shape", "1x8", "--static-batch", "--exporter", "torchscript", "-o", out)
    assert any(n.startswith("wrote the target shape of 2 Reshape nodes out (constants") for n in report["notes"])
    nothing = np.full((1, 8), -5.0, np.float32)
    assert ort_run(out, {"x": nothing})["output"].shape == (0, 4)
    some = np.linspace(-1, 1, 8, dtype=np.float32)[None]
    np.testing.assert_allclose(ort_run(out, {"x": some})["output"], kept_boxes()(torch.from_numpy(some)).numpy())


def test_explicit_dynamo_with_low_opset_is_an_error(tmp_path):
    out = tmp_path / "o16.onnx"
    result = cli("convert", f"{MODELS}:cnn", "--input-shape", "1x3x16x16", "--opset", "16", "--exporter", "dynamo", "-o", out)
    assert result.returncode == 2
    assert "opset" in one_line_error(result)
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_pickled_module_needs_trust(tmp_path):
    pickled = tmp_path / "whole.pt"
    torch.save(cnn(), str(pickled))
    out = tmp_path / "p.onnx"
    refused = cli("convert", pickled, "--input-shape", "1x3x16x16", "-o", out, cwd=tmp_path, env={"PYTHONPATH": str(MODELS.parent)})
    assert refused.returncode == 2 and "--trust-model" in one_line_error(refused) and not out.exists()
    trusted = cli("convert", pickled, "--input-shape", "1x3x16x16", "-o", out, "--trust-model", env={"PYTHONPATH": str(MODELS.parent)})
    assert trusted.returncode == 0, trusted.stderr
    assert out.exists()


def test_state_dict_points_to_factory_and_weights(tmp_path):
    weights = tmp_path / "w.pt"
    model = cnn()
    with torch.no_grad():
        model.head.bias.fill_(3.0)
    torch.save(model.state_dict(), str(weights))
    result = cli("convert", weights, "--input-shape", "1x3x16x16", "-o", tmp_path / "w.onnx")
    assert result.returncode == 2 and "state dict" in one_line_error(result)
    out = tmp_path / "weighted.onnx"
    convert(f"{MODELS}:cnn", "--weights", weights, "--input-shape", "1x3x16x16", "-o", out)
    x = np.zeros((1, 3, 16, 16), dtype=np.float32)
    np.testing.assert_allclose(ort_run(out, {"image": x})["output"], model(torch.from_numpy(x)).detach().numpy(), atol=1e-5)


def test_existing_output_needs_force(tmp_path):
    out = tmp_path / "cnn.onnx"
    out.write_text("keep me")
    result = cli("convert", f"{MODELS}:cnn", "--input-shape", "1x3x16x16", "-o", out)
    assert result.returncode == 2 and "--force" in one_line_error(result)
    assert out.read_text() == "keep me"
    convert(f"{MODELS}:cnn", "--input-shape", "1x3x16x16", "-o", out, "--force")
    assert out.stat().st_size > 1000


@pytest.mark.parametrize("batch", [1, 3])
def test_an_output_of_batch_x_seq_rows_is_not_labelled_batch(tmp_path, batch):
    """The TorchScript export named every output's axis 0 `batch`: [batch, 8] for 2 x 5 = 10 rows at batch 2."""
    out = tmp_path / "rows.onnx"
    report = convert(f"{MODELS}:token_rows", "--exporter", "torchscript", "--input-shape", f"tokens:{batch}x5x8", "-o", out)
    assert report["inputs"][0]["shape"] == ["batch", 5, 8]
    assert report["outputs"][0]["shape"][0] != "batch"
    assert ort_run(out, {"tokens": np.ones((2, 5, 8), np.float32)})["output"].shape == (10, 8)
