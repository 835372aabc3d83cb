"""Tables of gpu_evidence.sh's results: reads the stages' archives (OUT_DIR/stage*.tar.gz) and writes
OUT_DIR/evidence.md and OUT_DIR/evidence.json.

    python3 benchmarks/gpu_evidence.py OUT_DIR

Noise is read off the per-iteration samples (--save-samples): a difference between two medians is
within noise when it is no larger than the wider of the two rows' interquartile ranges (p75 - p25),
relative to the median.
"""

from __future__ import annotations

import json
import sys
import tarfile
from pathlib import Path


def load(folder: Path) -> dict[str, dict]:
    """Every JSON result in the stages' archives, by file name without .json."""
    found = {}
    for archive in sorted(folder.glob("stage*.tar.gz")):
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                if member.isfile() and member.name.endswith(".json"):
                    found[Path(member.name).stem] = json.loads(tar.extractfile(member).read())
    return found


def _quantile(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]  # nearest rank


def spread(samples_ns: list[int] | None, median_ms: float) -> float | None:
    """The interquartile range relative to the median, from the samples."""
    if not samples_ns or median_ms <= 0:
        return None
    return (_quantile(samples_ns, 0.75) - _quantile(samples_ns, 0.25)) / 1e6 / median_ms


def row_numbers(row: dict) -> dict:
    median = row["latency_ms"]["median"]
    samples = (row.get("samples_ns") or {}).get(row["latency_mode"])
    return {"median_ms": median, "iqr": spread(samples, median), "samples": len(samples or []), "graph_sha256": row.get("graph_sha256"),
            "isolated": row.get("isolated", False)}


def compare(a: dict, b: dict) -> dict:
    delta = (b["median_ms"] - a["median_ms"]) / a["median_ms"]
    noise = max((x for x in (a["iqr"], b["iqr"]) if x is not None), default=None)
    return {"delta": delta, "noise": noise, "within_noise": None if noise is None else abs(delta) <= noise}


CONFIGS = {"defaults": "defaults", "tuned": "best"}  # stage1's configurations -> tune's alone-measurement of the same


def order_table(results: dict) -> list[dict]:
    """Each model's row measured first and second, isolated and in one process, per configuration."""
    lines = []
    for config in CONFIGS:
        for mode in ("isolate", "no-isolate"):
            first, second = results.get(f"r50_{mode}_{config}_fp32_first"), results.get(f"r50_{mode}_{config}_fp16_first")
            if not first or not second:
                continue
            for label in ("fp32", "fp16"):
                a = row_numbers(next(r for r in first["rows"] if r["model"] == label))
                b = row_numbers(next(r for r in second["rows"] if r["model"] == label))
                lines.append({"config": config, "mode": mode, "model": label, "fp32_first": a, "fp16_first": b, **compare(a, b)})
    return lines


def alone_table(results: dict) -> list[dict]:
    """The fp16 rows, isolated and not, against tune's alone-measurement of the same configuration
    (the defaults; the tuned one where tune's best is stage1's tuned configuration)."""
    tuned = results.get("r50_tune_fp16")
    if not tuned or not tuned["rows"] or not (tuned["rows"][0].get("tune") or {}).get("alone_ms"):
        return []
    tune = tuned["rows"][0]["tune"]
    lines = []
    for config, which in CONFIGS.items():
        samples = (tune.get("alone_samples_ns") or {}).get(which)
        alone = {"median_ms": tune["alone_ms"][which], "iqr": spread(samples, tune["alone_ms"][which]), "samples": len(samples or []),
                 "configuration": ", ".join(tune["best"]) if which == "best" else "defaults"}
        for mode in ("isolate", "no-isolate"):
            for first in ("fp32", "fp16"):
                name = f"r50_{mode}_{config}_{first}_first"
                if name in results:
                    row = row_numbers(next(r for r in results[name]["rows"] if r["model"] == "fp16"))
                    lines.append({"bench": name, "row": row, "alone": alone, **compare(alone, row)})
    return lines


def bert_table(results: dict) -> list[dict]:
    tuned = results.get("bert_tune_fp16")
    lines = []
    for row in (tuned or {}).get("rows", []):
        tune = row.get("tune") or {}
        alone = tune.get("alone_ms") or {}
        lines.append({"backend": row["backend"], "batch": row["batch"], "best": ", ".join(tune.get("best", [])), "best_ms": tune.get("best_ms"),
                      "alone_best_ms": alone.get("best"), "alone_defaults_ms": alone.get("defaults"), "speedup": tune.get("speedup"),
                      "command": tune.get("command"), **row_numbers(row)})
    return lines


def provenance(results: dict) -> dict:
    """The first bench's environment, and every commit the benches ran from (the stages may run from different ones)."""
    envs = [r["env"] for r in results.values() if isinstance(r, dict) and r.get("schema") == "infertool.bench/1"]
    if not envs:
        return {}
    return {**{k: envs[0].get(k) for k in ("gpus", "packages", "python")}, "commits": {e.get("git_commit"): e.get("git_dirty") for e in envs}}


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:+.2f}%"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def markdown(order: list[dict], alone: list[dict], bert: list[dict], where: dict) -> str:
    commits = ", ".join(f"{commit} (dirty: {dirty})" for commit, dirty in where.get("commits", {}).items())
    out = ["# GPU evidence (benchmarks/gpu_evidence.sh)", "", f"commits {commits}; GPUs: {json.dumps(where.get('gpus'))}", "",
           "Within noise: |change| <= the wider interquartile range of the two rows, relative to the median (from the saved samples).", ""]
    out += ["## ResNet-50 batch 1: the same row measured first and second", "",
            "| configuration | rows | model | fp32 first ms | fp16 first ms | change | noise | within |", "|---|---|---|---|---|---|---|---|"]
    out += [f"| {o['config']} | {o['mode']} | {o['model']} | {_ms(o['fp32_first']['median_ms'])} | {_ms(o['fp16_first']['median_ms'])} | {_pct(o['delta'])} "
            f"| {_pct(o['noise'])} | {o['within_noise']} |" for o in order]
    out += ["", "## fp16 rows against tune's alone-measurement of the same configuration", "",
            "| bench | tune's configuration | row ms | alone ms | change | noise | within |", "|---|---|---|---|---|---|---|"]
    out += [f"| {a['bench']} | {a['alone']['configuration']} | {_ms(a['row']['median_ms'])} | {_ms(a['alone']['median_ms'])} | {_pct(a['delta'])} "
            f"| {_pct(a['noise'])} | {a['within_noise']} |" for a in alone]
    out += ["", "## BERT-base fp16 seq 128: tuned ORT against torch.compile, one run", "",
            "| backend | batch | best found | ms (in-process) | alone best ms | alone defaults ms |", "|---|---|---|---|---|---|"]
    out += [f"| {b['backend']} | {b['batch']} | {b['best']} | {_ms(b['median_ms'])} | {_ms(b['alone_best_ms'])} | {_ms(b['alone_defaults_ms'])} |" for b in bert]
    commands = [f"- {b['backend']}: `{b['command']}`" for b in bert if b.get("command")]
    return "\n".join([*out, "", "Reproduce:", *commands, ""])


def main(folder: Path) -> None:
    results = load(folder)
    if not results:
        sys.exit(f"no stage*.tar.gz with results in {folder}")
    order, alone, bert, where = order_table(results), alone_table(results), bert_table(results), provenance(results)
    (folder / "evidence.md").write_text(markdown(order, alone, bert, where))
    summary = {"provenance": where, "order": order, "isolated_vs_alone": alone, "bert": bert, "results": sorted(results)}
    (folder / "evidence.json").write_text(json.dumps(summary, indent=2) + "\n")
    print((folder / "evidence.md").read_text())


if __name__ == "__main__":
    main(Path(sys.argv[1]))
