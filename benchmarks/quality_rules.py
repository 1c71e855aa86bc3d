"""Choice rules scored on saved trials: which of a study's trials should it recommend?

    python benchmarks/quality_choice.py --methods adamtune --trials /tmp/trials.json --cells ...
    python benchmarks/quality_rules.py /tmp/trials.json

``quality_choice.py --trials`` keeps every configuration each run trained, its observation and
its true regret; this scores, per run, the configuration each rule would have chosen from them
(no training, no rerun), and compares each cell's median with the other methods' medians in
``benchmarks/results/quality.json``. The rules, all on the wide space's search scale:

  observed      the best observation
  gp-mean       the best posterior mean of Optuna's GP over every feasible trial
  top5          of the 5 best observations, the best posterior mean
  within-noise  of the observations within the GP's noise sd of the best, the best posterior mean
  adamtune      ``adamtune.choice.recommend``: of the 5 best observations within the noise of the
                best, the best posterior mean
  clip-median   as adamtune, with the GP fitted to the values clipped at their median (so the bad
                half of the trials does not set its length scales and noise)
  clip-quartile as adamtune, the values clipped at their lower quartile
  better-half   as adamtune, the GP fitted to the better half of the trials only
  values        as adamtune before session 29: the GP fitted to the values as they are, also
                where they span a decade or more (``adamtune.scale``), which adamtune fits as
                their logs
  remeasure3    not a choice among the same trials: the study's last ``REMEASURE`` trials are
                spent training again instead (approximated by dropping them): of the
                ``REMEASURE_POOL`` best observations among the others, the ``REMEASURE`` best
                posterior means are each observed once more (a fresh draw of the surrogate's
                seed noise), and the one with the best mean of its two observations and its
                posterior mean is chosen. It needs trials kept since session 36 (with the
                surrogate's ``best``, ``scale`` and ``noise``)
  remeasure3-fresh  as remeasure3, the candidate with the best fresh observation chosen (its
                first is the best of many draws): the product's ``remeasure`` round since
                session 37

All rules see the observations the product's GP sees: before session 37 an observation at or
above the surrogate's cap was dropped as if diverged, so the recomputed adamtune rule chose
otherwise than the product in 1-5 runs of 50 per cell (now in none of 150 at budget 100).

"Better / worse" counts the runs in which a rule chose a configuration with a lower / higher true
regret than the best observation.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
from quality import RESULTS, WIDE
from quality_choice import HIGH, LOW

RULES = (
    "observed",
    "gp-mean",
    "top5",
    "within-noise",
    "adamtune",
    "clip-median",
    "clip-quartile",
    "better-half",
    "values",
    "remeasure3",
    "remeasure3-fresh",
)
REMEASURE = 3
"""``remeasure3``: trials spent on observing the best candidates again."""
REMEASURE_POOL = 10
"""``remeasure3``: its candidates are among this many best observations."""


def picks(run: dict[str, Any]) -> dict[str, int]:
    """The index of the trial each rule chooses in one saved run."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from adamtune import AdamConfig, SearchSpace, State, TrialRecord
    from adamtune.choice import TOP, posterior_means, recommend

    x = (np.array(run["x"]) - LOW) / (HIGH - LOW)
    # Diverged (saved as None, or NaN in older files): never chosen. An observation at or above
    # the cap is a trained run the product's GP is fitted to, and so are these rules'.
    y = np.array([math.inf if v is None or not math.isfinite(v) else v for v in run["y"]])
    order = [int(i) for i in np.argsort(y, kind="stable") if math.isfinite(y[i])]
    chosen = {rule: order[0] for rule in RULES if not rule.startswith("remeasure3")}  # those: below
    fitted = posterior_means(x[order], y[order]) if len(order) >= 4 else None
    if fitted is None:
        return chosen
    means = dict(zip(order, fitted[0], strict=True))
    noise = fitted[1]
    chosen["gp-mean"] = min(order, key=lambda i: means[i])
    chosen["top5"] = min(order[:TOP], key=lambda i: means[i])
    chosen["within-noise"] = min((i for i in order if y[i] <= y[order[0]] + noise), key=lambda i: means[i])
    space = SearchSpace.build(list(WIDE), ranges=WIDE)
    records = []
    for i in order:
        lr, one_minus_beta1, one_minus_beta2, eps = (10.0**v for v in run["x"][i])
        adam = AdamConfig(lr=lr, beta1=1 - one_minus_beta1, beta2=1 - one_minus_beta2, eps=eps)
        records.append(TrialRecord(i, State.COMPLETE, float(y[i]), adam, i, i))
    recommendation = recommend(records, space, "minimize")
    assert recommendation is not None
    chosen["adamtune"] = recommendation.record.number
    as_they_are = recommend(records, space, "minimize", scale="linear")
    assert as_they_are is not None
    chosen["values"] = as_they_are.record.number
    ranked_x, ranked_y = x[order], y[order]
    clipped = {
        "clip-median": (ranked_x, np.minimum(ranked_y, np.median(ranked_y))),
        "clip-quartile": (ranked_x, np.minimum(ranked_y, np.quantile(ranked_y, 0.25))),
        "better-half": (ranked_x[: max(4, len(order) // 2)], ranked_y[: max(4, len(order) // 2)]),
    }
    for rule, (fit_x, fit_y) in clipped.items():
        refitted = posterior_means(fit_x, fit_y)
        if refitted is not None:  # the best observations come first, so ranks index both
            within = [k for k in range(min(TOP, len(fit_y))) if y[order[k]] <= y[order[0]] + refitted[1]]
            chosen[rule] = order[min(within, key=lambda k: refitted[0][k])]
    chosen.update(remeasure(run, x, y))
    return chosen


def remeasure(run: dict[str, Any], x: np.ndarray, y: np.ndarray) -> dict[str, int]:
    """``remeasure3``'s and ``remeasure3-fresh``'s choices in one saved run (none: the run
    lacks the surrogate's noise or has too few trials). ``x``: on the search scale; ``y``:
    infinite where diverged."""
    from adamtune.choice import posterior_means

    kept = len(y) - REMEASURE
    if "noise" not in run or kept < REMEASURE_POOL:
        return {}
    order = [int(i) for i in np.argsort(y[:kept], kind="stable") if math.isfinite(y[i])]
    fitted = posterior_means(x[order], y[order]) if len(order) >= REMEASURE else None
    if fitted is None:
        return {}
    means = dict(zip(order, fitted[0], strict=True))
    candidates = sorted(order[:REMEASURE_POOL], key=lambda i: means[i])[:REMEASURE]
    rng = np.random.default_rng([run["rep"], 777])  # the training seeds of the extra runs
    again = {
        i: run["best"] + run["regrets"][i] * run["scale"] + rng.normal(0.0, run["noise"]) for i in candidates
    }
    return {
        "remeasure3": min(candidates, key=lambda i: (y[i] + again[i] + means[i]) / 3),
        "remeasure3-fresh": min(candidates, key=lambda i: again[i]),
    }


def rounds(runs: list[dict[str, Any]], scored: list[dict[str, float]], bounds: list[int]) -> list[str]:
    """Per cell: the median best true regret within each stretch of trials ``bounds`` cut, and
    in how many runs adamtune's rule chose from each."""
    cells: dict[tuple[str, str, int], list[tuple[list[float], float]]] = defaultdict(list)
    for run, rules in zip(runs, scored, strict=True):
        cells[(run["workload"], run["setting"], run["budget"])].append((run["regrets"], rules["adamtune"]))
    lines = []
    for cell, rows in sorted(cells.items()):
        cuts = [0, *bounds, len(rows[0][0])]
        stretches = list(pairwise(cuts))
        best = [float(np.median([min(r[a:b]) for r, _ in rows])) for a, b in stretches]
        sources = [next(k for k, (a, b) in enumerate(stretches) if regret in r[a:b]) for r, regret in rows]
        chosen_from = [sources.count(k) for k in range(len(stretches))]
        parts = [
            f"trials {a}-{b - 1}: best {v:.3f}, chosen from in {n}"
            for (a, b), v, n in zip(stretches, best, chosen_from, strict=True)
        ]
        lines.append(f"{' '.join(map(str, cell))}: " + "; ".join(parts))
    return lines


def score(run: dict[str, Any]) -> dict[str, float]:
    return {rule: run["regrets"][index] for rule, index in picks(run).items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trials", type=Path, help="a file written by quality_choice.py --trials")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--against", type=Path, default=RESULTS / "quality.json")
    parser.add_argument("--rounds", help="comma-separated trial positions: the best regret between them")
    args = parser.parse_args()
    try:
        bounds = [int(v) for v in args.rounds.split(",")] if args.rounds else []
    except ValueError:
        parser.error(f"--rounds: expected comma-separated whole numbers, got {args.rounds!r}")
    runs = json.loads(args.trials.read_text())
    with ProcessPoolExecutor(args.jobs) as pool:
        scored = list(pool.map(score, runs, chunksize=8))
    others: dict[tuple[str, str, int], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for saved in json.loads(args.against.read_text())["runs"]:
        if saved["method"] != "adamtune":
            others[(saved["workload"], saved["setting"], saved["budget"])][saved["method"]].append(
                saved["regret"]
            )
    cells: dict[tuple[str, str, int], list[dict[str, float]]] = defaultdict(list)
    for run, rules in zip(runs, scored, strict=True):
        cells[(run["workload"], run["setting"], run["budget"])].append(rules)
    present = [rule for rule in RULES if all(rule in r for r in scored)]  # remeasure3*: new files only
    print("| workload | setting | budget | best other (median) | " + " | ".join(present) + " |")
    print("|---|---|---|---|" + "---|" * len(present))
    lowest = dict.fromkeys(present, 0)
    for cell in sorted(cells):
        rows = cells[cell]
        rivals = {method: float(np.median(values)) for method, values in others[cell].items()}
        leader = min(rivals, key=lambda m: rivals[m]) if rivals else None
        parts = []
        for rule in present:
            median = float(np.median([r[rule] for r in rows]))
            ahead = leader is not None and median < rivals[leader]
            lowest[rule] += ahead
            parts.append(f"{'**' if ahead else ''}{median:.3f}{'**' if ahead else ''}")
        other = f"{leader} {rivals[leader]:.3f}" if leader else "-"
        print(f"| {cell[0]} | {cell[1]} | {cell[2]} | {other} | " + " | ".join(parts) + " |")
    all_rows = [r for rows in cells.values() for r in rows]
    for rule in present[1:]:
        better = sum(r[rule] < r["observed"] - 1e-12 for r in all_rows)
        worse = sum(r[rule] > r["observed"] + 1e-12 for r in all_rows)
        print(
            f"{rule}: lower median than the best other method in {lowest[rule]} of {len(cells)} cells; "
            f"better than the best observation in {better} of {len(all_rows)} runs, worse in {worse}; "
            f"than adamtune's choice in {sum(r[rule] < r['adamtune'] - 1e-12 for r in all_rows)}, "
            f"worse in {sum(r[rule] > r['adamtune'] + 1e-12 for r in all_rows)}"
        )
    print(f"observed: lower median than the best other method in {lowest['observed']} of {len(cells)} cells")
    if bounds:
        print("\n".join(rounds(runs, scored, bounds)))


if __name__ == "__main__":
    main()
