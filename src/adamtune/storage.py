"""Storage resolution: the embedded default, journal files, and any Optuna storage URL.

The embedded default is a journal file in the working directory (``adamtune.journal``):
Optuna's ``JournalStorage`` with a file backend, which several processes on one machine can
share (SQLite cannot: "database is locked"). ``sqlite:///``, ``postgresql://`` and
``mysql://`` URLs go to Optuna's ``RDBStorage``; ``memory`` keeps a study in this process only.

A database is shared by workers on many machines, so its storage (``ResilientRDBStorage``):

- records heartbeats: each running trial's worker writes one every ``ADAMTUNE_HEARTBEAT_S``
  seconds (default 10), and a running trial without one for ``ADAMTUNE_GRACE_S`` seconds
  (default 60) is stale: its worker died, and the study gives its point to another worker;
- retries every operation that fails for want of a connection (the server restarted, the
  network dropped) with exponential backoff, for at most ``ADAMTUNE_RETRY_S`` seconds (default
  600), then gives up with one line naming the server;
- checks a pooled connection before using it (``pool_pre_ping``), so a restarted server costs
  one reconnection, not an error.

Opening it fails at once, with one line naming the host and port and never the password,
when the URL, the credentials or the server are wrong: there is nothing to retry there.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import random
import re
import threading
import time
import warnings
import weakref
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import optuna
from optuna.storages import BaseStorage, InMemoryStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from adamtune.errors import ConfigError, StorageError

logger = logging.getLogger("adamtune")

DEFAULT_STORAGE = "adamtune.journal"
_RDB_SCHEMES = ("sqlite", "postgresql", "mysql")
_EXPECTED = (
    "a journal file (PATH.journal or journal:PATH), memory, or a URL such as "
    "sqlite:///studies.db or postgresql://user@host:5432/db"
)
HEARTBEAT_ENV = "ADAMTUNE_HEARTBEAT_S"
GRACE_ENV = "ADAMTUNE_GRACE_S"
RETRY_ENV = "ADAMTUNE_RETRY_S"
DEFAULT_HEARTBEAT_S = 10
DEFAULT_GRACE_S = 60
DEFAULT_RETRY_S = 600.0
CONNECT_TIMEOUT_S = 10
_DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306}

T = TypeVar("T")

# adamtune asks and tells itself and keeps the heartbeats in its runner (study.py).
warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")


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
        return JournalStorage(TrialEndSyncBackend(str(path)))
    except (OSError, ValueError) as error:
        raise StorageError(f"storage {path}: cannot open it ({error})") from None


class TrialEndSyncBackend(JournalFileBackend):
    """Optuna's journal file, synced to disk (fsync) in groups, not at every write.

    Optuna syncs every operation: about 24 a trial (parameters, attributes, each reported curve
    point), 3-4 ms each on an ordinary disk, 80-100 ms a trial. Here every write reaches the
    operating system at once (other processes read it; a killed process loses nothing), and the
    file is synced when a write finishes a trial, queues a point or changes a study, at most
    once every ``SYNC_INTERVAL_S`` seconds, and when the process exits: like PostgreSQL's
    ``synchronous_commit = off``, a power cut or an operating-system crash can cost the trials
    finished in the last second, never a consistent file.
    """

    SYNC_INTERVAL_S = 1.0

    def __init__(self, file_path: str) -> None:
        super().__init__(file_path)
        self._synced = 0.0
        self._unsynced = False
        _JOURNALS.add(self)

    def sync(self) -> None:
        if self._unsynced:
            self._unsynced = False
            try:
                with open(self._file_path, "ab") as handle:
                    os.fsync(handle.fileno())
            except OSError:
                pass  # removed meanwhile: nothing left to keep

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        from optuna.storages.journal._file import get_lock_file

        text = "\n".join(json.dumps(log, separators=(",", ":")) for log in logs) + "\n"
        with get_lock_file(self._lock), open(self._file_path, "ab") as handle:
            handle.write(text.encode("utf-8"))
            handle.flush()
            self._unsynced = True
            now = time.monotonic()
            if now - self._synced >= self.SYNC_INTERVAL_S and any(_must_sync(log) for log in logs):
                os.fsync(handle.fileno())
                self._synced, self._unsynced = now, False


_JOURNALS: weakref.WeakSet[TrialEndSyncBackend] = weakref.WeakSet()


@atexit.register
def _sync_journals() -> None:
    for backend in list(_JOURNALS):
        backend.sync()


def _must_sync(log: dict[str, Any]) -> bool:
    from optuna.storages.journal._storage import JournalOperation as Op

    op = log.get("op_code")
    if op == Op.SET_TRIAL_STATE_VALUES:
        return bool(log.get("state") != TrialState.RUNNING)  # finished (RUNNING: a queued one taken)
    if op == Op.CREATE_TRIAL:
        return "state" in log  # a queued point or a copied trial, not a fresh trial
    return op not in (
        Op.SET_TRIAL_PARAM,
        Op.SET_TRIAL_INTERMEDIATE_VALUE,
        Op.SET_TRIAL_USER_ATTR,
        Op.SET_TRIAL_SYSTEM_ATTR,
    )


def _rdb(url: str, create: bool) -> BaseStorage:
    if url.startswith("sqlite:///") and not create:
        path = Path(url.removeprefix("sqlite:///"))
        if not path.exists():
            raise StorageError(f"no SQLite database at {path}")
    where = _where(url)  # also checks that the URL parses (a bad port, a stray character)
    engine_kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("postgresql"):
        engine_kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S}
    heartbeat, grace, retry_s = storage_timing()
    try:
        for attempt in range(_SCHEMA_RACE_TRIES):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    return ResilientRDBStorage(
                        url,
                        engine_kwargs=engine_kwargs,
                        heartbeat_interval=heartbeat,
                        grace_period=grace,
                        retry_s=retry_s,
                    )
            except Exception as error:
                # Workers that start together on a new database all create Optuna's tables;
                # the losers see "already exists": the tables are there, open them again.
                text = _first_line(error)
                if attempt + 1 == _SCHEMA_RACE_TRIES or not any(m in text for m in _SCHEMA_RACE):
                    raise
                time.sleep(0.2 + random.random())
        raise AssertionError("not reached")
    except ImportError as error:
        # Optuna wraps the driver's ModuleNotFoundError in a plain ImportError.
        missing = getattr(error.__cause__, "name", None) or error.name or error
        extra = " (pip install 'adamtune[postgres]')" if url.startswith("postgresql") else ""
        raise StorageError(
            f"storage {_safe_url(url)}: its database driver is not installed ({missing}){extra}"
        ) from None
    except Exception as error:  # SQLAlchemy raises many types; all mean "cannot open"
        raise StorageError(f"storage {where}: cannot connect ({_first_line(error)})") from None


_SCHEMA_RACE = ("already exists", "duplicate key value")
_SCHEMA_RACE_TRIES = 5


def storage_timing() -> tuple[int, int, float]:
    """Heartbeat interval, grace period and retry limit in seconds, from the environment."""
    heartbeat = _env_number(HEARTBEAT_ENV, DEFAULT_HEARTBEAT_S, whole=True)
    grace = _env_number(GRACE_ENV, max(DEFAULT_GRACE_S, 2 * int(heartbeat)), whole=True)
    if grace <= heartbeat:
        raise ConfigError(
            f"{GRACE_ENV}: expected more seconds than {HEARTBEAT_ENV} ({heartbeat:g}), got {grace:g}"
        )
    retry_s = _env_number(RETRY_ENV, DEFAULT_RETRY_S, whole=False)
    return int(heartbeat), int(grace), retry_s


def _env_number(name: str, default: float, *, whole: bool) -> float:
    text = os.environ.get(name)
    if text is None or not text.strip():
        return default
    try:
        value = int(text) if whole else float(text)
    except ValueError:
        value = -1
    if value <= 0:
        kind = "a whole number of seconds" if whole else "a number of seconds"
        raise ConfigError(f"{name}: expected {kind} > 0, got {text!r}")
    return value


def is_connection_error(error: BaseException) -> bool:
    """Whether ``error``, or anything that caused it or was being handled when it was raised,
    means the database could not be reached (refused, terminated, reset, closed)."""
    from sqlalchemy import exc

    lost = (exc.OperationalError, exc.InterfaceError, exc.DisconnectionError, exc.PendingRollbackError)
    pending: list[BaseException] = [error]
    seen: set[int] = set()
    while pending and len(seen) < 32:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, exc.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, lost) or type(current).__name__ in ("OperationalError", "InterfaceError"):
            return True  # also the driver's own (psycopg.OperationalError, ...)
        pending += [e for e in (current.__cause__, current.__context__) if e is not None]
    return False


class ResilientRDBStorage(RDBStorage):
    """Optuna's ``RDBStorage`` that survives a database restart (see the module docstring).

    Every storage operation is retried when the connection fails, with exponential backoff
    (0.25 s doubling to 8 s, jittered) for at most ``retry_s`` seconds. ``_get_stale_trial_ids``
    also covers a running trial that never wrote a heartbeat (its worker died right after
    asking for it): the first worker to see it starts its clock.
    """

    def __init__(self, url: str, *, retry_s: float = DEFAULT_RETRY_S, **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        self.retry_s = retry_s
        self.where = _where(url)
        self._outage_ended = -1e9  # monotonic time the last outage ended
        self._outage_lock = threading.Lock()

    def __setstate__(self, state: dict[Any, Any]) -> None:
        super().__setstate__(state)
        self._outage_lock = threading.Lock()

    def __getstate__(self) -> dict[Any, Any]:
        state = super().__getstate__()
        state.pop("_outage_lock", None)
        return state

    def since_outage_s(self) -> float:
        """Seconds since an operation last recovered from a lost connection."""
        return time.monotonic() - self._outage_ended

    def retrying(self, what: str, call: Callable[[], T]) -> T:
        deadline = time.monotonic() + self.retry_s
        delay = 0.25
        failed = False
        while True:
            try:
                result = call()
            except Exception as error:
                if not is_connection_error(error):
                    raise
                left = deadline - time.monotonic()
                if left <= 0:
                    raise StorageError(
                        f"storage {self.where}: unreachable for {self.retry_s:g} s, gave up "
                        f"({_first_line(error)}); finished trials are kept: run the same command "
                        "again once the database is back"
                    ) from None
                if not failed:
                    logger.warning(
                        "storage %s unreachable (%s): retrying for up to %g s",
                        self.where,
                        _first_line(error),
                        self.retry_s,
                    )
                failed = True
                time.sleep(min(delay * (0.5 + random.random()), left))
                delay = min(delay * 2, 8.0)
                continue
            if failed:
                with self._outage_lock:
                    self._outage_ended = time.monotonic()
                logger.warning("storage %s reachable again (%s)", self.where, what)
            return result

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        return self.retrying("stale trials", lambda: self._stale_trial_ids(study_id))

    def _stale_trial_ids(self, study_id: int) -> list[int]:
        import sqlalchemy
        from optuna.storages._rdb import models
        from optuna.storages._rdb.storage import _create_scoped_session

        assert self.heartbeat_interval is not None
        grace = timedelta(seconds=self.grace_period or 2 * self.heartbeat_interval)
        stale, unseen = [], []
        with _create_scoped_session(self.scoped_session, True) as session:
            now = session.execute(sqlalchemy.func.now()).scalar()
            assert now is not None
            now = now.replace(tzinfo=None)  # PostgreSQL's is aware, the stored ones are not
            running = (
                session.query(models.TrialModel)
                .options(sqlalchemy.orm.selectinload(models.TrialModel.heartbeats))
                .filter(models.TrialModel.state == TrialState.RUNNING)
                .filter(models.TrialModel.study_id == study_id)
                .all()
            )
            for trial in running:
                if not trial.heartbeats:
                    unseen.append(int(trial.trial_id))
                elif now - trial.heartbeats[0].heartbeat > grace:
                    stale.append(int(trial.trial_id))
        for trial_id in unseen:
            # A live worker overwrites this at its next beat; a dead one never will.
            RDBStorage.record_heartbeat(self, trial_id)
        return stale


def _retried(name: str) -> Callable[..., Any]:
    method = getattr(RDBStorage, name)

    def wrapper(self: ResilientRDBStorage, *args: Any, **kwargs: Any) -> Any:
        return self.retrying(name, lambda: method(self, *args, **kwargs))

    wrapper.__name__ = name
    wrapper.__doc__ = method.__doc__
    return wrapper


for _name in (
    "create_new_study",
    "delete_study",
    "set_study_user_attr",
    "set_study_system_attr",
    "get_study_id_from_name",
    "get_study_name_from_id",
    "get_study_directions",
    "get_study_user_attrs",
    "get_study_system_attrs",
    "get_all_studies",
    "create_new_trial",
    "set_trial_param",
    "get_trial_param",
    "set_trial_state_values",
    "set_trial_intermediate_value",
    "set_trial_user_attr",
    "set_trial_system_attr",
    "get_trial_id_from_study_id_trial_number",
    "get_trial",
    "get_all_trials",
    "get_best_trial",
    "record_heartbeat",
    # What Optuna's caching wrapper (_CachedStorage, around every RDBStorage) calls directly:
    "_create_new_trial",
    "_get_best_trial_id",
    "_get_trials",
    "_set_trial_param",
):
    setattr(ResilientRDBStorage, _name, _retried(_name))


def _safe_url(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return re.sub(r"://([^:/@]*):[^@/]*@", r"://\1:***@", url)


def _where(url: str) -> str:
    """``postgresql at HOST:PORT (database DB)``, never the password; bad URLs raise."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
        port = parsed.port
    except Exception as error:
        raise StorageError(
            f"--storage: expected {_EXPECTED}, got {_safe_url(url)!r} ({_first_line(error)})"
        ) from None
    backend = parsed.get_backend_name()
    if parsed.host or backend in _DEFAULT_PORTS:
        host = parsed.host or "localhost"
        port = port or _DEFAULT_PORTS.get(backend)
        return f"{backend} at {host}:{port} (database {parsed.database})"
    return parsed.render_as_string(hide_password=True)


def _first_line(error: BaseException) -> str:
    """The first line of the database's own message (Optuna wraps it in a vaguer one)."""
    seen: BaseException | None = error
    for _ in range(8):
        if seen is None or getattr(seen, "orig", None) is not None:
            break
        seen = seen.__cause__ or seen.__context__
    found = seen if seen is not None else error
    text = str(getattr(found, "orig", None) or found).strip().splitlines()
    return text[0] if text else type(found).__name__


PART_MARK = "::"
"""In the names of the studies that are parts of another: a campaign's rounds, a confirmation."""


def study_names(storage: BaseStorage) -> list[str]:
    """The studies a user named (the parts of campaigns and confirmations left out)."""
    names = [summary.study_name for summary in optuna.get_all_study_summaries(storage)]
    return [name for name in names if PART_MARK not in name]
