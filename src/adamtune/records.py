"""Reading a study back: one ``TrialRecord`` per trial, whatever process recorded it.

Everything adamtune adds lives in plain Optuna user attributes, so optuna-dashboard and
Optuna's API read the same study; these are the names it uses.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from optuna.trial import FrozenTrial, TrialState

from adamtune.allocation import OUTCOME, POINT, is_given_back, retried_numbers
from adamtune.config import AdamConfig
from adamtune.outcomes import State
from adamtune.space import SearchSpace

SEED = "seed"
ADAM = "adam"
REASON = "reason"
METRICS = "metrics"
CURVES = "curves"
WORKER = "worker"
LOGS = "logs"
BATCH = "batch"

DIVERGED_CONSTRAINT = "diverged"
"""Optuna constraint set on every finished trial: 0 feasible, 1 diverged (PLAYBOOK.md s. 7)."""


@dataclass(frozen=True)
class TrialRecord:
    """One trial as stored: its state, objective value, configuration, seed and curves."""

    number: int
    state: State
    value: float | None
    adam: AdamConfig | None
    seed: int | None
    point: int | None
    reason: str | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)
    curves: Mapping[str, list[list[float]]] = field(default_factory=dict)
    duration_s: float | None = None
    logs: Mapping[str, str] = field(default_factory=dict)
    round: int | None = None  # the campaign round (playbook strategy); None in a one-study search
    batch: int | None = None
    """How many trials ran together with this one, itself included (None: it ran alone). Their
    duration is the batch's: Optuna times a trial from its start to its result."""
    given_back: bool = False
    """Ended without a result (interrupted, or in a run of failures that stopped the study), and
    its configuration was queued to run again as a later trial: not a failure of the config."""

    def reason_line(self, width: int) -> str:
        """The reason's last line (a traceback's error) cut to ``width``, marked where the trial
        ran again."""
        lines = (self.reason or "").strip().splitlines()
        last = lines[-1][:width] if lines else ""
        return f"{last} (queued again)" if self.given_back else last

    def params(self, names: Sequence[str]) -> dict[str, float]:
        if self.adam is None:
            return {}
        values = self.adam.as_dict()
        return {name: values[name] for name in names}

    def to_dict(self, names: Sequence[str]) -> dict[str, Any]:
        """The export shape: number, state, value, params, seed, reason, metrics, duration_s (and
        round, in a campaign)."""
        return {
            "number": self.number,
            "state": str(self.state),
            "value": self.value,
            "params": self.params(names),
            "seed": self.seed,
            "reason": self.reason,
            "metrics": dict(self.metrics),
            "duration_s": self.duration_s,
            **({"round": self.round} if self.round is not None else {}),
        }

    def full_dict(self, names: Sequence[str]) -> dict[str, Any]:
        """``to_dict`` with the quasi-random sequence point, the curves and the log files: all
        a JSON export keeps (CSV keeps ``to_dict``'s flat part)."""
        return {
            **self.to_dict(names),
            "point": self.point,
            "batch": self.batch,
            "given_back": self.given_back,
            "curves": {name: [list(pair) for pair in curve] for name, curve in self.curves.items()},
            "logs": dict(self.logs),
        }


def records_of(trials: Sequence[FrozenTrial], space: SearchSpace) -> list[TrialRecord]:
    """Every trial of a study that started (queued retries are not trials yet), in order."""
    retried = retried_numbers(trials)
    return [record_from_trial(t, space, retried) for t in trials if t.state != TrialState.WAITING]


def record_from_trial(trial: FrozenTrial, space: SearchSpace, retried: Collection[int] = ()) -> TrialRecord:
    """``trial`` as a record; ``retried``: the trials whose points were queued again
    (``allocation.retried_numbers`` of the study's trials)."""
    attrs = trial.user_attrs
    state = _state(trial)
    adam = None
    if ADAM in attrs:
        adam = AdamConfig(**attrs[ADAM])
    elif all(name in trial.params for name in space.distributions()):
        adam = space.config_from_params(trial.params)
    duration = trial.duration.total_seconds() if trial.duration is not None else None
    value = trial.value if state in (State.COMPLETE, State.PRUNED) else None
    return TrialRecord(
        number=trial.number,
        state=state,
        value=value,
        adam=adam,
        seed=attrs.get(SEED),
        point=attrs.get(POINT),
        reason=attrs.get(REASON),
        metrics=attrs.get(METRICS, {}),
        curves=attrs.get(CURVES, {}),
        duration_s=duration,
        logs=attrs.get(LOGS, {}),
        batch=attrs.get(BATCH),
        given_back=is_given_back(trial, retried),
    )


def duration_text(record: TrialRecord) -> str:
    """``12.3s``, or ``12.3s, batch of 8`` for a trial that shared its time with others."""
    if record.duration_s is None:
        return ""
    shared = f", batch of {record.batch}" if record.batch else ""
    return f"{record.duration_s:.1f}s{shared}"


def _state(trial: FrozenTrial) -> State:
    if trial.state == TrialState.COMPLETE:
        diverged = trial.user_attrs.get(OUTCOME) == State.INFEASIBLE
        return State.INFEASIBLE if diverged or _violates(trial) else State.COMPLETE
    if trial.state == TrialState.PRUNED:
        return State.PRUNED
    if trial.state == TrialState.RUNNING:
        return State.RUNNING
    return State.FAILED


def _violates(trial: FrozenTrial) -> bool:
    from optuna.study._constrained_optimization import _get_constraints_from_system_attrs

    constraints = _get_constraints_from_system_attrs(trial.system_attrs)
    return any(value > 0 for value in constraints.values())


def best_record(records: Sequence[TrialRecord], direction: str) -> TrialRecord | None:
    """The best complete (feasible) trial; ties go to the lower trial number."""
    complete = [
        r for r in records if r.state == State.COMPLETE and r.value is not None and math.isfinite(r.value)
    ]
    if not complete:
        return None
    sign = 1.0 if direction == "minimize" else -1.0
    return min(complete, key=lambda r: (sign * (r.value or 0.0), r.number))
