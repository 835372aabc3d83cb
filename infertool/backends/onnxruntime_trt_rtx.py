"""ONNX Runtime on TensorRT-RTX: the NVIDIA TensorRT-RTX plug-in execution provider
(`onnxruntime-ep-nv-tensorrt-rtx-cu13`, which bundles the TensorRT-RTX library), registered with
ONNX Runtime at run time. Written against ONNX Runtime's plug-in EP API; never run in this project
(it needs an NVIDIA driver and an RTX / Ampere or later GPU, not Hopper).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from infertool.backends import registry
from infertool.backends.base import Capabilities, RunnerOptions
from infertool.backends.onnxruntime import OrtBackend, OrtOptions
from infertool.engine.tensorrt_api import TENSORRT_RTX
from infertool.errors import BackendFailure, InfertoolError, first_line
from infertool.optional import install_hint, is_available, require
from infertool.vocabulary import ENGINE_GRAPHS

PLUGIN = "onnxruntime_ep_nv_tensorrt_rtx"
EP = "NvTensorRTRTXExecutionProvider"
_registered: list[str] = []


def _ep_devices() -> list[Any]:
    """The devices the plug-in EP offers, registering its library with ONNX Runtime once."""
    ort = require("onnxruntime", "ONNX Runtime backends")
    if not _registered:
        plugin = require(PLUGIN, "the TensorRT-RTX execution provider")
        try:
            ort.register_execution_provider_library(EP, plugin.get_library_path())
        except Exception as exc:  # no driver: "libcuda.so.1: cannot open shared object file"
            raise InfertoolError(f"the TensorRT-RTX execution provider did not load: {first_line(exc)}", hint="it needs an NVIDIA driver and GPU") from exc
        _registered.append(EP)
    return [device for device in ort.get_ep_devices() if device.ep_name == EP]


class OrtTensorrtRtx(OrtBackend):
    name = "ort-trt-rtx"
    description = "ONNX Runtime, TensorRT-RTX plug-in execution provider (RTX / Ampere and later GPUs, not Hopper); never run in this project"
    extra = "ort-trt-rtx"
    provider = EP
    capabilities = Capabilities(on_gpu=True, device_resident=True, precision_graphs=ENGINE_GRAPHS)

    def unavailable_reason(self) -> str | None:
        if not is_available("onnxruntime"):
            return "onnxruntime is not installed (pip install 'infertool[cpu]')"
        if not is_available(PLUGIN):
            return f"the TensorRT-RTX execution provider is not installed ({install_hint(PLUGIN)}); it runs on RTX / Ampere and later GPUs"
        try:
            devices = _ep_devices()
        except InfertoolError as exc:
            return exc.message
        if not devices:
            return "the TensorRT-RTX execution provider found no GPU it can use"
        from infertool.environment import gpus

        found, _ = gpus()
        unsupported = [TENSORRT_RTX.unsupported_gpu(g.name, g.compute_capability) for g in found]
        return unsupported[0] if found and all(unsupported) else None

    def provider_chain(self, options: RunnerOptions, stream: Any) -> list[tuple[str, dict]]:
        return [(EP, {"device_id": str(options.device), **options.group(OrtOptions).provider_options}), ("CPUExecutionProvider", {})]

    def create_session(self, ort: Any, model: Path, so: Any, chain: list[tuple[str, dict]]) -> Any:
        devices = _ep_devices()
        if not devices:
            raise BackendFailure("the TensorRT-RTX execution provider found no GPU it can use")
        so.add_provider_for_devices(devices, chain[0][1])
        return ort.InferenceSession(str(model), sess_options=so)


registry.register(OrtTensorrtRtx())
