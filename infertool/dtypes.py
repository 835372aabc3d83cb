"""The one dtype table: names, ONNX element types, ONNX Runtime type strings, TensorRT members."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from infertool.errors import InfertoolError

if TYPE_CHECKING:
    import numpy as np


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
    DType("float8e8m0", 24),
    DType("uint2", 25),
    DType("int2", 26),
    DType("float6e2m3", 27),
    DType("float6e3m2", 28),
)
ORT_NAMES = {"float32": "float", "float64": "double"}
# numpy lacks these; ml_dtypes (a dependency of onnx) provides them. ONNX Runtime's Python API takes
# and returns them only as OrtValues holding ONNX's raw bytes (sub-byte types packed).
ML_DTYPES = {
    "bfloat16": "bfloat16", "float8e4m3fn": "float8_e4m3fn", "float8e4m3fnuz": "float8_e4m3fnuz",
    "float8e5m2": "float8_e5m2", "float8e5m2fnuz": "float8_e5m2fnuz", "uint4": "uint4", "int4": "int4",
    "float4e2m1": "float4_e2m1fn", "float8e8m0": "float8_e8m0fnu", "uint2": "uint2", "int2": "int2",
    "float6e2m3": "float6_e2m3fn", "float6e3m2": "float6_e3m2fn",
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


ORT_CONTAINERS = {"seq": "sequence", "optional": "optional", "map": "map"}


def from_ort_type(type_string: str) -> tuple[tuple[str, ...], str]:
    """ONNX Runtime's type string -> (containers outermost first, dtype), e.g.
    `optional(seq(tensor(float)))` -> (("optional", "sequence"), "float32")."""
    containers = []
    while True:
        kind, _, inner = type_string.partition("(")
        if kind not in ORT_CONTAINERS or not inner.endswith(")"):
            return tuple(containers), from_ort(type_string)
        containers.append(ORT_CONTAINERS[kind])
        type_string = inner[:-1].rpartition(",")[2] if kind == "map" else inner[:-1]


def from_trt(member: str) -> str:
    found = BY_TRT.get(member)
    return found.name if found else member


def numpy_dtype(name: str) -> np.dtype:
    import numpy as np

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


def from_numpy(dtype: np.dtype) -> str:
    """infertool's name of a numpy dtype: ml_dtypes' types by their ONNX names, text as string."""
    if dtype.kind in "OUS":
        return "string"
    return _BY_ML_DTYPE.get(dtype.name, dtype.name)


_BY_ML_DTYPE = {v: k for k, v in ML_DTYPES.items()}


def numpy_lacks(name: str) -> bool:
    """Whether numpy (and so ONNX Runtime's numpy interface) lacks the type: bfloat16, float8, int4..."""
    return name in ML_DTYPES


def widened(array: np.ndarray) -> np.ndarray:
    """The values of an ml_dtypes array in a type numpy computes with (float32, int8, uint8); others as they are."""
    import numpy as np

    name = from_numpy(array.dtype)
    if not numpy_lacks(name):
        return array
    return array.astype(np.float32 if is_float(name) else np.int8 if name.startswith("int") else np.uint8)


# stored two or four to a byte by ONNX (and ONNX Runtime); numpy's ml_dtypes takes a byte each
PACKED = ("uint4", "int4", "float4e2m1", "uint2", "int2")


def onnx_buffer(array: np.ndarray) -> np.ndarray:
    """Unsigned integers of `array`'s shape whose memory starts with its bytes as ONNX stores them
    (what ONNX Runtime reads for a type numpy lacks): a view where the layouts agree, else packed."""
    import numpy as np

    unsigned = np.dtype(f"u{array.dtype.itemsize}")
    array = np.asarray(array, order="C")  # keeps a scalar 0-d, where ascontiguousarray would make it 1-d
    if from_numpy(array.dtype) not in PACKED:
        return array.view(unsigned)
    from onnx import numpy_helper

    raw = numpy_helper.from_array(array).raw_data
    holder = np.zeros(array.shape, unsigned)
    holder.reshape(-1).view(np.uint8)[: len(raw)] = np.frombuffer(raw, np.uint8)
    return holder


def from_raw(data: bytes, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """An array of ONNX type `name` from its bytes as ONNX stores them."""
    import numpy as np

    if name not in PACKED:
        return np.frombuffer(data, dtype=numpy_dtype(name)).reshape(shape).copy()
    from onnx import TensorProto, numpy_helper

    return numpy_helper.to_array(TensorProto(dims=shape, data_type=BY_NAME[name].onnx, raw_data=data))
