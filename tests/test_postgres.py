"""One study, many workers, on a real PostgreSQL server: exactly-once points, a worker killed
with SIGKILL, the database restarted mid-study, and bad URLs.

The server is started by this module (initdb and pg_ctl, Debian's ``postgresql`` package) on a
free loopback port in a temporary directory, with password authentication over TCP; without
the server binaries every test here skips. PostgreSQL refuses to run as root, so as root the
server runs as the ``postgres`` user.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

import adamtune
from adamtune import State

pytestmark = pytest.mark.slow

ADAMTUNE = str(Path(sys.executable).parent / "adamtune")
PASSWORD = "pg-s3cret-word"
FAST = {"ADAMTUNE_HEARTBEAT_S": "1", "ADAMTUNE_GRACE_S": "3"}

OBJECTIVE = textwrap.dedent(
    """
    import math, os, time

    DELAY = float(os.environ.get("TRIAL_DELAY_S", "0.02"))
    HANG_AT = int(os.environ.get("HANG_AT_STEP", "-1"))

    def objective(trial):
        for step in range(10):
            time.sleep(DELAY)
            trial.report(step, val_loss=1.0 / (step + 1))
            if step == HANG_AT:
                time.sleep(300)  # a stuck worker, mid-trial, until the test kills it
        return (math.log10(trial.adam.lr) + 4) ** 2 + (trial.adam.beta1 - 0.95) ** 2
    """
)


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


class PostgresServer:
    """A throwaway PostgreSQL cluster: ``start``, ``stop``, ``url(database)``."""

    def __init__(self, initdb: str, pg_ctl: str) -> None:
        self.pg_ctl = pg_ctl
        self.user: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            try:
                self.user = pwd.getpwnam("postgres")
            except KeyError:
                pytest.skip("PostgreSQL refuses to run as root and there is no 'postgres' user")
        self.dir = Path(tempfile.mkdtemp(prefix="adamtune-pg-"))  # /tmp: reachable by that user
        (self.dir / "pw").write_text(PASSWORD + "\n")
        self._own(self.dir, self.dir / "pw")
        self.port = _free_port()
        self._as_server(
            initdb,
            "-D",
            str(self.dir / "data"),
            "-U",
            "adamtune",
            f"--pwfile={self.dir / 'pw'}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--no-sync",
        )

    def _own(self, *paths: Path) -> None:
        if self.user is not None:
            for path in paths:
                os.chown(path, self.user.pw_uid, self.user.pw_gid)

    def _as_server(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if self.user is not None else []
        done = subprocess.run([*prefix, *command], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{command[0]} failed: {done.stdout}{done.stderr}")

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        data, log = str(self.dir / "data"), str(self.dir / "log")
        self._as_server(self.pg_ctl, "-D", data, "-l", log, "-w", "-o", options, "start")

    def stop(self) -> None:
        self._as_server(self.pg_ctl, "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop")

    def url(self, database: str = "postgres", password: str = PASSWORD) -> str:
        return f"postgresql://adamtune:{password}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def remove(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def server() -> Iterator[PostgresServer]:
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl): apt-get install postgresql")
    pytest.importorskip("psycopg", reason="the PostgreSQL driver: pip install 'adamtune[postgres]'")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: cannot start PostgreSQL as another user")
    pg = PostgresServer(initdb, pg_ctl)
    try:
        pg.start()
        yield pg
    finally:
        pg.remove()


@pytest.fixture
def database(server: PostgresServer, request: pytest.FixtureRequest) -> str:
    return server.create_database(request.node.name.replace("[", "_").replace("]", "").lower()[:60])


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "train.py").write_text(OBJECTIVE)
    return tmp_path


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, **FAST, **extra}


def _results(trials: list[optuna.trial.FrozenTrial]) -> list[optuna.trial.FrozenTrial]:
    return [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]


def _tune(project: Path, url: str, budget: int, *extra: str) -> list[str]:
    return [
        ADAMTUNE,
        "tune",
        "train.py:objective",
        "--budget",
        str(budget),
        "--seed",
        "7",
        "--strategy",
        "quasi-random",
        "--storage",
        url,
        *extra,
    ]


def _wait_until(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_four_workers_draw_exactly_the_points_of_one_process(project: Path, database: str) -> None:
    budget = 24
    done = subprocess.run(
        _tune(project, database, budget, "--workers", "4"),
        cwd=project,
        # No worker dies here: a generous grace keeps a heartbeat delayed by a loaded machine
        # from being taken for a dead worker.
        env=_env(ADAMTUNE_GRACE_S="30"),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    assert "warning" not in done.stderr

    shared = adamtune.load_study("objective", database)
    four = [r for r in shared.trials if r.state == State.COMPLETE]
    from adamtune.target import load_target

    single = adamtune.tune(
        load_target(f"{project / 'train.py'}:objective"),
        budget,
        storage="memory",
        seed=7,
        study="objective",
        strategy="quasi-random",
    )
    one = single.trials
    assert len(four) == len(one) == budget
    # Two workers can pass the budget check at once near the end; the later-numbered trial is
    # then surplus: it runs nothing and its point is queued again (seen once in a full test run).
    # Any other trial that did not complete (a stale heartbeat, an error) is a defect.
    others = [t for t in shared.optuna.trials if t.state != TrialState.COMPLETE]
    outcomes = [(t.number, t.state.name, t.user_attrs.get("outcome")) for t in others]
    surplus = [t.state == TrialState.WAITING or t.user_attrs.get("outcome") == "surplus" for t in others]
    assert all(surplus), outcomes
    assert sorted(r.point for r in four) == list(range(budget))  # none repeated, none skipped
    assert {r.point: (r.adam, r.seed) for r in four} == {r.point: (r.adam, r.seed) for r in one}
    # A surplus point queued again waits, unclaimed, with no worker.
    pids = {t.user_attrs["worker"]["pid"] for t in shared.optuna.trials if t.state == TrialState.COMPLETE}
    assert len(pids) > 1, "the workers did not share the trials"
    assert shared.optuna.user_attrs["launch"]["kind"] == "target"


def test_a_worker_killed_with_sigkill_has_its_point_run_again(project: Path, database: str) -> None:
    budget = 12
    env = _env(TRIAL_DELAY_S="0.1")  # one second a trial
    main = subprocess.Popen(
        _tune(project, database, budget),
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    worker_command = [ADAMTUNE, "worker", "--study", "objective", "--storage", database, "--wait", "60"]
    # The victim hangs in its first trial, so it is surely mid-trial when killed (killed at a
    # moment it merely seemed to be, it once finished the trial first and nothing was cut).
    workers = [
        subprocess.Popen(
            worker_command,
            cwd=project,
            env=worker_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for worker_env in (_env(TRIAL_DELAY_S="0.1", HANG_AT_STEP="3"), env)
    ]
    victim = workers[0]
    storage = optuna.storages.RDBStorage(database)

    def victim_is_training() -> bool:
        try:
            trials = optuna.load_study(study_name="objective", storage=storage).get_trials()
        except KeyError:
            return False
        running = [
            t
            for t in trials
            if t.state == TrialState.RUNNING and t.user_attrs.get("worker", {}).get("pid") == victim.pid
        ]
        return len(_results(trials)) >= 2 and bool(running) and len(running[0].intermediate_values) > 3

    _wait_until(victim_is_training, 120, "the worker to be in a trial")
    os.kill(victim.pid, signal.SIGKILL)
    assert victim.wait(timeout=30) == -signal.SIGKILL
    _, main_err = main.communicate(timeout=180)
    assert main.returncode == 0, main_err
    _, worker_err = workers[1].communicate(timeout=60)
    assert workers[1].returncode == 0, worker_err

    study = adamtune.load_study("objective", database)
    finished = [r for r in study.trials if r.state == State.COMPLETE]
    assert len(finished) == budget
    assert sorted(r.point for r in finished) == list(range(budget))
    # A surplus trial (two processes passing the budget check at once at the end) is not a cut.
    frozen = {t.number: t for t in study.optuna.trials}
    cut = [
        r
        for r in study.trials
        if r.state == State.FAILED and frozen[r.number].user_attrs.get("outcome") != "surplus"
    ]
    assert len(cut) == 1, [(r.number, r.reason) for r in study.trials if r.state == State.FAILED]
    host = socket.gethostname()
    assert f"no heartbeat from worker {host} pid {victim.pid} for 3 s" in (cut[0].reason or "")
    rerun = next(r for r in finished if r.point == cut[0].point)
    assert (rerun.adam, rerun.seed) == (cut[0].adam, cut[0].seed)
    assert frozen[rerun.number].user_attrs["retry_of"] == cut[0].number
    assert frozen[rerun.number].user_attrs["worker"]["pid"] != victim.pid


def test_workers_carry_on_through_a_database_restart(
    project: Path, database: str, server: PostgresServer
) -> None:
    budget = 16
    main = subprocess.Popen(
        _tune(project, database, budget, "--workers", "2"),
        cwd=project,
        # Slow enough that the 13 trials left after the first 3 outlast the 3 s outage even on
        # an idle machine (at 0.05 s a trial, they once all finished before the server stopped).
        env=_env(TRIAL_DELAY_S="1.0"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    storage = optuna.storages.RDBStorage(database)

    def trials() -> list[optuna.trial.FrozenTrial]:
        try:
            return optuna.load_study(study_name="objective", storage=storage).get_trials()
        except KeyError:
            return []

    def some_results() -> list[optuna.trial.FrozenTrial]:
        return _results(trials())

    def main_is_mid_trial() -> bool:
        # The outage must find this process reporting (once a second) so that it has to retry;
        # between trials it may touch no database for longer than the outage (CI once saw that).
        running = [
            t
            for t in trials()
            if t.state == TrialState.RUNNING and t.user_attrs.get("worker", {}).get("pid") == main.pid
        ]
        return len(some_results()) >= 3 and any(1 <= len(t.intermediate_values) <= 5 for t in running)

    _wait_until(main_is_mid_trial, 120, "three results and this process in a trial")
    before = {t.number: (t.value, t.params, t.user_attrs["point"]) for t in some_results()}
    assert len(before) < budget - 4, "the study must still be running when the database stops"
    server.stop()
    time.sleep(3)
    server.start()
    _, stderr = main.communicate(timeout=240)
    assert main.returncode == 0, stderr
    assert "unreachable" in stderr and "retrying" in stderr, stderr
    assert "Traceback" not in stderr

    study = adamtune.load_study("objective", database)
    after = {t.number: t for t in study.optuna.trials}
    for number, (value, params, point) in before.items():  # nothing recorded before is lost
        assert after[number].state == TrialState.COMPLETE
        assert (after[number].value, after[number].params, after[number].user_attrs["point"]) == (
            value,
            params,
            point,
        )
    finished = [r for r in study.trials if r.state == State.COMPLETE]
    assert len(finished) == budget
    assert sorted(r.point for r in finished) == list(range(budget))


@pytest.mark.parametrize("problem", ["password", "unreachable", "database", "port"])
def test_a_bad_url_gives_one_line_naming_host_and_port(
    project: Path, server: PostgresServer, problem: str
) -> None:
    closed = _free_port()
    url = {
        "password": server.url(password="not-the-password"),
        "unreachable": f"postgresql://adamtune:{PASSWORD}@127.0.0.1:{closed}/postgres",
        "database": server.url("no_such_database"),
        "port": f"postgresql://adamtune:{PASSWORD}@127.0.0.1:54x2/postgres",
    }[problem]
    for command in (
        [ADAMTUNE, "worker", "--study", "objective", "--storage", url],
        _tune(project, url, 4),
    ):
        done = subprocess.run(command, cwd=project, env=_env(), capture_output=True, text=True, timeout=60)
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert lines[0].startswith("error: ")
        assert PASSWORD not in done.stderr and "not-the-password" not in done.stderr
        expected = {
            "password": (f"127.0.0.1:{server.port}", "password authentication failed"),
            "unreachable": (f"127.0.0.1:{closed}", "refused"),
            "database": (f"127.0.0.1:{server.port}", 'database "no_such_database" does not exist'),
            "port": ("127.0.0.1:54x2", "postgresql://"),
        }[problem]
        for text in expected:
            assert text in lines[0], lines[0]
