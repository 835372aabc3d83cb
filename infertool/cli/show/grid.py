"""Tables that fit the terminal without cutting a number: a column that carries nothing is left
out, a value every row shares moves into the heading, and when the table is still too wide the
least needed columns go, then each row is shown as a list of fields."""

from __future__ import annotations

from dataclasses import dataclass

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from infertool.cli.console import escape
from infertool.tensors import format_shape

NUM, TEXT = "num", "text"
COMFORTABLE = 20  # text columns narrower than this make way for droppable columns first


def mark(ok: bool) -> str:
    return "[green]ok[/]" if ok else "[red]FAIL[/]"


def shapes_text(shapes: dict) -> str:
    return ", ".join(f"{escape(name)} {format_shape(shape)}" for name, shape in shapes.items())


@dataclass(frozen=True)
class Column:
    name: str
    kind: str = NUM  # NUM: right-aligned, never wrapped; TEXT: left-aligned, wraps between words
    shared: str | None = None  # a value every row shares goes into the heading, formatted so ("batch {}")
    drop: int = 0  # when too wide, the highest goes first; 0: stays


def _cell_range(text: str, kind: str) -> tuple[int, int]:
    plain = Text.from_markup(text, emoji=False).plain
    widest = max((Text(line).cell_len for line in plain.splitlines()), default=0)
    if kind == NUM:
        return widest, widest
    return max((Text(word).cell_len for word in plain.split()), default=0), widest


def _ranges(columns: list[Column], rows: list[list[str]], squeeze: bool) -> list[tuple[int, int]]:
    """(narrowest, widest) width of each column without cutting a word or a number; unless
    `squeeze`, text keeps COMFORTABLE columns before it wraps."""
    found = []
    for index, column in enumerate(columns):
        header = _cell_range(column.name, TEXT)
        cells = [_cell_range(row[index], column.kind) for row in rows]
        lo, hi = max([header[0], *(c[0] for c in cells)]), max([header[1], *(c[1] for c in cells)])
        found.append((lo if squeeze or column.kind == NUM else max(lo, min(hi, COMFORTABLE)), hi))
    return found


def _table(columns: list[Column], rows: list[list[str]], widths: list[int]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0))
    for column, width in zip(columns, widths):
        # a width at least each number's keeps numbers whole; headers may wrap between words
        table.add_column(column.name, justify="right" if column.kind == NUM else "left", width=width, overflow="fold")
    for row in rows:
        table.add_row(*row)
    return table


def _fitted(console: Console, columns: list[Column], rows: list[list[str]], squeeze: bool) -> Table | None:
    """The table at the console's width, or None when its narrowest layout is too wide."""
    ranges = _ranges(columns, rows, squeeze)
    narrow = [lo for lo, _ in ranges]
    unbounded = console.options.update_width(sum(hi for _, hi in ranges) + 4 * len(columns) + 4)
    overhead = console.measure(_table(columns, rows, narrow), options=unbounded).maximum - sum(narrow)
    slack = console.width - overhead - sum(narrow)
    if slack < 0:
        return None
    widths = list(narrow)
    for index, (lo, hi) in enumerate(ranges):  # room for headers and text to spread, left to right
        extra = min(hi - lo, slack)
        widths[index] += extra
        slack -= extra
    return _table(columns, rows, widths)


def _shared(columns: list[Column], rows: list[list[str]]) -> tuple[list[Column], list[list[str]], list[str]]:
    """Move columns whose value every row shares into the heading."""
    keep, heading = [], []
    for index, column in enumerate(columns):
        values = {row[index] for row in rows}
        if column.shared is not None and len(values) == 1 and rows:
            if column.shared:  # an empty format hides a shared value (the title says it)
                heading.append(column.shared.format(values.pop()))
        else:
            keep.append(index)
    return [columns[i] for i in keep], [[row[i] for i in keep] for row in rows], heading


def _stacked(console: Console, columns: list[Column], rows: list[list[str]]) -> None:
    """One block per row, one field per line: for terminals too narrow for the table."""
    for number, row in enumerate(rows):
        block = Table(box=None, show_header=False, pad_edge=False, padding=(0, 2, 0, 0))
        block.add_column(no_wrap=True, style="bold")
        block.add_column(overflow="fold")
        for column, value in zip(columns, row):
            block.add_row(column.name, value)
        console.print(block)
        if number < len(rows) - 1:
            console.print()


def _dropping(console: Console, columns: list[Column], rows: list[list[str]]) -> Table | None:
    """Leave out droppable columns, the least needed first, until the table fits; text wraps only
    once nothing is left to drop."""
    shown, cells = list(columns), [list(row) for row in rows]
    while any(c.drop for c in shown):
        index = shown.index(max(shown, key=lambda c: c.drop))
        del shown[index]
        for row in cells:
            del row[index]
        table = _fitted(console, shown, cells, squeeze=False)
        if table is not None:
            return table
    return _fitted(console, shown, cells, squeeze=True)


def grid(console: Console, title: str, columns: list[Column], rows: list[list[str]], caption: str | None = None) -> None:
    """`rows` of markup strings under `columns`, fitted to the console (see the module's docstring)."""
    columns, rows, heading = _shared(columns, rows)
    console.print(Text.from_markup(title + ("\n" + ", ".join(heading) if heading else ""), style="italic", emoji=False))
    table = _fitted(console, columns, rows, squeeze=False) or _dropping(console, columns, rows)
    if table is None:
        _stacked(console, columns, rows)
    else:
        console.print(table)
    if caption:
        console.print(Text.from_markup(caption, style="dim", emoji=False))


def pairs(console: Console, title: str, items: list[tuple[str, str]]) -> None:
    """A heading and `name  value` lines (values wrap)."""
    console.print(Text.from_markup(title, style="italic", emoji=False))
    table = Table(box=None, show_header=False, pad_edge=False, padding=(0, 2, 0, 0))
    table.add_column(no_wrap=True, style="bold")
    table.add_column(overflow="fold")
    for name, value in items:
        table.add_row(name, value)
    console.print(table)


def present(columns: list[Column], rows: list[list[str]]) -> tuple[list[Column], list[list[str]]]:
    """Leave out the columns with nothing but '-'."""
    keep = [i for i in range(len(columns)) if any(row[i] != "-" for row in rows)]
    return [columns[i] for i in keep], [[row[i] for i in keep] for row in rows]
