"""Reading result files back as typed records: each field checked for its type and range as it is
read, so a damaged or hand-edited file is one line naming the file and the field, never a crash
deep inside a command that trusted it."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from infertool.errors import InfertoolError, first_line
from infertool.files import read_bytes
from infertool.text import printable, shorten

RESULT_LIMIT = 256 * 2**20  # bytes of one result file
INT64_MAX = 2**63 - 1
MISSING: Any = object()
T = TypeVar("T")


class Damaged(Exception):
    """A field that is missing or not what the schema says."""

    def __init__(self, where: str, problem: str):
        super().__init__(f"{where} {problem}")
        self.where, self.problem = where, problem


def kind(value: object) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(type(value), "a number")


def shown(value: object) -> str:
    """A value as an error names it: short, printable."""
    return shorten(printable(repr(value)), 40) if isinstance(value, (int, float, str)) and not isinstance(value, bool) else kind(value)


class Fields:
    """Typed access to one JSON object of a result file; `where` names it (rows[3].latency_ms)."""

    def __init__(self, data: object, where: str):
        if not isinstance(data, dict):
            raise Damaged(where, f"is {kind(data)}, not an object")
        self.data, self.where = data, where

    def _at(self, key: str) -> str:
        return f"{self.where}.{shorten(printable(key), 40)}" if self.where else shorten(printable(key), 40)

    def _get(self, key: str, default: Any) -> Any:
        if key in self.data and self.data[key] is not None:
            return self.data[key]
        if default is MISSING:
            raise Damaged(self._at(key), "is missing")
        return default

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def text(self, key: str, default: Any = MISSING) -> str:
        value = self._get(key, default)
        if value is not default and not isinstance(value, str):
            raise Damaged(self._at(key), f"is {kind(value)}, not text")
        return value

    def number(self, key: str, default: Any = MISSING, low: float = -math.inf, high: float = math.inf) -> float:
        value = self._get(key, default)
        if value is default:
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise Damaged(self._at(key), f"is {kind(value)}, not a number")
        if isinstance(value, int) and abs(value) > INT64_MAX:
            raise Damaged(self._at(key), f"is {shown(value)}, too large")
        if not (math.isfinite(value) and low <= value <= high):
            raise Damaged(self._at(key), f"is {shown(value)}, not a number from {low:g} to {high:g}")
        return float(value)

    def integer(self, key: str, default: Any = MISSING, low: int = 0, high: int = INT64_MAX) -> int:
        value = self._get(key, default)
        if value is default:
            return value
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise Damaged(self._at(key), f"is {shown(value)}, not a whole number from {low} to {high}")
        return value

    def flag(self, key: str, default: Any = MISSING) -> bool:
        value = self._get(key, default)
        if value is not default and not isinstance(value, bool):
            raise Damaged(self._at(key), f"is {kind(value)}, not true or false")
        return value

    def obj(self, key: str, default: Any = MISSING) -> Fields:
        value = self._get(key, default)
        return value if value is default else Fields(value, self._at(key))

    def mapping(self, key: str, default: Any = MISSING) -> dict:
        """A free-form object (settings, memory): checked to be one, kept as it is."""
        return self.obj(key, default).data if self.has(key) or default is MISSING else default

    def items(self, key: str, read: Callable[[Fields], T], default: Any = MISSING) -> list[T]:
        """A list of objects, each read by `read`."""
        return [read(Fields(item, f"{self._at(key)}[{index}]")) for index, item in enumerate(self._list(key, default))]

    def texts(self, key: str, default: Any = MISSING) -> list[str]:
        found = self._list(key, default)
        for index, item in enumerate(found):
            if not isinstance(item, str):
                raise Damaged(f"{self._at(key)}[{index}]", f"is {kind(item)}, not text")
        return list(found)

    def numbers(self, key: str, default: Any = MISSING) -> list[float]:
        found = self._list(key, default)
        holder = Fields({str(i): v for i, v in enumerate(found)}, self._at(key))
        return [holder.number(str(i)) for i in range(len(found))]

    def _list(self, key: str, default: Any) -> list:
        value = self._get(key, default)
        if value is default:
            return list(default)
        if not isinstance(value, list):
            raise Damaged(self._at(key), f"is {kind(value)}, not a list")
        return value

    def entries(self) -> Iterator[tuple[str, Any]]:
        return iter(self.data.items())


def load_json(path: Path, what: str, hint: str, limit: int = RESULT_LIMIT) -> object:
    """A JSON file, within a size limit and without unbounded nesting; one line where it is not one."""
    data = read_bytes(path, what, limit, hint=hint)
    try:
        return json.loads(data)
    except RecursionError as exc:
        raise InfertoolError(f"{what} {shorten(path)} is nested too deeply to be an infertool result", hint=hint) from exc
    except ValueError as exc:  # UnicodeDecodeError included
        raise InfertoolError(f"{what} {shorten(path)} is not JSON", hint=hint, detail=first_line(exc)) from exc


def reading(path: Path, what: str, hint: str, read: Callable[[Fields], T], data: object) -> T:
    """`read` applied to a file's parsed JSON, a damaged field one line naming the file and the field."""
    try:
        return read(Fields(data, ""))
    except Damaged as exc:
        raise InfertoolError(f"{shorten(path)} is a damaged {what}: {exc.where or 'the file'} {exc.problem}", hint=hint) from None
