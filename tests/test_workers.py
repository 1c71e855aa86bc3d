"""``adamtune worker`` and ``--workers K`` on the embedded default storage, with real processes.

(The same across machines, on PostgreSQL: tests/test_postgres.py.)
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import optuna
import pytest

import adamtune
from adamtune import State
from adamtune.campaign import Campaign
from adamtune.environment import cpu_cores
from adamtune.target import load_target
from adamtune.testing import SyntheticObjective
from adamtune.workloads import Mnist1dWorkload, StdlibLmWorkload
from adamtune.workloads.demo import MAX_LM_THREADS, demo_workload

LM_THREADS = min(MAX_LM_THREADS, cpu_cores())  # the language model's trials run one at a time

pytestmark = pytest.mark.slow

ADAMTUNE = str(Path(sys.executable).parent / "adamtune")

OBJECTIVE = textwrap.dedent(
    """
    import math, os, time

    def objective(trial):
        where = os.path.join(os.path.dirname(__file__), "threads.txt")  # beside this file
        with open(where, "a") as threads:  # the thread count this process computes with
            threads.write(f"{os.getpid()} {os.environ.get('OMP_NUM_THREADS')}\\n")
        for step in range(5):
            time.sleep(0.02)
            trial.report(step, val_loss=1.0 / (step + 1))
        return (math.log10(trial.adam.lr) + 4) ** 2
    """
)

PROGRAM = textwrap.dedent(
    """
    import json, math, sys, time
    lr = float(sys.argv[1])
    for step in range(3):
        time.sleep(0.2)
        print(json.dumps({"step": step, "val_loss": (math.log10(lr) + 4) ** 2 + 1 / (step + 1)}))
    """
)


def _pids(study: adamtune.Study) -> set[int]:
    return {t.user_attrs["worker"]["pid"] for t in study.optuna.trials if "worker" in t.user_attrs}


def test_tune_with_workers_shares_the_study_between_processes(tmp_path: Path) -> None:
    # Half a second a trial, so that every worker has started (importing adamtune, seconds on
    # busy cores) before one alone has run the 30 trials.
    slow = OBJECTIVE.replace("time.sleep(0.02)", "time.sleep(0.1)")
    assert slow != OBJECTIVE
    (tmp_path / "train.py").write_text(slow)
    (tmp_path / "fast.py").write_text(OBJECTIVE)
    budget = 30
    command = [ADAMTUNE, "tune", "train.py:objective", "--budget", str(budget), "--seed", "3"]
    command += ["--strategy", "quasi-random", "--workers", "3"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert f"{budget} trials with a result" in done.stdout

    study = adamtune.load_study("objective", str(tmp_path / "adamtune.journal"))
    single = adamtune.tune(
        load_target(f"{tmp_path / 'fast.py'}:objective"),
        budget,
        storage="memory",
        seed=3,
        study="objective",
        strategy="quasi-random",
    )
    assert sorted(r.point for r in study.trials) == list(range(budget))
    assert {r.point: (r.adam, r.seed) for r in study.trials} == {
        r.point: (r.adam, r.seed) for r in single.trials
    }
    assert len(_pids(study)) > 1
    # Three processes on this machine's cores: each its third (unless the user set a count).
    share = os.environ.get("OMP_NUM_THREADS") or str(max(1, cpu_cores() // 3))
    seen = dict(line.split() for line in (tmp_path / "threads.txt").read_text().splitlines())
    assert {seen[str(pid)] for pid in _pids(study)} == {share}
    launch = study.optuna.user_attrs["launch"]
    assert launch["kind"] == "target" and launch["target"] == "train.py:objective"
    assert launch["budget"] == budget and launch["options"]["seed"] == 3
    assert "processes" not in launch["options"]  # a worker never starts more workers


def test_workers_stop_with_a_run_of_failures_so_the_fixed_program_runs_their_points(tmp_path: Path) -> None:
    broken = textwrap.dedent(
        """
        import math, os, time

        def objective(trial):
            time.sleep(0.3)
            if os.environ.get("BROKEN"):
                raise OSError("disk full")
            return (math.log10(trial.adam.lr) + 4) ** 2
        """
    )
    (tmp_path / "train.py").write_text(broken)
    command = [ADAMTUNE, "tune", "train.py:objective", "--budget", "6", "--strategy", "quasi-random"]
    failing = subprocess.run(
        [*command, "--workers", "2", "--max-failures", "3"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "BROKEN": "1"},
    )
    assert failing.returncode == 1, failing.stderr
    assert "configurations run again first" in failing.stderr
    fixed = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert fixed.returncode == 0, fixed.stderr

    # The worker (still running, or starting after the stop) ran none of the points given back,
    # which would have failed again and kept their failure: the resumed study is the sequence's.
    study = adamtune.load_study("objective", str(tmp_path / "adamtune.journal"))
    assert sorted(r.point for r in study.trials if r.state == State.COMPLETE) == list(range(6))
    assert study.tally().failed == 0


def test_a_worker_started_first_waits_for_a_run_study_and_runs_its_command(tmp_path: Path) -> None:
    # The program takes 0.6 s a trial, so the 12 trials last longer than the worker's wait to
    # notice the study (a poll every WAIT_POLL_S) even where starting it takes seconds.
    (tmp_path / "prog.py").write_text(PROGRAM)
    journal = str(tmp_path / "s.journal")
    worker = subprocess.Popen(
        [ADAMTUNE, "worker", "--study", "prog", "--storage", journal, "--wait", "60"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    run = [ADAMTUNE, "run", "--budget", "12", "--study", "prog", "--storage", journal]
    run += ["--strategy", "quasi-random", "--", sys.executable, "prog.py", "{lr}"]
    done = subprocess.run(run, cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    _, err = worker.communicate(timeout=120)
    assert worker.returncode == 0, err

    study = adamtune.load_study("prog", journal)
    assert [r.state for r in study.trials].count(State.COMPLETE) == 12
    assert sorted(r.point for r in study.trials if r.state == State.COMPLETE) == list(range(12))
    assert worker.pid in _pids(study), "the worker ran none of the trials"
    assert study.optuna.user_attrs["launch"]["argv"] == [sys.executable, "prog.py", "{lr}"]


def test_playbook_campaign_with_workers(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(OBJECTIVE)
    command = [ADAMTUNE, "tune", "train.py:objective", "--budget", "6", "--confirm", "0", "--workers", "2"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    campaign = adamtune.load_study("objective", str(tmp_path / "adamtune.journal"))
    assert isinstance(campaign, Campaign)
    assert campaign.optuna.user_attrs["launch"]["options"]["strategy"] == "playbook"
    assert campaign.tally().results == 6
    assert campaign.tally().failed == 0


def test_a_campaign_in_two_processes_runs_every_round_and_one_confirmation(tmp_path: Path) -> None:
    # Three rounds: whichever process finishes a round last finds the next one planned by the
    # other, and must run it (it once took that for the end and confirmed the study early).
    # Half a second a trial, as above, so that both processes have started before round 0 ends.
    (tmp_path / "train.py").write_text(OBJECTIVE.replace("time.sleep(0.02)", "time.sleep(0.1)"))
    command = [ADAMTUNE, "tune", "train.py:objective", "--budget", "20", "--confirm", "2", "--workers", "2"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    campaign = adamtune.load_study("objective", str(tmp_path / "adamtune.journal"))
    assert isinstance(campaign, Campaign) and len(campaign.rounds) >= 2
    for planned in campaign.rounds:
        assert campaign.round_study(planned.index).tally().results == planned.budget
    assert campaign.tally().results == 20
    ran = set().union(*(_pids(campaign.round_study(r.index)) for r in campaign.rounds))
    assert len(ran) == 2  # both processes took part (not necessarily in every round)
    confirmation = campaign.optuna._storage.get_all_studies()
    names = sorted(s.study_name for s in confirmation if "::confirm" in s.study_name)
    assert names == ["objective::confirm"]  # none planned early and set aside as outdated
    confirm = optuna.load_study(study_name="objective::confirm", storage=campaign.optuna._storage)
    assert confirm.user_attrs["confirmation"]["after"] == 20
    assert sorted(t.user_attrs["point"] for t in confirm.trials) == list(range(len(confirm.trials)))
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in confirm.trials)


def test_two_processes_confirm_a_study_after_its_last_trial(tmp_path: Path) -> None:
    # Trial 5, the last, runs for 3 s: the other process runs out of trials first, and must
    # wait for it before planning the confirmation (it once confirmed the first 5 results,
    # and the slow process then set that confirmation aside and deleted it under it).
    slow_last = OBJECTIVE.replace("time.sleep(0.02)", "time.sleep(0.6 if trial.number == 5 else 0.02)")
    assert slow_last != OBJECTIVE
    (tmp_path / "train.py").write_text(slow_last)
    command = [ADAMTUNE, "tune", "train.py:objective", "--budget", "6", "--strategy", "quasi-random"]
    command += ["--confirm", "2"]
    processes = [
        subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    for process in processes:
        _, err = process.communicate(timeout=180)
        assert process.returncode == 0, err
    # Whichever process started later may run none of the trials (the other can have taken
    # the fast ones first); it still reaches the confirmation while trial 5 runs.
    study = adamtune.load_study("objective", str(tmp_path / "adamtune.journal"))
    assert study.tally().results == 6
    storage = study.optuna._storage
    names = sorted(s.study_name for s in storage.get_all_studies())
    assert names == ["objective", "objective::confirm"]
    confirm = optuna.load_study(study_name="objective::confirm", storage=storage)
    assert confirm.user_attrs["confirmation"]["after"] == 6


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        ("none", ["--study", "nothing"], "no adamtune storage at"),
        ("python", ["--study", "synthetic"], "has no launch spec: it was started from Python"),
        ("python", ["--study", "other"], "no study named 'other'"),
        ("python", ["--study", "other", "--wait", "1.5"], "(waited 1.5 s)"),
        ("python", ["--study", "synthetic", "--wait", "-1"], "--wait: expected a number of seconds >= 0"),
    ],
)
def test_worker_errors_are_one_clear_line(tmp_path: Path, setup: str, args: list[str], message: str) -> None:
    journal = tmp_path / "adamtune.journal"
    if setup == "python":
        adamtune.tune(SyntheticObjective(), 2, storage=str(journal), study="synthetic")
    done = subprocess.run(
        [ADAMTUNE, "worker", *args], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert message in lines[0]


def test_workers_need_a_shared_storage(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(OBJECTIVE)
    command = [
        ADAMTUNE,
        "tune",
        "train.py:objective",
        "--budget",
        "4",
        "--storage",
        "memory",
        "--workers",
        "2",
    ]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "--workers: expected a storage other processes can open, got memory" in done.stderr


def test_a_stored_storage_option_is_left_to_the_worker() -> None:
    # adamtune 0.1.0's demo stored its creator's --storage in the launch spec; a worker names its own.
    from adamtune.cli import _run
    from adamtune.workers import known_options, launch_spec

    spec = launch_spec("demo", 3, {"seed": 0, "storage": None, "strategy": "playbook"}, model="mlp", steps=10)
    assert known_options(spec, _run) == {"seed": 0, "strategy": "playbook"}
    with pytest.raises(adamtune.ConfigError, match="got bogus"):
        known_options(launch_spec("demo", 3, {"bogus": 1}, model="mlp", steps=10), _run)


@pytest.mark.parametrize(
    ("spec", "built"),
    [
        ({"model": "mlp", "steps": 10}, Mnist1dWorkload(model="mlp", steps=10)),
        ({"model": "cnn", "steps": 300}, Mnist1dWorkload(model="cnn", steps=300)),
        ({"model": "lm", "steps": 30}, StdlibLmWorkload(steps=30, threads=LM_THREADS)),
        ({"model": "lm"}, StdlibLmWorkload(steps=400, threads=LM_THREADS)),  # the workload's own steps
        ({}, Mnist1dWorkload(model="mlp", steps=8000)),
    ],
)
def test_a_worker_builds_the_demos_workload_from_its_launch_spec(
    spec: dict[str, object], built: object
) -> None:
    from adamtune.workers import build_objective

    assert build_objective({"kind": "demo", **spec}, None, "demo") == built


def test_an_unknown_demo_model_is_refused_in_one_line() -> None:
    with pytest.raises(ValueError, match=r"^model: expected one of mlp, cnn, lm, got 'rnn'$"):
        demo_workload("rnn")


def test_an_objective_that_takes_every_core_beside_other_workers_is_warned_about(tmp_path: Path) -> None:
    # torch.set_num_threads outlives the OMP_NUM_THREADS adamtune gives each process: K
    # processes each computing on every core slow every run 5-20x, so the user is told.
    start = "def objective(trial):\n    import torch\n"
    every_core = "    torch.set_num_threads(os.cpu_count() + 1)\n"
    greedy = OBJECTIVE.replace("def objective(trial):\n", start + every_core)
    fair = OBJECTIVE.replace("def objective(trial):\n", start)
    assert OBJECTIVE != greedy != fair != OBJECTIVE
    (tmp_path / "greedy.py").write_text(greedy)
    (tmp_path / "fair.py").write_text(fair)
    share = max(1, cpu_cores() // 2)
    said = "warning: the objective computes with"
    for name, warned in (("greedy", True), ("fair", False)):
        command = [ADAMTUNE, "tune", f"{name}.py:objective", "--budget", "4", "--workers", "2"]
        command += ["--confirm", "0", "--strategy", "quasi-random", "--study", name]
        done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr
        assert done.stderr.count(said) == (1 if warned else 0), done.stderr  # once, not per trial
        if warned:
            assert f"where adamtune gave each {share}: oversubscribed cores" in done.stderr
