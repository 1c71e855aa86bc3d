"""The recommendation: of the best few observed trials, the one a GP of the study rates best."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import adamtune
from adamtune import AdamConfig, SearchSpace, State, TrialRecord, choice
from adamtune.choice import GP_TRIALS, MIN_FEASIBLE, TOP, Recommendation, nearest_rows, recommend

WIDE = {"lr": (1e-5, 1.0), "beta1": (0.5, 0.999)}


def space() -> SearchSpace:
    return SearchSpace.build(["lr", "beta1"], ranges=WIDE)


def record(n: int, value: float, lr: float, beta1: float = 0.9, state: State = State.COMPLETE) -> TrialRecord:
    return TrialRecord(n, state, value, AdamConfig(lr=lr, beta1=beta1), n, n)


def bowl(lr: float) -> float:
    """A smooth objective with its minimum 0 at lr 1e-2 (in log lr)."""
    return (math.log10(lr) + 2) ** 2


def lucky_study() -> list[TrialRecord]:
    """30 trials over lr with seed noise of sd 0.05; the best observation is a lucky draw at
    lr 1e-1 (true value 1, observed a little better than the best around lr 1e-2), where every
    neighbour is bad, while the trials around lr 1e-2 are all good."""
    rng = np.random.default_rng(0)
    records = []
    for n in range(30):
        lr = 10 ** (-5 + 5 * (n + 0.5) / 30)
        records.append(record(n, bowl(lr) + 0.05 * float(rng.normal()), lr))
    best_value = min(r.value or 0.0 for r in records)
    records.append(record(30, best_value - 0.02, 10**-1.0))
    return records


def test_a_lucky_observation_among_bad_neighbours_is_not_recommended() -> None:
    records = lucky_study()
    observed_best = min(records, key=lambda r: r.value or 0.0)
    assert observed_best.number == 30
    recommendation = recommend(records, space(), "minimize")
    assert recommendation is not None
    chosen = recommendation.record
    assert chosen.number != 30
    assert chosen.adam is not None and abs(math.log10(chosen.adam.lr) + 2) < 0.5
    assert recommendation.posterior is not None
    assert f"trial 30, observed best at {observed_best.value:.6g}" in recommendation.reason


def test_a_large_study_fits_its_gp_to_the_trials_nearest_the_best(monkeypatch: pytest.MonkeyPatch) -> None:
    # The lucky study among 2 * GP_TRIALS poor trials at small learning rates: the GP sees
    # GP_TRIALS trials, the lucky study's all among them, and recommends what it did alone.
    alone = recommend(lucky_study(), space(), "minimize")
    rng = np.random.default_rng(1)
    far = [
        record(
            100 + k,
            9.0 + float(rng.random()),
            10 ** float(rng.uniform(-5, -4)),
            1 - 10 ** float(rng.uniform(-3, -0.3)),
        )
        for k in range(2 * GP_TRIALS)
    ]
    fitted: list[int] = []
    full_fit = choice.posterior_means

    def counted(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float] | None:
        fitted.append(len(y))
        assert int(np.sum(y < 9.0)) == len(lucky_study())  # every trial of the lucky study
        return full_fit(x, y)

    monkeypatch.setattr(choice, "posterior_means", counted)
    large = recommend(lucky_study() + far, space(), "minimize")
    assert fitted == [GP_TRIALS]
    assert alone is not None and large is not None
    assert large.record.number == alone.record.number != 30


def test_the_rows_nearest_the_anchors_are_kept_in_their_order() -> None:
    x = np.array([[0.0], [0.9], [0.5], [0.45], [1.0], [0.1]])
    assert nearest_rows(x, [1], 6).tolist() == [0, 1, 2, 3, 4, 5]  # within the limit: all
    assert nearest_rows(x, [1], 3).tolist() == [1, 2, 4]  # 0.9 itself, then 1.0 and 0.5
    assert nearest_rows(x, [0, 4], 4).tolist() == [0, 1, 4, 5]  # near either end
    same = np.zeros((5, 2))  # every row at the anchor's place: the anchor is kept
    assert nearest_rows(same, [3], 2).tolist() == [0, 3]


def test_only_the_best_few_observed_trials_can_be_recommended() -> None:
    # The GP would rate the middle of the good region best, but its trial was measured badly
    # (rank TOP + 1 or worse): the recommendation stays among the TOP best observations.
    records = lucky_study()
    middle = min(records, key=lambda r: abs(math.log10(r.adam.lr) + 2) if r.adam else 9.0)
    records[middle.number] = record(middle.number, 0.5, middle.adam.lr if middle.adam else 0.0)
    recommendation = recommend(records, space(), "minimize")
    assert recommendation is not None
    top = sorted(records, key=lambda r: (r.value or 0.0, r.number))[:TOP]
    assert recommendation.record.number in {r.number for r in top}
    assert recommendation.record.number != middle.number


def test_maximised_objectives_are_recommended_by_their_highest_posterior() -> None:
    records = [
        TrialRecord(r.number, r.state, -(r.value or 0.0), r.adam, r.seed, r.point) for r in lucky_study()
    ]
    minimised = recommend(lucky_study(), space(), "minimize")
    maximised = recommend(records, space(), "maximize")
    assert minimised is not None and maximised is not None
    assert maximised.record.number == minimised.record.number
    assert maximised.posterior == pytest.approx(-(minimised.posterior or 0.0), rel=1e-6)


def test_too_few_trials_or_no_spread_recommend_the_best_observation() -> None:
    few = [record(n, float(n), 10 ** (-4 + n)) for n in range(MIN_FEASIBLE - 1)]
    recommendation = recommend(few, space(), "minimize")
    assert recommendation is not None and recommendation.record.number == 0
    assert recommendation.posterior is None and "too few" in recommendation.reason
    same = [record(n, 1.0 - 0.1 * n, 1e-3) for n in range(6)]
    recommendation = recommend(same, space(), "minimize")
    assert recommendation is not None and recommendation.record.number == 5
    assert "same configuration" in recommendation.reason


def test_diverged_and_unfinished_trials_are_never_recommended() -> None:
    records = lucky_study()
    records.append(record(31, -5.0, 1e-2, state=State.INFEASIBLE))
    records.append(record(32, -5.0, 1e-2, state=State.PRUNED))
    recommendation = recommend(records, space(), "minimize")
    assert recommendation is not None and recommendation.record.number not in (31, 32)
    assert recommend([record(0, 1.0, 1e-3, state=State.FAILED)], space(), "minimize") is None


def test_a_gp_that_cannot_be_fitted_falls_back_to_the_best_observation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from optuna._gp import gp

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("not positive definite")

    monkeypatch.setattr(gp, "fit_kernel_params", broken)
    recommendation = recommend(lucky_study(), space(), "minimize")
    assert recommendation is not None and recommendation.record.number == 30
    assert recommendation.posterior is None and "could not be fitted" in recommendation.reason


def test_a_study_recommends_from_its_own_trials() -> None:
    def objective(trial: adamtune.Trial) -> float:
        return bowl(trial.adam.lr) + 0.01 * trial.seed % 3

    study = adamtune.tune(objective, 12, storage="memory", seed=3, strategy="quasi-random")
    recommendation = study.recommended
    assert recommendation is not None
    assert recommendation.record.number in {
        r.number for r in sorted(study.trials, key=lambda r: (r.value or 0.0, r.number))[:TOP]
    }
    assert recommendation.posterior is not None


def lucky_objective(trial: adamtune.Trial) -> float:
    """The bowl with seed noise, and one lucky window near lr 1e-1 that reads a little better
    than anything near the true optimum."""
    exponent = math.log10(trial.adam.lr)
    noise = 0.05 * float(np.random.default_rng(trial.seed).normal())
    return -0.12 if -1.1 < exponent < -0.9 else bowl(trial.adam.lr) + noise


def test_the_reports_say_which_trial_is_recommended_when_it_is_not_the_best_run() -> None:
    from adamtune.plots.report import render_html, text_report

    study = adamtune.tune(
        lucky_objective, 30, storage="memory", seed=1, strategy="quasi-random", ranges={"lr": (1e-5, 1.0)}
    )
    best, recommendation = study.best, study.recommended
    assert best is not None and best.value == -0.12
    assert recommendation is not None and recommendation.record.number != best.number
    chosen = recommendation.record.number
    html = render_html(study, findings=[])
    assert f"Recommended: trial {chosen}</b>" in html
    section = html.split("<h2>Best configuration</h2>")[1].split("<h2>")[0]
    assert section.count("<th>lr</th>") == 2  # another configuration: its values are shown too
    short = recommendation.record.adam.short() if recommendation.record.adam else ""
    text = text_report(study, findings=[])
    assert f"recommended: trial {chosen}, the best GP posterior mean" in text and f": {short}" in text


def test_a_best_trial_clear_of_the_others_by_more_than_the_noise_is_recommended_as_it_is() -> None:
    records = lucky_study()
    clear = min(r.value or 0.0 for r in records[:30]) - 1.0
    records[30] = record(30, clear, 10**-1.0)
    recommendation = recommend(records, space(), "minimize")
    assert recommendation is not None and recommendation.record.number == 30
    assert recommendation.reason.startswith("the best observed trial: no other lies within the noise")


def test_the_confirmation_retrains_the_recommendation() -> None:
    study = adamtune.tune(
        lucky_objective,
        30,
        storage="memory",
        seed=1,
        strategy="quasi-random",
        ranges={"lr": (1e-5, 1.0)},
        confirm=2,
        confirm_top=2,
    )
    recommendation, confirmation = study.recommended, study.confirmation
    assert recommendation is not None and confirmation is not None
    best = study.best
    assert best is not None and recommendation.record.number != best.number
    sources = [c.source for c in confirmation.configs if c.role == "candidate"]
    assert sources == [recommendation.record.number, best.number]


def test_the_recommendation_is_fitted_once_per_set_of_trials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import adamtune.choice

    storage = f"sqlite:///{tmp_path}/study.db"

    def objective(trial: adamtune.Trial) -> float:
        return bowl(trial.adam.lr)

    adamtune.tune(objective, 6, storage=storage, study="s", seed=0, strategy="quasi-random")
    fits: list[int] = []
    real = adamtune.choice.recommend

    def counted(*args: Any) -> Recommendation | None:
        fits.append(len(args[0]))
        return real(*args)

    monkeypatch.setattr(adamtune.choice, "recommend", counted)
    study = adamtune.load_study("s", storage)
    first = study.recommended
    assert study.recommended is first  # the same trials: no second fit
    assert fits == [6]
    adamtune.tune(objective, 8, storage=storage, study="s", seed=0, strategy="quasi-random")
    later = study.recommended  # the same handle sees the two new trials and fits again
    assert fits == [6, 8]
    assert later is not None and len(study.trials) == 8


def test_a_loss_spanning_decades_is_fitted_as_its_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    # A mean squared error: 0.1 at its best, 90 times that at the ends, seed noise of 5% of the
    # value. The GP is fitted to the logs (where that noise is the same everywhere) and its
    # noise read as a factor; the posterior means come back in the values' units.
    rng = np.random.default_rng(2)
    lrs = [10 ** (-5 + 5 * (n + 0.5) / 30) for n in range(30)]
    records = [
        record(n, (0.1 + bowl(lr)) * math.exp(0.05 * float(rng.normal())), lr) for n, lr in enumerate(lrs)
    ]
    values = np.array([r.value or 0.0 for r in records])
    seen: list[np.ndarray] = []
    full_fit = choice.posterior_means

    def kept(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float] | None:
        seen.append(y)
        return full_fit(x, y)

    monkeypatch.setattr(choice, "posterior_means", kept)
    logged = recommend(records, space(), "minimize")
    assert logged is not None and logged.posterior is not None
    assert seen[-1] == pytest.approx(np.log(values))
    assert "of the values' logs" in logged.reason
    assert logged.record.adam is not None and abs(math.log10(logged.record.adam.lr) + 2) < 0.5
    assert 0.05 < logged.posterior < 0.2  # exp of the log posterior: a value, near the best's 0.1
    # Asked for, the values as they are; to maximise, always.
    as_is = recommend(records, space(), "minimize", scale="linear")
    assert as_is is not None and seen[-1] == pytest.approx(values) and "logs" not in as_is.reason
    maximised = recommend(records, space(), "maximize")
    assert maximised is not None and seen[-1] == pytest.approx(-values) and "logs" not in maximised.reason


def test_the_candidates_to_train_again_are_the_best_posterior_means_of_distinct_configurations() -> None:
    records = lucky_study()
    again = record(31, records[30].value or 0.0, 10**-1.0)  # trial 30's configuration, observed again
    candidates, how = choice.remeasure_candidates([*records, again], space(), "minimize", count=3, pool=10)
    assert (
        len(candidates) == 3 and how == "the 3 best GP posterior means of the 10 best observed configurations"
    )
    # The lucky trial is among the 10 best observed, but its GP mean is poor: not a candidate.
    assert all(c.number not in (30, 31) for c in candidates)
    assert all(c.adam is not None and abs(math.log10(c.adam.lr) + 2) < 0.5 for c in candidates)
    best_ten = sorted(records, key=lambda r: r.value or 0.0)[:10]
    assert {c.number for c in candidates} <= {r.number for r in best_ten}
    # Too few feasible trials for a GP: the best observed, each configuration once.
    few = [record(0, 0.3, 1e-3), record(1, 0.1, 1e-2), record(2, 0.1, 1e-2), record(3, 0.2, 1e-1)]
    picked, how_few = choice.remeasure_candidates(few, space(), "minimize", count=2, pool=10)
    assert [c.number for c in picked] == [1, 3]
    assert how_few == "the 2 best observed configurations (3 feasible configurations: too few for a GP)"


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_after_training_again_the_best_fresh_result_is_recommended(direction: str) -> None:
    sign = 1.0 if direction == "minimize" else -1.0
    lucky, steady = record(0, sign * 0.10, 1e-2), record(1, sign * 0.20, 2e-2)
    unstable = record(2, sign * 0.15, 3e-2)
    fresh = [
        record(10, sign * 0.40, 1e-2),  # the lucky first result does not hold up
        record(11, sign * 0.22, 2e-2),
        record(12, math.nan, 3e-2, state=State.INFEASIBLE),  # diverged on its fresh seed
    ]
    found = choice.recommend_remeasured([lucky, steady, unstable], fresh, direction)  # type: ignore[arg-type]
    assert found is not None and found.record.number == 1
    assert "best fresh result" in found.reason
    assert "trial 0 " in found.reason and "trial 2 " in found.reason and "then no result" in found.reason
    assert choice.recommend_remeasured([lucky, steady], [fresh[2]], direction) is None  # type: ignore[arg-type]
