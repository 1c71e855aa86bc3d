"""The command line, run as a real process: a real study, resume, reading back, and bad input.

Every user mistake must give exit code 2 and one line on standard error starting with
``error:``, never a traceback (unless ``--debug``).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import pytest

from adamtune import AdamConfig, StudyInfo, tune
from adamtune.choice import TOP
from adamtune.cli import main
from adamtune.testing import SyntheticObjective

ADAMTUNE = Path(sys.executable).parent / "adamtune"
JOURNAL = "adamtune.journal"
DEMO = ("demo", "--budget", "3", "--steps", "300")
DEMO_STUDY = "demo-mnist1d-mlp"
# The demo is a playbook campaign: its trials have a round.
CSV_COLUMNS = ["number", "round", "state", "value", "lr", "beta1", "beta2", "eps"]
CSV_COLUMNS += ["seed", "reason", "duration_s"]

OBJECTIVES = """\
import math


def objective(trial):
    value = (math.log10(trial.adam.lr) + 4) ** 2
    trial.report(0, val_loss=value)
    return value


def broken(trial):
    raise RuntimeError("the objective is broken on purpose")


def _helper():
    return None
"""

MODULE_NAME = "adamtune_cli_test_objectives"


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str


def adamtune(cwd: Path, *args: str, timeout: float = 180, answer: str = "") -> Result:
    """Run the installed ``adamtune`` console script in ``cwd``, ``answer`` on its standard input."""
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("PYTHONPATH", None)  # a module target must be found through the working directory
    done = subprocess.run(
        [str(ADAMTUNE), *args],
        cwd=cwd,
        env=env,
        input=answer,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def ok(cwd: Path, *args: str, answer: str = "") -> Result:
    result = adamtune(cwd, *args, answer=answer)
    assert result.returncode == 0, f"adamtune {' '.join(args)}: {result.stderr}"
    assert "Traceback" not in result.stderr
    return result


def user_error(result: Result) -> str:
    """Assert the shape of a user mistake and return its one line."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:"), lines[0]
    return lines[0]


def export_study(cwd: Path, *args: str) -> dict[str, Any]:
    body = json.loads(ok(cwd, "export", "--format", "json", *args).stdout)
    assert isinstance(body, dict)
    return body


def export_json(cwd: Path, *args: str) -> list[dict[str, Any]]:
    rows = export_study(cwd, *args)["trials"]
    assert isinstance(rows, list)
    return rows


def write_objectives(directory: Path) -> Path:
    path = directory / "objectives.py"
    path.write_text(OBJECTIVES, encoding="utf-8")
    return path


def copy_study(source: Path, target: Path) -> Path:
    shutil.copy2(source / JOURNAL, target / JOURNAL)
    return target


@dataclass(frozen=True)
class Demo:
    directory: Path
    result: Result
    trials: list[dict[str, Any]]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """A real 3-trial MNIST-1D study, run once; tests only read it (or copy it)."""
    directory = tmp_path_factory.mktemp("demo")
    result = ok(directory, *DEMO)
    return Demo(directory, result, export_json(directory))


@dataclass(frozen=True)
class Tuned:
    directory: Path
    file_run: Result
    module_run: Result


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory) -> Tuned:
    """Two studies of a pure-Python objective: one from a file target, one from a module."""
    directory = tmp_path_factory.mktemp("tune")
    write_objectives(directory)
    (directory / f"{MODULE_NAME}.py").write_text(OBJECTIVES, encoding="utf-8")
    file_run = ok(directory, "tune", "objectives.py:objective", "--budget", "4", "--study", "s1")
    module_run = ok(directory, "tune", f"{MODULE_NAME}:objective", "--budget", "2")
    return Tuned(directory, file_run, module_run)


@dataclass(frozen=True)
class Broken:
    directory: Path
    result: Result


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> Broken:
    """A study whose objective always raises, stopped by the failure limit."""
    directory = tmp_path_factory.mktemp("broken")
    write_objectives(directory)
    return Broken(directory, adamtune(directory, "tune", "objectives.py:broken", "--budget", "10"))


# A real study, end to end


@pytest.mark.slow
def test_demo_trains_and_reports_the_best_trial(demo: Demo) -> None:
    stdout = demo.result.stdout
    assert f"3 trials with a result (0 failed) in study {DEMO_STUDY}" in stdout
    assert re.search(r"^best val_error \d", stdout, re.MULTILINE)
    accuracy = re.search(r"best validation accuracy during training (\d+\.\d)% \(trial (\d+)\)", stdout)
    assert accuracy is not None, stdout

    best = min(demo.trials, key=lambda row: row["value"])
    assert int(accuracy.group(2)) == best["number"]
    assert float(accuracy.group(1)) == pytest.approx(100 * best["metrics"]["max_val_acc"], abs=0.051)
    # Real training: the best model does much better than chance (90% error on 10 classes).
    assert best["value"] < 0.8
    assert best["value"] == pytest.approx(1 - best["metrics"]["max_val_acc"])
    assert "budget 3" in demo.result.stderr
    assert "tune lr" in demo.result.stderr


@pytest.mark.slow
def test_export_json_has_every_trial_with_the_budget_tuning_only_lr(demo: Demo) -> None:
    rows = demo.trials
    assert [row["number"] for row in rows] == [0, 1, 2]
    for row in rows:
        assert set(row) == {
            "number",
            "round",
            "state",
            "value",
            "params",
            "seed",
            "reason",
            "metrics",
            "duration_s",
            "point",
            "batch",
            "given_back",
            "curves",
            "logs",
        }
        assert row["state"] == "complete" and row["given_back"] is False
        assert row["reason"] is None
        assert set(row["params"]) == {"lr", "beta1", "beta2", "eps"}
        params = row["params"]
        assert (params["beta1"], params["beta2"], params["eps"]) == (0.9, 0.999, 1e-8)
        assert 1e-5 <= params["lr"] <= 1e-3
        assert {"val_loss", "val_acc", "val_error", "max_val_acc"} <= set(row["metrics"])
        assert row["metrics"]["val_error"] == row["value"]
        assert 0.0 <= row["metrics"]["val_acc"] <= row["metrics"]["max_val_acc"] <= 1.0
        assert math.isfinite(row["value"])
        assert isinstance(row["seed"], int)
        assert row["duration_s"] > 0
    assert len({row["params"]["lr"] for row in rows}) == 3
    assert len({row["seed"] for row in rows}) == 3
    # Exploration's sequence points, one each; the objective is the curve's best validation error.
    assert sorted(row["point"] for row in rows) == [0, 1, 2]
    assert [row["batch"] for row in rows] == [3, 3, 3]  # the demo trains a round's trials together
    for row in rows:
        steps = [step for step, _ in row["curves"]["val_error"]]
        assert steps == sorted(steps) and steps[-1] == 300
        assert min(value for _, value in row["curves"]["val_error"]) == pytest.approx(row["value"])


@pytest.mark.slow
def test_export_json_records_what_the_study_was_created_with(demo: Demo) -> None:
    body = export_study(demo.directory)
    assert (body["name"], body["strategy"], body["budget"]) == (DEMO_STUDY, "playbook", 3)
    assert (body["seed"], body["metric"], body["direction"]) == (0, "val_error", "minimize")
    assert body["tiers"]["tuned"] == ["lr"] and "budget 3" in body["tiers"]["reason"]
    assert {"python", "adamtune", "optuna", "torch", "machine", "cpus"} <= set(body["environment"])
    launch = body["launch"]  # what `adamtune worker` rebuilds the objective from
    assert (launch["kind"], launch["model"], launch["steps"], launch["budget"]) == ("demo", "mlp", 300, 3)
    # The settings read back as the study's own, so the study can be set up again from the file.
    settings = StudyInfo.from_dict(body)
    assert settings.space.tuned == ("lr",) and settings.space.spec("lr").high == 1e-3
    assert settings.environment == body["environment"]
    assert [r["index"] for r in body["rounds"]] == sorted({row["round"] for row in body["trials"]})
    assert sum(r["budget"] for r in body["rounds"]) == 3
    best = json.loads(ok(demo.directory, "best", "--format", "json").stdout)
    assert body["recommended"] == best["recommended"]
    assert body["confirmation"] == best["confirmation"]
    assert body["trials"] == demo.trials


@pytest.mark.slow
def test_trials_lists_the_three_trials(demo: Demo) -> None:
    stdout = ok(demo.directory, "trials").stdout
    assert f"{DEMO_STUDY}: 3 trials" in stdout
    assert stdout.count("complete") == 3
    assert stdout.count("s, batch of 3") == 3  # the time is the batch's, and says so
    for row in demo.trials:
        assert str(row["seed"]) in stdout


@pytest.mark.slow
def test_best_json_is_the_lowest_loss_trial(demo: Demo) -> None:
    body = json.loads(ok(demo.directory, "best", "--format", "json").stdout)
    assert set(body) == {
        "number",
        "value",
        "params",
        "seed",
        "round",
        "recommended",
        "confirmation",
        "adopt",
        "use",
    }
    assert set(body["params"]) == {"lr", "beta1", "beta2", "eps"}
    best = min(demo.trials, key=lambda row: row["value"])
    assert {key: body[key] for key in ("number", "value", "params", "seed", "round")} == {
        key: best[key] for key in ("number", "value", "params", "seed", "round")
    }
    # The recommendation is one of the best few observed trials, and it is among those confirmed.
    recommended = body["recommended"]
    top = sorted(demo.trials, key=lambda row: (row["value"], row["number"]))[:TOP]
    assert recommended["number"] in {row["number"] for row in top}
    assert recommended["reason"] and set(recommended["params"]) == set(body["params"])
    # The playbook strategy confirmed 3 trials and Adam's defaults on 3 fresh seeds.
    labels = [config["label"] for config in body["confirmation"]["configs"]]
    assert [label[:2] for label in labels] == ["#1", "#2", "#3", "ba"]
    assert f"(trial {recommended['number']})" in " ".join(labels)
    assert all(len(config["values"]) == 3 for config in body["confirmation"]["configs"])
    # The one to use: the confirmation's winner where it is another trial, else the recommended.
    candidates = [c for c in body["confirmation"]["configs"] if c["role"] == "candidate"]
    winner = min(candidates, key=lambda config: config["mean"])["source"]
    why = "recommended" if winner == recommended["number"] else "confirmed best"
    assert (body["adopt"]["number"], body["adopt"]["why"]) == (winner, why)
    assert body["adopt"]["params"] == next(row["params"] for row in demo.trials if row["number"] == winner)
    assert body["use"] == AdamConfig(**body["adopt"]["params"]).torch_code()

    text = ok(demo.directory, "best", "--study", DEMO_STUDY).stdout
    assert f"(trial {best['number']}, round {best['round']}, seed {best['seed']})" in text
    assert "\nconfirmation on 3 seeds: the winner #" in text  # the verdict, as the report states it
    # Last, the trial to adopt as code to paste, in full precision.
    adopted = next(row["params"] for row in demo.trials if row["number"] == winner)
    use = f"train with trial {winner}: {AdamConfig(**adopted).torch_code()}"
    assert text.splitlines()[-1] == use
    assert demo.result.stdout.splitlines()[-3] == use  # the demo's summary ends with it too


@pytest.mark.slow
def test_export_csv_matches_the_json_export(demo: Demo) -> None:
    text = ok(demo.directory, "export", "--format", "csv").stdout
    rows = list(csv.reader(io.StringIO(text)))
    header, data = rows[0], rows[1:]
    assert header[: len(CSV_COLUMNS)] == CSV_COLUMNS
    assert {"metric_val_loss", "metric_val_acc"} <= set(header[len(CSV_COLUMNS) :])
    assert len(data) == 3
    for row, expected in zip(data, demo.trials, strict=True):
        values = dict(zip(header, row, strict=True))
        assert int(values["number"]) == expected["number"]
        assert int(values["round"]) == expected["round"] == 0
        assert values["state"] == "complete"
        assert float(values["value"]) == expected["value"]
        assert float(values["lr"]) == expected["params"]["lr"]
        assert (float(values["beta1"]), float(values["beta2"]), float(values["eps"])) == (0.9, 0.999, 1e-8)
        assert int(values["seed"]) == expected["seed"]
        assert float(values["metric_val_acc"]) == expected["metrics"]["val_acc"]


def test_export_csv_of_a_one_study_search_has_no_round_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = str(tmp_path / "s.journal")
    tune(SyntheticObjective(best_lr=1e-3), 3, strategy="quasi-random", storage=journal)
    main(["export", "--format", "csv", "--storage", journal])
    header, *data = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert header[:4] == ["number", "state", "value", "lr"] and len(data) == 3


@pytest.mark.slow
def test_export_output_writes_the_file(demo: Demo, tmp_path: Path) -> None:
    out_json = tmp_path / "trials.json"
    result = ok(demo.directory, "export", "--output", str(out_json))
    assert result.stdout == ""
    assert f"wrote 3 trials to {out_json}" in result.stderr
    assert json.loads(out_json.read_text(encoding="utf-8"))["trials"] == demo.trials

    out_csv = tmp_path / "trials.csv"
    ok(demo.directory, "export", "--format", "csv", "-o", str(out_csv))
    rows = list(csv.reader(io.StringIO(out_csv.read_text(encoding="utf-8"))))
    assert rows[0][: len(CSV_COLUMNS)] == CSV_COLUMNS
    assert len(rows) == 4


@pytest.mark.slow
def test_rerunning_the_demo_resumes_without_new_trials(demo: Demo, tmp_path: Path) -> None:
    copy_study(demo.directory, tmp_path)
    result = ok(tmp_path, *DEMO)
    assert "resuming: 3 of 3 trials already finished" in result.stderr
    assert "3 trials with a result (0 failed)" in result.stdout
    assert export_json(tmp_path) == demo.trials


@pytest.mark.slow
def test_a_worker_joins_the_demo_study_in_the_storage_it_names(demo: Demo, tmp_path: Path) -> None:
    # The demo's launch spec once held its creator's storage, and a worker crashed on it.
    moved = tmp_path / "moved.journal"
    shutil.copy2(demo.directory / JOURNAL, moved)
    result = ok(tmp_path, "worker", "--study", DEMO_STUDY, "--storage", str(moved))
    assert "resuming: 3 of 3 trials already finished" in result.stderr
    assert export_json(tmp_path, "--storage", str(moved)) == demo.trials
    assert "storage" not in export_study(tmp_path, "--storage", str(moved))["launch"]["options"]
    assert not (tmp_path / JOURNAL).exists()


@pytest.mark.slow
def test_changed_space_for_an_existing_study_is_refused_and_keeps_its_trials(
    demo: Demo, tmp_path: Path
) -> None:
    copy_study(demo.directory, tmp_path)
    line = user_error(adamtune(tmp_path, *DEMO, "--range", "lr=1e-5:1e-1"))
    assert f"study '{DEMO_STUDY}' exists with other settings" in line
    assert "lr range" in line
    assert export_json(tmp_path) == demo.trials


@pytest.mark.slow
def test_the_language_model_demo_tunes_the_byte_transformer_on_its_loss(tmp_path: Path) -> None:
    result = ok(tmp_path, "demo", "--model", "lm", "--budget", "3", "--steps", "30", "--confirm", "0")
    assert "3 trials with a result (0 failed) in study demo-stdlib-lm" in result.stdout
    printed = re.search(
        r"best validation loss during training (\d\.\d{3}) nats per byte "
        r"\((\d\.\d{3}) bits\) \(trial (\d+)\)",
        result.stdout,
    )
    assert printed is not None, result.stdout
    body = export_study(tmp_path)
    best = min(body["trials"], key=lambda row: row["value"])
    assert int(printed.group(3)) == best["number"]
    assert float(printed.group(1)) == pytest.approx(best["value"], abs=5e-4)
    assert float(printed.group(2)) == pytest.approx(best["value"] / math.log(2), abs=5e-4)
    # Real training: 30 steps already predict bytes better than an untrained model (ln 256).
    assert best["value"] == best["metrics"]["val_loss"] < math.log(256) - 0.5
    launch = body["launch"]
    assert (launch["kind"], launch["model"], launch["steps"]) == ("demo", "lm", 30)
    assert (launch["options"]["metric"], launch["options"]["executor"]) == ("val_loss", "in-process")
    # A worker rebuilds the same workload from the launch spec: nothing is left to run.
    joined = ok(tmp_path, "worker", "--study", "demo-stdlib-lm")
    assert "resuming: 3 of 3 trials already finished" in joined.stderr


def test_the_language_model_demo_refuses_the_batched_executor_before_creating_a_study(
    tmp_path: Path,
) -> None:
    line = user_error(adamtune(tmp_path, "demo", "--model", "lm", "--executor", "batched"))
    assert line == (
        "error: --executor batched: expected --model mlp or cnn, got lm (the language model trains "
        "one trial after another: it has no batched form)"
    )
    assert not (tmp_path / JOURNAL).exists()


@pytest.mark.slow
def test_best_with_an_unknown_study_lists_the_existing_ones(demo: Demo) -> None:
    line = user_error(adamtune(demo.directory, "best", "--study", "nope"))
    assert "'nope'" in line
    assert DEMO_STUDY in line


# tune TARGET


def test_tune_file_target_runs_the_budget(tuned: Tuned) -> None:
    assert "4 trials with a result (0 failed) in study s1" in tuned.file_run.stdout
    assert "best val_loss" in tuned.file_run.stdout
    rows = export_json(tuned.directory, "--study", "s1")
    assert len(rows) == 4
    for row in rows:
        assert row["state"] == "complete"
        expected = (math.log10(row["params"]["lr"]) + 4) ** 2
        assert row["value"] == pytest.approx(expected)
        assert row["metrics"]["val_loss"] == pytest.approx(expected)
    best = json.loads(ok(tuned.directory, "best", "--study", "s1", "--format", "json").stdout)
    assert best["value"] == min(row["value"] for row in rows)


def test_tune_module_target_names_the_study_after_the_function(tuned: Tuned) -> None:
    assert "2 trials with a result (0 failed) in study objective" in tuned.module_run.stdout
    rows = export_json(tuned.directory, "--study", "objective")
    assert [row["state"] for row in rows] == ["complete", "complete"]
    for row in rows:
        assert row["value"] == pytest.approx((math.log10(row["params"]["lr"]) + 4) ** 2)


def test_studies_lists_each_study_with_its_trials_best_and_trial_to_adopt(tuned: Tuned) -> None:
    rows = json.loads(ok(tuned.directory, "studies", "--format", "json").stdout)
    assert [row["name"] for row in rows] == ["s1", "objective"]
    for row, budget in zip(rows, (4, 2), strict=True):
        trials = export_json(tuned.directory, "--study", row["name"])
        assert (row["budget"], row["results"], row["running"], row["failed"]) == (budget, budget, 0, 0)
        assert (row["strategy"], row["metric"], row["direction"]) == ("playbook", "val_loss", "minimize")
        assert row["best"] == min(trial["value"] for trial in trials)
        assert row["recommended"]["number"] in {trial["number"] for trial in trials}
        assert row["recommended"]["config"].startswith("lr=")
        assert row["confirmed"] is (row["beats_baseline"] is not None)
        best = json.loads(ok(tuned.directory, "best", "--study", row["name"], "--format", "json").stdout)
        assert {key: row["adopt"][key] for key in ("number", "why")} == {
            key: best["adopt"][key] for key in ("number", "why")
        }

    text = ok(tuned.directory, "studies").stdout
    assert f"2 studies in ./{JOURNAL}" in text
    assert re.search(r"s1 .* playbook .* 4/4 .* val_loss ", text)
    assert "to adopt" in text and f"trial {rows[0]['adopt']['number']}" in text
    assert re.search(r"objective .* playbook .* 2/2 .* val_loss ", text)


def test_studies_shows_a_plain_optuna_study_beside_them(tuned: Tuned, tmp_path: Path) -> None:
    copy_study(tuned.directory, tmp_path)
    backend = optuna.storages.journal.JournalFileBackend(str(tmp_path / JOURNAL))
    plain = optuna.create_study(study_name="plain", storage=optuna.storages.JournalStorage(backend))
    plain.optimize(lambda trial: trial.suggest_float("x", 0.0, 1.0), n_trials=2)

    rows = json.loads(ok(tmp_path, "studies", "--format", "json").stdout)
    assert [row["name"] for row in rows] == ["s1", "objective", "plain"]
    assert [row["adamtune"] for row in rows] == [True, True, False]
    assert re.search(r"plain .* not created by adamtune", ok(tmp_path, "studies").stdout)
    assert "'plain'" in user_error(adamtune(tmp_path, "trials", "--study", "plain"))


def optuna_study_names(directory: Path) -> list[str]:
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(directory / JOURNAL))
    )
    return [summary.study_name for summary in optuna.get_all_study_summaries(storage)]


def test_delete_asks_then_removes_the_study_with_its_rounds_and_confirmation(
    tuned: Tuned, tmp_path: Path
) -> None:
    copy_study(tuned.directory, tmp_path)
    write_objectives(tmp_path)
    ok(tmp_path, "tune", "objectives.py:objective", "--budget", "2", "--study", "s1x")  # s1's name and more
    kept = {name: export_json(tmp_path, "--study", name) for name in ("objective", "s1x")}
    parts = [name for name in optuna_study_names(tmp_path) if name.startswith("s1::")]
    assert "s1::round-0" in parts and "s1::confirm" in parts

    declined = ok(tmp_path, "delete", "--study", "s1", answer="n\n")
    assert "delete study s1 (4 trials) from ./adamtune.journal? [y/N]" in declined.stderr
    assert "kept study s1" in declined.stdout
    assert len(export_json(tmp_path, "--study", "s1")) == 4

    deleted = ok(tmp_path, "delete", "--study", "s1", answer="y\n")
    assert "deleted study s1 (4 trials)" in deleted.stdout
    assert not [name for name in optuna_study_names(tmp_path) if name == "s1" or name.startswith("s1::")]
    assert [row["name"] for row in json.loads(ok(tmp_path, "studies", "--format", "json").stdout)] == [
        "objective",
        "s1x",
    ]
    assert {name: export_json(tmp_path, "--study", name) for name in kept} == kept
    assert "'s1'" in user_error(adamtune(tmp_path, "trials", "--study", "s1"))

    unasked = ok(tmp_path, "delete", "--study", "s1x", "--yes")
    assert "deleted study s1x (2 trials)" in unasked.stdout and unasked.stderr == ""
    assert f"1 study in ./{JOURNAL}" in ok(tmp_path, "studies").stdout
    assert [row["name"] for row in json.loads(ok(tmp_path, "studies", "--format", "json").stdout)] == [
        "objective"
    ]


def test_copy_puts_the_study_in_another_storage_once(tuned: Tuned, tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'copy.db'}"
    copied = ok(tuned.directory, "copy", "--study", "s1", "--to", database)
    assert "copied study s1 from ./adamtune.journal to sqlite:///" in copied.stdout
    assert "s1::round-0" in copied.stdout
    rows = json.loads(ok(tuned.directory, "studies", "--storage", database, "--format", "json").stdout)
    assert [row["name"] for row in rows] == ["s1"]
    assert export_study(tuned.directory, "--storage", database) == export_study(
        tuned.directory, "--study", "s1"
    )

    line = user_error(adamtune(tuned.directory, "copy", "--study", "s1", "--to", database))
    assert "without a study named 's1'" in line and "delete it there first" in line
    copy_study(tuned.directory, tmp_path)  # a branch in the same storage, in a copy of it
    branched = ok(tmp_path, "copy", "--study", "s1", "--as", "s1-branch")
    assert f"copied study s1 from ./{JOURNAL} to ./{JOURNAL} as s1-branch" in branched.stdout
    assert (
        export_study(tmp_path, "--study", "s1-branch")["trials"]
        == export_study(tmp_path, "--study", "s1")["trials"]
    )


def test_delete_refuses_a_study_adamtune_did_not_create(tuned: Tuned, tmp_path: Path) -> None:
    copy_study(tuned.directory, tmp_path)
    backend = optuna.storages.journal.JournalFileBackend(str(tmp_path / JOURNAL))
    optuna.create_study(study_name="plain", storage=optuna.storages.JournalStorage(backend))
    line = user_error(adamtune(tmp_path, "delete", "--study", "plain", "--yes"))
    assert "'plain'" in line and "not created by adamtune" in line
    assert "plain" in optuna_study_names(tmp_path)


def test_trials_without_study_lists_every_study(tuned: Tuned) -> None:
    line = user_error(adamtune(tuned.directory, "trials"))
    assert "--study" in line
    assert "s1" in line
    assert "objective" in line


def test_failing_objective_stops_after_five_failures_in_a_row(broken: Broken) -> None:
    tmp_path, result = broken.directory, broken.result
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert "5 trials in a row" in errors[0]
    assert "RuntimeError: the objective is broken on purpose" in errors[0]
    assert "their 5 configurations run again first" in errors[0]

    rows = export_json(tmp_path)
    assert [row["state"] for row in rows] == ["failed"] * 5
    assert all(row["given_back"] for row in rows)
    assert all(row["value"] is None for row in rows)

    listed = ok(tmp_path, "trials", "--state", "failed", "--reasons").stdout
    assert "broken: 5 trials" in listed
    assert listed.count("Traceback (most recent call last)") == 5
    assert listed.count("RuntimeError: the objective is broken on purpose") >= 5
    assert "broken: 0 trials" in ok(tmp_path, "trials", "--state", "complete").stdout

    line = user_error(adamtune(tmp_path, "best"))
    assert "expected a completed trial" in line


def test_failure_hint_names_a_working_command(broken: Broken) -> None:
    hint = re.search(r"tracebacks: (adamtune [^)]*)\)", broken.result.stderr)
    assert hint is not None, broken.result.stderr
    listed = ok(broken.directory, *hint.group(1).split()[1:]).stdout
    assert "Traceback (most recent call last)" in listed


# Bad input: exit code 2, one line, no traceback, nothing stored

BAD_INPUTS: list[tuple[list[str], Sequence[str]]] = [
    (["tune", "objectives.py:objective", "--budget", "0"], ["--budget: expected", ">= 1", "got 0"]),
    # Checked by the library under its Python names; the CLI names the option that was given.
    (["run", "--budget", "2", "--seed", "-3", "--", "true"], ["--seed: expected a whole number >= 0", "-3"]),
    (["tune", "objectives.py:objective", "--budget", "2", "--max-failures", "0"], ["--max-failures: "]),
    (["tune", "objectives.py:objective", "--budget", "2", "--confirm", "-1"], ["--confirm: expected"]),
    (["tune", "objectives.py:objective", "--budget", "2", "--confirm-top", "0"], ["--confirm-top: expected"]),
    (["tune", "objectives.py:objective", "--budget", "2", "--patience", "0"], ["--patience: expected"]),
    (
        ["tune", "objectives.py:objective", "--budget", "2", "--divergence-factor", "1"],
        ["--divergence-factor: expected a number > 1, got 1.0"],
    ),
    (["tune", "objectives.py:objective"], ["--budget"]),
    (["tune", "objectives.py:objective", "--budget", "2", "--range", "lr=1e-1:1e-5"], ["low < high"]),
    (["tune", "objectives.py:objective", "--budget", "2", "--range", "lr=0:1e-3"], ["range for lr"]),
    (["demo", "--budget", "2", "--steps", "1", "--range", "beta1=0.9:1.0"], ["range for beta1", "[0, 1)"]),
    (
        ["tune", "objectives.py:objective", "--budget", "2", "--range", "bogus=1:2"],
        ["bogus", "lr, beta1, beta2, eps, weight_decay"],
    ),
    (["tune", "objectives.py:objective", "--budget", "2", "--fix", "beta2=1.5"], ["beta2", "1.5"]),
    (["tune", "objectives.py:objective", "--budget", "2", "--fix", "lr=abc"], ["lr", "'abc'"]),
    (["tune", "objectives.py:objective", "--budget", "2", "--tune", "lr,nope"], ["'nope'"]),
    (
        ["tune", "objectives.py:objective", "--budget", "2", "--tune", "weight_decay"],
        ["--tune: expected lr among the tuned hyperparameters", "--fix lr=VALUE", "got weight_decay"],
    ),
    (
        ["tune", "objectives.py:objective", "--budget", "2", "--tune", "lr,beta1", "--fix", "beta1=0.95"],
        ["beta1", "--tune", "--fix"],
    ),
    (
        ["tune", "objectives.py:objective", "--budget", "2", "--storage", "nodir/x.journal"],
        ["nodir", "directory"],
    ),
    (["tune", "objectives.py:objective", "--budget", "2", "--storage", "weird-thing"], ["weird-thing"]),
    (["tune", "nofile.py:objective", "--budget", "2"], ["nofile.py"]),
    (["tune", "objective", "--budget", "2"], ["file.py:function", "'objective'"]),
    (["tune", "objectives.py:missing", "--budget", "2"], ["'missing'", "broken, objective"]),
    (["tune", "no_such_module:objective", "--budget", "2"], ["no_such_module"]),
    (["trials"], ["no adamtune storage"]),
    (["studies"], ["no adamtune storage"]),
    (["delete", "--study", "s1"], ["no adamtune storage"]),
    (["delete"], ["--study"]),
    (["copy", "--study", "s1", "--to", "copy.journal"], ["no adamtune storage"]),
    (
        ["copy", "--study", "s1"],
        ["expected --to URL (another storage) or --as NAME (a new name), got neither"],
    ),
    (
        ["tune", "objectives.py:objective", "--budget", "2", "--study", "s::round-0"],
        ["without '::'", "NAME::round-K"],
    ),
    (["best"], ["no adamtune storage"]),
    (["export", "--format", "csv"], ["no adamtune storage"]),
    (["tune", "objectives.py:objective", "--budget", "2", "--bogus"], ["--bogus"]),
    (["--no-such-flag", "trials"], ["--no-such-flag"]),
]


@pytest.mark.parametrize(("args", "parts"), BAD_INPUTS, ids=[" ".join(args) for args, _ in BAD_INPUTS])
def test_bad_input_is_one_line_and_exit_code_2(tmp_path: Path, args: list[str], parts: Sequence[str]) -> None:
    write_objectives(tmp_path)
    line = user_error(adamtune(tmp_path, *args))
    for part in parts:
        assert part in line
    assert not (tmp_path / JOURNAL).exists()


def test_unknown_target_function_hides_private_names(tmp_path: Path) -> None:
    write_objectives(tmp_path)
    line = user_error(adamtune(tmp_path, "tune", "objectives.py:missing", "--budget", "2"))
    assert "_helper" not in line
    assert "math" not in line


def test_postgresql_storage_error_hides_the_password(tmp_path: Path) -> None:
    write_objectives(tmp_path)
    url = "postgresql://user:secret@127.0.0.1:1/db"
    result = adamtune(tmp_path, "tune", "objectives.py:objective", "--budget", "2", "--storage", url)
    line = user_error(result)
    assert "secret" not in result.stderr + result.stdout
    assert "127.0.0.1" in line or "driver is not installed" in line


def test_missing_database_driver_is_named(tmp_path: Path) -> None:
    result = adamtune(tmp_path, "trials", "--storage", "postgresql://user@127.0.0.1:1/db")
    line = user_error(result)
    if "driver is not installed" in line:
        assert "(None)" not in line and "psycopg" in line
    else:  # a driver is installed: the connection itself fails, and the host is named
        assert "127.0.0.1:1" in line


def test_demo_budget_zero_is_refused(tmp_path: Path) -> None:
    # --steps 1 keeps this short while the bug runs a 20-trial study.
    line = user_error(adamtune(tmp_path, "demo", "--budget", "0", "--steps", "1"))
    assert "budget" in line


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    write_objectives(tmp_path)
    result = adamtune(tmp_path, "--debug", "tune", "objectives.py:objective", "--budget", "0")
    assert result.returncode != 0
    assert "Traceback (most recent call last)" in result.stderr
    assert "ConfigError" in result.stderr


def test_max_failures_option_sets_the_limit(tmp_path: Path) -> None:
    write_objectives(tmp_path)
    result = adamtune(tmp_path, "tune", "objectives.py:broken", "--budget", "10", "--max-failures", "2")
    assert result.returncode == 1
    assert "2 trials in a row" in result.stderr
    assert [trial["state"] for trial in export_json(tmp_path)] == ["failed", "failed"]


def test_tune_says_when_a_range_is_not_tuned(tmp_path: Path) -> None:
    write_objectives(tmp_path)
    args = ["tune", "objectives.py:objective", "--budget", "2", "--storage", "memory"]

    def tuning_line(result: Result) -> str:
        return next(line for line in result.stderr.splitlines() if line.startswith("tuning:"))

    ranged = tuning_line(ok(tmp_path, *args, "--range", "eps=1e-10:1"))
    assert "eps has a range but is not tuned with 2 trials" in ranged
    assert "eps" not in tuning_line(ok(tmp_path, *args))


def test_only_a_leading_option_parameter_is_renamed() -> None:
    from adamtune.cli import _named_by_option

    assert (
        _named_by_option("max_consecutive_failures: expected >= 1, got 0")
        == "--max-failures: expected >= 1, got 0"
    )
    assert _named_by_option("confirm_top: expected >= 1, got 0") == "--confirm-top: expected >= 1, got 0"
    for kept in ("path: expected a file, got x", "study 'a': expected a trial", "no colon here"):
        assert _named_by_option(kept) == kept


def test_no_arguments_show_the_commands(tmp_path: Path) -> None:
    result = ok(tmp_path, "--debug")  # no command: the help, not an error
    assert result.stdout.startswith("Usage: adamtune [OPTIONS] COMMAND [ARGS]...")
    assert "Commands:" in result.stdout and "error" not in result.stdout + result.stderr
    assert ok(tmp_path).stdout == result.stdout
