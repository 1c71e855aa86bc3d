"""The playbook strategy: rounds, range expansion and narrowing, exact budget, resume, confirmation."""

from __future__ import annotations

import json
import logging
import math
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest

import adamtune
import adamtune.study as study_module
from adamtune import State, choice
from adamtune.campaign import Campaign, Round, campaign_rounds_text
from adamtune.confirmation import (
    ADAM_DEFAULTS,
    Confirmation,
    ConfirmedConfig,
    confirmation_seeds,
    how_to_use,
    use_line,
)
from adamtune.errors import ConfigError, StudyMismatchError
from adamtune.storage import open_storage

ADAMTUNE = str(Path(sys.executable).parent / "adamtune")


def valley(best_lr: float, diverge_above: float = math.inf) -> Callable[[adamtune.Trial], float]:
    """A quadratic valley in log lr, with divergence above ``diverge_above``."""

    def objective(trial: adamtune.Trial) -> float:
        lr = trial.adam.lr
        if lr > diverge_above:
            raise adamtune.Diverged(f"loss was nan at lr {lr:.3g}")
        value = 0.1 + (math.log10(lr) - math.log10(best_lr)) ** 2
        for step in range(3):
            trial.report(step, val_loss=value + 0.3 / (step + 1))
        return value

    objective.__name__ = "valley"  # type: ignore[attr-defined]
    return objective


def campaign(objective: Callable[[adamtune.Trial], float], budget: int, **kwargs: Any) -> Campaign:
    kwargs.setdefault("storage", "memory")
    kwargs.setdefault("confirm", 0)
    study = adamtune.tune(objective, budget, **kwargs)
    assert isinstance(study, Campaign)
    return study


def test_an_optimum_outside_the_starting_lr_range_is_found_after_expansion() -> None:
    study = campaign(valley(3e-2), 30, tune=["lr"])
    rounds = study.rounds
    assert [r.kind for r in rounds] == ["explore", "explore", "explore", "exploit"]
    assert [r.budget for r in rounds] == [15, 6, 6, 3]
    assert [r.space.spec("lr").high for r in rounds] == pytest.approx([1e-3, 1e-2, 1e-1, 1e-1])
    assert rounds[1].reason.startswith(
        "explore the expanded space; expand lr to 1e-05..0.01: The best trial's lr"
    )
    assert study.tally().results == 30
    assert len(study.trials) == 30
    best = study.best
    assert best is not None and best.adam is not None
    assert abs(math.log10(best.adam.lr / 3e-2)) < 0.15
    assert study.info.space.spec("lr").high == pytest.approx(1e-1)  # the campaign reads as its final space


def test_expansion_stops_at_its_limit() -> None:
    # The optimum is 3 decades above the start: at most 2 decades of expansion are allowed.
    study = campaign(valley(1.0), 40, tune=["lr"])
    highs = [r.space.spec("lr").high for r in study.rounds]
    assert max(highs) == pytest.approx(1e-1)
    assert study.tally().results == 40


def test_expansion_stops_at_the_users_limit() -> None:
    # The optimum is at lr 3e-2, but the user will not go above 5e-3: one expansion, clipped.
    study = campaign(valley(3e-2), 30, tune=["lr"], limits={"lr": (1e-6, 5e-3)})
    highs = [r.space.spec("lr").high for r in study.rounds]
    assert highs[0] == pytest.approx(1e-3) and max(highs) == pytest.approx(5e-3)
    assert "up to the limit you set" not in study.rounds[1].reason  # reasons quote the finding
    assert "expand lr to 1e-05..0.005" in study.rounds[1].reason
    assert all(r.adam.lr <= 5e-3 for r in study.trials if r.adam is not None)
    assert study.tally().results == 30
    assert "never beyond 1e-06 .. 0.005" in "\n".join(study.info.space.describe())


def coupled(trial: adamtune.Trial) -> float:
    """lr and beta1 coupled as on the language model: the best lr grows with 1 - beta1, to 3e-3
    (beyond the default range) at beta1 0.9, the best beta1."""
    adam = trial.adam
    best_lr = 3e-3 * (1 - adam.beta1) / 0.1
    value = 0.1 + (math.log10(adam.lr / best_lr)) ** 2 + 0.3 * (math.log10(1 - adam.beta1) + 1) ** 2
    trial.report(0, val_loss=value)
    return value


def test_an_exploitation_round_that_finds_an_edge_explores_beyond_it() -> None:
    study = campaign(coupled, 20, seed=0)
    _, exploit, expand = study.rounds
    assert [(r.kind, r.budget) for r in study.rounds] == [("explore", 10), ("exploit", 5), ("explore", 5)]
    # The exploration's best was inside (not in lr's top 10%, so no expansion yet) ...
    first = min((r for r in study.trials if r.round == 0), key=lambda r: r.value or math.inf)
    assert first.adam is not None and first.adam.lr < 10**-3.2
    assert (
        "exploit" in exploit.reason
        and "the first 5 of 10 trials, then the boundaries are read again" in exploit.reason
    )
    # ... the Bayesian half went to lr's edge, and the rest explores beyond it, where the best lies.
    assert all(r.adam.lr > 10**-3.2 for r in study.trials if r.round == 1 and r.adam is not None)
    assert expand.space.spec("lr").high == pytest.approx(1e-2)
    assert "expand lr to 1e-05..0.01" in expand.reason
    best = study.best
    assert best is not None and best.adam is not None and best.round == 2 and best.adam.lr > 1e-3
    assert study.tally().results == 20


def test_an_exploitation_round_with_no_edge_to_expand_continues_as_one_round() -> None:
    study = campaign(valley(1e-4), 20, tune=["lr"], seed=0)
    assert [(r.kind, r.budget) for r in study.rounds] == [("explore", 10), ("exploit", 10)]
    exploit = study.rounds[1]
    assert "the first 5 of 10 trials, then the boundaries are read again" in exploit.reason
    assert exploit.reason.endswith("; continued: the boundaries read again: no range to expand")
    assert len([r for r in study.trials if r.round == 1]) == 10
    assert study.tally().results == 20


def test_an_exploitation_round_after_an_expansion_runs_whole() -> None:
    study = campaign(valley(1.5e-3), 20, tune=["lr"], seed=0)  # the first exploration expands lr
    assert [(r.kind, r.budget) for r in study.rounds] == [("explore", 10), ("explore", 4), ("exploit", 6)]
    assert "boundaries" not in study.rounds[2].reason


def test_an_exploitation_round_whose_ranges_cannot_grow_runs_whole() -> None:
    limits = {"lr": (1e-5, 1e-3), "beta1": (0.9, 0.999)}  # the starting ranges: nothing to expand into
    study = campaign(coupled, 20, seed=0, limits=limits)
    assert [(r.kind, r.budget) for r in study.rounds] == [("explore", 10), ("exploit", 10)]
    assert "boundaries" not in study.rounds[1].reason


def test_a_divergent_region_is_narrowed_away_and_avoided() -> None:
    study = campaign(valley(1e-2, diverge_above=3e-3), 20, tune=["lr"], ranges={"lr": (1e-5, 1e-1)})
    _, exploit = study.rounds
    assert exploit.kind == "exploit"
    cut = exploit.space.spec("lr").high
    assert 3e-3 < cut < 5.3e-3  # between the last lr that trained (2.98e-3) and the first that diverged
    assert "narrow lr to 1e-05..0.00397" in exploit.reason
    assert "All 4 trials with lr >= 0.00529 diverged" in exploit.reason
    first = [r for r in study.trials if r.round == 0]
    second = [r for r in study.trials if r.round == 1]
    assert sum(r.state == "infeasible" for r in first) == 4
    assert sum(r.state == "infeasible" for r in second) <= 1
    assert study.tally().results == 20


def test_the_exploit_round_narrows_the_settled_space_to_a_trust_region() -> None:
    budget, explored = 50, 25
    study = campaign(valley(1e-2), budget, tune=["lr"], ranges={"lr": (1e-5, 1.0)})
    explore, exploit = study.rounds
    assert (explore.budget, exploit.kind, exploit.budget) == (explored, "exploit", budget - explored)
    lr = exploit.space.spec("lr")
    # A trust region around the recommended trial (one dimension: a side of half the range).
    assert 1e-4 < lr.low < 3e-3 and 3e-2 < lr.high < 0.3  # around 1e-2, well inside 1e-5..1
    assert "narrow lr to" in exploit.reason and "a trust region around trial" in exploit.reason
    inside = [r for r in study.trials if r.round == 0 and r.adam and lr.low <= r.adam.lr <= lr.high]
    # The narrowed round learns from the earlier trials inside it, and samples only inside it.
    round_study = study.round_study(1)
    copies = [t for t in round_study.optuna.trials if "copy_of" in t.user_attrs]
    assert len(copies) == len(inside) < explored
    assert all(lr.low <= r.adam.lr <= lr.high for r in study.trials if r.round == 1 and r.adam)
    best = study.best
    assert best is not None and best.adam is not None and abs(math.log10(best.adam.lr / 1e-2)) < 0.1
    assert study.tally().results == budget
    # The study as a whole searched the settled range: its diagnostics and report read that one.
    assert exploit.settled == explore.space
    assert study.info.space.spec("lr").low == 1e-5 and study.info.space.spec("lr").high == 1.0
    assert not [f for f in study.diagnostics() if f.check == "boundary"]
    assert [Round.from_dict(r.to_dict()) for r in study.rounds] == study.rounds  # as stored


def test_a_long_exploit_round_searches_two_trust_regions_in_turn() -> None:
    study = campaign(valley(1e-2), 100, tune=["lr"], ranges={"lr": (1e-5, 1.0)})
    explore, first, second, _ = study.rounds  # the last: remeasure (3 trials, from budget 100)
    kinds = [(r.kind, r.budget) for r in study.rounds]
    assert kinds[:3] == [("explore", 34), ("exploit", 31), ("exploit", 32)]
    assert "the first half of 63 trials" in first.reason and "a trust region around trial" in first.reason
    assert "a second trust region, around the best explored trial outside the first" in second.reason
    box1, box2 = first.space.spec("lr"), second.space.spec("lr")
    explored = [r for r in study.trials if r.round == 0 and r.adam]
    outside = [r for r in explored if not box1.low <= r.adam.lr <= box1.high]
    # The second box is centred on the explored trial outside the first that is closest to 1e-2.
    centre = min(outside, key=lambda r: abs(math.log10(r.adam.lr) + 2))
    assert f"lr {centre.adam.lr:.3g}" in second.reason and box2.low <= centre.adam.lr <= box2.high
    assert box2 != box1
    for planned, box in ((first, box1), (second, box2)):
        assert all(
            box.low <= r.adam.lr <= box.high for r in study.trials if r.round == planned.index and r.adam
        )
        assert planned.settled == explore.space  # both narrow the settled space
    # The second half learns once from every earlier trial inside its box (of either round before it).
    copied = [
        t.user_attrs["copy_of"] for t in study.round_study(2).optuna.trials if "copy_of" in t.user_attrs
    ]
    earlier = [r for r in study.trials if r.round in (0, 1) and r.adam and box2.low <= r.adam.lr <= box2.high]
    assert len(copied) == len(earlier) == len({(c["round"], c["number"]) for c in copied})
    best = study.best
    assert best is not None and best.adam is not None and abs(math.log10(best.adam.lr / 1e-2)) < 0.1
    assert study.tally().results == 100 and len(study.trials) == 100
    assert study.info.space == explore.space
    assert [Round.from_dict(r.to_dict()) for r in study.rounds] == study.rounds  # as stored


def test_a_budget_of_100_spends_its_last_3_trials_training_the_best_candidates_again(tmp_path: Path) -> None:
    journal, objective, wide = str(tmp_path / "s.journal"), noisy_valley(1e-2, 0.05), {"lr": (1e-5, 1.0)}
    study = campaign(objective, 100, tune=["lr"], ranges=wide, storage=journal, study="s")
    assert [(r.kind, r.budget) for r in study.rounds] == [
        ("explore", 34),
        ("exploit", 31),
        ("exploit", 32),
        ("remeasure", 3),
    ]
    last = study.rounds[-1]
    earlier = [r for r in study.trials if r.round is not None and r.round < last.index]
    expected, how = choice.remeasure_candidates(earlier, study.rounds[-2].searched, "minimize", 3, 10)
    assert f"{how} (trials {', '.join(str(c.number) for c in expected)})" in last.reason
    assert "the 3 best GP posterior means of the 10 best observed configurations" in last.reason
    assert [last.space.config_from_params(p).lr for p in last.points] == pytest.approx(
        [c.adam.lr for c in expected if c.adam is not None]
    )
    fresh = [r for r in study.trials if r.round == last.index]
    assert len(fresh) == 3 and len(study.trials) == 100 and study.tally().results == 100
    for candidate, again in zip(expected, fresh, strict=True):  # one fresh run each, in order
        assert again.adam is not None and again.adam.matches(candidate.adam)
        assert again.seed != candidate.seed
    chosen = study.recommended
    assert chosen is not None and "the best fresh result of the 3 candidates" in chosen.reason
    best_fresh = min(fresh, key=lambda r: r.value or 0.0)
    assert chosen.record.adam is not None and chosen.record.adam.matches(best_fresh.adam)
    assert chosen.record.round is not None and chosen.record.round < last.index  # the trial that found it
    assert [Round.from_dict(r.to_dict()) for r in study.rounds] == study.rounds  # as stored
    # Interrupted in the remeasure round (its second run), resumed: the same runs as without.
    broken = str(tmp_path / "b.journal")
    with pytest.raises(KeyboardInterrupt):
        campaign(_InterruptAt(objective, 99), 100, tune=["lr"], ranges=wide, storage=broken, study="s")
    resumed = campaign(objective, 100, tune=["lr"], ranges=wide, storage=broken, study="s")
    assert [r.to_dict() for r in resumed.rounds] == [r.to_dict() for r in study.rounds]
    assert _final_state(resumed) == _final_state(study)
    # Extended, the study searches again and ends with a new remeasure round, of all its trials.
    rounds_before = len(study.rounds)
    extended = campaign(objective, 110, tune=["lr"], ranges=wide, storage=journal, study="s")
    added = extended.rounds[rounds_before:]
    assert [r.kind for r in added][-1] == "remeasure" and sum(r.budget for r in added) == 10
    assert added[-1].budget == 3 and extended.tally().results == 110
    recommended = extended.recommended
    assert recommended is not None and "best fresh result" in recommended.reason
    smaller = campaign(objective, 99, tune=["lr"], ranges=wide)
    assert "remeasure" not in [r.kind for r in smaller.rounds]


def test_with_no_feasible_trial_the_remeasure_trials_go_to_the_last_round() -> None:
    study = campaign(valley(1e-2, diverge_above=0.0), 100, tune=["lr"], ranges={"lr": (1e-5, 1.0)})
    assert [(r.kind, r.budget) for r in study.rounds] == [("explore", 34), ("exploit", 31), ("exploit", 35)]
    assert study.rounds[-1].reason.endswith("continued: no feasible trial to train again")
    assert study.tally().results == 100 and study.recommended is None


def test_the_remeasure_runs_are_never_pruned() -> None:
    # Under ASHA the search rounds' trials are pruned as ever; the 3 fresh runs all finish,
    # though the 2nd and 3rd read worse than the 1st at the first rung (ASHA stopped them).
    noisy = noisy_valley(1e-2, 0.05)

    def with_curve(trial: adamtune.Trial) -> float:
        value = noisy(trial)
        for step in range(9):
            trial.report(step, val_loss=value + 1.0 / (step + 1))
        return value + 1.0 / 9

    study = campaign(with_curve, 100, tune=["lr"], ranges={"lr": (1e-5, 1.0)}, pruner="asha")
    last = study.rounds[-1]
    fresh = [r for r in study.trials if r.round == last.index]
    assert last.kind == "remeasure" and [r.state for r in fresh] == [State.COMPLETE] * 3
    assert sum(r.state == State.PRUNED for r in study.trials) > 0  # the search rounds' are
    recommendation = study.recommended
    assert recommendation is not None and "then no result" not in recommendation.reason


def test_when_the_best_run_is_the_recommended_configurations_fresh_one_the_reports_say_so(
    tmp_path: Path,
) -> None:
    from adamtune.plots.report import render_html, text_report

    noisy = noisy_valley(1e-2, 0.05)

    calls = []

    def lucky_fresh_runs(trial: adamtune.Trial) -> float:  # the remeasure round's 3 runs read best
        calls.append(trial.number)  # (a round's own study numbers its trials from 0)
        return noisy(trial) - (1.0 if len(calls) > 97 else 0.0)

    journal = str(tmp_path / "s.journal")
    wide = {"lr": (1e-5, 1.0)}
    study = campaign(lucky_fresh_runs, 100, tune=["lr"], ranges=wide, storage=journal, study="s")
    best, recommendation = study.best, study.recommended
    assert best is not None and best.number >= 97 and recommendation is not None
    chosen = recommendation.record
    assert chosen.number < 97 and chosen.adam is not None and chosen.adam.matches(best.adam)
    said = f"recommended: trial {chosen.number}, the configuration of trial {best.number}: the best fresh"
    text = text_report(study, findings=[]).splitlines()
    (line,) = [line for line in text if line.startswith("recommended:")]
    assert line.startswith(said) and not line.endswith(chosen.adam.short())  # its values: the line above
    html = render_html(study, findings=[])
    assert f"the configuration of trial {best.number} above: the best fresh result" in html
    section = html.split("<h2>Best configuration</h2>")[1].split("<h2>")[0]
    assert section.count("<th>lr</th>") == 1  # one table of values for the one configuration
    shown = subprocess.run(
        [ADAMTUNE, "best", "--storage", journal, "--study", "s"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    at = next(i for i, line in enumerate(shown) if line.startswith("recommended: "))
    assert shown[at].startswith(said)
    assert shown[at + 1 :] == [] or not shown[at + 1].startswith("  lr=")  # the best run's, above it


def test_only_the_users_study_announces_itself(caplog: pytest.LogCaptureFixture) -> None:
    # Optuna logs "A new study created ..." per study; the rounds and the confirmation are
    # adamtune's own studies, and a Python user should not read their names as noise.
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.INFO)
    optuna.logging.enable_propagation()
    try:
        with caplog.at_level(logging.INFO, logger="optuna"):
            study = campaign(valley(3e-2), 12, tune=["lr"], confirm=2)
        assert len(study.rounds) >= 2 and study.confirmation is not None
        assert optuna.logging.get_verbosity() == optuna.logging.INFO  # given back as it was
    finally:
        optuna.logging.disable_propagation()
        optuna.logging.set_verbosity(verbosity)
    # (A set: with propagation on, pytest may see one record through two handlers.)
    created = {r.getMessage() for r in caplog.records if "A new study created" in r.getMessage()}
    assert created == {"A new study created in memory with name: valley"}


def test_small_budgets_do_not_narrow() -> None:
    study = campaign(valley(1e-2), 20, tune=["lr"], ranges={"lr": (1e-5, 1.0)})
    assert [r.kind for r in study.rounds] == ["explore", "exploit"]
    assert study.rounds[-1].space == study.rounds[0].space
    assert study.rounds[-1].settled is None and "settled" not in study.rounds[-1].to_dict()
    assert "narrow" not in study.rounds[-1].reason


@pytest.mark.parametrize("budget", [1, 4, 7, 9, 16])
def test_the_budget_is_exact(budget: int) -> None:
    study = campaign(valley(3e-2, diverge_above=0.05), budget, tune=["lr"])
    assert study.tally().results == budget
    assert sum(r.budget for r in study.rounds) == budget
    assert len(study.trials) == budget


def test_a_round_of_one_trial_is_written_in_the_singular() -> None:
    study = campaign(valley(3e-2), 4, tune=["lr"])
    assert [(r.kind, r.budget) for r in study.rounds] == [("explore", 3), ("explore", 1)]
    lines = campaign_rounds_text(study)
    assert lines[0].startswith("round 0 explore (3 trials; lr 1e-05..0.001): ")
    assert lines[1].startswith("round 1 explore (1 trial; lr ")


def test_small_budgets_without_a_range_change_stay_one_quasi_random_round() -> None:
    study = campaign(valley(1e-4), 6, tune=["lr"])
    assert len(study.rounds) == 1
    assert study.rounds[0].budget == 6
    assert study.rounds[0].reason.endswith("continued: no range change")


def test_a_small_campaign_extended_without_a_range_change_continues_its_round(tmp_path: Path) -> None:
    journal = str(tmp_path / "s.journal")
    campaign(valley(1e-4), 6, tune=["lr"], storage=journal)
    extended = campaign(valley(1e-4), 7, tune=["lr"], storage=journal)
    assert [(r.kind, r.budget) for r in extended.rounds] == [("explore", 7)]  # its Halton sequence goes on
    assert extended.rounds[0].reason.endswith(
        "continued: no range change; continued (the budget extended from 6 to 7 trials): no range change"
    )
    assert [r.point for r in extended.trials] == list(range(7))


def test_rounds_are_plain_optuna_studies(tmp_path: Path) -> None:
    journal = str(tmp_path / "c.journal")
    study = campaign(valley(3e-4), 12, tune=["lr"], storage=journal, study="c")
    assert [r.kind for r in study.rounds] == ["explore", "exploit"]
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(journal))
    names = {s.study_name for s in optuna.get_all_study_summaries(storage)}
    assert names == {"c", *(f"c::round-{r.index}" for r in study.rounds)}
    assert optuna.load_study(study_name="c", storage=storage).trials == []
    last = optuna.load_study(study_name=f"c::round-{study.rounds[-1].index}", storage=storage)
    copies = [t for t in last.trials if "copy_of" in t.user_attrs]
    own = [t for t in last.trials if "copy_of" not in t.user_attrs]
    assert len(own) == study.rounds[-1].budget
    assert len(copies) == sum(r.budget for r in study.rounds[:-1])  # every earlier trial is inside
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in last.trials)
    # Reading it back gives the same campaign, and the CLI lists only the campaign.
    loaded = adamtune.load_study(None, journal)
    assert isinstance(loaded, Campaign)
    assert [r.to_dict(loaded.param_names) for r in loaded.trials] == [
        r.to_dict(study.param_names) for r in study.trials
    ]


class _InterruptAt:
    """The objective, interrupted (as by Ctrl-C) on its ``at``-th call."""

    def __init__(self, objective: Callable[[adamtune.Trial], float], at: int) -> None:
        self.objective, self.at, self.calls = objective, at, 0
        self.__name__ = "valley"

    def __call__(self, trial: adamtune.Trial) -> float:
        self.calls += 1
        if self.calls == self.at:
            raise KeyboardInterrupt
        return self.objective(trial)


def _final_state(study: Campaign) -> list[tuple[Any, ...]]:
    return [
        (r.round, str(r.state), r.value, r.seed, r.params(study.param_names))
        for r in study.trials
        if r.state != "failed"
    ]


@pytest.mark.parametrize("interrupt_at", [5, 19])  # in the first exploration round; in the exploit round
def test_an_interrupted_campaign_resumes_to_the_same_final_state(tmp_path: Path, interrupt_at: int) -> None:
    objective = valley(3e-2, diverge_above=0.05)
    straight = campaign(objective, 20, tune=["lr", "beta1"], storage=str(tmp_path / "a.journal"), seed=4)
    journal = str(tmp_path / "b.journal")
    with pytest.raises(KeyboardInterrupt):
        campaign(_InterruptAt(objective, interrupt_at), 20, tune=["lr", "beta1"], storage=journal, seed=4)
    resumed = campaign(objective, 20, tune=["lr", "beta1"], storage=journal, seed=4)
    assert [r.to_dict() for r in resumed.rounds] == [r.to_dict() for r in straight.rounds]
    assert _final_state(resumed) == _final_state(straight)
    interrupted = [r for r in resumed.trials if r.state == "failed"]
    assert len(interrupted) == 1 and "interrupted" in (interrupted[0].reason or "")


def test_an_interrupt_while_the_gp_suggests_gives_the_trial_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ctrl-C lands most often inside the exploit round's GP suggestion (seconds, before the
    # trial runs); it once left the trial RUNNING for ever and the resumed campaign waited on it.
    objective = valley(1e-4)  # 10 trials explored, then 10 exploited
    straight = campaign(objective, 20, tune=["lr", "beta1"], storage=str(tmp_path / "a.journal"), seed=4)
    journal = str(tmp_path / "b.journal")
    prepare = study_module._Runner._prepare
    calls = []

    def interrupted_in_round_2(self: Any, optuna_trial: optuna.Trial, point: int) -> Any:
        calls.append(point)
        if len(calls) == 13:  # the exploit round's third trial
            raise KeyboardInterrupt
        return prepare(self, optuna_trial, point)

    with monkeypatch.context() as patched:
        patched.setattr(study_module._Runner, "_prepare", interrupted_in_round_2)
        with pytest.raises(KeyboardInterrupt):
            campaign(objective, 20, tune=["lr", "beta1"], storage=journal, seed=4)
    stopped = adamtune.load_study("valley", journal)
    assert isinstance(stopped, Campaign) and stopped.tally().running == 0
    assert [r.reason for r in stopped.trials if r.state == "failed"] == ["interrupted before it started"]
    resumed = campaign(objective, 20, tune=["lr", "beta1"], storage=journal, seed=4)
    assert [r.to_dict() for r in resumed.rounds] == [r.to_dict() for r in straight.rounds]
    assert _final_state(resumed) == _final_state(straight)


def test_a_trial_left_unnamed_is_given_back_and_its_round_runs_in_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A process stopped inside Optuna's ask leaves a RUNNING trial without a worker; the resumed
    # campaign waits out the grace period at the end of the round, then runs the freed slot.
    objective, journal = valley(1e-4), str(tmp_path / "s.journal")
    with pytest.raises(KeyboardInterrupt):
        campaign(_InterruptAt(objective, 14), 20, tune=["lr", "beta1"], storage=journal, seed=4)
    stopped = adamtune.load_study("valley", journal)
    assert isinstance(stopped, Campaign) and stopped.rounds[-1].kind == "exploit"
    stopped.round_study(stopped.rounds[-1].index).optuna.ask()  # the process stopped here
    monkeypatch.setattr(study_module, "UNNAMED_GRACE_S", 1.0)
    resumed = campaign(objective, 20, tune=["lr", "beta1"], storage=journal, seed=4)
    assert resumed.tally().results == 20 and resumed.tally().running == 0
    for planned in resumed.rounds:
        assert resumed.round_study(planned.index).tally().results == planned.budget
    reasons = [r.reason or "" for r in resumed.trials if r.state == "failed"]
    assert any(reason.startswith("its process ended before naming itself") for reason in reasons)


def test_a_campaign_interrupted_in_the_first_half_of_a_split_round_plans_the_same_second(
    tmp_path: Path,
) -> None:
    # Budget 75: 25 explored, then 50 exploited in two trust regions of 25 each; the
    # interruption falls in the first, so the second is planned after the resume.
    objective, wide = valley(1e-2), {"lr": (1e-5, 1.0)}
    straight = campaign(objective, 75, tune=["lr"], ranges=wide, storage=str(tmp_path / "a.journal"), seed=3)
    assert [(r.kind, r.budget) for r in straight.rounds] == [
        ("explore", 25),
        ("exploit", 25),
        ("exploit", 25),
    ]
    journal = str(tmp_path / "b.journal")
    with pytest.raises(KeyboardInterrupt):
        campaign(_InterruptAt(objective, 35), 75, tune=["lr"], ranges=wide, storage=journal, seed=3)
    assert len(adamtune.load_study("valley", journal).rounds) == 2  # type: ignore[attr-defined]
    resumed = campaign(objective, 75, tune=["lr"], ranges=wide, storage=journal, seed=3)
    assert [r.to_dict() for r in resumed.rounds] == [r.to_dict() for r in straight.rounds]
    assert _final_state(resumed) == _final_state(straight)


def test_a_campaign_refuses_a_smaller_budget_or_another_strategy_and_keeps_its_own(tmp_path: Path) -> None:
    journal = str(tmp_path / "s.journal")
    campaign(valley(1e-4), 6, tune=["lr"], storage=journal, study="s")
    with pytest.raises(
        StudyMismatchError, match="expected a budget of at least the 6 it was planned for, got 4"
    ):
        campaign(valley(1e-4), 4, tune=["lr"], storage=journal, study="s")
    assert adamtune.load_study("s", journal).budget == 6  # the refused budget was not stored
    with pytest.raises(StudyMismatchError, match="searched with strategy playbook, got quasi-random"):
        adamtune.tune(valley(1e-4), 8, tune=["lr"], storage=journal, study="s", strategy="quasi-random")
    assert (
        len(adamtune.load_study("s", journal).optuna.trials) == 0
    )  # no search ran in the campaign's own study
    adamtune.tune(valley(1e-4), 3, tune=["lr"], storage=journal, study="q", strategy="quasi-random")
    with pytest.raises(StudyMismatchError, match="one-study search"):
        campaign(valley(1e-4), 3, tune=["lr"], storage=journal, study="q")
    with pytest.raises(StudyMismatchError, match="searched with strategy quasi-random, got tpe"):
        adamtune.tune(valley(1e-4), 5, tune=["lr"], storage=journal, study="q", strategy="tpe")
    assert adamtune.load_study("s", journal).budget == 6 and adamtune.load_study("q", journal).budget == 3
    assert "extensions" not in adamtune.load_study("s", journal).to_dict()  # only an extended one has them


def test_a_finished_campaign_given_a_larger_budget_plans_new_rounds_from_all_its_trials(
    tmp_path: Path,
) -> None:
    journal, objective = str(tmp_path / "s.journal"), valley(3e-2)
    before = campaign(objective, 12, tune=["lr"], storage=journal, study="s", seed=1)
    assert [(r.kind, r.budget) for r in before.rounds] == [("explore", 6), ("explore", 3), ("explore", 3)]
    rounds_before, state_before = [r.to_dict() for r in before.rounds], _final_state(before)
    extended = campaign(objective, 20, tune=["lr"], storage=journal, study="s", seed=1)
    rounds = extended.rounds
    assert [r.to_dict() for r in rounds[:3]] == rounds_before  # kept as they were
    assert [(r.kind, r.budget) for r in rounds[3:]] == [("exploit", 8)]
    assert rounds[3].reason.startswith("the budget extended from 12 to 20 trials; exploit: constrained")
    assert _final_state(extended)[:12] == state_before
    assert extended.tally().results == 20 and extended.budget == 20 and extended.extended_from == 12
    assert extended.settings["extensions"] == [{"from": 12, "to": 20}]
    exported = extended.to_dict()
    assert exported["extensions"] == [{"from": 12, "to": 20}] and exported["budget"] == 20
    best = extended.best
    assert best is not None and best.adam is not None and abs(math.log10(best.adam.lr / 3e-2)) < 0.2
    again = campaign(objective, 20, tune=["lr"], storage=journal, study="s", seed=1)  # resumes: nothing to do
    assert _final_state(again) == _final_state(extended) and len(again.rounds) == 4


def test_an_extension_after_an_exploit_round_plans_from_the_diagnostics_not_a_second_half(
    tmp_path: Path,
) -> None:
    # Budget 16 over the wide lr range: 8 explored, 8 exploited. The extension's round is
    # planned as after an exploration round (here: the optimum is inside, so Bayesian again
    # over the settled space), not as the second trust region of a split round.
    journal, objective, wide = str(tmp_path / "s.journal"), valley(3e-2), {"lr": (1e-5, 1.0)}
    before = campaign(objective, 16, tune=["lr"], ranges=wide, storage=journal)
    assert [(r.kind, r.budget) for r in before.rounds] == [("explore", 8), ("exploit", 8)]
    before_space = before.rounds[-1].space
    extended = campaign(objective, 24, tune=["lr"], ranges=wide, storage=journal)
    added = extended.rounds[2:]
    assert [(r.kind, r.budget) for r in added] == [("exploit", 8)]
    assert added[0].reason.startswith(
        "the budget extended from 16 to 24 trials; exploit: constrained Bayesian"
    )
    assert "second half" not in added[0].reason
    assert added[0].space == before_space  # 16 trials: too few to narrow (20 feasible or more)
    assert extended.tally().results == 24


def test_a_campaign_not_finished_refuses_a_larger_budget(tmp_path: Path) -> None:
    journal, objective = str(tmp_path / "s.journal"), valley(3e-2)
    with pytest.raises(KeyboardInterrupt):
        campaign(_InterruptAt(objective, 5), 12, tune=["lr"], storage=journal, study="s")
    with pytest.raises(
        StudyMismatchError, match="planned for a budget of 12 and has 4 results: expected --budget 12"
    ):
        campaign(objective, 20, tune=["lr"], storage=journal, study="s")
    assert adamtune.load_study("s", journal).budget == 12


def test_an_interrupted_extension_resumes_to_the_same_final_state(tmp_path: Path) -> None:
    objective = valley(3e-2, diverge_above=0.05)
    runs = {}
    for name, interrupt in (("straight", None), ("interrupted", 4)):
        journal = str(tmp_path / f"{name}.journal")
        campaign(objective, 12, tune=["lr", "beta1"], storage=journal, seed=4)
        if interrupt is not None:
            with pytest.raises(KeyboardInterrupt):
                campaign(
                    _InterruptAt(objective, interrupt), 24, tune=["lr", "beta1"], storage=journal, seed=4
                )
        runs[name] = campaign(objective, 24, tune=["lr", "beta1"], storage=journal, seed=4)
    straight, resumed = runs["straight"], runs["interrupted"]
    assert [r.to_dict() for r in resumed.rounds] == [r.to_dict() for r in straight.rounds]
    assert _final_state(resumed) == _final_state(straight)
    assert resumed.tally().results == 24


def test_rounds_with_two_workers_spend_the_budget_exactly() -> None:
    study = campaign(valley(3e-2), 16, tune=["lr"], workers=2)
    assert [r.budget for r in study.rounds] == [8, 4, 4]
    assert [r.kind for r in study.rounds] == ["explore", "explore", "explore"]
    assert study.tally().results == 16 and study.tally().running == 0


# --- confirmation -----------------------------------------------------------------------------


def noisy_valley(best_lr: float, noise: float) -> Callable[[adamtune.Trial], float]:
    """The valley plus seed noise: each training seed shifts the result a little."""

    def objective(trial: adamtune.Trial) -> float:
        shift = noise * ((trial.seed % 1000) / 1000 - 0.5)
        return 0.1 + (math.log10(trial.adam.lr) - math.log10(best_lr)) ** 2 + shift

    objective.__name__ = "noisy"  # type: ignore[attr-defined]
    return objective


def test_confirmation_retrains_the_best_and_the_baseline_on_the_same_fresh_seeds() -> None:
    study = adamtune.tune(noisy_valley(1e-4, 0.01), 8, storage="memory", tune=["lr"], seed=2)
    confirmation = study.confirmation
    assert confirmation is not None and confirmation.complete
    assert confirmation.seeds == confirmation_seeds(2, 3)
    assert [c.label.split()[0] for c in confirmation.configs] == ["#1", "#2", "#3", "baseline"]
    baseline = confirmation.configs[-1]
    assert baseline.adam == ADAM_DEFAULTS
    assert len(baseline.values) == 3
    trial_seeds = {r.seed for r in study.trials}
    assert not trial_seeds & set(confirmation.seeds)
    # Default Adam's lr 1e-3 is a decade from the optimum: 1.0 worse, far beyond the noise.
    assert confirmation.beats_baseline is True
    assert confirmation.margin is not None and confirmation.margin > 0.5
    assert "adopt it" in confirmation.verdict()
    winner = confirmation.winner
    assert winner is not None and winner.mean is not None and winner.std is not None
    # Paired seeds: every configuration saw the same shifts, so the spreads are equal.
    assert all(c.std == pytest.approx(winner.std) for c in confirmation.configs)


def test_the_diagnostics_take_the_noise_the_confirmation_measured() -> None:
    study = adamtune.tune(noisy_valley(1e-4, 0.01), 8, storage="memory", tune=["lr"], seed=2)
    confirmation = study.confirmation
    assert confirmation is not None and confirmation.trial_std is not None
    density = next(f for f in study.diagnostics() if f.check == "density")
    assert density.numbers["noise_source"] == "seeds"
    assert density.numbers["noise"] == pytest.approx(confirmation.trial_std)
    assert "confirmation's 12 runs: 4 configurations on the same 3 fresh seeds" in density.message
    # Without a confirmation the spread of the best trials stands in, and says so.
    alone = adamtune.tune(noisy_valley(1e-4, 0.01), 8, storage="memory", tune=["lr"], seed=2, confirm=0)
    density = next(f for f in alone.diagnostics() if f.check == "density")
    assert density.numbers["noise_source"] == "best-spread"
    assert density.numbers["noise"] != pytest.approx(confirmation.trial_std)


def test_the_confirmation_summary_names_a_winner_other_than_the_best_run() -> None:
    def config(
        role: str, candidate: int, source: int | None, lr: float, values: list[float]
    ) -> ConfirmedConfig:
        return ConfirmedConfig(role, candidate, source, adamtune.AdamConfig(lr=lr), values, 0, 0)

    confirmation = Confirmation(
        "minimize",
        [11, 12],
        [
            config("candidate", 0, 3, 1e-3, [0.50, 0.52]),  # the best single run, trial 3
            config("candidate", 1, 5, 2e-3, [0.40, 0.42]),  # better on fresh seeds
            config("baseline", 2, None, 1e-4, [0.90, 0.92]),
        ],
    )
    assert confirmation.summary(3) == [
        "confirmation on 2 seeds: the winner #2 (trial 5) beats the baseline by 0.5, more than the "
        "trial spread 0.0141: adopt it",
        "  (the confirmation prefers trial 5 to the best single run: "
        "lr=0.002 beta1=0.9 beta2=0.999 eps=1e-08)",
    ]
    assert confirmation.summary(5) == confirmation.summary(3)[:1]
    # A lead within the trial spread is a toss-up, and the line says so.
    close = Confirmation(
        "minimize",
        [11, 12],
        [
            config("candidate", 0, 3, 1e-3, [0.41, 0.43]),
            config("candidate", 1, 5, 2e-3, [0.40, 0.42]),
            config("baseline", 2, None, 1e-4, [0.90, 0.92]),
        ],
    )
    assert close.summary(3)[1] == (
        "  (the confirmation prefers trial 5 to the best single run: lr=0.002 beta1=0.9 beta2=0.999 "
        "eps=1e-08; by 0.01, within the trial spread 0.0141: either will do)"
    )
    assert close.toss_up_note(99) is None  # not a confirmed trial


def test_the_trial_to_adopt_is_the_confirmations_winner_or_the_recommended_one() -> None:
    study = adamtune.tune(noisy_valley(1e-4, 0.01), 8, storage="memory", tune=["lr"], seed=2)
    confirmation, recommended = study.confirmation, study.recommended
    assert confirmation is not None and confirmation.winner is not None and recommended is not None
    adopted = study.adopted
    assert adopted.record is not None and adopted.record.adam is not None
    if confirmation.winner.source == recommended.record.number:
        assert (adopted.record.number, adopted.why) == (recommended.record.number, "recommended")
    else:
        assert (adopted.record.number, adopted.why) == (confirmation.winner.source, "confirmed best")
    assert str(adopted) == f"trial {adopted.record.number} ({adopted.why}): {adopted.record.adam.short()}"
    unconfirmed = adamtune.tune(valley(1e-4), 4, storage="memory", tune=["lr"], confirm=0)
    assert unconfirmed.recommended is not None
    assert unconfirmed.adopted == (unconfirmed.recommended.record, "recommended")


def test_confirmation_says_when_the_winner_is_within_the_noise() -> None:
    baseline = adamtune.AdamConfig(lr=1.2e-4, beta1=0.9, beta2=0.999, eps=1e-8)
    study = adamtune.tune(noisy_valley(1e-4, 0.5), 8, storage="memory", tune=["lr"], baseline=baseline)
    confirmation = study.confirmation
    assert confirmation is not None
    assert confirmation.configs[-1].adam == baseline
    assert confirmation.beats_baseline is False
    assert "not shown to beat it" in confirmation.verdict()


def test_a_baseline_better_than_every_trial_is_kept(tmp_path: Path) -> None:
    # The optimum (lr 1e-3, Adam's default) lies outside the searched range: on fresh seeds the
    # baseline beats the best trial by far more than the noise, so nothing is adopted.
    storage = str(tmp_path / "kept.journal")
    study = adamtune.tune(
        noisy_valley(1e-3, 0.01),
        4,
        storage=storage,
        study="kept",
        tune=["lr"],
        ranges={"lr": (1e-5, 1e-4)},
        strategy="quasi-random",
        confirm=3,
    )
    confirmation = study.confirmation
    assert confirmation is not None and confirmation.winner is not None and confirmation.margin is not None
    assert confirmation.trial_std is not None and -confirmation.margin > confirmation.trial_std
    assert confirmation.baseline_wins and confirmation.beats_baseline is False
    verdict = confirmation.verdict()
    assert verdict.startswith(f"the baseline beats the winner {confirmation.winner.label} by ")
    assert verdict.endswith(f"more than the trial spread {confirmation.trial_std:.3g}: keep the baseline")
    adopted = study.adopted
    assert adopted.why == "baseline" and adopted.trial is None
    assert adopted.record is not None and adopted.record.adam == ADAM_DEFAULTS
    assert str(adopted) == f"the baseline (it beat the study's best on fresh seeds): {ADAM_DEFAULTS.short()}"
    assert adopted.to_dict(["lr"]) == {"number": None, "why": "baseline", "params": {"lr": 1e-3}}
    code = "torch.optim.Adam(model.parameters(), lr=0.001, betas=(0.9, 0.999), eps=1e-08)"
    assert use_line(study) == f"keep the baseline: {code}"
    best = subprocess.run(
        [ADAMTUNE, "best", "--storage", storage], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert "keep the baseline" in best.stdout and best.stdout.splitlines()[-1] == f"keep the baseline: {code}"
    assert "prefers trial" not in best.stdout  # no trial of the study is the one to use
    as_json = subprocess.run(
        [ADAMTUNE, "best", "--storage", storage, "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    body = json.loads(as_json.stdout)
    assert body["adopt"]["number"] is None and body["adopt"]["why"] == "baseline"
    assert body["use"] == code and body["confirmation"]["baseline_wins"] is True
    listed = subprocess.run(
        [ADAMTUNE, "studies", "--storage", storage, "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(listed.stdout)[0]["baseline_wins"] is True
    page = study.report(tmp_path / "report.html").read_text()
    assert f"<p>Keep the baseline: <code>{code}</code></p>" in page
    assert "is in bold" not in page  # no trial marked


def test_confirmation_says_when_the_winner_ties_the_baseline() -> None:
    # A saturated task (every configuration scores the same) ties: no margin to call worse.
    study = adamtune.tune(lambda trial: 0.25, 4, storage="memory", tune=["lr"], confirm=2)
    confirmation = study.confirmation
    assert confirmation is not None and confirmation.beats_baseline is False
    assert (
        confirmation.verdict()
        == "the winner #1 (trial 0) ties the baseline (mean 0.25 each), not shown to beat it"
    )


def test_confirmation_is_off_with_zero_and_for_other_strategies_by_default() -> None:
    assert campaign(valley(1e-4), 4, tune=["lr"], confirm=0).confirmation is None
    one = adamtune.tune(valley(1e-4), 4, storage="memory", tune=["lr"], strategy="quasi-random")
    assert one.confirmation is None
    asked = adamtune.tune(valley(1e-4), 4, storage="memory", tune=["lr"], strategy="quasi-random", confirm=2)
    assert asked.confirmation is not None and len(asked.confirmation.seeds) == 2


def test_a_nadamw_study_trains_nadam_and_confirms_against_its_torch_defaults() -> None:
    seen: list[adamtune.AdamConfig] = []

    def objective(trial: adamtune.Trial) -> float:
        seen.append(trial.adam)
        return valley(3e-4)(trial)

    study = adamtune.tune(objective, 6, storage="memory", tune=["lr"], optimizer="nadamw", confirm=2)
    assert {(c.optimizer, c.weight_decay) for c in seen} == {("nadamw", 1e-2)}  # AdamW's default decay
    assert study.param_names[-1] == "weight_decay"
    confirmation = study.confirmation
    assert confirmation is not None and confirmation.baseline is not None
    # torch.optim.NAdam's own lr is 2e-3, not Adam's 1e-3
    assert confirmation.baseline.adam == adamtune.AdamConfig(lr=2e-3, weight_decay=1e-2, optimizer="nadamw")
    use = how_to_use(study)
    assert use is not None and use.startswith("torch.optim.NAdam(model.parameters(), lr=")
    assert use.endswith("weight_decay=0.01, decoupled_weight_decay=True)")


def write_log_valley(path: Path, best_lr: float) -> None:
    """A script whose objective is a quadratic valley in log lr, a little seed noise on it."""
    path.write_text(
        "import math\n"
        "def objective(trial):\n"
        f"    return 0.1 + (math.log10(trial.adam.lr / {best_lr!r})) ** 2 + (trial.seed % 7) * 1e-3\n"
    )


def test_cli_names_the_optimizer_and_shows_the_weight_decay_it_confirms(tmp_path: Path) -> None:
    write_log_valley(tmp_path / "train.py", best_lr=1e-4)
    run = [ADAMTUNE, "tune", "train.py:objective", "--budget", "4", "--confirm", "2", "--tune", "lr"]
    wide = {**os.environ, "COLUMNS": "200"}
    result = subprocess.run(
        [*run, "--optimizer", "nadamw"], cwd=tmp_path, capture_output=True, text=True, env=wide
    )
    assert result.returncode == 0, result.stderr
    assert "optimizer: nadamw (torch.optim.NAdam with decoupled_weight_decay=True)" in result.stderr
    header = next(line for line in result.stdout.splitlines() if "mean val_loss" in line)
    assert re.search(r"eps\W+weight_decay\W+$", header)  # in play: shown beside the four
    baseline = next(line for line in result.stdout.splitlines() if "baseline" in line)
    assert "0.002" in baseline and "0.01" in baseline  # torch.optim.NAdam's lr, AdamW's decay
    assert "decoupled_weight_decay=True)" in result.stdout
    plain = subprocess.run([*run, "--study", "plain"], cwd=tmp_path, capture_output=True, text=True, env=wide)
    assert plain.returncode == 0, plain.stderr
    assert "optimizer: adam (torch.optim.Adam)" in plain.stderr
    assert "weight_decay" not in plain.stdout


def test_a_baseline_outside_the_optimizer_is_refused() -> None:
    adamw = adamtune.AdamConfig(
        lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01, optimizer="adamw"
    )
    with pytest.raises(ConfigError, match="baseline optimizer: expected adam, got adamw"):
        adamtune.tune(valley(1e-4), 2, storage="memory", tune=["lr"], baseline=adamw)


def test_cli_shows_rounds_confirmation_and_refuses_bad_input(tmp_path: Path) -> None:
    write_log_valley(tmp_path / "train.py", best_lr=1e-2)
    run = [ADAMTUNE, "tune", "train.py:objective", "--budget", "8", "--confirm", "2", "--tune", "lr"]
    result = subprocess.run([*run, "--baseline", "lr=3e-4"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "round 0 explore (4 trials; lr 1e-05..0.001)" in result.stdout
    assert "round 0: explore, 4 trials, lr 1e-05..0.001" in result.stderr  # the progress line
    # The expansion round samples the expanded range's new side, from behind the best trial.
    expansion = re.search(r"round 1 explore \(4 trials; lr ([0-9.e-]+)\.\.0\.01\)", result.stdout)
    assert expansion is not None and 1e-4 < float(expansion.group(1)) < 1e-3
    assert "expand lr to 1e-05..0.01" in result.stdout
    limited = subprocess.run(
        [*run, "--storage", "limited.journal", "--limit", "lr=1e-5:3e-3"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert limited.returncode == 0, limited.stderr
    assert re.search(r"round 1 explore \(4 trials; lr [0-9.e-]+\.\.0\.003\)", limited.stdout)
    assert "expand lr to 1e-05..0.003" in limited.stdout
    assert "confirmation on 2 fresh seeds" in result.stdout
    assert "adopt it" in result.stdout
    trials = subprocess.run([ADAMTUNE, "trials"], cwd=tmp_path, capture_output=True, text=True)
    assert trials.returncode == 0 and "round" in trials.stdout
    for bad, expected in (
        (["--baseline", "lr=fast"], "--baseline lr: expected a number, got 'fast'"),
        (["--baseline", "gamma=1"], "--baseline: expected NAME=VALUE pairs with NAME one of lr"),
        (["--strategy", "grid", "--tune", "lr,beta1,eps"], "strategy grid: expected at most 2"),
        (["--confirm", "-1"], "confirm: expected a whole number of seeds >= 0"),
        (
            ["--limit", "lr=1e-4:1"],
            "limit for lr: expected a limit that contains the search range 1e-05:0.001",
        ),
        (["--limit", "lr=1e-4"], "--limit: expected NAME=LOW:HIGH such as lr=1e-6:1, got 'lr=1e-4'"),
    ):
        refused = subprocess.run(
            [*run, "--study", "other", *bad], cwd=tmp_path, capture_output=True, text=True
        )
        assert refused.returncode == 2, refused.stderr
        assert refused.stderr.strip().startswith("error:") and expected in refused.stderr
        assert refused.stderr.strip().count("\n") == 0
    # The finished study, given 4 more trials: its best sits at the top of lr 1e-5..1e-2, so a
    # new round expands lr again; then a new confirmation.
    grown = subprocess.run(
        [*run[:4], "12", *run[5:], "--baseline", "lr=3e-4"], cwd=tmp_path, capture_output=True, text=True
    )
    assert grown.returncode == 0, grown.stderr
    assert "extending: the 8 trials of the finished study, and 4 more" in grown.stderr
    assert "round 2: explore, 4 trials" in grown.stderr and "round 1: explore" not in grown.stderr
    assert re.search(
        r"round 2 explore \(4 trials; lr [0-9.e-]+\.\.0\.1\): the budget extended from 8 to 12 trials; "
        r"explore the expanded space; expand lr to 1e-05\.\.0\.1",
        grown.stdout,
    )
    assert "12 trials with a result" in grown.stdout and "confirmation on 2 fresh seeds" in grown.stdout
    smaller = subprocess.run([*run, "--baseline", "lr=3e-4"], cwd=tmp_path, capture_output=True, text=True)
    assert smaller.returncode == 2
    assert "expected a budget of at least the 12 it was planned for, got 8" in smaller.stderr


def test_confirmation_says_when_the_winner_is_the_baseline_itself() -> None:
    from adamtune.confirmation import Confirmation, ConfirmedConfig

    same = ADAM_DEFAULTS
    configs = [
        ConfirmedConfig("candidate", 0, 15, same, [1.05, 1.07, 1.06], 0, 0),
        ConfirmedConfig("candidate", 1, 12, replace(same, lr=7e-4), [1.07, 1.08, 1.06], 0, 0),
        ConfirmedConfig("baseline", -1, None, same, [1.05, 1.07, 1.06], 0, 0),
    ]
    confirmation = Confirmation("minimize", [1, 2, 3], configs)
    assert confirmation.winner is configs[0]
    assert confirmation.beats_baseline is False
    assert (
        confirmation.verdict()
        == "the winner #1 (trial 15) is the baseline configuration itself: keep the baseline"
    )


def test_a_candidate_that_is_the_baseline_is_trained_once_for_both(tmp_path: Path) -> None:
    first = adamtune.tune(noisy_valley(1e-4, 0.01), 8, storage="memory", tune=["lr"], seed=2, confirm=0)
    assert first.best is not None and first.best.adam is not None
    names: list[str] = []

    def objective(trial: adamtune.Trial) -> float:
        names.append(trial.name)
        return noisy_valley(1e-4, 0.01)(trial)

    storage = str(tmp_path / "s.journal")
    study = adamtune.tune(objective, 8, storage=storage, tune=["lr"], seed=2, baseline=first.best.adam)
    confirmation = adamtune.load_study(study.name, storage).confirmation  # as stored
    assert confirmation is not None and confirmation.complete
    # Three candidates on three seeds; the baseline, the best trial's configuration, is one of them.
    assert len([n for n in names if n.startswith("confirm-")]) == 9
    shared = next(c for c in confirmation.configs if c.source == first.best.number)
    baseline = confirmation.configs[-1]
    assert baseline.label == f"baseline (= #{shared.candidate + 1})" and baseline.same_as == shared.candidate
    assert baseline.values == shared.values and baseline.adam == shared.adam
    assert [c.label for c in confirmation.trained] == [c.label for c in confirmation.configs[:3]]
    # Paired seeds shift every configuration alike: the best trial's stays the best, the winner.
    assert confirmation.winner is shared and confirmation.beats_baseline is False
    assert confirmation.verdict().endswith("is the baseline configuration itself: keep the baseline")
    density = next(f for f in study.diagnostics() if f.check == "density")
    assert "confirmation's 9 runs: 3 configurations on the same 3 fresh seeds" in density.message
    assert confirmation.to_dict()["configs"][-1]["same_as"] == shared.candidate


def test_an_interrupted_confirmation_resumes_the_runs_it_queued(tmp_path: Path) -> None:
    # 8 trials, then 3 candidates and Adam's defaults on 3 seeds: interrupted at its 5th run.
    objective, journal = noisy_valley(1e-4, 0.01), str(tmp_path / "s.journal")
    with pytest.raises(KeyboardInterrupt):
        adamtune.tune(_InterruptAt(objective, 13), 8, storage=journal, tune=["lr"], seed=2, study="s")
    best = adamtune.load_study("s", journal).best
    assert best is not None and best.adam is not None
    # Resumed with the best trial's configuration as the baseline, today's plan would have 9
    # runs and no baseline runs; the queued plan, 12 runs with Adam's defaults, is the one run.
    study = adamtune.tune(objective, 8, storage=journal, tune=["lr"], seed=2, study="s", baseline=best.adam)
    confirmation = study.confirmation
    assert confirmation is not None and confirmation.complete
    assert confirmation.baseline is not None and confirmation.baseline.adam == ADAM_DEFAULTS
    assert confirmation.baseline.same_as is None and len(confirmation.baseline.values) == 3
    assert sum(len(c.values) for c in confirmation.trained) == 12


def test_a_confirmation_stopped_while_queueing_its_runs_queues_each_run_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    objective, journal = noisy_valley(1e-4, 0.01), str(tmp_path / "s.journal")
    enqueue = optuna.Study.enqueue_trial
    queued: list[int] = []

    def stopped_after_five(self: optuna.Study, *args: Any, **kwargs: Any) -> None:
        if len(queued) == 5:
            raise KeyboardInterrupt
        queued.append(kwargs["user_attrs"]["point"])
        enqueue(self, *args, **kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(optuna.Study, "enqueue_trial", stopped_after_five)
        with pytest.raises(KeyboardInterrupt):
            adamtune.tune(objective, 8, storage=journal, tune=["lr"], seed=2, study="s")
    assert queued == [0, 1, 2, 3, 4]
    study = adamtune.tune(objective, 8, storage=journal, tune=["lr"], seed=2, study="s")
    confirmation = study.confirmation
    assert confirmation is not None and confirmation.complete
    runs = optuna.load_study(study_name="s::confirm", storage=open_storage(journal)).trials
    assert sorted(t.user_attrs["point"] for t in runs) == list(range(12))  # 3 candidates, defaults
    assert sum(len(c.values) for c in confirmation.trained) == 12


def test_runs_queued_twice_run_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Two processes planning one confirmation at the same moment both queue its 12 runs; here
    # each run is queued twice in a row, the worst interleaving: the first 12 asked are 6 runs.
    objective, journal = noisy_valley(1e-4, 0.01), str(tmp_path / "s.journal")
    enqueue = optuna.Study.enqueue_trial

    def twice(self: optuna.Study, *args: Any, **kwargs: Any) -> None:
        enqueue(self, *args, **kwargs)
        enqueue(self, *args, **kwargs)

    monkeypatch.setattr(optuna.Study, "enqueue_trial", twice)
    study = adamtune.tune(objective, 8, storage=journal, tune=["lr"], seed=2, study="s")
    confirmation = study.confirmation
    assert confirmation is not None and confirmation.complete
    runs = optuna.load_study(study_name="s::confirm", storage=open_storage(journal)).trials
    ran = [t for t in runs if t.state == optuna.trial.TrialState.COMPLETE]
    assert sorted(t.user_attrs["point"] for t in ran) == list(range(12))
    skipped = [t for t in runs if t.state == optuna.trial.TrialState.FAIL]
    assert skipped and all(t.user_attrs["outcome"] == "surplus" for t in skipped)
    assert all("runs the same task (it was queued twice)" in t.user_attrs["reason"] for t in skipped)
    assert len(skipped) + len(ran) + sum(t.state == optuna.trial.TrialState.WAITING for t in runs) == 24


@pytest.mark.parametrize("strategy", ["playbook", "quasi-random"])
def test_a_study_grown_after_its_confirmation_is_confirmed_again_and_keeps_the_first(
    tmp_path: Path, strategy: str
) -> None:
    objective, journal = noisy_valley(1e-4, 0.01), str(tmp_path / "s.journal")
    settings: dict[str, Any] = {
        "storage": journal,
        "tune": ["lr"],
        "seed": 2,
        "study": "s",
        "strategy": strategy,
    }
    first = adamtune.tune(objective, 8, confirm=2, confirm_top=2, **settings)
    assert first.confirmation is not None
    runs_before = [c.values for c in first.confirmation.trained]
    assert first.confirmation.outdated(8) is None and first.to_dict()["confirmation"]["after"] == 8
    unconfirmed = adamtune.tune(objective, 12, confirm=0, **settings)  # grown, not confirmed again
    stale = unconfirmed.confirmation
    assert stale is not None and [c.values for c in stale.trained] == runs_before
    assert stale.outdated(12) == (
        "this confirmation is of the study's first 8 trials, not of its 12: run the study's command "
        "again with --confirm N (N >= 1) to confirm the grown study"
    )
    assert "  note: this confirmation is of the study's first 8 trials" in stale.summary(None, 12)[-1]
    html = unconfirmed.report(tmp_path / "stale.html").read_text()
    assert (
        "<b>Note:</b> This confirmation is of the study" in html and "first 8 trials, not of its 12" in html
    )
    grown = adamtune.tune(objective, 12, confirm=2, confirm_top=2, **settings)
    backend = open_storage(journal)
    kept = optuna.load_study(study_name="s::confirm-after-8", storage=backend)
    assert kept.user_attrs["confirmation"]["after"] == 8
    assert [c.values for c in load_confirmation_of(kept, first)] == runs_before  # every earlier run kept
    confirmation = grown.confirmation
    assert confirmation is not None and confirmation.complete and confirmation.outdated(12) is None
    current = optuna.load_study(study_name="s::confirm", storage=backend)
    assert current.user_attrs["confirmation"]["after"] == 12
    best = grown.best
    assert best is not None and any(c.source == best.number for c in confirmation.trained)
    html = grown.report(tmp_path / "report.html").read_text()
    kept = "Confirmed before the budget was extended, and kept as Optuna studies: after 8 trials, "
    assert kept + "s::confirm-after-8." in html
    adamtune.tune(objective, 12, confirm=2, confirm_top=2, **settings)  # resumed: nothing to redo
    names = [summary.study_name for summary in optuna.get_all_study_summaries(backend)]
    assert sorted(n for n in names if "confirm" in n) == ["s::confirm", "s::confirm-after-8"]
    assert len(optuna.load_study(study_name="s::confirm", storage=backend).trials) == len(current.trials)


def load_confirmation_of(optuna_study: optuna.Study, study: adamtune.Study) -> list[ConfirmedConfig]:
    """The configurations of a confirmation study kept under another name."""
    from adamtune.confirmation import confirm_space, summarise
    from adamtune.records import record_from_trial

    frozen = optuna_study.get_trials(deepcopy=False)
    space = confirm_space(study.info.space)
    records = [record_from_trial(t, space) for t in frozen]
    settings = optuna_study.user_attrs["confirmation"]
    summary = summarise(
        records, {t.number: t.user_attrs for t in frozen}, study.info.direction, settings["seeds"]
    )
    return summary.trained


def test_every_run_of_a_campaign_has_its_own_name() -> None:
    # trial.number starts from 0 in each round and in the confirmation; trial.name does not.
    names: list[str] = []

    def objective(trial: adamtune.Trial) -> float:
        names.append(trial.name)
        return valley(1e-2)(trial)

    study = adamtune.tune(objective, 8, storage="memory", tune=["lr"], confirm=1)
    assert isinstance(study, Campaign) and [r.round for r in study.trials] == [0] * 4 + [1] * 4
    assert names[:8] == [f"round-{k // 4}-trial-{k % 4}" for k in range(8)]
    assert names[8:] == [f"confirm-trial-{k}" for k in range(4)]  # the 3 best and the baseline


def test_a_campaign_resumed_elsewhere_warns_once_and_its_new_rounds_record_where_they_ran(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    journal = str(tmp_path / "c.journal")
    with pytest.raises(KeyboardInterrupt):  # in the first round of 6
        campaign(_InterruptAt(valley(3e-4), 3), 12, tune=["lr"], storage=journal, study="c")
    first = adamtune.load_study("c", journal)
    assert isinstance(first, Campaign)
    planned = [r.index for r in first.rounds]  # (read now: a campaign reads its rounds live)
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(journal))
    # The campaign and its rounds, as if made elsewhere.
    for name in ["c", *(f"c::round-{index}" for index in planned)]:
        stored = optuna.load_study(study_name=name, storage=storage)
        info = stored.user_attrs["adamtune"]
        stored.set_user_attr("adamtune", {**info, "environment": {**info["environment"], "numpy": "1.0"}})

    with caplog.at_level(logging.WARNING, logger="adamtune"):
        study = campaign(valley(3e-4), 12, tune=["lr"], storage=journal, study="c")

    moved = [r.getMessage() for r in caplog.records if "another machine" in r.getMessage()]
    assert len(moved) == 1 and f"numpy 1.0 -> {np.__version__}" in moved[0]  # the user's study only
    assert len(study.rounds) > len(planned)
    new = optuna.load_study(study_name=f"c::round-{study.rounds[-1].index}", storage=storage)
    assert new.user_attrs["adamtune"]["environment"]["numpy"] == np.__version__
    assert adamtune.load_study("c", journal).info.environment["numpy"] == "1.0"
