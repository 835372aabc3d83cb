"""The command line before click reads it: `--debug` anywhere, the optional paths of `--json`,
`--csv` and `--markdown` (a bare one, or `-`, means stdout), and old spellings of options."""

from __future__ import annotations

from typing import Any

from infertool.errors import InfertoolError

# options whose value is optional, and the suffix that marks a word after them as their path
OPTIONAL_VALUE = {"--json": ".json", "--csv": ".csv", "--markdown": ".md"}
# per command: an old spelling -> the option it stands for (accepted, not shown in --help)
OLD_SPELLINGS = {
    "bench": {"--trt-precision": "--precision", "--input-data": "--inputs"},
    "run": {"--input-data": "--inputs"},
}


def _options(command: Any) -> list[Any]:
    """The command's options (typer vendors click: by duck typing)."""
    return [p for p in command.params if p.param_type_name == "option"]


def _renamed(tokens: list[str], renames: dict[str, str], command: Any) -> list[str]:
    found = []
    for token in tokens:
        name, eq, value = token.partition("=")
        if name in renames:
            new = renames[name]
            spellings = next(p.opts for p in _options(command) if new in p.opts)
            if any(t.partition("=")[0] in spellings for t in tokens):
                raise InfertoolError(f"{name} is the old spelling of {new}: give one of them")
            token = new + eq + value
        found.append(token)
    return found


def _takes_value(command: Any) -> set[str]:
    return {opt for p in _options(command) if not p.is_flag and not p.count for opt in (*p.opts, *p.secondary_opts)}


def _short_cluster(token: str, takes_value: set[str]) -> bool:
    """Whether `-abc` ends in an option that takes the next word as its value."""
    for index, char in enumerate(token[1:]):
        if f"-{char}" in takes_value:
            return index == len(token) - 2
    return False


def _optional_values(tokens: list[str], command: Any) -> list[str]:
    """Give `--json` / `--csv` / `--markdown` a value: the next word when it is `-`, ends in the
    format's suffix, or is not needed as the command's argument; else `-` (stdout)."""
    takes_value = _takes_value(command)
    mine = {opt: suffix for opt, suffix in OPTIONAL_VALUE.items() if opt in takes_value}
    found: list[str] = []
    undecided: list[int] = []  # where in `found` an option stands whose next word may be an argument
    arguments, i = 0, 0
    while i < len(tokens):
        token = tokens[i]
        following = tokens[i + 1] if i + 1 < len(tokens) else None
        if token == "--":
            found += tokens[i:]
            arguments += len(tokens) - i - 1
            break
        if token in mine:
            if following is None or (following.startswith("-") and following != "-"):
                found += [token, "-"]
                i += 1
                continue
            if following != "-" and not following.endswith(mine[token]):
                undecided.append(len(found))
            found += [token, following]
            i += 2
            continue
        found.append(token)
        i += 1
        if token.startswith("-") and token != "-":
            wants = token in takes_value if token.startswith("--") else _short_cluster(token, takes_value)
            if wants and following is not None:
                found.append(following)
                i += 1
        else:
            arguments += 1
    missing = sum(1 for p in command.params if p.param_type_name == "argument" and p.required) - arguments
    for index in reversed(undecided[: max(0, missing)]):
        found.insert(index + 1, "-")  # that word is the command's argument; the option goes to stdout
    return found


def normalize(argv: list[str], group: Any) -> tuple[list[str], bool]:
    """(the arguments click should read, whether --debug was given); sub-groups (`debug layers`) too."""
    debug = "--debug" in argv
    args = [a for a in argv if a != "--debug"]
    node, start, name = group, 0, None
    while hasattr(node, "commands"):
        index = next((i for i in range(start, len(args)) if not args[i].startswith("-")), None)
        if index is None or args[index] not in node.commands:
            return args, debug
        node, start, name = node.commands[args[index]], index + 1, args[index]
    rest = _renamed(args[start:], OLD_SPELLINGS.get(name, {}), node)
    return [*args[:start], *_optional_values(rest, node)], debug
