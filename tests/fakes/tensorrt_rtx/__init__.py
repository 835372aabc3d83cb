"""FAKE tensorrt_rtx: the fake tensorrt (tests/fakes/tensorrt) loaded again under this name, which
makes it a fake TensorRT-RTX 1.7.1.116 (see its docstring). Nothing measured with it is a TensorRT-RTX
result; tests/test_tensorrt_surface.py checks its names against the real tensorrt_rtx bindings."""

import importlib.util
import pathlib
import sys

_spec = importlib.util.spec_from_file_location(__name__, pathlib.Path(__file__).resolve().parent.parent / "tensorrt" / "__init__.py")
_module = importlib.util.module_from_spec(_spec)
sys.modules[__name__] = _module
_spec.loader.exec_module(_module)
