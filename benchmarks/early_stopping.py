"""Early-stopping benchmark: does pruning save training without losing the result?

On the MNIST-1D MLP (default ranges, quasi-random search), run a study of BUDGET trials with
no pruner, ASHA and the median rule, for several search seeds. For each study report the total
training steps and the confirmed validation loss of its best configuration: the mean over
CONFIRM fresh training seeds, so a lucky seed cannot make a pruner look good.

    python benchmarks/early_stopping.py                 # 40 trials, 5 seeds, 8000 steps
    python benchmarks/early_stopping.py --quick         # 12 trials, 2 seeds, 2000 steps

Writes a JSON file of every number and prints a markdown table (docs/benchmarks.md has it).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adamtune.environment import current_environment

PRUNERS = ("none", "asha", "median")


@dataclass(frozen=True)
class Task:
    pruner: str
    seed: int
    budget: int
    steps: int
    confirm: int


class _Confirm:
    """A stand-in trial for retraining one configuration with a chosen seed."""

    def __init__(self, adam: Any, seed: int) -> None:
        self.adam, self.seed, self.metric, self.number = adam, seed, "val_loss", -1

    def report(self, step: int, **metrics: float) -> None:
        pass  # only the returned best value matters here


def run_study(task: Task) -> dict[str, Any]:
    os.environ["OMP_NUM_THREADS"] = "1"
    import adamtune
    from adamtune.workloads.mnist1d import Mnist1dWorkload

    workload = Mnist1dWorkload(model="mlp", steps=task.steps)
    started = time.perf_counter()
    study = adamtune.tune(
        workload,
        task.budget,
        storage="memory",
        seed=task.seed,
        pruner=task.pruner,  # type: ignore[arg-type]
        study=f"{task.pruner}-{task.seed}",
        strategy="quasi-random",  # one study, the same points with and without pruning
        confirm=0,  # confirmed below with the same fresh seeds for every pruner
    )
    elapsed = time.perf_counter() - started
    steps = sum(int(r.curves["val_loss"][-1][0]) for r in study.trials if r.curves.get("val_loss"))
    best = study.best
    assert best is not None and best.adam is not None
    confirmed = [
        workload(_Confirm(best.adam, 10_000 + k))["val_loss"]  # type: ignore[arg-type]
        for k in range(task.confirm)
    ]
    states = [str(r.state) for r in study.trials]
    return {
        "pruner": task.pruner,
        "seed": task.seed,
        "training_steps": steps,
        "study_seconds": round(elapsed, 1),
        "best_observed": best.value,
        "best_config": best.adam.as_dict(),
        "confirmed": confirmed,
        "confirmed_mean": statistics.fmean(confirmed),
        "pruned": states.count("pruned"),
        "infeasible": states.count("infeasible"),
    }


def table(results: list[dict[str, Any]], budget: int, steps: int) -> str:
    full = budget * steps
    lines = [
        "| pruner | training steps (mean of seeds) | share of no-pruning | pruned trials | "
        "confirmed best val loss, mean (sd over search seeds) | trial variance (sd over confirm seeds) |",
        "|---|---|---|---|---|---|",
    ]
    baseline = statistics.fmean(r["training_steps"] for r in results if r["pruner"] == "none")
    for pruner in PRUNERS:
        rows = [r for r in results if r["pruner"] == pruner]
        if not rows:
            continue
        mean_steps = statistics.fmean(r["training_steps"] for r in rows)
        confirmed = [r["confirmed_mean"] for r in rows]
        noise = statistics.fmean(statistics.stdev(r["confirmed"]) for r in rows if len(r["confirmed"]) > 1)
        spread = statistics.stdev(confirmed) if len(confirmed) > 1 else 0.0
        lines.append(
            f"| {pruner} | {mean_steps:,.0f} of {full:,} | {mean_steps / baseline:.0%} | "
            f"{statistics.fmean(r['pruned'] for r in rows):.1f} | {statistics.fmean(confirmed):.4f} "
            f"({spread:.4f}) | {noise:.4f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=40)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=8000)
    parser.add_argument("--confirm", type=int, default=3, help="fresh seeds to confirm each best")
    parser.add_argument("--jobs", type=int, default=2, help="studies run at once, one core each")
    parser.add_argument("--quick", action="store_true", help="12 trials, 2 seeds, 2000 steps")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/early_stopping.json"))
    args = parser.parse_args()
    if args.quick:
        args.budget, args.seeds, args.steps = 12, 2, 2000
    for name, least in (("budget", 1), ("seeds", 1), ("steps", 1), ("confirm", 2), ("jobs", 1)):
        if getattr(args, name) < least:  # confirm: the trial variance is the sd of its seeds
            parser.error(f"--{name}: expected a whole number >= {least}, got {getattr(args, name)}")
    tasks = [
        Task(pruner, seed, args.budget, args.steps, args.confirm)
        for seed in range(args.seeds)
        for pruner in PRUNERS
    ]
    results = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for result in pool.map(run_study, tasks):
            results.append(result)
            print(
                f"{result['pruner']:>6} seed {result['seed']}: {result['training_steps']:>7,} steps, "
                f"confirmed {result['confirmed_mean']:.4f}, {result['study_seconds']} s",
                flush=True,
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    settings = {k: v for k, v in vars(args).items() if k != "out"}
    environment = current_environment()  # speeds and GP rounds depend on it (docs/benchmarks.md)
    report = {"settings": settings, "environment": environment, "results": results}
    args.out.write_text(json.dumps(report, indent=2))
    print()
    print(table(results, args.budget, args.steps))


if __name__ == "__main__":
    main()
