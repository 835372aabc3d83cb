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
def quiet(loggers: tuple[str, ...] = ("",), native_stderr: bool = False) -> Iterator[None]:
    """Swallow stdout prints and warnings, raise `loggers` to ERROR, quiet ONNX Runtime's default
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
            handle.setLevel(logging.ERROR)
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for handle, level in zip(handles, levels):
            handle.setLevel(level)
        if saved_fd is not None:
            os.dup2(saved_fd, 2)
            os.close(saved_fd)
