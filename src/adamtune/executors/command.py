"""Tune any training program: run a command per trial and read its JSON lines as reports.

The command runs without a shell, as an argument list, so no value can inject shell syntax.
Placeholders ``{lr}``, ``{beta1}``, ``{beta2}``, ``{eps}``, ``{weight_decay}``, ``{seed}``,
``{trial}`` and ``{run}`` in its arguments are replaced (floats as Python's ``repr``: full
precision); the same values are in the environment as ``ADAMTUNE_LR``, ..., ``ADAMTUNE_RUN``.
``{trial}`` is Optuna's trial number, which starts from 0 again in each round of a campaign and
in its confirmation; ``{run}`` names the run uniquely in the study (``trial-3``,
``round-1-trial-3``, ``confirm-trial-0``), for naming the program's own files. Every line of
standard output that is a JSON object is a report, such as
``{"step": 100, "train_loss": 0.52, "val_loss": 0.41}``; so is such a line of standard error,
where Python's ``logging`` and many training libraries write (each stream read as it arrives,
with its own step count; a metric printed on both is read from the one that printed it first).
With ``metrics_format="pairs"`` a line
may instead hold ``name=value`` or ``name: value`` pairs, as many programs already print them
(``step 100: loss=0.52 val_loss=0.41``, Keras's ``- loss: 0.5231 - val_loss: 0.4102``), and a
``step`` printed on a line of its own holds for the lines after it; the arguments of a call
(argparse's ``Namespace(epochs=3)``) are the program's inputs, not pairs. Every line goes to the
trial's logs, ``adamtune-logs/STUDY/trial-N.stdout`` and ``.stderr`` (``.../round-K/trial-N``
for a campaign's round, whose trials Optuna numbers from 0 in each round).
"""

from __future__ import annotations

import codecs
import json
import math
import os
import re
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import IO, Any, Literal

from adamtune.config import AdamConfig
from adamtune.environment import with_thread_limits
from adamtune.errors import ConfigError, TrialFailed
from adamtune.outcomes import as_number
from adamtune.records import LOGS
from adamtune.trial import Trial

PLACEHOLDERS = ("lr", "beta1", "beta2", "eps", "weight_decay", "seed", "trial", "run")
_PLACEHOLDER = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")
STDERR_TAIL = 20  # lines of standard error kept as the reason of a failed trial
_LINE_END = re.compile(r"(?<=\r\n)|(?<=\r)(?!\n)|(?<=\n)")  # after \n, \r\n, or a lone \r (progress bars)

MetricsFormat = Literal["json", "pairs"]
METRICS_FORMATS: tuple[MetricsFormat, ...] = ("json", "pairs")

# A name (a letter first: not a number, a time or a path) not glued to what precedes it (so the
# echo of a --flag=value argument is not a metric), = or :, and a number or nan/inf that ends
# where the pair ends (so 95.3% or 12:30:01 is not one).
_PAIR = re.compile(
    r"(?<![\w.\-/])([A-Za-z_][\w./-]*)\s*[=:]\s*"
    r"([-+]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|inf(?:inity)?))"
    r"(?=$|[\s,;|)\]}])",
    re.IGNORECASE,
)


# The start of a call's arguments: a name glued to "(", as in Namespace(lr=0.1, epochs=3).
_CALL = re.compile(r"[A-Za-z_][\w.]*\(")


def _without_calls(line: str) -> str:
    """``line`` with the parenthesised arguments of every call blanked out: a program that
    prints its argparse ``Namespace(...)`` or a config object's repr echoes inputs, not
    metrics. An unclosed call runs to the end of the line."""
    while (call := _CALL.search(line)) is not None:
        depth, end = 0, len(line)
        for index in range(call.end() - 1, len(line)):
            depth += {"(": 1, ")": -1}.get(line[index], 0)
            if depth == 0:
                end = index + 1
                break
        line = line[: call.start()] + " " + line[end:]
    return line


def trial_values(trial: Trial) -> dict[str, str]:
    """The placeholder values of ``trial``: floats in full precision, integers as integers."""
    return {
        **_hyperparameter_values(trial.adam),
        "seed": str(trial.seed),
        "trial": str(trial.number),
        "run": trial.name,
    }


def _hyperparameter_values(adam: AdamConfig) -> dict[str, str]:
    """``{lr}`` ... ``{weight_decay}``'s values: Python's ``repr``, full precision."""
    return {name: repr(float(getattr(adam, name))) for name in PLACEHOLDERS[:5]}


def unpassed_warning(
    argv: Sequence[str], tuned: Sequence[str], chosen: Mapping[str, float] | None = None
) -> str | None:
    """A warning when the command has no placeholder for a tuned hyperparameter or the seed and
    no file it names mentions ADAMTUNE_ variables: every trial would then train with the
    program's own value, and the search (or the confirmation's fresh seeds) would measure nothing.
    ``chosen``: fixed values other than Adam's defaults (``--fix``, AdamW's weight decay), which
    the study records as trained with: unpassed, the records would be wrong."""
    chosen = dict(chosen or {})
    used = {match.group(1) for arg in argv for match in _PLACEHOLDER.finditer(arg)}
    missing = [name for name in (*tuned, "seed", *chosen) if name not in used]
    if not missing or any(_mentions_environment(arg) for arg in argv):
        return None
    placeholders = ", ".join("{" + name + "}" for name in missing)
    variables = ", ".join(f"ADAMTUNE_{name.upper()}" for name in missing)
    recorded = [f"{name} {chosen[name]:g}" for name in missing if name in chosen]
    note = f" (the study records {', '.join(recorded)})" if recorded else ""
    return (
        f"the command passes no {placeholders}: unless the program reads {variables} from its "
        f"environment, every trial trains with its own values{note}"
    )


def _mentions_environment(arg: str) -> bool:
    path = Path(arg)
    try:
        return (
            path.is_file()
            and path.stat().st_size < 1_000_000
            and "ADAMTUNE_" in path.read_text(errors="replace")
        )
    except OSError:
        return False


def with_values(argv: Sequence[str], adam: AdamConfig, seed: int | None) -> list[str]:
    """``argv`` with the hyperparameters' and the seed's placeholders filled in as a trial's are,
    and ``{trial}`` and ``{run}`` (the names of a study's runs) left as they are."""
    seeded = str(seed) if seed is not None else "{seed}"
    return fill(argv, {**_hyperparameter_values(adam), "seed": seeded, "trial": "{trial}", "run": "{run}"})


def fill(argv: Sequence[str], values: Mapping[str, str]) -> list[str]:
    """``argv`` with the known placeholders replaced; other braces stay as they are."""
    return [_PLACEHOLDER.sub(lambda m: values[m.group(1)], arg) for arg in argv]


@dataclass
class CommandObjective:
    """An objective that runs ``argv`` once per trial.

    ``objective="best"`` takes the best value of ``metric`` reported during training (by
    ``direction``), ``"last"`` the last one. ``timeout_s`` ends a trial that runs longer, with
    its whole process group. Logs go to ``log_dir/LOG_STEM.stdout`` and ``.stderr`` (``log_stem``).
    """

    argv: tuple[str, ...]
    log_dir: Path
    metric: str = "val_loss"
    objective: Literal["best", "last"] = "best"
    direction: Literal["minimize", "maximize"] = "minimize"
    timeout_s: float | None = None
    metrics_format: MetricsFormat = "json"
    threads: int | None = None
    """The thread count each command's PyTorch and BLAS get (``OMP_NUM_THREADS``, ...) unless its
    environment sets one; None: their default, a thread per core (one command at a time)."""
    _running: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _cancelled: threading.Event = field(default_factory=threading.Event, init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.argv:
            raise ConfigError("COMMAND: expected a command after --, got nothing")
        if self.objective not in ("best", "last"):
            raise ConfigError(f"--objective: expected best or last, got {self.objective!r}")
        if self.timeout_s is not None and not self.timeout_s > 0:
            raise ConfigError(f"--timeout: expected a number of seconds > 0, got {self.timeout_s}")
        if self.threads is not None and (isinstance(self.threads, bool) or self.threads < 1):
            raise ConfigError(f"threads: expected a whole number >= 1, got {self.threads!r}")
        if self.metrics_format not in METRICS_FORMATS:
            raise ConfigError(
                f"--metrics-format: expected one of {', '.join(METRICS_FORMATS)}, got {self.metrics_format!r}"
            )

    @property
    def __name__(self) -> str:
        return Path(self.argv[0]).name

    def __getstate__(self) -> dict[str, Any]:
        # Sent to another process (a Ray task): what to run, not this process's commands, and
        # the logs' folder as this process finds it, wherever the task's working directory is.
        state = {f.name: getattr(self, f.name) for f in fields(self) if f.init}
        return {**state, "log_dir": self.log_dir.absolute()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        vars(self).update(state, _running={}, _lock=threading.Lock(), _cancelled=threading.Event())

    def __call__(self, trial: Trial) -> float:
        if self._cancelled.is_set():
            raise KeyboardInterrupt
        values = trial_values(trial)
        argv = fill(self.argv, values)
        variables = {f"ADAMTUNE_{name.upper()}": v for name, v in values.items()}
        env = with_thread_limits({**os.environ, **variables}, self.threads)
        # A Python program's reports arrive as it prints them, not in blocks of 8 KB (pruning
        # and the progress read them live); the user's own setting stands.
        env.setdefault("PYTHONUNBUFFERED", "1")
        stem = self.log_dir / log_stem(trial)
        stem.parent.mkdir(parents=True, exist_ok=True)
        out_path, err_path = stem.with_suffix(".stdout"), stem.with_suffix(".stderr")
        trial.optuna_trial.set_user_attr(LOGS, {"stdout": str(out_path), "stderr": str(err_path)})
        with (
            open(out_path, "w", encoding="utf-8") as out_log,
            open(err_path, "w+", encoding="utf-8") as err_log,
        ):
            try:
                process = subprocess.Popen(
                    argv,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    stdin=subprocess.DEVNULL,
                    env=env,
                    start_new_session=True,  # its own process group: we end it and its children
                )
            except OSError as error:
                raise TrialFailed(f"cannot start {argv[0]!r}: {error.strerror or error}") from None
            with self._lock:
                self._running[trial.number] = process
            if self._cancelled.is_set():  # cancel() ran while this one was starting
                _end_group(process)
            timer = _Watchdog(process, self.timeout_s)
            try:
                reported, printed = self._read_reports(process, trial, (out_log, err_log))
                code = process.wait()
            finally:
                timer.cancel()
                _end_group(process)
                _close_pipes(process)
                with self._lock:
                    self._running.pop(trial.number, None)
            if self._cancelled.is_set():
                raise KeyboardInterrupt
            if timer.fired:
                raise TrialFailed(f"timed out after {self.timeout_s:g} s")
            if code != 0:
                raise TrialFailed(f"exit code {code}: {_tail(err_log) or '(nothing on standard error)'}")
        if not reported:
            raise TrialFailed(f"no metric named {self.metric!r} was printed{self._unread(printed)}")
        return self._value(reported)

    def cancel(self) -> None:
        """End every running command (on Ctrl-C): their trials end as interrupted."""
        self._cancelled.set()
        with self._lock:
            running = list(self._running.values())
        for process in running:
            _end_group(process)

    def _read_reports(
        self, process: subprocess.Popen[bytes], trial: Trial, logs: tuple[IO[str], IO[str]]
    ) -> tuple[list[float], _Printed]:
        """Feed each report line of standard output and error to ``trial.report``, and each
        line to its log; return the objective metric's values, and what else was printed (for
        the reason of a trial that printed no objective)."""
        reported: list[float] = []
        printed = _Printed()
        positions = (_Position(), _Position())  # each stream counts its own lines and steps
        # A metric is read from the stream that printed it first: the same name on the other
        # stream is the same value printed twice (a logger with two handlers), whose lines may
        # arrive in a block after the first stream's, where their counted steps are wrong.
        owners: dict[str, int] = {}
        for stream, line in _lines(process):
            logs[stream].write(line)
            position = positions[stream]
            metrics = _json_metrics(line)
            if metrics is None and self.metrics_format == "pairs":
                metrics = pair_metrics(line) or None
            if metrics is None:
                if self.metric in line and self.metric in pair_metrics(line):
                    printed.as_pairs = True
                continue
            step_number = position.step(_whole(metrics.pop("step", None)), self.metrics_format == "pairs")
            metrics = {
                name: value for name, value in metrics.items() if owners.setdefault(name, stream) == stream
            }
            if not metrics:
                continue
            printed.names.update(metrics)
            if self.metric in metrics:
                reported.append(metrics[self.metric])
            trial.report(max(step_number, trial.last_step), **metrics)  # raises Diverged on NaN
        return reported, printed

    def _unread(self, printed: _Printed) -> str:
        """Why no objective was read, where the output says: it was printed as pairs, or under
        other names."""
        if printed.as_pairs:
            return (
                f" as JSON; it was printed as a pair such as {self.metric}=0.41 (pass "
                "--metrics-format pairs to read those)"
            )
        if printed.names:
            names = sorted(printed.names)
            shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
            return f" (metrics printed: {shown}; --metric names the one to optimise)"
        return ""

    def _value(self, reported: list[float]) -> float:
        if self.objective == "last":
            return reported[-1]
        return min(reported) if self.direction == "minimize" else max(reported)


@dataclass
class _Position:
    """Where one stream's reports are: its report lines so far, and (pairs) its last step."""

    count: int = 0
    held: int | None = None  # pairs: the last step printed, for lines that print none

    def step(self, printed: int | None, holds: bool) -> int:
        """The step of a report line that printed ``printed`` (None: no step)."""
        if holds and printed is not None:
            self.held = printed
        number = printed if printed is not None else self.held if self.held is not None else self.count
        self.count += 1
        return number


def _lines(process: subprocess.Popen[bytes]) -> Iterator[tuple[int, str]]:
    """``(stream, line)`` of the command's standard output (0) and error (1), in the order they
    arrive, until both end; bytes that are not UTF-8 are replaced, not a crash of ours."""
    assert process.stdout is not None and process.stderr is not None
    streams = {process.stdout.fileno(): 0, process.stderr.fileno(): 1}
    decoders = {fd: codecs.getincrementaldecoder("utf-8")(errors="replace") for fd in streams}
    pending = dict.fromkeys(streams, "")
    with selectors.DefaultSelector() as selector:
        for fd in streams:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map():
            for key, _ in selector.select():
                chunk = os.read(key.fd, 65536)
                text = pending[key.fd] + decoders[key.fd].decode(chunk, final=not chunk)
                parts = [part for part in _LINE_END.split(text) if part]
                # A part without its end waits for the rest (a lone \r, for a following \n).
                ends = chunk and parts and not parts[-1].endswith("\n")
                pending[key.fd] = parts.pop() if ends else ""
                if not chunk:
                    selector.unregister(key.fd)
                for part in parts:
                    yield streams[key.fd], part


def _close_pipes(process: subprocess.Popen[bytes]) -> None:
    for pipe in (process.stdout, process.stderr):
        if pipe is not None:
            pipe.close()


@dataclass
class _Printed:
    """What a command printed besides the objective: the metrics' names, and whether the
    objective appeared as a pair that the JSON format does not read."""

    names: set[str] = field(default_factory=set)
    as_pairs: bool = False


def _whole(step: float | None) -> int | None:
    """A printed step as a whole number; None when there is none (or it is not one)."""
    return int(step) if step is not None and math.isfinite(step) and step.is_integer() else None


def pair_metrics(line: str) -> dict[str, float]:
    """The ``name=value`` and ``name: value`` pairs of ``line`` whose value is a number, but for
    the trial's own inputs (``lr``, ..., ``seed``) and a call's arguments (``Namespace(epochs=3)``):
    a program that echoes its arguments prints them, and they are not metrics."""
    pairs = _PAIR.findall(_without_calls(line))
    return {name: float(value) for name, value in pairs if name not in PLACEHOLDERS}


def _json_metrics(line: str) -> dict[str, float] | None:
    text = line.strip()
    if not (text.startswith("{") and text.endswith("}")):
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    metrics = {str(k): as_number(v) for k, v in data.items()}
    return {k: v for k, v in metrics.items() if v is not None}


class _Watchdog:
    """Ends ``process``'s group after ``seconds``; ``fired`` says whether it did."""

    def __init__(self, process: subprocess.Popen[bytes], seconds: float | None) -> None:
        self.fired = False
        self._timer: threading.Timer | None = None
        if seconds is not None:
            self._timer = threading.Timer(seconds, self._fire, args=(process,))
            self._timer.daemon = True
            self._timer.start()

    def _fire(self, process: subprocess.Popen[bytes]) -> None:
        self.fired = True
        _end_group(process)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()


def _end_group(process: subprocess.Popen[bytes], grace_s: float = 2.0) -> None:
    """SIGTERM the process group, then SIGKILL what is left after ``grace_s``.

    It only signals: the reading thread sees end-of-file once every process holding the pipes
    is gone, and reaps the command itself.
    """
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            if process.poll() is not None and not _group_alive(process.pid):
                return
            time.sleep(0.02)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _tail(log: IO[str]) -> str:
    log.flush()
    log.seek(0)
    lines = [line.rstrip() for line in log.read().splitlines() if line.strip()]
    return "\n".join(lines[-STDERR_TAIL:])


def log_stem(trial: Trial) -> str:
    """``trial-N``, in a folder of its own for each part of a campaign (``round-K``,
    ``confirm``): every part numbers its trials from 0."""
    return f"{_safe_name(trial.part)}/trial-{trial.number}" if trial.part else f"trial-{trial.number}"


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def log_dir(storage: str | None, study: str) -> Path:
    """Where a study's command logs go: ``adamtune-logs/STUDY`` beside a journal file, else in
    the working directory."""
    from adamtune.storage import DEFAULT_STORAGE

    path = storage if storage is not None else DEFAULT_STORAGE
    base = Path(path.removeprefix("journal:")).parent if path.endswith(".journal") else Path(".")
    return base / "adamtune-logs" / _safe_name(study)
