"""Precision as a property of the ONNX graph: detection, fp16/bf16 conversion, int8/fp8 Q/DQ."""
