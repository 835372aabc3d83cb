"""The precision vocabulary every layer shares."""

from __future__ import annotations

# what a graph computes in (onnx_io.graph_precision reads it off the graph)
GRAPH_PRECISIONS = ("fp32", "fp16", "bf16", "int8", "fp8")
# below fp32
REDUCED_PRECISIONS = ("fp16", "bf16", "int8", "fp8")
# how an engine that mixes several precisions is labelled: by its lowest
LOWEST_FIRST = ("fp8", "int8", "bf16", "fp16", "fp32")
# `quantize -p`: casts (fp16, bf16), Q/DQ (int8, fp8), or ORT's dynamic int8
QUANTIZE_PRECISIONS = ("fp16", "bf16", "int8", "fp8", "int8-dynamic")
QUANTIZE_TARGETS = ("tensorrt", "ort")
# precision graphs `bench --tune` may put in place of an fp32 model: name -> (quantize -p, --target)
TUNE_GRAPHS = {"int8-tensorrt": ("int8", "tensorrt"), "int8-ort": ("int8", "ort")}
# `build-engine -p`: also fp32, and best (the fastest the builder finds)
BUILD_PRECISIONS = ("fp32", "fp16", "bf16", "int8", "fp8", "best")
# int8 graphs as tables tell them apart: TensorRT-shaped Q/DQ (symmetric, on Conv/MatMul/Gemm
# inputs), onnxruntime's static CPU layout (uint8 activations, zero points), dynamic int8
INT8_QDQ, INT8_ORT, INT8_DYNAMIC = "int8-qdq", "int8-ort", "int8-dyn"
# precision graphs `optimize` makes from a model and tries where a backend runs them (Capabilities.precision_graphs):
# name -> (quantize -p, --target)
PRECISION_GRAPHS = {
    "fp16": ("fp16", "tensorrt"), "bf16": ("bf16", "tensorrt"), INT8_QDQ: ("int8", "tensorrt"), INT8_ORT: ("int8", "ort"),
    INT8_DYNAMIC: ("int8-dynamic", "ort"), "fp8": ("fp8", "tensorrt"),
}
GPU_GRAPHS = ("fp16", "bf16", INT8_QDQ)  # what every GPU runtime computes from an fp32 model
ENGINE_GRAPHS = (*GPU_GRAPHS, "fp8")  # TensorRT-family engines also compute fp8 (on GPUs that have it)
# the precision whose tolerance a quantized graph is judged by
TOLERANCE_CLASS = {"int8-dynamic": "int8"}


def tolerance_class(precision: str) -> str:
    return TOLERANCE_CLASS.get(precision, precision)
