"""Exporters: one module per framework (torch, keras), each writing ONNX, plus validation."""
