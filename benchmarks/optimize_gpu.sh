#!/usr/bin/env bash
# `infertool optimize` on the GPU: ResNet-50 and BERT-base (benchmarks/models.py, random weights) on
# ONNX Runtime's CUDA EP, the candidates fp32 / fp16 / bf16 / int8 Q/DQ, each judged against the fp32
# model on ort-cuda (--min-cosine), tuned, the finalists measured alone; the JSON, the HTML report
# (where matplotlib is importable) and summary.md go into OUTDIR. Under 8 minutes on one H100.
#
#   benchmarks/optimize_gpu.sh OUTDIR           # on the GPU machine (python3 with torch, onnxruntime-gpu, onnx, typer, rich, numpy)
#   benchmarks/optimize_gpu.sh --smoke OUTDIR   # on the CPU: examples/tiny_cnn.py on ort-cpu, the same steps (tests run it)
#
# PYTHON picks the interpreter (default python3), BUDGET each model's optimize budget (150s); the repository root must be the working directory.
set -euo pipefail
SMOKE=0
if [ "${1:-}" = "--smoke" ]; then SMOKE=1; shift; fi
OUT=${1:?usage: benchmarks/optimize_gpu.sh [--smoke] OUTDIR}
PY=${PYTHON:-python3}
MODELS="$OUT/models"
mkdir -p "$OUT" "$MODELS"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
it() { "$PY" -m infertool "$@"; }

# what infertool needs, named before any work (the GPU machine has no internet to fetch it)
"$PY" - <<'EOF'
import importlib.util, sys
missing = [m for m in ("typer", "rich", "numpy", "onnx", "onnxruntime", "ml_dtypes", "PIL", "psutil", "torch") if importlib.util.find_spec(m) is None]
if missing:
    sys.exit(f"optimize_gpu.sh: missing Python packages: {', '.join(missing)} (stage them on PYTHONPATH)")
EOF
REPORT=()
"$PY" -c "import matplotlib" 2>/dev/null && REPORT=(--report)

optimize() {  # name model args...
  local name=$1 model=$2; shift 2
  local report=()
  [ ${#REPORT[@]} -gt 0 ] && report=(--report "$OUT/$name.optimize.html")
  local started=$SECONDS code=0
  it optimize "$model" -o "$MODELS/$name.opt.onnx" --json "$OUT/$name.optimize.json" "${report[@]}" --force --quiet "$@" || code=$?
  echo "$name: optimize exit $code in $((SECONDS - started)) s"
  [ $code -le 1 ] || exit $code  # 1: nothing met the budget, said in the JSON
}

if [ $SMOKE = 1 ]; then
  it convert examples/tiny_cnn.py:build --input-shape 1x3x64x64 -o "$MODELS/tiny_cnn.onnx" --force --quiet
  optimize tiny_cnn "$MODELS/tiny_cnn.onnx" -b ort-cpu --min-cosine 0.99 --batch 2 --budget 60s --duration 0.1
  NAMES=(tiny_cnn)
else
  # the CUDA EP's numbers: --batch 8, one second of timing per configuration, cosine 0.99 against fp32 on ort-cuda
  GPU=(-b ort-cuda --eval-backend ort-cuda --min-cosine 0.99 --batch 8 --duration 1 --calib-samples 32)
  it convert benchmarks/models.py:resnet50 --input-shape 1x3x224x224 -o "$MODELS/resnet50.onnx" --force --quiet
  optimize resnet50 "$MODELS/resnet50.onnx" "${GPU[@]}" --budget "${BUDGET:-150s}"
  it convert benchmarks/models.py:bert_base --input-shape input_ids:1x128 --input-shape attention_mask:1x128 \
    --dtype int64 --int-range 0:30522 --dynamic-axis input_ids:1:seq --dynamic-axis attention_mask:1:seq \
    -o "$MODELS/bert.onnx" --force --quiet --atol 1e-3
  optimize bert "$MODELS/bert.onnx" "${GPU[@]}" --input-shape input_ids:8x128 --input-shape attention_mask:8x128 \
    --int-range input_ids:0:30522 --budget "${BUDGET:-150s}"
  NAMES=(resnet50 bert)
fi

# summary.md: every candidate, its accuracy, the number that decided, the pick
"$PY" - "$OUT" "${NAMES[@]}" <<'EOF'
import json, sys
from pathlib import Path

out, names = Path(sys.argv[1]), sys.argv[2:]
lines = ["# infertool optimize on the GPU\n"]
for name in names:
    record = json.loads((out / f"{name}.optimize.json").read_text())
    env, picked = record["env"], record["picked"]
    card = ", ".join(g["name"] for g in env.get("gpus") or []) or env.get("cpu") or "?"
    pick = f"{picked['candidate']} on {picked['backend']}" if picked else "nothing"
    lines += [f"## {name}\n", f"{card}; picked: {pick}; "
              f"{record['seconds']:.0f} s of a {record['settings']['time_budget_s']:g} s budget\n",
              "| candidate | kept | accuracy | backend | median ms | timed | tuned | speedup | verdict |", "|---|---|---|---|---|---|---|---|---|"]
    for c in record["candidates"]:
        for run in c["runs"] or [None]:
            row = run and (run["alone"] or run["row"])
            tuned = ", ".join((row or {}).get("tune", {}).get("best", [])) if row and row.get("tune") else "-"
            timed = "-" if not row else "alone" if run["alone"] else "in-process"
            lines.append(f"| {c['name']} | {len(c['kept'])} | {c['found'] or 'the model'} | {run['backend'] if run else '-'} | "
                         f"{row['latency_ms']['median'] if row else '-'} | {timed} | {tuned} | {row['speedup'] if row else '-'} | "
                         f"{(run or {}).get('verdict') or c['rejected'] or '-'} |")
    lines += [*(f"- skipped: {s}" for s in record["skipped"]), *(f"- note: {n}" for n in record["notes"]), ""]
(out / "summary.md").write_text("\n".join(lines) + "\n")
print(f"wrote {out / 'summary.md'}")
EOF
