"""Text orientation classification (PaddleOCR's 0°/180° classifier, real weights): accuracy against
generated ground truth and latency, per precision and backend, all through infertool's command line.

    python examples/classification/run.py [--backends ort-cpu,trt,trt-rtx] [--out DIR] [--quick]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import (  # noqa: E402
    ENGINE_BACKENDS,
    CommandFailed,
    arguments,
    colours,
    environment_line,
    infertool,
    latency_row,
    model_file,
    noisy,
    pct,
    phrase,
    table,
    text_crop,
    usable_backends,
    variants,
    write_results,
)

CLASSES = ("0", "180")  # the model's two outputs, as PaddleOCR's label_list names them
SHAPE = (48, 192)  # what PaddleOCR feeds the classifier
PRESET = ["--preprocess", "paddleocr-cls"]


def make_crops(folder: Path, count: int, seed: int) -> Path:
    """`count` text crops, half of them turned 180°, and labels.csv (file name -> class)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["sample,class"]
    for index in range(count):
        fg, bg = colours(rng)
        image = text_crop(phrase(rng), int(rng.integers(14, 40)), fg, bg, int(rng.integers(2, 10)))
        image = noisy(image, rng, float(rng.uniform(0, 12)))
        label = index % 2
        if label:
            image = image.rotate(180)
        name = f"crop_{index:04d}.png"
        image.save(folder / name)
        lines.append(f"{name},{label}")
    (folder / "labels.csv").write_text("\n".join(lines) + "\n")
    return folder / "labels.csv"


def crops(labels: Path) -> int:
    return len(labels.read_text().splitlines()) - 1


def majority(labels: Path) -> float:
    """The accuracy of always answering the commonest class (0-1)."""
    classes = [line.rsplit(",", 1)[1] for line in labels.read_text().splitlines()[1:]]
    return max(classes.count(c) for c in set(classes)) / len(classes)


def fixed_shape(model: Path, out: Path) -> Path:
    """The classifier names both image sides '?', and TensorRT reads one name as one size, so a 48x192
    profile is refused ("dimensions with this name have different constant values"): fix them."""
    proto = onnx.load(model)
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    dims[0].dim_param = "batch"
    for dim, size in zip(dims[2:], SHAPE):
        dim.dim_value = size
    target = out / "cls_48x192.onnx"
    onnx.save(proto, target)
    return target


def bench(model: Path, reference: Path, backend: str, batches: str, evaluation: Path, labels: Path, timing: list[str], log: Path) -> dict:
    args = ["bench", model, "-b", backend, "--batch", batches, "--inputs", evaluation, "--labels-csv", labels, "--reference", reference, *PRESET, *timing]
    if backend in ENGINE_BACKENDS:  # build the engine first, with its profile, and bench that engine
        engine = model.with_suffix(f".{backend}.engine")
        build = ["build-engine", model, "-o", engine, "--force", "-p", _graph_precision(model),
                 "--min-shapes", f"x:1x3x{SHAPE[0]}x{SHAPE[1]}", "--opt-shapes", f"x:8x3x{SHAPE[0]}x{SHAPE[1]}", "--max-shapes", f"x:8x3x{SHAPE[0]}x{SHAPE[1]}"]
        infertool(*build, *(["--backend", backend] if backend != "trt" else []), log=log)
        args += ["--engine", engine]
    return infertool(*args, log=log)


def _graph_precision(model: Path) -> str:
    return next((p for p in ("fp16", "int8") if f".{p}." in model.name), "fp32")


def main() -> None:
    args = arguments(__doc__.splitlines()[0], "classification")
    log = args.out / "commands.log"
    log.write_text("")
    backends, skipped = usable_backends(args.backends)
    evaluation = args.out / "eval"
    labels = make_crops(evaluation, 60 if args.quick else 240, seed=1)
    calibration = make_crops(args.out / "calib", 16 if args.quick else 64, seed=2).parent
    model = fixed_shape(model_file("rapidocr-onnxruntime", "ch_ppocr_mobile_v2.0_cls_infer.onnx"), args.out)
    timing = ["--iterations", "10", "--duration", "0.1", "--warmup", "2"] if args.quick else ["--iterations", "100", "--duration", "1", "--warmup", "200ms"]
    batches = "1" if args.quick else "1,8"
    quantize_rows, rows, failures = [], [], list(skipped)
    graphs = [v for p in args.precisions for v in variants(model, p, args.out, calibration, ["--eval-data", evaluation, "--labels-csv", labels, *PRESET], log, args.budget)]
    for precision, _, _, path, report in graphs:
        if report is not None:
            truth = report["accuracy"]["ground_truth"]
            quantize_rows.append([precision, f"{report['source']['bytes'] / 1e6:.2f} → {report['output']['bytes'] / 1e6:.2f} MB",
                                  pct(truth["original"]["top1"]), pct(truth["converted"]["top1"]), pct(report["accuracy"]["top1"]), report["accuracy"]["min_cosine"]])
        for backend in backends:
            try:
                result = bench(path, model, backend, batches, evaluation, labels, timing, log)
            except CommandFailed as failure:
                failures.append(f"{backend} {precision}: {failure.line}")
                continue
            for row in result["rows"]:
                speed = latency_row(row)
                rows.append([precision, row["backend"], row["batch"], pct(row["accuracy"]["top1"]), speed["median"], speed["p90"], speed["per_s"]])
    sections = [
        f"PaddleOCR text-orientation classifier (`ch_ppocr_mobile_v2.0_cls_infer.onnx`, real weights from rapidocr-onnxruntime) on "
        f"{len(labels.read_text().splitlines()) - 1} generated text crops (half turned 180°), preset `paddleocr-cls`. {environment_line()}.\n",
        "## Accuracy against the ground truth, and latency\n",
        table(["precision", "backend", "batch", "orientation accuracy", "median ms", "p90 ms", "samples/s"], rows),
        "Accuracy: every crop, run by that backend at that batch size (`bench --labels-csv`); "
        f"trivial baseline (always the majority class): {pct(majority(labels))}; one crop is {100 / crops(labels):.1f} points. "
        "Latency: `bench`, end-to-end on the host (device-resident on GPU backends).\n",
        "## What quantize reported (ort-cpu, the same crops)\n",
        table(["precision", "model size", "fp32 accuracy", "converted accuracy", "top-1 agreement with fp32", "min cosine"], quantize_rows),
    ]
    if failures:
        sections += ["## Not run\n", "\n".join(f"- {f}" for f in failures) + "\n"]
    write_results(args.out / "results.md", "Classification: text orientation, fp32 / fp16 / int8", sections)


if __name__ == "__main__":
    main()
