"""Which point of the quasi-random sequence each trial gets, exactly once, in any process.

Optuna numbers the trials of a study 0, 1, 2, ... atomically in every storage, so the trial
number is the one counter all processes agree on without a lock. A trial that ends without a
result through no fault of its configuration (Ctrl-C, SIGTERM, a dead worker, or a surplus
trial created in a race at the end of the budget) gives its point back: the point is enqueued
as a new WAITING trial carrying ``point`` in its user attributes, and Optuna hands each waiting
trial to exactly one process. Those retries also take trial numbers, so a fresh trial's point is

    point(n) = n - (number of retry trials numbered below n)

which no process can compute differently: a retry's attributes are written in the same storage
operation that creates it. A trial whose objective raised (failed) keeps its point: rerunning
the same configuration and seed would fail the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from optuna.trial import FrozenTrial, TrialState

POINT = "point"
RETRY_OF = "retry_of"
OUTCOME = "outcome"
COPY_OF = "copy_of"
"""On a trial copied into a later round as data for its sampler: {"round", "number"}."""


def is_retry(trial: FrozenTrial) -> bool:
    return RETRY_OF in trial.user_attrs


def point_of(trial: FrozenTrial, trials: Sequence[FrozenTrial]) -> int:
    """The sequence index of ``trial``'s point (see the module docstring)."""
    if POINT in trial.user_attrs:
        return int(trial.user_attrs[POINT])
    retries_below = sum(1 for t in trials if t.number < trial.number and is_retry(t))
    return trial.number - retries_below


def is_copy(trial: FrozenTrial) -> bool:
    return COPY_OF in trial.user_attrs


def has_result(trial: FrozenTrial) -> bool:
    """Complete (feasible or infeasible) and pruned trials are results; they spend budget.

    Copies of earlier rounds' trials are data, not results of this study: they spend nothing.
    """
    return trial.state in (TrialState.COMPLETE, TrialState.PRUNED) and not is_copy(trial)


@dataclass(frozen=True)
class Tally:
    results: int
    running: int
    waiting: int
    failed: int

    def open_slots(self, budget: int) -> int:
        """How many more trials may start now without overrunning the budget."""
        return budget - self.results - self.running


def tally(trials: Sequence[FrozenTrial]) -> Tally:
    return Tally(
        results=sum(1 for t in trials if has_result(t)),
        running=sum(1 for t in trials if t.state == TrialState.RUNNING),
        waiting=sum(1 for t in trials if t.state == TrialState.WAITING),
        failed=sum(1 for t in trials if t.state == TrialState.FAIL),
    )


def is_surplus(trial: FrozenTrial, trials: Sequence[FrozenTrial], budget: int) -> bool:
    """Whether ``trial`` overran the budget: results plus earlier-numbered running trials fill it.

    Several processes can pass the budget check at once; ordering the running trials by number
    gives every process the same verdict, so exactly the budget's worth of trials proceeds.
    """
    ahead = sum(
        1 for t in trials if has_result(t) or (t.state == TrialState.RUNNING and t.number < trial.number)
    )
    return ahead >= budget
