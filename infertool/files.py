"""Files in and out: never overwrite without --force, never leave a partial file behind, and
the outputs of one command all or nothing; inputs read only from regular files of sane size."""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import os
import shutil
import socket
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from infertool.errors import InfertoolError, first_line
from infertool.text import shorten

STAGING_PREFIX = ".infertool-"
STALE_UNOWNED_SECONDS = 24 * 3600  # staging folders without an owner pid (older versions) count as stale after a day
_REASONS = {
    errno.ENAMETOOLONG: "the name is too long for the file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "the file system is read-only",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.ENOENT: "the folder cannot hold new files",
    errno.ELOOP: "the path has a symbolic link loop",
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EISDIR: "it is a folder",
    errno.EEXIST: "it already exists",
}
_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
_swept: set[Path] = set()


def cache_root() -> Path:
    """infertool's cache folder: $INFERTOOL_CACHE_DIR, else $XDG_CACHE_HOME/infertool, else ~/.cache/infertool."""
    root = os.environ.get("INFERTOOL_CACHE_DIR") or os.path.join(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "infertool")
    return Path(root)


def _cannot(verb: str, path: Path, exc: OSError, hint: str = "choose another path") -> InfertoolError:
    reason = _REASONS.get(exc.errno or 0, "the system refused")
    return InfertoolError(f"cannot {verb} {shorten(path)}: {reason}", hint=hint, detail=first_line(exc))


# ---------------------------------------------------------------- reading


def check_input(path: Path, what: str, limit: int | None = None, hint: str = "check the path") -> int:
    """The size of `path` once it is known to be a regular file of at most `limit` bytes:
    a FIFO or a device (/dev/zero) would block or never end."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise InfertoolError(f"{what} {shorten(path)} not found", hint=hint) from None
    except OSError as exc:
        raise _cannot("read", path, exc, hint=hint) from exc
    if stat.S_ISDIR(info.st_mode):
        raise InfertoolError(f"{what} {shorten(path)} is a folder, not a file", hint=hint)
    if not stat.S_ISREG(info.st_mode):
        raise InfertoolError(f"{what} {shorten(path)} is not a regular file (a pipe or a device)", hint="give a file on disk")
    if limit is not None and info.st_size > limit:
        raise InfertoolError(f"{what} {shorten(path)} is {info.st_size:,} bytes, more than the {limit:,} such a file can sensibly hold", hint=hint)
    return info.st_size


def read_bytes(path: Path, what: str, limit: int | None = None, hint: str = "check the path") -> bytes:
    check_input(path, what, limit, hint)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise _cannot("read", path, exc, hint=hint) from exc


# ---------------------------------------------------------------- writing


def _existing_folder(path: Path) -> Path:
    """The nearest existing ancestor of `path` (not resolving symlinks: a loop must fail on use)."""
    parent = Path(os.path.abspath(path)).parent
    while not os.path.lexists(parent):
        parent = parent.parent
    return parent


def check_output(path: Path, force: bool, *companions: Path, directory: bool = False) -> None:
    """Refuse an existing output (or companion file such as external data) unless forced, and
    one that cannot be written (a name too long, a parent that is a file, /proc, no permission)."""
    for target in (path, *companions):
        if any(len(os.fsencode(part)) > 255 for part in target.parts):
            raise InfertoolError(f"cannot write {shorten(target)}: a name in the path is longer than 255 bytes", hint="choose a shorter name")
        if os.path.isdir(target) and not os.path.islink(target) and not directory:
            raise InfertoolError(f"output path {shorten(target)} is a folder", hint="give a file path")
        if os.path.lexists(target) and not force:  # a dangling symlink is an existing entry too
            raise InfertoolError(f"{shorten(target)} already exists", hint="pass --force to overwrite it")
    probe = _make_staging(path)
    probe.rmdir()


def check_not_read(outputs: dict[str, object], inputs: dict[str, object]) -> None:
    """Refuse an output that is one of the command's inputs (the same file or folder, through any
    link): --force would replace what the command reads. Both map an option (or what it is) to its value."""
    for output_flag, output in outputs.items():
        for input_flag, source in inputs.items():
            if output and source and _same_file(str(output), str(source)):
                raise InfertoolError(
                    f"{output_flag} {shorten(output)} is {input_flag} {shorten(source)}, which this command reads",
                    hint="write the output to another path",
                )


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):  # either one missing, or no path (a NUL in it)
        return False


def _owner() -> str:
    """`pid@host` of this process, for the names of its staging folders."""
    host = "".join(c for c in socket.gethostname() if c.isascii() and c.isalnum())[:24]
    return f"{os.getpid()}@{host}"


def _owner_alive(name: str, modified: float) -> bool | None:
    """Whether the process that made a staging folder runs still; None when that cannot be told
    (an older version's name without a pid, or another machine's on a shared file system)."""
    pid_text, _, host = name[len(STAGING_PREFIX):].partition("-")[0].partition("@")
    if not (pid_text.isascii() and pid_text.isdecimal()) or host != _owner().partition("@")[2]:
        return None
    import psutil

    try:
        started = psutil.Process(int(pid_text)).create_time()
    except (psutil.NoSuchProcess, ValueError, OverflowError):
        return False
    except psutil.Error:
        return True
    return started <= modified + 1  # a process started after the folder changed last reuses the pid


def sweep_stale(folder: Path) -> None:
    """Remove staging folders that killed processes (SIGKILL, power loss) left in `folder`
    (once per folder and process)."""
    if folder in _swept:
        return
    _swept.add(folder)
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        if not entry.name.startswith(STAGING_PREFIX) or not entry.is_dir(follow_symlinks=False):
            continue
        with contextlib.suppress(OSError):
            modified = entry.stat(follow_symlinks=False).st_mtime
            alive = _owner_alive(entry.name, modified)
            if alive is False or (alive is None and time.time() - modified > STALE_UNOWNED_SECONDS):
                shutil.rmtree(entry.path, ignore_errors=True)


def _make_staging(path: Path) -> Path:
    folder = _existing_folder(path)
    sweep_stale(folder)
    try:
        return Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{_owner()}-", dir=folder))
    except OSError as exc:
        raise _cannot("write", path, exc) from exc


class _Journal:
    """The outputs a command has put in place so far, and what they replaced: undone together."""

    def __init__(self) -> None:
        self.entries: list[tuple[Path, Path | None]] = []  # (target, backup of what was there)
        self.backups: list[Path] = []
        self.folders: list[Path] = []  # made for outputs: removed again if empty

    def _back_up(self, target: Path) -> Path | None:
        if not os.path.lexists(target):
            return None
        folder = _make_staging(target)
        self.backups.append(folder)
        os.replace(target, folder / "previous")
        return folder / "previous"

    def replace(self, item: Path, target: Path) -> None:
        self.entries.append((target, self._back_up(target)))
        os.replace(item, target)

    def remove(self, target: Path) -> None:
        self.entries.append((target, self._back_up(target)))

    def undo(self) -> None:
        folders, self.folders = self.folders, []
        for target, backup in reversed(self.entries):
            with contextlib.suppress(OSError):
                if target.is_dir() and not target.is_symlink():
                    shutil.rmtree(target)
                elif os.path.lexists(target):
                    target.unlink()
                if backup is not None:
                    os.replace(backup, target)
        for folder in reversed(folders):
            with contextlib.suppress(OSError):
                folder.rmdir()
        self.finish()

    def finish(self) -> None:
        for folder in self.backups:
            shutil.rmtree(folder, ignore_errors=True)
        self.entries, self.backups, self.folders = [], [], []


_journal: _Journal | None = None
_committing = 0
_pending_signal = False


def on_signal(signum: int, frame: object) -> None:
    """SIGINT / SIGTERM handler: interrupt, but never halfway through putting outputs in place."""
    global _pending_signal
    if _committing:
        _pending_signal = True
        return
    raise KeyboardInterrupt


@contextlib.contextmanager
def _uninterrupted() -> Iterator[None]:
    global _committing, _pending_signal
    _committing += 1
    try:
        yield
    finally:
        _committing -= 1
    if not _committing and _pending_signal:
        _pending_signal = False
        raise KeyboardInterrupt


@contextlib.contextmanager
def all_or_nothing(keep_on: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
    """The outputs written inside the block stay only if it succeeds (or raises one of `keep_on`,
    say a failed check whose report file was written on purpose); otherwise every one is removed
    and whatever --force replaced comes back."""
    global _journal
    if _journal is not None:  # part of an enclosing command's outputs
        yield
        return
    journal = _journal = _Journal()
    try:
        yield
    except keep_on:
        journal.finish()
        raise
    except BaseException:
        with _uninterrupted():
            journal.undo()
        raise
    else:
        journal.finish()
    finally:
        _journal = None


def _put(item: Path, target: Path) -> None:
    if _journal is not None:
        _journal.replace(item, target)
        return
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    os.replace(item, target)


def _merge(staged: Path, folder: Path, owned: str | tuple[str, ...]) -> None:
    """Put `staged`'s files into the existing `folder`, replacing the files infertool wrote there
    (those matching `owned`, a pattern or several) and nothing else."""
    fresh = {p.name for p in staged.iterdir()}
    patterns = (owned,) if isinstance(owned, str) else owned
    for stale in sorted({p for pattern in patterns for p in folder.glob(pattern)}):
        if stale.name not in fresh and stale.is_file() and not stale.is_symlink():
            if _journal is not None:
                _journal.remove(stale)
            else:
                stale.unlink()
    for item in sorted(staged.iterdir()):
        _put(item, folder / item.name)


@contextlib.contextmanager
def staged_output(path: Path, force: bool, directory: bool = False, owned: str | tuple[str, ...] = "*") -> Iterator[Path]:
    """Yield a staging directory on the output's file system.

    Files written there are moved next to `path` when the block succeeds (`path`'s own
    file last, so a reader never sees it before its companions); on failure nothing is left.
    With `directory`, `path` is a folder written as `staging / path.name`; an existing folder
    (with --force) keeps its other files, and only those matching `owned` (patterns) are replaced.
    """
    check_output(path, force, directory=directory)
    staging = _make_staging(path)
    try:
        yield staging
        produced = sorted(staging.iterdir(), key=lambda p: p.name == path.name)
        check_output(path, force, *(path.parent / p.name for p in produced), directory=directory)
        with _uninterrupted():
            try:
                _make_parents(path)
                for item in produced:
                    target = path.parent / item.name
                    if directory and item.is_dir() and target.is_dir() and not target.is_symlink():
                        _merge(item, target, owned)
                    else:
                        _put(item, target)
            except OSError as exc:
                raise _cannot("write", path, exc) from exc
    except OSError as exc:
        if exc.errno in _FULL:  # writing into the staging folder
            raise _cannot("write", path, exc, hint="free some space") from exc
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _make_parents(path: Path) -> None:
    missing = [p for p in Path(os.path.abspath(path)).parents if not os.path.lexists(p)]
    path.parent.mkdir(parents=True, exist_ok=True)
    if _journal is not None:
        _journal.folders += reversed(missing)


def write_bytes_atomic(path: Path, data: bytes, force: bool) -> None:
    with staged_output(path, force) as staging:
        (staging / path.name).write_bytes(data)


def write_text_atomic(path: Path, text: str, force: bool) -> None:
    write_bytes_atomic(path, text.encode(), force)


def file_sha256(path: Path) -> str:
    """The file's sha256, hashed once per version of the file (bench asks per row)."""
    stat_ = path.stat()
    return _sha256(str(path.resolve()), stat_.st_mtime_ns, stat_.st_size)


@functools.lru_cache(maxsize=32)
def _sha256(path: str, mtime_ns: int, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
