"""One sweep on every GPU of a host (local executor: one `bench` process per GPU at a time, pinned
with CUDA_VISIBLE_DEVICES), the same sweep on one GPU, then the check that they agree:

- every cell's median matches its one-GPU median within noise: |two - one| / one <= max(FLOOR,
  SIGMAS x the two rows' coefficients of variation combined);
- no two cells ran on the same physical GPU at once (the GPU each row ran on is the NVML index its
  telemetry resolved from the CUDA device's PCI address, not the slot the sweep meant to use);
- the wall time of both runs, whole and from the first cell's start to the last cell's end.

    python benchmarks/multi_gpu.py OUT --model resnet50=M.onnx --model bert=B.onnx \
        --bench-args "--cuda-graph --ort-option prefer_nhwc=1" --quantize-args "--int-range 0:30522"
    python benchmarks/multi_gpu.py OUT --check-only     # re-check OUT/one-gpu against OUT/all-gpus

Without GPUs, --pretend-devices N runs the same code path with N CPU "devices" (cells that run at
once share the CPU, so expect slower rows; the overlap check then reads the sweep's device slots).
Exits 1 when a check fails. Writes OUT/sweep.yaml, OUT/all-gpus/, OUT/one-gpu/, OUT/check.json and
OUT/check.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

FLOOR = 0.05  # a median may move this much between runs whatever the CVs say
SIGMAS = 3.0


def spec_text(models: list[tuple[str, Path]], args: argparse.Namespace) -> str:
    lines = ["models:", *(f"  - {{path: {json.dumps(str(path.resolve()))}, label: {label}}}" for label, path in models)]
    lines += [f"precisions: {args.precisions}", f"backends: {args.backend}", f"batches: {args.batches}"]
    lines += [f"bench_args: {json.dumps(args.bench_args)}"] if args.bench_args else []
    lines += [f"quantize_args: {json.dumps(args.quantize_args)}"] if args.quantize_args else []
    return "\n".join(lines) + "\n"


def run_sweep(spec: Path, output: Path, devices: int | None, pretend: bool) -> dict:
    """One sweep; its wall time. On GPUs, `devices` 1 pins the sweep to GPU 0 through
    CUDA_VISIBLE_DEVICES and None leaves it every GPU NVML sees."""
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    command = [sys.executable, "-m", "infertool", "sweep", str(spec), "-o", str(output), "--force", "--retries", "0"]
    if pretend:
        command += ["--devices", str(devices)]
    elif devices == 1:
        env["CUDA_VISIBLE_DEVICES"] = "0"
    print(f"== {shlex.join(command)}" + (f"  (CUDA_VISIBLE_DEVICES={env['CUDA_VISIBLE_DEVICES']})" if "CUDA_VISIBLE_DEVICES" in env else ""), flush=True)
    started = time.perf_counter()
    done = subprocess.run(command, env=env)
    wall = time.perf_counter() - started
    print(f"   exit {done.returncode} after {wall:.1f} s", flush=True)
    return {"command": command, "exit_code": done.returncode, "wall_s": round(wall, 3)}


def _time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def load(folder: Path) -> dict:
    """cell id -> (sweep entry, bench row) of a finished sweep."""
    summary = json.loads((folder / "sweep.json").read_text())
    cells = {}
    for entry in summary["cells"]:
        result = json.loads((folder / entry["result"]).read_text())
        rows = result.get("rows") or []
        cells[entry["id"]] = (entry, rows[0] if rows else None)
    return cells


def _cv(row: dict) -> float:
    return row["latency_ms"]["cv"] or 0.0


def compare_cells(one: dict, many: dict) -> list[dict]:
    compared = []
    for cell_id, (entry, row) in sorted(many.items()):
        base = one.get(cell_id, (None, None))[1]
        if row is None or base is None:
            compared.append({"id": cell_id, "label": entry["label"], "batch": entry["batch"], "ok": False, "why": "missing result"})
            continue
        a, b = base["latency_ms"]["median"], row["latency_ms"]["median"]
        band = max(FLOOR, SIGMAS * math.hypot(_cv(base), _cv(row)))
        change = (b - a) / a
        compared.append({
            "id": cell_id, "label": entry["label"], "batch": entry["batch"], "one_gpu_ms": a, "all_gpus_ms": b, "change": round(change, 5),
            "band": round(band, 5), "ok": abs(change) <= band and entry["status"] == "ok", "status": entry["status"], "gpu": _gpu(entry, row),
        })
    return compared


def _gpu(entry: dict, row: dict) -> str:
    """The physical GPU a row ran on (NVML index), else the sweep's device slot (CPU pretend devices)."""
    telemetry = row.get("gpu_telemetry") or {}
    index = telemetry.get("nvml_index")
    return f"gpu{index}" if index is not None else f"slot{entry.get('device_slot')}"


def overlaps(cells: dict) -> tuple[list[str], dict]:
    """Pairs of cells that ran on the same device at once, and the cells each device ran."""
    by_device: dict[str, list[tuple[float, float, str]]] = {}
    for cell_id, (entry, row) in cells.items():
        if row is None:
            continue
        for attempt in entry["attempts"]:
            by_device.setdefault(_gpu(entry, row), []).append((_time(attempt["started_utc"]), _time(attempt["finished_utc"]), cell_id))
    clashes = []
    for device, spans in by_device.items():
        spans.sort()
        latest = spans[0]  # of the spans so far, the one that ends last
        for span in spans[1:]:
            if span[0] < latest[1]:
                clashes.append(f"{device}: {latest[2]} and {span[2]}")
            latest = max(latest, span, key=lambda s: s[1])
    return clashes, {device: len(spans) for device, spans in sorted(by_device.items())}


def cells_wall(cells: dict) -> float:
    spans = [(_time(e["started_utc"]), _time(e["finished_utc"])) for e, _ in cells.values()]
    return round(max(end for _, end in spans) - min(start for start, _ in spans), 3)


def check(out: Path, walls: dict) -> int:
    one, many = load(out / "one-gpu"), load(out / "all-gpus")
    compared = compare_cells(one, many)
    clashes, per_device = overlaps(many)
    for name, cells in (("one-gpu", one), ("all-gpus", many)):
        walls.setdefault(name, {})["cells_wall_s"] = cells_wall(cells)
    verdict = {
        "cells": len(compared), "cells_agree": sum(c["ok"] for c in compared), "overlaps": clashes, "cells_per_device": per_device,
        "devices_used": len(per_device), "walls": walls, "floor": FLOOR, "sigmas": SIGMAS, "compared": compared,
    }
    verdict["passed"] = verdict["cells_agree"] == len(compared) and not clashes and len(per_device) > 1
    (out / "check.json").write_text(json.dumps(verdict, indent=2) + "\n")
    (out / "check.md").write_text(markdown(verdict))
    print(markdown(verdict))
    return 0 if verdict["passed"] else 1


def markdown(v: dict) -> str:
    walls = v["walls"]
    speedup = walls["one-gpu"]["cells_wall_s"] / walls["all-gpus"]["cells_wall_s"]
    lines = [
        "| run | command wall s | cells wall s |", "|---|---:|---:|",
        *(f"| {name} | {w.get('wall_s', '-')} | {w['cells_wall_s']} |" for name, w in walls.items()),
        "", f"Cells wall speedup: {speedup:.2f}x on {v['devices_used']} devices ({', '.join(f'{d}: {n} cells' for d, n in v['cells_per_device'].items())}).",
        f"Overlapping cells on one device: {len(v['overlaps'])}. Cells agreeing with one-GPU within noise: {v['cells_agree']} of {v['cells']}"
        f" (band: max({v['floor']:.0%}, {v['sigmas']:g} x combined CV)).", "",
        "| cell | batch | device | one-GPU ms | all-GPUs ms | change | band | agrees |", "|---|---:|---|---:|---:|---:|---:|---|",
    ]
    for c in v["compared"]:
        if "one_gpu_ms" not in c:
            lines.append(f"| {c['label']} | {c['batch']} | - | - | - | - | - | no: {c['why']} |")
            continue
        lines.append(f"| {c['label']} | {c['batch']} | {c['gpu']} | {c['one_gpu_ms']:.4f} | {c['all_gpus_ms']:.4f} | {c['change']:+.1%} | "
                     f"{c['band']:.1%} | {'yes' if c['ok'] else 'NO'} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--model", action="append", default=[], metavar="LABEL=PATH")
    parser.add_argument("--backend", default="ort-cuda")
    parser.add_argument("--precisions", default="fp32, fp16")
    parser.add_argument("--batches", default="1, 32, 256")
    parser.add_argument("--bench-args", default="")
    parser.add_argument("--quantize-args", default="")
    parser.add_argument("--pretend-devices", type=int, default=0, help="CPU only: this many pretend devices for the many-device run")
    parser.add_argument("--check-only", action="store_true")
    args = parser.parse_args()
    walls_path = args.out / "walls.json"
    if args.check_only:
        return check(args.out, json.loads(walls_path.read_text()))
    models = [(text.split("=", 1)[0], Path(text.split("=", 1)[1])) for text in args.model]
    args.out.mkdir(parents=True, exist_ok=True)
    spec = args.out / "sweep.yaml"
    spec.write_text(spec_text(models, args))
    pretend = args.pretend_devices > 0
    walls = {"all-gpus": run_sweep(spec, args.out / "all-gpus", args.pretend_devices or None, pretend)}
    if (args.out / "all-gpus" / "models").is_dir():  # the precision graphs, made once: the second run reuses them
        shutil.copytree(args.out / "all-gpus" / "models", args.out / "one-gpu" / "models", dirs_exist_ok=True)
    walls["one-gpu"] = run_sweep(spec, args.out / "one-gpu", 1, pretend)
    walls_path.write_text(json.dumps(walls, indent=2) + "\n")
    return check(args.out, walls)


if __name__ == "__main__":
    sys.exit(main())
