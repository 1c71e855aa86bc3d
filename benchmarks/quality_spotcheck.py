"""Spot checks of the quality benchmark's surrogates where the methods went: the configurations
the methods chose, trained for real and compared with what the surrogate said of them.

    python benchmarks/quality_spotcheck.py --workload stdlib-lm --count 40            # measure
    python benchmarks/quality_spotcheck.py --workload stdlib-lm --count 40 --augment  # and add
    python benchmarks/quality_spotcheck.py --workload stdlib-lm --count 40 --by-choice
                            # configurations drawn as often as the methods chose them
    python benchmarks/quality_spotcheck.py --workload mnist1d-cnn --count 20 --lowest
                            # where the surrogate predicts the lowest means: its holes, if any

Cross-validation (``quality.py fidelity``) tests a surrogate where its table has data. The
methods may go where it has none: on the byte model, the GP sampler found a corner (lr about
0.2, beta1 0.999, eps 1) where the surrogate predicted 2.14, better than anything the table
trained, and real training gave 3.0. So the choices of the saved comparison runs
(``benchmarks/results/quality.json``) are retrained here with the table's protocol and seeds
(replicate j of row i: seed 1000 j + i, batch order of data seed j), and the report says how
far the surrogate was from the real mean at them. ``--augment`` appends them to the table as
more rows (``meta["spot_checks"]`` records how many and the command), so the surrogate learns
where the methods go; the comparison then has to be run again and checked again.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from quality import RESULTS, TABLES, Surrogate, Table, coordinates, seed_means
from quality_tables import EVAL_EVERY, RecordingTrial, evaluations, one_thread, train_lm
from scipy.stats import spearmanr


def chosen_points(
    runs: list[dict[str, Any]], table: Table, count: int, seed: int = 0, by_choice: bool = False
) -> np.ndarray:
    """Up to ``count`` distinct configurations chosen in ``runs``, inside the table's space and
    not already in the table, drawn at random (seeded) so every method and cell is represented
    in proportion to its distinct choices; ``by_choice``: in proportion to its runs, so a
    configuration is drawn as often as it was chosen (a corner that one sampler picks in most of
    its runs is then all but sure to be checked)."""
    box = np.asarray(table.meta["space_log10"])
    known = {tuple(np.round(row, 4)) for row in table.x}
    rng = np.random.default_rng(seed)
    if by_choice:
        runs = [runs[i] for i in rng.permutation(len(runs))]
    points: dict[tuple[float, ...], np.ndarray] = {}
    for run in runs:
        x = coordinates(run["chosen"])
        key = tuple(np.round(x, 4))
        inside = bool(np.all(x >= box[:, 0] - 1e-6) and np.all(x <= box[:, 1] + 1e-6))
        if inside and key not in known:
            points.setdefault(key, x)
        if by_choice and len(points) == count:
            break
    found = np.array(list(points.values())).reshape(-1, 4)
    if by_choice:
        return found
    order = rng.permutation(len(found))[:count]
    return np.asarray(found[np.sort(order)])


LOWEST_DRAWS = 20_000
"""Random points of the table's space the ``--lowest`` check predicts, to find its deepest holes."""
LOWEST_SPACING = 0.1
"""Two ``--lowest`` points lie at least this far apart (each range scaled to 1), so that one
hole is not checked several times over."""


def lowest_points(surrogate: Surrogate, table: Table, count: int, seed: int = 0) -> np.ndarray:
    """Up to ``count`` configurations where the surrogate predicts the lowest means, among
    ``LOWEST_DRAWS`` random points of the table's space, each at least ``LOWEST_SPACING`` from
    the others: where a surrogate predicts better than anything its table trained, it is
    either right or has a hole, and the methods that look hardest find the holes first (session
    33's corner on the byte model, session 34's large-eps region on the CNN)."""
    box = np.asarray(table.meta["space_log10"])
    width = box[:, 1] - box[:, 0]
    rng = np.random.default_rng(seed)
    draws = box[:, 0] + rng.random((LOWEST_DRAWS, len(box))) * width
    kept: list[np.ndarray] = []
    for i in np.argsort(surrogate.mean(draws)):
        point = draws[i]
        if all(np.sqrt(np.sum(((point - other) / width) ** 2)) >= LOWEST_SPACING for other in kept):
            kept.append(point)
        if len(kept) == count:
            break
    return np.array(kept).reshape(-1, len(box))


def train_point(task: tuple[str, np.ndarray, int, int, int]) -> tuple[float, list[float]]:
    """One real run of ``workload`` at ``row`` (log10 coordinates), as the table trained it."""
    workload, row, seed, data_seed, steps = task
    if workload == "stdlib-lm":
        return train_lm((row, seed, data_seed, steps, None))
    from adamtune.config import AdamConfig
    from adamtune.errors import Diverged
    from adamtune.workloads.mnist1d import Mnist1dWorkload

    adam = AdamConfig(lr=10 ** row[0], beta1=1 - 10 ** row[1], beta2=1 - 10 ** row[2], eps=10 ** row[3])
    trial = RecordingTrial(adam, seed)
    model = workload.removeprefix("mnist1d-")
    runner = Mnist1dWorkload(model=model, steps=steps, eval_every=EVAL_EVERY[workload], data_seed=data_seed)  # type: ignore[arg-type]
    try:
        return float(runner(trial)["val_loss"]), trial.val_loss  # type: ignore[arg-type]
    except Diverged:
        return math.nan, trial.val_loss


def compare(surrogate: Surrogate, table: Table, x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """How far the surrogate's mean was from the real seed mean at the spot-checked points."""
    real = seed_means(y, table.cap)
    said = surrogate.mean(x)
    error = said - real
    noise = table.seed_sd
    return {
        "points": len(x),
        "spearman": round(float(spearmanr(said, real).statistic), 4) if len(x) > 2 else None,
        "rmse_in_seed_sd": round(float(np.sqrt(np.mean(error**2))) / noise, 3),
        "optimistic_by_over_2_seed_sd": int(np.sum(error < -2 * noise)),
        "pessimistic_by_over_2_seed_sd": int(np.sum(error > 2 * noise)),
        "worst": {
            "x": [round(float(v), 3) for v in x[int(np.argmin(error))]],
            "surrogate": round(float(said[int(np.argmin(error))]), 4),
            "real": round(float(real[int(np.argmin(error))]), 4),
        },
    }


def augment(path: Path, table: Table, x: np.ndarray, y: np.ndarray, curves: np.ndarray, command: str) -> None:
    """Append the spot-checked points to the table file as more rows."""
    data = dict(np.load(path, allow_pickle=False))
    meta = json.loads(str(data["meta"]))
    meta.setdefault("spot_checks", []).append({"rows": len(x), "command": command})
    data["x"] = np.concatenate([data["x"], x.astype(np.float32)])
    data["y"] = np.concatenate([data["y"], y.astype(np.float32)])
    if "curves" in data:
        data["curves"] = np.concatenate([data["curves"], curves.astype(np.float16)])
    data["meta"] = np.asarray(json.dumps(meta))
    np.savez_compressed(path, **data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", required=True)
    parser.add_argument("--count", type=int, default=40, help="distinct chosen configurations to train")
    parser.add_argument(
        "--by-choice",
        action="store_true",
        help="draw the methods' runs, not their distinct configurations: a configuration is drawn "
        "in proportion to how often it was chosen",
    )
    parser.add_argument(
        "--lowest",
        action="store_true",
        help="check where the surrogate predicts the lowest means (its possible holes) instead of "
        "the methods' choices",
    )
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--augment", action="store_true", help="append the points to the table")
    parser.add_argument(
        "--augment-saved",
        action="store_true",
        help="append the points of the latest saved spot check instead, without training (their "
        "curves were not kept: NaN)",
    )
    parser.add_argument("--results", type=Path, default=RESULTS / "quality.json")
    args = parser.parse_args()
    if args.lowest and (args.by_choice or args.augment_saved):
        parser.error(
            "--lowest: expected it alone (it draws its own points), "
            "got it with --by-choice or --augment-saved"
        )
    path = TABLES / f"{args.workload}.npz"
    table = Table.load(path)
    if args.augment_saved:
        latest = json.loads((RESULTS / "quality_spotcheck.json").read_text())[args.workload][-1]
        if latest["table_rows"] != len(table.x):
            raise SystemExit(
                f"the latest spot check was of a table of {latest['table_rows']} rows, not {len(table.x)}"
            )
        x, y = np.array(latest["x"]), np.array(latest["y"])
        curves = np.full((*y.shape, evaluations(int(table.meta["steps"]), EVAL_EVERY[args.workload])), np.nan)
        command = f"python benchmarks/quality_spotcheck.py --workload {args.workload} --count {len(x)}"
        augment(path, table, x, y, curves, f"{command}, then --augment-saved")
        print(f"appended {len(x)} rows to {path}")
        return
    surrogate = Surrogate(table)
    # How the points are drawn, as the report names it and as the table's meta records the flag.
    if args.lowest:
        x, drawn, flag = lowest_points(surrogate, table, args.count), "lowest predicted", " --lowest"
    else:
        runs = [r for r in json.loads(args.results.read_text())["runs"] if r["workload"] == args.workload]
        x = chosen_points(runs, table, args.count, by_choice=args.by_choice)
        drawn, flag = ("by choice", " --by-choice") if args.by_choice else ("distinct configurations", "")
    steps = int(table.meta["steps"])
    seeds = table.y.shape[1]  # as many as each table row has, so the points can join the table
    first = len(table.x)  # the rows these points would take in the table: their seeds follow
    tasks = [
        (args.workload, row, 1000 * j + first + i, j, steps) for i, row in enumerate(x) for j in range(seeds)
    ]
    print(f"{len(x)} configurations ({drawn}) x {seeds} seeds of {args.workload} ({steps} steps)", flush=True)
    started = time.perf_counter()
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(args.jobs, mp_context=spawn, initializer=one_thread) as pool:
        trained = list(pool.map(train_point, tasks))
    y = np.array([best for best, _ in trained]).reshape(len(x), seeds)
    curves = np.full((len(x), seeds, evaluations(steps, EVAL_EVERY[args.workload])), np.nan)
    for k, (_, curve) in enumerate(trained):
        curves[k // seeds, k % seeds, : len(curve)] = curve
    report = {
        **compare(surrogate, table, x, y),
        "table_rows": len(table.x),
        "drawn": drawn,
        "seconds": round(time.perf_counter() - started, 1),
        "x": x.round(4).tolist(),
        "y": y.round(5).tolist(),
    }
    print(json.dumps({k: v for k, v in report.items() if k not in ("x", "y")}, indent=2))
    saved = RESULTS / "quality_spotcheck.json"
    previous = json.loads(saved.read_text()) if saved.exists() else {}
    history = previous.get(args.workload, [])
    saved.write_text(json.dumps({**previous, args.workload: [*history, report]}, indent=2))
    if args.augment:
        command = f"python benchmarks/quality_spotcheck.py --workload {args.workload} --count {args.count}"
        command += f"{flag} --augment"
        augment(path, table, x, y, curves, command)
        print(f"appended {len(x)} rows to {path}")


if __name__ == "__main__":
    main()
