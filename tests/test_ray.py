"""``RayExecutor`` on a real local Ray instance: trials as Ray tasks, the batched executor as one
Ray task, and ``adamtune tune --executor ray --ray-address`` joining an existing cluster.

Skips without the ``ray`` package (``pip install 'adamtune[ray]'``).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import adamtune
from adamtune import State
from adamtune.executors import BatchedExecutor
from adamtune.trial import Trial

ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'adamtune[ray]'")

from adamtune.executors.ray import RayExecutor  # noqa: E402

pytestmark = pytest.mark.slow

ADAMTUNE = str(Path(sys.executable).parent / "adamtune")


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    context = ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield str(context.address_info["gcs_address"])
    finally:
        ray.shutdown()


def objective(trial: Trial) -> float:
    for step in range(4):
        trial.report(step, val_loss=1.0 / (step + 1), pid=float(os.getpid()))
    return (math.log10(trial.adam.lr) + 4) ** 2


def test_trials_run_as_ray_tasks_and_are_stored_as_in_process(cluster: str) -> None:
    settings: dict[str, Any] = {"storage": "memory", "seed": 5, "strategy": "quasi-random", "study": "r"}
    on_ray = adamtune.tune(objective, 6, executor=RayExecutor(), **settings)
    here = adamtune.tune(objective, 6, **settings)

    assert [r.state for r in on_ray.trials] == [State.COMPLETE] * 6
    assert [(r.point, r.adam, r.seed, r.value) for r in on_ray.trials] == [
        (r.point, r.adam, r.seed, r.value) for r in here.trials
    ]
    for ray_trial, local_trial in zip(on_ray.optuna.trials, here.optuna.trials, strict=True):
        assert ray_trial.intermediate_values == local_trial.intermediate_values
        assert ray_trial.user_attrs["curves"]["val_loss"] == local_trial.user_attrs["curves"]["val_loss"]
    pids = {r.metrics["pid"] for r in on_ray.trials}
    assert os.getpid() not in pids  # they ran in Ray's worker processes


def test_the_batched_executor_runs_as_one_ray_task(cluster: str) -> None:
    from adamtune.workloads.mnist1d import Mnist1dWorkload

    workload = Mnist1dWorkload(steps=60, eval_every=20)
    inner = BatchedExecutor(max_members=4, threads=1)
    study = adamtune.tune(
        workload,
        4,
        storage="memory",
        seed=1,
        strategy="quasi-random",
        executor=RayExecutor(inner, num_cpus=1),
        confirm=0,
    )
    assert [r.state for r in study.trials] == [State.COMPLETE] * 4
    assert all(math.isfinite(r.value or math.nan) for r in study.trials)
    assert all(len(t.intermediate_values) == 3 for t in study.optuna.trials)
    assert inner.batches == []  # the batch was trained on the Ray worker, not here


def test_cli_executor_ray_on_an_existing_cluster(cluster: str, tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(
        textwrap.dedent(
            """
            import math

            def objective(trial):
                for step in range(3):
                    trial.report(step, val_loss=1.0 / (step + 1))
                return (math.log10(trial.adam.lr) + 4) ** 2
            """
        )
    )
    command = [ADAMTUNE, "tune", "train.py:objective", "--budget", "4", "--strategy", "quasi-random"]
    command += ["--executor", "ray", "--ray-address", cluster]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert "4 trials with a result (0 failed)" in done.stdout
    launch = adamtune.load_study("objective", str(tmp_path / "adamtune.journal")).optuna.user_attrs["launch"]
    assert launch["options"]["executor"] == "ray"  # workers run their trials on Ray too


def test_run_sends_each_command_to_ray_and_keeps_its_logs(tmp_path: Path, cluster: str) -> None:
    (tmp_path / "prog.py").write_text(
        "import json, sys\n"
        "print('run=' + sys.argv[2])\n"
        "print(json.dumps({'step': 0, 'val_loss': float(sys.argv[1])}))\n"
    )
    command = [ADAMTUNE, "run", "--budget", "3", "--strategy", "quasi-random", "--executor", "ray"]
    command += ["--ray-address", cluster, "--", sys.executable, str(tmp_path / "prog.py"), "{lr}", "{run}"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    study = adamtune.load_study("prog.py", str(tmp_path / "adamtune.journal"))
    assert [r.state for r in study.trials] == [State.COMPLETE] * 3
    for record in study.trials:
        assert record.adam is not None and record.value == record.adam.lr
        log = Path(record.logs["stdout"])  # written by the Ray worker, where the driver looks
        assert log == tmp_path / "adamtune-logs" / "prog.py" / f"trial-{record.number}.stdout"
        assert log.read_text().splitlines()[0] == f"run=trial-{record.number}"


def test_ray_address_needs_the_ray_executor(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("def objective(trial):\n    return 1.0\n")
    command = [ADAMTUNE, "tune", "train.py:objective", "--budget", "2", "--ray-address", "auto"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "--ray-address: expected --executor ray with it, got --executor in-process" in done.stderr
