"""Reading benchmark: how long the reading commands take on a large study.

A study of N trials (quasi-random, the budget's tier: lr, beta1, eps and beta2 from 50 trials)
of a synthetic objective with seed noise (a bowl in log lr and log(1 - beta1), 10 curve points
a trial) is written to its own journal file, then each reading command runs once in a fresh
process, as a user would run it: ``studies``, ``best``, ``report --format text`` and
``report`` (HTML). The time includes Python's start and the imports (about 2 s here).

    python benchmarks/reading.py                      # N = 250, 1000, 2000
    python benchmarks/reading.py --trials 1000        # one size

To time another version of adamtune, run it with that version's ``src`` first on PYTHONPATH
(the commands run as ``python -m adamtune.cli`` with the same environment). The last line is
one JSON object. docs/performance.md has the results.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import adamtune
from adamtune.trial import Trial

COMMANDS = {
    "studies": ["studies"],
    "best": ["best"],
    "report --format text": ["report", "--format", "text"],
    "report": ["report", "-o", "report.html"],
}


def noisy_bowl(trial: Trial) -> float:
    """A bowl with its minimum at lr 1e-3.5, beta1 0.97, and seed noise of sd 0.02."""
    adam = trial.adam
    value = (math.log10(adam.lr) + 3.5) ** 2 + 0.3 * (math.log10(1 - adam.beta1) + 1.5) ** 2
    value += 0.02 * float(np.random.default_rng(trial.seed).normal())
    for step in range(10):
        trial.report(step, val_loss=value + 1.0 / (step + 1))
    return value


def time_commands(folder: Path, trials: int) -> dict[str, float]:
    storage = folder / "study.journal"
    started = time.perf_counter()
    adamtune.tune(noisy_bowl, trials, study="reading", storage=str(storage), seed=0, strategy="quasi-random")
    print(f"{trials} trials: study written in {time.perf_counter() - started:.1f} s", flush=True)
    seconds = {}
    for name, args in COMMANDS.items():
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "adamtune.cli", *args, "--storage", str(storage)],
            cwd=folder,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        seconds[name] = round(time.perf_counter() - started, 2)
        print(f"  {name}: {seconds[name]:.2f} s", flush=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, action="append", help="study size (repeatable)")
    args = parser.parse_args()
    results = {}
    for trials in args.trials or [250, 1000, 2000]:
        with tempfile.TemporaryDirectory(prefix="adamtune-reading-") as folder:
            results[trials] = time_commands(Path(folder), trials)
    print(json.dumps({"adamtune": adamtune.__version__, "seconds": results}))


if __name__ == "__main__":
    main()
