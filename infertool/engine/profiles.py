"""Optimization profiles (trtexec's min / opt / max shapes), checked against the model."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from infertool.errors import InfertoolError
from infertool.tensors import TensorSpec, check_names, format_shape, resolve_shapes

Shape = tuple[int, ...]


@dataclass(frozen=True)
class ShapeProfile:
    """name -> (min, opt, max) for every dynamic input."""

    shapes: dict[str, tuple[Shape, Shape, Shape]]

    def to_dict(self) -> dict:
        return {name: {"min": list(lo), "opt": list(opt), "max": list(hi)} for name, (lo, opt, hi) in self.shapes.items()}


def check_bounds(name: str, lo: Shape, opt: Shape, hi: Shape) -> None:
    """min <= opt <= max in every dimension, at one rank."""
    if not (len(lo) == len(opt) == len(hi)) or not all(a <= b <= c for a, b, c in zip(lo, opt, hi)):
        raise InfertoolError(
            f"profile for '{name}' needs min <= opt <= max in every dimension of equal rank "
            f"(got {format_shape(lo)}, {format_shape(opt)}, {format_shape(hi)})",
            hint=f"e.g. --min-shapes {name}:1x3 --opt-shapes {name}:4x3 --max-shapes {name}:8x3, one entry per input",
        )


def resolve_profiles(
    specs: list[TensorSpec], given: list[dict[str, tuple[Shape, Shape, Shape]]],
    shapes: Mapping[str, Shape], batch: int | None, notes: list[str],
) -> list[ShapeProfile]:
    """Check the profiles against the model; derive entries for dynamic inputs nobody described."""
    names = [s.name for s in specs]
    for profile in given:
        check_names(profile, names)
    dynamic = [s for s in specs if s.dynamic_axes]
    profiles = []
    for profile in given or [{}]:
        resolved = {}
        for spec in dynamic:
            if spec.name in profile:
                lo, opt, hi = profile[spec.name]
                for bound in (lo, hi):
                    resolve_shapes([spec], {spec.name: bound})  # rank and fixed dims must match the model
                resolved[spec.name] = (lo, opt, hi)
                continue
            concrete = resolve_shapes([spec], {k: v for k, v in shapes.items() if k == spec.name}, batch or 1)[spec.name]
            minimum = tuple(1 if axis == 0 and not isinstance(spec.shape[0], int) else d for axis, d in enumerate(concrete))
            resolved[spec.name] = (minimum, concrete, concrete)
            notes.append(
                f"input '{spec.name}' ({format_shape(spec.shape)}) had no profile: built min {format_shape(minimum)}, "
                f"opt/max {format_shape(concrete)} from --batch {batch or 1}; set --min-shapes/--opt-shapes/--max-shapes to choose"
            )
        profiles.append(ShapeProfile(resolved))
    return profiles
