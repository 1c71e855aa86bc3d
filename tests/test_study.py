"""tune(): outcomes, budget, seeds, resume and what is stored for Optuna."""

from __future__ import annotations

import functools
import logging
import math
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest

import adamtune
from adamtune import Diverged, State, StudyMismatchError, TooManyFailuresError
from adamtune.allocation import POINT, RETRY_OF
from adamtune.study import trial_seed
from adamtune.testing import SyntheticObjective

# These tests are about one study searched quasi-randomly (the playbook strategy runs rounds of them).
quasi_random = functools.partial(adamtune.tune, strategy="quasi-random")


@pytest.fixture
def journal(tmp_path: Path) -> str:
    return str(tmp_path / "studies.journal")


def by_number(study: adamtune.Study) -> dict[int, adamtune.TrialRecord]:
    return {record.number: record for record in study.trials}


def test_complete_trials_record_value_seed_params_and_curves(journal: str) -> None:
    objective = SyntheticObjective(best_lr=3e-4)
    study = quasi_random(objective, 6, storage=journal, seed=7)

    assert len(study.trials) == 6
    for record in study.trials:
        assert record.state == State.COMPLETE
        assert record.adam is not None
        assert record.value == pytest.approx(objective.value(record.adam.lr, record.adam.beta1))
        assert record.seed == trial_seed(7, record.point or 0)
        assert record.point == record.number
        assert record.batch is None  # one after another: each trial's time is its own
        assert [step for step, _ in record.curves["val_loss"]] == [0, 1, 2, 3, 4]
        assert 1e-5 <= record.adam.lr <= 1e-3
        assert (record.adam.beta1, record.adam.beta2, record.adam.eps) == (0.9, 0.999, 1e-8)
    best = study.best
    assert best is not None
    assert best.value == min(r.value for r in study.trials if r.value is not None)


def test_seeds_are_distinct_and_fixed_by_study_seed_and_point() -> None:
    seeds = {trial_seed(0, point) for point in range(1000)}
    assert len(seeds) == 1000
    assert trial_seed(0, 5) == trial_seed(0, 5)
    assert trial_seed(0, 5) != trial_seed(1, 5)
    assert all(0 <= seed < 2**31 for seed in seeds)


@pytest.mark.parametrize(
    ("behaviour", "reason_part"),
    [
        ("return_nan", "returned nan"),
        ("return_inf", "returned inf"),
        ("report_nan", "val_loss was nan at step 2"),
        ("raise_diverged", "loss exploded"),
    ],
)
def test_divergence_is_infeasible_data_not_an_error(journal: str, behaviour: str, reason_part: str) -> None:
    def objective(trial: adamtune.Trial) -> float:
        if trial.number != 1:
            return 0.5
        trial.report(0, val_loss=2.0)
        trial.report(1, val_loss=1.5)
        if behaviour == "return_nan":
            return math.nan
        if behaviour == "return_inf":
            return math.inf
        if behaviour == "report_nan":
            trial.report(2, val_loss=math.nan)
        raise Diverged("loss exploded")

    study = quasi_random(objective, 3, storage=journal)

    records = by_number(study)
    assert records[1].state == State.INFEASIBLE
    assert reason_part in (records[1].reason or "")
    assert records[1].value is None
    assert [records[n].state for n in (0, 2)] == [State.COMPLETE, State.COMPLETE]
    # Stored the way Optuna's constrained samplers and plots understand (PLAYBOOK.md s. 7).
    frozen = study.optuna.trials
    assert frozen[1].state == optuna.trial.TrialState.COMPLETE
    assert frozen[1].constraints == {"diverged": 1.0}
    assert frozen[0].constraints == {"diverged": 0.0}
    assert math.isfinite(frozen[1].value)
    # The stand-in is the worst value seen (trial 0's 0.5, or the trial's own first report 2.0).
    assert frozen[1].value == 2.0
    assert study.best is not None and study.best.number in (0, 2)


def test_failed_trial_keeps_traceback_and_the_study_goes_on(journal: str) -> None:
    def objective(trial: adamtune.Trial) -> float:
        if trial.number == 1:
            raise KeyError("missing column")
        return trial.adam.lr

    study = quasi_random(objective, 3, storage=journal)

    records = by_number(study)
    assert records[1].state == State.FAILED
    assert "Traceback" in (records[1].reason or "")
    assert "KeyError: 'missing column'" in (records[1].reason or "")
    assert study.tally().results == 3  # failed trials do not spend the budget
    assert sorted(r.number for r in study.trials if r.state == State.COMPLETE) == [0, 2, 3]
    assert records[3].point == 3  # a failure keeps its point: the next trial takes a new one


def test_consecutive_failures_stop_the_study_and_keep_completed_trials(journal: str) -> None:
    calls = []

    def objective(trial: adamtune.Trial) -> float:
        calls.append(trial.number)
        if trial.number >= 2:
            raise RuntimeError("bug in the training loop")
        return 1.0

    with pytest.raises(TooManyFailuresError, match=r"5 trials in a row.*bug in the training loop"):
        quasi_random(objective, 20, storage=journal)
    assert calls == [0, 1, 2, 3, 4, 5, 6]

    with pytest.raises(TooManyFailuresError, match="2 trials in a row"):
        quasi_random(objective, 20, storage=journal, max_consecutive_failures=2)

    study = adamtune.load_study("objective", journal)
    assert [r.state for r in study.trials].count(State.COMPLETE) == 2
    assert [r.state for r in study.trials].count(State.FAILED) == 7


def test_a_run_of_failures_gives_its_points_back_so_the_fixed_program_runs_them(journal: str) -> None:
    broken = {"yes": True}

    def objective(trial: adamtune.Trial) -> float:
        if broken["yes"] and trial.number >= 2:
            raise ModuleNotFoundError("No module named 'torch'")
        return SyntheticObjective()(trial)

    with pytest.raises(TooManyFailuresError, match="their 5 configurations run again first"):
        quasi_random(objective, 8, storage=journal, study="fixed", tune=["lr", "beta1"])
    stopped = adamtune.load_study("fixed", journal)
    failed = [r for r in stopped.trials if r.state == State.FAILED]
    assert [r.point for r in failed] == [2, 3, 4, 5, 6] and all(r.given_back for r in failed)
    assert "(queued again)" in failed[0].reason_line(80)
    assert stopped.tally().failed == 0 and stopped.tally().given_back == 5

    broken["yes"] = False
    study = quasi_random(objective, 8, storage=journal, study="fixed", tune=["lr", "beta1"])
    clean = quasi_random(SyntheticObjective(), 8, storage=journal, study="clean", tune=["lr", "beta1"])

    # The same points, configurations and seeds as a study that never failed.
    done = sorted((r.point, r.adam, r.seed, r.value) for r in study.trials if r.state == State.COMPLETE)
    assert done == sorted((r.point, r.adam, r.seed, r.value) for r in clean.trials)
    assert study.tally().results == 8 and study.tally().failed == 0
    # The diagnostics count none of them as failures of their configurations.
    assert not [f for f in study.diagnostics() if f.check == "infeasible"]


def test_a_configuration_that_fails_again_keeps_its_failure_and_the_study_goes_on(journal: str) -> None:
    def objective(trial: adamtune.Trial) -> float:
        if trial.point in (2, 3):  # these configurations fail whatever is fixed
            raise ValueError("lr too large for this program")
        return trial.adam.lr

    with pytest.raises(TooManyFailuresError, match="their 2 configurations run again first"):
        quasi_random(objective, 6, storage=journal, max_consecutive_failures=2)
    first = {r.point for r in adamtune.load_study("objective", journal).trials if r.state == State.FAILED}

    message = r"all 2 had failed before and keep their failure; the next run goes on with new trials"
    with pytest.raises(TooManyFailuresError, match=message):
        quasi_random(objective, 6, storage=journal, max_consecutive_failures=2)

    study = quasi_random(objective, 6, storage=journal, max_consecutive_failures=20)
    assert study.tally().results == 6
    refailed = [r for r in study.trials if r.state == State.FAILED and not r.given_back]
    # Each of the two configurations ran twice, then kept its failure; the rest ran once.
    assert first == {2, 3} and sorted(r.point for r in refailed) == [2, 3]
    assert sorted(r.point for r in study.trials if r.state == State.COMPLETE) == [0, 1, 4, 5, 6, 7]
    assert study.tally().failed == 2 and study.tally().given_back == 2


def test_threads_stop_together_on_a_run_of_failures_and_run_the_first_points_again(journal: str) -> None:
    broken = {"yes": True}

    def objective(trial: adamtune.Trial) -> float:
        if broken["yes"]:
            time.sleep(0.05 * (trial.number % 3))  # the threads' runs of failures end apart
            raise OSError("disk full")
        return SyntheticObjective()(trial)

    with pytest.raises(TooManyFailuresError):
        quasi_random(objective, 3, storage=journal, workers=3, max_consecutive_failures=3)
    stopped = adamtune.load_study("objective", journal)
    assert len(stopped.trials) > 3  # failures spend no budget: they drew points past it
    assert stopped.tally().failed == 0 and stopped.tally().given_back == len(stopped.trials)

    broken["yes"] = False
    study = quasi_random(objective, 3, storage=journal, workers=3)
    # The sequence's first points, as an uninterrupted study's: given back in point order.
    assert sorted(r.point for r in study.trials if r.state == State.COMPLETE) == [0, 1, 2]


def test_a_worker_of_a_run_stopped_by_failures_stops_before_it_runs_the_points_given_back(
    journal: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from adamtune.workers import RUN_BEGAN_ENV

    broken = {"yes": True}

    def objective(trial: adamtune.Trial) -> float:
        if broken["yes"]:
            raise OSError("disk full")
        return SyntheticObjective()(trial)

    began = time.time()
    with pytest.raises(TooManyFailuresError, match="their 3 configurations run again first"):
        quasi_random(objective, 6, storage=journal, max_consecutive_failures=3)
    stopped = len(adamtune.load_study("objective", journal).trials)

    # A worker of that run (adamtune tune --workers) that starts only now: it runs none of them,
    # which would fail again and keep their failure, and the fixed program would skip them.
    monkeypatch.setenv(RUN_BEGAN_ENV, repr(began))
    with pytest.raises(TooManyFailuresError, match="another process running this study stopped it"):
        quasi_random(objective, 6, storage=journal, max_consecutive_failures=3)
    assert len(adamtune.load_study("objective", journal).trials) == stopped

    # The next run, the program fixed, begins after the stop: it goes on, from the first points.
    monkeypatch.delenv(RUN_BEGAN_ENV)
    broken["yes"] = False
    study = quasi_random(objective, 6, storage=journal)
    assert sorted(r.point for r in study.trials if r.state == State.COMPLETE) == [0, 1, 2, 3, 4, 5]
    assert study.tally().failed == 0


def test_dict_objective_names_the_metric_and_keeps_the_rest(journal: str) -> None:
    def objective(trial: adamtune.Trial) -> dict[str, Any]:
        trial.report(10, train_loss=0.9, val_loss=0.8)
        return {"val_loss": 0.7, "val_acc": 0.75}

    study = quasi_random(objective, 2, storage=journal)

    record = study.trials[0]
    assert record.value == 0.7
    assert record.metrics == {"train_loss": 0.9, "val_loss": 0.7, "val_acc": 0.75}


@pytest.mark.parametrize(
    ("returned", "reason_part"),
    [
        ({"loss": 1.0}, "no metric named 'val_loss' (it returned: loss)"),
        ("0.5", "must return a number or a dict"),
        (None, "must return a number or a dict"),
        ({"val_loss": "x"}, "metric 'val_loss': expected a number"),
    ],
)
def test_unusable_returns_fail_with_a_reason(journal: str, returned: Any, reason_part: str) -> None:
    with pytest.raises(TooManyFailuresError):
        quasi_random(lambda trial: returned, 1, storage=journal, study="s", max_consecutive_failures=2)

    failed = adamtune.load_study("s", journal).trials
    assert [r.state for r in failed] == [State.FAILED, State.FAILED]
    assert reason_part in (failed[0].reason or "")


def test_maximize_and_budget_is_exact(journal: str) -> None:
    study = quasi_random(
        lambda trial: -abs(math.log10(trial.adam.lr) + 4), 9, storage=journal, direction="maximize"
    )
    assert study.tally().results == 9
    best = study.best
    assert best is not None and best.value == max(r.value for r in study.trials if r.value is not None)


def test_resume_runs_only_what_is_missing_and_can_extend_the_budget(journal: str) -> None:
    objective = SyntheticObjective()
    first = quasi_random(objective, 4, storage=journal, tune=["lr", "beta1"])
    params_before = [r.adam for r in first.trials]

    again = quasi_random(objective, 4, storage=journal, tune=["lr", "beta1"])
    assert [r.adam for r in again.trials] == params_before

    extended = quasi_random(objective, 7, storage=journal, tune=["lr", "beta1"])
    assert [r.point for r in extended.trials] == list(range(7))
    assert [r.adam for r in extended.trials][:4] == params_before
    assert extended.extended_from == 4 and extended.to_dict()["extensions"] == [{"from": 4, "to": 7}]

    # A budget below the results is refused, and changes neither the trials nor the budget.
    refused = "has 7 trials with a result: expected a budget of at least 7, got 5"
    with pytest.raises(StudyMismatchError, match=refused):
        quasi_random(objective, 5, storage=journal, tune=["lr", "beta1"])
    kept = adamtune.load_study("synthetic", journal)
    assert kept.budget == 7 and len(kept.trials) == 7 and kept.extended_from == 4


def test_changed_space_or_seed_is_refused_and_nothing_is_lost(journal: str) -> None:
    objective = SyntheticObjective()
    quasi_random(objective, 3, storage=journal, seed=1)

    with pytest.raises(StudyMismatchError, match=r"lr range 1e-05:0.001 vs 1e-05:0.1"):
        quasi_random(objective, 3, storage=journal, seed=1, ranges={"lr": (1e-5, 1e-1)})
    with pytest.raises(StudyMismatchError, match="seed 1 vs 2"):
        quasi_random(objective, 3, storage=journal, seed=2)
    assert len(adamtune.load_study("synthetic", journal).trials) == 3
    # A smaller budget whose tier tunes another set: the study's own set is the way to resume it.
    quasi_random(objective, 10, storage=journal, seed=1, study="tiered")  # lr and beta1
    with pytest.raises(StudyMismatchError, match="pass --tune lr,beta1 to resume this study"):
        quasi_random(objective, 8, storage=journal, seed=1, study="tiered")  # the tiers: lr alone


@pytest.mark.parametrize("strategy", ["quasi-random", "playbook"])
def test_a_study_extended_past_a_tier_keeps_what_it_tunes(
    journal: str, strategy: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings: dict[str, Any] = {"storage": journal, "seed": 1, "strategy": strategy, "confirm": 0}
    first = adamtune.tune(SyntheticObjective(), 8, **settings)  # below 10 trials: lr alone
    with caplog.at_level(logging.WARNING, logger="adamtune"):
        grown = adamtune.tune(SyntheticObjective(), 12, **settings)  # the tiers would add beta1
    assert grown.space.tuned == first.space.tuned == ("lr",) and grown.tally().results == 12
    assert grown.info.tiers == first.info.tiers
    assert {r.adam.beta1 for r in grown.trials if r.adam is not None} == {0.9}
    assert (
        "study 'synthetic' keeps the hyperparameters it was planned with (lr): a budget of 12 alone "
        "would tune lr, beta1 (the tiers); give another --study name to tune those"
    ) in caplog.text
    # The same command again (the stored budget is now 12) reruns the finished extension ...
    assert adamtune.tune(SyntheticObjective(), 12, **settings).tally().results == 12
    # ... and resumes an interrupted one, still tuning what the study was planned with.
    with pytest.raises(KeyboardInterrupt):
        adamtune.tune(InterruptedAfter(2), 16, **settings)
    assert adamtune.load_study("synthetic", journal).tally().results == 14
    resumed = adamtune.tune(SyntheticObjective(), 16, **settings)
    assert resumed.space.tuned == ("lr",) and resumed.tally().results == 16


@dataclass
class InterruptedAfter:
    """The synthetic objective, interrupted (as by Ctrl-C) on its call after ``calls`` calls."""

    calls: int

    @property
    def __name__(self) -> str:
        return "synthetic"

    def __call__(self, trial: adamtune.Trial) -> float:
        if self.calls == 0:
            raise KeyboardInterrupt
        self.calls -= 1
        return SyntheticObjective()(trial)


def test_interrupt_gives_the_point_back_and_resume_reruns_it(journal: str) -> None:
    def objective(trial: adamtune.Trial) -> float:
        if trial.number == 2:
            raise KeyboardInterrupt
        return trial.adam.lr

    with pytest.raises(KeyboardInterrupt):
        quasi_random(objective, 5, storage=journal)

    interrupted = adamtune.load_study("objective", journal)
    records = by_number(interrupted)
    assert records[2].state == State.FAILED
    assert records[2].reason == "interrupted before it finished"
    assert len(interrupted.trials) == 3  # the retry waits in the queue, not yet a trial

    study = quasi_random(lambda trial: trial.adam.lr, 5, storage=journal, study="objective")
    finished = [r for r in study.trials if r.state == State.COMPLETE]
    assert sorted(r.point for r in finished) == [0, 1, 2, 3, 4]
    retry = next(r for r in finished if r.point == 2)
    assert retry.number == 3
    assert retry.adam == records[2].adam and retry.seed == records[2].seed
    frozen = study.optuna.trials[3]
    assert frozen.user_attrs[POINT] == 2 and frozen.user_attrs[RETRY_OF] == 2
    # After the retry, fresh trials continue the sequence where it stopped.
    assert by_number(study)[4].point == 3


def test_load_studies_opens_every_study_and_marks_the_plain_optuna_ones(journal: str) -> None:
    quasi_random(SyntheticObjective(), 3, storage=journal, seed=1, study="first")
    adamtune.tune(SyntheticObjective(), 4, storage=journal, seed=2, study="rounds", confirm=0)
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(journal))
    optuna.create_study(study_name="plain", storage=storage)

    found = adamtune.load_studies(journal)
    assert list(found) == ["first", "rounds", "plain"]  # a campaign's rounds are not listed
    first, rounds, plain = found.values()
    assert first is not None and [r.number for r in first.trials] == [0, 1, 2]
    exported = first.to_dict()
    assert exported["launch"] is None  # started from Python, not by a command
    assert [row["point"] for row in exported["trials"]] == [0, 1, 2]
    assert rounds is not None and rounds.strategy == "playbook" and len(rounds.trials) == 4
    assert plain is None


def test_delete_study_removes_a_campaign_with_its_parts_and_nothing_else(journal: str) -> None:
    adamtune.tune(SyntheticObjective(), 4, storage=journal, seed=2, study="rounds", confirm=2)
    quasi_random(SyntheticObjective(), 3, storage=journal, seed=1, study="rounds-2")
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(journal))
    before = {summary.study_name for summary in optuna.get_all_study_summaries(storage)}
    assert {"rounds::round-0", "rounds::confirm"} <= before

    deleted = adamtune.delete_study("rounds", journal)
    assert deleted[-1] == "rounds" and set(deleted) == {
        name for name in before if name.startswith("rounds")
    } - {"rounds-2"}
    assert list(adamtune.load_studies(journal)) == ["rounds-2"]
    with pytest.raises(adamtune.StudyNotFoundError, match="no study named 'rounds'"):
        adamtune.delete_study("rounds", journal)


def test_copy_study_moves_a_campaign_whole_and_it_resumes_there(journal: str, tmp_path: Path) -> None:
    original = adamtune.tune(SyntheticObjective(), 4, storage=journal, seed=2, study="rounds", confirm=2)
    target = str(tmp_path / "elsewhere.journal")

    copied = adamtune.copy_study("rounds", journal, target)
    assert copied[-1] == "rounds" and {"rounds::round-0", "rounds::confirm"} <= set(copied)
    moved = adamtune.load_study("rounds", target)
    assert moved.to_dict() == original.to_dict()  # settings, trials, curves, confirmation alike
    resumed = adamtune.tune(SyntheticObjective(), 4, storage=target, seed=2, study="rounds", confirm=2)
    assert [r.to_dict(resumed.param_names) for r in resumed.trials] == [
        r.to_dict(original.param_names) for r in original.trials
    ]

    with pytest.raises(adamtune.StudyMismatchError, match="without a study named 'rounds'"):
        adamtune.copy_study("rounds", journal, target)
    with pytest.raises(adamtune.ConfigError, match="outlives this process"):
        adamtune.copy_study("rounds", journal, "memory")


def test_a_copy_under_a_new_name_is_a_branch_that_grows_on_its_own(journal: str) -> None:
    settings: dict[str, Any] = {"storage": journal, "seed": 2, "tune": ["lr"], "confirm": 2}
    original = adamtune.tune(SyntheticObjective(), 8, study="base", **settings)
    before = original.to_dict()
    copied = adamtune.copy_study("base", journal, new_name="branch")
    assert copied[-1] == "branch" and {"branch::round-0", "branch::confirm"} <= set(copied)
    branch = adamtune.load_study("branch", journal)
    assert {**branch.to_dict(), "name": "base"} == before  # the same settings, trials and confirmation
    grown = adamtune.tune(SyntheticObjective(), 12, study="branch", **settings)
    assert grown.tally().results == 12 and len(grown.rounds) > len(original.rounds)  # type: ignore[attr-defined]
    assert adamtune.load_study("base", journal).to_dict() == before  # the original is untouched
    assert list(adamtune.load_studies(journal)) == ["base", "branch"]
    with pytest.raises(adamtune.StudyMismatchError, match="give the copy another name"):
        adamtune.copy_study("base", journal)  # the same storage, the same name
    with pytest.raises(adamtune.ConfigError, match="study name: expected a name without '::'"):
        adamtune.copy_study("base", journal, new_name="base::x")


def test_copy_study_refuses_a_study_with_running_trials(journal: str, tmp_path: Path) -> None:
    study = quasi_random(SyntheticObjective(), 3, storage=journal, study="busy")
    study.optuna.ask()  # a worker's trial, still running
    with pytest.raises(adamtune.ConfigError, match="expected no running trials to copy, got 1"):
        adamtune.copy_study("busy", journal, str(tmp_path / "elsewhere.journal"))
    assert not (tmp_path / "elsewhere.journal").exists()


def test_a_study_deleted_while_it_runs_ends_the_run_with_one_clear_error(journal: str) -> None:
    synthetic = SyntheticObjective()

    def objective(trial: adamtune.Trial) -> float:
        if trial.number == 2:
            adamtune.delete_study("doomed", journal)  # as another process would
        return synthetic(trial)

    with pytest.raises(adamtune.StudyNotFoundError, match="'doomed' was deleted from the storage while"):
        adamtune.tune(objective, 12, storage=journal, study="doomed")
    assert adamtune.load_studies(journal) == {}


def test_a_study_name_with_the_parts_mark_is_refused_before_anything_is_stored(journal: str) -> None:
    with pytest.raises(adamtune.ConfigError, match="without '::'"):
        quasi_random(SyntheticObjective(), 3, storage=journal, study="x::round-0")
    assert not Path(journal).exists()


def test_study_is_plain_optuna(journal: str) -> None:
    quasi_random(SyntheticObjective(), 12, storage=journal, seed=3)

    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(journal))
    loaded = optuna.load_study(study_name="synthetic", storage=storage)
    assert len(loaded.trials) == 12
    assert set(loaded.best_trial.params) == {"lr", "one_minus_beta1"}
    info = loaded.user_attrs["adamtune"]
    assert info["seed"] == 3
    assert info["tiers"]["tuned"] == ["lr", "beta1"]
    assert "budget 12" in info["tiers"]["reason"]
    assert info["space"]["specs"][0] == {
        "name": "lr",
        "low": 1e-5,
        "high": 1e-3,
        "scale": "log",
        "fixed": None,
    }
    assert info["version"] == adamtune.__version__
    assert info["environment"]["optuna"] == optuna.__version__
    assert info["environment"]["python"] == platform.python_version()
    assert info["environment"]["numpy"] == np.__version__
    assert loaded.user_attrs["budget"] == 12
    # Beta values are what users see; Optuna holds 1 - beta on a log scale.
    trial = loaded.trials[0]
    assert trial.user_attrs["adam"]["beta1"] == pytest.approx(1 - trial.params["one_minus_beta1"])


def test_bad_settings_are_refused_before_anything_is_stored(tmp_path: Path) -> None:
    journal = str(tmp_path / "s.journal")
    objective = SyntheticObjective()
    for kwargs, message in [
        ({"seed": -1}, "seed: expected a whole number >= 0"),
        ({"direction": "up"}, "direction: expected minimize or maximize"),
        ({"metric": ""}, "metric: expected a metric name"),
        ({"max_consecutive_failures": 0}, "max_consecutive_failures"),
        ({"ranges": {"lr": (1e-3, 1e-5)}}, "expected low < high"),
        ({"fixed": {"nope": 1.0}}, "unknown hyperparameter 'nope'"),
        ({"tune": ["beta1"]}, "tune: expected lr among the tuned"),
        ({"study": " "}, "study name"),
    ]:
        with pytest.raises(adamtune.ConfigError, match=message):
            quasi_random(objective, 5, storage=journal, **kwargs)
    with pytest.raises(adamtune.ConfigError, match="budget: expected a whole number"):
        quasi_random(objective, 0, storage=journal)
    assert not Path(journal).exists()


def test_fixed_lr_allows_tuning_other_hyperparameters_alone(journal: str) -> None:
    study = quasi_random(SyntheticObjective(), 4, storage=journal, tune=["eps"], fixed={"lr": 2e-3})
    for record in study.trials:
        assert record.adam is not None
        assert record.adam.lr == 2e-3
        assert 1e-8 <= record.adam.eps <= 1e-6


def _storage(journal: str) -> optuna.storages.JournalStorage:
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(journal))


def test_a_study_resumed_elsewhere_says_so_and_keeps_where_it_was_created(
    journal: str, caplog: pytest.LogCaptureFixture
) -> None:
    objective = SyntheticObjective()
    quasi_random(objective, 4, storage=journal, seed=1)
    loaded = optuna.load_study(study_name="synthetic", storage=_storage(journal))
    info = loaded.user_attrs["adamtune"]
    info["environment"] = {**info["environment"], "optuna": "4.0.0", "machine": "riscv64 elsewhere"}
    loaded.set_user_attr("adamtune", info)

    with caplog.at_level(logging.WARNING, logger="adamtune"):
        study = quasi_random(objective, 6, storage=journal, seed=1)

    assert len(study.trials) == 6
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert f"optuna 4.0.0 -> {optuna.__version__}" in warnings[0]
    assert "machine riscv64 elsewhere -> " in warnings[0]
    assert study.info.environment["optuna"] == "4.0.0"  # where it was created, not where it is now
    assert adamtune.load_study("synthetic", journal).info.environment["machine"] == "riscv64 elsewhere"


def test_a_study_resumed_where_it_was_created_or_from_before_environments_is_quiet(
    journal: str, caplog: pytest.LogCaptureFixture
) -> None:
    objective = SyntheticObjective()
    quasi_random(objective, 4, storage=journal, seed=1)
    with caplog.at_level(logging.WARNING, logger="adamtune"):
        quasi_random(objective, 5, storage=journal, seed=1)
    loaded = optuna.load_study(study_name="synthetic", storage=_storage(journal))
    info = loaded.user_attrs["adamtune"]
    del info["environment"]  # as stored by adamtune before it recorded one
    loaded.set_user_attr("adamtune", info)
    with caplog.at_level(logging.WARNING, logger="adamtune"):
        study = quasi_random(objective, 6, storage=journal, seed=1)

    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(study.trials) == 6
    assert adamtune.load_study("synthetic", journal).info.environment == {}


def test_progress_true_draws_the_command_lines_bar_and_notes(capsys: pytest.CaptureFixture[str]) -> None:
    objective = SyntheticObjective(best_lr=3e-2)  # above the default range: round 1 expands it
    study = adamtune.tune(objective, 4, tune=["lr"], storage="memory", confirm=1, progress=True)
    err = capsys.readouterr().err
    assert "round 0: explore, 3 trials, lr 1e-05..0.001" in err
    assert "round 1: explore, 1 trial, lr " in err
    assert "confirming: the best configurations and the baseline on fresh seeds (4 runs)" in err
    assert study.best is not None and study.best.value is not None
    assert f"best val_loss {study.best.value:.4g}" in err  # the bar, as it stopped
    adamtune.tune(objective, 4, tune=["lr"], storage="memory", confirm=0, progress=False)
    assert capsys.readouterr().err == ""  # the default: a library call draws nothing
