"""Generated inputs: seeded random or zero tensors, integers in named ranges."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from infertool.dtypes import is_float, numpy_dtype, numpy_lacks
from infertool.errors import InfertoolError
from infertool.inputs.arrays import check_size
from infertool.tensors import TensorSpec

DEFAULT_INT_RANGE = (0, 100)
# generated integer inputs whose name says what they hold: (name pattern, [low, high), what it is)
NAMED_INT_RANGES = (
    (re.compile(r"mask", re.I), (1, 2), "a mask: ones"),
    (re.compile(r"token_?type|segment", re.I), (0, 2), "token types"),
    (re.compile(r"^(sr|sample_?rate|sampling_?rate)$", re.I), (16000, 16001), "a sample rate"),
)


@dataclass(frozen=True)
class IntRanges:
    """[low, high) of generated integer inputs: the one given for an input by name, else what its
    name says it holds (masks, token types, sample rates), else the default (token ids)."""

    default: tuple[int, int] = DEFAULT_INT_RANGE
    given: tuple[tuple[str, tuple[int, int]], ...] = ()  # (input name, range) from --int-range NAME:LOW:HIGH

    def of(self, name: str) -> tuple[tuple[int, int], str]:
        """The range for input `name`, and why (empty for the default)."""
        for given, bounds in self.given:
            if given == name:
                return bounds, "--int-range"
        for pattern, bounds, what in NAMED_INT_RANGES:
            if pattern.search(name):
                return bounds, what
        return self.default, ""

    def describe(self, name: str, dtype: str) -> str:
        (low, high), why = self.of(name)
        values = f"{low}" if high == low + 1 else f"uniform {low}..{high - 1}"
        return f"{dtype} {values}" + (f" ({why})" if why else "")

    def to_dict(self) -> dict:
        return {"default": list(self.default), "inputs": {n: list(r) for n, r in self.given}}


def generated_feeds(
    shapes: Mapping[str, tuple[int, ...]],
    dtypes: Mapping[str, str],
    seed: int = 0,
    int_range: IntRanges = IntRanges(),
    zeros: bool = False,
    specs: Mapping[str, TensorSpec] | None = None,
) -> dict[str, Any]:
    """Seeded inputs: floats ~ N(0, 1), integers uniform in [low, high), booleans fair coins,
    strings the decimal text of such integers; a sequence holds one such tensor, an optional one is present."""
    rng = np.random.default_rng(seed)
    feeds: dict[str, Any] = {}
    need = sum(check_size(f"input '{n}'", shape, numpy_dtype(dtypes[n])) for n, shape in shapes.items())
    check_size("the generated inputs together", (need,), np.uint8)
    for name, shape in shapes.items():
        value = _generated(rng, dtypes[name], shape, int_range.of(name)[0], zeros)
        container = specs[name].container if specs and name in specs else ()
        for kind in reversed(container):
            if kind == "sequence":
                value = [value]
            elif kind != "optional":
                raise InfertoolError(f"input '{name}' is a {specs[name].type_name}: infertool cannot generate or feed maps", hint="run the model from Python")
        feeds[name] = value
    return feeds


def _generated(rng: np.random.Generator, dtype: str, shape: tuple[int, ...], int_range: tuple[int, int], zeros: bool) -> np.ndarray:
    target = numpy_dtype(dtype)
    if dtype == "string":
        return np.full(shape, "", dtype=object) if zeros else rng.integers(*int_range, size=shape).astype(str).astype(object)
    if zeros:
        return np.zeros(shape, dtype=target)
    if is_float(dtype):
        return rng.standard_normal(shape, dtype=np.float32).astype(target)
    if dtype.startswith("complex"):
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(target)
    if dtype == "bool":
        return rng.integers(0, 2, size=shape).astype(bool)
    if numpy_lacks(dtype):
        import ml_dtypes

        info = ml_dtypes.iinfo(target)
    else:
        info = np.iinfo(target)
    low, high = max(int_range[0], int(info.min)), min(int_range[1], int(info.max) + 1)
    return rng.integers(low, high, size=shape, dtype=np.int64).astype(target)
