#!/usr/bin/env bash
# The GPU measurements behind benchmarks/README.md: a ResNet-50-like and a BERT-base-like model,
# fp32 / fp16 / int8 Q/DQ, batch 1 / 32 / 256, on ONNX Runtime's CUDA EP:
# numpy I/O vs IO binding vs CUDA graph, plus the harness-fidelity check.
#
# Needs onnxruntime-gpu, torch, onnxscript and cuda-python importable (on the lent GPU machine:
# PYTHONPATH=/tmp/site:$PWD after staging onnxruntime-gpu). Each stage exports, validates and
# converts its model (into $MODELS), then benchmarks it:
#   benchmarks/gpu_suite.sh resnet   # + harness fidelity
#   benchmarks/gpu_suite.sh bert
# Results: JSON files in $RESULTS; python3 benchmarks/tables.py renders them.
set -euo pipefail
MODELS=${MODELS:-/tmp/infertool-models}
RESULTS=${RESULTS:-benchmarks/results/gpu}
mkdir -p "$MODELS" "$RESULTS"
it() { python3 -m infertool "$@"; }
# the launch-bound rows (batch 1 without CUDA graphs) see rare multi-ms host stalls on this VM;
# medians hold, the CV warnings say so
BENCH=(--backend ort-cuda --batch 1,32,256 --iterations 20 --duration 1 --warmup 2s --quiet --force)

case "${1:?stage: resnet or bert}" in
resnet)
  it convert benchmarks/models.py:resnet50 --input-shape 1x3x224x224 -o "$MODELS/resnet50.onnx" --force --quiet --json "$RESULTS/convert_resnet50.json"
  it quantize "$MODELS/resnet50.onnx" -p fp16 -o "$MODELS/resnet50.fp16.onnx" --eval-backend ort-cuda \
    --force --quiet --json "$RESULTS/quantize_resnet50_fp16.json"
  it quantize "$MODELS/resnet50.onnx" -p int8 --calib-data random --calib-samples 32 -o "$MODELS/resnet50.int8.onnx" \
    --eval-backend ort-cuda --force --quiet --json "$RESULTS/quantize_resnet50_int8.json"
  for precision in fp32 fp16 int8; do
    model="$MODELS/resnet50.onnx"; [ $precision != fp32 ] && model="$MODELS/resnet50.$precision.onnx"
    it bench "$model" "${BENCH[@]}" --reference "$MODELS/resnet50.onnx" --json "$RESULTS/resnet50_${precision}.json"
    [ $precision != int8 ] && it bench "$model" "${BENCH[@]}" --cuda-graph --reference "$MODELS/resnet50.onnx" --json "$RESULTS/resnet50_${precision}_cudagraph.json"
  done
  it bench "$MODELS/resnet50.fp16.onnx" "${BENCH[@]}" --cuda-graph --ort-option prefer_nhwc=1 --reference "$MODELS/resnet50.onnx" --json "$RESULTS/resnet50_fp16_cudagraph_nhwc.json"
  python3 benchmarks/harness_fidelity.py "$MODELS/resnet50.fp16.onnx" --backend ort-cuda --cuda-graph --batch 1 --rounds 7 --iterations 1000 -o "$RESULTS/fidelity_gpu_resnet50_fp16_b1_cudagraph.json"
  ;;
bert)
  SHAPE=(--input-shape input_ids:1x128 --int-range 0:30522)
  it convert benchmarks/models.py:bert_base --input-shape input_ids:1x128 --input-shape attention_mask:1x128 \
    --dtype int64 --int-range 0:30522 --dynamic-axis input_ids:1:seq --dynamic-axis attention_mask:1:seq \
    -o "$MODELS/bert.onnx" --force --quiet --json "$RESULTS/convert_bert.json" --atol 1e-3
  it quantize "$MODELS/bert.onnx" -p fp16 -o "$MODELS/bert.fp16.onnx" --eval-backend ort-cuda "${SHAPE[@]}" \
    --force --quiet --json "$RESULTS/quantize_bert_fp16.json"
  # what keeping the fused Softmax / LayerNormalization in fp32 would cost
  it quantize "$MODELS/bert.onnx" -p fp16 --exclude-op-types Softmax,LayerNormalization -o "$MODELS/bert.fp16-keep.onnx" \
    --eval-backend ort-cuda "${SHAPE[@]}" --force --quiet --json "$RESULTS/quantize_bert_fp16-keep.json"
  for precision in fp32 fp16 fp16-keep; do
    model="$MODELS/bert.onnx"; [ $precision != fp32 ] && model="$MODELS/bert.$precision.onnx"
    it bench "$model" "${BENCH[@]}" "${SHAPE[@]}" --reference "$MODELS/bert.onnx" --json "$RESULTS/bert_${precision}.json"
    it bench "$model" "${BENCH[@]}" "${SHAPE[@]}" --cuda-graph --no-check --json "$RESULTS/bert_${precision}_cudagraph.json"
  done
  ;;
esac
