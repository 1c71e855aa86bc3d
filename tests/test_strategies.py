"""The one-study strategies (quasi-random, random, grid, bayes, tpe) and the budget split."""

from __future__ import annotations

import math

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

import adamtune
from adamtune.adaptive import AdaptiveSampler, PrunedAwareGPSampler, as_complete
from adamtune.errors import ConfigError
from adamtune.sampling import grid_shape, halton_point
from adamtune.space import SearchSpace
from adamtune.strategy import (
    STRATEGIES,
    RoundPlan,
    check_strategy,
    plan_first_round,
    plan_next_round,
)
from adamtune.testing import SyntheticObjective

LR_ONLY = ["lr"]


def lrs(study: adamtune.Study) -> list[float]:
    return [r.adam.lr for r in study.trials if r.adam is not None]


def test_unknown_strategy_is_refused_with_the_choices() -> None:
    with pytest.raises(ConfigError, match="strategy: expected one of playbook, quasi-random, random, grid"):
        adamtune.tune(SyntheticObjective(), 2, storage="memory", strategy="hill-climb")  # type: ignore[arg-type]


def test_grid_is_refused_beyond_two_tuned_hyperparameters_with_the_reason() -> None:
    space = SearchSpace.build(["lr", "beta1", "eps"])
    with pytest.raises(ConfigError) as refused:
        check_strategy("grid", space)
    message = str(refused.value)
    assert "at most 2 tuned hyperparameters, got 3 (lr, beta1, eps)" in message
    assert "quasi-random" in message


def test_grid_in_one_dimension_visits_every_cell_centre_once() -> None:
    study = adamtune.tune(SyntheticObjective(), 5, storage="memory", strategy="grid", tune=LR_ONLY)
    exponents = sorted(math.log10(lr) for lr in lrs(study))
    # 5 cells over log10 lr in [-5, -3]: centres at -5 + (i + 0.5) * 0.4.
    assert exponents == pytest.approx([-5 + (i + 0.5) * 0.4 for i in range(5)])


def test_grid_in_two_dimensions_covers_a_square_grid() -> None:
    assert grid_shape(2, 16) == (4, 4)
    assert grid_shape(2, 10) == (3, 4)
    study = adamtune.tune(SyntheticObjective(), 9, storage="memory", strategy="grid", tune=["lr", "beta1"])
    xs = {round(math.log10(r.adam.lr), 6) for r in study.trials if r.adam}
    ys = {round(math.log10(1 - r.adam.beta1), 6) for r in study.trials if r.adam}
    assert len(xs) == 3 and len(ys) == 3 and len(study.trials) == 9


def test_random_points_are_reproducible_and_not_the_halton_ones() -> None:
    first = adamtune.tune(SyntheticObjective(), 6, storage="memory", strategy="random", tune=LR_ONLY, seed=3)
    again = adamtune.tune(SyntheticObjective(), 6, storage="memory", strategy="random", tune=LR_ONLY, seed=3)
    halton = adamtune.tune(
        SyntheticObjective(), 6, storage="memory", strategy="quasi-random", tune=LR_ONLY, seed=3
    )
    assert lrs(first) == lrs(again)
    assert lrs(first) != lrs(halton)
    assert len(set(lrs(first))) == 6


@pytest.mark.parametrize("strategy", ["bayes", "tpe"])
def test_adaptive_strategies_start_quasi_random_and_spend_the_budget_exactly(strategy: str) -> None:
    study = adamtune.tune(
        SyntheticObjective(best_lr=1e-4, diverge_above=5e-4),
        12,
        storage="memory",
        strategy=strategy,  # type: ignore[arg-type]
        tune=LR_ONLY,
        seed=5,
    )
    assert study.tally().results == 12
    assert study.strategy == strategy
    space = SearchSpace.build(LR_ONLY)
    startup = [space.params_from_unit(halton_point(5, 1, k).tolist())["lr"] for k in range(6)]
    assert lrs(study)[:6] == pytest.approx(startup)
    # After the start-up the model steers away from the diverging lr and towards the valley.
    later = lrs(study)[6:]
    assert sum(lr > 5e-4 for lr in later) <= 1
    assert min(abs(math.log10(lr / 1e-4)) for lr in later) < 0.25


def test_a_study_keeps_its_strategy(tmp_path: object) -> None:
    journal = f"{tmp_path}/s.journal"
    adamtune.tune(SyntheticObjective(), 3, storage=journal, study="s", strategy="random", tune=LR_ONLY)
    with pytest.raises(adamtune.StudyMismatchError, match="searched with strategy random, got tpe"):
        adamtune.tune(SyntheticObjective(), 3, storage=journal, study="s", strategy="tpe", tune=LR_ONLY)


def test_gp_learns_from_pruned_trials() -> None:
    """Optuna's GPSampler sees no data in a study of pruned trials; adamtune's sees them all."""
    distributions = {"lr": FloatDistribution(1e-5, 1e-1, log=True)}
    study = optuna.create_study()
    for index, lr in enumerate([1e-5, 1e-4, 1e-3, 3e-3, 1e-2, 1e-1]):
        pruned = create_trial(
            state=TrialState.PRUNED,
            params={"lr": float(lr)},
            distributions=distributions,
            intermediate_values={0: 2.0 + index, 5: 1.0 + index},
        )
        study.add_trial(pruned)
    stand_in = as_complete(study.trials[2])
    assert stand_in is not None and stand_in.state == TrialState.COMPLETE and stand_in.value == 3.0
    trial = study.ask()
    frozen = study._storage.get_trial(trial._trial_id)
    # Optuna's GPSampler fits COMPLETE trials only: here it would have no data at all.
    assert study.get_trials(states=(TrialState.COMPLETE,)) == []
    aware = PrunedAwareGPSampler(seed=0, n_startup_trials=0)
    suggestion = aware.sample_relative(study, frozen, distributions)
    assert set(suggestion) == {"lr"}
    # The best pruned trial sat at the low end: the GP proposes below the middle of the range.
    assert suggestion["lr"] < 1e-3


def test_adaptive_sampler_is_resumable_from_the_results_alone() -> None:
    """Two samplers with the same seed propose the same point for the same trials."""
    space = SearchSpace.build(LR_ONLY)
    proposals = []
    for _ in range(2):
        study = optuna.create_study(sampler=AdaptiveSampler("gp", space, seed=1, startup=2))
        for lr in (1e-5, 1e-4, 3e-4, 1e-3):
            study.enqueue_trial({"lr": lr})
            study.optimize(lambda t: (math.log10(t.suggest_float("lr", 1e-5, 1e-3, log=True)) + 4) ** 2, 1)
        study.optimize(lambda t: t.suggest_float("lr", 1e-5, 1e-3, log=True), 1)
        proposals.append(study.trials[-1].params["lr"])
    assert proposals[0] == proposals[1]


@pytest.mark.parametrize("budget", [1, 2, 5, 7, 8, 10, 12, 20, 33, 50, 100])
def test_rounds_always_add_up_to_the_budget(budget: int) -> None:
    for expansions_wanted in (0, 1, 2, 3, 4):
        plan = plan_first_round(budget)
        sizes, kinds = [plan.budget], [plan.kind]
        spent, expansions = plan.budget, 0
        while True:
            wanted = expansions < expansions_wanted
            following = plan_next_round(budget, spent, expansions, wanted)
            if following is None:
                break
            expansions += following.kind == "explore" and wanted
            sizes.append(following.budget)
            kinds.append(following.kind)
            spent += following.budget
        assert sum(sizes) == budget
        assert all(size >= 1 for size in sizes)
        assert kinds.count("exploit") <= 1 and kinds[0] == "explore"
        if "exploit" in kinds:
            assert kinds[-1] == "exploit" and sizes[-1] >= 3 and budget >= 8


def test_budget_split_values() -> None:
    assert plan_first_round(20) == RoundPlan("explore", 10)
    # Half the budget, but no more than 25 trials or a third of it, whichever is larger.
    firsts = {b: plan_first_round(b).budget for b in (8, 49, 50, 51, 75, 76, 100, 300)}
    assert firsts == {8: 4, 49: 25, 50: 25, 51: 25, 75: 25, 76: 26, 100: 34, 300: 100}
    assert plan_first_round(5) == RoundPlan("explore", 3)
    assert plan_next_round(20, 10, 0, wants_expansion=False) == RoundPlan("exploit", 10)
    assert plan_next_round(20, 10, 0, wants_expansion=True) == RoundPlan("explore", 4)
    assert plan_next_round(20, 14, 1, wants_expansion=True) == RoundPlan("explore", 6)  # 2 left: too few
    assert plan_next_round(20, 14, 3, wants_expansion=True) == RoundPlan("exploit", 6)  # limit reached
    assert plan_next_round(5, 3, 0, wants_expansion=False) == RoundPlan("explore", 2)
    assert plan_next_round(20, 20, 0, wants_expansion=True) is None


def test_every_strategy_is_offered_on_the_command_line() -> None:
    assert STRATEGIES == ("playbook", "quasi-random", "random", "grid", "bayes", "tpe")
