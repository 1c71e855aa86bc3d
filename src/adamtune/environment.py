"""The software and machine a study runs on, stored with the study.

A study's quasi-random exploration is exact anywhere: its points follow from the search seed
alone. Its Bayesian rounds and its recommendation are floating-point work (a GP fit, an
acquisition optimised by L-BFGS), and other library versions, another processor or another
thread count change the last digits of their sums, which now and then changes a choice. So a
study records where it was created, and a resumed study says when it now runs elsewhere
(docs/benchmarks.md, "Reproducing the comparison elsewhere", measured how often that matters).
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Mapping
from importlib import metadata

LIBRARIES = ("adamtune", "optuna", "numpy", "scipy", "torch")
"""The distributions whose versions decide a study's floating-point path."""
COMPARED = (*LIBRARIES, "python", "machine", "cpus")
"""What must match for a resumed study to take the path an uninterrupted one would have (the
core count sets PyTorch's default thread count, and so how its sums are split)."""


def current_environment() -> dict[str, str]:
    """This process's Python, libraries and machine, as strings (a library that is not
    installed is "absent")."""
    found = {name: _version(name) for name in LIBRARIES}
    return {
        "python": platform.python_version(),
        **found,
        "machine": f"{platform.machine()} {processor()}".strip(),
        "cpus": str(os.cpu_count() or 0),
    }


def cpu_cores() -> int:
    """The cores this process may run on (its affinity, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
"""What PyTorch and NumPy's BLAS read for the number of threads a process computes with."""


def threads_per_worker(workers: int) -> int | None:
    """Each of ``workers`` trials' share of this machine's cores (at least 1) when they train at
    once; None for one: the libraries' default, every core. Without it K programs each run a
    thread per core, and the oversubscribed cores slow every run 5-20x (PLAYBOOK.md, s. 9)."""
    return max(1, cpu_cores() // workers) if workers > 1 else None


def oversubscription_warning(allotted: int, processes: int) -> str | None:
    """A warning where this process's PyTorch computes with more threads than ``allotted``, its
    share of the cores beside ``processes`` - 1 others: the objective set them itself (a
    ``torch.set_num_threads`` call outlives the environment variables adamtune set), and every
    process doing the same oversubscribes the cores. None where torch is not in use or keeps
    its share."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    threads = int(torch.get_num_threads())
    if threads <= allotted:
        return None
    return (
        f"the objective computes with {threads} PyTorch threads, and so may each of the {processes} "
        f"processes on {cpu_cores()} cores, where adamtune gave each {allotted}: oversubscribed cores "
        "slow every run 5-20x; remove its torch.set_num_threads call (adamtune sets OMP_NUM_THREADS "
        "for each process), or run with --workers 1"
    )


def with_thread_limits(environ: Mapping[str, str], threads: int | None) -> dict[str, str]:
    """``environ`` with each thread variable set to ``threads``, but for those already set (the
    user's choice stands)."""
    limited = dict(environ)
    if threads is not None:
        for name in THREAD_VARIABLES:
            limited.setdefault(name, str(threads))
    return limited


def environment_differences(stored: Mapping[str, str], now: Mapping[str, str]) -> list[str]:
    """What differs between two environments, as "name stored -> now" (only what both
    record: a study from before adamtune recorded its environment differs in nothing)."""
    return [
        f"{name} {stored[name]} -> {now[name]}"
        for name in COMPARED
        if name in stored and name in now and stored[name] != now[name]
    ]


def describe_environment(environment: Mapping[str, str]) -> str:
    """One line for the reports: "Python 3.11.9, optuna 5.1.0, ... on x86_64 AMD EPYC, 2 cores"."""
    if not environment:
        return ""
    parts = [f"Python {environment['python']}"] if "python" in environment else []
    parts += [f"{name} {environment[name]}" for name in LIBRARIES if name in environment]
    where = ", ".join(
        ([environment["machine"]] if environment.get("machine") else [])
        + ([f"{environment['cpus']} cores"] if environment.get("cpus") else [])
    )
    return ", ".join(parts) + (f" on {where}" if where else "")


def processor() -> str:
    """The processor's model name (platform.processor() is empty on most Linux systems)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            names = [line.partition(":")[2].strip() for line in cpuinfo if line.startswith("model name")]
    except OSError:  # not Linux
        names = []
    return names[0] if names else platform.processor()


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "absent"
