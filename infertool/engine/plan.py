"""Which precision path a build takes on TensorRT 10.x (builder flags) and 11.x / TensorRT-RTX (always strongly typed)."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from infertool.engine.tensorrt_api import WEAK_TYPING_FLAGS
from infertool.errors import InfertoolError
from infertool.vocabulary import BUILD_PRECISIONS, REDUCED_PRECISIONS


@dataclass(frozen=True)
class PrecisionPlan:
    requested: str
    transform: str | None  # precision stage applied to the ONNX before parsing (casts or Q/DQ)
    flags: tuple[str, ...]  # BuilderFlag members, TensorRT 10.x only
    strongly_typed: bool
    expect: tuple[str, ...]  # at least one layer must compute in one of these

    def to_dict(self) -> dict:
        return {"requested": self.requested, "transform": self.transform, "builder_flags": list(self.flags),
                "strongly_typed": self.strongly_typed, "expect_layer_precisions": list(self.expect)}


def plan(requested: str | None, graph: str, trt_major: int, calibration: bool, notes: list[str]) -> PrecisionPlan:
    """The build path for a precision request (None: the graph's own), given the ONNX graph's own precision."""
    if requested is None:
        requested = graph if graph in BUILD_PRECISIONS else "fp32"
    if requested not in BUILD_PRECISIONS:
        raise InfertoolError(f"unknown precision '{requested}'", hint=f"choose from {', '.join(BUILD_PRECISIONS)}")
    expect = REDUCED_PRECISIONS if requested == "best" else () if requested == "fp32" else (requested,)
    if graph != "fp32":
        if requested not in (graph, "best"):
            raise InfertoolError(f"the ONNX model is already {graph}; it cannot build as {requested}", hint=f"use --precision {graph}, or give its fp32 original")
        return PrecisionPlan(requested, None, (), True, (graph,))
    if requested == "fp32":
        return PrecisionPlan(requested, None, (), trt_major >= 11, ())
    if requested in ("int8", "fp8") or (requested == "best" and calibration):
        target = "int8" if requested == "best" else requested
        if not calibration:
            raise InfertoolError(
                f"{requested} needs Q/DQ nodes in the graph, and this fp32 graph has none",
                hint="give --calib-data to calibrate here, or quantize first (infertool quantize -p int8)",
            )
        if requested == "best" and trt_major < 11:
            notes.append("best on TensorRT 10.x: int8 Q/DQ from calibration, fp16 elsewhere (builder flags)")
            return PrecisionPlan(requested, target, ("FP16", "INT8"), False, expect)
        return PrecisionPlan(requested, target, (), True, expect)
    target = "fp16" if requested == "best" else requested
    if trt_major >= 11:
        if requested == "best":
            notes.append("best on TensorRT 11 / TensorRT-RTX without --calib-data: an fp16 graph (give --calib-data for int8)")
        return PrecisionPlan(requested, target, (), True, expect)
    return PrecisionPlan(requested, None, (WEAK_TYPING_FLAGS[target],), False, expect)


_TYPES = (("fp8", r"\b(FP8|Fp8|E4M3|kFP8)\b"), ("bf16", r"\b(BF16|BFloat16|kBF16)\b"), ("fp16", r"\b(FP16|Half|kHALF)\b"),
          ("int8", r"\b(Int8|INT8|kINT8)\b"), ("fp32", r"\b(FP32|Float|kFLOAT)\b"))


def layer_precisions(info: dict) -> Counter | None:
    """Layers per tensor type, from the engine inspector's JSON (10.x `Format/Datatype`, 11.x `DataType`):
    the types of what a layer reads, writes and computes with (its constants), so a fused layer that
    takes fp32 in and out but computes with fp16 weights (Cast -> Mul -> Cast) counts as fp16.
    None when the engine was built without detailed profiling verbosity."""
    layers = info.get("Layers", [])
    if not layers or not all(isinstance(layer, dict) for layer in layers):
        return None
    counts: Counter = Counter()
    for layer in layers:
        tensors = [*layer.get("Inputs", []), *layer.get("Outputs", []), *layer.get("Constants", [])]
        text = " ".join(str(v) for t in tensors if isinstance(t, dict) for k, v in t.items() if k != "Name")
        counts.update({kind for kind, pattern in _TYPES if re.search(pattern, text)})
    return counts


def layers_from_log(messages: list[str]) -> dict:
    """The engine's layers as its builder logs them (verbose, detailed profiling), in the inspector's
    JSON form: for a build that cannot load its engine here (TensorRT-RTX, ahead of time, no GPU).
    A layer line reads `Name: n, LayerType: t, Inputs: [ {...} ], Constants: [...], Outputs: [ {...} ], TacticName: ...`."""
    report = next((m for m in reversed(messages) if m.startswith("Layers:")), "")
    layers = []
    for line in report.splitlines()[1:]:
        if not line.startswith("Name: "):
            break
        inputs = line.partition(", Inputs: [")[2].partition("], Constants: [")[0].partition("], Outputs: [")[0]
        constants = line.partition("], Constants: [")[2].partition("], Outputs: [")[0]
        outputs = line.partition("], Outputs: [")[2].partition("], TacticName:")[0]
        layers.append({
            "Name": line[6:].partition(",")[0],
            "Inputs": [{"DataType": t} for t in re.findall(r"Datatype: (\w+)", inputs)],
            "Constants": [{"DataType": t} for t in re.findall(r"Datatype: (\w+)", constants)],
            "Outputs": [{"DataType": t} for t in re.findall(r"Datatype: (\w+)", outputs)],
            "Metadata": line.partition("Metadata: ")[2],
        })
    return {"Layers": layers}
