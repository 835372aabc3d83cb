"""How core code reports progress and notes without knowing about the terminal."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Protocol


class Reporter(Protocol):
    def note(self, message: str) -> None:
        """A remark the user should see (fallbacks, derived settings, warnings)."""

    def task(self, description: str, total: int | None = None) -> contextlib.AbstractContextManager[Callable[[int], None]]:
        """A unit of long work; the yielded callable advances it by n steps."""


class SilentReporter:
    def __init__(self) -> None:
        self.notes: list[str] = []

    def note(self, message: str) -> None:
        self.notes.append(message)

    @contextlib.contextmanager
    def task(self, description: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
        yield lambda n=1: None
