"""What the CLI prints: rows of cells, as a table people read or as CSV, Markdown or JSON for
machines and CI logs.

Nothing is ever cut. A table wider than the terminal (80 columns when output is piped, as in
every CI log) is split into tables of fewer columns, each repeating the first; when even that
cannot fit, it is printed as records — one block per row, a line per column — rather than
squeezing cells into ``lab…`` or ``3,5…``.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"


@dataclass
class Rows:
    """A titled grid of text cells. ``numeric`` columns are right-aligned; ``total`` rows (the
    last ones) are printed bold."""

    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    numeric: frozenset[str] = frozenset()
    total: int = 0

    def add(self, *cells: object) -> None:
        self.rows.append(["" if c is None else str(c) for c in cells])


def emit(console: Console, answer: Any, grids: list[Rows], fmt: Format = Format.table) -> None:
    """Print ``grids`` in ``fmt``; for JSON, the API's own ``answer`` (every field, unrounded)."""
    if fmt is Format.json:
        console.out(json.dumps(answer, indent=2, default=str), highlight=False)
        return
    for i, grid in enumerate(grids):
        if fmt is Format.csv:
            console.out(to_csv(grid), end="", highlight=False)
        elif fmt is Format.markdown:
            console.out(("\n" if i else "") + to_markdown(grid), end="", highlight=False)
        else:
            print_table(console, grid)


def to_csv(grid: Rows) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(grid.columns)
    plain = [i for i, c in enumerate(grid.columns) if c in grid.numeric]  # 95553, not "95,553"
    for row in grid.rows:
        writer.writerow([c.replace(",", "") if i in plain else c for i, c in enumerate(row)])
    return out.getvalue()


def to_markdown(grid: Rows) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", r"\|").replace("\n", " ") for c in cells) + " |"

    align = ["---:" if c in grid.numeric else "---" for c in grid.columns]
    body = [line(grid.columns), "|" + "|".join(align) + "|", *map(line, grid.rows)]
    return (f"**{grid.title}**\n\n" if grid.title else "") + "\n".join(body) + "\n"


def width_of(grid: Rows) -> int:
    """The width of ``grid`` as a table with no cell broken: rich's borders and padding take 3
    characters per column and 1 more."""
    widths = [max(len(line) for cell in col for line in cell.splitlines() or [""])
              for col in zip(grid.columns, *grid.rows, strict=True)]  # fmt: skip
    return sum(widths) + 3 * len(widths) + 1


def print_table(console: Console, grid: Rows) -> None:
    if width_of(grid) > console.width:
        parts = split(grid, console.width)
        if not parts:
            print_records(console, grid)
            return
        for part in parts:
            print_table(console, part)
        return
    table = Table(title=escape(grid.title) if grid.title else None)
    for col in grid.columns:
        table.add_column(escape(col), justify="right" if col in grid.numeric else "left",
                         no_wrap=True)  # fmt: skip
    first_total = len(grid.rows) - grid.total
    for i, row in enumerate(grid.rows):
        table.add_row(*map(escape, row), style="bold" if i >= first_total else "")
    console.print(table)


def split(grid: Rows, width: int) -> list[Rows]:
    """``grid`` as several grids, each its first column and as many of the next as fit in
    ``width``; empty when the first column and any other do not fit together."""
    parts: list[Rows] = []
    start, n = 1, len(grid.columns)
    while start < n:
        end = start
        while end < n and width_of(_columns(grid, start, end + 1)) <= width:
            end += 1
        if end == start:
            return []
        part = _columns(grid, start, end)
        part.title = grid.title if not parts else ""
        parts.append(part)
        start = end
    return parts


def _columns(grid: Rows, start: int, end: int) -> Rows:
    keep = [0, *range(start, end)]
    rows = [[row[i] for i in keep] for row in grid.rows]
    return Rows(grid.title, [grid.columns[i] for i in keep], rows, grid.numeric, grid.total)


def print_records(console: Console, grid: Rows) -> None:
    """One block per row: its first cell as a heading, then ``column: value`` lines."""
    if grid.title:
        console.print(escape(grid.title), style="bold", soft_wrap=True)
    pad = max((len(c) for c in grid.columns[1:]), default=0)
    for row in grid.rows:
        console.print(f"\n{escape(grid.columns[0])}: {escape(row[0])}", style="bold",
                      soft_wrap=True)  # fmt: skip
        for col, cell in zip(grid.columns[1:], row[1:], strict=True):
            console.print(f"  {escape(col):<{pad}}  {escape(cell)}", soft_wrap=True,
                          highlight=False)  # fmt: skip
