"""What a study records about the software and machine it runs on."""

from __future__ import annotations

import platform

import numpy as np
import optuna
import scipy

import adamtune
from adamtune.environment import (
    COMPARED,
    THREAD_VARIABLES,
    cpu_cores,
    current_environment,
    describe_environment,
    environment_differences,
    threads_per_worker,
    with_thread_limits,
)


def test_the_current_environment_names_the_libraries_that_decide_a_study_s_path() -> None:
    now = current_environment()
    assert now["python"] == platform.python_version()
    assert now["adamtune"] == adamtune.__version__
    assert now["optuna"] == optuna.__version__
    assert now["numpy"] == np.__version__
    assert now["scipy"] == scipy.__version__
    assert now["torch"].startswith("2.")
    assert now["machine"].startswith(platform.machine())
    assert int(now["cpus"]) >= 1


def test_differences_name_what_changed_and_ignore_what_one_side_lacks() -> None:
    stored = {"python": "3.11.9", "optuna": "5.0.0", "numpy": "2.4.6", "machine": "x86_64 Intel", "cpus": "2"}
    now = {"python": "3.11.9", "optuna": "5.1.0", "numpy": "2.4.6", "machine": "x86_64 AMD", "cpus": "16"}
    assert environment_differences(stored, now) == [
        "optuna 5.0.0 -> 5.1.0",
        "machine x86_64 Intel -> x86_64 AMD",
        "cpus 2 -> 16",
    ]
    assert environment_differences(stored, stored) == []
    assert environment_differences({}, now) == []  # a study from before environments were stored
    assert set(COMPARED) >= {"python", "adamtune", "optuna", "numpy", "scipy", "torch"}


def test_describe_is_one_line_for_the_report() -> None:
    text = describe_environment(
        {"python": "3.11.9", "adamtune": "0.9", "optuna": "5.1.0", "machine": "x86_64 AMD EPYC", "cpus": "2"}
    )
    assert text == "Python 3.11.9, adamtune 0.9, optuna 5.1.0 on x86_64 AMD EPYC, 2 cores"
    assert describe_environment({"python": "3.11.9"}) == "Python 3.11.9"
    assert describe_environment({}) == ""


def test_trials_at_once_share_the_cores_and_a_users_thread_count_stands() -> None:
    assert threads_per_worker(1) is None  # one at a time: the libraries' default
    assert threads_per_worker(2) == max(1, cpu_cores() // 2)
    assert threads_per_worker(10 * cpu_cores()) == 1  # never below one
    limited = with_thread_limits({"PATH": "/bin", "MKL_NUM_THREADS": "4"}, 2)
    assert limited == {
        "PATH": "/bin",
        "OMP_NUM_THREADS": "2",
        "MKL_NUM_THREADS": "4",
        "OPENBLAS_NUM_THREADS": "2",
    }
    assert set(THREAD_VARIABLES) <= set(limited)
    assert with_thread_limits({"PATH": "/bin"}, None) == {"PATH": "/bin"}
