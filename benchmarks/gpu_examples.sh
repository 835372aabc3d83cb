#!/usr/bin/env bash
# The examples' real-weight models (orientation classifier, text detector, VAD + CTC recogniser) on a GPU
# backend, accuracy against ground truth per precision: each example's results.md and log into OUT_DIR.
#
#   benchmarks/gpu_examples.sh OUT_DIR [BACKENDS] [--quick]   # on the GPU machine (default backends: ort-cuda)
#
# Each example runs in turn (a GPU row is timed alone on the card); SECONDS_EACH (default 280) bounds each,
# and an example cut off says so in OUT_DIR/exits.txt. Needs on PYTHONPATH what `make install` gives the
# examples: onnxruntime-gpu, rapidocr-onnxruntime and silero-vad (their ONNX files), pillow, scikit-image, scipy.
# On the device machine (2026-12-07, H100) the quick runs needed more than 60-80 s each.
set -uo pipefail
OUT=${1:?usage: benchmarks/gpu_examples.sh OUT_DIR [BACKENDS] [--quick]}
BACKENDS=${2:-ort-cuda}
QUICK=${3:-}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
for example in classification detection speech; do
  started=$SECONDS
  timeout "${SECONDS_EACH:-280}" "$PY" "examples/$example/run.py" --backends "$BACKENDS" $QUICK --out "/tmp/gpu-examples/$example" > "$OUT/$example.log" 2>&1
  code=$?
  echo "$example: exit $code in $((SECONDS - started)) s$([ $code = 124 ] && echo ' (cut off)')" | tee -a "$OUT/exits.txt"
  cp "/tmp/gpu-examples/$example/results.md" "$OUT/$example.results.md" 2>/dev/null || true
done
