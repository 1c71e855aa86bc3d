"""Several processes, and processes that die: exactly-once points and resume, for real.

Every test here starts real Python processes on the embedded journal storage.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from optuna.trial import TrialState

import adamtune
from adamtune import State

pytestmark = pytest.mark.slow

ADAMTUNE = str(Path(sys.executable).parent / "adamtune")

WORKER = textwrap.dedent(
    """
    import sys
    import adamtune
    from adamtune.testing import SyntheticObjective

    journal, budget, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    adamtune.tune(
        SyntheticObjective(steps=3, sleep_s=0.01),
        budget,
        storage=journal,
        seed=seed,
        study="mp",
        strategy="quasi-random",
    )
    """
)

OBJECTIVE = textwrap.dedent(
    """
    import math, os, time

    HANG_FROM = int(os.environ.get("HANG_FROM_TRIAL", "-1"))

    def objective(trial):
        for step in range(20):
            time.sleep(0.05)
            trial.report(step, val_loss=1.0 / (step + 1))
            if 0 <= HANG_FROM <= trial.number and step == 3:
                time.sleep(300)  # stuck mid-trial until the test's signal arrives
        return (math.log10(trial.adam.lr) + 4) ** 2
    """
)


def ctrl_c_as_in_a_terminal() -> None:
    """Run in a child before it starts: SIGINT's default action, as a terminal's foreground job
    has. A suite started in the background (``make test &``) passes SIGINT on ignored, and a
    Python started so never raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def results(study: adamtune.Study) -> list[adamtune.TrialRecord]:
    return [r for r in study.trials if r.state in (State.COMPLETE, State.INFEASIBLE, State.PRUNED)]


def test_four_processes_draw_the_same_points_as_one(tmp_path: Path) -> None:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    budget, seed = 24, 11
    single = tmp_path / "single.journal"
    subprocess.run([sys.executable, str(script), str(single), str(budget), str(seed)], check=True)
    shared = tmp_path / "shared.journal"
    workers = [
        subprocess.Popen([sys.executable, str(script), str(shared), str(budget), str(seed)]) for _ in range(4)
    ]
    assert [w.wait(timeout=240) for w in workers] == [0, 0, 0, 0]

    one = results(adamtune.load_study("mp", str(single)))
    four = results(adamtune.load_study("mp", str(shared)))
    assert len(one) == len(four) == budget
    assert sorted(r.point for r in four) == list(range(budget))  # none repeated, none skipped
    by_point = {r.point: (r.adam, r.seed) for r in one}
    assert {r.point: (r.adam, r.seed) for r in four} == by_point
    # The processes really interleaved: more than one of them recorded trials.
    workers_seen = {
        t.user_attrs["worker"]["pid"]
        for t in adamtune.load_study("mp", str(shared)).optuna.trials
        if "worker" in t.user_attrs
    }
    assert len(workers_seen) > 1


def wait_until_mid_trial(journal: Path, count: int, timeout: float = 60) -> None:
    """Until ``count`` results are recorded and a trial has reported 4 steps (where it hangs)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if journal.exists():
            try:
                study = adamtune.load_study("objective", str(journal))
            except adamtune.AdamTuneError:
                study = None  # the study is not created yet
            if study is not None and len(results(study)) >= count:
                running = [t for t in study.optuna.trials if t.state == TrialState.RUNNING]
                if any(len(t.intermediate_values) > 3 for t in running):
                    return
        time.sleep(0.1)
    raise AssertionError(f"not {count} results and a trial hanging at step 3 after {timeout} s")


@pytest.mark.parametrize(
    ("signum", "exit_code"),
    [(signal.SIGKILL, -signal.SIGKILL), (signal.SIGINT, 130), (signal.SIGTERM, 130)],
)
def test_killed_study_resumes_to_exactly_the_budget(tmp_path: Path, signum: int, exit_code: int) -> None:
    (tmp_path / "train.py").write_text(OBJECTIVE)
    command = [
        ADAMTUNE,
        "tune",
        "train.py:objective",
        "--budget",
        "6",
        "--seed",
        "4",
        "--strategy",
        "quasi-random",
    ]
    journal = tmp_path / "adamtune.journal"
    # From its third trial the first process hangs mid-trial, so the signal surely cuts a trial
    # (sent a fixed time after the second result, it once could land between two trials).
    process = subprocess.Popen(
        command,
        cwd=tmp_path,
        env={**os.environ, "HANG_FROM_TRIAL": "2"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=ctrl_c_as_in_a_terminal,
    )
    wait_until_mid_trial(journal, 2)
    os.kill(process.pid, signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == exit_code
    if signum != signal.SIGKILL:
        assert "run the same command again to resume" in stderr
        assert "Traceback" not in stderr

    resumed = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming:" in resumed.stderr

    study = adamtune.load_study("objective", str(journal))
    finished = results(study)
    assert len(finished) == 6
    assert sorted(r.point for r in finished) == list(range(6))
    assert len({r.adam for r in finished}) == 6
    cut = [r for r in study.trials if r.state == State.FAILED]
    assert len(cut) == 1
    expected = "ended before it finished" if signum == signal.SIGKILL else "interrupted"
    assert expected in (cut[0].reason or "")
    rerun = next(r for r in finished if r.point == cut[0].point)
    assert (rerun.adam, rerun.seed) == (cut[0].adam, cut[0].seed)
