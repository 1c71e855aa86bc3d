"""``tune()``: create or resume a study, run trials up to the budget, record every outcome.

Outcomes are stored as Optuna understands them (PLAYBOOK.md section 7):

- complete: COMPLETE with its value and the constraint ``diverged`` = 0;
- infeasible: COMPLETE with the constraint ``diverged`` = 1 and a finite stand-in value (the
  worst value seen so far), so constrained samplers and Optuna's plots treat it as data;
- failed: FAIL, the traceback in the user attribute ``reason``; where a run of failures in a
  row stops the study, their points are given back as well (once), so the fixed program runs
  the points an uninterrupted study would have;
- interrupted (Ctrl-C, SIGTERM, a dead worker): FAIL, and its point is given back (see
  ``allocation``), so re-running the same command resumes without skipping or repeating one.

The budget counts trials with a result (complete, infeasible, pruned); failed ones do not.
"""

from __future__ import annotations

import datetime
import logging
import math
import os
import signal
import socket
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import BaseStorage
from optuna.storages._heartbeat import is_heartbeat_enabled
from optuna.trial import FrozenTrial, TrialState

from adamtune._version import __version__
from adamtune.allocation import (
    INTERRUPTED,
    OUTCOME,
    POINT,
    RETRY_OF,
    SURPLUS,
    Tally,
    failed_before,
    has_result,
    is_surplus,
    point_of,
    tally,
    twin_of,
)
from adamtune.config import AdamConfig, OptimizerName
from adamtune.environment import current_environment, environment_differences
from adamtune.errors import (
    ConfigError,
    StudyMismatchError,
    StudyNotFoundError,
    TooManyFailuresError,
)
from adamtune.executors import Executor, InProcessExecutor, Objective
from adamtune.outcomes import Outcome, State
from adamtune.records import (
    ADAM,
    BATCH,
    CURVES,
    DIVERGED_CONSTRAINT,
    METRICS,
    REASON,
    SEED,
    WORKER,
    TrialRecord,
    best_record,
    record_from_trial,
    records_of,
)
from adamtune.sampling import QuasiRandomSampler
from adamtune.space import SearchSpace
from adamtune.storage import PART_MARK, describe, open_storage, study_names
from adamtune.tiers import TierChoice, check_budget, choose_tuned
from adamtune.trial import StopRules, Trial
from adamtune.workers import LAUNCH_ATTR, RUN_BEGAN_ENV

if TYPE_CHECKING:
    from adamtune.choice import Recommendation
    from adamtune.confirmation import Adopted, Confirmation
    from adamtune.diagnostics import Finding
    from adamtune.strategy import StrategyName

logger = logging.getLogger("adamtune")

Direction = Literal["minimize", "maximize"]
INFO_ATTR = "adamtune"
BUDGET_ATTR = "budget"
STRATEGY_ATTR = "strategy"
CONFIRM_ATTR = "confirmation"
EXTENSIONS_ATTR = "extensions"
"""Each time a one-study search was given a larger budget: {"from": old budget, "to": new}."""
FAILURE_STOP_ATTR = "failure_stop"
"""When (``time.time()``) a run of failures last stopped the study, in any process."""
TASK_ATTRS = (SEED, "role", "candidate", "source")
"""User attributes a given-back trial passes to its retry: what it was asked to run."""


@dataclass(frozen=True)
class StudyInfo:
    """What a study was created with; stored in the study's user attribute ``adamtune``."""

    space: SearchSpace
    tiers: TierChoice
    seed: int
    metric: str
    direction: Direction
    version: str = __version__
    # Where the study was created: its GP rounds repeat exactly only there (environment.py).
    environment: dict[str, str] = field(default_factory=current_environment, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "space": self.space.to_dict(),
            "tiers": self.tiers.to_dict(),
            "seed": self.seed,
            "metric": self.metric,
            "direction": self.direction,
            "environment": dict(self.environment),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StudyInfo:
        tiers = data["tiers"]
        return cls(
            space=SearchSpace.from_dict(data["space"]),
            tiers=TierChoice(tuple(tiers["tuned"]), tiers["reason"], tiers["source"]),
            seed=int(data["seed"]),
            metric=str(data["metric"]),
            direction=data["direction"],
            version=str(data["version"]),
            # Studies from before adamtune recorded it have none.
            environment={str(k): str(v) for k, v in data.get("environment", {}).items()},
        )


class Study:
    """A study as stored: its settings, its trials and its best trial.

    ``optuna`` is the plain Optuna study underneath, for Optuna's own API and plots.
    """

    def __init__(self, optuna_study: optuna.Study, info: StudyInfo) -> None:
        self.optuna = optuna_study
        self.info = info
        # The last recommendation and the trials it was made from: a GP fit is too dear to
        # repeat for every reader (the summary, the report, the confirmation) of the same trials.
        self._recommendation: tuple[tuple[Any, ...], Recommendation | None] | None = None

    @property
    def name(self) -> str:
        return str(self.optuna.study_name)

    @property
    def budget(self) -> int:
        return int(self.optuna.user_attrs.get(BUDGET_ATTR, 0))

    @property
    def extended_from(self) -> int | None:
        """The budget before the latest extension (None: never extended)."""
        extensions = self.optuna.user_attrs.get(EXTENSIONS_ATTR, [])
        return int(extensions[-1]["from"]) if extensions else None

    @property
    def space(self) -> SearchSpace:
        return self.info.space

    @property
    def param_names(self) -> tuple[str, ...]:
        """The Adam values every record shows: the four always, weight decay when in play."""
        names: tuple[str, ...] = ("lr", "beta1", "beta2", "eps")
        space = self.info.space
        if space.uses_weight_decay:
            names += ("weight_decay",)
        return names

    @property
    def trials(self) -> list[TrialRecord]:
        """Every trial that started, in number order (queued retries are not trials yet)."""
        frozen = self.optuna.get_trials(deepcopy=False)
        return records_of(frozen, self.info.space)

    @property
    def best(self) -> TrialRecord | None:
        """The best complete, feasible trial, or None when there is none yet."""
        return best_record(self.trials, self.info.direction)

    @property
    def recommended(self) -> Recommendation | None:
        """The trial to adopt: of the few best observed, the one a GP of all the trials rates
        best (``adamtune.choice``); None when no trial is complete and feasible yet."""
        records = self.trials
        key = tuple((r.number, r.state, r.value) for r in records)
        if self._recommendation is None or self._recommendation[0] != key:
            self._recommendation = (key, self._recommend(records))
        return self._recommendation[1]

    def _recommend(self, records: list[TrialRecord]) -> Recommendation | None:
        from adamtune.choice import recommend

        return recommend(records, self.info.space, self.info.direction)

    @property
    def adopted(self) -> Adopted:
        """The trial to use and why: the confirmation's winner where a confirmation of the study
        as it is prefers another trial than the recommended one, else the recommended trial."""
        from adamtune.confirmation import to_adopt

        return to_adopt(self)

    def tally(self) -> Tally:
        return tally(self.optuna.get_trials(deepcopy=False))

    def diagnostics(self) -> list[Finding]:
        """The playbook's checklist over this study's trials, most urgent first."""
        from adamtune.diagnostics import diagnose

        return diagnose(self)

    def report(self, path: str | Path) -> Path:
        """Write the self-contained HTML report to ``path`` (an .html file, or a folder)."""
        from adamtune.plots.report import write_report

        return write_report(self, Path(path))

    @property
    def strategy(self) -> str:
        return str(self.optuna.user_attrs.get(STRATEGY_ATTR, "quasi-random"))

    @property
    def confirmation(self) -> Confirmation | None:
        """The best configurations and the baseline retrained on fresh seeds, when run."""
        from adamtune.confirmation import load_confirmation

        return load_confirmation(self)

    def to_dict(self) -> dict[str, Any]:
        """The whole study as data (``adamtune export``): what it was created with (space, tiers,
        search seed, environment, and the command's launch spec where a command started it),
        every trial with its seed, sequence point and curves, the
        recommendation and the confirmation."""
        names = self.param_names
        recommendation = self.recommended
        confirmation = self.confirmation
        return {
            "name": self.name,
            "strategy": self.strategy,
            "budget": self.budget,
            **self._created_with(),
            # How the command line started it (the objective and its options), for a rerun.
            "launch": self.optuna.user_attrs.get(LAUNCH_ATTR),
            "recommended": recommendation.to_dict(names) if recommendation is not None else None,
            "confirmation": confirmation.to_dict() if confirmation is not None else None,
            "trials": [record.full_dict(names) for record in self.trials],
        }

    def _created_with(self) -> dict[str, Any]:
        extensions = self.optuna.user_attrs.get(EXTENSIONS_ATTR)
        return {**self.info.to_dict(), **({EXTENSIONS_ATTR: extensions} if extensions else {})}


class Progress(Protocol):
    """Receives a study's progress; the CLI draws a progress bar with it."""

    def started(self, study: Study, done: int) -> None: ...

    def trial_finished(self, study: Study, record: TrialRecord, done: int) -> None: ...


def tune(
    objective: Objective,
    budget: int,
    *,
    study: str | None = None,
    storage: str | None = None,
    seed: int = 0,
    tune: Iterable[str] | None = None,
    ranges: Mapping[str, tuple[float, float]] | None = None,
    fixed: Mapping[str, float] | None = None,
    optimizer: OptimizerName = "adam",
    limits: Mapping[str, tuple[float, float]] | None = None,
    direction: Direction = "minimize",
    metric: str = "val_loss",
    max_consecutive_failures: int = 5,
    pruner: PrunerName | optuna.pruners.BasePruner = "none",
    patience: int | None = None,
    divergence_factor: float | None = 10.0,
    executor: Executor | None = None,
    workers: int = 1,
    progress: Progress | bool | None = None,
    strategy: StrategyName = "playbook",
    confirm: int | None = None,
    confirm_top: int = 3,
    baseline: AdamConfig | None = None,
) -> Study:
    """Tune Adam's hyperparameters for ``objective`` with ``budget`` trials, and return the study.

    ``objective(trial)`` trains with ``trial.adam`` and ``trial.seed``, may call
    ``trial.report(step, **metrics)``, and returns the objective (a number, or a dict naming it
    by ``metric``). The budget decides what is tuned (see ``tiers``) unless ``tune`` names it;
    ``ranges`` and ``fixed`` override the default ranges and fixed values; ``limits`` bound how
    far the playbook strategy may expand a range (default: the legal domain). ``optimizer`` is
    "adam", "adamw", "nadam" or "nadamw" (``trial.adam.make_optimizer`` builds it). The study is stored
    under ``study`` (default: the objective's name) in ``storage`` (default: ``adamtune.journal``
    in the working directory); calling again with the same settings resumes it.

    Early stopping (PLAYBOOK.md section 6): ``trial.report`` ends a trial that diverges (NaN,
    inf, or a training loss ``divergence_factor`` times its first value; None: NaN and inf only),
    that has not improved for ``patience`` reports, or that ``pruner`` ("median", "asha" or an
    Optuna pruner) stops.

    ``workers`` > 1 runs that many trials at once in threads of this process: for objectives
    that wait on other processes (``adamtune run``), not for Python training loops.
    ``progress=True`` draws the command line's progress bar on standard error (trials done,
    best so far, time left, a line for each round and the confirmation); a ``Progress`` object
    receives the same events instead.

    ``strategy`` (see ``adamtune.strategy``): "playbook" (rounds: explore, expand, exploit with
    constrained Bayesian optimisation; returns a ``Campaign``), or one study searched by
    "quasi-random", "random", "grid", "bayes" or "tpe". Afterwards the ``confirm_top`` best
    configurations and ``baseline`` (default: torch's defaults for the optimizer) are retrained on ``confirm``
    fresh seeds (default 3 for "playbook", 0 for the others; 0 turns it off), outside the
    budget: ``study.confirmation`` has the table and the verdict.
    """
    budget = check_budget(budget)
    _check_settings(seed, direction, metric, max_consecutive_failures)
    fixed = dict(fixed or {})
    name = study if study is not None else default_study_name(objective)
    check_study_name(name)
    choice = choose_tuned(budget, requested=tune, fixed=fixed, ranged=ranges or ())
    space = SearchSpace.build(choice.tuned, ranges=ranges, fixed=fixed, optimizer=optimizer, limits=limits)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers: expected a whole number >= 1, got {workers!r}")
    from adamtune.confirmation import DEFAULT_SEEDS, check_baseline, default_baseline
    from adamtune.strategy import check_strategy

    strategy = check_strategy(strategy, space)
    seeds = _check_confirm(confirm, confirm_top, DEFAULT_SEEDS if strategy == "playbook" else 0)
    baseline = baseline or default_baseline(space)
    check_baseline(baseline, space)
    rules = StopRules(direction, divergence_factor, patience)
    optuna_pruner = make_pruner(pruner)
    executor = executor or InProcessExecutor()
    backend = open_storage(storage)  # after every check: a refused call stores nothing
    planned = _planned_choice(name, backend, choice, budget, fixed)
    if planned != choice:  # fewer tuned than the checks above saw: they hold all the same
        choice = planned
        space = SearchSpace.build(
            choice.tuned, ranges=ranges, fixed=fixed, optimizer=optimizer, limits=limits
        )
    info = StudyInfo(space, choice, seed, metric, direction)
    logger.info("study %r in %s: %s", name, describe(storage), choice.reason)
    with ExitStack() as stack:
        if isinstance(progress, bool):  # the bar is stopped however the run ends
            progress = stack.enter_context(_progress_bar()) if progress else None
        return _run(
            objective,
            budget,
            name,
            backend,
            info,
            strategy=strategy,
            seeds=seeds,
            confirm_top=confirm_top,
            baseline=baseline,
            rules=rules,
            optuna_pruner=optuna_pruner,
            executor=executor,
            max_consecutive_failures=max_consecutive_failures,
            progress=progress,
            workers=workers,
        )


def _progress_bar() -> AbstractContextManager[Progress]:
    from rich.console import Console

    from adamtune.progress import ProgressBar

    return ProgressBar(Console(stderr=True))


def _run(
    objective: Objective,
    budget: int,
    name: str,
    backend: BaseStorage,
    info: StudyInfo,
    *,
    strategy: StrategyName,
    seeds: int,
    confirm_top: int,
    baseline: AdamConfig,
    rules: StopRules,
    optuna_pruner: optuna.pruners.BasePruner,
    executor: Executor,
    max_consecutive_failures: int,
    progress: Progress | None,
    workers: int,
) -> Study:
    """The search and the confirmation of ``tune``, its settings checked."""
    from adamtune.confirmation import run_confirmation
    from adamtune.strategy import make_sampler

    handle: Study
    if strategy == "playbook":
        from adamtune.campaign import run_campaign

        handle = run_campaign(
            objective,
            budget,
            name,
            backend,
            info,
            pruner=optuna_pruner,
            rules=rules,
            executor=executor,
            max_consecutive_failures=max_consecutive_failures,
            progress=progress,
            workers=workers,
        )
    else:
        sampler = make_sampler(strategy, info.space, info.seed, budget)
        handle = _create_or_resume(name, backend, info, budget, optuna_pruner, sampler, record_budget=False)
        _check_strategy_of(handle, strategy)
        _set_budget(handle, budget)  # once accepted: a refused run changes nothing
        runners = [_Runner(handle, objective, executor, budget, progress, rules) for _ in range(workers)]
        runners[0].reclaim_dead_workers()
        if progress is not None:
            progress.started(handle, handle.tally().results)
        with _sigterm_as_interrupt():
            # A confirmation is planned from every trial; without one, other processes finish
            # their own trials.
            run_to_budget(runners, objective, max_consecutive_failures, wait=bool(seeds))
    if seeds:
        with _sigterm_as_interrupt():
            run_confirmation(
                handle,
                objective,
                executor,
                rules,
                seeds=seeds,
                top=confirm_top,
                baseline=baseline,
                max_consecutive_failures=max_consecutive_failures,
                progress=progress,
            )
    return handle


def _planned_choice(
    name: str, storage: BaseStorage, choice: TierChoice, budget: int, fixed: Mapping[str, float]
) -> TierChoice:
    """The tiers' choice for ``budget``, or, where it extends a stored study whose tiers chose
    another set (or resumes such an extension), the set the study was planned with: its trials
    were searched in that space, and a study's space is fixed (a new set is a new study, as the
    warning says)."""
    if choice.source != "tiers":
        return choice
    try:
        attrs = optuna.load_study(study_name=name, storage=storage).user_attrs
    except KeyError:
        return choice  # a new study
    if INFO_ATTR not in attrs:
        return choice
    planned = StudyInfo.from_dict(attrs[INFO_ATTR]).tiers
    kept_fixed = not any(tuned in fixed for tuned in planned.tuned)
    # The stored budget is the latest asked for: equal to it, the run resumes an extension (a
    # study planned with that budget would have the tiers' set) or reruns a finished one.
    extends = budget >= int(attrs.get(BUDGET_ATTR, 0))
    if planned.source != "tiers" or planned.tuned == choice.tuned or not (kept_fixed and extends):
        return choice  # resumed as planned, or another change the study refuses with its reason
    logger.warning(
        "study %r keeps the hyperparameters it was planned with (%s): a budget of %d alone would "
        "tune %s (the tiers); give another --study name to tune those",
        name,
        ", ".join(planned.tuned),
        budget,
        ", ".join(choice.tuned),
    )
    return planned


def _check_confirm(confirm: object, top: object, default: int) -> int:
    seeds = default if confirm is None else confirm
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 0:
        raise ConfigError(f"confirm: expected a whole number of seeds >= 0 (0: off), got {confirm!r}")
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ConfigError(f"confirm_top: expected a whole number of configurations >= 1, got {top!r}")
    return seeds


def _set_budget(study: Study, budget: int) -> None:
    """Store a one-study search's budget: one below its results is refused, a larger one than
    it had is recorded as an extension (the export shows it; the CLI says "extending")."""
    results = study.tally().results
    if budget < results:
        raise StudyMismatchError(
            f"study {study.name!r} has {results} trials with a result: expected a budget of at "
            f"least {results}, got {budget}"
        )
    previous = study.budget
    if 0 < previous < budget:
        extensions = [*study.optuna.user_attrs.get(EXTENSIONS_ATTR, []), {"from": previous, "to": budget}]
        study.optuna.set_user_attr(EXTENSIONS_ATTR, extensions)
        logger.info("study %r extended from %d to %d trials", study.name, previous, budget)
    study.optuna.set_user_attr(BUDGET_ATTR, budget)


def _check_strategy_of(study: Study, strategy: str) -> None:
    from adamtune.campaign import is_campaign

    stored = study.optuna.user_attrs.get(STRATEGY_ATTR)
    if stored is None and is_campaign(study.optuna):
        stored = "playbook"  # a one-study search in a campaign's own study would hide its trials
    if stored is None:
        if study.optuna.get_trials(deepcopy=False) and strategy != "quasi-random":
            stored = "quasi-random"  # studies from before strategies existed
        else:
            study.optuna.set_user_attr(STRATEGY_ATTR, strategy)
            return
    if stored != strategy:
        raise StudyMismatchError(
            f"study {study.name!r} was searched with strategy {stored}, got {strategy}: resume it "
            f"with --strategy {stored}, or give another --study name"
        )


def run_to_budget(runners: Sequence[_Runner], objective: Objective, max_failures: int, *, wait: bool) -> None:
    """Run the runners of one study (several as threads) until no slot of its budget is open;
    with ``wait``, until it has all its results: wait for other processes' running trials, and
    run again for the points that dead ones gave back."""
    while True:
        if len(runners) == 1:
            runners[0].run(max_failures)
        else:
            _run_threads(runners, objective, max_failures)
        if not wait:
            return
        runners[0].wait_for_others()
        if runners[0].study.tally().results >= runners[0].budget:
            return


def _run_threads(runners: Sequence[_Runner], objective: Objective, max_failures: int) -> None:
    """Run each runner in a thread; on Ctrl-C, cancel the objective's running work first."""
    errors: list[BaseException] = []

    def work(runner: _Runner) -> None:
        try:
            runner.run(max_failures)
        except BaseException as error:  # handed to the main thread below
            errors.append(error)

    _halt_together(runners)
    threads = [threading.Thread(target=work, args=(r,), daemon=True) for r in runners]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            while thread.is_alive():
                thread.join(timeout=0.2)  # short joins keep the main thread responsive to Ctrl-C
    except KeyboardInterrupt:
        cancel = getattr(objective, "cancel", None)
        if callable(cancel):
            cancel()
        for thread in threads:
            thread.join()
        raise
    finally:
        # The threads' runs of failures, given back together in point order: the next run then
        # takes the sequence's points first, as an uninterrupted study would have.
        stopped = [trial for runner in runners for trial in runner.to_give_back]
        unqueued = [task for runner in runners for task in runner.unqueued]
        if (stopped or unqueued) and not any(thread.is_alive() for thread in threads):
            runners[0].give_back_failures(stopped, unqueued)
    failures = [e for e in errors if not isinstance(e, KeyboardInterrupt)]
    if failures:
        raise failures[0]


def _halt_together(runners: Sequence[_Runner]) -> None:
    """Make the runners of one process stop together when a run of failures stops one of them,
    so that none goes on drawing points (or runs one given back, failing it again for good), and
    ``_run_threads`` gives their failures back together, in point order."""
    halt = threading.Event()
    for runner in runners:
        runner.halt = halt


def load_study(name: str | None, storage: str | None) -> Study:
    """Open an existing study for reading; ``name`` may be left out when there is only one."""
    backend = open_storage(storage, create=False)
    names = study_names(backend)
    where = describe(storage)
    if name is None:
        if len(names) != 1:
            listed = ", ".join(names) if names else "none"
            raise StudyNotFoundError(
                f"--study: expected one of the studies in {where}, got no name (studies: {listed})"
            )
        name = names[0]
    if name not in names:
        listed = ", ".join(names) if names else "none"
        raise StudyNotFoundError(f"no study named {name!r} in {where} (studies: {listed})")
    found = _open_study(backend, name)
    if found is None:
        raise StudyNotFoundError(f"study {name!r} in {where} was not created by adamtune")
    return found


def load_studies(storage: str | None) -> dict[str, Study | None]:
    """Every study a user named in ``storage``, by name, in creation order; None for the ones
    adamtune did not create (plain Optuna studies sharing the storage)."""
    backend = open_storage(storage, create=False)
    return {name: _open_study(backend, name) for name in study_names(backend)}


def delete_study(name: str, storage: str | None) -> list[str]:
    """Delete the adamtune study ``name`` from ``storage`` with its parts (a campaign's rounds,
    the confirmation), and return the Optuna studies deleted. Files its trials wrote (such as
    ``adamtune run``'s logs) are left alone."""
    load_study(name, storage)  # refuses a missing name, and a study adamtune did not create
    backend = open_storage(storage, create=False)
    doomed = _with_parts(backend, name)
    for each in doomed:  # the parts first: an interrupted deletion leaves the study listed
        optuna.delete_study(study_name=each, storage=backend)
    return doomed


def copy_study(
    name: str, storage: str | None, to: str | None = None, new_name: str | None = None
) -> list[str]:
    """Copy the adamtune study ``name`` from ``storage`` to the storage ``to`` (default: the same
    one) as ``new_name`` (default: its own name) with its parts (a campaign's rounds, the
    confirmation), every trial and attribute as it is, and return the Optuna studies written.
    A study of the new name in ``to`` is refused, and a copy that fails part-way is removed
    again. A copy under a new name is a branch: it resumes, or grows with a larger budget, on
    its own while the original stays as it was."""
    target_name = check_study_name(new_name) if new_name is not None else name
    to = to if to is not None else storage
    study = load_study(name, storage)
    running = study.tally().running
    if running:
        raise ConfigError(
            f"study {name!r}: expected no running trials to copy, got {running} (let its workers "
            "finish, or stop them, first)"
        )
    if to in ("memory", ":memory:"):
        raise ConfigError(f"--to: expected a storage that outlives this process, got {to!r}")
    source = open_storage(storage, create=False)
    target = open_storage(to)
    parts = {part: target_name + part[len(name) :] for part in _with_parts(source, name)}
    taken = {summary.study_name for summary in optuna.get_all_study_summaries(target)}
    clashes = [renamed for renamed in parts.values() if renamed in taken]
    if clashes:
        raise StudyMismatchError(
            f"--to: expected a storage without a study named {target_name!r}, got {describe(to)} with "
            f"{', '.join(clashes)}: delete it there first, copy to another storage, or give the copy "
            "another name (--as)"
        )
    copied: list[str] = []
    try:
        # The study itself last: until it is there, nothing lists the copy.
        for part, renamed in parts.items():
            with quiet_optuna():
                optuna.copy_study(
                    from_study_name=part, from_storage=source, to_storage=target, to_study_name=renamed
                )
            copied.append(renamed)
    except BaseException:
        for renamed in copied:
            optuna.delete_study(study_name=renamed, storage=target)
        raise
    return copied


def _with_parts(backend: BaseStorage, name: str) -> list[str]:
    """The Optuna studies that make up study ``name``: its parts (``NAME::...``), then itself."""
    every = [summary.study_name for summary in optuna.get_all_study_summaries(backend)]
    return [*(other for other in every if other.startswith(name + PART_MARK)), name]


def _open_study(backend: BaseStorage, name: str) -> Study | None:
    optuna_study = optuna.load_study(study_name=name, storage=backend)
    stored = optuna_study.user_attrs.get(INFO_ATTR)
    if stored is None:
        return None
    from adamtune.campaign import Campaign, is_campaign

    if is_campaign(optuna_study):
        return Campaign(optuna_study, StudyInfo.from_dict(stored))
    return Study(optuna_study, StudyInfo.from_dict(stored))


def check_study_name(name: str) -> str:
    if not name.strip():
        raise ConfigError("study name: expected a non-empty name, got ''")
    if PART_MARK in name:
        # NAME::round-K and NAME::confirm are the parts of study NAME: a user's study so named
        # would be hidden from the listings, or resume another study's round.
        raise ConfigError(
            f"study name: expected a name without {PART_MARK!r} (adamtune names the parts of a "
            f"study NAME{PART_MARK}round-K and NAME{PART_MARK}confirm), got {name!r}"
        )
    return name


def default_study_name(objective: Objective) -> str:
    return str(getattr(objective, "__name__", type(objective).__name__))


def trial_seed(study_seed: int, point: int) -> int:
    """The training seed of sequence point ``point``: fixed by the study seed and the point."""
    state = np.random.SeedSequence([study_seed, point]).generate_state(1)
    return int(state[0]) >> 1  # 31 bits: a valid seed for torch, NumPy and random alike


def _check_settings(seed: object, direction: object, metric: object, failures: object) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed: expected a whole number >= 0, got {seed!r}")
    if direction not in ("minimize", "maximize"):
        raise ConfigError(f"direction: expected minimize or maximize, got {direction!r}")
    if not isinstance(metric, str) or not metric:
        raise ConfigError(f"metric: expected a metric name such as val_loss, got {metric!r}")
    if isinstance(failures, bool) or not isinstance(failures, int) or failures < 1:
        raise ConfigError(f"max_consecutive_failures: expected a whole number >= 1, got {failures!r}")


PrunerName = Literal["none", "median", "asha"]
PRUNERS: tuple[PrunerName, ...] = ("none", "median", "asha")


def make_pruner(pruner: PrunerName | optuna.pruners.BasePruner) -> optuna.pruners.BasePruner:
    """Optuna's pruner for a name: the median rule or ASHA (successive halving), or none."""
    if isinstance(pruner, optuna.pruners.BasePruner):
        return pruner
    if pruner == "median":
        # The first 5 trials run in full, so the median has something to stand on.
        return optuna.pruners.MedianPruner(n_startup_trials=5)
    if pruner == "asha":
        return optuna.pruners.SuccessiveHalvingPruner()
    if pruner == "none":
        return optuna.pruners.NopPruner()
    raise ConfigError(f"pruner: expected one of {', '.join(PRUNERS)}, got {pruner!r}")


@contextmanager
def quiet_optuna() -> Iterator[None]:
    """Optuna's INFO lines ("A new study created ...") off for a study adamtune keeps for itself
    (a round, the confirmation, a scratch study): the user's own study still announces itself."""
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(max(verbosity, optuna.logging.WARNING))
    try:
        yield
    finally:
        optuna.logging.set_verbosity(verbosity)


def _create_or_resume(
    name: str,
    storage: BaseStorage,
    info: StudyInfo,
    budget: int,
    pruner: optuna.pruners.BasePruner,
    sampler: optuna.samplers.BaseSampler | None = None,
    *,
    internal: bool = False,
    record_budget: bool = True,
) -> Study:
    """``internal``: a study of adamtune's own (a round, the confirmation), created quietly.
    ``record_budget``: False leaves the stored budget to the caller (a campaign checks the
    budget it was planned for first, and a refused budget must not replace it)."""
    sampler = sampler or QuasiRandomSampler(info.space, info.seed)
    with quiet_optuna() if internal else nullcontext():
        optuna_study = optuna.create_study(
            study_name=name,
            storage=storage,
            sampler=sampler,
            pruner=pruner,
            direction=info.direction,
            load_if_exists=True,
        )
    stored = optuna_study.user_attrs.get(INFO_ATTR)
    if stored is None:
        if optuna_study.get_trials(deepcopy=False):
            raise StudyMismatchError(
                f"study {name!r} already exists and was not created by adamtune: give another --study name"
            )
        optuna_study.set_user_attr(INFO_ATTR, info.to_dict())
    else:
        stored_info = StudyInfo.from_dict(stored)
        _check_same_study(name, stored_info, info, budget)
        moved = environment_differences(stored_info.environment, info.environment)
        if moved and not internal:
            logger.warning(
                "study %r was created with other software or on another machine (%s): where it "
                "runs more trials, its Bayesian rounds may choose other ones than they would have there",
                name,
                ", ".join(moved),
            )
        info = replace(info, environment=stored_info.environment)
    if record_budget:
        optuna_study.set_user_attr(BUDGET_ATTR, budget)
    return Study(optuna_study, info)


def _check_same_study(name: str, stored: StudyInfo, given: StudyInfo, budget: int) -> None:
    differences = stored.space.differences(given.space)
    for field_name in ("seed", "metric", "direction"):
        if getattr(stored, field_name) != getattr(given, field_name):
            differences.append(f"{field_name} {getattr(stored, field_name)} vs {getattr(given, field_name)}")
    if not differences:
        return
    hint = "give another --study name to start a new study, or the original settings to resume"
    if stored.space.tuned != given.space.tuned and given.tiers.source == "tiers":
        hint = (
            f"budget {budget} chooses a different tuned set; pass --tune "
            f"{','.join(stored.space.tuned)} to resume this study, or give another --study name"
        )
    raise StudyMismatchError(
        f"study {name!r} exists with other settings (stored vs given: {'; '.join(differences)}): {hint}"
    )


def _run_began() -> float:
    """When this run began: now, or for a worker of ``adamtune tune --workers``, when the command
    that started it began (``RUN_BEGAN_ENV``)."""
    try:
        return float(os.environ[RUN_BEGAN_ENV])
    except (KeyError, ValueError):
        return time.time()


def _rerun_text(given: int, failed: int) -> str:
    """What the next run does with a run of ``failed`` failures of which ``given`` were queued."""
    if given == failed:
        return f": their {failed} configurations run again first"
    kept = "had failed before and keep their failure"
    if given == 0:
        return f" (all {failed} {kept}; the next run goes on with new trials)"
    return f": {given} of their configurations run again first ({failed - given} {kept})"


class _Interrupted(KeyboardInterrupt):
    """SIGTERM, turned into an interrupt so a trial in progress is given back cleanly."""


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise _Interrupted(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class _Runner:
    """The ask-run-tell loop of one process."""

    def __init__(
        self,
        study: Study,
        objective: Objective,
        executor: Executor,
        budget: int,
        progress: Progress | None,
        rules: StopRules,
    ) -> None:
        self.rules = rules
        self.study = study
        self.optuna = study.optuna
        self.storage: BaseStorage = study.optuna._storage
        self.objective = objective
        self.executor = executor
        self.budget = budget
        self.progress = progress
        self.worker = {"host": socket.gethostname(), "pid": os.getpid()}
        self.heartbeat = _Heartbeat(self.storage) if is_heartbeat_enabled(self.storage) else None
        self._next_stale_check = 0.0
        self.halt: threading.Event | None = None  # set by a sibling runner stopped by failures
        self.to_give_back: list[Trial] = []  # with ``halt``: this thread's failures, stopped
        self.unqueued: list[tuple[int, int]] = []  # with ``halt``: (number, point) asked after it
        # Another process (a worker) stopped by failures marks the study: this one stops too,
        # before it runs (and fails again, for good) the points given back.
        self.began = _run_began()

    def _trials(self) -> list[FrozenTrial]:
        return list(self.storage.get_all_trials(self.optuna._study_id, deepcopy=False))

    def _stopped_elsewhere(self) -> bool:
        """Whether another process stopped this study on a run of failures since this run began."""
        stopped = self.storage.get_study_user_attrs(self.optuna._study_id).get(FAILURE_STOP_ATTR)
        return isinstance(stopped, (int, float)) and stopped > self.began

    def _study_exists(self) -> bool:
        try:
            self.storage.get_study_id_from_name(self.study.name)
        except KeyError:
            return False
        return True

    def run(self, max_consecutive_failures: int) -> None:
        try:
            self._run(max_consecutive_failures)
        except KeyError:
            # Optuna's storages raise a bare KeyError for a study deleted under a running process.
            if self._study_exists():
                raise
            named = self.study.name.partition(PART_MARK)[0]
            raise StudyNotFoundError(
                f"study {named!r} was deleted from the storage while this process ran it: "
                "its trials are gone; run again to start it afresh"
            ) from None
        finally:
            if self.heartbeat is not None:
                self.heartbeat.stop()

    def _run(self, max_consecutive_failures: int) -> None:
        failures: list[tuple[Trial, str]] = []  # the current run of failures in a row
        while True:
            if self.halt is not None and self.halt.is_set():
                self.to_give_back = [trial for trial, _ in failures]
                return
            if self._stopped_elsewhere():
                raise self._stop([trial for trial, _ in failures], None)
            self._reclaim_stale()
            counts = tally(self._trials())
            slots = counts.open_slots(self.budget)
            if slots <= 0:
                if self.heartbeat is None or not counts.running or counts.results >= self.budget:
                    return
                # Other workers' trials fill the budget. With heartbeats a dead worker's trial is
                # found stale and its point comes back: wait to run it, so the study ends full.
                time.sleep(_WAIT_POLL_S)
                continue
            batch = self._start(min(slots, self.executor.batch_size))
            if not batch:
                continue
            if len(batch) > 1:
                for trial in batch:
                    trial.optuna_trial.set_user_attr(BATCH, len(batch))
            outcomes = self._execute(batch)
            for trial, outcome in zip(batch, outcomes, strict=True):
                record = self._record(trial, outcome)
                failed = outcome.state == State.FAILED
                failures = [*failures, (trial, outcome.reason or "")] if failed else []
                if self.progress is not None:
                    self.progress.trial_finished(self.study, record, tally(self._trials()).results)
            if len(failures) >= max_consecutive_failures:
                # Marked before the points go back, so that other processes stop before they run them.
                self.storage.set_study_user_attr(self.optuna._study_id, FAILURE_STOP_ATTR, time.time())
                raise self._stop([trial for trial, _ in failures], failures[-1][1])

    def _stop(self, stopped: list[Trial], reason: str | None) -> TooManyFailuresError:
        """Give back the ``stopped`` run of failures (the threads give back together, in
        ``_run_threads``) and say why the study stops: this process's failures (the last one's
        ``reason``), or another process's (``reason`` None)."""
        if self.halt is None:
            given = self.give_back_failures(stopped)
        else:
            self.halt.set()
            self.to_give_back = stopped
            given = len(self._not_failed_before(stopped))
        rerun = _rerun_text(given, len(stopped)) if stopped else ""
        tracebacks = "(tracebacks: adamtune trials --state failed --reasons)"
        if reason is None:
            return TooManyFailuresError(
                "another process running this study stopped it: the objective failed on trials in a "
                f"row there; this one stopped too; fix it and run the same command again to resume{rerun} "
                f"{tracebacks}"
            )
        last = reason.strip().splitlines()[-1] if reason.strip() else "?"
        return TooManyFailuresError(
            f"the objective failed on {len(stopped)} trials in a row (last error: {last}); fix it and "
            f"run the same command again to resume{rerun} {tracebacks}"
        )

    def give_back_failures(self, failed: Sequence[Trial], unrun: Sequence[tuple[int, int]] = ()) -> int:
        """Queue the points of failed trials to run again, except those that had failed before
        (see ``allocation``), and of the ``unrun`` trials (number, point), all in point order;
        how many were queued."""
        tasks = [(trial.optuna_trial.number, trial.point) for trial in self._not_failed_before(failed)]
        return sum(
            self._queue_again(number, point) for number, point in sorted([*tasks, *unrun], key=lambda t: t[1])
        )

    def _not_failed_before(self, failed: Sequence[Trial]) -> list[Trial]:
        trials = self._trials()
        return [t for t in failed if not failed_before(trials[t.optuna_trial.number], trials)]

    def _execute(self, batch: Sequence[Trial]) -> list[Outcome]:
        try:
            outcomes = self.executor.run(self.objective, batch)
        except BaseException:
            for trial in batch:
                self._give_back(
                    trial.optuna_trial.number,
                    trial.point,
                    INTERRUPTED,
                    "interrupted before it finished",
                )
            raise
        if len(outcomes) != len(batch):
            raise RuntimeError(f"executor returned {len(outcomes)} outcomes for {len(batch)}")
        return outcomes

    def _start(self, count: int) -> list[Trial]:
        started: list[Trial] = []
        preparing: tuple[int, int] | None = None  # (number, point) of the trial being suggested
        try:
            for _ in range(count):
                optuna_trial = self.optuna.ask()
                # Named at once: a trial stopped before it runs (a GP suggestion takes seconds)
                # is given back below, or found by the next run on this host if this one dies.
                optuna_trial.set_user_attr(WORKER, self.worker)
                if self.heartbeat is not None:
                    self.heartbeat.add(optuna_trial._trial_id)
                trials = self._trials()
                frozen = trials[optuna_trial.number]
                point = point_of(frozen, trials)
                if (self.halt is not None and self.halt.is_set()) or self._stopped_elsewhere():
                    # A sibling stopped the study after this ask began: this may be one of the
                    # points it gave back, which must wait for the next run.
                    reason = "not run: the study was stopping"
                    threads = self.halt is not None
                    self._give_back(optuna_trial.number, point, INTERRUPTED, reason, queue_again=not threads)
                    if threads:  # queued with the failures, in point order (queued now, it would come first)
                        self.unqueued.append((optuna_trial.number, point))
                    break
                twin = twin_of(frozen, trials)
                if twin is not None:
                    # Queued twice (two planners at once): trial ``twin`` runs this task; skip it.
                    reason = f"not run: trial {twin} runs the same task (it was queued twice)"
                    self._give_back(optuna_trial.number, point, SURPLUS, reason, queue_again=False)
                    continue
                if is_surplus(frozen, trials, self.budget):
                    # Another process filled the budget first: give the point back, run nothing.
                    reason = "not run: other workers had already filled the budget"
                    self._give_back(optuna_trial.number, point, SURPLUS, reason)
                    break
                preparing = (optuna_trial.number, point)
                started.append(self._prepare(optuna_trial, point))
                preparing = None
        except BaseException:  # Ctrl-C or a sampler's error: nothing asked for here may stay RUNNING
            unrun = [(trial.optuna_trial.number, trial.point) for trial in started]
            for number, point in [*unrun, *([preparing] if preparing else [])]:
                self._give_back(number, point, INTERRUPTED, "interrupted before it started")
            raise
        return started

    def _prepare(self, optuna_trial: optuna.Trial, point: int) -> Trial:
        space = self.study.info.space
        params = {
            spec.param_name: optuna_trial.suggest_float(
                spec.param_name, spec.distribution().low, spec.distribution().high, log=True
            )
            for spec in space.tuned_specs
        }
        adam = space.config_from_params(params)
        preset = optuna_trial.user_attrs.get(SEED)  # a queued task (a retry, a confirmation run)
        seed = int(preset) if preset is not None else trial_seed(self.study.info.seed, point)
        if POINT not in optuna_trial.user_attrs:
            optuna_trial.set_user_attr(POINT, point)
        optuna_trial.set_user_attr(SEED, seed)
        optuna_trial.set_user_attr(ADAM, adam.as_dict())
        return Trial(
            optuna_trial, adam, seed=seed, point=point, metric=self.study.info.metric, rules=self.rules
        )

    def _record(self, trial: Trial, outcome: Outcome) -> TrialRecord:
        optuna_trial = trial.optuna_trial
        try:
            self._tell(trial, outcome)
        except (UpdateFinishedTrialError, ValueError):
            frozen = self._trials()[optuna_trial.number]
            if frozen.state == TrialState.RUNNING:
                raise
            # Another worker found this trial stale (no heartbeat: a long pause, a cut network)
            # and gave its point back; the point runs again there, so this result is dropped.
            logger.warning(
                "trial %d was given back by another worker (%s); its point runs again, this result "
                "(%s) is dropped",
                optuna_trial.number,
                _last(frozen.user_attrs.get(REASON)),
                outcome.state,
            )
        finally:
            if self.heartbeat is not None:
                self.heartbeat.discard(optuna_trial._trial_id)
        frozen = self._trials()[optuna_trial.number]
        record = record_from_trial(frozen, self.study.info.space)
        logger.info("trial %d %s: %s", record.number, record.state, _summary(record))
        return record

    def _tell(self, trial: Trial, outcome: Outcome) -> None:
        optuna_trial = trial.optuna_trial
        optuna_trial.set_user_attr(OUTCOME, str(outcome.state))
        if outcome.reason:
            optuna_trial.set_user_attr(REASON, outcome.reason)
        optuna_trial.set_user_attr(METRICS, dict(outcome.metrics))
        optuna_trial.set_user_attr(CURVES, trial.curves)
        if outcome.state == State.COMPLETE:
            optuna_trial.set_constraint(DIVERGED_CONSTRAINT, 0.0)
            self.optuna.tell(optuna_trial, outcome.value)
        elif outcome.state == State.INFEASIBLE:
            optuna_trial.set_constraint(DIVERGED_CONSTRAINT, 1.0)
            self.optuna.tell(optuna_trial, self._stand_in(trial))
        elif outcome.state == State.PRUNED:
            # Optuna stores the last intermediate value: the best so far, as Trial reports it.
            optuna_trial.set_constraint(DIVERGED_CONSTRAINT, 0.0)
            self.optuna.tell(optuna_trial, state=TrialState.PRUNED)
        else:
            self.optuna.tell(optuna_trial, state=TrialState.FAIL)

    def _stand_in(self, trial: Trial) -> float:
        """A finite value for a diverged trial: the worst seen, so no sampler mistakes it."""
        candidates = [
            float(t.value)
            for t in self._trials()
            if t.state == TrialState.COMPLETE
            and t.user_attrs.get(OUTCOME) == State.COMPLETE
            and t.value is not None
            and math.isfinite(t.value)
        ]
        first = trial.curves.get(trial.metric, [])
        if first and math.isfinite(first[0][1]):
            candidates.append(first[0][1])
        if not candidates:
            return 1e6 if self.study.info.direction == "minimize" else -1e6
        return max(candidates) if self.study.info.direction == "minimize" else min(candidates)

    def _give_back(
        self, number: int, point: int, outcome: str, reason: str, *, queue_again: bool = True
    ) -> None:
        """End trial ``number`` without a result and queue its point for another run (unless
        ``queue_again`` is False: another trial runs it).

        Only the process whose state change succeeds queues the point, so it is queued once.
        """
        trial_id = self.storage.get_trial_id_from_study_id_trial_number(self.optuna._study_id, number)
        if self.heartbeat is not None:
            self.heartbeat.discard(trial_id)
        try:
            self.storage.set_trial_user_attr(trial_id, OUTCOME, outcome)
            self.storage.set_trial_user_attr(trial_id, REASON, reason)
            self.storage.set_trial_state_values(trial_id, TrialState.FAIL)
        except UpdateFinishedTrialError:
            return
        if queue_again:
            self._queue_again(number, point)

    def _queue_again(self, number: int, point: int) -> int:
        """Enqueue the task of ended trial ``number`` (its point, seed and role) as a new trial;
        1 if queued, 0 where the point has a result already or was never drawn."""
        trials = self._trials()
        if any(has_result(t) and point_of(t, trials) == point for t in trials):
            return 0
        frozen = trials[number]
        params = dict(frozen.params)
        if set(params) != set(self.study.info.space.distributions()):
            sampler = self.optuna.sampler
            if isinstance(sampler, QuasiRandomSampler):
                params = sampler.point_params(point)
            elif frozen.user_attrs.get(OUTCOME) == INTERRUPTED:
                # Stopped while an adaptive sampler suggested: the retry keeps the point and its
                # seed, and the sampler suggests again (seeded as it was: the same suggestion).
                params = {}
            else:
                return 0  # a surplus trial's point was never drawn: the next ask draws afresh
        task = {key: frozen.user_attrs[key] for key in TASK_ATTRS if key in frozen.user_attrs}
        self.optuna.enqueue_trial(params, user_attrs={**task, POINT: point, RETRY_OF: number})
        return 1

    def wait_for_others(self) -> None:
        """Wait until no trial of the study runs in another process, giving back the trials of
        dead ones (which may leave the budget short again)."""
        while self.study.tally().running:
            self.reclaim_dead_workers()
            time.sleep(_WAIT_POLL_S)

    def reclaim_dead_workers(self) -> None:
        """Give back the points of RUNNING trials whose process on this host has ended, of those
        whose worker on any host stopped sending heartbeats (database storage), and, without
        heartbeats, of those that never named their process within ``UNNAMED_GRACE_S``."""
        self._reclaim_stale(force=True)
        trials = self._trials()  # a point given back is queued as a later trial: points stay
        for frozen in trials:
            if frozen.state != TrialState.RUNNING:
                continue
            worker = frozen.user_attrs.get(WORKER)
            if not worker:
                self._reclaim_unnamed(frozen, trials)
                continue
            if worker.get("host") != self.worker["host"]:
                continue  # another machine's worker: only heartbeats can tell (RDB storage)
            pid = int(worker.get("pid", -1))
            if pid != os.getpid() and _process_alive(pid):
                continue
            self._give_back(
                frozen.number,
                point_of(frozen, trials),
                INTERRUPTED,
                f"the process running it (pid {pid} on {worker['host']}) ended before it finished",
            )

    def _reclaim_unnamed(self, frozen: FrozenTrial, trials: Sequence[FrozenTrial]) -> None:
        """A process names a trial right after creating it; one stopped in between (inside
        Optuna's ask) leaves it RUNNING with no name, which would hold a slot for ever."""
        started = frozen.datetime_start
        if self.heartbeat is not None or started is None:
            return  # with heartbeats it goes stale like any other
        waited = (datetime.datetime.now() - started).total_seconds()
        if waited < UNNAMED_GRACE_S:
            return
        self._give_back(
            frozen.number,
            point_of(frozen, trials),
            INTERRUPTED,
            f"its process ended before naming itself (still unnamed {waited:.0f} s after it began)",
        )

    def _reclaim_stale(self, force: bool = False) -> None:
        """Give back the points of trials whose worker sent no heartbeat for the grace period.

        Checked at most once per heartbeat interval, and not right after this process lost the
        database for a while: the other workers could not send heartbeats either.
        """
        heartbeat = self.heartbeat
        if heartbeat is None or (not force and time.monotonic() < self._next_stale_check):
            return
        self._next_stale_check = time.monotonic() + heartbeat.interval
        if heartbeat.since_outage_s() < heartbeat.grace + heartbeat.interval:
            return
        stale = set(self.storage._get_stale_trial_ids(self.optuna._study_id))  # type: ignore[attr-defined]
        if not stale:
            return
        trials = self._trials()
        for frozen in trials:
            if frozen._trial_id not in stale or frozen._trial_id in heartbeat.ids():
                continue
            worker = frozen.user_attrs.get(WORKER) or {}
            who = f"worker {worker.get('host', '?')} pid {worker.get('pid', '?')}" if worker else "its worker"
            self._give_back(
                frozen.number,
                point_of(frozen, trials),
                INTERRUPTED,
                f"no heartbeat from {who} for {heartbeat.grace} s: it died or lost the database",
            )


_WAIT_POLL_S = 0.5
UNNAMED_GRACE_S = 60.0
"""A RUNNING trial still without a ``worker`` after this long was left by a process stopped
inside Optuna's ask (which takes milliseconds), and is given back."""


class _Heartbeat:
    """Records a heartbeat for each of this runner's running trials every interval (RDB storage)."""

    def __init__(self, storage: BaseStorage) -> None:
        self.storage = storage
        backend = getattr(storage, "_backend", storage)
        self.interval = int(getattr(backend, "heartbeat_interval", None) or 10)
        self.grace = int(getattr(backend, "grace_period", None) or 2 * self.interval)
        self._backend = backend
        self._ids: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def since_outage_s(self) -> float:
        since = getattr(self._backend, "since_outage_s", None)
        return float(since()) if callable(since) else math.inf

    def ids(self) -> set[int]:
        with self._lock:
            return set(self._ids)

    def add(self, trial_id: int) -> None:
        self.storage.record_heartbeat(trial_id)  # type: ignore[attr-defined]
        with self._lock:
            self._ids.add(trial_id)
            if self._thread is None:
                self._stop.clear()
                self._thread = threading.Thread(target=self._beat, name="adamtune-heartbeat", daemon=True)
                self._thread.start()

    def discard(self, trial_id: int) -> None:
        with self._lock:
            self._ids.discard(trial_id)

    def stop(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=5)

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            for trial_id in self.ids():
                try:
                    self.storage.record_heartbeat(trial_id)  # type: ignore[attr-defined]
                except Exception as error:  # the storage retried already; keep beating
                    logger.warning("heartbeat of trial id %d not recorded: %s", trial_id, error)


def _last(text: object) -> str:
    lines = str(text or "").strip().splitlines()
    return lines[-1] if lines else "no reason given"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _summary(record: TrialRecord) -> str:
    config = record.adam.short() if record.adam else "?"
    if record.state == State.COMPLETE:
        return f"value {record.value:.6g} with {config}"
    reason = (record.reason or "").strip().splitlines()
    return f"{reason[-1] if reason else ''} ({config})"
