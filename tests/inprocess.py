"""Running `infertool` in the test process as a fresh process would run it (conftest.run_main).

A CLI subprocess costs about a second of CPU before any work (the interpreter, typer, numpy, onnx,
onnxruntime, torch); in this process the imports are paid once. What a fresh process would not
carry over is put back after each run: the environment, sys.path and the modules a PYTHONPATH
shadowed (the fake TensorRT in tests/fakes, then the real tensorrt_rtx again), the backend
registry, the consoles (their width comes from COLUMNS when they are made), --quiet / --verbose,
warning filters and logging handlers.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import io
import logging
import os
import sys
import tempfile
import traceback
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

KEEP = {"infertool", "conftest", "inprocess"}  # never imported twice: the code under test and this harness


def _top_level_names(folders: list[str]) -> set[str]:
    """The modules and packages these sys.path entries provide (test modules and KEEP aside)."""
    names = set()
    for folder in map(Path, folders):
        if folder.is_dir():
            names |= {p.stem if p.suffix == ".py" else p.name for p in folder.iterdir() if p.suffix == ".py" or (p / "__init__.py").exists()}
    return {name for name in names if name not in KEEP and not name.startswith("test_")}


def _owned(name: str, tops: set[str]) -> bool:
    return name.partition(".")[0] in tops


@contextlib.contextmanager
def _shadowing(folders: list[str], imports: tuple[str, ...]) -> Iterator[None]:
    """`folders` first on sys.path, their modules (and `imports`) imported afresh; afterwards the
    modules that were loaded before (say the real tensorrt_rtx, a native module that must not be
    imported twice) come back."""
    tops = _top_level_names(folders) | {name.partition(".")[0] for name in imports}
    saved = {name: module for name, module in sys.modules.items() if _owned(name, tops)}
    for name in saved:
        del sys.modules[name]
    sys.path[:0] = folders
    importlib.invalidate_caches()
    try:
        yield
    finally:
        for folder in folders:  # what a library appended meanwhile (onnxruntime's transformers) stays
            sys.path.remove(folder)
        for name in [n for n in sys.modules if _owned(n, tops)]:
            del sys.modules[name]
        sys.modules.update(saved)
        importlib.invalidate_caches()


@contextlib.contextmanager
def _fresh_caches() -> Iterator[None]:
    """The per-process caches of loaded libraries (TensorRT modules, their loggers, cuda's runtime)
    start empty, and the ones of this process come back afterwards."""
    from infertool import cuda
    from infertool.engine import tensorrt_api

    cached = [(tensorrt_api, "_load"), (tensorrt_api, "_logger"), (cuda, "runtime")]
    originals = [getattr(module, name) for module, name in cached]
    for (module, name), function in zip(cached, originals, strict=True):
        setattr(module, name, functools.cache(function.__wrapped__))
    try:
        yield
    finally:
        for (module, name), function in zip(cached, originals, strict=True):
            setattr(module, name, function)


@contextlib.contextmanager
def _registry(reload: bool) -> Iterator[None]:
    """Backends registered during the run (a test backend, entry points on a PYTHONPATH) go away."""
    from infertool.backends import registry

    registry.names()  # the built-in backends, loaded once
    backends = dict(registry._BACKENDS)
    registry._loaded = not reload  # entry points are looked up again on the run's sys.path
    try:
        yield
    finally:
        registry._BACKENDS.clear()
        registry._BACKENDS.update(backends)
        registry._loaded = True


@contextlib.contextmanager
def _process_state(env: dict) -> Iterator[None]:
    """The environment; consoles made as a fresh process makes them; quiet/verbose, warning filters
    and root logging handlers put back."""
    from infertool import quiet
    from infertool.cli import console

    environ, filters, handlers = dict(os.environ), list(warnings.filters), list(logging.getLogger().handlers)
    consoles = {name: dict(getattr(console, name).__dict__) for name in ("out", "err")}
    heartbeat = console.HEARTBEAT_S
    os.environ.update(env)
    try:
        console.HEARTBEAT_S = console._heartbeat_seconds()
        for name, stderr in (("out", False), ("err", True)):
            getattr(console, name).__dict__.update(console._console(stderr=stderr).__dict__)
        yield
    finally:
        os.environ.clear()
        os.environ.update(environ)
        warnings.filters[:] = filters
        logging.getLogger().handlers[:] = handlers
        for name, state in consoles.items():
            getattr(console, name).__dict__.clear()
            getattr(console, name).__dict__.update(state)
        console.HEARTBEAT_S, console._quiet = heartbeat, False
        quiet.let_through(False)


@contextlib.contextmanager
def isolated(env: dict, imports: tuple[str, ...] = ()) -> Iterator[None]:
    """`env` for one run (PYTHONPATH: modules from there shadow the installed ones), `imports`
    imported first; everything put back afterwards."""
    folders = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    shadow = bool(folders or imports)
    loaded = set(sys.modules)
    with _process_state(env), _registry(reload=shadow), contextlib.ExitStack() as stack:
        if shadow:
            stack.enter_context(_shadowing(folders, imports))
            stack.enter_context(_fresh_caches())
        for name in imports:
            importlib.import_module(name)
        yield
    for name in set(sys.modules) - loaded:  # namespace packages the run imported (cuda, by a lookup) go:
        if getattr(sys.modules[name], "__file__", "") is None:  # inspect.getmodule, torch's exporter, trips on them
            del sys.modules[name]


@contextlib.contextmanager
def captured() -> Iterator[list[str]]:
    """stdout and stderr caught at file descriptors 1 and 2, so lines native code writes (ONNX
    Runtime's log) are caught as a subprocess's pipes catch them; yields [stdout, stderr], filled on exit."""
    streams: list[str] = []
    sys.stdout.flush()
    sys.stderr.flush()
    python = sys.stdout, sys.stderr
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        saved = [os.dup(fd) for fd in (1, 2)]
        try:
            for fd, file in ((1, out), (2, err)):
                os.dup2(file.fileno(), fd)
            sys.stdout, sys.stderr = (_text(fd) for fd in (1, 2))
            yield streams
        finally:
            sys.stdout, sys.stderr = python
            for fd, copy in zip((1, 2), saved, strict=True):
                os.dup2(copy, fd)
                os.close(copy)
            for file in (out, err):
                file.seek(0)
                streams.append(file.read().decode("utf-8", errors="replace"))


def _text(fd: int) -> io.TextIOWrapper:
    """Text written straight through to `fd`, in order with what native code writes there."""
    return io.TextIOWrapper(io.FileIO(fd, "wb", closefd=False), encoding="utf-8", write_through=True)


def exit_code(main: Callable[[list[str]], None], argv: list[str], cwd: Path) -> int:
    """main(argv) from `cwd`, and the exit code the interpreter would give it (a traceback and 1 for
    an exception that escapes, as with --debug)."""
    previous = os.getcwd()
    os.chdir(cwd)
    try:
        main(argv)
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)
        return 1
    except Exception:
        traceback.print_exc()
        return 1
    finally:
        os.chdir(previous)
    return 0
