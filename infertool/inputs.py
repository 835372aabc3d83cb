"""Input feeds: generated (random, zeros) for now; files come with the bench issue."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from infertool.errors import InfertoolError
from infertool.specs import is_float, numpy_dtype

DEFAULT_INT_RANGE = (0, 100)


def parse_int_range(text: str) -> tuple[int, int]:
    low, sep, high = text.partition(":")
    try:
        bounds = (int(low), int(high))
    except ValueError:
        bounds = None
    if not sep or bounds is None or bounds[0] >= bounds[1]:
        raise InfertoolError(f"malformed --int-range '{text}'", hint="write LOW:HIGH with LOW < HIGH, e.g. 0:30522")
    return bounds


def generated_feeds(
    shapes: Mapping[str, tuple[int, ...]],
    dtypes: Mapping[str, str],
    seed: int = 0,
    int_range: tuple[int, int] = DEFAULT_INT_RANGE,
    zeros: bool = False,
) -> dict[str, np.ndarray]:
    """Seeded inputs: floats ~ N(0, 1), integers uniform in [low, high), booleans fair coins."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for name, shape in shapes.items():
        dtype = dtypes[name]
        target = numpy_dtype(dtype)
        if zeros:
            feeds[name] = np.zeros(shape, dtype=target)
        elif is_float(dtype):
            feeds[name] = rng.standard_normal(shape, dtype=np.float32).astype(target)
        elif dtype == "bool":
            feeds[name] = rng.integers(0, 2, size=shape).astype(bool)
        else:
            info = np.iinfo(target)
            low, high = max(int_range[0], info.min), min(int_range[1], info.max + 1)
            feeds[name] = rng.integers(low, high, size=shape, dtype=np.int64).astype(target)
    return feeds
