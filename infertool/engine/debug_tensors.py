"""TensorRT debug tensors, for `debug layers`: mark a network's tensors before the build, read them
back at run time through an IDebugListener, and map engine layers back to the ONNX nodes they
came from. Every function takes the TensorRT module or its objects as parameters, so each
TensorRT flavour (10.x, 11.x, TensorRT-RTX) plugs in.

Two ways to mark: `mark_debug` on each wanted tensor keeps its name but stops fusion there;
`mark_unfused_tensors_as_debug_tensors` (TensorRT >= 10.12 and RTX) leaves fusion alone and
emits the tensors that survive it, under the engine's internal names, which the inspector's layer
metadata maps back to ONNX nodes.
"""

from __future__ import annotations

import ctypes
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from infertool import cuda, dtypes

UNFUSED = "mark_unfused_tensors_as_debug_tensors"
# the inspector's Metadata lists the ONNX nodes a layer came from; TensorRT separates the entries
# with \x1e / \x1f, the build log writes them back to back
ONNX_LAYER = re.compile(r"\[ONNX Layer: (.*?)\](?=[\x1e\x1f]|\[ONNX Layer: |$)")
FOREIGN_NODE = re.compile(r"^\{ForeignNode\[(.*)\.\.\.(.*)\]\}$")


@dataclass(frozen=True)
class Marked:
    tensors: tuple[str, ...] = ()  # marked one by one (their names kept; fusion stops at each)
    unfused: bool = False  # every unfused tensor marked (fusion untouched; engine-internal names)
    missing: tuple[str, ...] = ()  # wanted tensors the parsed network does not have

    def to_dict(self) -> dict:
        return {"tensors": list(self.tensors), "unfused": self.unfused, "missing": list(self.missing)}

    @classmethod
    def from_dict(cls, data: Mapping) -> Marked:
        return cls(tuple(data.get("tensors", ())), bool(data.get("unfused")), tuple(data.get("missing", ())))


def network_tensors(network: Any) -> dict[str, Any]:
    """The network's layer outputs, by name (the ONNX parser names them after the ONNX tensors)."""
    found = {}
    for index in range(network.num_layers):
        layer = network.get_layer(index)
        for output in range(layer.num_outputs):
            tensor = layer.get_output(output)
            found[tensor.name] = tensor
    return found


def mark(network: Any, wanted: Iterable[str], keep_fusions: bool) -> Marked:
    """Mark `wanted` for reading at run time. With `keep_fusions`, where the library can, unfused
    tensors are marked instead, which changes nothing in the engine."""
    wanted = list(dict.fromkeys(wanted))
    if keep_fusions and hasattr(network, UNFUSED) and network.mark_unfused_tensors_as_debug_tensors():
        return Marked(unfused=True)
    tensors = network_tensors(network)
    marked = tuple(name for name in wanted if name in tensors and network.mark_debug(tensors[name]))
    return Marked(marked, False, tuple(name for name in wanted if name not in tensors))


def listener(trt: Any) -> Any:
    """An IDebugListener that copies every debug tensor it is handed to the host (`.tensors`)."""

    class Capture(trt.IDebugListener):
        def __init__(self) -> None:
            trt.IDebugListener.__init__(self)
            self.tensors: dict[str, np.ndarray] = {}

        def process_debug_tensor(self, addr: Any, location: Any, type: Any, shape: Any, name: str, stream: Any) -> bool:  # noqa: A002 (TensorRT's names)
            kind = dtypes.from_trt(getattr(type, "name", str(type)).rsplit(".", 1)[-1])
            host = np.empty(tuple(shape), dtypes.numpy_dtype(kind))
            if host.nbytes:
                if location == trt.TensorLocation.HOST:
                    ctypes.memmove(host.ctypes.data, _address(addr), host.nbytes)
                else:
                    cuda.read_device(host.ctypes.data, _address(addr), host.nbytes, int(stream))
            self.tensors[name] = host  # the buffer is valid during the callback only: copied
            return True

    return Capture()


def enable(context: Any, marked: Marked, capture: Any) -> None:
    """Turn the marked tensors on for an execution context, reporting to `capture`."""
    context.set_debug_listener(capture)
    if marked.tensors:
        context.set_all_tensors_debug_state(True)
    if marked.unfused:
        context.unfused_tensors_debug_state = True


def _address(addr: Any) -> int:
    """The pointer a debug tensor arrives as: an int, or a PyCapsule in the real bindings."""
    if isinstance(addr, int):
        return addr
    name = ctypes.pythonapi.PyCapsule_GetName
    name.restype, name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    pointer = ctypes.pythonapi.PyCapsule_GetPointer
    pointer.restype, pointer.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    return int(pointer(addr, name(addr)))


def onnx_nodes(layer: Mapping) -> list[str]:
    """The ONNX nodes an engine layer came from: its Metadata (DETAILED profiling verbosity), else
    its name (`a + b` for a fusion; `{ForeignNode[a...b]}` names only the first and the last)."""
    found = ONNX_LAYER.findall(str(layer.get("Metadata") or ""))
    if found:
        return found
    name = str(layer.get("Name", ""))
    foreign = FOREIGN_NODE.match(name)
    if foreign:
        return [foreign.group(1), foreign.group(2)]
    return [part.strip() for part in name.split(" + ") if part.strip()]


def layers(info: Mapping) -> list[dict]:
    """Each engine layer with the ONNX nodes it came from and the tensors it writes, from the
    inspector's JSON (an empty list when the engine was built without layer details)."""
    found = []
    for layer in info.get("Layers", []):
        if isinstance(layer, dict):
            outputs = [t.get("Name") for t in layer.get("Outputs", []) if isinstance(t, dict)]
            found.append({"name": layer.get("Name", ""), "onnx_nodes": onnx_nodes(layer), "outputs": [o for o in outputs if o]})
    return found


def onnx_tensors(captured: Iterable[str], engine_layers: list[dict], node_outputs: Mapping[str, list[str]]) -> dict[str, str]:
    """Engine tensor name -> the ONNX tensor it holds: the same name where the engine kept it, else
    the one output of the last ONNX node of the layer that wrote it (a fused layer's result)."""
    writers = {o: layer for layer in engine_layers for o in layer["outputs"]}
    known = {o for outputs in node_outputs.values() for o in outputs}
    found = {}
    for name in captured:
        if name in known:
            found[name] = name
            continue
        layer = writers.get(name)
        if layer is None or not layer["onnx_nodes"] or len(layer["outputs"]) != 1:
            continue
        outputs = node_outputs.get(layer["onnx_nodes"][-1], [])
        if len(outputs) == 1:
            found[name] = outputs[0]
    return found
