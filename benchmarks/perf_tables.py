"""Markdown tables of issue 15's evidence: python3 benchmarks/perf_tables.py OUT_DIR (written by perf_evidence.sh)."""

import json
import sys
from pathlib import Path

OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "results" / "gpu"


def _cell(value, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def bench_table(path: Path) -> list[str]:
    data = json.loads(path.read_text())
    gpus = ", ".join(g["name"] for g in data["env"].get("gpus", [])) or data["env"]["cpu"]
    lines = [f"`{Path(data['model']['path']).name}` ({data['model']['precision']}) on {gpus}", "",
             "| backend | batch | timed | median ms | GFLOP | TFLOP/s | % of peak | tuned: best | speedup over defaults | compile s | min cosine |",
             "|---|---:|---|---:|---:|---:|---:|---|---:|---:|---:|"]
    for row in data["rows"]:
        compute, tune = row.get("compute") or {}, row.get("tune") or {}
        compiled = row["settings"].get("compile_seconds") or {}
        cosine = min((o["cosine"] for o in row["agreement"]["outputs"]), default=None) if row["agreement"] else None
        lines.append(
            f"| {row['backend']} | {row['batch']} | {row['latency_mode'].replace('_', '-')} | {row['latency_ms']['median']:.3f} | "
            f"{_cell(compute.get('flops') and compute['flops'] / 1e9, '.1f')} | {_cell(compute.get('tflops_per_s'), '.1f')} | "
            f"{_cell(compute.get('peak_share'), '.1%')} | {', '.join(tune.get('best', [])) or '-'} | {_cell(tune.get('speedup'), '.2f')}x | "
            f"{', '.join(f'{s:.0f}' for s in compiled.values()) or '-'} | {_cell(cosine, '.6f')} |"
        )
    lines += [f"| not measured: {f['backend']} | {f['batch']} | {f['error']} |" for f in data.get("failed_rows", [])]
    tuned = [r for r in data["rows"] if r.get("tune")]
    commands = [f"- {r['backend']} batch {r['batch']}: `{r['tune']['command']}`" for r in tuned]
    alone = [f"- {r['backend']} batch {r['batch']}: best {a['best']:.3f} ms, defaults {a['defaults']:.3f} ms ({r['tune']['alone_speedup']:.2f}x)"
             for r in tuned for a in [r["tune"].get("alone_ms")] if a]
    return [*lines, "", "Reproduce the best configurations:", *commands, "", *(["Each alone in a process:", *alone, ""] if alone else [])]


def fidelity_table(paths: list[Path]) -> list[str]:
    lines = ["| harness fidelity | backend | settings | batch | timed | bare loop ms | infertool ms | ratio | within 3 % |",
             "|---|---|---|---:|---|---:|---:|---:|---|"]
    for path in paths:
        d = json.loads(path.read_text())
        settings = ", ".join(["CUDA graph"] * bool(d["cuda_graph"]) + d.get("provider_options", [])) or "defaults"
        lines.append(f"| {Path(d['model']).name} | {d['backend']} | {settings} | {d['batch']} | {d['mode']} | {d['bare_median_ms']:.4f} | "
                     f"{d['infertool_median_ms']:.4f} | {d['ratio']:.4f} | {d['within_3_percent']} |")
    return lines


def main() -> None:
    out = []
    for name in ("resnet50_fp16_tune.json", "resnet50_fp16_tune_b1.json", "bert_fp16_tune.json"):
        if (OUT / name).exists():
            out += bench_table(OUT / name)
    fidelity = sorted(OUT.glob("fidelity_*.json"))
    if fidelity:
        out += fidelity_table(fidelity)
    print("\n".join(out))


if __name__ == "__main__":
    main()
