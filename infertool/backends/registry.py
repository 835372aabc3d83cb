"""The backend registry, filled by `register` in each backend's own file.

Every module in this package is imported on first use, and so are the modules that installed
packages name under the `infertool.backends` entry-point group: adding a backend is one file.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import pkgutil
import threading
from collections.abc import Callable
from dataclasses import Field, dataclass, fields
from pathlib import Path
from typing import TypeVar

from infertool.backends.base import Backend, Runner, RunnerOptions, option_default
from infertool.errors import BackendFailure, InfertoolError, first_line
from infertool.quiet import user_code
from infertool.text import listing, printable, shorten

T = TypeVar("T")

ENTRY_POINTS = "infertool.backends"
REFERENCE = "ort-cpu"  # the backend that produces the reference outputs every row is checked against
_PLUGIN_HINT = "fix or uninstall the package that provides it"
PLUGIN_SECONDS = 60.0  # a plug-in's import, or its availability check, past which it counts as hung
_NOT_BACKENDS = {"base", "registry"}
_BACKENDS: dict[str, Backend] = {}
_PLUGINS: set[str] = set()  # backends a plug-in registered
_BROKEN: dict[str, str] = {}  # plug-in entry point -> what went wrong loading it
_loading: str | None = None  # the plug-in being loaded
# a plug-in's methods whose failures are the plug-in's (BackendFailure naming it), not infertool's bugs
_BACKEND_CALLS = ("check", "tuning_space", "prepare", "open", "save_optimized", "check_builder", "build_engine", "claims")
_RUNNER_CALLS = ("prepare", "infer", "bind", "run_bound", "bound_outputs", "device_times", "intermediates", "memory", "profile", "info", "close")
_loaded = False


def register(backend: Backend) -> Backend:
    """Add a backend (an instance); returns it, so a module can keep a handle. A plug-in cannot
    replace a backend that is there already."""
    if _loading is not None:
        if not isinstance(backend, Backend) or not isinstance(getattr(backend, "name", None), str) or not backend.name.strip():
            raise InfertoolError(f"registered {shorten(printable(repr(backend)), 40)}, not a Backend with a name", hint="register a Backend instance")
        if backend.name in _BACKENDS:
            raise InfertoolError(f"tried to replace the backend '{shorten(printable(backend.name), 40)}'", hint="give the plug-in's backend its own name")
        _PLUGINS.add(backend.name)
        _own_failures(backend, f"backend plug-in '{shorten(printable(backend.name), 40)}'", _BACKEND_CALLS)
    _BACKENDS[backend.name] = backend
    return backend


def _own_failures(target: object, what: str, calls: tuple[str, ...]) -> None:
    """Make `target`'s methods raise a BackendFailure naming `what` where they fail otherwise than
    through infertool's errors (sys.exit() included); the runners `open` returns likewise."""
    for name in calls:
        method = getattr(target, name, None)
        if callable(method):
            setattr(target, name, _failure_named(what, name, method))


def _failure_named(what: str, name: str, method: Callable) -> Callable:
    @functools.wraps(method)
    def call(*args, **kwargs):
        try:
            result = method(*args, **kwargs)
        except InfertoolError:
            raise
        except SystemExit as exc:
            code = "" if exc.code is None else shorten(printable(repr(exc.code)), 40)
            raise BackendFailure(f"{what} called sys.exit({code}) in {name}", hint=_PLUGIN_HINT) from None
        except Exception as exc:
            raise BackendFailure(f"{what} raised {type(exc).__name__} in {name}", hint=_PLUGIN_HINT, detail=first_line(exc)) from exc
        if name == "open" and isinstance(result, Runner):
            _own_failures(result, what, _RUNNER_CALLS)
        return result

    return call


def modules() -> tuple[str, ...]:
    """The modules that registered a backend by being imported, outside this package and its entry
    points (a program's own backend): a fresh process imports them to find the same backends."""
    own = (b for name, b in _BACKENDS.items() if name not in _PLUGINS and not type(b).__module__.startswith(f"{__package__}."))
    return tuple(dict.fromkeys(type(b).__module__ for b in own))


def _contained(what: str, call: Callable[[], T]) -> T:
    """Run plug-in code under PLUGIN_SECONDS, its prints off stdout: a hang, sys.exit() or an
    error becomes an InfertoolError naming `what`."""
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["value"] = call()
        except BaseException as exc:  # sys.exit() included: re-raised below, inside user_code
            box["error"] = exc

    with user_code(what):
        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        thread.join(PLUGIN_SECONDS)
        if thread.is_alive():
            raise InfertoolError(f"{what} did not finish in {PLUGIN_SECONDS:g} s", hint=_PLUGIN_HINT)
        if "error" in box:
            error = box["error"]
            if isinstance(error, Exception) and not isinstance(error, InfertoolError):
                raise InfertoolError(f"{what} raised {type(error).__name__}", hint=_PLUGIN_HINT, detail=first_line(error))
            raise error
    return box.get("value")


def _load_plugin(entry: importlib.metadata.EntryPoint) -> None:
    global _loading
    what = f"backend plug-in '{shorten(printable(entry.name), 40)}' ({shorten(printable(entry.value), 60)})"
    _loading = entry.name
    try:
        _contained(what, entry.load)
    except InfertoolError as exc:  # a broken plug-in must not take the other backends down
        _BROKEN[entry.name] = exc.message.removeprefix(what + " ") if exc.message.startswith(what) else exc.message
    finally:
        _loading = None


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    package = importlib.import_module(__package__)
    for module in pkgutil.iter_modules(package.__path__):
        if module.name not in _NOT_BACKENDS:
            importlib.import_module(f"{__package__}.{module.name}")
    for entry in importlib.metadata.entry_points(group=ENTRY_POINTS):
        _load_plugin(entry)


def names() -> list[str]:
    _load()
    return list(_BACKENDS)


def get(name: str) -> Backend:
    _load()
    if name in _BROKEN and name not in _BACKENDS:
        raise InfertoolError(f"backend plug-in '{shorten(printable(name), 40)}' {_BROKEN[name]}", hint=_PLUGIN_HINT)
    if name not in _BACKENDS:
        raise InfertoolError(f"unknown backend '{name}'", hint=f"choose from {', '.join(_BACKENDS)}")
    return _BACKENDS[name]


def option_groups() -> list[type]:
    """Every backend's own option group, each once, in registration order (the CLI adds them to bench)."""
    return list(dict.fromkeys(b.option_group for b in (get(n) for n in names()) if b.option_group is not None))


def readers(group: type) -> list[str]:
    """The backends that read this option group."""
    return [n for n in names() if get(n).option_group is group]


def gate_settings(name: str) -> tuple[str, ...] | None:
    """The settings a regression gate must find equal before it compares two rows of this backend;
    None for a backend not installed here (nothing says which of its settings change speed)."""
    _load()
    return _BACKENDS[name].gate_settings if name in _BACKENDS else None


@dataclass(frozen=True)
class BackendStatus:
    name: str
    description: str
    ok: bool
    reason: str = ""
    extra: str = ""

    def to_dict(self) -> dict:
        return {"name": self.name, "description": self.description, "ok": self.ok, "reason": self.reason, "extra": self.extra}


def status(name: str) -> BackendStatus:
    backend = get(name)
    try:
        if name in _PLUGINS:
            reason = _contained(f"backend plug-in '{shorten(printable(name), 40)}'s availability check", backend.unavailable_reason)
        else:
            reason = backend.unavailable_reason()
    except Exception as exc:  # a broken install must read as unavailable, never crash the listing
        reason = f"check failed: {exc.message if isinstance(exc, InfertoolError) else first_line(exc)}"
    if reason is not None and not isinstance(reason, str):
        reason = f"check failed: it returned {shorten(printable(repr(reason)), 40)}, not a reason"
    return BackendStatus(name, printable(str(backend.description)), reason is None, printable(reason or ""), printable(str(backend.extra)))


def available() -> list[BackendStatus]:
    """Every backend, and the plug-ins that failed to load (unavailable, saying why)."""
    _load()
    broken = [BackendStatus(name, "backend plug-in", False, f"plug-in {problem}") for name, problem in _BROKEN.items() if name not in _BACKENDS]
    return [*(status(name) for name in names()), *broken]


def require(name: str) -> Backend:
    """The backend, or a one-line error saying why it cannot run here."""
    found = status(name)
    if not found.ok:
        raise InfertoolError(f"backend {name} is unavailable: {found.reason}", hint="run 'infertool doctor' to see what is installed")
    return get(name)


def default_for(model: Path) -> Backend:
    """The backend `run` uses when none is named: for an engine, the one whose library built it
    (read from its sidecar), else the first that opens engine files; the reference backend for an ONNX model."""
    if model.suffix == ".engine":
        engines = [b for b in (get(n) for n in names()) if b.capabilities.runs_engines]
        return next((b for b in engines if b.claims(model)), engines[0])
    return get(REFERENCE)


def check_groups(backends: list[Backend], runner: RunnerOptions, why: str) -> None:
    """A backend's own options given where none of `backends` reads them would change nothing: refused,
    `why` saying so ("which this bench does not run"); an option some backends of a family read
    (`option(readers=...)`) is checked against those."""
    names = {b.name for b in backends}
    for value in runner.groups.values():
        kind = type(value)
        unread: dict[tuple[str, ...], list[str]] = {}
        for item in fields(kind):
            if "flag" in item.metadata and getattr(value, item.name) != option_default(item):
                users = tuple(item.metadata["readers"]) or tuple(readers(kind))
                if not names & set(users):
                    unread.setdefault(users, []).append(_flag_given(item, getattr(value, item.name)))
        for users, flags in unread.items():
            raise InfertoolError(
                f"{listing(flags)} {'is an option' if len(flags) == 1 else 'are options'} of {listing(list(users))}, {why}",
                hint=f"give --backend {users[0]}, or drop {'it' if len(flags) == 1 else 'them'}",
            )


def _flag_given(item: Field, value: object) -> str:
    """The flag as the user typed it: --no-x where a --x/--no-x switch is off."""
    on, _, off = item.metadata["flag"].partition("/")
    return off if off and value is False else on
