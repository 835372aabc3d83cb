"""Deadlines for calls into a runtime that can cancel them (ONNX Runtime's RunOptions.terminate):
a model whose Loop never ends must stop with a message, not hang a CI job.

A caller marks a call in flight by setting `deadline.call` to a number of its own (a fresh one
per call) and back to 0 when it returns: two attribute stores, cheap enough for the timed loop
of `bench`. One watcher thread looks at the calls in flight a few times a second.
"""

from __future__ import annotations

import re
import threading
import time
import weakref
from collections.abc import Callable

from infertool.errors import InfertoolError, first_line
from infertool.text import shorten

POLL_SECONDS = 0.25
ORT_NODE = re.compile(r"running (\w+) node\. Name:'([^']*)'")  # where ONNX Runtime's error says it was
_watched: weakref.WeakSet[Deadline] = weakref.WeakSet()
_lock = threading.Lock()
_watcher: threading.Thread | None = None


class Deadline:
    """`cancel` runs (from the watcher thread) once one call has been in flight for `seconds`;
    `expired` then tells the caller why its call failed. No `seconds`: nothing is watched."""

    def __init__(self, seconds: float | None, cancel: Callable[[], None]):
        self.seconds = seconds
        self.cancel = cancel
        self.call = 0  # the call in flight, 0 when none
        self.expired = False
        self._seen: tuple[int, float] | None = None  # (call, when the watcher first saw it)
        if seconds:
            _watch(self)

    def _check(self, now: float) -> None:
        call = self.call
        if not call:
            self._seen = None
        elif self._seen is None or self._seen[0] != call:
            self._seen = (call, now)
        elif now - self._seen[1] >= self.seconds and not self.expired:
            self.expired = True
            self.cancel()


def _watch(deadline: Deadline) -> None:
    global _watcher
    with _lock:
        _watched.add(deadline)
        if _watcher is None or not _watcher.is_alive():
            _watcher = threading.Thread(target=_poll, name="infertool-deadline", daemon=True)
            _watcher.start()


def _poll() -> None:
    global _watcher
    while True:
        time.sleep(POLL_SECONDS)
        with _lock:
            deadlines = list(_watched)
            if not deadlines:
                _watcher = None
                return
        now = time.monotonic()
        for deadline in deadlines:
            deadline._check(now)


def node_named(exc: Exception) -> str:
    """' in Loop node 'spin'' where ONNX Runtime's error names the node it was running, else ''."""
    node = ORT_NODE.search(str(exc))
    return f" in {node.group(1)} node '{shorten(node.group(2), 40)}'" if node else ""


def expired(what: str, seconds: float, exc: Exception) -> InfertoolError:
    """The error of a call `what` made that the deadline stopped (`exc`: the runtime's own)."""
    return InfertoolError(
        f"{what}: one inference ran past the --timeout of {seconds:g} s and was stopped{node_named(exc)}",
        hint="a Loop whose trip count and condition never end it runs forever: fix the model, or raise --timeout if it is just slow",
        detail=first_line(exc),
    )
