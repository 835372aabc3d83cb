"""User inputs as the model takes them: checked names, types and shapes; batches cut and fitted."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from infertool.dtypes import from_numpy, numpy_dtype, numpy_lacks, widened
from infertool.errors import InfertoolError
from infertool.inputs.arrays import check_size
from infertool.inputs.tensor_files import as_text
from infertool.tensors import TensorSpec, check_names, format_shape
from infertool.text import listing, shorten


def check_feeds(feeds: Mapping[str, Any], specs: list[TensorSpec], source: str) -> dict[str, Any]:
    """User-given inputs as the model takes them: names, dtypes and fixed dimensions must match.

    Text becomes string arrays; float or integer arrays for a type numpy lacks (bfloat16, float8,
    int4: .npz cannot hold those) are cast when every value survives the cast exactly."""
    names = [s.name for s in specs]
    check_names(feeds, names)
    missing = [n for n in names if n not in feeds]
    if missing:
        raise InfertoolError(f"{shorten(source)} lacks input{'s' if len(missing) > 1 else ''} {listing(missing)}", hint=f"the model's inputs are: {listing(names)}")
    return {spec.name: _conform(feeds[spec.name], spec, spec.container, source) for spec in specs}


def _conform(value: Any, spec: TensorSpec, container: tuple[str, ...], source: str) -> Any:
    kind = container[0] if container else "tensor"
    if kind == "optional":
        return None if value is None else _conform(value, spec, container[1:], source)
    if kind == "sequence":
        if not isinstance(value, list):
            raise InfertoolError(f"input '{spec.name}' in {source} is one array, the model wants a {spec.type_name}", hint="give a test-data dir whose input_K.pb is a SequenceProto")
        return [_conform(v, spec, container[1:], source) for v in value]
    if kind != "tensor" or not isinstance(value, np.ndarray):
        raise InfertoolError(f"input '{spec.name}' in {source} is a {type(value).__name__}, the model wants a {spec.type_name}", hint="infertool feeds tensors, sequences and optionals")
    array = _typed(value, spec, source)
    if array.ndim and array.shape[0] == 0 and not (spec.ranked and spec.shape and spec.shape[0] == 0):  # unless the model asks for none
        raise InfertoolError(f"input '{shorten(spec.name)}' in {shorten(source)} holds no samples (shape {format_shape(array.shape)})", hint="give at least one sample")
    fixed_ok = not spec.ranked or (len(array.shape) == len(spec.shape) and all(
        not isinstance(want, int) or want == got for want, got in zip(spec.shape, array.shape)
    ))
    if not fixed_ok:
        raise InfertoolError(
            f"input '{shorten(spec.name)}' in {shorten(source)} has shape {shorten(format_shape(array.shape))}, "
            f"the model wants {shorten(format_shape(spec.shape))}",
            hint="save the input in the model's shape (dynamic dimensions may take any size)",
        )
    return array


def _typed(array: np.ndarray, spec: TensorSpec, source: str) -> np.ndarray:
    given, wanted = from_numpy(array.dtype), numpy_dtype(spec.dtype)
    if array.dtype == wanted:
        return array
    if spec.dtype == "string" and given == "string":
        return np.vectorize(as_text, otypes=[object])(array) if array.size else array.astype(object)
    if numpy_lacks(spec.dtype) and array.dtype.kind in "biuf":
        cast = array.astype(wanted)
        if np.array_equal(widened(cast).astype(np.float64), array.astype(np.float64), equal_nan=True):
            return cast
        raise InfertoolError(f"input '{spec.name}' in {source} holds {given} values that {spec.dtype} cannot represent exactly", hint=f"round them to {spec.dtype} first")
    raise InfertoolError(
        f"input '{spec.name}' in {source} is {given}, the model wants {spec.dtype}",
        hint=f"save it as {spec.dtype} (e.g. array.astype('{spec.dtype}'))",
    )


def value_shape(value: Any) -> list | None:
    """A feed's shape for reports: a tensor's dims, a list of them for a sequence, None for an absent optional."""
    if value is None:
        return None
    if isinstance(value, list):
        return [value_shape(v) for v in value]
    return list(np.shape(value))


def fit_batch(feeds: Mapping[str, np.ndarray], specs: list[TensorSpec], batch: int) -> dict[str, np.ndarray]:
    """Repeat or cut user inputs along a dynamic axis 0 to `batch` rows."""
    fitted = {}
    for spec in specs:
        array = feeds[spec.name]
        if not spec.is_tensor:
            fitted[spec.name] = array
            continue
        if spec.shape and not isinstance(spec.shape[0], int) and array.shape[0] != batch:
            check_size(f"input '{spec.name}' at batch {batch}", (batch, *array.shape[1:]), array.dtype)
            reps = -(-batch // array.shape[0])
            array = np.concatenate([array] * reps)[:batch] if reps > 1 else array[:batch]
        fitted[spec.name] = np.ascontiguousarray(array) if array.ndim else array  # ascontiguousarray makes a scalar 1-D
    return fitted


def sample_count(feeds: Mapping[str, np.ndarray]) -> int:
    """Samples stacked along axis 0; a model without batched inputs (none, or scalars such as a
    sample rate) has one."""
    return min((a.shape[0] for a in feeds.values() if isinstance(a, np.ndarray) and a.ndim), default=1)


def split_batches(feeds: Mapping[str, np.ndarray], specs: list[TensorSpec], size: int) -> list[dict[str, np.ndarray]]:
    """Cut stacked samples into batches of `size` rows (the last may be short), or of the model's
    fixed batch (repeating samples to fill one, dropping a remainder). The fixed batch is the first
    input's (a later input's fixed axis 0, e.g. [2, batch, 128], is no batch); scalars go whole."""
    count = sample_count(feeds)
    if not any(isinstance(a, np.ndarray) and a.ndim for a in feeds.values()):
        return [dict(feeds)]
    first = next((s for s in specs if s.shape), None)
    fixed = first.shape[0] if first is not None and isinstance(first.shape[0], int) else None
    if fixed is not None and count < fixed:
        feeds = {n: np.concatenate([a] * -(-fixed // count))[:fixed] if a.ndim else a for n, a in feeds.items()}
        count = fixed
    step = fixed or size
    stop = count - count % step if fixed else count
    return [{n: np.ascontiguousarray(a[i : i + step]) if a.ndim else a for n, a in feeds.items()} for i in range(0, stop, step)]
