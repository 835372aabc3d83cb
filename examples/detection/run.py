"""Text detection (PaddleOCR's PP-OCRv4 DBNet detector, real weights) on real photos with known
strings drawn onto them: DB post-processing, precision / recall at IoU 0.5 and latency per precision
and backend, a picture of the boxes, and which backends run ONNX NonMaxSuppression in the graph.

    python examples/detection/run.py [--backends ort-cpu,trt,trt-rtx] [--out DIR] [--quick]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper
from PIL import Image, ImageDraw
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import (  # noqa: E402
    ENGINE_BACKENDS,
    CommandFailed,
    arguments,
    colours,
    environment_line,
    font,
    infertool,
    known_backends,
    latency_row,
    model_file,
    pct,
    phrase,
    table,
    usable_backends,
    variants,
    write_results,
)

SIZE = (640, 480)  # scene width, height: both multiples of 32, as the detector wants
PHOTOS = ("astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "motorcycle_left.png", "hubble_deep_field.jpg",
          "retina.jpg", "camera.png", "brick.png", "grass.png", "gravel.png", "moon.png", "coins.png", "ihc.png")
PRESET = ["--preprocess", "paddleocr"]
THRESHOLD, BOX_THRESHOLD, UNCLIP = 0.3, 0.5, 1.6  # RapidOCR's DB settings


# ---------------------------------------------------------------- scenes with ground truth


def photo(name: str) -> Image.Image:
    """A scikit-image photo, scaled to cover SIZE and centre-cropped."""
    import skimage

    image = Image.open(Path(skimage.__file__).parent / "data" / name).convert("RGB")
    scale = max(SIZE[0] / image.width, SIZE[1] / image.height)
    image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.BILINEAR)
    left, top = (image.width - SIZE[0]) // 2, (image.height - SIZE[1]) // 2
    return image.crop((left, top, left + SIZE[0], top + SIZE[1]))


def draw_strings(image: Image.Image, rng: np.random.Generator, count: int) -> list[tuple[int, int, int, int]]:
    """Draw `count` strings where they do not overlap; their ink boxes are the ground truth."""
    draw, boxes = ImageDraw.Draw(image), []
    for _ in range(200):
        if len(boxes) == count:
            break
        text, face = phrase(rng, 2), font(int(rng.integers(20, 44)))
        x, y = int(rng.integers(8, SIZE[0] - 100)), int(rng.integers(8, SIZE[1] - 50))
        box = draw.textbbox((x, y), text, font=face)
        if box[2] > SIZE[0] - 8 or box[3] > SIZE[1] - 8 or any(_overlap(box, other, 12) for other in boxes):
            continue
        fg, bg = colours(rng)
        if rng.random() < 0.5:  # a sign: text on a plate
            draw.rectangle((box[0] - 6, box[1] - 6, box[2] + 6, box[3] + 6), fill=bg)
            draw.text((x, y), text, font=face, fill=fg)
        else:  # text straight on the photo, with an outline
            draw.text((x, y), text, font=face, fill=fg, stroke_width=2, stroke_fill=bg)
        boxes.append(box)
    return boxes


def _overlap(a, b, margin: int) -> bool:
    return not (a[2] + margin < b[0] or b[2] + margin < a[0] or a[3] + margin < b[1] or b[3] + margin < a[1])


def make_scenes(folder: Path, photos: tuple[str, ...], seed: int) -> list[list[tuple[int, int, int, int]]]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    truth = []
    for index, name in enumerate(photos):
        image = photo(name)
        truth.append(draw_strings(image, rng, int(rng.integers(3, 7))))
        image.save(folder / f"scene_{index:02d}.png")
    return truth


# ---------------------------------------------------------------- DB post-processing and scoring


def db_boxes(probability: np.ndarray, threshold: float = THRESHOLD) -> list[tuple[float, float, float, float, float]]:
    """DBNet's post-processing, axis-aligned: threshold the probability map, label connected
    components, keep those whose mean probability passes BOX_THRESHOLD, and grow each box back out
    ("unclip") by area * ratio / perimeter, undoing the shrink the model was trained with."""
    components, _ = ndimage.label(probability > threshold)
    boxes = []
    for index, where in enumerate(ndimage.find_objects(components), 1):
        region = components[where] == index
        score = float(probability[where][region].mean())
        height, width = where[0].stop - where[0].start, where[1].stop - where[1].start
        if score < BOX_THRESHOLD or min(width, height) < 3:
            continue
        grow = width * height * UNCLIP / (2 * (width + height))
        boxes.append((where[1].start - grow, where[0].start - grow, where[1].stop + grow, where[0].stop + grow, score))
    return boxes


def iou(a, b) -> float:
    w, h = min(a[2], b[2]) - max(a[0], b[0]), min(a[3], b[3]) - max(a[1], b[1])
    inter = max(0.0, w) * max(0.0, h)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def score(detections: list[list], truth: list[list]) -> tuple[float, float, int, int, int]:
    """Precision and recall at IoU 0.5: each detection, best score first, matches one unmatched box."""
    hits = found = expected = 0
    for boxes, wanted in zip(detections, truth):
        free = list(wanted)
        for box in sorted(boxes, key=lambda b: -b[4]):
            best = max(free, key=lambda g: iou(box, g), default=None)
            if best is not None and iou(box, best) >= 0.5:
                free.remove(best)
                hits += 1
        found, expected = found + len(boxes), expected + len(wanted)
    return hits / max(found, 1), hits / max(expected, 1), hits, found, expected


def draw_boxes(scenes: Path, detections: list[list], truth: list[list], target: Path, count: int = 4) -> None:
    """Ground truth in green, detections in red, on the first `count` scenes (2 per row)."""
    tiles = []
    for index in range(min(count, len(truth))):
        image = Image.open(scenes / f"scene_{index:02d}.png").convert("RGB")
        draw = ImageDraw.Draw(image)
        for box in truth[index]:
            draw.rectangle(box, outline=(0, 255, 0), width=3)
        for box in detections[index]:
            draw.rectangle(box[:4], outline=(255, 0, 0), width=2)
        tiles.append(image)
    columns = min(2, len(tiles))
    sheet = Image.new("RGB", (SIZE[0] * columns, SIZE[1] * -(-len(tiles) // columns)), "white")
    for index, tile in enumerate(tiles):
        sheet.paste(tile, ((index % columns) * SIZE[0], (index // columns) * SIZE[1]))
    sheet.save(target)


# ---------------------------------------------------------------- NonMaxSuppression in the graph, or on the host

NMS_IOU, NMS_SCORE = 0.5, 0.5


def nms_heads(out: Path) -> tuple[Path, Path]:
    """A small detection head: candidate boxes (x0, y0, x1, y1) and scores in, reordered to ONNX's
    (y0, x0, y1, x1), then ONNX NonMaxSuppression; and the same head without it, for the host."""
    order = helper.make_tensor("order", TensorProto.INT64, [4], [1, 0, 3, 2])
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
    limits = [helper.make_tensor("max_boxes", TensorProto.INT64, [1], [100]), helper.make_tensor("iou", TensorProto.FLOAT, [1], [NMS_IOU]),
              helper.make_tensor("min_score", TensorProto.FLOAT, [1], [NMS_SCORE]), helper.make_tensor("column", TensorProto.INT64, [], [2])]
    decode = [helper.make_node("Gather", ["boxes", "order"], ["yx_boxes"], axis=2), helper.make_node("Unsqueeze", ["scores", "axes"], ["class_scores"])]
    nms = [helper.make_node("NonMaxSuppression", ["yx_boxes", "class_scores", "max_boxes", "iou", "min_score"], ["selected"]),
           helper.make_node("Gather", ["selected", "column"], ["kept"], axis=1)]
    inputs = [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, "n", 4]), helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, "n"])]
    paths = []
    for name, nodes, outputs, constants in (
        ("head_nms.onnx", decode + nms, [helper.make_tensor_value_info("kept", TensorProto.INT64, ["k"])], [order, axes, *limits]),
        ("head.onnx", decode, [helper.make_tensor_value_info("yx_boxes", TensorProto.FLOAT, [1, "n", 4]),
                               helper.make_tensor_value_info("class_scores", TensorProto.FLOAT, [1, 1, "n"])], [order, axes]),
    ):
        graph = helper.make_graph(nodes, name.removesuffix(".onnx"), inputs, outputs, constants)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        onnx.checker.check_model(model, full_check=True)
        onnx.save(model, out / name)
        paths.append(out / name)
    return paths[0], paths[1]


def host_nms(yx_boxes: np.ndarray, scores: np.ndarray) -> list[int]:
    """ONNX NonMaxSuppression's rule in numpy: best score first, drop boxes overlapping a kept one."""
    keep = []
    for index in np.argsort(-scores, kind="stable"):
        if scores[index] < NMS_SCORE:
            break
        box = yx_boxes[index][[1, 0, 3, 2]]
        if all(iou(box, yx_boxes[k][[1, 0, 3, 2]]) <= NMS_IOU for k in keep):
            keep.append(int(index))
    return keep


def nms_section(out: Path, probability: np.ndarray, backends: list[str], log: Path) -> str:
    """Candidates from one probability map at three thresholds (duplicates of every text), through
    the NMS head on each backend; where a backend cannot run NonMaxSuppression, infertool's message
    and the host fallback (the head without NMS on the backend, NMS in numpy)."""
    candidates = [b for t in (0.2, 0.3, 0.4) for b in db_boxes(probability, t)]
    np.savez(out / "candidates.npz", boxes=np.asarray([[b[:4] for b in candidates]], np.float32), scores=np.asarray([[b[4] for b in candidates]], np.float32))
    with_nms, without = nms_heads(out)
    rows = []
    engine_only = [b for b in ENGINE_BACKENDS if b in known_backends() and b not in backends]
    for backend in backends + engine_only:
        try:
            if backend in backends:
                infertool("run", with_nms, "-b", backend, "--inputs", out / "candidates.npz", "-o", out / f"kept.{backend}.npz", "--force", log=log)
                kept = sorted(np.load(out / f"kept.{backend}.npz")["kept"].tolist())
                rows.append([backend, "in the graph", len(candidates), len(kept), "-"])
                continue
            shapes = [f"boxes:1x{len(candidates)}x4", f"scores:1x{len(candidates)}"]  # the head unsqueezes the class axis itself
            infertool("build-engine", with_nms, "-o", out / f"head_nms.{backend}.engine", "--force", *(["--backend", backend] if backend != "trt" else []),
                      *(arg for shape in shapes for arg in ("--input-shape", shape)), log=log)
            rows.append([backend, "in the graph (engine built; not run here)", len(candidates), "-", "-"])
        except CommandFailed as failure:
            if backend not in backends and "not installed" in failure.line:
                continue  # nothing to learn about NMS from a missing library
            kept = "-"
            if backend in backends:  # the fallback: the rest of the head on the backend, NMS on the host
                infertool("run", without, "-b", backend, "--inputs", out / "candidates.npz", "-o", out / f"head.{backend}.npz", "--force", log=log)
                head = np.load(out / f"head.{backend}.npz")
                kept = len(host_nms(head["yx_boxes"][0], head["class_scores"][0, 0]))
            rows.append([backend, "host fallback" if backend in backends else "cannot build", len(candidates), kept, f"`{failure.line}`"])
    head = np.load(out / "candidates.npz")
    host = len(host_nms(head["boxes"][0][:, [1, 0, 3, 2]], head["scores"][0]))
    return (
        "## NonMaxSuppression in the graph\n\n"
        f"`head_nms.onnx`: candidate boxes from the fp32 map of scene 0 at thresholds 0.2 / 0.3 / 0.4 (so every text is found "
        f"up to three times) → ONNX `NonMaxSuppression` (IoU {NMS_IOU}, score {NMS_SCORE}). Where a backend refuses it, the "
        "example runs `head.onnx` (the same head without NMS) on that backend and NMS on the host.\n\n"
        + table(["backend", "NMS ran", "candidates", "kept", "infertool's message"], rows)
        + f"\nNMS in numpy on the host keeps {host} of the {len(candidates)} candidates.\n"
    )


# ---------------------------------------------------------------- the run


def detect(model: Path, backend: str, precision: str, name: str, inputs: Path, count: int, out: Path, log: Path) -> list[list]:
    """The probability maps of every scene (`infertool run`, on the exact saved input tensors), then DB boxes."""
    target = out / f"probability.{name}.{backend}.npz"
    if backend in ENGINE_BACKENDS:
        engine = out / f"det.{name}.{backend}.engine"
        infertool("build-engine", model, "-o", engine, "--force", "-p", precision, "--min-shapes", f"x:1x3x{SIZE[1]}x{SIZE[0]}",
                  "--opt-shapes", f"x:1x3x{SIZE[1]}x{SIZE[0]}", "--max-shapes", f"x:{count}x3x{SIZE[1]}x{SIZE[0]}",
                  *(["--backend", backend] if backend != "trt" else []), log=log)
        infertool("run", engine, "--inputs", inputs, "-o", target, "--force", log=log)
    else:
        infertool("run", model, "-b", backend, "--inputs", inputs, "-o", target, "--force", log=log)
    maps = next(iter(np.load(target).values()))
    return [db_boxes(m[0]) for m in maps]


def latency(model: Path, reference: Path, backend: str, name: str, inputs: Path, timing: list[str], out: Path, log: Path) -> dict:
    engine = ["--engine", out / f"det.{name}.{backend}.engine"] if backend in ENGINE_BACKENDS else []
    result = infertool("bench", model, "-b", backend, "--inputs", inputs, "--batch", "1", "--reference", reference, *engine, *timing, log=log)
    return latency_row(result["rows"][0])


def main() -> None:
    args = arguments(__doc__.splitlines()[0], "detection")
    log = args.out / "commands.log"
    log.write_text("")
    backends, skipped = usable_backends(args.backends)
    evaluation, calibration = args.out / "scenes", args.out / "calib"
    count = 3 if args.quick else 10
    truth = make_scenes(evaluation, PHOTOS[:count], seed=1)
    make_scenes(calibration, PHOTOS[-(2 if args.quick else 4):], seed=2)
    model = model_file("rapidocr-onnxruntime", "ch_PP-OCRv4_det_infer.onnx")
    inputs = args.out / "inputs.npz"  # the exact tensors of the first run, reused by every other one
    infertool("run", model, "-b", backends[0], "--inputs", evaluation, *PRESET, "--save-inputs", inputs, "-o", args.out / "first.npz", "--force", log=log)
    timing = ["--iterations", "3", "--duration", "0", "--warmup", "1"] if args.quick else ["--iterations", "20", "--duration", "2", "--warmup", "2"]
    rows, failures, picture = [], list(skipped), None
    graphs = []
    for precision in args.precisions:
        try:
            graphs += variants(model, precision, args.out, calibration, ["--eval-data", inputs, *PRESET], log, args.budget)
        except CommandFailed as failure:
            failures.append(f"{precision}: {failure.line}")
    for precision, plain, name, path, _ in graphs:
        for backend in backends:
            try:
                detections = detect(path, backend, plain, name, inputs, count, args.out, log)
                speed = latency(path, model, backend, name, inputs, timing, args.out, log)
            except CommandFailed as failure:
                failures.append(f"{backend} {precision}: {failure.line}")
                continue
            precision_, recall, hits, found, expected = score(detections, truth)
            f1 = 2 * precision_ * recall / max(precision_ + recall, 1e-9)
            rows.append([precision, backend, pct(precision_), pct(recall), pct(f1), f"{hits} / {found} / {expected}", speed["median"], speed["p90"]])
            if picture is None:
                picture = args.out / "boxes.png"
                draw_boxes(evaluation, detections, truth, picture)
    first_map = next(iter(np.load(args.out / "first.npz").values()))[0, 0]
    sections = [
        f"PaddleOCR PP-OCRv4 text detector (`ch_PP-OCRv4_det_infer.onnx`, DBNet, real weights from rapidocr-onnxruntime) on {count} "
        f"scikit-image photos ({SIZE[0]}x{SIZE[1]}) with {sum(map(len, truth))} known strings drawn onto them; preset `paddleocr`; "
        f"DB post-processing (threshold {THRESHOLD}, box score {BOX_THRESHOLD}, unclip {UNCLIP}). {environment_line()}.\n",
        "## Text boxes against the ground truth (IoU 0.5), and latency\n",
        table(["precision", "backend", "precision (boxes)", "recall", "F1", "matched / found / true", "median ms", "p90 ms"], rows),
        "Trivial baseline: a detector that finds no box scores F1 0 %. "
        "Latency: `bench --batch 1` on one scene, end-to-end on the host (device-resident on GPU backends).\n",
        f"![boxes]({picture.name if picture else 'boxes.png'}): ground truth in green, {args.precisions[0]} detections on {backends[0]} in red.\n",
        nms_section(args.out, first_map, backends, log),
    ]
    if failures:
        sections += ["## Not run\n", "\n".join(f"- {f}" for f in failures) + "\n"]
    write_results(args.out / "results.md", "Detection: text boxes, fp32 / fp16 / int8", sections)


if __name__ == "__main__":
    main()
