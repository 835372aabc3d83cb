"""`infertool optimize` on the examples' real-weight models, on the CPU (ort-cpu): the pick is checked
against each example's ground truth and re-measured by `bench` against the model as given.

    python benchmarks/optimize_examples.py [--out DIR] [--only cls,det,vad,ctc] [--scale 1.0]

For each model: optimize (its accuracy budget judged on the example's own evaluation inputs), then the
pick and the model scored on the ground truth by the example's own code (top-1 of the orientation
classifier, F1 of the detector's DB boxes at IoU 0.5, frame accuracy of the streamed VAD, exact lines of
the CTC recogniser), then `bench OUT MODEL --isolate` (each row alone in a fresh process, batch 1, the
settings optimize tuned) for the pick's speed over the model. The pick passes when its ground-truth
score is at most one point below the model's and bench finds it at least as fast (within 2 % noise).
Writes results.json and results.md into --out (benchmarks/results/optimize/cpu by default).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
sys.path.insert(0, str(EXAMPLES))
NOISE = 0.02  # bench's speedup may fall this far below 1 and still count as "at least as fast"
POINT = 0.01  # the ground-truth score may fall this far below the model's


def _example(name: str):
    """An example's run.py, loaded under its own name (all three are called run.py)."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / name / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def infertool(*args: object, log: Path) -> tuple[int, dict | None]:
    """`infertool ARGS` in a fresh process: its exit code and the JSON it wrote with --json FILE (when it did)."""
    argv = [str(a) for a in args]
    json_path = Path(argv[argv.index("--json") + 1]) if "--json" in argv else None
    print("$ infertool " + shlex.join(argv), flush=True)
    done = subprocess.run([sys.executable, "-m", "infertool", *argv, "--quiet"], capture_output=True, text=True, cwd=ROOT)
    with log.open("a") as handle:
        handle.write(f"$ infertool {shlex.join(argv)}\nexit {done.returncode}\n{done.stdout}\n{done.stderr}\n")
    return done.returncode, json.loads(json_path.read_text()) if json_path and json_path.is_file() else None


@dataclass
class Case:
    name: str
    model: Path
    optimize: list  # optimize's data, budget and shape arguments
    bench: list  # bench's inputs (the example's saved tensors)
    score: Callable[[Path], float]  # ground truth, by the example's own code
    metric: str


def _classifier(out: Path, log: Path) -> Case:
    cls = _example("classification")
    from common import model_file

    model = cls.fixed_shape(model_file("rapidocr-onnxruntime", "ch_ppocr_mobile_v2.0_cls_infer.onnx"), out)
    calib_labels = cls.make_crops(out / "cls_calib", 32, seed=1)
    calib_labels.unlink()
    labels = cls.make_crops(out / "cls_eval", 96, seed=2)
    preset = ["--preprocess", "paddleocr-cls"]

    def score(path: Path) -> float:  # bench's top-1 against the labels, as the example measures it
        _, result = infertool("bench", path, "-b", "ort-cpu", "--inputs", out / "cls_eval", *preset, "--labels-csv", labels, "--batch", "8",
                              "--iterations", "1", "--duration", "0", "--no-check", "--json", out / "cls_score.json", "--force", log=log)
        return result["rows"][0]["accuracy"]["top1"]

    data = ["--calib-data", out / "cls_calib", "--eval-data", out / "cls_eval", "--labels-csv", labels, *preset, "--max-accuracy-drop", "1%"]
    return Case("orientation classifier", model, data, ["--inputs", out / "cls_eval", *preset, "--batch", "1"], score, "top-1")


def _detector(out: Path, log: Path) -> Case:
    det = _example("detection")
    from common import model_file

    model = model_file("rapidocr-onnxruntime", "ch_PP-OCRv4_det_infer.onnx")
    truth = det.make_scenes(out / "det_scenes", det.PHOTOS[:6], seed=1)
    det.make_scenes(out / "det_calib", det.PHOTOS[-3:], seed=2)
    inputs, calib = out / "det_inputs.npz", out / "det_calib.npz"
    infertool("run", model, "-b", "ort-cpu", "--inputs", out / "det_scenes", *det.PRESET, "--save-inputs", inputs, "-o", out / "det_first.npz", "--force", log=log)
    infertool("run", model, "-b", "ort-cpu", "--inputs", out / "det_calib", *det.PRESET, "--save-inputs", calib, "-o", out / "det_c.npz", "--force", log=log)

    def score(path: Path) -> float:
        infertool("run", path, "-b", "ort-cpu", "--inputs", inputs, "-o", out / "det_maps.npz", "--force", log=log)
        maps = next(iter(np.load(out / "det_maps.npz").values()))
        precision, recall, *_ = det.score([det.db_boxes(m[0]) for m in maps], truth)
        return 2 * precision * recall / max(precision + recall, 1e-9)

    shape = f"x:1x3x{det.SIZE[1]}x{det.SIZE[0]}"
    data = ["--calib-data", calib, "--eval-data", inputs, "--min-cosine", "0.99", "--input-shape", shape]
    return Case("text detector", model, data, ["--inputs", inputs, "--batch", "1"], score, "F1 (IoU 0.5)")


def _vad(out: Path, log: Path) -> Case:
    speech = _example("speech")
    from common import model_file

    model = model_file("silero-vad", "silero_vad_16k_op15.onnx")
    wave = speech.waveform()
    chunk = speech.evaluation_chunk(wave, out, model)
    truth = json.loads((EXAMPLES / "speech" / "speech.json").read_text())["speech"]

    def score(path: Path) -> float:
        probabilities, _ = speech.stream(path, "ort-cpu", wave)
        return speech.frame_scores(speech.segments(probabilities), truth, len(wave) / speech.RATE)[2]

    shapes = ["--input-shape", f"input:1x{speech.CONTEXT + speech.CHUNK}", "--input-shape", "state:2x1x128", "--int-range", f"sr:{speech.RATE}:{speech.RATE + 1}"]
    data = ["--eval-data", chunk, "--candidates", "fp32,fp16,int8-dyn", "--min-cosine", str(speech.VAD_INT8_COSINE), *shapes]
    return Case("silero VAD", model, data, ["--inputs", chunk], score, "frame accuracy")


def _ctc(out: Path, log: Path) -> Case:
    speech = _example("speech")
    from common import model_file

    model = model_file("rapidocr-onnxruntime", "ch_PP-OCRv4_rec_infer.onnx")
    classes = speech.alphabet(model)
    texts = speech.make_lines(out / "ctc_lines", 40, seed=3)
    speech.make_lines(out / "ctc_calib", 16, seed=4)
    preset = ["--preprocess", "paddleocr-rec"]
    inputs, calib = out / "ctc_inputs.npz", out / "ctc_calib.npz"
    infertool("run", model, "-b", "ort-cpu", "--inputs", out / "ctc_lines", *preset, "--save-inputs", inputs, "-o", out / "ctc_first.npz", "--force", log=log)
    infertool("run", model, "-b", "ort-cpu", "--inputs", out / "ctc_calib", *preset, "--save-inputs", calib, "-o", out / "ctc_c.npz", "--force", log=log)

    def score(path: Path) -> float:
        infertool("run", path, "-b", "ort-cpu", "--inputs", inputs, "-o", out / "ctc_scores.npz", "--force", log=log)
        decoded = [speech.greedy_ctc(s, classes) for s in next(iter(np.load(out / "ctc_scores.npz").values()))]
        return float(np.mean([d == t for d, t in zip(decoded, texts)]))

    data = ["--calib-data", calib, "--eval-data", inputs, "--min-cosine", "0.99", "--input-shape", "x:1x3x48x320"]
    return Case("CTC recogniser", model, data, ["--inputs", inputs, "--batch", "1"], score, "exact lines")


CASES = {"cls": (_classifier, 150), "det": (_detector, 330), "vad": (_vad, 90), "ctc": (_ctc, 240)}


def _bench(case: Case, pick: Path, tuned: list, report: Path, log: Path) -> dict | None:
    """The pick against the model as given, each row alone in a fresh process, with the settings optimize tuned."""
    args = ["bench", pick, case.model, "--label", "pick,model", "--baseline-row", "model", "--no-check", "--isolate",
            *case.bench, *tuned, "--duration", "2", "--json", report, "--force"]
    code, result = infertool(*args, log=log)
    if result is None:
        return None
    rows = {r["model"]: r for r in result["rows"]}
    return {"pick_ms": rows["pick"]["latency_ms"]["median"], "model_ms": rows["model"]["latency_ms"]["median"], "speedup": rows["pick"]["speedup"], "exit": code}


def _tuned_settings(record: dict) -> list:
    """The ort settings of the pick's tuned configuration, as bench options (from its reproduce script's bench line)."""
    script = Path(record["reproduce"]).read_text().splitlines()[-1]
    words = shlex.split(script)
    keep, found = ("--threads", "--inter-op-threads", "--graph-opt", "--execution-mode"), []
    for index, word in enumerate(words):
        if word in keep:
            found += [word, words[index + 1]]
    return found


def run_case(key: str, work: Path, results: Path, log: Path, scale: float) -> dict:
    make, seconds = CASES[key]
    case = make(work, log)
    pick = work / f"{key}.opt.onnx"
    started = time.perf_counter()
    code, record = infertool("optimize", case.model, "-o", pick, *case.optimize, "--budget", f"{seconds * scale:g}s",
                             "--json", results / f"{key}.optimize.json", "--report", results / f"{key}.optimize.html", "--force", log=log)
    took = time.perf_counter() - started
    found = {"model": case.name, "file": case.model.name, "optimize_exit": code, "optimize_s": round(took, 1), "metric": case.metric}
    if code != 0 or record is None or not record.get("passed"):
        return {**found, "passed": False, "why": "optimize picked nothing"}
    picked = record["picked"]
    candidates = {c["name"]: c for c in record["candidates"]}
    model_score, pick_score = case.score(case.model), case.score(pick)
    speed = _bench(case, pick, _tuned_settings(record), results / f"{key}.bench.json", log)
    within = pick_score >= model_score - POINT - 1e-9
    itself = candidates[picked["candidate"]]["target"] is None  # the model as given, its very bytes: as fast by construction
    fast = itself or (speed is not None and speed["speedup"] is not None and speed["speedup"] >= 1 - NOISE)
    return {
        **found, "picked": picked["candidate"], "kept": candidates[picked["candidate"]]["kept"],
        "candidates": {n: {"within_budget": c["within_budget"], "found": c["found"], "rejected": c["rejected"]} for n, c in candidates.items()},
        "skipped": record["skipped"], "score_model": round(model_score, 4), "score_pick": round(pick_score, 4), "bench": speed,
        "within_ground_truth": within, "pick_is_the_model": itself, "at_least_as_fast": fast, "passed": within and fast,
    }


def _markdown(results: list[dict], env: str) -> str:
    lines = [
        "# optimize on the examples' real models (CPU, ort-cpu)\n", env + "\n",
        "| model | picked | candidates within the budget | ground truth: model → pick | bench: pick vs model (alone, batch 1) | optimize s | passed |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if "picked" not in r:
            lines.append(f"| {r['model']} | - | - | - | - | {r['optimize_s']} | no: {r['why']} |")
            continue
        within = ", ".join(n for n, c in r["candidates"].items() if c["within_budget"]) or "-"
        bench = r["bench"] or {}
        speed = f"{bench.get('pick_ms', 0):.3f} / {bench.get('model_ms', 0):.3f} ms = {bench.get('speedup') or 0:.2f}x" if bench else "-"
        lines.append(f"| {r['model']} | {r['picked']} | {within} | {r['metric']} {r['score_model']:.1%} → {r['score_pick']:.1%} | {speed} | "
                     f"{r['optimize_s']} | {'yes' if r['passed'] else 'no'} |")
    lines += ["", "Ground truth: each example's own scoring; passes at most 1 point below the model. Bench passes at 0.98x or better (noise),",
              "or where the pick is the model as given (the same bytes: its bench ratio is the machine's noise)."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "optimize" / "cpu")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "optimize_examples", help="models, data and picks (not committed)")
    parser.add_argument("--only", default=",".join(CASES), help="cases to run: cls,det,vad,ctc")
    parser.add_argument("--scale", type=float, default=1.0, help="scales each optimize --budget")
    args = parser.parse_args()
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    log = args.out / "commands.log"
    if args.only == ",".join(CASES):
        log.write_text("")
    path = args.out / "results.json"
    results = json.loads(path.read_text()) if path.is_file() and args.only != ",".join(CASES) else []  # --only: the others kept
    for key in args.only.split(","):
        found = run_case(key, work, args.out, log, args.scale)
        results = [r for r in results if r["model"] != found["model"]] + [found]
        print(json.dumps(found, indent=1), flush=True)
        path.write_text(json.dumps(results, indent=1) + "\n")
    import platform

    env = f"{platform.processor() or platform.machine()}, {__import__('os').cpu_count()} cores (shared with other work), Python {platform.python_version()}"
    (args.out / "results.md").write_text(_markdown(results, env))


if __name__ == "__main__":
    main()
