"""Markdown with everything user-controlled escaped. Labels, file, node and output names, cell IDs
and settings come from users and result files: `<script>`, `<img onerror=…>` or
`[x](javascript:…)` in them must reach a CommonMark renderer as text, never as markup or a link
(the HTML report escapes them as HTML). CSV cells get the same care against formula injection."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from urllib.parse import quote

from infertool.text import printable

PUNCTUATION = re.compile(r"([\\`*\[\]|])")  # what makes code spans, links, images, table cells (and bold)
FORMULA = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet reads a cell starting so as a formula


def text(value: object) -> str:
    """Plain text as Markdown shows it: HTML characters as entities, Markdown's punctuation escaped,
    control characters as `\\xNN`, one line."""
    plain = printable(str(value)).replace("\n", " ")
    plain = plain.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return PUNCTUATION.sub(r"\\\1", plain)


def link_target(path: str) -> str:
    """A relative path as a link destination that stays one (spaces, parentheses, `javascript:` encoded)."""
    return quote(path, safe="/._-")


def table(header: Sequence[str], rows: Iterable[Sequence[object]], right: Iterable[str] = ()) -> list[str]:
    """A Markdown table; every cell is text (escaped), columns in `right` aligned right."""
    aligned = set(right)
    lines = ["| " + " | ".join(text(h) for h in header) + " |", "|" + "|".join("---:" if h in aligned else "---" for h in header) + "|"]
    lines += ["| " + " | ".join(text(cell) for cell in row) + " |" for row in rows]
    return lines


def csv_cell(value: object) -> object:
    """A CSV cell that a spreadsheet shows as text: a string starting with =, +, -, @ gets a leading
    quote (numbers are left as they are)."""
    return f"'{value}" if isinstance(value, str) and value.startswith(FORMULA) else value
