"""Output files: never overwrite without --force, never leave a partial file behind."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from infertool.errors import InfertoolError


def cache_root() -> Path:
    """infertool's cache folder: $INFERTOOL_CACHE_DIR, else $XDG_CACHE_HOME/infertool, else ~/.cache/infertool."""
    root = os.environ.get("INFERTOOL_CACHE_DIR") or os.path.join(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "infertool")
    return Path(root)


def check_output(path: Path, force: bool, *companions: Path, directory: bool = False) -> None:
    """Refuse an existing output (or companion file such as external data) unless forced."""
    for target in (path, *companions):
        if target.is_dir() and not directory:
            raise InfertoolError(f"output path {target} is a directory", hint="give a file path")
        if target.exists() and not force:
            raise InfertoolError(f"{target} already exists", hint="pass --force to overwrite it")


def _existing_ancestor(path: Path) -> Path:
    parent = path.resolve().parent
    while not parent.exists():
        parent = parent.parent
    return parent


@contextlib.contextmanager
def staged_output(path: Path, force: bool, directory: bool = False) -> Iterator[Path]:
    """Yield a staging directory on the output's file system.

    Files written there are moved next to `path` when the block succeeds (`path`'s own
    file last, so a reader never sees it before its companions); on failure nothing is left.
    With `directory`, `path` is a folder written as `staging / path.name`.
    """
    check_output(path, force, directory=directory)
    staging = Path(tempfile.mkdtemp(prefix=".infertool-", dir=_existing_ancestor(path)))
    try:
        yield staging
        produced = sorted(staging.iterdir(), key=lambda p: p.name == path.name)
        check_output(path, force, *(path.parent / p.name for p in produced), directory=directory)
        path.parent.mkdir(parents=True, exist_ok=True)
        for item in produced:
            target = path.parent / item.name
            if item.is_dir() and target.is_dir():
                shutil.rmtree(target)
            os.replace(item, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write_bytes_atomic(path: Path, data: bytes, force: bool) -> None:
    with staged_output(path, force) as staging:
        (staging / path.name).write_bytes(data)


def write_text_atomic(path: Path, text: str, force: bool) -> None:
    write_bytes_atomic(path, text.encode(), force)


def file_sha256(path: Path) -> str:
    """The file's sha256, hashed once per version of the file (bench asks per row)."""
    stat = path.stat()
    return _sha256(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=32)
def _sha256(path: str, mtime_ns: int, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
