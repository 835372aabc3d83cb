"""`--help` as a user reads it: metavars instead of type names (no `<bool>`, `<list[str]>`,
`<path>`), bracketed defaults kept as written, arguments named in capitals everywhere."""

from __future__ import annotations

import copy
import enum
import typing
from pathlib import Path
from typing import Any

from rich.markup import escape
from typer.models import ArgumentInfo, OptionInfo

METAVARS = {Path: "PATH", int: "N", float: "X", str: "TEXT"}


def _inner(annotation: Any) -> Any:
    """int from Optional[int], str from List[str]."""
    while typing.get_origin(annotation) in (typing.Union, list, typing.List):  # noqa: UP006
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    return annotation


def _metavar(annotation: Any) -> str:
    kind = _inner(annotation)
    if kind is bool:
        return ""  # a flag takes no value
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return "|".join(str(member.value) for member in kind)
    return METAVARS.get(kind, "TEXT")


def declared(info: Any, annotation: Any, name: str) -> Any:
    """A tidied copy of a parameter's typer.Option / typer.Argument (other defaults as they are)."""
    if not isinstance(info, (OptionInfo, ArgumentInfo)):
        return info
    info = copy.copy(info)
    if info.help:  # help is rich markup to typer: `[default: ...]` would vanish as an unknown style tag
        info.help = escape(info.help)
    if info.metavar is None:
        info.metavar = name.upper() if isinstance(info, ArgumentInfo) else _metavar(annotation)
    return info


def _no_type(ctx: Any) -> None:
    return None


def _tidy_help_option(command: Any) -> None:
    make = command.get_help_option

    def help_option(ctx: Any) -> Any:
        option = make(ctx)
        if option is not None:
            option.metavar = ""
        return option

    command.get_help_option = help_option


def tidy(command: Any) -> Any:
    """What the declarations cannot say, on the click command typer built (in place): no type
    after an argument's name, no metavar after --help; for a group, every sub-command too."""
    if command.help:
        command.help = escape(command.help)
    for param in command.params:
        if param.param_type_name == "argument":
            param.display_type_rich = _no_type  # the metavar says what it is
        elif param.is_flag and param.metavar is None:
            param.metavar = ""  # options declared outside @command (the root's --version, --debug)
    _tidy_help_option(command)
    for sub in getattr(command, "commands", {}).values():
        tidy(sub)
    return command
