"""What the CLI prints: nothing cut at 80 columns, machine formats exact."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

from shibuya.output import Format, Rows, emit, split, to_csv, to_markdown, width_of


def _report() -> Rows:
    columns = ["label", "samples", "errors", "error %", "req/s", "p50 ms", "p90 ms", "p95 ms",
               "p99 ms", "p99.9 ms", "max ms", "codes"]  # fmt: skip
    grid = Rows("run run-0123456789ab: finished", columns, numeric=frozenset(columns[1:-1]))
    grid.add(
        'POST /login, "json" with a long label',
        "3,512,345",
        "70,247",
        "2.0%",
        "219,521.6",
        "0.0",
        "1.0",
        "3.0",
        "8.1",
        "32.3",
        "1,322",
        "200:3442098 500:70247",
    )
    grid.add("all labels", "7,024,690", "70,247", "1.0%", "439,043.1", "0.0", "1.0", "3.0",
             "8.1", "34.3", "1,325", "200:6954443 500:70247")  # fmt: skip
    grid.total = 1
    return grid


def _printed(grid: Rows, width: int) -> str:
    out = io.StringIO()
    console = Console(file=out, width=width, color_system=None)
    emit(console, None, [grid], Format.table)
    return out.getvalue()


@pytest.mark.parametrize("width", [60, 80, 120, 250])
def test_no_cell_is_cut_at_any_width(width: int) -> None:
    grid = _report()
    printed = _printed(grid, width)
    assert "…" not in printed
    for row in grid.rows:
        for cell in row:
            assert cell in printed, (cell, printed)
    assert max(len(line) for line in printed.splitlines()) <= width


def test_a_wide_table_is_split_repeating_its_first_column() -> None:
    grid = _report()
    parts = split(grid, 80)
    assert len(parts) > 1
    assert all(p.columns[0] == "label" and width_of(p) <= 80 for p in parts)
    assert [c for p in parts for c in p.columns[1:]] == grid.columns[1:]
    assert parts[0].title == grid.title
    assert all(p.title == "" for p in parts[1:])


def test_when_even_one_column_does_not_fit_rows_become_records() -> None:
    printed = _printed(_report(), 40)
    assert split(_report(), 40) == []
    assert 'label: POST /login, "json" with a long label' in printed
    assert "  samples   3,512,345" in printed


def test_csv_has_plain_numbers_and_quotes_what_needs_it() -> None:
    lines = to_csv(_report()).splitlines()
    assert lines[0].startswith("label,samples,errors,error %,req/s")
    first = '"POST /login, ""json"" with a long label",3512345,70247,2.0%,219521.6'
    assert lines[1].startswith(first)
    assert lines[2].endswith(",1325,200:6954443 500:70247")


def test_markdown_aligns_numbers_and_escapes_pipes() -> None:
    grid = Rows("t", ["name", "n"], numeric=frozenset({"n"}))
    grid.add("a|b", "1,000")
    assert to_markdown(grid) == "**t**\n\n| name | n |\n|---|---:|\n| a\\|b | 1,000 |\n"


def test_json_is_the_api_answer_itself() -> None:
    out = io.StringIO()
    answer = {"total": {"samples": 7024690, "rps": 439043.125}}
    emit(Console(file=out, width=80), answer, [_report()], Format.json)
    assert json.loads(out.getvalue()) == answer
