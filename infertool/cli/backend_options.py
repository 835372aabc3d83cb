"""The backends' own option groups on the command line, built from the registry (as Polygraphy's
plug-ins add argument groups): each backend declares a dataclass of `base.option` fields in its own
file, and `bench` gets one typer option per field under the group's heading. Loading the registry
imports every backend, so the CLI asks for them only where bench runs (`app._command`)."""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from typing import Any, Optional

import typer

from infertool.cli import parse


def _cli_name(kind: type, name: str) -> str:
    """A field's parameter name on the command (unique across groups and the command's own options)."""
    return f"{kind.key}_{name}".replace("-", "_")


def _cli_type(hint: Any) -> Any:
    """typer's spelling of a field's type: Optional[X] for `X | None`."""
    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType) and type(None) in args:
        return Optional[next(a for a in args if a is not type(None))]
    return hint


def _option(kind: type, item: dataclasses.Field) -> typer.models.OptionInfo:
    meta = item.metadata
    choices = meta["choices"]
    return typer.Option(
        item.default, meta["flag"], help=meta["help"], metavar=meta["metavar"] or ("|".join(choices) if choices else None),
        min=meta["min"], max=meta["max"], rich_help_panel=kind.title,
    )


def _to_groups(self) -> dict[str, object]:
    """The groups given on the command line (a value other than its default), as the backends read them;
    a value outside a field's choices is a usage error here, before any work."""
    given = {}
    for kind in self.kinds:
        values = {}
        for item in dataclasses.fields(kind):
            value = getattr(self, _cli_name(kind, item.name))
            if value is not None and item.metadata["choices"]:
                value = parse.choice(value, item.metadata["choices"], item.metadata["flag"])
            values[item.name] = value
        if any(values[f.name] != f.default for f in dataclasses.fields(kind)):
            given[kind.key] = kind(**values)
    return given


def _from_groups(cls, groups: dict) -> object:
    """The command-line group that gives these backend option groups (tune's reproducing command)."""
    values = {}
    for kind in cls.kinds:
        given = groups.get(kind.key) or kind()
        values.update({_cli_name(kind, f.name): getattr(given, f.name) for f in dataclasses.fields(kind)})
    return cls(**values)


def _group(kinds: tuple[type, ...]) -> type:
    """One command-line option group holding these backend option groups (its `to_groups()` builds them)."""
    fields = []
    for kind in kinds:
        hints = typing.get_type_hints(kind)
        fields += [(_cli_name(kind, f.name), _cli_type(hints[f.name]), _option(kind, f)) for f in dataclasses.fields(kind)]
    namespace = {"kinds": kinds, "to_groups": _to_groups, "from_groups": classmethod(_from_groups)}
    return dataclasses.make_dataclass("BackendOptions", fields, namespace=namespace)


NONE = _group(())  # where bench does not run


@functools.cache
def group() -> type:
    """Every backend's own options, as one command-line group (loads the registry)."""
    from infertool.backends import registry

    return _group(tuple(registry.option_groups()))
