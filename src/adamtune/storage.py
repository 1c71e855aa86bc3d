"""Storage resolution: the embedded default, journal files, and any Optuna storage URL.

The embedded default is a journal file in the working directory (``adamtune.journal``):
Optuna's ``JournalStorage`` with a file backend, which several processes on one machine can
share (SQLite cannot: "database is locked"). ``sqlite:///``, ``postgresql://`` and
``mysql://`` URLs go to Optuna's ``RDBStorage``; ``memory`` keeps a study in this process only.
"""

from __future__ import annotations

import os
from pathlib import Path

import optuna
from optuna.storages import BaseStorage, InMemoryStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend

from adamtune.errors import StorageError

DEFAULT_STORAGE = "adamtune.journal"
_RDB_SCHEMES = ("sqlite", "postgresql", "mysql")
_EXPECTED = (
    "a journal file (PATH.journal or journal:PATH), memory, or a URL such as "
    "sqlite:///studies.db or postgresql://user@host:5432/db"
)


def describe(url: str | None) -> str:
    """The storage as it may be shown to the user: the path, or the URL without its password."""
    if url is None:
        return f"./{DEFAULT_STORAGE}"
    if "://" in url:
        return _safe_url(url)
    return url


def open_storage(url: str | None, *, create: bool = True) -> BaseStorage:
    """Open the storage ``url`` names (``None``: the embedded default in the working directory).

    With ``create=False`` a journal file must exist already: readers never create storage.
    """
    if url is None:
        return _journal(Path(DEFAULT_STORAGE), create)
    if url in ("memory", ":memory:"):
        return InMemoryStorage()
    if url.startswith("journal:"):
        return _journal(Path(url.removeprefix("journal:").removeprefix("//")), create)
    scheme = url.split("://", 1)[0].split("+", 1)[0] if "://" in url else ""
    if scheme in _RDB_SCHEMES:
        return _rdb(url, create)
    if not scheme and url.endswith(".journal"):
        return _journal(Path(url), create)
    raise StorageError(f"--storage: expected {_EXPECTED}, got {_safe_url(url)!r}")


def _journal(path: Path, create: bool) -> BaseStorage:
    if not path.exists():
        if not create:
            raise StorageError(
                f"no adamtune storage at {path}: run a study first (adamtune demo) or pass --storage"
            )
        if not path.parent.is_dir():
            raise StorageError(f"storage {path}: expected an existing directory, got {path.parent}")
    elif not os.access(path, os.R_OK | os.W_OK):
        raise StorageError(f"storage {path}: expected a readable and writable file")
    try:
        return JournalStorage(JournalFileBackend(str(path)))
    except (OSError, ValueError) as error:
        raise StorageError(f"storage {path}: cannot open it ({error})") from None


def _rdb(url: str, create: bool) -> BaseStorage:
    if url.startswith("sqlite:///") and not create:
        path = Path(url.removeprefix("sqlite:///"))
        if not path.exists():
            raise StorageError(f"no SQLite database at {path}")
    try:
        return RDBStorage(url)
    except ImportError as error:
        # Optuna wraps the driver's ModuleNotFoundError in a plain ImportError.
        missing = getattr(error.__cause__, "name", None) or error.name or error
        raise StorageError(
            f"storage {_safe_url(url)}: its database driver is not installed ({missing})"
        ) from None
    except Exception as error:  # SQLAlchemy raises many types; all mean "cannot open"
        raise StorageError(f"storage {_where(url)}: cannot connect ({_first_line(error)})") from None


def _safe_url(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@", 1)[-1] if "@" in url else url


def _where(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
    except Exception:
        return _safe_url(url)
    if parsed.host:
        port = f":{parsed.port}" if parsed.port else ""
        return f"{parsed.get_backend_name()} at {parsed.host}{port} (database {parsed.database})"
    return _safe_url(url)


def _first_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error).strip().splitlines()
    return text[0] if text else type(error).__name__


PART_MARK = "::"
"""In the names of the studies that are parts of another: a campaign's rounds, a confirmation."""


def study_names(storage: BaseStorage) -> list[str]:
    """The studies a user named (the parts of campaigns and confirmations left out)."""
    names = [summary.study_name for summary in optuna.get_all_study_summaries(storage)]
    return [name for name in names if PART_MARK not in name]
