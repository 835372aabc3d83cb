"""infertool: models to ONNX, ONNX to TensorRT engines, and fair ORT / TensorRT benchmarks."""

__version__ = "0.1.0"
