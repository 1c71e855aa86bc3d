"""Storage resolution: the embedded default, journal paths, SQLite, memory, and bad URLs."""

from __future__ import annotations

from pathlib import Path

import pytest
from optuna.storages import InMemoryStorage, JournalStorage, RDBStorage

import adamtune
from adamtune.errors import StorageError
from adamtune.storage import describe, open_storage
from adamtune.testing import SyntheticObjective


def test_default_is_a_journal_file_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StorageError, match=r"no adamtune storage at adamtune\.journal"):
        open_storage(None, create=False)
    assert isinstance(open_storage(None), JournalStorage)
    adamtune.tune(SyntheticObjective(), 2)
    assert (tmp_path / "adamtune.journal").stat().st_size > 0
    assert len(adamtune.load_study(None, None).trials) == 2


@pytest.mark.parametrize("form", ["{dir}/x.journal", "journal:{dir}/x.journal"])
def test_journal_paths(tmp_path: Path, form: str) -> None:
    url = form.format(dir=tmp_path)
    assert isinstance(open_storage(url), JournalStorage)


def test_sqlite_and_memory_work(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/s.db"
    assert isinstance(open_storage(url), RDBStorage)
    study = adamtune.tune(SyntheticObjective(), 3, storage=url)
    assert len(adamtune.load_study(study.name, url).trials) == 3
    assert isinstance(open_storage("memory"), InMemoryStorage)
    with pytest.raises(StorageError, match="no SQLite database"):
        open_storage(f"sqlite:///{tmp_path}/missing.db", create=False)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("nowhere/x.journal", "expected an existing directory"),
        ("ftp://host/x", "expected a journal file"),
        ("studies.txt", "expected a journal file"),
    ],
)
def test_bad_urls_say_what_was_expected(tmp_path: Path, url: str, message: str) -> None:
    with pytest.raises(StorageError, match=message):
        open_storage(url if "://" in url else str(tmp_path / url))


def test_passwords_are_never_shown() -> None:
    url = "postgresql://alice:hunter2@127.0.0.1:1/studies"
    assert "hunter2" not in describe(url)
    with pytest.raises(StorageError) as caught:
        open_storage(url)
    assert "hunter2" not in str(caught.value)
    assert "127.0.0.1" in str(caught.value) or "driver is not installed" in str(caught.value)
