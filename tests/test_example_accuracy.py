"""Accuracy floors of the examples' real-weight models against the examples' generated ground truth,
each beside its trivial baseline (printed; `pytest -s` shows them): the quick versions of what the
examples report. Data, post-processing and scoring are the examples' own functions."""

import importlib.util
import sys

import numpy as np
import pytest

from conftest import ROOT, run_main

pytest.importorskip("scipy")  # the detection example's connected components


def example(name: str):
    """examples/NAME/run.py as a module (it puts examples/ on sys.path for `common`)."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", ROOT / "examples" / name / "run.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def outputs(model, inputs, target, *preset) -> np.ndarray:
    """The model's one output on `inputs` through `infertool run`."""
    done = run_main("run", model, "--inputs", inputs, *preset, "-o", target, "--force", "--quiet")
    assert done.returncode == 0, done.stderr
    return next(iter(np.load(target).values()))


def test_orientation_classifier_fp32_and_int8_read_at_least_95_percent(tmp_path):
    cls = example("classification")
    labels_csv = cls.make_crops(tmp_path / "eval", 40, seed=1)
    labels = np.array([int(line.split(",")[1]) for line in labels_csv.read_text().splitlines()[1:]])
    model = cls.fixed_shape(cls.model_file("rapidocr-onnxruntime", "ch_ppocr_mobile_v2.0_cls_infer.onnx"), tmp_path)
    majority = max(labels.mean(), 1 - labels.mean())
    scores = outputs(model, tmp_path / "eval", tmp_path / "fp32.npz", *cls.PRESET)
    accuracy = float((scores.argmax(axis=1) == labels).mean())
    print(f"orientation fp32: {accuracy:.1%} top-1 on {len(labels)} crops; majority class {majority:.1%}")
    assert accuracy >= 0.95 and accuracy > majority
    calibration = cls.make_crops(tmp_path / "calib", 16, seed=2).parent
    int8 = tmp_path / "cls.int8.onnx"
    done = run_main("quantize", model, "-p", "int8", "--calib-data", calibration, *cls.PRESET, "-o", int8, "--no-gate", "--quiet")
    assert done.returncode == 0, done.stderr
    converted = float((outputs(int8, tmp_path / "eval", tmp_path / "int8.npz", *cls.PRESET).argmax(axis=1) == labels).mean())
    print(f"orientation int8: {converted:.1%} top-1; majority class {majority:.1%}")
    assert converted >= 0.95


def test_text_detector_fp32_f1_at_least_85_percent(tmp_path):
    det = example("detection")
    truth = det.make_scenes(tmp_path / "scenes", det.PHOTOS[:3], seed=5)
    maps = outputs(det.model_file("rapidocr-onnxruntime", "ch_PP-OCRv4_det_infer.onnx"), tmp_path / "scenes", tmp_path / "maps.npz", *det.PRESET)
    precision, recall, hits, found, expected = det.score([det.db_boxes(m[0]) for m in maps], truth)
    f1 = 2 * precision * recall / max(precision + recall, 1e-9)
    print(f"detection fp32: F1 {f1:.1%} (precision {precision:.1%}, recall {recall:.1%}; {hits} of {expected} strings); no boxes: F1 0")
    assert f1 >= 0.85


def test_ctc_recogniser_fp32_reads_at_least_80_percent_of_lines_exactly(tmp_path):
    speech = example("speech")
    texts = speech.make_lines(tmp_path / "lines", 16, seed=3)
    model = speech.model_file("rapidocr-onnxruntime", "ch_PP-OCRv4_rec_infer.onnx")
    scores = outputs(model, tmp_path / "lines", tmp_path / "rec.npz", "--preprocess", "paddleocr-rec")
    decoded = [speech.greedy_ctc(s, speech.alphabet(model)) for s in scores]
    exact = float(np.mean([d == t for d, t in zip(decoded, texts)]))
    print(f"CTC fp32: {exact:.1%} exact lines of {len(texts)}; empty output: 0%")
    assert exact >= 0.8


def test_vad_fp32_and_int8_dynamic_find_the_speech(tmp_path):
    """fp32 itself recalls 76 % of the speech frames of this clip (its segments start late): the floor
    is 70 % recall and 75 % frame accuracy, both trivial detectors (56.5 % at best) well below."""
    vad = example("speech")
    truth = __import__("json").loads((ROOT / "examples" / "speech" / "speech.json").read_text())["speech"]
    wave = vad.waveform()
    model = vad.model_file("silero-vad", "silero_vad_16k_op15.onnx")
    int8 = tmp_path / "vad.int8-dynamic.onnx"
    done = run_main("quantize", model, "-p", "int8-dynamic", "--target", "ort", "--eval-data", vad.evaluation_chunk(wave, tmp_path, model),
                    "-o", int8, "--no-gate", "--quiet")
    assert done.returncode == 0, done.stderr
    silent = vad.frame_scores([], truth, len(wave) / vad.RATE)[2]
    for name, path in (("fp32", model), ("int8-dynamic", int8)):
        precision, recall, accuracy = vad.frame_scores(vad.segments(vad.stream(path, "ort-cpu", wave)[0]), truth, len(wave) / vad.RATE)
        print(f"VAD {name}: recall {recall:.1%}, precision {precision:.1%}, frame accuracy {accuracy:.1%}; all-silence {silent:.1%}, all-speech {1 - silent:.1%}")
        assert recall >= 0.7 and accuracy >= 0.75 > max(silent, 1 - silent), name
