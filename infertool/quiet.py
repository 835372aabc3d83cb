"""Keeping third-party chatter (exporters, converters, quantizers, runtimes) off infertool's own
output, unless the user asks for it (`--verbose`)."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

from infertool.errors import InfertoolError
from infertool.text import shorten

_verbose = False


def let_through(verbose: bool) -> None:
    """Whether third-party logs reach stderr (the CLI's --verbose)."""
    global _verbose
    _verbose = verbose


def ort_log_severity() -> int:
    """ONNX Runtime's logger severity: its warnings with --verbose; else nothing (its errors
    become infertool's one-line errors)."""
    return 2 if _verbose else 4


@contextlib.contextmanager
def quiet(loggers: tuple[str, ...] = ("",), native_stderr: bool = False, level: int = logging.ERROR) -> Iterator[None]:
    """Swallow stdout prints and warnings, raise `loggers` to `level`, quiet ONNX Runtime's default
    logger where it is loaded (sessions that onnxruntime's quantizers open), and with
    `native_stderr` also C-level writes to fd 2 (TensorFlow's absl logs). stdout must stay clean
    for --json: with --verbose the prints go to stderr and the rest is let through."""
    set_ort_severity = getattr(sys.modules.get("onnxruntime"), "set_default_logger_severity", None)
    if set_ort_severity is not None:
        set_ort_severity(ort_log_severity())
    if _verbose:
        with contextlib.redirect_stdout(sys.stderr):
            yield
        return
    handles = [logging.getLogger(name) for name in loggers]
    levels = [handle.level for handle in handles]
    saved_fd = None
    if native_stderr:
        sys.stderr.flush()
        saved_fd = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
    try:
        for handle in handles:
            handle.setLevel(level)
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for handle, saved in zip(handles, levels):
            handle.setLevel(saved)
        if saved_fd is not None:
            os.dup2(saved_fd, 2)
            os.close(saved_fd)


@contextlib.contextmanager
def in_folder(folder: Path) -> Iterator[None]:
    """Run third-party code that drops scratch files in the working directory (onnxruntime's
    symbolic shape inference writes sym_shape_infer_temp.onnx and <uuid>.data there) in `folder`.
    Paths handed to it must be absolute."""
    previous = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(previous)


@contextlib.contextmanager
def user_code(what: str) -> Iterator[None]:
    """Run code the user wrote (a factory, its module, a model's forward): its prints go to
    stderr, Python's and C's alike (stdout carries --json), breakpoint() does nothing, and
    sys.exit() or another BaseException becomes one error line instead of ending infertool."""
    sys.stdout.flush()
    saved_fd, saved_hook = os.dup(1), os.environ.get("PYTHONBREAKPOINT")
    os.dup2(2, 1)
    os.environ["PYTHONBREAKPOINT"] = "0"  # read by sys.breakpointhook on every call
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    except SystemExit as exc:
        code = "" if exc.code is None else shorten(repr(exc.code), 40)
        raise InfertoolError(f"{what} called sys.exit({code})", hint="return the model instead of exiting") from None
    except (Exception, KeyboardInterrupt):
        raise
    except BaseException as exc:
        raise InfertoolError(f"{what} raised {type(exc).__name__}: {shorten(exc, 80)}", hint="fix the code, then retry") from exc
    finally:
        sys.stderr.flush()
        os.dup2(saved_fd, 1)
        os.close(saved_fd)
        if saved_hook is None:
            os.environ.pop("PYTHONBREAKPOINT", None)
        else:
            os.environ["PYTHONBREAKPOINT"] = saved_hook
