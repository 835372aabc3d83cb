"""Tensor specs and concrete shapes for them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from infertool.errors import InfertoolError
from infertool.text import listing

Dim = int | str | None  # a size, a symbolic name, or unknown
MAX_DIM = 2**31 - 1  # one dimension: what TensorRT and most kernels index with int32
MAX_RANK = 64  # numpy's limit on dimensions


@dataclass(frozen=True)
class TensorSpec:
    """A model input or output: a tensor, or tensors in containers (`container`, outermost first:
    ("sequence",) is a list of tensors, ("optional",) a tensor or None); `dtype` and `shape` are
    the tensors'. `ranked` is False where even the rank is unknown (shape is then ())."""

    name: str
    dtype: str
    shape: tuple[Dim, ...]
    container: tuple[str, ...] = ()
    ranked: bool = True

    @property
    def dynamic_axes(self) -> list[int]:
        return [i for i, d in enumerate(self.shape) if not isinstance(d, int)]

    @property
    def is_tensor(self) -> bool:
        return not self.container

    @property
    def type_name(self) -> str:
        """`float32`, or with its containers, e.g. `optional(sequence(float32))`."""
        text = self.dtype
        for kind in reversed(self.container):
            text = f"{kind}({text})"
        return text

    def to_dict(self) -> dict:
        found = {"name": self.name, "dtype": self.dtype, "shape": list(self.shape) if self.ranked else None}
        return {**found, "container": list(self.container)} if self.container else found


def format_shape(shape: Iterable[Dim]) -> str:
    return "x".join("?" if d is None else str(d) for d in shape) or "scalar"


def input_dtypes(given: Mapping[str | None, str], names: list[str], default: str = "float32") -> dict[str, str]:
    """Per-input dtypes from `--dtype` values: an unnamed one applies to every input."""
    check_names(given, names)
    return {name: given.get(name, given.get(None, default)) for name in names}


def check_names(given: Iterable[str | None], known: list[str], what: str = "input") -> None:
    unknown = [n for n in given if n is not None and n not in known]
    if unknown:
        raise InfertoolError(
            f"unknown {what} name{'s' if len(unknown) > 1 else ''} {listing([repr(n) for n in unknown])}",
            hint=f"the model's {what}s are: {listing(known) or '(none)'}",
        )


def bind_unnamed(shapes: Mapping[str | None, tuple[int, ...]], names: list[str], option: str) -> dict:
    """Give an unnamed value to the model's only input; check every name exists."""
    if None in shapes:
        if len(names) != 1:
            raise InfertoolError(
                f"{option} without a name is ambiguous: the model has inputs {listing(names)}",
                hint=f"write {option} name:...",
            )
        return {names[0]: shapes[None]}
    check_names(shapes, names)
    return dict(shapes)


ANONYMOUS = ("", "?")  # dimension names that name nothing: exporters (paddle2onnx) write '?' for every unknown size


def _symbols(specs: list[TensorSpec], overrides: Mapping[str, tuple[int, ...]], batch: int | None) -> dict[str, tuple[str, int]]:
    """The size each symbolic dimension gets from the overrides (and which input gave it); inputs
    sharing a dimension must agree on it."""
    symbols: dict[str, tuple[str, int]] = {}
    for spec in specs:
        shape = overrides.get(spec.name)
        if shape is None:
            continue
        if spec.ranked and len(shape) != len(spec.shape):
            raise InfertoolError(
                f"input '{spec.name}' has rank {len(spec.shape)} ({format_shape(spec.shape)}), "
                f"but the shape given has rank {len(shape)} ({format_shape(shape)})",
                hint=f"give {len(spec.shape)} dimensions",
            )
        for axis, (want, got) in enumerate(zip(spec.shape, shape)):
            if isinstance(want, int) and want != got:
                raise InfertoolError(
                    f"input '{spec.name}' has fixed size {want} at axis {axis}, not {got}",
                    hint=f"the model expects {format_shape(spec.shape)}",
                )
            if isinstance(want, str) and want not in ANONYMOUS and not (axis == 0 and batch is not None):
                first = symbols.setdefault(want, (spec.name, got))
                if first[1] != got:
                    raise InfertoolError(
                        f"{first[0]} and {spec.name} share the axis '{want}' but were given {first[1]} and {got}",
                        hint=f"give both the same size at '{want}'",
                    )
    return symbols


def resolve_shapes(
    specs: list[TensorSpec], overrides: Mapping[str, tuple[int, ...]], batch: int | None = None
) -> dict[str, tuple[int, ...]]:
    """Concrete shapes for every input: user overrides first, then `batch` for a dynamic axis 0.

    A symbolic dimension fixed by one override (say `seq`) applies to every input that shares it.
    With `batch` set, it replaces axis 0 of every input whose axis 0 is dynamic, overrides included.
    """
    check_names(overrides, [s.name for s in specs])
    symbols = _symbols(specs, overrides, batch)
    resolved = {}
    for spec in specs:
        given = overrides.get(spec.name)
        if not spec.ranked:
            if given is None:
                raise InfertoolError(f"input '{spec.name}' ({spec.type_name}) has no known rank", hint=f"give its shape with --input-shape {spec.name}:DIMS")
            resolved[spec.name] = tuple(given)
            continue
        dims = []
        for axis, want in enumerate(spec.shape):
            if axis == 0 and batch is not None and not isinstance(want, int):
                dims.append(batch)
            elif given is not None:
                dims.append(given[axis])
            elif isinstance(want, int):
                dims.append(want)
            elif isinstance(want, str) and want in symbols:
                dims.append(symbols[want][1])
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
