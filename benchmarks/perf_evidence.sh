#!/usr/bin/env bash
# Issue 15's GPU evidence, one command: writes JSON into OUT_DIR and prints the tables.
#   (a) bench --tune on ResNet-50 fp16, batch 1 and 256 (ONNX Runtime CUDA EP: defaults vs the best found)
#   (b) torch, torch-compile and the tuned ORT rows in one table, ResNet-50 and BERT-base (benchmarks/models.py)
#   (c) FLOPs, TFLOP/s and % of the GPU's dense peak on every row (in each bench JSON, rows[].compute)
#   (d) harness fidelity of the torch and torch-compile backends against a bare loop
#   check (not in all): (a) again at batch 1 with longer budgets, and bare ONNX Runtime loops on the defaults and the tuned configuration
#
# Needs a GPU machine with onnxruntime-gpu, torch with CUDA, onnxscript and cuda-python importable
# (on the lent machine: PYTHONPATH=/tmp/site:$PWD after staging onnxruntime-gpu, as for gpu_suite.sh).
#   benchmarks/perf_evidence.sh OUT_DIR            # everything (estimated 8-11 minutes on an H100; not yet timed)
#   benchmarks/perf_evidence.sh OUT_DIR models,resnet   # stages, comma-separated: models, resnet, bert, fidelity, check
#                                                       # (under a 10-minute limit per command: models,resnet then bert,fidelity)
# Budgets through the environment: TUNE_RESNET, TUNE_BERT (seconds of --tune measurement per row, shared by the
# configurations tried; session set-up and compiles come on top), ITERATIONS, DURATION, RESNET_BATCH, BERT_BATCH.
# Models go to $MODELS and are reused when present. Summary: python3 benchmarks/perf_tables.py OUT_DIR
set -euo pipefail
OUT=${1:?usage: benchmarks/perf_evidence.sh OUT_DIR [all | models,resnet,bert,fidelity (any, comma-separated)]}
STAGE=${2:-all}
MODELS=${MODELS:-/tmp/infertool-models}
TUNE_RESNET=${TUNE_RESNET:-12s}
TUNE_BERT=${TUNE_BERT:-8s}
RESNET_BATCH=${RESNET_BATCH:-1,256}
BERT_BATCH=${BERT_BATCH:-1,32}
TIMING=(--iterations "${ITERATIONS:-20}" --duration "${DURATION:-0.3}" --warmup 0.3s)
mkdir -p "$OUT" "$MODELS"
it() { python3 -m infertool "$@"; }
# a failed row (say, torch-compile) or a disagreement exits 1 with the JSON written: keep going, say so
bench() { it bench "$@" || echo "warning: bench exited $? (the JSON says why)" >&2; }
stage() { echo "== $1 ($(date +%T))" >&2; }

resnet_models() {
  [ -f "$MODELS/resnet50.onnx" ] || it convert benchmarks/models.py:resnet50 --input-shape 1x3x224x224 \
    -o "$MODELS/resnet50.onnx" --quiet --json "$OUT/convert_resnet50.json" --force
  [ -f "$MODELS/resnet50.fp16.onnx" ] || it quantize "$MODELS/resnet50.onnx" -p fp16 -o "$MODELS/resnet50.fp16.onnx" \
    --eval-backend ort-cuda --quiet --json "$OUT/quantize_resnet50_fp16.json" --force
}

models() {
  stage "models: export and fp16 (CPU work on the GPU machine)"
  python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'torch has no CUDA here')"
  it doctor --json > "$OUT/doctor.json"
  resnet_models
  [ -f "$MODELS/bert.onnx" ] || it convert benchmarks/models.py:bert_base --input-shape input_ids:1x128 --input-shape attention_mask:1x128 \
    --dtype int64 --int-range 0:30522 --dynamic-axis input_ids:1:seq --dynamic-axis attention_mask:1:seq \
    --atol 1e-3 -o "$MODELS/bert.onnx" --quiet --json "$OUT/convert_bert.json" --force
  [ -f "$MODELS/bert.fp16.onnx" ] || it quantize "$MODELS/bert.onnx" -p fp16 -o "$MODELS/bert.fp16.onnx" --eval-backend ort-cuda \
    --input-shape input_ids:1x128 --int-range 0:30522 --quiet --json "$OUT/quantize_bert_fp16.json" --force
}

resnet() {
  stage "(a)+(b)+(c) ResNet-50 fp16: ort-cuda --tune, torch, torch-compile; batch 1 and 256"
  bench "$MODELS/resnet50.fp16.onnx" -b ort-cuda -b torch -b torch-compile --source benchmarks/models.py:resnet50 \
    --batch "$RESNET_BATCH" --tune --tune-budget "$TUNE_RESNET" "${TIMING[@]}" --reference "$MODELS/resnet50.onnx" \
    --quiet --force --json "$OUT/resnet50_fp16_tune.json"
}

bert() {
  stage "(b)+(c) BERT-base fp16, seq 128: ort-cuda --tune, torch, torch-compile; batch 1 and 32"
  bench "$MODELS/bert.fp16.onnx" -b ort-cuda -b torch -b torch-compile --source benchmarks/models.py:bert_base \
    --input-shape input_ids:1x128 --int-range 0:30522 --batch "$BERT_BATCH" --tune --tune-budget "$TUNE_BERT" "${TIMING[@]}" \
    --reference "$MODELS/bert.onnx" --quiet --force --json "$OUT/bert_fp16_tune.json"
}

fidelity() {
  stage "(d) harness fidelity: torch and torch-compile vs a bare loop (device-resident, batch 1)"
  for backend in torch torch-compile; do  # torch-compile reuses inductor's on-disk cache from the bench stage
    python3 benchmarks/harness_fidelity.py "$MODELS/resnet50.fp16.onnx" --backend "$backend" --source benchmarks/models.py:resnet50 \
      --batch 1 --rounds 5 --iterations 200 -o "$OUT/fidelity_${backend}_resnet50_fp16_b1.json"
  done
}

check() {
  stage "(a) again at batch 1 with longer budgets; bare ONNX Runtime loops on the defaults and on the tuned configuration"
  resnet_models
  bench "$MODELS/resnet50.fp16.onnx" -b ort-cuda --batch 1 --tune --tune-budget "${TUNE_CHECK:-40s}" --iterations 1000 --duration 3 \
    --warmup 1s --reference "$MODELS/resnet50.onnx" --quiet --force --json "$OUT/resnet50_fp16_tune_b1.json"
  python3 benchmarks/harness_fidelity.py "$MODELS/resnet50.fp16.onnx" --backend ort-cuda --batch 1 \
    -o "$OUT/fidelity_ort-cuda_defaults_resnet50_fp16_b1.json"
  python3 benchmarks/harness_fidelity.py "$MODELS/resnet50.fp16.onnx" --backend ort-cuda --batch 1 --cuda-graph \
    --provider-option prefer_nhwc=1 -o "$OUT/fidelity_ort-cuda_tuned_resnet50_fp16_b1.json"
}

for part in ${STAGE//,/ }; do
  case "$part" in
    models | resnet | bert | fidelity | check) "$part" ;;
    all) models; resnet; bert; fidelity ;;
    *) echo "unknown stage $part: models, resnet, bert, fidelity, check or all (comma-separated)" >&2; exit 2 ;;
  esac
done
stage "done"
python3 benchmarks/perf_tables.py "$OUT"
