"""Terminal tables: whole values in any width, the columns left out named."""

from __future__ import annotations

import functools
import io
from pathlib import Path

import pytest
from rich.console import Console

import adamtune
from adamtune import cli
from adamtune.tables import Column, fitted_table
from adamtune.testing import SyntheticObjective

COLUMNS = [Column("number"), Column("value"), Column("seed"), Column("reason", wraps=True)]
ROWS = [["17", "0.0236309", "1484405855", "a long reason that wraps over several lines"]]


def rendered(width: int, leave_out: list[str]) -> tuple[str, list[str]]:
    table, left_out = fitted_table("t", COLUMNS, ROWS, width, leave_out)
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(table)
    return console.export_text(), left_out


def test_a_wide_terminal_shows_every_column() -> None:
    text, left_out = rendered(120, ["seed"])
    assert left_out == [] and "1484405855" in text and "a long reason that wraps over several lines" in text


def test_a_narrow_terminal_leaves_out_columns_in_order_and_cuts_no_value() -> None:
    # number 6 + value 9 + seed 10 + reason (its longest word, 7) + 3 per column + 1 = 45
    text, left_out = rendered(44, ["seed", "number"])
    assert left_out == ["seed"]
    assert "0.0236309" in text and "17" in text and "…" not in text
    assert max(len(line) for line in text.splitlines()) <= 44
    text, left_out = rendered(45, ["seed", "number"])
    assert left_out == [] and "1484405855" in text
    # Nothing left to leave out: the table is drawn as well as it can be.
    assert rendered(20, [])[1] == []


def test_trials_in_an_80_column_terminal_name_what_they_leave_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = str(tmp_path / "s.journal")
    study = functools.partial(adamtune.tune, strategy="quasi-random")(
        SyntheticObjective(), 12, storage=journal
    )
    monkeypatch.setattr(cli, "out", Console(highlight=False, soft_wrap=True, width=80))
    cli.main(["trials", "--storage", journal])
    text = capsys.readouterr().out
    assert "left out for the terminal's width: beta2, eps (adamtune export --format csv" in text
    assert "seed" in text.splitlines()[2]  # the untuned columns go first
    for record in study.trials:
        assert record.adam is not None and f" {record.adam.lr:.4g} " in text  # every lr whole
    assert max(len(line) for line in text.splitlines()[:-1]) <= 80
