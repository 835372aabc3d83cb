"""Terminal output: results to stdout, logs and progress to stderr."""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from rich.console import Console
from rich.markup import escape as escape_markup
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from infertool.errors import CheckFailed
from infertool.files import write_text_atomic
from infertool.text import printable


def escape(value: object) -> str:
    """Printable and markup-escaped (progress text and notes carry names from files)."""
    return escape_markup(printable(value))


def _console(stderr: bool) -> Console:
    """Wide tables when piped (CI logs, files); the terminal's width otherwise."""
    probe = Console(stderr=stderr)
    return probe if probe.is_terminal else Console(stderr=stderr, width=160)


out = _console(stderr=False)
err = _console(stderr=True)


class _Task:
    def __init__(self, progress: Progress, task_id: TaskID):
        self._progress = progress
        self._id = task_id

    def __call__(self, steps: int = 1) -> None:
        self._progress.advance(self._id, steps)

    def describe(self, text: str) -> None:
        self._progress.update(self._id, description=escape(text))


class RichReporter:
    """Progress bars and notes on stderr; silent with --quiet."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
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
        if not self.quiet:
            err.print(f"[yellow]note:[/] {escape(message)}", highlight=False)

    @contextlib.contextmanager
    def task(self, description: str, total: int | None = None) -> Iterator[_Task]:
        started = time.perf_counter()
        task_id = self._progress.add_task(escape(description), total=total)
        try:
            yield _Task(self._progress, task_id)
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
        err.print(f"wrote {escape(target)}", highlight=False)


def show(result, json_out: str | None, force: bool, renderer: Callable[[object, Console], None]) -> None:
    """A result as JSON (stdout or file) and, unless the JSON went to stdout, as tables."""
    if json_out:
        emit_json(result.to_dict(), json_out, force)
    if json_out != "-":
        renderer(result, out)


@contextlib.contextmanager
def showing_failed_checks(json_out: str | None, force: bool, renderer: Callable[[object, Console], None]) -> Iterator[None]:
    """A failed check still shows its report before the one-line error."""
    try:
        yield
    except CheckFailed as failure:
        if failure.result is not None:
            show(failure.result, json_out, force, renderer)
        raise
