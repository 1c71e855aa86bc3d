"""The recommendation of a study larger than ``choice.GP_TRIALS``: the GP fitted to the trials
nearest the best (what adamtune does) against the GP fitted to all of them (what it did before,
at a cost that grows with the cube of the trials).

For each table's surrogate, wide ranges, repetitions 0..R-1: a quasi-random study of N trials
(as ``quality.py``'s ``adamtune-qr``), then the regret of the best observed trial, of the
recommendation with the GP fitted to the ``GP_TRIALS`` nearest the best, and of the
recommendation with the GP fitted to every trial, with the seconds each recommendation took.

    python benchmarks/quality_large.py                    # N = 1000, 10 repetitions
    python benchmarks/quality_large.py --trials 600 --reps 5

Results: ``benchmarks/results/quality_large.json``; docs/performance.md has them.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from quality import RESULTS, TABLES, Objective, Run, adamtune_study, as_config, coordinates, surrogate_for


def scored(table: Path, trials: int, rep: int) -> dict[str, Any]:
    from adamtune import choice

    surrogate, best, median = surrogate_for(str(table))
    run = Run(str(table), table.stem, "wide", "adamtune-qr", trials, rep)
    study = adamtune_study(Objective(surrogate, rep), run, trials, "quasi-random")
    records, space = study.trials, study.info.space

    def regret(record: Any) -> float:
        mean = float(surrogate.mean(coordinates(as_config(record.adam)))[0])
        return (mean - best) / (median - best)

    result: dict[str, Any] = {"workload": table.stem, "rep": rep, "best_observed": regret(study.best)}
    for name, limit in (("nearest", choice.GP_TRIALS), ("all", 10**9)):
        choice.GP_TRIALS = limit
        started = time.perf_counter()
        found = choice.recommend(records, space, "minimize")
        result[f"{name}_seconds"] = round(time.perf_counter() - started, 2)
        assert found is not None
        result[name] = regret(found.record)
    choice.GP_TRIALS = 300
    return result


def main() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=10)
    args = parser.parse_args()
    results = []
    for table in sorted(TABLES.glob("*.npz")):
        for rep in range(args.reps):
            results.append(scored(table, args.trials, rep))
            print(json.dumps(results[-1]), flush=True)
    summary = {}
    for workload in sorted({r["workload"] for r in results}):
        rows = [r for r in results if r["workload"] == workload]
        summary[workload] = {
            key: round(float(np.median([r[key] for r in rows])), 4)
            for key in ("best_observed", "nearest", "all", "nearest_seconds", "all_seconds")
        }
        summary[workload]["same_choice"] = sum(r["nearest"] == r["all"] for r in rows)
        print(workload, summary[workload])
    out = RESULTS / "quality_large.json"
    out.write_text(json.dumps({"trials": args.trials, "summary": summary, "runs": results}, indent=1) + "\n")
    print(f"written {out}")


if __name__ == "__main__":
    main()
