"""Keeping third-party chatter (exporters, converters, quantizers) off infertool's own output."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import warnings
from collections.abc import Iterator


@contextlib.contextmanager
def quiet(loggers: tuple[str, ...] = ("",), native_stderr: bool = False) -> Iterator[None]:
    """Swallow stdout prints and warnings, raise `loggers` to ERROR, and with `native_stderr`
    also C-level writes to fd 2 (TensorFlow's absl logs). stdout must stay clean for --json."""
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
