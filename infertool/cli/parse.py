"""All command-line text parsing: option strings in, typed values out, one-line errors."""

from __future__ import annotations

import re
from collections.abc import Iterable

from infertool.dtypes import ALIASES
from infertool.engine.profiles import check_bounds
from infertool.errors import InfertoolError
from infertool.measure.timing import Budget

Shape = tuple[int, ...]


def choice(value: str, choices: Iterable[str], option: str) -> str:
    choices = list(choices)
    if value not in choices:
        raise InfertoolError(f"unknown {option} '{value}'", hint=f"choose from {', '.join(choices)}")
    return value


def dims(text: str, what: str) -> Shape:
    text = text.strip()
    if text in ("", "scalar"):
        return ()
    found = []
    for part in text.replace(",", "x").split("x"):
        if not part.strip().isdigit() or int(part) <= 0:
            raise InfertoolError(f"malformed {what} '{text}': '{part}' is not a positive integer", hint="write dimensions as 1x3x224x224")
        found.append(int(part))
    return tuple(found)


def named_shape(text: str, option: str = "--input-shape") -> tuple[str | None, Shape]:
    """`name:1x3x224x224` -> ("name", (1, 3, 224, 224)); a bare `1x3x224x224` has no name.

    The name is everything before the last colon, so TensorFlow-style names (`x:0`) work.
    """
    name, sep, shape = text.rpartition(":")
    if sep and not name:
        raise InfertoolError(f"malformed {option} '{text}': empty input name", hint="write name:1x3x224x224")
    return (name if sep else None), dims(shape, f"{option} value")


def named_shapes(texts: Iterable[str], option: str = "--input-shape") -> dict[str | None, Shape]:
    shapes: dict[str | None, Shape] = {}
    for text in texts:
        name, shape = named_shape(text, option)
        if name in shapes:
            raise InfertoolError(f"{option} given twice for '{name or 'the input'}'")
        shapes[name] = shape
    if None in shapes and len(shapes) > 1:
        raise InfertoolError(f"{option}: name every shape when giving several", hint="write name:1x3x224x224")
    return shapes


def dtype(text: str) -> str:
    name = ALIASES.get(text.strip().lower())
    if name is None:
        raise InfertoolError(f"unknown dtype '{text}'", hint=f"use one of {', '.join(sorted(set(ALIASES.values())))}")
    return name


def named_dtypes(texts: Iterable[str]) -> dict[str | None, str]:
    """`--dtype int64` (every input) or `--dtype ids:int64` (one input)."""
    found: dict[str | None, str] = {}
    for text in texts:
        name, sep, value = text.rpartition(":")
        found[name if sep else None] = dtype(value)
    return found


def int_range(text: str) -> tuple[int, int]:
    low, sep, high = text.partition(":")
    try:
        bounds = (int(low), int(high))
    except ValueError:
        bounds = None
    if not sep or bounds is None or bounds[0] >= bounds[1]:
        raise InfertoolError(f"malformed --int-range '{text}'", hint="write LOW:HIGH with LOW < HIGH, e.g. 0:30522")
    return bounds


def size(text: str) -> int:
    """`4096` (MiB, as trtexec), `512M`, `4G`, `4GiB` -> bytes."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMG]i?B?)?\s*", text, re.IGNORECASE)
    if not match:
        raise InfertoolError(f"malformed size '{text}'", hint="e.g. 4096 (MiB), 512M or 4G")
    unit = (match.group(2) or "M")[0].upper()
    return int(float(match.group(1)) * {"K": 2**10, "M": 2**20, "G": 2**30}[unit])


def warmup(text: str) -> Budget:
    """`10` (iterations) or `200ms` / `2s` (time; at least 3 iterations)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s)?\s*", text)
    if not match:
        raise InfertoolError(f"malformed --warmup '{text}'", hint="give iterations (10) or a time (200ms, 2s)")
    value, unit = float(match.group(1)), match.group(2)
    if unit is None:
        if not value.is_integer():
            raise InfertoolError(f"--warmup {text}: iterations must be a whole number")
        return Budget(int(value), 0.0)
    return Budget(3, value / 1000 if unit == "ms" else value)


def regression(text: str) -> float:
    """`10%` or `10` -> 0.10."""
    try:
        value = float(text.strip().removesuffix("%"))
    except ValueError:
        value = -1.0
    if value < 0:
        raise InfertoolError(f"malformed --max-regression '{text}'", hint="give a percentage, e.g. 10%")
    return value / 100


def provider_options(texts: Iterable[str]) -> dict[str, str]:
    found = {}
    for text in texts:
        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            raise InfertoolError(f"malformed --ort-option '{text}'", hint="write key=value, e.g. prefer_nhwc=1")
        found[key.strip()] = value.strip()
    return found


def dynamic_axis(text: str) -> tuple[str, int, str]:
    """`name:index:label`, e.g. `input_ids:1:seq`."""
    parts = text.rsplit(":", 2)
    if len(parts) != 3 or not parts[0] or not parts[1].isdigit() or not parts[2].isidentifier():
        raise InfertoolError(
            f"malformed --dynamic-axis '{text}'",
            hint="write name:index:label, e.g. input_ids:1:seq (the label a Python identifier)",
        )
    return parts[0], int(parts[1]), parts[2]


def batches(text: str | None) -> tuple[int | None, ...]:
    if not text:
        return (None,)
    found = []
    for part in text.split(","):
        if not part.strip().isdigit() or int(part) < 1:
            raise InfertoolError(f"malformed --batch '{text}': '{part.strip()}' is not a batch size >= 1", hint="e.g. --batch 1,8,32")
        found.append(int(part))
    return tuple(dict.fromkeys(found))


def floats(text: str, option: str, count: int = 3) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != count:
        raise InfertoolError(f"malformed {option} '{text}'", hint="give three comma-separated numbers, e.g. 0.485,0.456,0.406")
    return values


def names(values: Iterable[str] | None) -> tuple[str, ...]:
    """Repeatable, comma-separated names -> one tuple."""
    return tuple(n.strip() for v in values or [] for n in v.split(",") if n.strip())


def _profile_entry(text: str, option: str) -> dict[str, Shape]:
    """`x:1x3x224x224,mask:1x128` (trtexec's form)."""
    shapes: dict[str, Shape] = {}
    for entry in text.split(","):
        name, shape = named_shape(entry.strip(), option)
        if name is None:
            raise InfertoolError(f"{option} '{entry}' needs an input name", hint=f"write {option} name:1x3x224x224")
        shapes[name] = shape
    return shapes


def profiles(mins: list[str], opts: list[str], maxs: list[str]) -> list[dict[str, tuple[Shape, Shape, Shape]]]:
    """The k-th --min-shapes, --opt-shapes and --max-shapes together make profile k."""
    if not (len(mins) == len(opts) == len(maxs)):
        raise InfertoolError(
            f"got {len(mins)} --min-shapes, {len(opts)} --opt-shapes and {len(maxs)} --max-shapes",
            hint="give the three together, once per optimization profile",
        )
    found = []
    for lo_text, opt_text, hi_text in zip(mins, opts, maxs):
        lo, opt, hi = (_profile_entry(t, o) for t, o in ((lo_text, "--min-shapes"), (opt_text, "--opt-shapes"), (hi_text, "--max-shapes")))
        if not (lo.keys() == opt.keys() == hi.keys()):
            raise InfertoolError("--min-shapes, --opt-shapes and --max-shapes of one profile must name the same inputs")
        for name in lo:
            check_bounds(name, lo[name], opt[name], hi[name])
        found.append({name: (lo[name], opt[name], hi[name]) for name in lo})
    return found


def seconds(text: str, option: str) -> float:
    """`60s`, `90`, `500ms`, `2m` -> seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*", text)
    if not match:
        raise InfertoolError(f"malformed {option} '{text}'", hint="give a time, e.g. 60s, 500ms or 2m")
    return float(match.group(1)) * {"ms": 1e-3, "s": 1.0, "m": 60.0, None: 1.0}[match.group(2)]
