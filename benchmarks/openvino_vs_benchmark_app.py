"""infertool's OpenVINO timing against OpenVINO's own `benchmark_app` on the same model and settings.

Both run the model on the CPU with the latency hint, one stream, the same threads, f32 inference
precision and the same fixed input shape, synchronous requests on random inputs, each in a fresh
process. Rounds alternate which tool goes first, so drift and other work on the machine hit both
alike; the result compares the median of each tool's per-round medians and the median of the
per-round ratios (the rounds are paired: both tools ran within seconds of each other), target within
5 %, and records how loaded the machine was (load average before each run, cores).

    python benchmarks/openvino_vs_benchmark_app.py -o benchmarks/results/cpu/openvino_vs_benchmark_app.json
    python benchmarks/openvino_vs_benchmark_app.py --model m.onnx --shape x:1x3x224x224 --threads 4 --rounds 9 -o r.json

The default model is PaddleOCR's v4 text detector (real weights, shipped in rapidocr-onnxruntime,
which `make install` adds).
"""

import argparse
import importlib.metadata
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from infertool import environment

BIN = Path(sys.executable).parent


def default_model() -> Path:
    """Found without importing rapidocr (its code wants OpenCV; only its ONNX files are used)."""
    return next(Path(f.locate()) for f in importlib.metadata.files("rapidocr-onnxruntime") if f.name == "ch_PP-OCRv4_det_infer.onnx")


def benchmark_app(model: Path, name: str, dims: list[int], threads: int, seconds: int) -> dict:
    """OpenVINO's benchmark_app, its properties given in a config file (its command line refuses -nstreams
    and -nthreads beside -hint); the properties it reports back are checked."""
    properties = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": "1", "INFERENCE_NUM_THREADS": str(threads), "INFERENCE_PRECISION_HINT": "f32"}
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "config.json"
        config.write_text(json.dumps({"CPU": properties}))
        shape = f"{name}[{','.join(map(str, dims))}]"
        command = [str(BIN / "benchmark_app"), "-m", str(model), "-d", "CPU", "-hint", "latency", "-load_config", str(config),
                   "-shape", shape, "-t", str(seconds), "-api", "sync"]
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    found = {key: re.search(rf"{key}: (\S+)", out).group(1) for key in ("NUM_STREAMS", "INFERENCE_NUM_THREADS", "PERFORMANCE_HINT")}
    assert found == {"NUM_STREAMS": "1", "INFERENCE_NUM_THREADS": str(threads), "PERFORMANCE_HINT": "LATENCY"}, found
    return {"median_ms": float(re.search(r"Median:\s+([\d.]+) ms", out).group(1)), "count": int(re.search(r"Count:\s+(\d+)", out).group(1))}


def infertool(model: Path, name: str, dims: list[int], threads: int, seconds: int) -> dict:
    """infertool bench -b openvino with the same settings; the settings read back from OpenVINO are checked."""
    shape = f"{name}:{'x'.join(map(str, dims))}"
    command = [sys.executable, "-m", "infertool", "bench", str(model), "-b", "openvino", "--ov-hint", "latency", "--ov-streams", "1",
               "--ov-threads", str(threads), "--ov-precision", "f32", "--input-shape", shape, "--no-check",
               "--warmup", "3", "--iterations", "1", "--duration", str(seconds), "--quiet", "--json"]
    row = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)["rows"][0]
    settings = row["settings"]
    assert (settings["num_streams"], settings["inference_num_threads"], settings["performance_hint"]) == (1, threads, "LATENCY"), settings
    return {"median_ms": row["latency_ms"]["median"], "count": row["latency_ms"]["count"]}


def rounds(args, model: Path, name: str, dims: list[int]) -> list[dict]:
    tools = {"benchmark_app": benchmark_app, "infertool": infertool}
    found = []
    for index in range(args.rounds):
        order = list(tools) if index % 2 == 0 else list(reversed(tools))
        measured = {}
        for tool in order:
            load = os.getloadavg()[0]
            measured[tool] = {**tools[tool](model, name, dims, args.threads, args.seconds), "load_average_1min_before": round(load, 2)}
        measured["ratio"] = round(measured["infertool"]["median_ms"] / measured["benchmark_app"]["median_ms"], 4)
        print(f"round {index + 1}: benchmark_app {measured['benchmark_app']['median_ms']:.2f} ms, infertool {measured['infertool']['median_ms']:.2f} ms, "
              f"ratio {measured['ratio']:.3f}, load {measured['benchmark_app']['load_average_1min_before']}", file=sys.stderr)
        found.append({"first": order[0], **measured})
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="ONNX model [default: PaddleOCR v4 text detector]")
    parser.add_argument("--shape", default="x:1x3x320x320", help="NAME:DIMS, the one fixed input shape both run")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="inference threads for both [default: the cores]")
    parser.add_argument("--seconds", type=int, default=5, help="timed seconds per run")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()
    model = args.model or default_model()
    name, _, text = args.shape.rpartition(":")
    dims = [int(d) for d in text.split("x")]
    started = time.time()
    found = rounds(args, model, name, dims)
    medians = {tool: statistics.median(r[tool]["median_ms"] for r in found) for tool in ("benchmark_app", "infertool")}
    difference = medians["infertool"] / medians["benchmark_app"] - 1
    paired = statistics.median(r["ratio"] for r in found) - 1
    loads = [r[tool]["load_average_1min_before"] for r in found for tool in ("benchmark_app", "infertool")]
    result = {
        "what": "infertool bench -b openvino vs OpenVINO benchmark_app: latency hint, 1 stream, same threads, f32, same shape, sync requests",
        "openvino": importlib.metadata.version("openvino"), "model": str(model.name), "shape": args.shape, "threads": args.threads, "seconds_per_run": args.seconds, "rounds": found,
        "median_of_medians_ms": {k: round(v, 3) for k, v in medians.items()}, "infertool_vs_benchmark_app": round(difference, 4),
        "paired_ratio_median": round(paired, 4), "within_5_percent": abs(difference) <= 0.05 and abs(paired) <= 0.05, "per_round_ratio_range": [min(r["ratio"] for r in found), max(r["ratio"] for r in found)],
        "machine_load": {"cores": os.cpu_count(), "load_average_1min": {"min": min(loads), "median": statistics.median(loads), "max": max(loads)}},
        "wall_s": round(time.time() - started, 1), "env": environment.fingerprint(),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"median of medians: benchmark_app {medians['benchmark_app']:.2f} ms, infertool {medians['infertool']:.2f} ms ({difference:+.1%}); "
          f"median per-round ratio {paired:+.1%}")


if __name__ == "__main__":
    main()
