"""The backend registry, filled by `register` in each backend's own file.

Every module in this package is imported on first use, and so are the modules that installed
packages name under the `infertool.backends` entry-point group: adding a backend is one file.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import pkgutil
from dataclasses import dataclass
from pathlib import Path

from infertool.backends.base import Backend
from infertool.errors import InfertoolError, first_line

ENTRY_POINTS = "infertool.backends"
REFERENCE = "ort-cpu"  # the backend that produces the reference outputs every row is checked against
_NOT_BACKENDS = {"base", "registry"}
_BACKENDS: dict[str, Backend] = {}
_loaded = False


def register(backend: Backend) -> Backend:
    """Add a backend (an instance); returns it, so a module can keep a handle."""
    _BACKENDS[backend.name] = backend
    return backend


def modules() -> tuple[str, ...]:
    """The modules that registered a backend by being imported, outside this package and its entry
    points (a program's own backend): a fresh process imports them to find the same backends."""
    return tuple(dict.fromkeys(type(b).__module__ for b in _BACKENDS.values() if not type(b).__module__.startswith(f"{__package__}.")))


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
        try:
            entry.load()
        except Exception as exc:  # a broken plug-in must not take the built-in backends down
            raise InfertoolError(f"backend plug-in '{entry.name}' ({entry.value}) failed to load",
                                 hint="fix or uninstall the package that provides it (--verbose shows its error)", detail=first_line(exc)) from exc


def names() -> list[str]:
    _load()
    return list(_BACKENDS)


def get(name: str) -> Backend:
    _load()
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
        reason = backend.unavailable_reason()
    except Exception as exc:  # a broken install must read as unavailable, never crash the listing
        reason = f"check failed: {first_line(exc)}"
    return BackendStatus(name, backend.description, reason is None, reason or "", backend.extra)


def available() -> list[BackendStatus]:
    return [status(name) for name in names()]


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
