"""Quasi-random exploration: a scrambled, randomly shifted Halton sequence (PLAYBOOK.md s. 3).

Point k of the sequence goes to the trial that ``allocation.point_of`` assigns it, so every
process that shares a study draws from one sequence, each point exactly once, and the same seed
gives the same points however many processes ran the study.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.trial import FrozenTrial
from scipy.stats import qmc

from adamtune.allocation import point_of
from adamtune.space import SearchSpace

_BLOCK = 256  # points generated at a time; scrambling cost is paid once per block count


def halton_points(seed: int, dims: int, count: int) -> np.ndarray:
    """The first ``count`` points of the sequence for ``seed``, shape (count, dims), in [0, 1).

    scipy's Halton with random digit permutations (``scramble=True``) plus a Cranley-Patterson
    shift: a uniform offset added modulo 1, so the seed also moves the point set as a whole.
    """
    if dims < 1 or count < 0:
        raise ValueError(f"expected dims >= 1 and count >= 0, got {dims}, {count}")
    blocks = -(-count // _BLOCK)
    points: np.ndarray = _points(seed, dims, max(blocks, 1) * _BLOCK)[:count]
    return points


@lru_cache(maxsize=16)
def _points(seed: int, dims: int, count: int) -> np.ndarray:
    scramble_seed, shift_seed = np.random.SeedSequence([seed, dims]).spawn(2)
    halton = qmc.Halton(d=dims, scramble=True, seed=np.random.default_rng(scramble_seed))
    shift = np.random.default_rng(shift_seed).random(dims)
    points: np.ndarray = np.mod(halton.random(count) + shift, 1.0)
    points.setflags(write=False)
    return points


def halton_point(seed: int, dims: int, index: int) -> np.ndarray:
    """Point ``index`` of the sequence for ``seed``."""
    point: np.ndarray = halton_points(seed, dims, index + 1)[index]
    return point


class QuasiRandomSampler(BaseSampler):
    """An Optuna sampler drawing the tuned hyperparameters from the Halton sequence.

    Non-adaptive: the points do not depend on results, so the objective can be changed after
    the fact, and the study is the same whether trials run in parallel or in sequence.
    """

    def __init__(self, space: SearchSpace, seed: int) -> None:
        self._space = space
        self._seed = seed
        self._fallback = RandomSampler(seed=seed)

    @property
    def seed(self) -> int:
        return self._seed

    def point_params(self, index: int) -> dict[str, float]:
        """Optuna parameters of sequence point ``index``."""
        unit = halton_point(self._seed, len(self._space.tuned), index)
        return self._space.params_from_unit(unit.tolist())

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return dict(self._space.distributions())

    def sample_relative(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        search_space: dict[str, BaseDistribution],
    ) -> dict[str, Any]:
        if not search_space:
            return {}
        trials = study._storage.get_all_trials(study._study_id, deepcopy=False)
        return self.point_params(point_of(trial, trials))

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        # Only parameters outside the Adam space get here (a user's own suggest calls).
        return self._fallback.sample_independent(study, trial, param_name, param_distribution)
