"""Terminal output: results to stdout, logs and progress to stderr."""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from infertool.files import write_text_atomic

def _console(stderr: bool) -> Console:
    """Wide tables when piped (CI logs, files); the terminal's width otherwise."""
    probe = Console(stderr=stderr)
    return probe if probe.is_terminal else Console(stderr=stderr, width=160)


out = _console(stderr=False)
err = _console(stderr=True)


class RichReporter:
    """Progress bars and notes on stderr; silent with --quiet."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.notes: list[str] = []
        self._progress = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=err, transient=True,
        )

    def __enter__(self) -> RichReporter:
        if not self.quiet:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def note(self, message: str) -> None:
        self.notes.append(message)
        if not self.quiet:
            err.print(f"[yellow]note:[/] {escape(message)}", highlight=False)

    @contextlib.contextmanager
    def task(self, description: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
        started = time.perf_counter()
        task_id = self._progress.add_task(description, total=total)
        try:
            yield lambda n=1: self._progress.advance(task_id, n)
        finally:
            self._progress.remove_task(task_id)
        if not self.quiet:
            err.print(f"[green]✓[/] {escape(description)} [dim]({time.perf_counter() - started:.1f} s)[/]", highlight=False)


def _finite(value: object) -> object:
    """JSON has no NaN or Infinity: write null instead."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def emit_json(payload: dict, target: str, force: bool) -> None:
    """JSON to stdout (`-`) or atomically to a file."""
    text = json.dumps(_finite(payload), indent=2, default=str, allow_nan=False) + "\n"
    if target == "-":
        out.file.write(text)
        out.file.flush()
    else:
        write_text_atomic(Path(target), text, force)
        err.print(f"wrote {target}", highlight=False)
