"""The choice analysis of the quality benchmark: what the search found against what was chosen."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))

import quality
import quality_choice


def bowl(path: Path, count: int = 200) -> None:
    """A smooth bowl over the tables' space with seed noise 0.01."""
    rng = np.random.default_rng(0)
    x = rng.uniform([-5, -3, -4, -10], [0, math.log10(0.5), -1, 0], size=(count, 4))
    mean = 0.5 + 0.1 * (x[:, 0] + 2.5) ** 2 + 0.05 * (x[:, 1] + 1.5) ** 2
    y = mean[:, None] + rng.normal(0, 0.01, size=(count, 2))
    meta = {"workload": "bowl", "cap": math.log(10)}
    np.savez_compressed(path, x=x.astype(np.float32), y=y.astype(np.float32), meta=json.dumps(meta))


def test_a_cell_scores_the_own_choice_the_best_trained_and_the_smoothed_choices(tmp_path: Path) -> None:
    bowl(tmp_path / "bowl.npz")
    table = str(tmp_path / "bowl.npz")
    scored = quality_choice.score((table, "wide", "random", 8, 0))
    saved = quality.execute(quality.Run(table, "bowl", "wide", "random", 8, 0))
    assert scored["chosen"] == pytest.approx(saved["regret"])  # the same run as the comparison's
    # Every rule chooses among the trained configurations, so none beats the best of them.
    assert all(scored[rule] >= scored["trained"] - 1e-12 for rule in quality_choice.RULES)
    doubled = quality_choice.score((table, "wide", "qr-2x", 8, 0))
    again = quality.execute(quality.Run(table, "bowl", "wide", "qr-2x", 8, 0))
    assert doubled["chosen"] == pytest.approx(again["regret"])  # quasi-random with twice the budget


def test_smoothed_rules_prefer_a_good_neighbourhood_to_one_lucky_observation() -> None:
    good = {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}
    cluster = [({**good, "lr": lr}, value) for lr, value in ((1e-3, 0.52), (1.1e-3, 0.51), (0.9e-3, 0.52))]
    lucky = ({"lr": 0.3, "beta1": 0.5, "beta2": 0.9, "eps": 1.0}, 0.50)  # alone in a bad region
    bad = [({"lr": lr, "beta1": 0.5, "beta2": 0.9, "eps": 1.0}, 0.9) for lr in (0.1, 0.5)]
    seen = [*cluster, lucky, *bad, ({**good, "lr": 2.0}, math.nan)]
    picked = quality_choice.choices(seen, cap=math.log(10))
    assert picked["knn3"] in (0, 1, 2)  # the cluster, not the best single observation (index 3)
    assert seen[picked["gp-mean"]][1] < 0.6 and not math.isnan(seen[picked["gp-mean"]][1])


def test_kept_trials_score_every_configuration_trained(tmp_path: Path) -> None:
    bowl(tmp_path / "bowl.npz")
    table = str(tmp_path / "bowl.npz")
    kept = quality_choice.score((table, "wide", "adamtune", 20, 1), keep=True)
    assert len(kept["x"]) == len(kept["y"]) == len(kept["regrets"]) == 20
    assert min(kept["regrets"]) == pytest.approx(kept["trained"])
    assert all(len(point) == 4 for point in kept["x"])
    # adamtune's choice is its recommendation: one of the configurations it trained.
    assert any(r == pytest.approx(kept["chosen"]) for r in kept["regrets"])


def test_the_rules_score_saved_trials_and_the_adamtune_rule_is_the_products_choice(tmp_path: Path) -> None:
    import quality_rules

    bowl(tmp_path / "bowl.npz")
    table = str(tmp_path / "bowl.npz")
    kept = quality_choice.score((table, "wide", "adamtune", 20, 1), keep=True)
    picked = quality_rules.picks(kept)
    observed = [math.inf if v is None else v for v in kept["y"]]
    assert picked["observed"] == int(np.argmin(observed))
    assert set(picked) == set(quality_rules.RULES)
    # With the wide ranges the study's search scale is the rules' own: the same choice.
    assert kept["regrets"][picked["adamtune"]] == pytest.approx(kept["chosen"])
    scored = quality_rules.score(kept)
    assert all(scored[rule] >= kept["trained"] - 1e-12 for rule in quality_rules.RULES)


def test_remeasuring_unmasks_a_lucky_observation_and_spends_the_last_trials() -> None:
    import quality_rules

    rng = np.random.default_rng(3)
    low, high = quality_choice.LOW, quality_choice.HIGH
    x = low + (high - low) * rng.uniform(0.2, 0.8, size=(16, 4))
    regrets = np.linspace(0.3, 1.0, 16)
    regrets[0], regrets[1] = 0.6, 0.0  # 0: a mediocre configuration; 1: the best
    observed = regrets.copy()
    observed[0] = -0.2  # ... observed luckily far below its true value
    observed[1] = 0.05
    observed[-3:] = -1.0  # the last 3 are the trials re-measuring spends: never chosen
    best, scale = 1.0, 1.0
    run = {
        "rep": 0,
        "x": x.tolist(),
        "y": (best + scale * observed).tolist(),
        "regrets": regrets.tolist(),
        "cap": 10.0,
        "best": best,
        "scale": scale,
        "noise": 0.01,
    }
    picked = quality_rules.picks(run)
    assert picked["observed"] >= 13  # the best observation is among the last three
    # Observed again, trial 0 shows its true value.
    assert picked["remeasure3"] == picked["remeasure3-fresh"] == 1
    # An observation at or above the cap trained (only None is diverged): the rules see it, as
    # the product's GP does (before session 37 they dropped it, here every trial).
    capped = quality_rules.picks({**run, "cap": -5.0})
    assert capped["observed"] == picked["observed"] and capped["adamtune"] == picked["adamtune"]
    # Trials kept before session 36 lack the surrogate's noise: no remeasure3, the others scored.
    old = {k: v for k, v in run.items() if k not in ("best", "scale", "noise")}
    assert set(quality_rules.picks(old)) == set(quality_rules.RULES) - {"remeasure3", "remeasure3-fresh"}


def test_rounds_reports_the_best_found_between_positions_and_where_the_choice_came_from() -> None:
    import quality_rules

    cell = {"workload": "w", "setting": "wide", "budget": 6}
    runs = [
        {**cell, "regrets": [0.5, 0.4, 0.1, 0.3, 0.2, 0.0]},
        {**cell, "regrets": [0.9, 0.2, 0.3, 0.1, 0.6, 0.7]},
    ]
    scored = [{"adamtune": 0.1}, {"adamtune": 0.1}]
    (line,) = quality_rules.rounds(runs, scored, [2, 4])
    assert line == (
        "w wide 6: trials 0-1: best 0.300, chosen from in 0; trials 2-3: best 0.100, chosen from in 2; "
        "trials 4-5: best 0.300, chosen from in 0"
    )


def test_faces_counts_the_search_and_the_choices_on_the_ends_of_the_space() -> None:
    low, high = quality_choice.LOW, quality_choice.HIGH
    middle = (low + high) / 2
    beta1_end = middle.copy()
    beta1_end[1] = high[1]  # beta1 = 0.999, the high end of its wide range
    lr_floor = middle.copy()
    lr_floor[0] = low[0] + 0.01  # within FACE of lr's low end
    assert quality_choice.on_faces(beta1_end)[0].tolist() == [False] * 5 + [True, False, False]
    assert quality_choice.on_faces(lr_floor)[0].tolist() == [True] + [False] * 7
    assert not quality_choice.on_faces(middle).any()

    def run(rep: int, x: list[np.ndarray], chosen: np.ndarray, regret: float) -> dict[str, object]:
        cell = {"workload": "w", "setting": "wide", "budget": 4, "method": "m", "rep": rep}
        return {**cell, "x": [p.tolist() for p in x], "chosen_x": chosen.tolist(), "chosen": regret}

    results = [
        run(0, [beta1_end, beta1_end, middle, middle], beta1_end, 0.3),
        run(1, [beta1_end, middle, middle, lr_floor], middle, 0.1),
        run(2, [middle] * 4, middle, 0.2),
    ]
    (line,) = quality_choice.faces(results)
    # 3 of 12 trials at beta1 0.999, 1 of 12 at lr's low end; 1 of 3 choices on a face.
    assert line == (
        "w wide 4 m: trials on a face: lr=low 8%, beta1=high 25%; "
        "chosen on a face in 1 of 3 (median regret 0.300, inside 0.150)"
    )


def test_a_kept_run_has_its_choice_among_its_trials(tmp_path: Path) -> None:
    bowl(tmp_path / "bowl.npz")
    scored = quality_choice.score((str(tmp_path / "bowl.npz"), "wide", "adamtune", 8, 0), keep=True)
    assert len(scored["x"]) == 8
    assert any(np.allclose(scored["chosen_x"], x) for x in scored["x"])
    assert len(quality_choice.faces([scored])) == 1
