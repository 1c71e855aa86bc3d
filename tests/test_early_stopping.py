"""Early stopping: the divergence guard, patience, the median rule and ASHA, in each executor."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path

import optuna
import pytest

import adamtune
from adamtune import State
from adamtune.trial import StopRules

# These tests are about one study searched quasi-randomly (the playbook strategy runs rounds of them).
quasi_random = functools.partial(adamtune.tune, strategy="quasi-random")


ADAMTUNE = str(Path(sys.executable).parent / "adamtune")


def curve_objective(
    curve_of: Callable[[int], Sequence[float]], metric: str = "val_loss"
) -> Callable[..., float]:
    """An objective reporting ``curve_of(trial.number)`` at steps 1, 2, ...; returns its best."""

    def objective(trial: adamtune.Trial) -> float:
        curve = list(curve_of(trial.number))
        for step, value in enumerate(curve, start=1):
            trial.report(step, **{metric: value})
        return min(curve)

    objective.__name__ = "curves"
    return objective


def by_number(study: adamtune.Study) -> dict[int, adamtune.TrialRecord]:
    return {r.number: r for r in study.trials}


def test_training_loss_far_above_its_first_value_is_divergence() -> None:
    rising = [1.0, 2.0, 5.0, 10.5, 20.0]
    study = quasi_random(
        curve_objective(lambda n: rising, metric="train_loss"), 1, storage="memory", metric="train_loss"
    )
    record = study.trials[0]
    assert record.state == State.INFEASIBLE
    assert record.reason == "train_loss 10.5 at step 4 is more than 10x its first value 1"
    assert [s for s, _ in record.curves["train_loss"]] == [1, 2, 3, 4]  # stopped there


def test_the_guard_leaves_validation_losses_alone_and_can_be_set_or_turned_off() -> None:
    overfitting = [1.0, 0.5, 3.0, 12.0]  # a validation loss may rise this far: not divergence
    study = quasi_random(curve_objective(lambda n: overfitting), 1, storage="memory")
    assert study.trials[0].state == State.COMPLETE and study.trials[0].value == 0.5

    rising = [1.0, 3.5]
    for factor, state in [(3.0, State.INFEASIBLE), (None, State.COMPLETE)]:
        study = quasi_random(
            curve_objective(lambda n: rising, metric="loss"),
            1,
            storage="memory",
            metric="loss",
            divergence_factor=factor,
        )
        assert study.trials[0].state == state


def test_patience_stops_a_trial_that_stopped_improving_and_keeps_its_best() -> None:
    curve = [5.0, 4.0, 3.0, 3.5, 3.2, 3.1, 2.0]
    study = quasi_random(curve_objective(lambda n: curve), 1, storage="memory", patience=3)
    record = study.trials[0]
    assert record.state == State.COMPLETE
    assert record.value == 3.0
    assert record.reason == "stopped at step 6: no improvement of val_loss for 3 reports (best 3 at step 3)"
    assert len(record.curves["val_loss"]) == 6


def test_the_objective_told_twice_at_a_step_is_one_report(recwarn: pytest.WarningsRecorder) -> None:
    # A program that prints its validation loss on both streams reports each value twice at
    # one step: patience counts evaluations, and Optuna is told each step once (it would warn
    # that it ignores the second).
    curve = [5.0, 4.0, 3.0, 3.5, 3.2, 3.1, 2.0]

    def twice(trial: adamtune.Trial) -> float:
        for step, value in enumerate(curve, start=1):
            trial.report(step, val_loss=value)
            trial.report(step, val_loss=value, train_loss=1.0)
        return min(curve)

    record = quasi_random(twice, 1, storage="memory", patience=3).trials[0]
    assert record.reason == "stopped at step 6: no improvement of val_loss for 3 reports (best 3 at step 3)"
    assert record.value == 3.0
    assert record.curves["val_loss"] == [[step, value] for step, value in enumerate(curve[:6], start=1)]
    assert not [w for w in recwarn if "already reported" in str(w.message)]


def test_median_rule_prunes_worse_than_median_curves_at_the_first_step() -> None:
    # Trials 0-4 run in full (startup); after that, odd trials are far worse than the median.
    def curve(n: int) -> list[float]:
        base = 10.0 if n >= 5 and n % 2 else 1.0
        return [base + 1 / step for step in range(1, 6)]

    study = quasi_random(curve_objective(curve), 10, storage="memory", pruner="median")
    records = by_number(study)
    pruned = sorted(n for n, r in records.items() if r.state == State.PRUNED)
    assert pruned == [5, 7, 9]
    for number in pruned:
        assert records[number].value == 11.0  # its best (only) value so far
        assert (records[number].reason or "").startswith("pruned at step 1")
    assert all(records[n].state == State.COMPLETE for n in (0, 1, 2, 3, 4, 6, 8))
    assert study.tally().results == 10  # pruned trials spend the budget


def test_asha_stops_most_trials_early_and_never_the_best() -> None:
    # Trial n's curve sits at level n % 7: the lowest levels should survive every rung.
    def curve(n: int) -> list[float]:
        return [float(n % 7) + 1 / step for step in range(1, 28)]

    study = quasi_random(curve_objective(curve), 21, storage="memory", pruner="asha")
    records = study.trials
    steps = sum(len(r.curves["val_loss"]) for r in records)
    assert steps <= 0.6 * 27 * 21
    assert all(r.state == State.COMPLETE for r in records if r.number % 7 == 0)
    pruned = [r for r in records if r.state == State.PRUNED]
    assert pruned
    for record in pruned:
        stopped = int(record.curves["val_loss"][-1][0])
        assert (record.reason or "").startswith(f"pruned at step {stopped} ")
    best = study.best
    assert best is not None and best.number % 7 == 0


def test_pruned_trials_are_stored_as_optuna_expects_and_exported() -> None:
    def curve(n: int) -> list[float]:
        return [(10.0 if n >= 5 else 1.0) + 1 / step for step in range(1, 4)]

    study = quasi_random(curve_objective(curve), 6, storage="memory", pruner="median")
    frozen = study.optuna.trials[5]
    assert frozen.state == optuna.trial.TrialState.PRUNED
    assert frozen.value == 11.0
    assert frozen.constraints == {"diverged": 0.0}
    exported = study.trials[5].to_dict(study.param_names)
    assert exported["state"] == "pruned" and exported["value"] == 11.0
    assert "pruned at step 1" in exported["reason"]


def test_bad_rules_are_refused() -> None:
    with pytest.raises(adamtune.ConfigError, match="divergence_factor: expected a number > 1"):
        StopRules(divergence_factor=1.0)
    with pytest.raises(adamtune.ConfigError, match="patience: expected a whole number"):
        StopRules(patience=0)
    with pytest.raises(adamtune.ConfigError, match="pruner: expected one of none, median, asha"):
        quasi_random(curve_objective(lambda n: [1.0]), 1, storage="memory", pruner="hyperband")  # type: ignore[arg-type]


SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    mode, trial = sys.argv[1], int(sys.argv[2])
    to_be_stopped = mode != "median" or (trial >= 5 and trial % 2 == 1)
    if mode == "diverge":
        curve = [("train_loss", v) for v in (1.0, 2.0, 15.0, 30.0)]
    elif mode == "patience":
        curve = [("val_loss", v) for v in (3.0, 2.0, 2.5, 2.6, 2.7, 1.0)]
    else:  # median: trials from 5 on with odd numbers are much worse
        level = 10.0 if to_be_stopped else 1.0
        curve = [("val_loss", level + 1 / s) for s in range(1, 5)]
    for step, (name, value) in enumerate(curve, start=1):
        print(json.dumps({"step": step, name: value}), flush=True)
        time.sleep(0.3)
    # A command the runner should end has seconds more to be ended, even on a loaded machine.
    time.sleep(3.0 if to_be_stopped else 0.0)
    with open(f"finished-{trial}", "w") as done:
        done.write("ran to the end")
    """
)


@pytest.mark.parametrize(
    ("mode", "args", "expected"),
    [
        (
            "diverge",
            ["--metric", "train_loss"],
            {0: (State.INFEASIBLE, "train_loss 15 at step 3 is more than 10x")},
        ),
        ("patience", ["--patience", "3"], {0: (State.COMPLETE, "stopped at step 5: no improvement")}),
        ("median", ["--pruner", "median"], {5: (State.PRUNED, "pruned at step 1"), 6: (State.COMPLETE, "")}),
    ],
)
def test_rules_end_external_commands(
    tmp_path: Path, mode: str, args: list[str], expected: dict[int, tuple[State, str]]
) -> None:
    (tmp_path / "train.py").write_text(SCRIPT)
    budget = "7" if mode == "median" else "1"
    result = subprocess.run(
        [
            ADAMTUNE,
            "run",
            "--strategy",
            "quasi-random",
            "--budget",
            budget,
            *args,
            "--",
            sys.executable,
            "train.py",
            mode,
            "{trial}",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    records = by_number(adamtune.load_study(None, str(tmp_path / "adamtune.journal")))
    for number, (state, reason) in expected.items():
        assert records[number].state == state
        assert reason in (records[number].reason or "")
        ran_to_end = (tmp_path / f"finished-{number}").exists()
        assert ran_to_end == (state == State.COMPLETE and not reason), "the runner must end stopped commands"
    exported = json.loads(
        subprocess.run([ADAMTUNE, "export"], cwd=tmp_path, capture_output=True, text=True).stdout
    )["trials"]
    assert {row["state"] for row in exported} <= {"complete", "infeasible", "pruned"}
