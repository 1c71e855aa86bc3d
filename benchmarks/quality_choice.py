"""Where a method's regret comes from: the search, or the choice among what it trained.

    python benchmarks/quality_choice.py --cells stdlib-lm/wide/50,mnist1d-mlp/default/50
    python benchmarks/quality_choice.py --cells stdlib-lm/wide/50 --methods adamtune,tpe --reps 10

Reruns each method in each cell against the surrogate (the same seeds as ``quality.py compare``,
so the chosen regrets are the saved ones) and scores, per repetition:

  chosen      the method's own choice: adamtune's recommendation (``adamtune.choice``: of its
              5 best observations, the best posterior mean of Optuna's GP), every other
              method's best observed trial
  trained     the best true regret among every configuration it trained (an oracle choice):
              what the search found
  knn3        the trial whose 3 nearest trials (itself included, on the search scale) have
              the best mean observation
  gp-mean     the trial with the best posterior mean of a GP fitted to the study's
              observations

The difference between ``chosen`` and ``trained`` is what choosing by one noisy observation
costs; ``knn3`` and ``gp-mean`` are two ways of choosing with less noise from the same
trials (no extra training). Results: ``benchmarks/results/quality_choice.json``.

``--faces`` also reports how much of each method's search lay on a face of the tables' space
(within ``FACE`` of a range's end, on the log scales: the wide ranges' ends, which are also
adamtune's expansion limits), per hyperparameter and end, and the median regret of its
choices on a face against those inside:

    python benchmarks/quality_choice.py --cells stdlib-lm/wide/50 --methods adamtune,tpe --faces
"""

from __future__ import annotations

import argparse
import json
import math
import os
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from quality import (
    RESULTS,
    TABLES,
    WIDE,
    Objective,
    Run,
    Surrogate,
    choose,
    coordinates,
    surrogate_for,
    written_with,
)

LOW = coordinates({name: WIDE[name][0] for name in WIDE})
HIGH = coordinates({name: WIDE[name][1] for name in WIDE})
RULES = ("chosen", "trained", "knn3", "gp-mean")
FACE = 0.02
"""A configuration this close to a range's end (in log10 units) lies on a face of the space."""
NAMES = ("lr", "beta1", "beta2", "eps")  # low and high: the ends of the values' wide ranges


class RecordingObjective(Objective):
    """The surrogate objective, keeping every configuration and its observation."""

    def __init__(self, surrogate: Surrogate, rep: int) -> None:
        super().__init__(surrogate, rep)
        self.seen: list[tuple[dict[str, float], float]] = []

    def value(self, config: dict[str, float]) -> float:
        observed = super().value(config)
        self.seen.append((dict(config), observed))
        return observed


def choices(seen: list[tuple[dict[str, float], float]], cap: float) -> dict[str, int]:
    """The index in ``seen`` each smoothed rule chooses (diverged trials never)."""
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

    # Unit cube of the tables' space (log scales), so every dimension weighs the same.
    x = np.array([(coordinates(config) - LOW) / (HIGH - LOW) for config, _ in seen])
    y = np.array([cap if math.isnan(v) else min(v, cap) for _, v in seen])
    trained = y < cap
    distances = np.linalg.norm(x[:, None] - x[None], axis=2)
    neighbours = np.argsort(distances, axis=1)[:, :3]
    knn = np.where(trained, y[neighbours].mean(axis=1), np.inf)
    kernel = ConstantKernel() * Matern(np.ones(4), (1e-2, 1e3), nu=2.5) + WhiteKernel()
    gp = GaussianProcessRegressor(kernel, normalize_y=True, random_state=0).fit(x[trained], y[trained])
    posterior = np.where(trained, gp.predict(x), np.inf)
    return {"knn3": int(np.argmin(knn)), "gp-mean": int(np.argmin(posterior))}


def score(task: tuple[str, str, str, int, int], keep: bool = False) -> dict[str, Any]:
    """One method's repetition in one cell: the regret of each rule's choice; with ``keep``,
    also every trained configuration (``x``, the tables' coordinates), its observation (``y``)
    and its true regret (``regrets``), and the surrogate's cap, best, regret scale and seed
    noise, so that other rules can be scored without rerunning."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    table, setting, method, budget, rep = task
    workload = Path(table).stem
    surrogate, best, median = surrogate_for(table)
    objective = RecordingObjective(surrogate, rep)
    chosen = choose(objective, Run(table, workload, setting, method, budget, rep))

    def regret(config: dict[str, float]) -> float:
        return (float(surrogate.mean(coordinates(config))[0]) - best) / (median - best)

    picked = choices(objective.seen, surrogate.cap)
    kept = {}
    if keep:
        kept = {
            "x": [coordinates(config).tolist() for config, _ in objective.seen],
            "y": [None if math.isnan(v) else v for _, v in objective.seen],
            "regrets": [regret(config) for config, _ in objective.seen],
            "cap": surrogate.cap,
            # What a rule that trains a configuration again needs to draw its observation:
            # the true value is best + regret * scale, the seed noise's sd is noise.
            "best": best,
            "scale": median - best,
            "noise": surrogate.noise,
        }
    return {
        "workload": workload,
        "setting": setting,
        "budget": budget,
        "method": method,
        "rep": rep,
        "chosen": regret(chosen),
        "chosen_x": coordinates(chosen).tolist(),
        "trained": min(regret(config) for config, _ in objective.seen),
        **{rule: regret(objective.seen[index][0]) for rule, index in picked.items()},
        **kept,
    }


def by_cell(results: list[dict[str, Any]]) -> list[tuple[tuple[Any, ...], list[dict[str, Any]]]]:
    """The runs grouped by (workload, setting, budget, method), in that order."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault((r["workload"], r["setting"], r["budget"], r["method"]), []).append(r)
    return sorted(groups.items(), key=lambda item: item[0])


def summary(results: list[dict[str, Any]]) -> list[str]:
    """One line per cell and method: each rule's median, and (for the smoothed rules) in how
    many repetitions it chose better / worse than the method's own choice."""
    lines = []
    for (workload, setting, budget, method), rows in by_cell(results):
        own = np.array([r["chosen"] for r in rows])
        parts = []
        for rule in RULES:
            values = np.array([r[rule] for r in rows])
            part = f"{rule} {np.median(values):.3f}"
            if rule in ("knn3", "gp-mean"):
                part += f" ({int(np.sum(values < own - 1e-12))}/{int(np.sum(values > own + 1e-12))})"
            parts.append(part)
        lines.append(f"{workload} {setting} {budget} {method}: " + ", ".join(parts))
    return lines


def on_faces(x: np.ndarray) -> np.ndarray:
    """For each row of ``x`` (tables' coordinates), whether it lies at each range's low end
    (the first 4 columns) and high end (the last 4)."""
    x = np.atleast_2d(x)
    return np.hstack([np.abs(x - LOW) < FACE, np.abs(x - HIGH) < FACE])


def faces(results: list[dict[str, Any]]) -> list[str]:
    """One line per cell and method (runs kept with their trials): the share of its trials on
    each face that holds at least 5% of them, and its choices on a face against inside."""
    lines = []
    for cell, rows in by_cell(results):
        share = np.mean(np.vstack([on_faces(np.array(r["x"])) for r in rows]), axis=0)
        ends = [
            f"{NAMES[k % 4]}={'low' if k < 4 else 'high'} {v:.0%}" for k, v in enumerate(share) if v >= 0.05
        ]
        chosen = np.array([on_faces(np.array(r["chosen_x"]))[0].any() for r in rows])
        regrets = np.array([r["chosen"] for r in rows])
        inside = f"{np.median(regrets[~chosen]):.3f}" if (~chosen).any() else "-"
        on = f"{np.median(regrets[chosen]):.3f}" if chosen.any() else "-"
        lines.append(
            f"{' '.join(map(str, cell))}: trials on a face: {', '.join(ends) or 'none over 5%'}; "
            f"chosen on a face in {int(chosen.sum())} of {len(rows)} (median regret {on}, inside {inside})"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", required=True, help="comma-separated WORKLOAD/SETTING/BUDGET")
    parser.add_argument("--methods", default="adamtune,tpe,gp")
    parser.add_argument("--reps", type=int, default=50)
    parser.add_argument("--first-rep", type=int, default=0, help="repetitions from this one on")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--tables", type=Path, default=TABLES)
    parser.add_argument("--out", type=Path, default=RESULTS / "quality_choice.json")
    parser.add_argument(
        "--trials",
        type=Path,
        help="also write every run's trained configurations, observations and true regrets here",
    )
    parser.add_argument("--faces", action="store_true", help="also report the search on the space's faces")
    args = parser.parse_args()
    tasks = []
    for cell in args.cells.split(","):
        try:
            workload, setting, budget = cell.split("/")
            size = int(budget)
        except ValueError:
            parser.error(f"--cells: expected WORKLOAD/SETTING/BUDGET, got {cell!r}")
        if setting not in ("default", "wide"):
            parser.error(f"--cells: expected the setting default or wide, got {setting!r} in {cell!r}")
        table = args.tables / f"{workload}.npz"
        if not table.exists():
            parser.error(f"--cells: expected a table at {table}, found none")
        tasks += [
            (str(table), setting, m, size, rep)
            for m in args.methods.split(",")
            for rep in range(args.first_rep, args.first_rep + args.reps)
        ]
    with ProcessPoolExecutor(args.jobs) as pool:
        results = list(pool.map(partial(score, keep=args.trials is not None or args.faces), tasks))
    if args.trials is not None:
        args.trials.parent.mkdir(parents=True, exist_ok=True)
        args.trials.write_text(json.dumps(results))
    on_face = faces(results) if args.faces else []
    kept = ("x", "y", "regrets", "cap", "best", "scale", "noise")
    results = [{k: v for k, v in r.items() if k not in kept} for r in results]
    lines = summary(results) + on_face
    print("\n".join(lines))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {"summary": lines, "written_with": written_with({}), "runs": results}
    args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
