"""Which hyperparameters a budget tunes (PLAYBOOK.md section 2)."""

from __future__ import annotations

import re

import pytest

import adamtune
from adamtune import ConfigError, TierChoice, choose_tuned
from adamtune.tiers import check_budget

READING = (
    "the playbook's tiers are <10, 10-25, 25+ and 'substantially more than 25' trials; "
    "adamtune reads them as the thresholds 10, 25 and 50"
)


@pytest.mark.parametrize(
    ("budget", "tuned", "span"),
    [
        (1, ("lr",), "1-9"),
        (9, ("lr",), "1-9"),
        (10, ("lr", "beta1"), "10-24"),
        (24, ("lr", "beta1"), "10-24"),
        (25, ("lr", "beta1", "eps"), "25-49"),
        (49, ("lr", "beta1", "eps"), "25-49"),
        (50, ("lr", "beta1", "eps", "beta2"), "50 or more"),
        (200, ("lr", "beta1", "eps", "beta2"), "50 or more"),
    ],
)
def test_tiers_by_budget(budget: int, tuned: tuple[str, ...], span: str) -> None:
    choice = choose_tuned(budget)
    assert choice.tuned == tuned
    assert choice.source == "tiers"
    assert choice.reason.startswith(f"budget {budget} ({span} trials): tune ")
    assert "10, 25 and 50" in choice.reason
    assert choice.reason.endswith(READING)
    assert ("jointly" in choice.reason) == (len(tuned) > 1)


def test_tier_reasons_exactly() -> None:
    assert choose_tuned(5).reason == f"budget 5 (1-9 trials): tune lr; {READING}"
    assert choose_tuned(10).reason == f"budget 10 (10-24 trials): tune lr and beta1 jointly; {READING}"
    assert choose_tuned(60).reason == (
        f"budget 60 (50 or more trials): tune lr, beta1, eps and beta2 jointly; {READING}"
    )


@pytest.mark.parametrize("budget", [0, -1, 2.5, True, False, "10", None])
def test_bad_budgets_raise_config_error(budget: object) -> None:
    message = f"budget: expected a whole number of trials >= 1, got {budget!r}"
    with pytest.raises(ConfigError, match=re.escape(message)):
        check_budget(budget)
    with pytest.raises(ConfigError, match=re.escape(message)):
        choose_tuned(budget)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=re.escape(message)):
        adamtune.tune(lambda trial: 0.0, budget, storage="memory")  # type: ignore[arg-type]


def test_check_budget_returns_a_good_budget() -> None:
    assert check_budget(1) == 1
    assert check_budget(37) == 37


def test_fixed_names_are_dropped_from_the_tier() -> None:
    choice = choose_tuned(50, fixed={"beta2": 0.98})
    assert choice.tuned == ("lr", "beta1", "eps")
    assert choice.source == "tiers"
    assert choice.reason == (
        "budget 50 (50 or more trials): tune lr, beta1, eps and beta2 jointly, "
        f"except beta2 (fixed by the user); {READING}"
    )
    assert choose_tuned(12, fixed=["lr"]).tuned == ("beta1",)
    # names fixed outside the tier change nothing
    assert choose_tuned(5, fixed=["beta1", "eps"]).tuned == ("lr",)


def test_every_tier_name_fixed_is_an_error() -> None:
    with pytest.raises(ConfigError, match=re.escape("every one the budget would tune is fixed (lr)")):
        choose_tuned(3, fixed=["lr"])


def test_requested_set_is_returned_as_the_users() -> None:
    choice = choose_tuned(5, requested=["lr"])
    assert choice == TierChoice(("lr",), "tuning lr as requested", "user")
    fewer = choose_tuned(100, requested=("lr", "beta1"))
    assert fewer == TierChoice(("lr", "beta1"), "tuning lr, beta1 as requested", "user")
    # requested names are taken as given, fixed ones elsewhere are fine
    assert choose_tuned(30, requested=["beta1", "lr"], fixed=["beta2"]).tuned == ("beta1", "lr")


def test_requesting_more_than_the_tier_adds_a_note() -> None:
    choice = choose_tuned(12, requested=["lr", "beta1", "eps"])
    assert choice.source == "user"
    assert choice.tuned == ("lr", "beta1", "eps")
    assert choice.reason == (
        "tuning lr, beta1, eps as requested; note: the tiers would tune only lr and beta1 with 12 "
        "trials; more dimensions need more trials to search well"
    )
    assert (
        "note: the tiers would tune only lr with 3 trials" in choose_tuned(3, requested=["lr", "eps"]).reason
    )


def test_a_name_both_requested_and_fixed_is_an_error() -> None:
    message = "beta1: expected each hyperparameter either tuned or fixed, got both --tune and --fix"
    with pytest.raises(ConfigError, match=re.escape(message)):
        choose_tuned(20, requested=["lr", "beta1"], fixed={"beta1": 0.95})


def test_tier_choice_to_dict() -> None:
    choice = choose_tuned(10)
    assert choice.to_dict() == {"tuned": ["lr", "beta1"], "reason": choice.reason, "source": "tiers"}


def test_a_range_for_an_untuned_hyperparameter_is_named_in_the_reason() -> None:
    choice = choose_tuned(20, ranged=["lr", "eps", "beta2", "eps"])
    assert choice.tuned == ("lr", "beta1")
    assert choice.reason == (
        f"budget 20 (10-24 trials): tune lr and beta1 jointly; {READING}; eps and beta2 have a range "
        "but are not tuned with 20 trials: they stay at their fixed values (name them in --tune, "
        "or tune=, to tune anyway)"
    )
    requested = choose_tuned(60, requested=["lr"], ranged=["eps"])
    assert requested.reason == (
        "tuning lr as requested; eps has a range but is not in the requested set: it stays at its "
        "fixed value (name it in --tune, or tune=, to tune anyway)"
    )
    # Ranges for tuned hyperparameters only: no note.
    assert choose_tuned(60, ranged=["eps", "beta2"]).reason == choose_tuned(60).reason


def test_tune_records_the_untuned_range_and_keeps_the_fixed_value() -> None:
    study = adamtune.tune(
        lambda trial: trial.adam.lr, 3, storage="memory", seed=0, ranges={"eps": (1e-10, 1.0)}
    )
    assert study.info.tiers.tuned == ("lr",)
    assert "eps has a range but is not tuned with 3 trials" in study.info.tiers.reason
    assert {r.adam.eps for r in study.trials if r.adam is not None} == {1e-8}
