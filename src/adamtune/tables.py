"""Tables for the terminal that never cut a number: in a narrow terminal, whole columns are left
out (in an order of least use) and named, instead of every cell being cut to "0.00…"."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.table import Table

WRAP_MIN = 20
"""The narrowest a column of long text is counted at (it wraps; a longer word folds)."""
BORDER = 3
"""Characters each column adds to a rich table's width: its padding and one rule."""


@dataclass(frozen=True)
class Column:
    name: str
    wraps: bool = False
    """Long text (a reason, a path, a sentence) that may wrap onto more lines; else kept whole."""


def fitted_table(
    title: str,
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    width: int,
    leave_out: Sequence[str] = (),
) -> tuple[Table, list[str]]:
    """The table of ``rows`` in ``width`` characters: the columns named in ``leave_out`` are
    left out, in that order, until the others fit whole; returns the table and those left out."""
    kept = list(range(len(columns)))
    left_out: list[str] = []
    for name in leave_out:
        if _width(columns, rows, kept) <= width:
            break
        index = next((i for i in kept if columns[i].name == name), None)
        if index is not None:
            kept.remove(index)
            left_out.append(name)
    table = Table(title=title, title_justify="left")
    for index in kept:
        column = columns[index]
        table.add_column(
            column.name, no_wrap=not column.wraps, overflow="fold" if column.wraps else "ellipsis"
        )
    for row in rows:
        table.add_row(*(row[i] for i in kept))
    return table, left_out


def _width(columns: Sequence[Column], rows: Sequence[Sequence[str]], kept: Sequence[int]) -> int:
    total = 1
    for index in kept:
        column = columns[index]
        cells = [row[index] for row in rows]
        if column.wraps:
            words = [len(word) for cell in cells for word in cell.split()]
            needed = max(len(column.name), min(max(words, default=0), WRAP_MIN))
        else:
            needed = max([len(column.name), *(len(cell) for cell in cells)])
        total += needed + BORDER
    return total
