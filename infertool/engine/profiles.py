"""Optimization profiles in trtexec's vocabulary: --min-shapes / --opt-shapes / --max-shapes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from infertool.errors import InfertoolError
from infertool.specs import TensorSpec, check_names, format_shape, parse_named_shape, resolve_shapes

Shape = tuple[int, ...]


@dataclass(frozen=True)
class ShapeProfile:
    """name -> (min, opt, max) for every dynamic input."""

    shapes: dict[str, tuple[Shape, Shape, Shape]]

    def to_dict(self) -> dict:
        return {name: {"min": list(lo), "opt": list(opt), "max": list(hi)} for name, (lo, opt, hi) in self.shapes.items()}


def _parse_one(text: str, option: str) -> dict[str, Shape]:
    """`x:1x3x224x224,mask:1x128` (trtexec's form)."""
    shapes: dict[str, Shape] = {}
    for entry in text.split(","):
        name, dims = parse_named_shape(entry.strip(), option)
        if name is None:
            raise InfertoolError(f"{option} '{entry}' needs an input name", hint=f"write {option} name:1x3x224x224")
        shapes[name] = dims
    return shapes


def parse_profiles(mins: list[str], opts: list[str], maxs: list[str]) -> list[dict[str, tuple[Shape, Shape, Shape]]]:
    """The k-th --min-shapes, --opt-shapes and --max-shapes together make profile k."""
    if not (len(mins) == len(opts) == len(maxs)):
        raise InfertoolError(
            f"got {len(mins)} --min-shapes, {len(opts)} --opt-shapes and {len(maxs)} --max-shapes",
            hint="give the three together, once per optimization profile",
        )
    profiles = []
    for lo_text, opt_text, hi_text in zip(mins, opts, maxs):
        lo, opt, hi = (_parse_one(t, o) for t, o in ((lo_text, "--min-shapes"), (opt_text, "--opt-shapes"), (hi_text, "--max-shapes")))
        if not (lo.keys() == opt.keys() == hi.keys()):
            raise InfertoolError("--min-shapes, --opt-shapes and --max-shapes of one profile must name the same inputs")
        profile = {}
        for name in lo:
            if not (len(lo[name]) == len(opt[name]) == len(hi[name])) or not all(a <= b <= c for a, b, c in zip(lo[name], opt[name], hi[name])):
                raise InfertoolError(
                    f"profile for '{name}' needs min <= opt <= max in every dimension of equal rank "
                    f"(got {format_shape(lo[name])}, {format_shape(opt[name])}, {format_shape(hi[name])})"
                )
            profile[name] = (lo[name], opt[name], hi[name])
        profiles.append(profile)
    return profiles


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
