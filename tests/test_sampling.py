"""Quasi-random exploration (PLAYBOOK.md section 3): coverage, uniformity, determinism."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from scipy.stats import qmc

import adamtune
from adamtune import QuasiRandomSampler, halton_points
from adamtune.sampling import halton_point

# These tests are about one study searched quasi-randomly (the playbook strategy runs rounds of them).
quasi_random = functools.partial(adamtune.tune, strategy="quasi-random")


@pytest.mark.parametrize("seed", [0, 1, 7, 12345])
@pytest.mark.parametrize("dims", [1, 2, 3, 4, 5])
def test_coverage_reaches_both_ends_of_every_dimension(seed: int, dims: int) -> None:
    points = halton_points(seed, dims, 2000)
    assert points.shape == (2000, dims)
    assert points.min() >= 0.0
    assert points.max() < 1.0
    assert np.all(points.min(axis=0) < 0.002)
    assert np.all(points.max(axis=0) > 1 - 0.002)


@pytest.mark.parametrize("seed", [0, 3])
def test_no_clumping_in_a_sub_interval(seed: int) -> None:
    # Open-Source Vizier's bug put 25 trials into [0.01, 0.013] of lr in [1e-4, 0.1]: with a
    # uniform sequence every tenth of the unit interval holds 2 or 3 of the first 25 points.
    points = halton_points(seed, 3, 25)
    for column in points.T:
        counts = np.histogram(column, bins=10, range=(0.0, 1.0))[0]
        assert counts.min() >= 1
        assert counts.max() <= 4


@pytest.mark.parametrize(("dims", "count"), [(1, 16), (4, 64)])
def test_lower_discrepancy_than_uniform_random(dims: int, count: int) -> None:
    ours = np.mean([qmc.discrepancy(halton_points(seed, dims, count), method="CD") for seed in range(30)])
    uniform = np.mean(
        [
            qmc.discrepancy(np.random.default_rng(1000 + seed).random((count, dims)), method="CD")
            for seed in range(30)
        ]
    )
    assert ours < uniform
    assert ours < 0.5 * uniform


@pytest.mark.parametrize("dims", [1, 3])
def test_same_seed_same_points_and_prefix_stable(dims: int) -> None:
    first = halton_points(11, dims, 300)
    np.testing.assert_array_equal(first, halton_points(11, dims, 300))
    np.testing.assert_array_equal(first[:10], halton_points(11, dims, 10))
    np.testing.assert_array_equal(halton_points(11, dims, 600)[:300], first)
    for index in (0, 1, 9, 255, 256, 299):
        np.testing.assert_array_equal(halton_point(11, dims, index), first[index])
    assert halton_points(11, dims, 0).shape == (0, dims)


def test_different_seeds_give_different_points() -> None:
    a, b = halton_points(0, 2, 50), halton_points(1, 2, 50)
    assert not np.any(np.all(a == b, axis=1))
    assert len({tuple(row) for row in a}) == 50


def test_points_are_read_only() -> None:
    points = halton_points(5, 2, 10)
    with pytest.raises(ValueError):
        points[0, 0] = 0.5
    np.testing.assert_array_equal(halton_points(5, 2, 10), points)


@pytest.mark.parametrize(("dims", "count"), [(0, 10), (2, -1)])
def test_bad_arguments(dims: int, count: int) -> None:
    with pytest.raises(ValueError, match="expected dims >= 1 and count >= 0"):
        halton_points(0, dims, count)


@pytest.mark.parametrize(
    ("tune", "optimizer"),
    [
        (["lr"], "adam"),
        (["lr", "beta1", "eps"], "adam"),
        (["lr", "beta1", "beta2", "eps", "weight_decay"], "adamw"),
    ],
)
def test_trial_k_gets_point_k_in_a_real_study(tune: list[str], optimizer: str) -> None:
    seed, budget = 4, 24
    study = quasi_random(
        lambda trial: float(trial.adam.lr),
        budget,
        study="points",
        storage="memory",
        seed=seed,
        tune=tune,
        optimizer=optimizer,  # type: ignore[arg-type]
    )
    space = study.space
    assert space.tuned == tuple(tune)
    sampler = QuasiRandomSampler(space, seed)
    assert sampler.seed == seed
    records = study.trials
    assert [r.number for r in records] == list(range(budget))
    for k, record in enumerate(records):
        assert record.point == k
        assert record.adam == space.config_from_params(sampler.point_params(k))
        assert sampler.point_params(k) == space.params_from_unit(halton_point(seed, len(tune), k).tolist())
        assert study.optuna.trials[k].params == pytest.approx(sampler.point_params(k), rel=1e-12)
    configs = {tuple(r.adam.as_dict()[name] for name in tune) for r in records if r.adam is not None}
    assert len(configs) == budget


def test_study_points_depend_on_the_seed_only() -> None:
    def run(seed: int) -> list[adamtune.AdamConfig | None]:
        study = quasi_random(lambda trial: 1.0, 8, storage="memory", seed=seed, tune=["lr", "beta1"])
        return [r.adam for r in study.trials]

    assert run(2) == run(2)
    first, other = run(2), run(3)
    assert all(a != b for a, b in zip(first, other, strict=True))
