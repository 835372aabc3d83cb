"""Library code in a fresh process: a typed request in, a typed result (or infertool's own error) out.

The child is spawned, never forked (a parent's CUDA context and threads do not survive a fork), and
runs `work(request, reporter)`, a module-level function it imports by name. Its notes and the stage it
is in come back as it goes; what it returns or raises comes back pickled. A child that dies without
answering (a segfault inside a runtime, the OOM killer, a timeout) is a `ChildDied` naming what ran
and the stage it had reached: the parent lives on. Its stderr is kept in a file, shown on the
parent's stderr when it answers and kept as the error's detail when it does not.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from infertool.backends import registry
from infertool.errors import BackendFailure, InfertoolError
from infertool.reporting import Reporter, Task

STDERR_TAIL = 2000  # characters of a dead child's stderr kept in its error


@dataclass(frozen=True)
class Job:
    work: Callable  # work(request, reporter) -> result: a module-level function, imported by name in the child
    request: object  # pickled to the child
    runtime: str  # what runs, in the error when it dies: "ort-cuda batch 1"
    env: dict = field(default_factory=dict)  # set in the child before the work (CUDA_VISIBLE_DEVICES)
    timeout: float | None = None  # seconds; the child is killed after that
    echo_stderr: bool = True  # pass the child's stderr on to ours when it answers


class ChildDied(BackendFailure):
    """The process running a job died before it answered."""

    def __init__(self, runtime: str, stage: str, cause: str, stderr: str = "", returncode: int | None = None, timed_out: bool = False):
        super().__init__(
            f"the process running {runtime} died ({stage}): {cause}",
            hint="a crash inside the runtime, not in infertool; rerun that row alone with --verbose to see the runtime's last words",
            detail=stderr[-STDERR_TAIL:] or None,
        )
        self.runtime, self.stage, self.cause = runtime, stage, cause
        self.returncode, self.timed_out = returncode, timed_out  # the process's exit code (-N: signal N)


class _Forwarding:
    """The child's Reporter: notes and the current stage go to the parent."""

    def __init__(self, connection):
        self.connection = connection

    def note(self, message: str) -> None:
        self.connection.send(("note", message))

    @contextmanager
    def task(self, description: str, total: int | None = None) -> Iterator[Task]:
        self.connection.send(("stage", description))
        yield _Stage(self.connection)


class _Stage:
    def __init__(self, connection):
        self.connection = connection

    def __call__(self, steps: int = 1) -> None:
        pass

    def describe(self, text: str) -> None:
        self.connection.send(("stage", text))


def _child(connection, work: Callable, request: object, env: dict, stderr: str, modules: tuple[str, ...]) -> None:
    os.environ.update(env)
    handle = os.open(stderr, os.O_WRONLY | os.O_APPEND)
    os.dup2(handle, 2)  # the runtimes' own logs too, not only Python's
    try:
        for module in modules:  # backends the parent registered by importing them (registry.modules)
            importlib.import_module(module)
        answer = ("done", work(request, _Forwarding(connection)))
    except InfertoolError as exc:
        answer = ("error", exc)
    except KeyboardInterrupt:
        return
    except BaseException as exc:  # a bug: the parent reports it as one, with the child's traceback
        answer = ("bug", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")
    try:
        connection.send(answer)
    except Exception as exc:  # an answer that does not pickle is a bug too
        connection.send(("bug", f"cannot send the answer back: {type(exc).__name__}: {exc}"))


def _cause(code: int | None, timed_out: float | None) -> str:
    if timed_out is not None:
        return f"timed out after {timed_out:g} s"
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code} without an answer"


def _wait(job: Job, process, connection, reporter: Reporter) -> tuple[tuple | None, str, bool]:
    """(answer or None, the last stage, whether it timed out)."""
    stage, deadline = "starting", None if job.timeout is None else time.monotonic() + job.timeout
    with reporter.task(f"{job.runtime}: in a fresh process") as task:
        while True:
            if connection.poll(0.1):
                try:
                    kind, payload = connection.recv()
                except EOFError:  # the child is gone without an answer
                    return None, stage, False
                if kind == "note":
                    reporter.note(payload)
                elif kind == "stage":
                    stage = payload.removeprefix(f"{job.runtime}: ")
                    task.describe(f"{job.runtime}: {payload} (in a fresh process)")
                else:
                    return (kind, payload), stage, False
            elif deadline is not None and time.monotonic() > deadline:
                return None, stage, True
            elif not process.is_alive() and not connection.poll(0):
                return None, stage, False


def run(job: Job, reporter: Reporter) -> object:
    """What `job.work` returned in a fresh process; raises what it raised, or ChildDied."""
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    with tempfile.NamedTemporaryFile(prefix="infertool-child-", suffix=".stderr") as log:
        process = context.Process(target=_child, args=(send, job.work, job.request, job.env, log.name, registry.modules()), name=f"infertool {job.runtime}")
        process.start()
        send.close()
        answer, stage, timed_out = None, "starting", False
        try:
            answer, stage, timed_out = _wait(job, process, receive, reporter)
        finally:
            if answer is None and process.is_alive():  # timed out, or we were interrupted
                process.kill()
            process.join()
            receive.close()
        stderr = Path(log.name).read_text(errors="replace")
    if answer is None:
        raise ChildDied(job.runtime, stage, _cause(process.exitcode, job.timeout if timed_out else None), stderr, process.exitcode, timed_out)
    if job.echo_stderr and stderr:
        sys.stderr.write(stderr)
    kind, payload = answer
    if kind == "error":
        raise payload
    if kind == "bug":
        raise RuntimeError(f"in the process running {job.runtime}: {payload}")
    return payload


class Crashed(BackendFailure):
    """A runtime killed the process running it (`guarded`): one line, not a dead infertool."""


def guarded(job: Job, advice: str, what: str, reporter: Reporter) -> object:
    """`run(job)` where a runtime may kill its process (a segfault opening a model): its death is
    a `Crashed` naming the runtime, the stage and `what` it was doing, with `advice` as the way out."""
    try:
        return run(job, reporter)
    except ChildDied as died:
        raise Crashed(f"{job.runtime} died ({died.stage}) {what}: {died.cause}", hint=advice, detail=died.detail) from died
