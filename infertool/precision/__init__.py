"""Precision as pure ONNX -> ONNX transforms: fp16 / bf16 casts, int8 / fp8 Q/DQ with calibration."""
