"""Workers: more processes, on this machine or others, running the trials of one study.

Every adamtune study is shared safely by any number of processes that call ``tune()`` on it
(see ``allocation``: exactly-once points without a lock). A worker is such a process that
knows nothing but the study's name and storage: the command that created the study stored a
*launch spec* in the study's user attribute ``launch``,

    {"kind": "target", "target": "train.py:objective", ...}
    {"kind": "command", "argv": [...], "metric": ..., "objective": ..., "timeout": ...,
     "metrics_format": ..., ...}
    {"kind": "demo", "model": "mlp", "steps": 8000, ...}

each with ``budget``, the command's study ``options`` (seed, ranges, strategy, ...), ``cwd``,
``host`` and ``version``, and ``adamtune worker`` rebuilds the same objective from it and calls
the same ``tune()`` with the same settings. For a campaign (the playbook strategy) the spec is
on the campaign's study ``NAME``; its rounds ``NAME::round-K`` are found from there.

``LocalWorkers`` starts ``adamtune worker`` subprocesses for ``adamtune tune --workers K`` and
waits for them.
"""

from __future__ import annotations

import inspect
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import IO, Any

import optuna

from adamtune._version import __version__
from adamtune.environment import threads_per_worker
from adamtune.errors import ConfigError, StorageError, StudyNotFoundError
from adamtune.storage import describe, open_storage, study_names

LAUNCH_ATTR = "launch"
KINDS = ("target", "command", "demo")
WAIT_POLL_S = 1.0
RUN_BEGAN_ENV = "ADAMTUNE_RUN_BEGAN"
"""Set by ``adamtune tune --workers`` for its workers: when the run they belong to began, so
that a worker that starts after the run was stopped by failures stops too (``study._Runner``)."""


def launch_spec(kind: str, budget: int, options: Mapping[str, Any], **objective: Any) -> dict[str, Any]:
    """What a worker needs to run this study's trials: the objective and the study options."""
    if kind not in KINDS:
        raise ValueError(f"launch kind: expected one of {', '.join(KINDS)}, got {kind!r}")
    return {
        "kind": kind,
        **objective,
        "budget": budget,
        "options": dict(options),
        "cwd": os.getcwd(),
        "host": socket.gethostname(),
        "version": __version__,
    }


def store_launch(optuna_study: optuna.Study, spec: Mapping[str, Any]) -> None:
    if optuna_study.user_attrs.get(LAUNCH_ATTR) != spec:
        optuna_study.set_user_attr(LAUNCH_ATTR, dict(spec))


def read_launch(name: str | None, storage: str | None, wait_s: float = 0.0) -> tuple[str, dict[str, Any]]:
    """The study's name and launch spec; waits up to ``wait_s`` seconds for them to appear."""
    if wait_s < 0:
        raise ConfigError(f"--wait: expected a number of seconds >= 0, got {wait_s:g}")
    where = describe(storage)
    deadline = time.monotonic() + wait_s
    backend = None
    while True:
        problem: str
        try:
            backend = backend or open_storage(storage, create=False)
        except StorageError as error:
            missing = str(error).startswith(("no adamtune storage", "no SQLite database"))
            if not missing and not ("cannot connect" in str(error) and wait_s > 0):
                raise  # a bad URL, or a server unreachable while not asked to wait for it
            if time.monotonic() >= deadline and not missing:
                raise
            problem = str(error)
        else:
            found = _find(backend, name, where)
            if isinstance(found, tuple):
                return found
            problem = found
        if time.monotonic() >= deadline:
            hint = f" (waited {wait_s:g} s)" if wait_s else "; pass --wait SECONDS to wait for it"
            raise StudyNotFoundError(problem + hint)
        time.sleep(WAIT_POLL_S)


def _find(
    backend: optuna.storages.BaseStorage, name: str | None, where: str
) -> tuple[str, dict[str, Any]] | str:
    names = study_names(backend)
    if name is None:
        if len(names) != 1:
            listed = ", ".join(names) if names else "none"
            return f"--study: expected one of the studies in {where}, got no name (studies: {listed})"
        name = names[0]
    if name not in names:
        listed = ", ".join(names) if names else "none"
        return f"no study named {name!r} in {where} yet (studies: {listed})"
    attrs = optuna.load_study(study_name=name, storage=backend).user_attrs
    spec = attrs.get(LAUNCH_ATTR)
    if not isinstance(spec, dict):
        if "adamtune" in attrs:
            return (
                f"study {name!r} in {where} has no launch spec: it was started from Python, so a "
                "worker cannot rebuild its objective; run adamtune.tune(...) with the same "
                "arguments in each worker process instead"
            )
        return f"study {name!r} in {where} is not an adamtune study (yet)"
    if spec.get("kind") not in KINDS:
        return f"study {name!r}: expected a launch spec of kind {', '.join(KINDS)}, got {spec.get('kind')!r}"
    return name, spec


def build_objective(spec: Mapping[str, Any], storage: str | None, name: str) -> Callable[..., Any]:
    """The objective the launch spec describes, built in this process."""
    kind = spec["kind"]
    if kind == "target":
        from adamtune.target import load_target

        return load_target(str(spec["target"]))
    if kind == "command":
        from adamtune.executors.command import CommandObjective, log_dir

        timeout = spec.get("timeout")
        workers = int(spec.get("options", {}).get("workers", 1))
        return CommandObjective(
            tuple(str(arg) for arg in spec["argv"]),
            log_dir=log_dir(storage, name),
            metric=str(spec.get("metric", "val_loss")),
            objective=spec.get("objective", "best"),
            direction=spec.get("options", {}).get("direction", "minimize"),
            timeout_s=float(timeout) if timeout is not None else None,
            metrics_format=spec.get("metrics_format", "json"),
            threads=threads_per_worker(workers),
        )
    from adamtune.workloads.demo import demo_workload

    steps = spec.get("steps")
    return demo_workload(str(spec.get("model", "mlp")), int(steps) if steps is not None else None)


def known_options(spec: Mapping[str, Any], run: Callable[..., Any]) -> dict[str, Any]:
    """The stored options ``run`` accepts (a spec written by another adamtune version may
    hold more); the launch-only ones are left out."""
    accepted = inspect.signature(run).parameters
    options = dict(spec.get("options", {}))
    # The worker's own --storage decides; adamtune 0.1.0's demo stored its creator's too.
    options.pop("storage", None)
    unknown = sorted(k for k in options if k not in accepted)
    if unknown:
        raise ConfigError(
            f"launch spec of adamtune {spec.get('version', '?')}: expected options this version "
            f"({__version__}) knows, got {', '.join(unknown)}; install the same adamtune version "
            "on every worker"
        )
    return options


class LocalWorkers:
    """``adamtune worker`` subprocesses on this machine, started once the study exists.

    They share the terminal's process group, so Ctrl-C reaches them as it reaches this process;
    their output goes to temporary files, and the last line of a worker that failed is shown.
    """

    def __init__(self, count: int, storage: str | None) -> None:
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ConfigError(f"--workers: expected a whole number >= 1, got {count + 1!r}")
        self.count = count
        self.storage = storage
        self.processes: list[tuple[subprocess.Popen[bytes], IO[bytes]]] = []

    def start(self, name: str) -> None:
        if self.processes or not self.count:
            return
        # The study exists: --wait covers only a database that is briefly away (a restart).
        command = [sys.executable, "-m", "adamtune.cli", "worker", "--study", name, "--wait", "120"]
        if self.storage is not None:
            command += ["--storage", self.storage]
        env = {**os.environ, RUN_BEGAN_ENV: repr(time.time())}
        for _ in range(self.count):
            log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in wait())
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env)
            self.processes.append((process, log))

    @property
    def pids(self) -> list[int]:
        return [process.pid for process, _ in self.processes]

    def interrupt(self, grace_s: float = 2.0) -> None:
        """Let the workers end their trials as interrupted (points given back), then stop them."""
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and any(p.poll() is None for p, _ in self.processes):
            time.sleep(0.1)  # a Ctrl-C on the terminal reached them already
        for process, _ in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)

    def wait(self) -> list[str]:
        """Wait for every worker; one line for each that did not end well."""
        problems = []
        for process, log in self.processes:
            code = process.wait()
            if code == 0:
                continue
            log.seek(0)
            lines = [line for line in log.read().decode(errors="replace").splitlines() if line.strip()]
            last = lines[-1].strip() if lines else "no output"
            if code < 0:
                name = signal.Signals(-code).name
                problems.append(f"worker pid {process.pid} was ended by {name}; its trial is given back")
            else:
                problems.append(f"worker pid {process.pid} exited with code {code}: {last}")
            log.close()
        return problems

    def failed(self) -> bool:
        return any((process.returncode or 0) > 0 for process, _ in self.processes)


class Launching:
    """A ``Progress`` that, once the study exists, stores the launch spec and starts workers.

    Every other call (and attribute) goes to the progress it wraps.
    """

    def __init__(self, inner: Any, spec: Mapping[str, Any] | None, workers: LocalWorkers | None) -> None:
        self._inner = inner
        self._spec = spec
        self._workers = workers

    def started(self, study: Any, done: int) -> None:
        if self._spec is not None:
            store_launch(study.optuna, self._spec)
        if self._workers is not None:
            self._workers.start(study.name)
        if self._inner is not None:
            self._inner.started(study, done)

    def trial_finished(self, study: Any, record: Any, done: int) -> None:
        if self._inner is not None:
            self._inner.trial_finished(study, record, done)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class WorkerGroup:
    """``with WorkerGroup(...)``: on the way out wait for the local workers (on an interrupt,
    stop them first)."""

    def __init__(self, workers: LocalWorkers) -> None:
        self.workers = workers
        self.problems: list[str] = []

    def __enter__(self) -> WorkerGroup:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if kind is not None:
            self.workers.interrupt()
        self.problems = self.workers.wait()
