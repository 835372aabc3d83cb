#!/usr/bin/env bash
# Issue 27's GPU evidence: rows measured in fresh processes agree with tune's alone-measurements and no
# longer depend on their order; BERT-base fp16 batch 32, tuned ONNX Runtime against torch.compile.
#   stage1: ResNet-50 (benchmarks/models.py, dynamo export) fp32 and fp16 at batch 1 on the CUDA EP, rows in
#           both orders, isolated (--isolate) and, for contrast, in one process (--no-isolate); then
#           bench --tune on fp16 (its best and defaults measured again, each alone in a fresh process)
#   stage2: BERT-base fp16, seq 128, batch 32: ort-cuda and torch-compile in one --tune run (ORT's transformer
#           fusions and torch.compile's modes are tune dimensions)
#   tables: benchmarks/gpu_evidence.py OUT_DIR: evidence.md and evidence.json from the stages' archives
# Every bench keeps --save-samples, so each ratio can be recomputed from the per-iteration times.
# Each stage leaves OUT_DIR/<stage>.tar.gz (its JSON results and logs); the folder holds at most 8 files.
#
#   benchmarks/gpu_evidence.sh stage1 OUT_DIR     # about 4-6 minutes on an H100 (estimated, not yet timed)
#   benchmarks/gpu_evidence.sh stage2 OUT_DIR     # about 5-8 minutes (torch.compile compiles each mode; estimated)
#   benchmarks/gpu_evidence.sh bert-models OUT_DIR   # stage2's export and fp16 alone (1-2 minutes), should stage2 need
#                                                    # the room: models stay in $MODELS, and the stages reuse them
#   benchmarks/gpu_evidence.sh tables OUT_DIR     # anywhere, after copying the stages' archives into OUT_DIR
#   benchmarks/gpu_evidence.sh --smoke all OUT_DIR   # the same plumbing on a CPU: tiny models, ort-cpu and torch
#
# On the lent machine: python 3.12 with onnxruntime-gpu on PYTHONPATH and torch with CUDA; no transformers,
# no torchvision (the models are plain torch code). Budgets through the environment: TUNE_RESNET, TUNE_BERT
# (seconds of --tune measurement per row), ITERATIONS, DURATION; PYTHON picks the interpreter.
set -euo pipefail
SMOKE=0
if [ "${1:-}" = "--smoke" ]; then SMOKE=1; shift; fi
STAGE=${1:?usage: benchmarks/gpu_evidence.sh [--smoke] stage1|stage2|tables|all OUT_DIR}
OUT=${2:?usage: benchmarks/gpu_evidence.sh [--smoke] stage1|stage2|tables|all OUT_DIR}
PY=${PYTHON:-python3}
HERE=$(cd "$(dirname "$0")" && pwd)
if [ "$SMOKE" = 1 ]; then
  GPU=ort-cpu; COMPILED=torch; RESNET=resnet_tiny; TUNED=(--graph-opt extended); IMAGE=1x3x32x32; BERT=bert_tiny; VOCAB=1000; SEQ=16; BERT_BATCH=2
  TUNE_RESNET=${TUNE_RESNET:-2s}; TUNE_BERT=${TUNE_BERT:-2s}; TIMING=(--iterations "${ITERATIONS:-5}" --duration "${DURATION:-0}" --warmup 2)
else
  GPU=ort-cuda; COMPILED=torch-compile; RESNET=resnet50; TUNED=(--cuda-graph --ort-option prefer_nhwc=1); IMAGE=1x3x224x224; BERT=bert_base; VOCAB=30522; SEQ=128; BERT_BATCH=32
  TUNE_RESNET=${TUNE_RESNET:-40s}; TUNE_BERT=${TUNE_BERT:-60s}; TIMING=(--iterations "${ITERATIONS:-300}" --duration "${DURATION:-2}" --warmup 1s)
fi
WORK="$OUT/.work"
if [ "$SMOKE" = 1 ]; then MODELS=${MODELS:-$WORK/models}; else MODELS=${MODELS:-/tmp/infertool-evidence-models}; fi
mkdir -p "$MODELS" "$WORK/raw"
it() { "$PY" -m infertool "$@"; }
# a failed row or a disagreement exits 1 (a crashed runtime 2) with the JSON written: keep going, say so
bench() { it bench "$@" --save-samples --quiet --force >> "$WORK/raw/bench.log" || echo "warning: bench exited $? (its JSON says why)" >&2; }
say() { echo "== $1 ($(date +%T))" >&2; }

pack() {  # the stage's results and logs into one archive; the work folder goes
  tar -czf "$OUT/$1.tar.gz" -C "$WORK" raw
  rm -rf "$WORK/raw"
  rmdir "$WORK" 2>/dev/null || true  # the smoke's models live there until the tables
}

stage1() {
  say "stage1: ResNet-50 ($RESNET) export, fp16"
  it doctor --json > "$WORK/raw/doctor.json"
  local fp32="$MODELS/resnet50.onnx" fp16="$MODELS/resnet50.fp16.onnx" order
  [ -f "$fp32" ] || it convert "$HERE/models.py:$RESNET" --exporter dynamo --input-shape "$IMAGE" -o "$fp32" --quiet --force --json "$WORK/raw/convert_resnet50.json"
  [ -f "$fp16" ] || it quantize "$fp32" -p fp16 -o "$fp16" --input-shape "$IMAGE" --quiet --force --json "$WORK/raw/quantize_resnet50_fp16.json"
  # the defaults, and the configuration tune finds on an H100 (CUDA graph, prefer_nhwc): launch-bound rows,
  # where a process's later ORT GPU sessions ran 0.045 ms slower
  for config in defaults tuned; do
    local flags=()
    [ "$config" = tuned ] && flags=("${TUNED[@]}")
    for order in isolate no-isolate; do
      say "stage1: $GPU rows fp32,fp16 then fp16,fp32 ($config, --$order)"
      bench "$fp32" "$fp16" --label fp32 --label fp16 -b "$GPU" --batch 1 "--$order" "${flags[@]}" --reference "$fp32" "${TIMING[@]}" --json "$WORK/raw/r50_${order}_${config}_fp32_first.json"
      bench "$fp16" "$fp32" --label fp16 --label fp32 -b "$GPU" --batch 1 "--$order" "${flags[@]}" --reference "$fp32" "${TIMING[@]}" --json "$WORK/raw/r50_${order}_${config}_fp16_first.json"
    done
  done
  say "stage1: --tune on fp16 batch 1 (best and defaults again, each alone in a fresh process)"
  bench "$fp16" -b "$GPU" --batch 1 --tune --tune-budget "$TUNE_RESNET" --reference "$fp32" "${TIMING[@]}" --json "$WORK/raw/r50_tune_fp16.json"
  pack stage1
}

bert_models() {
  say "BERT-base ($BERT) export, fp16"
  # TorchScript: ONNX Runtime's transformer optimizer fuses its export's attention (12 of 12 Attention nodes
  # on bert_base); on the dynamo export it fuses none (only SkipLayerNorm, BiasGelu)
  [ -f "$MODELS/bert.onnx" ] || it convert "$HERE/models.py:$BERT" --exporter torchscript --input-shape "input_ids:1x$SEQ" --input-shape "attention_mask:1x$SEQ" \
    --dtype int64 --int-range "0:$VOCAB" --dynamic-axis input_ids:1:seq --dynamic-axis attention_mask:1:seq --atol 1e-3 \
    -o "$MODELS/bert.onnx" --quiet --force --json "$WORK/raw/convert_bert.json"
  [ -f "$MODELS/bert.fp16.onnx" ] || it quantize "$MODELS/bert.onnx" -p fp16 -o "$MODELS/bert.fp16.onnx" --input-shape "input_ids:1x$SEQ" \
    --int-range "0:$VOCAB" --quiet --force --json "$WORK/raw/quantize_bert_fp16.json"
}

stage2() {
  local fp32="$MODELS/bert.onnx" fp16="$MODELS/bert.fp16.onnx"
  bert_models
  say "stage2: $GPU and $COMPILED, --tune, batch $BERT_BATCH"
  bench "$fp16" -b "$GPU" -b "$COMPILED" --source "$HERE/models.py:$BERT" --input-shape "input_ids:1x$SEQ" --int-range "0:$VOCAB" \
    --batch "$BERT_BATCH" --tune --tune-budget "$TUNE_BERT" --reference "$fp32" "${TIMING[@]}" --json "$WORK/raw/bert_tune_fp16.json"
  pack stage2
}

tables() {
  rm -rf "$WORK"
  "$PY" "$HERE/gpu_evidence.py" "$OUT"
}

case "$STAGE" in
  stage1 | stage2 | tables) "$STAGE" ;;
  bert-models) bert_models; pack bert-models ;;
  all) stage1; mkdir -p "$WORK/raw"; stage2; tables ;;
  *) echo "unknown stage $STAGE: stage1, stage2, bert-models, tables or all" >&2; exit 2 ;;
esac
say done
