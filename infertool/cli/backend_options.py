"""The backends' own option groups on the command line, built from the registry (as Polygraphy's
plug-ins add argument groups): each backend declares a dataclass of `base.option` fields in its own
file, and each command the field names (`bench`, `run`) gets one typer option per field under the
group's heading. Loading the registry imports every backend, so the CLI asks for them only where
those commands run (`app._command`)."""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from pathlib import Path
from typing import Any, List, Optional

import typer

from infertool.backends.base import option_default
from infertool.cli import parse

# how an option reads its value from text where that is not the field's type: (typer's type, text -> value, value -> text)
TEXTS: dict[str, tuple[Any, Any, Any]] = {
    "size": (Optional[str], parse.size, lambda value: f"{value // 2**10}K"),
    "pairs": (Optional[List[str]], lambda texts: parse.provider_options(texts or []), lambda value: [f"{k}={v}" for k, v in value.items()] or None),
}
# the file an option's value names, by its `file`: read ("in", "source": the file of a convert SOURCE) or written ("out")
FILES = {"in": Path, "source": lambda text: Path(parse.source_file(text)), "out": Path}


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
        None if meta["text"] else item.default, meta["flag"], *filter(None, [meta["short"]]), help=meta["help"],
        metavar=meta["metavar"] or ("|".join(choices) if choices else None), min=meta["min"], max=meta["max"], rich_help_panel=kind.title,
    )


def _value(item: dataclasses.Field, value: object) -> object:
    """A field's value as given on the command line, read from its text; a value outside its choices is a usage error."""
    meta = item.metadata
    if meta["text"]:
        return option_default(item) if value is None else TEXTS[meta["text"]][1](value)
    if value is not None and meta["choices"]:
        return parse.choice(value, meta["choices"], meta["flag"])
    return value


def _to_groups(self) -> dict[str, object]:
    """The groups given on the command line (a value other than its defaults), as the backends read them,
    checked here, before any work."""
    given = {}
    for kind, items in self.kinds.items():
        value = kind(**{item.name: _value(item, getattr(self, _cli_name(kind, item.name))) for item in items})
        if value != kind():
            given[kind.key] = value
    return given


def _files(self, mode: str) -> dict[str, Path | None]:
    """The files the options given name, by flag: read (`mode` "in") or written ("out")."""
    found = {}
    for kind, items in self.kinds.items():
        for item in (i for i in items if i.metadata["file"] and (i.metadata["file"] == "out") == (mode == "out")):
            value = getattr(self, _cli_name(kind, item.name))
            found[item.metadata["flag"]] = FILES[item.metadata["file"]](value) if value else None
    return found


def _from_groups(cls, groups: dict) -> object:
    """The command-line group that gives these backend option groups (tune's reproducing command)."""
    values = {}
    for kind, items in cls.kinds.items():
        given = groups.get(kind.key) or kind()
        for item in items:
            value, text = getattr(given, item.name), item.metadata["text"]
            values[_cli_name(kind, item.name)] = TEXTS[text][2](value) if text and value is not None else value
    return cls(**values)


def _group(kinds: tuple[type, ...], command: str) -> type:
    """One command-line option group holding these backend option groups' options on `command`."""
    fields, chosen = [], {}
    for kind in kinds:
        hints = typing.get_type_hints(kind)
        items = [f for f in dataclasses.fields(kind) if "flag" in f.metadata and command in f.metadata["commands"]]
        chosen[kind] = items
        for item in items:
            text = item.metadata["text"]
            fields.append((_cli_name(kind, item.name), TEXTS[text][0] if text else _cli_type(hints[item.name]), _option(kind, item)))
    namespace = {"kinds": chosen, "to_groups": _to_groups, "files": _files, "from_groups": classmethod(_from_groups)}
    return dataclasses.make_dataclass("BackendOptions", fields, namespace=namespace)


NONE = _group((), "")  # where the registry is not loaded
_made = functools.cache(_group)


def group(command: str) -> type:
    """Every registered backend's own options on this command, as one command-line group (loads the registry)."""
    from infertool.backends import registry

    return _made(tuple(registry.option_groups()), command)
