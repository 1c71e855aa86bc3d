"""The adaptive samplers: Optuna's GP sampler (constrained LogEI) and TPE, made fit for adamtune.

Three things are added around Optuna's samplers, nothing is rewritten:

- **Quasi-random start-up.** Until ``startup`` trials have a result, points come from the
  study's Halton sequence (``QuasiRandomSampler``), not from uniform random draws.
- **Resumable.** Each trial gets a freshly built inner sampler seeded by the study seed and the
  number of trials with a result so far. A study interrupted and resumed therefore asks the
  same questions with the same seeds as one that ran straight through, and reaches the same
  final state (a GP sampler kept across trials would carry kernel caches and a random state
  that a restart loses).
- **Learning from pruned trials.** Optuna's GP sampler fits only COMPLETE trials and ignores
  PRUNED ones, so it would keep proposing points next to trials that the pruner has already
  judged hopeless. adamtune's GP sees each pruned trial as complete with its stored value,
  the best value it reached before it was stopped (``Trial.report`` reports the best so far):
  a pessimistic value for a trial that was not allowed to finish, which is the pruner's verdict.
  Diverged trials are already in the GP's data as infeasible (constraint ``diverged`` = 1).
  TPE needs no help: it already ranks pruned trials by their last intermediate value.
"""

from __future__ import annotations

import copy
import json
import threading
from typing import Any, Literal

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, GPSampler, TPESampler
from optuna.samplers._gp.sampler import _RELATIVE_PARAMS_KEY, _SYSTEM_ATTR_MAX_LENGTH, _get_params
from optuna.study import Study as OptunaStudy
from optuna.trial import FrozenTrial, TrialState

from adamtune.allocation import has_result
from adamtune.sampling import QuasiRandomSampler
from adamtune.space import SearchSpace

AdaptiveKind = Literal["gp", "tpe"]


def derived_seed(*parts: int) -> int:
    """A 31-bit seed from several whole numbers (stable across processes and versions)."""
    return int(np.random.SeedSequence(list(parts)).generate_state(1)[0]) >> 1


class PrunedAwareGPSampler(GPSampler):
    """Optuna's ``GPSampler``, fitted on pruned trials too (with their best value so far)."""

    def sample_relative(
        self, study: OptunaStudy, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if not search_space:
            return {}
        states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
        trials = study._get_trials(deepcopy=False, states=states, use_cache=False)
        stand_ins = [as_complete(t) for t in trials if t.state != TrialState.RUNNING]
        completed = [t for t in stand_ins if t is not None]
        running = [t for t in trials if t.state == TrialState.RUNNING and t.number != trial.number]
        running = [t for t in running if search_space.keys() <= _get_params(t).keys()]
        if not completed or len(completed) < self._n_startup_trials:
            return {}  # the independent (quasi-random) sampler draws this one
        import torch

        with torch.device("cpu"):
            params: dict[str, Any] = self._sample_relative_impl(study, completed, running, search_space)
        if params:
            # As GPSampler does: share the suggestion with other processes (batch acquisition
            # over running trials reads it back).
            text = json.dumps(params)
            for index, start in enumerate(range(0, len(text), _SYSTEM_ATTR_MAX_LENGTH)):
                study._storage.set_trial_system_attr(
                    trial._trial_id,
                    f"{_RELATIVE_PARAMS_KEY}:{index}",
                    text[start : start + _SYSTEM_ATTR_MAX_LENGTH],
                )
        return params


def as_complete(trial: FrozenTrial) -> FrozenTrial | None:
    """A pruned trial as a COMPLETE one valued at its last reported (best so far) value."""
    if trial.state == TrialState.COMPLETE:
        return trial
    if not trial.intermediate_values:
        return None
    last_step = max(trial.intermediate_values)
    stand_in = copy.copy(trial)
    stand_in.state = TrialState.COMPLETE
    stand_in.values = [trial.intermediate_values[last_step]]
    return stand_in


class AdaptiveSampler(BaseSampler):
    """GP (constrained BO) or TPE after a quasi-random start-up; see the module docstring."""

    def __init__(self, kind: AdaptiveKind, space: SearchSpace, seed: int, startup: int) -> None:
        self._kind: AdaptiveKind = kind
        self._seed = seed
        self._startup = max(0, startup)
        self._quasi_random = QuasiRandomSampler(space, seed)
        self._inner: dict[int, BaseSampler] = {}
        self._lock = threading.Lock()

    @property
    def kind(self) -> AdaptiveKind:
        return self._kind

    def _sampler_for(self, study: OptunaStudy, trial: FrozenTrial) -> BaseSampler:
        with self._lock:
            inner = self._inner.get(trial.number)
            if inner is not None:
                return inner
            trials = study._storage.get_all_trials(study._study_id, deepcopy=False)
            results = sum(1 for t in trials if has_result(t))
            if results < self._startup:
                inner = self._quasi_random
            else:
                inner = self._build(derived_seed(self._seed, results))
            self._inner[trial.number] = inner
            return inner

    def _build(self, seed: int) -> BaseSampler:
        if self._kind == "gp":
            return PrunedAwareGPSampler(
                seed=seed,
                independent_sampler=self._quasi_random,
                n_startup_trials=0,
                warn_independent_sampling=False,
            )
        return TPESampler(seed=seed, n_startup_trials=0, multivariate=True)

    def infer_relative_search_space(
        self, study: OptunaStudy, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self._sampler_for(study, trial).infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: OptunaStudy, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self._sampler_for(study, trial).sample_relative(study, trial, search_space)

    def sample_independent(
        self,
        study: OptunaStudy,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        inner = self._sampler_for(study, trial)
        return inner.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(
        self,
        study: OptunaStudy,
        trial: FrozenTrial,
        state: TrialState,
        values: Any,
    ) -> None:
        with self._lock:
            self._inner.pop(trial.number, None)
