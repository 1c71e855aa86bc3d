"""Which point of the quasi-random sequence each trial gets, exactly once, in any process.

Optuna numbers the trials of a study 0, 1, 2, ... atomically in every storage, so the trial
number is the one counter all processes agree on without a lock. A trial that ends without a
result through no fault of its configuration (Ctrl-C, SIGTERM, a dead worker, or a surplus
trial created in a race at the end of the budget) gives its point back: the point is enqueued
as a new WAITING trial carrying ``point`` in its user attributes, and Optuna hands each waiting
trial to exactly one process. Those retries also take trial numbers, so a fresh trial's point is

    point(n) = n - (number of retry trials numbered below n)

which no process can compute differently: a retry's attributes are written in the same storage
operation that creates it. A task queued twice (two processes planning the same confirmation
at once) has a twin, an earlier trial holding its point; only the earlier one runs.

A trial whose objective raised (failed) keeps its point: rerunning the same configuration and
seed would fail the same way. Except where a run of failures in a row stops the study: a cause
outside the configurations (a missing package, a full disk, a bug since fixed) is then the
likelier one, so those points are given back too, once (a retry that fails again keeps its
point, so a configuration that always fails cannot stall the study).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from optuna.trial import FrozenTrial, TrialState

from adamtune.outcomes import State

POINT = "point"
RETRY_OF = "retry_of"
OUTCOME = "outcome"
COPY_OF = "copy_of"
"""On a trial copied into a later round as data for its sampler: {"round", "number"}."""
INTERRUPTED = "interrupted"
SURPLUS = "surplus"
"""Outcomes of trials that ended without a result through no fault of their configuration: their
points are given back."""


def is_retry(trial: FrozenTrial) -> bool:
    return RETRY_OF in trial.user_attrs


def retried_numbers(trials: Iterable[FrozenTrial]) -> set[int]:
    """The numbers of the trials whose points were queued again (by any retry, waiting or run)."""
    return {int(t.user_attrs[RETRY_OF]) for t in trials if is_retry(t)}


def is_given_back(trial: FrozenTrial, retried: Collection[int]) -> bool:
    """Whether ``trial`` ended without a result and its point was queued to run again (or, for
    an interruption, already had a result elsewhere); ``retried`` from ``retried_numbers``."""
    if trial.state != TrialState.FAIL:
        return False
    return trial.user_attrs.get(OUTCOME) in (INTERRUPTED, SURPLUS) or trial.number in retried


def failed_before(trial: FrozenTrial, trials: Sequence[FrozenTrial]) -> bool:
    """Whether ``trial`` is a retry of a point whose earlier run failed (not only interrupted)."""
    number = trial.user_attrs.get(RETRY_OF)
    while number is not None and 0 <= int(number) < len(trials):
        earlier = trials[int(number)]
        if earlier.user_attrs.get(OUTCOME) == State.FAILED:
            return True
        number = earlier.user_attrs.get(RETRY_OF)
    return False


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
    """Failed trials whose failure stands; those given back (``given_back``) are not counted."""
    given_back: int = 0
    """Trials that ended without a result and whose points were queued to run again."""

    def given_back_text(self) -> str:
        """``, 5 stopped or failed and queued again`` after the failed count, or nothing."""
        return f", {self.given_back} stopped or failed and queued again" if self.given_back else ""

    def open_slots(self, budget: int) -> int:
        """How many more trials may start now without overrunning the budget."""
        return budget - self.results - self.running


def tally(trials: Sequence[FrozenTrial]) -> Tally:
    retried = retried_numbers(trials)
    return Tally(
        results=sum(1 for t in trials if has_result(t)),
        running=sum(1 for t in trials if t.state == TrialState.RUNNING),
        waiting=sum(1 for t in trials if t.state == TrialState.WAITING),
        failed=sum(1 for t in trials if t.state == TrialState.FAIL and not is_given_back(t, retried)),
        given_back=sum(1 for t in trials if is_given_back(t, retried)),
    )


def twin_of(trial: FrozenTrial, trials: Sequence[FrozenTrial]) -> int | None:
    """The number of an earlier trial that holds ``trial``'s queued point and was not given back
    (None if there is none): two processes that queue the same tasks at once (a confirmation
    planned by both) leave such twins, and only the earliest of each may run."""
    if POINT not in trial.user_attrs:
        return None  # a fresh trial: its point follows from its number and is its own
    point = trial.user_attrs[POINT]
    retried = retried_numbers(trials)
    return next(
        (
            t.number
            for t in trials
            if t.number < trial.number and t.user_attrs.get(POINT) == point and not is_given_back(t, retried)
        ),
        None,
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
