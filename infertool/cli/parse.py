"""All command-line text parsing: option strings in, typed values out, one-line errors."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from infertool.engine.profiles import check_bounds
from infertool.errors import InfertoolError, first_line
from infertool.measure.timing import MAX_SECONDS, MAX_WARMUP, Budget
from infertool.tensors import MAX_DIM, MAX_RANK
from infertool.text import shorten

Shape = tuple[int, ...]
MAX_WORKSPACE = 2**40  # 1 TiB
MAX_SHARDS = 1_000_000
MAX_WAIT = 24 * 3600.0  # seconds: a time option past a day is a typo
MAX_DEVICES = 1024  # --devices: a count or an index
INT64 = (-(2**63), 2**63)
# generated input data, by name: the first is the default
GENERATORS = ("random", "zeros")


def whole(text: str) -> int | None:
    """An ASCII whole number (`²` and `٣` are digits to Python, not to a shape), else None."""
    text = text.strip()
    return int(text) if re.fullmatch(r"[0-9]{1,30}", text) else None


def choice(value: str, choices: Iterable[str], option: str) -> str:
    choices = list(choices)
    if value not in choices:
        raise InfertoolError(f"unknown {option} '{shorten(value)}'", hint=f"choose from {', '.join(choices)}")
    return value


def dims(text: str, what: str) -> Shape:
    text = text.strip()
    if text in ("", "scalar"):
        return ()
    found = []
    for part in text.replace(",", "x").split("x"):
        value = whole(part)
        if value is None or not 0 < value <= MAX_DIM:
            raise InfertoolError(
                f"malformed {what} '{shorten(text)}': '{shorten(part, 24)}' is not a whole number from 1 to {MAX_DIM:,}",
                hint="write dimensions as 1x3x224x224",
            )
        found.append(value)
    if len(found) > MAX_RANK:
        raise InfertoolError(f"{what} '{shorten(text)}' has {len(found)} dimensions; numpy arrays have {MAX_RANK} at most", hint="check the shape")
    return tuple(found)


def finite(value: float | None, option: str, low: float = 0.0, high: float = math.inf) -> float | None:
    """A float option that is a number in [low, high] (click lets nan through its ranges)."""
    if value is not None and not (math.isfinite(value) and low <= value <= high):
        bounds = f"from {low:g} to {high:g}" if math.isfinite(high) else f"of at least {low:g}" if math.isfinite(low) else "that is finite"
        raise InfertoolError(f"{option} {value}: give a number {bounds}", hint=f"e.g. {option} {max(low, min(high, 1.0)):g}")
    return value


def named_shape(text: str, option: str = "--input-shape") -> tuple[str | None, Shape]:
    """`name:1x3x224x224` -> ("name", (1, 3, 224, 224)); a bare `1x3x224x224` has no name.

    The name is everything before the last colon, so TensorFlow-style names (`x:0`) work.
    """
    name, sep, shape = text.rpartition(":")
    if sep and not name:
        raise InfertoolError(f"malformed {option} '{shorten(text)}': empty input name", hint="write name:1x3x224x224")
    return (name if sep else None), dims(shape, f"{option} value")


def shape_list(text: str, option: str = "--input-shape") -> tuple[str | None, list[Shape]]:
    """`ids:1x32,1x128` -> ("ids", [(1, 32), (1, 128)]): commas between shapes written with `x`
    make a sweep; `x:1,3,224,224` stays one shape."""
    body = text.rpartition(":")[2]
    parts = body.split(",")
    written_with_x = ["x" in part for part in parts]
    if len(parts) < 2 or not any(written_with_x):
        found, shape = named_shape(text, option)
        return found, [shape]
    if not all(written_with_x):
        raise InfertoolError(f"malformed {option} '{text}': it mixes shapes and dimensions", hint="write ids:1x32,1x128 for two shapes, ids:1x32 for one")
    found, first = named_shape(text[: len(text) - len(body)] + parts[0], option)
    return found, [first, *(dims(part, f"{option} value") for part in parts[1:])]


def shape_sweeps(texts: Iterable[str], option: str = "--input-shape") -> dict[str | None, list[Shape]]:
    """Every shape given per input; repeating the option for one input adds shapes."""
    shapes: dict[str | None, list[Shape]] = {}
    for text in texts:
        name, found = shape_list(text, option)
        shapes.setdefault(name, []).extend(found)
    if None in shapes and len(shapes) > 1:
        raise InfertoolError(f"{option}: name every shape when giving several", hint="write name:1x3x224x224")
    return shapes


def named_shapes(texts: Iterable[str], option: str = "--input-shape") -> dict[str | None, Shape]:
    """One shape per input."""
    shapes = shape_sweeps(texts, option)
    several = next((name for name, found in shapes.items() if len(found) > 1), False)
    if several is not False:
        raise InfertoolError(
            f"{option} gives several shapes for '{several or 'the input'}'",
            hint="give one NAME:DIMS per input here (only bench sweeps shapes)",
        )
    return {name: found[0] for name, found in shapes.items()}


def shape_sets(input_shapes: Iterable[str], sets: Iterable[str]) -> tuple[dict[str | None, Shape], ...]:
    """bench's shape sweep, one dict per row: `--shapes ids:1x32,mask:1x32` sets (trtexec's form,
    repeated), or the shapes of one input swept with `--input-shape ids:1x32,1x128` (inputs swept
    together are paired in order). Inputs given one shape keep it in every set; () means no sweep."""
    given = shape_sweeps(input_shapes)
    swept = {name: found for name, found in given.items() if len(found) > 1}
    fixed = {name: found[0] for name, found in given.items() if len(found) == 1}
    sets = list(sets)
    if sets and swept:
        raise InfertoolError("sweep shapes with --shapes or with --input-shape lists, not both", hint="e.g. --shapes ids:1x32,mask:1x32 --shapes ids:1x128,mask:1x128")
    if sets:
        return tuple({**fixed, **_profile_entry(text, "--shapes")} for text in sets)
    lengths = {len(found) for found in swept.values()}
    if len(lengths) > 1:
        raise InfertoolError(
            "--input-shape lists of different lengths: " + ", ".join(f"{name or 'input'} {len(found)}" for name, found in swept.items()),
            hint="give each swept input as many shapes, or one --shapes per set",
        )
    count = lengths.pop() if lengths else 0
    return tuple({**fixed, **{name: found[i] for name, found in swept.items()}} for i in range(count))


def data_source(text: str, option: str, generators: tuple[str, ...] = GENERATORS) -> tuple[Path | None, str]:
    """`PATH`, or the name of generated data: (path, generator)."""
    if text in GENERATORS:
        if text not in generators:
            raise InfertoolError(f"{option} {text} cannot work here", hint="give a PATH" + (f" or {' / '.join(generators)}" if generators else " of real inputs"))
        return None, text
    return Path(text), GENERATORS[0]


def data_file(text: str | None) -> str | None:
    """The file (or folder) of --inputs and the like; None for generated data."""
    return None if text is None or text in GENERATORS else text


def source_file(text: str) -> str:
    """The file a SOURCE names: itself, or the file of file.py:factory."""
    return text if os.path.lexists(text) else text.rpartition(":")[0]


def dtype(text: str) -> str:
    from infertool.dtypes import ALIASES  # numpy: not on --help's path

    name = ALIASES.get(text.strip().lower())
    if name is None:
        raise InfertoolError(f"unknown dtype '{shorten(text)}'", hint=f"use one of {', '.join(sorted(set(ALIASES.values())))}")
    return name


def named_dtypes(texts: Iterable[str]) -> dict[str | None, str]:
    """`--dtype int64` (every input) or `--dtype ids:int64` (one input)."""
    found: dict[str | None, str] = {}
    for text in texts:
        name, sep, value = text.rpartition(":")
        found[name if sep else None] = dtype(value)
    return found


def int_range(text: str) -> tuple[str | None, tuple[int, int]]:
    """`LOW:HIGH`, or `NAME:LOW:HIGH` for one input."""
    match = re.fullmatch(r"(?:(.+):)?\s*(-?[0-9]{1,20})\s*:\s*(-?[0-9]{1,20})\s*", text)
    bounds = (int(match.group(2)), int(match.group(3))) if match else None
    if bounds is None or not INT64[0] <= bounds[0] < bounds[1] <= INT64[1]:
        raise InfertoolError(
            f"malformed --int-range '{shorten(text)}'", hint="write [NAME:]LOW:HIGH with LOW < HIGH within int64, e.g. 0:30522 or attention_mask:0:2",
        )
    return match.group(1), bounds


def int_ranges(texts: Sequence[str]):
    """Repeated --int-range values: one LOW:HIGH for every integer input, and NAME:LOW:HIGH per input."""
    from infertool.inputs.generated import DEFAULT_INT_RANGE, IntRanges

    parsed = [int_range(text) for text in texts]
    defaults = [bounds for name, bounds in parsed if name is None]
    return IntRanges(defaults[-1] if defaults else DEFAULT_INT_RANGE, tuple((name, bounds) for name, bounds in parsed if name is not None))


def size(text: str) -> int:
    """`4096` (MiB, as trtexec), `512M`, `4G`, `4GiB` -> bytes."""
    match = re.fullmatch(r"\s*([0-9]{1,15}(?:\.[0-9]{1,6})?)\s*([KMG]i?B?)?\s*", text, re.IGNORECASE)
    value = int(float(match.group(1)) * {"K": 2**10, "M": 2**20, "G": 2**30}[(match.group(2) or "M")[0].upper()]) if match else 0
    if not 0 < value <= MAX_WORKSPACE:
        raise InfertoolError(f"malformed size '{shorten(text)}'", hint="from 1M to 1024G, e.g. 4096 (MiB), 512M or 4G")
    return value


def warmup(text: str) -> Budget:
    """`10` (iterations) or `200ms` / `2s` (time; at least 3 iterations)."""
    match = re.fullmatch(r"\s*([0-9]{1,12}(?:\.[0-9]{1,6})?)\s*(ms|s)?\s*", text)
    if not match:
        raise InfertoolError(f"malformed --warmup '{shorten(text)}'", hint="give iterations (10) or a time (200ms, 2s)")
    value, unit = float(match.group(1)), match.group(2)
    if unit is None:
        if not value.is_integer() or value > MAX_WARMUP:
            raise InfertoolError(f"--warmup {shorten(text)}: iterations must be a whole number up to {MAX_WARMUP:,}", hint="e.g. --warmup 10")
        return Budget(int(value), 0.0)
    seconds = value / 1000 if unit == "ms" else value
    if seconds > MAX_SECONDS:
        raise InfertoolError(f"--warmup {shorten(text)} is longer than {MAX_SECONDS:,} s", hint="a few seconds warm any runtime up, e.g. --warmup 2s")
    return Budget(3, seconds)


def percentage(text: str, option: str) -> float:
    """`10%` -> 0.10. The % sign is required: a bare 0.1 could mean 10 % or 0.1 %."""
    body = text.strip()
    try:
        value = float(body.removesuffix("%"))
    except ValueError:
        value = -1.0
    if not math.isfinite(value) or value < 0 or value > 1e6:  # nan, inf and negatives: a gate that cannot fail is no gate
        raise InfertoolError(f"malformed {option} '{shorten(text)}'", hint="give a percentage from 0 up, e.g. 10%")
    if not body.endswith("%"):
        raise InfertoolError(f"{option} {shorten(text)} is ambiguous", hint=f"write it with the % sign: {value * 100:g}% if you mean a fraction, {value:g}% if a percentage")
    return value / 100


def regression(text: str) -> float:
    """`10%` -> 0.10."""
    return percentage(text, "--max-regression")


def provider_options(texts: Iterable[str]) -> dict[str, str]:
    found = {}
    for text in texts:
        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            raise InfertoolError(f"malformed --ort-option '{shorten(text)}'", hint="write key=value, e.g. prefer_nhwc=1")
        found[key.strip()] = value.strip()
    return found


def dynamic_axis(text: str) -> tuple[str, int, str]:
    """`name:index:label`, e.g. `input_ids:1:seq`."""
    parts = text.rsplit(":", 2)
    if len(parts) != 3 or not parts[0] or whole(parts[1]) is None or whole(parts[1]) >= MAX_RANK or not parts[2].isidentifier():
        raise InfertoolError(
            f"malformed --dynamic-axis '{shorten(text)}'",
            hint="write name:index:label, e.g. input_ids:1:seq (the label a Python identifier)",
        )
    return parts[0], int(parts[1]), parts[2]


def batches(text: str | None) -> tuple[int | None, ...]:
    if not text:
        return (None,)
    found = []
    for part in text.split(","):
        value = whole(part)
        if value is None or not 0 < value <= MAX_DIM:
            raise InfertoolError(f"malformed --batch '{shorten(text)}': '{shorten(part.strip(), 24)}' is not a batch size >= 1 (and at most {MAX_DIM:,})", hint="e.g. --batch 1,8,32")
        found.append(value)
    return tuple(dict.fromkeys(found))


def floats(text: str, option: str, count: int = 3) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",")) if len(text) < 200 else ()
    except ValueError:
        values = ()
    if len(values) != count or not all(math.isfinite(v) for v in values) or (option == "--std" and 0 in values):
        raise InfertoolError(f"malformed {option} '{shorten(text)}'", hint="give three comma-separated numbers (a --std not 0), e.g. 0.485,0.456,0.406")
    return values


def names(values: Iterable[str] | None, unique: bool = True) -> tuple[str, ...]:
    """Repeatable, comma-separated names -> one tuple (without repeats where `unique`); `@FILE` reads
    names from FILE, one a line (blank lines and lines starting with `#` skipped), so a list
    `debug precision -o keep.txt` wrote can be fed back."""
    found: list[str] = []
    for value in values or []:
        found += _name_file(value[1:]) if value.startswith("@") else [n.strip() for n in value.split(",")]
    found = [n for n in found if n]
    return tuple(dict.fromkeys(found) if unique else found)


def _name_file(path: str) -> list[str]:
    if not path:
        raise InfertoolError("'@' needs a file name after it", hint="write @keep.txt")
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise InfertoolError(f"cannot read the name list {path}: {first_line(exc)}", hint="give a text file with one node name a line") from exc
    return [line.strip() for line in text.splitlines() if not line.strip().startswith("#")]


def _profile_entry(text: str, option: str) -> dict[str, Shape]:
    """`x:1x3x224x224,mask:1x128` (trtexec's form)."""
    shapes: dict[str, Shape] = {}
    for entry in text.split(","):
        name, shape = named_shape(entry.strip(), option)
        if name is None:
            raise InfertoolError(f"{option} '{shorten(entry)}' needs an input name", hint=f"write {option} name:1x3x224x224")
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
            raise InfertoolError("--min-shapes, --opt-shapes and --max-shapes of one profile must name the same inputs", hint="give each input in all three")
        for name in lo:
            check_bounds(name, lo[name], opt[name], hi[name])
        found.append({name: (lo[name], opt[name], hi[name]) for name in lo})
    return found


def compute_capabilities(text: str) -> tuple[str, ...]:
    """`8.6,8.9,12.0` or `sm86,sm_89,sm120` -> ("8.6", "8.9", "12.0"); `current` is kept (this GPU's)."""
    found = []
    for part in text.split(","):
        item = part.strip().lower()
        match = re.fullmatch(r"(?:sm_?)?(\d+)(?:\.(\d+))?", item)
        if item == "current":
            found.append(item)
        elif match and (match.group(2) is not None or len(match.group(1)) >= 2):
            major, minor = match.groups() if match.group(2) is not None else (match.group(1)[:-1], match.group(1)[-1])
            found.append(f"{int(major)}.{int(minor)}")
        else:
            raise InfertoolError(f"malformed --compute-capability '{part.strip()}'", hint="write 8.6,8.9,12.0 (or sm86,sm89,sm120, or current)")
    return tuple(dict.fromkeys(found))
def shard(text: str, source: str = "--shard") -> tuple[int, int]:
    """`i/N` -> (i, N), 0 <= i < N."""
    index_text, sep, count_text = text.strip().partition("/")
    index, count = whole(index_text), whole(count_text)
    if not sep or index is None or count is None or not 0 <= index < count <= MAX_SHARDS:
        raise InfertoolError(f"malformed {source} '{shorten(text, 40)}'", hint=f"write i/N with 0 <= i < N <= {MAX_SHARDS:,}, e.g. 0/4")
    return index, count


def devices(text: str) -> tuple[str, ...]:
    """`--devices 4` (devices 0 to 3) or `--devices 0,2` (those)."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    numbers = [whole(p) for p in parts]
    if not parts or None in numbers or max(numbers) > MAX_DEVICES or (len(parts) == 1 and "," not in text and numbers[0] < 1):
        raise InfertoolError(f"malformed --devices '{shorten(text, 40)}'", hint=f"give a count (4) or device indices (0,2), up to {MAX_DEVICES}")
    if "," not in text:
        return tuple(str(i) for i in range(int(parts[0])))
    return tuple(dict.fromkeys(parts))


def seconds(text: str, option: str, high: float = MAX_WAIT) -> float:
    """`60s`, `90`, `500ms`, `2m` -> seconds, at most `high`."""
    match = re.fullmatch(r"\s*([0-9]{1,12}(?:\.[0-9]{1,12})?)\s*(ms|s|m)?\s*", text)
    value = float(match.group(1)) * {"ms": 1e-3, "s": 1.0, "m": 60.0, None: 1.0}[match.group(2)] if match else math.nan
    if not value <= high:
        raise InfertoolError(f"malformed {option} '{shorten(text, 40)}'", hint=f"give a time up to {high / 3600:g} h, e.g. 60s, 500ms or 2m")
    return value
