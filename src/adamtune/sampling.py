"""Non-adaptive exploration: point k of a seeded sequence goes to the trial that
``allocation.point_of`` assigns it, so every process that shares a study draws from one
sequence, each point exactly once, and the same seed gives the same points however many
processes ran the study.

Three sequences (PLAYBOOK.md section 3): ``halton``, the scrambled, randomly shifted Halton
sequence (quasi-random search, the default); ``random``, independent uniform points (the
fallback the playbook calls slightly worse); ``grid``, the cells of a grid of ``size`` points
visited in a seeded random order (for 1-2 tuned hyperparameters only).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any, Literal

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


PointSequence = Literal["halton", "random", "grid"]
SEQUENCES: tuple[PointSequence, ...] = ("halton", "random", "grid")
GRID_MAX_DIMS = 2


def random_point(seed: int, dims: int, index: int) -> np.ndarray:
    """Point ``index`` of independent uniform draws: its own generator, so any process agrees."""
    point: np.ndarray = np.random.default_rng([seed, dims, index]).random(dims)
    return point


def grid_shape(dims: int, size: int) -> tuple[int, ...]:
    """Cells per axis of a grid with at least ``size`` cells: as square as possible."""
    if not 1 <= dims <= GRID_MAX_DIMS:
        raise ValueError(f"a grid needs 1 or 2 tuned hyperparameters, got {dims}")
    if dims == 1:
        return (size,)
    rows = max(1, round(math.sqrt(size)))
    return (rows, -(-size // rows))


def grid_point(seed: int, dims: int, size: int, index: int) -> np.ndarray:
    """Cell ``index`` (of the seeded visiting order) of the grid for ``size`` points: its centre.

    The order is a seeded permutation, so a budget smaller than the grid (2-d grids round up)
    still covers the range evenly instead of filling it row by row.
    """
    shape = grid_shape(dims, size)
    cells = math.prod(shape)
    order = np.random.default_rng([seed, dims, size]).permutation(cells)
    flat = int(order[index % cells])
    coordinates = np.unravel_index(flat, shape)
    return np.array([(c + 0.5) / n for c, n in zip(coordinates, shape, strict=True)])


def sequence_point(sequence: PointSequence, seed: int, dims: int, index: int, size: int = 0) -> np.ndarray:
    if sequence == "halton":
        return halton_point(seed, dims, index)
    if sequence == "random":
        return random_point(seed, dims, index)
    return grid_point(seed, dims, max(size, 1), index)


class QuasiRandomSampler(BaseSampler):
    """An Optuna sampler drawing the tuned hyperparameters from a point sequence (Halton by
    default; see the module docstring for ``random`` and ``grid``).

    Non-adaptive: the points do not depend on results, so the objective can be changed after
    the fact, and the study is the same whether trials run in parallel or in sequence. It also
    serves as the start-up sampler of the adaptive ones, so their first trials are quasi-random.
    """

    def __init__(
        self, space: SearchSpace, seed: int, sequence: PointSequence = "halton", size: int = 0
    ) -> None:
        if sequence not in SEQUENCES:
            raise ValueError(f"sequence: expected one of {SEQUENCES}, got {sequence!r}")
        if sequence == "grid":
            grid_shape(len(space.tuned), max(size, 1))  # refuses more than 2 dimensions
        self._space = space
        self._seed = seed
        self._sequence: PointSequence = sequence
        self._size = size
        self._fallback = RandomSampler(seed=seed)

    @property
    def seed(self) -> int:
        return self._seed

    def point_params(self, index: int) -> dict[str, float]:
        """Optuna parameters of sequence point ``index``."""
        unit = sequence_point(self._sequence, self._seed, len(self._space.tuned), index, self._size)
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
        if param_name in self._space.distributions():
            # Start-up trials of an adaptive sampler that uses this one for them.
            trials = study._storage.get_all_trials(study._study_id, deepcopy=False)
            return self.point_params(point_of(trial, trials))[param_name]
        # A user's own suggest calls, outside the Adam space.
        return self._fallback.sample_independent(study, trial, param_name, param_distribution)


class PointListSampler(QuasiRandomSampler):
    """Given points instead of a sequence: point k is ``points[k]`` (Optuna parameters), taken
    in turn and again from the start when they run out. The ``remeasure`` round trains its
    candidates again through it, so each gets exactly one trial, as a sequence point does."""

    def __init__(self, space: SearchSpace, seed: int, points: Sequence[Mapping[str, float]]) -> None:
        if not points:
            raise ValueError("points: expected at least one, got none")
        super().__init__(space, seed)
        self._points = [dict(p) for p in points]

    def point_params(self, index: int) -> dict[str, float]:
        return dict(self._points[index % len(self._points)])
