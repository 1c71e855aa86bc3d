"""Storage benchmark: what adamtune and its storage cost per trial, and study throughput with
several workers.

1. Overhead: 100 trials of an objective that does nothing but report 10 curve points, so the
   time is all adamtune and the storage (ask, the trial's attributes, 10 reports, tell, the
   budget checks), for the embedded default (a journal file), SQLite, PostgreSQL, and memory
   for reference. Goal: at most 5 ms per trial for the embedded default.
2. Throughput: ``adamtune tune --workers K`` for K = 1, 2, 4 on a short-trial objective (50 ms
   of sleep and 10 reports a trial), trials per second from the first trial's start to the last
   trial's end (process start-up left out), on the embedded default and PostgreSQL.

    python benchmarks/storage.py                          # starts a throwaway PostgreSQL server
    python benchmarks/storage.py --postgres postgresql://user:pw@host:5432/db
    python benchmarks/storage.py --quick                  # overhead only, 50 trials

PostgreSQL is skipped when neither --postgres nor the server binaries (initdb, pg_ctl) are
there. The last line is one JSON object. docs/performance.md has the results.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import adamtune
from adamtune.trial import Trial

ADAMTUNE = str(Path(sys.executable).parent / "adamtune")
SHORT_TRIAL = textwrap.dedent(
    """
    import time

    def objective(trial):
        for step in range(10):
            time.sleep(0.005)
            trial.report(step, val_loss=1.0 / (step + 1))
        return trial.adam.lr
    """
)


def reports_only(trial: Trial) -> float:
    for step in range(10):
        trial.report(step, val_loss=1.0 / (step + 1) + trial.adam.lr)
    return trial.adam.lr


def overhead_ms(storage: str, trials: int) -> float:
    start = time.perf_counter()
    adamtune.tune(reports_only, trials, storage=storage, study="overhead", strategy="quasi-random", seed=1)
    return (time.perf_counter() - start) * 1000 / trials


def throughput(storage: str, workers: int, trials: int, folder: Path) -> float:
    (folder / "short.py").write_text(SHORT_TRIAL)
    name = f"throughput-{workers}"
    command = [ADAMTUNE, "tune", "short.py:objective", "--budget", str(trials), "--study", name]
    command += ["--strategy", "quasi-random", "--workers", str(workers), "--storage", storage]
    subprocess.run(command, cwd=folder, check=True, capture_output=True)
    frozen = adamtune.load_study(name, storage).optuna.trials
    begun = min(t.datetime_start for t in frozen if t.datetime_start is not None)
    ended = max(t.datetime_complete for t in frozen if t.datetime_complete is not None)
    return trials / (ended - begun).total_seconds()


@contextmanager
def throwaway_postgres() -> Iterator[str | None]:
    """A PostgreSQL server in a temporary directory on a free port (as ``postgres`` when root)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    initdb = shutil.which("initdb") or (found[-1] if found else None)
    if initdb is None:
        yield None
        return
    pg_ctl = str(Path(initdb).with_name("pg_ctl"))
    folder = Path(tempfile.mkdtemp(prefix="adamtune-bench-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(folder, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    data = str(folder / "data")
    try:
        subprocess.run(
            [*prefix, initdb, "-D", data, "-U", "bench", "--auth=trust"], check=True, capture_output=True
        )
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1"
        start = [*prefix, pg_ctl, "-D", data, "-l", str(folder / "log"), "-w", "-o", options, "start"]
        subprocess.run(start, check=True, capture_output=True)
        yield f"postgresql://bench@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*prefix, pg_ctl, "-D", data, "-m", "fast", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def fresh_database(url: str, name: str) -> str:
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')
    return url.rsplit("/", 1)[0] + "/" + name


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--postgres", metavar="URL", help="A PostgreSQL server to use (a database is created)."
    )
    parser.add_argument("--quick", action="store_true", help="Overhead only, 50 trials.")
    parser.add_argument("--trials", type=int, default=100)
    args = parser.parse_args()
    trials = 50 if args.quick else args.trials
    from adamtune.environment import current_environment

    results: dict[str, Any] = {"trials": trials, "load": os.getloadavg()[0], "cpus": os.cpu_count()}
    results["environment"] = current_environment()  # the timings are this machine's
    folder = Path(tempfile.mkdtemp(prefix="adamtune-bench-"))
    with throwaway_postgres() if args.postgres is None else _given(args.postgres) as server:
        storages = {
            "memory": "memory",
            "embedded (journal)": str(folder / "overhead.journal"),
            "sqlite": f"sqlite:///{folder / 'overhead.db'}",
        }
        if server is not None:
            storages["postgresql"] = fresh_database(server, "adamtune_bench_overhead")
        print(f"overhead per trial ({trials} trials, 10 reports each; load average {results['load']:.2f}):")
        overhead = {}
        for label, url in storages.items():
            overhead[label] = overhead_ms(url, trials)
            print(f"  {label:20s} {overhead[label]:7.2f} ms")
        results["overhead_ms"] = overhead
        if not args.quick:
            rates: dict[str, dict[int, float]] = {}
            shared = {"embedded (journal)": str(folder / "throughput.journal")}
            if server is not None:
                shared["postgresql"] = fresh_database(server, "adamtune_bench_throughput")
            print("throughput, trials/s (50 ms trials, 80 a study):")
            for label, url in shared.items():
                rates[label] = {k: throughput(url, k, 80, folder) for k in (1, 2, 4)}
                print(f"  {label:20s} " + "  ".join(f"{k} workers {r:6.1f}" for k, r in rates[label].items()))
            results["throughput"] = rates
    shutil.rmtree(folder, ignore_errors=True)
    print(json.dumps(results))


@contextmanager
def _given(url: str) -> Iterator[str]:
    yield url


if __name__ == "__main__":
    main()
