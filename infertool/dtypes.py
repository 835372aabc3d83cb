"""The one dtype table: names, ONNX element types, ONNX Runtime type strings, TensorRT members."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from infertool.errors import InfertoolError


@dataclass(frozen=True)
class DType:
    name: str  # infertool's name, numpy's where numpy has the type
    onnx: int  # TensorProto element type
    trt: str | None = None  # TensorRT DataType member
    aliases: tuple[str, ...] = ()

    @property
    def ort(self) -> str:
        """ONNX Runtime's type string, e.g. tensor(float)."""
        return f"tensor({ORT_NAMES.get(self.name, self.name)})"


TABLE = (
    DType("float32", 1, "FLOAT", ("fp32", "float")),
    DType("uint8", 2, "UINT8"),
    DType("int8", 3, "INT8"),
    DType("uint16", 4),
    DType("int16", 5),
    DType("int32", 6, "INT32"),
    DType("int64", 7, "INT64"),
    DType("string", 8),
    DType("bool", 9, "BOOL"),
    DType("float16", 10, "HALF", ("fp16", "half")),
    DType("float64", 11, None, ("fp64", "double")),
    DType("uint32", 12),
    DType("uint64", 13),
    DType("complex64", 14),
    DType("complex128", 15),
    DType("bfloat16", 16, "BF16", ("bf16",)),
    DType("float8e4m3fn", 17, "FP8"),
    DType("float8e4m3fnuz", 18),
    DType("float8e5m2", 19),
    DType("float8e5m2fnuz", 20),
    DType("uint4", 21),
    DType("int4", 22, "INT4"),
    DType("float4e2m1", 23, "FP4"),
)
ORT_NAMES = {"float32": "float", "float64": "double"}
# numpy lacks these; ml_dtypes (a dependency of onnx) provides them
ML_DTYPES = {
    "bfloat16": "bfloat16", "float8e4m3fn": "float8_e4m3fn", "float8e4m3fnuz": "float8_e4m3fnuz",
    "float8e5m2": "float8_e5m2", "float8e5m2fnuz": "float8_e5m2fnuz", "uint4": "uint4", "int4": "int4",
    "float4e2m1": "float4_e2m1fn",
}

BY_NAME = {d.name: d for d in TABLE}
BY_ONNX = {d.onnx: d for d in TABLE}
BY_ORT = {d.ort: d for d in TABLE}
BY_TRT = {d.trt: d for d in TABLE if d.trt}
ALIASES = {alias: d.name for d in TABLE for alias in (d.name, *d.aliases)}


def from_onnx(elem_type: int) -> str:
    found = BY_ONNX.get(elem_type)
    return found.name if found else f"onnx:{elem_type}"


def from_ort(type_string: str) -> str:
    found = BY_ORT.get(type_string)
    return found.name if found else type_string


def from_trt(member: str) -> str:
    found = BY_TRT.get(member)
    return found.name if found else member


def numpy_dtype(name: str) -> np.dtype:
    if name not in BY_NAME:
        raise InfertoolError(f"element type {name} is not an ONNX tensor type infertool knows", hint="check the model's input and output types")
    if name in ML_DTYPES:
        import ml_dtypes

        return np.dtype(getattr(ml_dtypes, ML_DTYPES[name]))
    if name == "string":
        return np.dtype(object)
    return np.dtype(name)


def is_float(name: str) -> bool:
    return name.startswith(("float", "bfloat"))
