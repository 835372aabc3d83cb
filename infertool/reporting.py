"""How core code reports progress and notes without knowing about the terminal."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Protocol


class Task(Protocol):
    def __call__(self, steps: int = 1) -> None:
        """Advance by `steps`."""

    def describe(self, text: str) -> None:
        """Replace the task's description (say, a build phase)."""


class Reporter(Protocol):
    def note(self, message: str) -> None:
        """A remark the user should see (fallbacks, derived settings, warnings)."""

    def task(self, description: str, total: int | None = None) -> contextlib.AbstractContextManager[Task]:
        """A unit of long work; the yielded task advances it."""


class _NoTask:
    def __call__(self, steps: int = 1) -> None:
        pass

    def describe(self, text: str) -> None:
        pass


class SilentReporter:
    def note(self, message: str) -> None:
        pass

    @contextlib.contextmanager
    def task(self, description: str, total: int | None = None) -> Iterator[Task]:
        yield _NoTask()
