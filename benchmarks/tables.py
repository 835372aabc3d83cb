"""Markdown tables from the recorded results: python benchmarks/tables.py [results/gpu]."""

import json
import sys
from pathlib import Path

RESULTS = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "results" / "gpu"
VARIANTS = [("", "numpy I/O"), ("", "IO binding"), ("_cudagraph", "IO binding + CUDA graph"), ("_cudagraph_nhwc", "IO binding + CUDA graph + prefer_nhwc=1")]


def load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def median(row: dict, mode: str) -> str:
    timing = row["timings_ms"].get(mode)
    return "-" if timing is None else f"{timing['median']:.3f}"


def latency_table(model: str, precisions: list[str]) -> list[str]:
    lines = [f"| {model} | precision | runner | bs 1 | bs 32 | bs 256 | GPU mem bs 256 | agreement (min cosine vs fp32 ort-cpu) |", "|---|---|---|---:|---:|---:|---:|---|"]
    for precision in precisions:
        for suffix, label in VARIANTS:
            data = load(f"{model}_{precision}{suffix}")
            if data is None:
                continue
            rows = {r["batch"]: r for r in data["rows"]}
            mode = "end_to_end" if label == "numpy I/O" else "device_resident"
            cells = [median(rows[b], mode) if b in rows else "-" for b in (1, 32, 256)]
            memory = rows.get(256, {}).get("memory", {}).get("gpu_bytes")
            checked = [r["agreement"] for r in data["rows"] if r["agreement"]]
            cosine = f"{min(min(o['cosine'] for o in a['outputs']) for a in checked):.6f}" if checked else "not checked"
            lines.append(f"| | {precision} | {label} | {' | '.join(cells)} | {'-' if memory is None else f'{memory / 2**30:.1f} GiB'} | {cosine} |")
    return lines


def main() -> None:
    out = ["Median latency in ms (nearest rank); numpy I/O = end-to-end with host arrays, the others device-resident.", ""]
    out += latency_table("resnet50", ["fp32", "fp16", "int8"]) + [""] + latency_table("bert", ["fp32", "fp16", "fp16-keep"])
    fidelity = sorted(RESULTS.glob("fidelity_*.json")) + sorted((RESULTS.parent / "cpu").glob("fidelity_*.json"))
    if fidelity:
        out += ["", "| harness fidelity | backend | batch | bare loop ms | infertool ms | ratio |", "|---|---|---:|---:|---:|---:|"]
        for path in fidelity:
            d = json.loads(path.read_text())
            name = Path(d["model"]).name + (" + CUDA graph" if d["cuda_graph"] else "")
            out.append(f"| {name} | {d['backend']} | {d['batch']} | {d['bare_median_ms']:.4f} | {d['infertool_median_ms']:.4f} | {d['ratio']:.4f} |")
    print("\n".join(out))


if __name__ == "__main__":
    main()
