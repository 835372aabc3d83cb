"""Tensor specs, dtypes and the shape strings users type (`name:1x3x224x224`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from infertool.errors import InfertoolError

Dim = int | str | None  # a size, a symbolic name, or unknown

_DTYPE_ALIASES = {
    "fp32": "float32", "float": "float32", "float32": "float32",
    "fp16": "float16", "half": "float16", "float16": "float16",
    "bf16": "bfloat16", "bfloat16": "bfloat16",
    "fp64": "float64", "double": "float64", "float64": "float64",
    "int8": "int8", "uint8": "uint8", "int16": "int16", "uint16": "uint16",
    "int32": "int32", "uint32": "uint32", "int64": "int64", "uint64": "uint64",
    "bool": "bool",
}

# ONNX TensorProto element type -> dtype name
ONNX_DTYPES = {
    1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64",
    9: "bool", 10: "float16", 11: "float64", 12: "uint32", 13: "uint64", 16: "bfloat16",
    17: "float8e4m3fn", 19: "float8e5m2",
}

# ONNX Runtime's type strings ("tensor(float)") -> dtype name
ORT_DTYPES = {
    "tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
    "tensor(bfloat16)": "bfloat16", "tensor(int8)": "int8", "tensor(uint8)": "uint8",
    "tensor(int16)": "int16", "tensor(uint16)": "uint16", "tensor(int32)": "int32",
    "tensor(uint32)": "uint32", "tensor(int64)": "int64", "tensor(uint64)": "uint64",
    "tensor(bool)": "bool",
}


def parse_dtype(text: str) -> str:
    name = _DTYPE_ALIASES.get(text.strip().lower())
    if name is None:
        raise InfertoolError(
            f"unknown dtype '{text}'", hint=f"use one of {', '.join(sorted(set(_DTYPE_ALIASES.values())))}"
        )
    return name


def numpy_dtype(name: str) -> np.dtype:
    if name == "bfloat16":
        import ml_dtypes  # shipped with onnx's and tensorflow's dependencies

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def is_float(dtype: str) -> bool:
    return dtype.startswith(("float", "bfloat"))


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str
    shape: tuple[Dim, ...]

    @property
    def dynamic_axes(self) -> list[int]:
        return [i for i, d in enumerate(self.shape) if not isinstance(d, int)]

    def to_dict(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}


def format_shape(shape: Iterable[Dim]) -> str:
    return "x".join("?" if d is None else str(d) for d in shape) or "scalar"


def parse_dims(text: str, what: str) -> tuple[int, ...]:
    text = text.strip()
    if text in ("", "scalar"):
        return ()
    dims = []
    for part in text.replace(",", "x").split("x"):
        if not part.strip().isdigit() or int(part) <= 0:
            raise InfertoolError(
                f"malformed {what} '{text}': '{part}' is not a positive integer",
                hint="write dimensions as 1x3x224x224",
            )
        dims.append(int(part))
    return tuple(dims)


def parse_named_shape(text: str, option: str = "--input-shape") -> tuple[str | None, tuple[int, ...]]:
    """`name:1x3x224x224` -> ("name", (1, 3, 224, 224)); a bare `1x3x224x224` has no name.

    The name is everything before the last colon, so TensorFlow-style names (`x:0`) work.
    """
    name, sep, dims = text.rpartition(":")
    if sep and not name:
        raise InfertoolError(f"malformed {option} '{text}': empty input name", hint="write name:1x3x224x224")
    return (name if sep else None), parse_dims(dims, f"{option} value")


def parse_named_shapes(texts: Iterable[str], option: str = "--input-shape") -> dict[str | None, tuple[int, ...]]:
    shapes: dict[str | None, tuple[int, ...]] = {}
    for text in texts:
        name, dims = parse_named_shape(text, option)
        if name in shapes:
            raise InfertoolError(f"{option} given twice for '{name or 'the input'}'")
        shapes[name] = dims
    if None in shapes and len(shapes) > 1:
        raise InfertoolError(f"{option}: name every shape when giving several", hint="write name:1x3x224x224")
    return shapes


def parse_named_dtypes(texts: Iterable[str]) -> dict[str | None, str]:
    """`--dtype int64` (every input) or `--dtype ids:int64` (one input)."""
    dtypes: dict[str | None, str] = {}
    for text in texts:
        name, sep, dtype = text.rpartition(":")
        dtypes[name if sep else None] = parse_dtype(dtype)
    return dtypes


def input_dtypes(given: Mapping[str | None, str], names: list[str], default: str = "float32") -> dict[str, str]:
    """Per-input dtypes from `--dtype` values: an unnamed one applies to every input."""
    check_names(given, names)
    return {name: given.get(name, given.get(None, default)) for name in names}


def check_names(given: Iterable[str | None], known: list[str], what: str = "input") -> None:
    unknown = [n for n in given if n is not None and n not in known]
    if unknown:
        raise InfertoolError(
            f"unknown {what} name{'s' if len(unknown) > 1 else ''} {', '.join(repr(n) for n in unknown)}",
            hint=f"the model's {what}s are: {', '.join(known) or '(none)'}",
        )


def bind_unnamed(shapes: Mapping[str | None, tuple[int, ...]], names: list[str], option: str) -> dict:
    """Give an unnamed value to the model's only input; check every name exists."""
    if None in shapes:
        if len(names) != 1:
            raise InfertoolError(
                f"{option} without a name is ambiguous: the model has inputs {', '.join(names)}",
                hint=f"write {option} name:...",
            )
        return {names[0]: shapes[None]}
    check_names(shapes, names)
    return dict(shapes)


def resolve_shapes(
    specs: list[TensorSpec], overrides: Mapping[str, tuple[int, ...]], batch: int | None = None
) -> dict[str, tuple[int, ...]]:
    """Concrete shapes for every input: user overrides first, then `batch` for a dynamic axis 0.

    A symbolic dimension fixed by one override (say `seq`) applies to every input that shares it.
    With `batch` set, it replaces axis 0 of every input whose axis 0 is dynamic, overrides included.
    """
    check_names(overrides, [s.name for s in specs])
    symbols: dict[str, int] = {}
    for spec in specs:
        shape = overrides.get(spec.name)
        if shape is None:
            continue
        if len(shape) != len(spec.shape):
            raise InfertoolError(
                f"input '{spec.name}' has rank {len(spec.shape)} ({format_shape(spec.shape)}), "
                f"but the shape given has rank {len(shape)} ({format_shape(shape)})"
            )
        for axis, (want, got) in enumerate(zip(spec.shape, shape)):
            if isinstance(want, int) and want != got:
                raise InfertoolError(
                    f"input '{spec.name}' has fixed size {want} at axis {axis}, not {got}",
                    hint=f"the model expects {format_shape(spec.shape)}",
                )
            if isinstance(want, str) and not (axis == 0 and batch is not None):
                symbols.setdefault(want, got)
    resolved = {}
    for spec in specs:
        given = overrides.get(spec.name)
        dims = []
        for axis, want in enumerate(spec.shape):
            if axis == 0 and batch is not None and not isinstance(want, int):
                dims.append(batch)
            elif given is not None:
                dims.append(given[axis])
            elif isinstance(want, int):
                dims.append(want)
            elif isinstance(want, str) and want in symbols:
                dims.append(symbols[want])
            elif axis == 0:
                dims.append(1)
            else:
                raise InfertoolError(
                    f"input '{spec.name}' has a dynamic dimension '{want or '?'}' at axis {axis} "
                    f"({format_shape(spec.shape)})",
                    hint=f"give its size with --input-shape {spec.name}:{format_shape(_example(spec.shape))}",
                )
        resolved[spec.name] = tuple(dims)
    return resolved


def _example(shape: tuple[Dim, ...]) -> tuple[Dim, ...]:
    return tuple(d if isinstance(d, int) else ("N" if i else 1) for i, d in enumerate(shape))
