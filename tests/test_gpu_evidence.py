"""benchmarks/gpu_evidence.sh in its --smoke mode (tiny models, ort-cpu and torch): the script the lead runs
on an H100 works end to end before GPU time is spent on it."""

import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT


@pytest.mark.slow
def test_the_gpu_evidence_script_runs_end_to_end_on_the_cpu(tmp_path):
    out = tmp_path / "evidence"
    done = subprocess.run(["bash", ROOT / "benchmarks" / "gpu_evidence.sh", "--smoke", "all", out], capture_output=True, text=True,
                          env={**os.environ, "PYTHON": sys.executable}, cwd=ROOT, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == ["evidence.json", "evidence.md", "stage1.tar.gz", "stage2.tar.gz"]
    summary = json.loads((out / "evidence.json").read_text())
    assert {(o["config"], o["mode"], o["model"]) for o in summary["order"]} == {
        (c, m, p) for c in ("defaults", "tuned") for m in ("isolate", "no-isolate") for p in ("fp32", "fp16")}
    for line in summary["order"]:
        for row in (line["fp32_first"], line["fp16_first"]):
            assert row["samples"] >= 5 and row["iqr"] is not None and len(row["graph_sha256"]) == 64
            assert row["isolated"] == (line["mode"] == "isolate")
    assert len(summary["isolated_vs_alone"]) == 8 and all(a["alone"]["samples"] >= 5 for a in summary["isolated_vs_alone"])
    assert [b["backend"] for b in summary["bert"]] == ["ort-cpu", "torch"] and all(b["alone_best_ms"] and b["command"] for b in summary["bert"])
    text = (out / "evidence.md").read_text()
    assert "## ResNet-50 batch 1" in text and "## BERT-base fp16" in text and "infertool bench" in text
