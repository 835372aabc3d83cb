"""Arrays from .npy / .npz files, read without trusting them, and sizes checked before anything
is allocated: a damaged archive, a pickle or a header declaring terabytes gets one clear line."""

from __future__ import annotations

import math
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

import numpy as np

from infertool.errors import InfertoolError, first_line
from infertool.files import check_input
from infertool.tensors import MAX_RANK, format_shape
from infertool.text import shorten

HEADER_LIMIT = 10_000  # bytes of a .npy header (numpy's own default)
ARRAY_SHARE = 0.75  # of the available memory, what one array may take
ARCHIVE_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError)  # a damaged zip, seen while reading a member


def available_memory() -> int:
    """Bytes this process may still allocate: free memory, a cgroup limit, an address-space rlimit."""
    import resource

    import psutil

    found = [psutil.virtual_memory().available]
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit.isdecimal():
            found.append(int(limit) - int(Path("/sys/fs/cgroup/memory.current").read_text()))
    except (OSError, ValueError):
        pass
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        found.append(soft - psutil.Process().memory_info().vms)
    return max(0, min(found))


def human(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n:.3g} bytes"


def _check_shape(what: str, shape: Iterable[int]) -> tuple[int, ...]:
    dims = tuple(shape)
    if len(dims) > MAX_RANK:
        raise InfertoolError(f"{what} has rank {len(dims)}; arrays have {MAX_RANK} dimensions at most", hint="re-export the model or the data with fewer dimensions")
    if any(not isinstance(d, int) or d < 0 for d in dims):
        raise InfertoolError(f"{what} has shape {shorten(format_shape(dims))} with a negative dimension", hint="sizes are 0 or more: fix the model's or the file's shape")
    return dims


def check_size(what: str, shape: Iterable[int], dtype: np.dtype | str, hint: str = "use a smaller --batch or --input-shape") -> int:
    """The bytes an array of `shape` and `dtype` needs, refused when they exceed what is left of
    the memory once the runtime's share (its own copies, the outputs) is set aside."""
    dims = _check_shape(what, shape)
    itemsize = np.dtype(dtype).itemsize
    need = math.prod(dims) * itemsize
    free = available_memory()
    if need > free * ARRAY_SHARE:
        raise InfertoolError(
            f"{what} of shape {shorten(format_shape(dims))} ({np.dtype(dtype)}) would need {human(need)}; "
            f"{human(free)} of memory is available",
            hint=hint,
        )
    return need


def _read_npy(handle: BinaryIO, size: int, what: str, source: str) -> np.ndarray:
    """One .npy stream of `size` bytes: header checked, no pickles, the data bounded by the file."""
    readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
    try:
        shape, fortran, dtype = readers[np.lib.format.read_magic(handle)](handle, max_header_size=HEADER_LIMIT)
    except ARCHIVE_ERRORS:
        raise
    except Exception as exc:  # a format version of 3.0 (structured names in UTF-8) included  # ValueError, TokenError, UnicodeDecodeError, struct.error...
        raise InfertoolError(f"{what} is not a valid .npy array (its header is damaged)", hint=f"save {source} again with numpy", detail=first_line(exc)) from exc
    if dtype.hasobject:
        raise InfertoolError(f"{what} holds Python objects (a pickle), which infertool does not load", hint="save numeric arrays only")
    need = check_size(what, shape, dtype, hint=f"check how {source} was written")
    left = size - handle.tell()
    if need > left:
        raise InfertoolError(
            f"{what} declares shape {shorten(format_shape(shape))} ({dtype}, {human(need)}) but holds {human(max(0, left))}: the file is truncated",
            hint=f"save {source} again",
        )
    buffer = bytearray(need)
    if handle.readinto(buffer) != need:
        raise InfertoolError(f"{what} ends early: the file is truncated", hint=f"save {source} again")
    array = np.frombuffer(buffer, dtype=dtype)
    return array.reshape(shape[::-1]).T if fortran else array.reshape(shape)


def read_npy(path: Path) -> np.ndarray:
    size = check_input(path, "inputs", hint="give .npz, .npy, a .pb test-data dir, or images")
    try:
        with open(path, "rb") as handle:
            return _read_npy(handle, size, f"{shorten(path)}", path.name)
    except OSError as exc:
        raise InfertoolError(f"cannot read {shorten(path)}", hint="check the file", detail=first_line(exc)) from exc


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of an .npz archive, keyed as numpy keys them (the member name less `.npy`)."""
    check_input(path, "inputs", hint="give .npz, .npy, a .pb test-data dir, or images")
    arrays = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if not info.filename.endswith(".npy") or info.is_dir():
                    raise InfertoolError(
                        f"{shorten(path)} holds '{shorten(info.filename)}', which is not a .npy array",
                        hint="write the archive with numpy.savez",
                    )
                key = info.filename[: -len(".npy")]
                with archive.open(info) as member:
                    arrays[key] = _read_npy(member, info.file_size, f"array '{shorten(key)}' in {shorten(path)}", path.name)
    except (*ARCHIVE_ERRORS, NotImplementedError, ValueError, RuntimeError) as exc:
        raise InfertoolError(
            f"{shorten(path)} is not a readable .npz archive (damaged, truncated or encrypted)",
            hint="write it again with numpy.savez", detail=first_line(exc),
        ) from exc
    return arrays
