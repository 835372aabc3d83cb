"""Terminal output: results to stdout, logs and progress to stderr."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape as escape_markup

from infertool import quiet as third_party
from infertool.errors import CheckFailed
from infertool.files import write_text_atomic
from infertool.text import printable, shorten

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID


def escape(value: object) -> str:
    """Printable and markup-escaped (progress text and notes carry names from files)."""
    return escape_markup(printable(value))

PIPED_WIDTH = 160  # CI logs and files, unless COLUMNS says otherwise
TERMINAL_SIZE = {"COLUMNS": (20, 10_000), "LINES": (5, 10_000)}  # what rich reads; 0 would silence every line, `²` crash it
HEARTBEAT = ("INFERTOOL_HEARTBEAT", 30.0, 0.1, 86_400.0)  # variable, default, lowest, highest seconds
_ignored: list[str] = []  # environment variables with values infertool cannot use: warned about by configure()


def _ignore(name: str, value: str, wanted: str) -> None:
    _ignored.append(f"ignoring {name}={shorten(printable(value), 24)!r}: not {wanted}")


def _sane_terminal_size() -> None:
    """Remove COLUMNS / LINES values that are not a sane size before rich reads them."""
    for name, (low, high) in TERMINAL_SIZE.items():
        value = os.environ.get(name, "")
        if value and not (re.fullmatch(r"[0-9]{1,6}", value) and low <= int(value) <= high):
            del os.environ[name]
            _ignore(name, value, f"a whole number from {low} to {high:,}")


def _heartbeat_seconds() -> float:
    """How often a long step prints a progress line in logs: INFERTOOL_HEARTBEAT seconds, else 30."""
    name, default, low, high = HEARTBEAT
    value = os.environ.get(name, "")
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if value and not low <= seconds <= high:
        _ignore(name, value, f"a number of seconds from {low:g} to {high:g}")
    return seconds if low <= seconds <= high else default


_sane_terminal_size()
HEARTBEAT_S = _heartbeat_seconds()


class _Console(Console):
    def __init__(self, **kwargs) -> None:
        super().__init__(emoji=False, **kwargs)  # a path like my:smile:model.onnx is echoed as it is, not as an emoji

    def on_broken_pipe(self) -> None:
        """The reader of stdout went away (`| head`): rich would exit 1 at once, and the command's
        outputs would be undone; let the command end as a closed pipe ends it (app.main)."""
        self.quiet = True
        raise BrokenPipeError


def _console(stderr: bool) -> Console:
    """The terminal's width, or COLUMNS; wide tables when piped without COLUMNS."""
    probe = _Console(stderr=stderr)
    if probe.is_terminal or os.environ.get("COLUMNS", "").isdigit():
        return probe
    return _Console(stderr=stderr, width=PIPED_WIDTH)


out = _console(stderr=False)
err = _console(stderr=True)
_quiet = False


def configure(quiet: bool, verbose: bool) -> None:
    """--quiet: warnings and errors only. Without --verbose no third-party log reaches the terminal."""
    global _quiet
    _quiet = quiet
    for ignored in _ignored:
        warn(ignored)
    third_party.let_through(verbose)
    if not verbose:
        warnings.simplefilter("ignore")
        logging.getLogger().addHandler(logging.NullHandler())  # no last-resort handler printing library warnings


def info(message: str) -> None:
    """A line on stderr that --quiet drops."""
    if not _quiet:
        err.print(message, highlight=False, soft_wrap=True)


def warn(message: str) -> None:
    err.print(f"[yellow]warning:[/] {escape(message)}", highlight=False, soft_wrap=True)


class _Task:
    def __init__(self, progress: Progress, task_id: TaskID):
        self._progress = progress
        self.id = task_id

    def __call__(self, steps: int = 1) -> None:
        self._progress.advance(self.id, steps)

    def describe(self, text: str) -> None:
        self._progress.update(self.id, description=escape(text))

    def status(self) -> str:
        task = next(t for t in self._progress.tasks if t.id == self.id)
        of = f"/{task.total:.0f}" if task.total and task.completed <= task.total else ""
        return f"{task.description}: {task.completed:.0f}{of} done, {task.elapsed or 0:.0f} s"


class _Heartbeat:
    """A line every `every` seconds while a step runs, for logs that show no progress bar."""

    def __init__(self, task: _Task, every: float):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, args=(task, every), daemon=True)
        self._thread.start()

    def _beat(self, task: _Task, every: float) -> None:
        while not self._stop.wait(every):
            err.print(f"[dim]… {task.status()}[/]", highlight=False, soft_wrap=True)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


class RichReporter:
    """Progress on stderr: bars on a terminal; in logs a line when a step starts, a heartbeat while
    it runs and a line when it ends. Silent with --quiet."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.live = err.is_terminal and not quiet
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn  # not on --help's path

        self._progress = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=err, transient=True,
        )

    def __enter__(self) -> RichReporter:
        if self.live:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live:
            self._progress.stop()

    def note(self, message: str) -> None:
        if not self.quiet:
            err.print(f"[yellow]note:[/] {escape(message)}", highlight=False, soft_wrap=True)

    @contextlib.contextmanager
    def task(self, description: str, total: int | None = None) -> Iterator[_Task]:
        started = time.perf_counter()
        task = _Task(self._progress, self._progress.add_task(escape(description), total=total))
        heartbeat = None
        if not self.quiet and not self.live:
            err.print(f"[dim]…[/] {escape(description)}", highlight=False, soft_wrap=True)
            heartbeat = _Heartbeat(task, HEARTBEAT_S)
        try:
            yield task
        finally:
            if heartbeat is not None:
                heartbeat.stop()
            self._progress.remove_task(task.id)
        if not self.quiet:
            err.print(f"[green]✓[/] {escape(description)} [dim]({time.perf_counter() - started:.1f} s)[/]", highlight=False, soft_wrap=True)


def _finite(value: object) -> object:
    """JSON has no NaN or Infinity: write null instead."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def emit_text(text: str, target: str, force: bool) -> None:
    """Text to stdout (`-`) or atomically to a file."""
    if target == "-":
        out.file.write(text)
        out.file.flush()
    else:
        write_text_atomic(Path(target), text, force)
        info(f"wrote {escape(target)}")


def emit_json(payload: dict, target: str, force: bool) -> None:
    emit_text(json.dumps(_finite(payload), indent=2, default=str, allow_nan=False) + "\n", target, force)


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
