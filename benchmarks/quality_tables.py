"""Training tables for the quality benchmark: real training over a dense quasi-random set of
Adam configurations on a wide space, several seeds each.

    python benchmarks/quality_tables.py --workload mnist1d-mlp            # 2048 configs x 2 seeds
    python benchmarks/quality_tables.py --workload mnist1d-mlp --configs 256 --steps 500  # a sample
    python benchmarks/quality_tables.py --workload stdlib-lm --configs 320 --steps 400 --chunk 32
    python benchmarks/quality_tables.py --workload mnist1d-mlp --seeds 4 --steps 2000 --more-seeds
                                      # two more replicates for the finished 2-seed table
    python benchmarks/quality_tables.py --workload stdlib-lm --configs 768 --steps 400 --chunk 64 \
        --more-configs --stdlib COPY  # the finished table's Halton sequence continued to 768
                                      # configurations, on another Python with a COPY of the
                                      # table's Lib/*.py (the bytes must match)

The MNIST-1D workloads train with the batched trainer (``--workers`` threads; on a CUDA
device, which it uses when there is one, one trainer, and ``--chunk 1024`` is best: the MLP's
2048 configurations x 2 seeds at 8000 steps took 1.4 minutes on an H200, the CNN's 256 x 1
did not finish in 200 s); ``stdlib-lm``
(``adamtune.workloads.StdlibLmWorkload``, a byte transformer that the batched trainer runs no
faster than one run after another) trains one configuration after another in ``--workers``
spawned processes of one torch thread each.

The space (PLAYBOOK.md section 1 widened as the quality issue asks): lr 1e-5..1, 1-beta1
1e-3..0.5, 1-beta2 1e-4..0.1, eps 1e-10..1, all log, filled by one scrambled Halton sequence
(seed 0). Seed replicate j of configuration i initialises its model with seed 1000*j + i and
draws batches in the order of data seed j (shared by the configurations of one replicate, as
in a batched study). The value is the best validation cross-entropy during training; a run
that diverges is NaN (the benchmark treats it as ``meta["cap"]``, the loss of an untrained
model: ln 10 for 10 classes, ln 256 for the byte model). Stored as
``benchmarks/tables/WORKLOAD.npz``: ``x`` (configs x 4: log10 lr, log10(1-beta1),
log10(1-beta2), log10 eps), ``y`` (configs x seeds), ``curves`` (configs x seeds x
evaluations: the validation loss every ``eval_every`` steps, float16, NaN after a run
stopped; tables built before curves were kept lack it), ``meta`` (JSON). The run saves after
every chunk (both replicates of a chunk before the next chunk) and resumes from the file. Rows
appended after the sequence (``quality_spotcheck.py --augment``) stay last when the sequence
is continued (``--more-configs``). The byte model's meta also records the Python version
and the bytes of its data, which come from the running Python's standard library.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import platform
import time
from concurrent.futures import Executor, ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

TABLES = Path(__file__).parent / "tables"
WIDE_LOG10 = np.array([[-5.0, 0.0], [-3.0, math.log10(0.5)], [-4.0, -1.0], [-10.0, 0.0]])
"""Per coordinate: log10 of the low and high end (lr, 1-beta1, 1-beta2, eps)."""
WORKLOADS = ("mnist1d-mlp", "mnist1d-cnn", "stdlib-lm")
CAP = {"mnist1d-mlp": math.log(10.0), "mnist1d-cnn": math.log(10.0), "stdlib-lm": math.log(256.0)}
"""What a diverged run stands for: the loss of an untrained model (10 classes, 256 bytes)."""
EVAL_EVERY = {"mnist1d-mlp": 100, "mnist1d-cnn": 100, "stdlib-lm": 50}
"""The workloads' defaults: the curves have one point per this many steps."""
DEFAULTS = {
    "mnist1d-mlp": {"configs": 2048, "steps": 8000, "chunk": 128},
    "mnist1d-cnn": {"configs": 2048, "steps": 8000, "chunk": 128},
    # The byte model: a run of 400 steps takes about 7 s on one core, so 320 configurations
    # on 2 seeds take about an hour on 2 busy cores; a chunk of 32 about 3 minutes.
    "stdlib-lm": {"configs": 320, "steps": 400, "chunk": 32},
}


def configurations(count: int) -> np.ndarray:
    from adamtune.sampling import halton_points

    unit = halton_points(0, 4, count)
    return np.asarray(WIDE_LOG10[:, 0] + unit * (WIDE_LOG10[:, 1] - WIDE_LOG10[:, 0]))


class CurveRecorder:
    """A member's reporter that keeps its validation-loss curve."""

    def __init__(self) -> None:
        self.val_loss: list[float] = []

    def report(self, step: int, **metrics: float) -> None:
        self.val_loss.append(metrics["val_loss"])


def evaluations(steps: int, eval_every: int) -> int:
    """How many evaluations a run of ``steps`` makes (every ``eval_every`` steps and the last)."""
    return steps // eval_every + (steps % eval_every != 0)


def train_chunk(
    workload: str,
    x: np.ndarray,
    first: int,
    replicate: int,
    steps: int,
    workers: int,
    pool: Executor | None = None,
    source: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Best validation loss (NaN when diverged) and validation curves of one chunk."""
    if workload == "stdlib-lm":
        assert pool is not None
        tasks = [(row, 1000 * replicate + first + i, replicate, steps, source) for i, row in enumerate(x)]
        runs = list(pool.map(train_lm, tasks))
        curves = np.full((len(x), evaluations(steps, EVAL_EVERY[workload])), np.nan)
        for i, (_, curve) in enumerate(runs):
            curves[i, : len(curve)] = curve
        return np.array([best for best, _ in runs]), curves
    import torch

    from adamtune.config import AdamConfig
    from adamtune.torch import Member, train_in_threads
    from adamtune.workloads.mnist1d import Mnist1dWorkload

    model = workload.removeprefix("mnist1d-")
    spec = Mnist1dWorkload(model=model, steps=steps, eval_every=EVAL_EVERY[workload]).batched_spec()  # type: ignore[arg-type]
    members = [
        Member(
            AdamConfig(lr=10 ** row[0], beta1=1 - 10 ** row[1], beta2=1 - 10 ** row[2], eps=10 ** row[3]),
            seed=1000 * replicate + first + i,
            reporter=CurveRecorder(),
        )
        for i, row in enumerate(x)
    ]
    torch.set_num_threads(1)
    results = train_in_threads(spec, members, workers, data_seed=replicate)
    best = np.array(
        [r.metrics.get("val_loss", math.nan) if r.status == "complete" else math.nan for r in results]
    )
    curves = np.full((len(members), evaluations(steps, spec.eval_every)), np.nan)
    for i, member in enumerate(members):
        assert isinstance(member.reporter, CurveRecorder)
        curves[i, : len(member.reporter.val_loss)] = member.reporter.val_loss
    return best, curves


class RecordingTrial:
    """What a workload needs of a trial: the Adam configuration, the seed, ``report``."""

    def __init__(self, adam: Any, seed: int) -> None:
        self.adam = adam
        self.seed = seed
        self.val_loss: list[float] = []

    def report(self, step: int, **metrics: float) -> None:
        self.val_loss.append(metrics["val_loss"])


def train_lm(task: tuple[np.ndarray, int, int, int, str | None]) -> tuple[float, list[float]]:
    """One byte-model run (in a pool process): its best validation loss (NaN when it
    diverged) and its validation curve."""
    from adamtune.config import AdamConfig
    from adamtune.errors import Diverged
    from adamtune.workloads import StdlibLmWorkload

    row, seed, data_seed, steps, source = task
    adam = AdamConfig(lr=10 ** row[0], beta1=1 - 10 ** row[1], beta2=1 - 10 ** row[2], eps=10 ** row[3])
    trial = RecordingTrial(adam, seed)
    workload = StdlibLmWorkload(
        steps=steps, eval_every=EVAL_EVERY["stdlib-lm"], data_seed=data_seed, source=source
    )
    try:
        best = workload(trial)["val_loss"]  # type: ignore[arg-type]
    except Diverged:
        best = math.nan
    return best, trial.val_loss


def one_thread() -> None:
    import torch

    torch.set_num_threads(1)


def where_trained(workload: str) -> dict[str, str]:
    """The device and torch that trained a table: float32 results differ slightly between them."""
    import torch

    from adamtune.torch import default_device

    device = default_device() if workload != "stdlib-lm" else torch.device("cpu")
    name = f"cuda ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "cpu"
    return {"device": name, "torch": torch.__version__}


def lm_meta(source: str | None = None) -> dict[str, Any]:
    """What the byte model's table depends on besides the command: Python, its data, the model."""
    import dataclasses

    from adamtune.workloads import StdlibLmWorkload
    from adamtune.workloads.stdlib_lm import load_data, source_files

    train, val = load_data(source)
    settings = dataclasses.asdict(StdlibLmWorkload())
    for name in ("steps", "eval_every", "threads", "data_seed", "source"):
        del settings[name]
    return {
        "python": platform.python_version(),
        "files": len(source_files(source)),
        "bytes": len(train) + len(val),
        "train_bytes": len(train),
        "val_bytes": len(val),
        "model": settings,
    }


def add_curves(path: Path, rebuilt: Path) -> dict[str, Any]:
    """Give a table built before curves were kept the curves of a rebuild with the same command
    and seeds, keeping the table's own values (the ones its results were computed from), and
    record how closely the rebuild reproduced them."""
    data = dict(np.load(path, allow_pickle=False))
    again = np.load(rebuilt, allow_pickle=False)
    if not np.array_equal(data["x"], again["x"]) or data["y"].shape != again["y"].shape:
        raise SystemExit(f"{rebuilt} is not a rebuild of {path}: its configurations differ")
    y, y_again = data["y"].astype(float), again["y"].astype(float)
    both = ~np.isnan(y) & ~np.isnan(y_again)
    difference = np.abs(y[both] - y_again[both])
    match = {
        "runs": int(y.size),
        "diverged_in_one_build_only": int(np.sum(np.isnan(y) != np.isnan(y_again))),
        "median_abs_difference": float(np.median(difference)),
        "runs_differing_by_over_0.01": int(np.sum(difference > 0.01)),
        "max_abs_difference": float(difference.max()),
    }
    meta = json.loads(str(data["meta"]))
    meta["curves_from_rebuild"] = {**match, "command": json.loads(str(again["meta"]))["command"]}
    data["curves"], data["meta"] = again["curves"], np.asarray(json.dumps(meta))
    np.savez_compressed(path, **data)
    return match


def with_more_seeds(
    path: Path, x: np.ndarray, steps: int, seeds: int, chunk: int, meta: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """The arrays of a build that adds replicates to the finished table at ``path`` up to
    ``seeds``, with the table's own replicates in place and marked done, and the meta that
    records which replicates were trained where."""
    if not path.exists():
        raise SystemExit(f"--more-seeds: expected a finished table at {path}, found none")
    table = np.load(path, allow_pickle=False)
    old = json.loads(str(table["meta"]))
    have = table["y"].shape[1]
    if not np.array_equal(table["x"], x.astype(np.float32)) or old["steps"] != steps:
        raise SystemExit(
            f"--more-seeds: expected {path} to hold the same {len(x)} configurations at {steps} steps, "
            f"got {len(table['x'])} at {old['steps']}"
        )
    if have >= seeds:
        raise SystemExit(f"--more-seeds: expected --seeds above the table's {have}, got {seeds}")
    if "curves" not in table:
        raise SystemExit(
            f"--more-seeds: expected {path} to keep its curves; add them with --curves-from first"
        )
    y = np.full((len(x), seeds), np.nan)
    curves = np.full((len(x), seeds, table["curves"].shape[2]), np.nan)
    done = np.zeros((len(x) // chunk + 1, seeds), dtype=bool)
    y[:, :have], curves[:, :have] = table["y"], table["curves"]
    done[: math.ceil(len(x) / chunk), :have] = True
    built = {"device": old.get("device", "cpu"), "torch": old.get("torch", "not recorded")}
    earlier = old.pop("replicates", None) or [
        {"replicates": f"0-{have - 1}", **built, "seconds": old["seconds"]}
    ]
    later = {"replicates": f"{have}-{seeds - 1}", "device": meta["device"], "torch": meta["torch"]}
    merged = {**old, **meta, "replicates": [*earlier, later], "seconds": 0.0}
    merged["command"] = f"{meta['command']} --more-seeds"
    return y, curves, done, merged


LM_DATA = ("files", "bytes", "train_bytes", "val_bytes", "model")
"""The byte model's meta that a continued table must match: the same data and model."""


def with_more_configs(
    path: Path, x: np.ndarray, steps: int, seeds: int, chunk: int, meta: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any], dict[str, np.ndarray]]:
    """The arrays of a build that continues the finished table at ``path`` to the ``len(x)``
    configurations ``x`` (its Halton sequence, longer), with the table's own rows in place and
    marked done; the meta that records where each range of configurations was trained; and the
    rows appended after the sequence (spot checks), which the finished build puts last again."""
    if not path.exists():
        raise SystemExit(f"--more-configs: expected a finished table at {path}, found none")
    table = np.load(path, allow_pickle=False)
    old = json.loads(str(table["meta"]))
    have = int(old["configs"])
    shape = f"{have} configurations x {table['y'].shape[1]} seeds at {old['steps']} steps"
    if old["steps"] != steps or table["y"].shape[1] != seeds:
        raise SystemExit(f"--more-configs: expected {path} to be {seeds} seeds at {steps} steps, got {shape}")
    if have >= len(x):
        raise SystemExit(f"--more-configs: expected --configs above the table's {have}, got {len(x)}")
    if have % chunk:
        raise SystemExit(f"--more-configs: expected a --chunk that divides the table's {have}, got {chunk}")
    if not np.array_equal(table["x"][:have], x[:have].astype(np.float32)):
        raise SystemExit(f"--more-configs: {path} does not begin with this command's Halton sequence")
    if "curves" not in table:
        raise SystemExit(
            f"--more-configs: expected {path} to keep its curves; add them with --curves-from first"
        )
    changed = [name for name in LM_DATA if name in old and old[name] != meta.get(name)]
    if changed:
        raise SystemExit(
            f"--more-configs: the byte model's data or model differ from the table's ({', '.join(changed)}): "
            f"expected {', '.join(str(old[name]) for name in changed)}, got "
            f"{', '.join(str(meta.get(name)) for name in changed)}; pass --stdlib with a copy of its Lib/*.py"
        )
    y = np.full((len(x), seeds), np.nan)
    curves = np.full((len(x), seeds, table["curves"].shape[2]), np.nan)
    done = np.zeros((len(x) // chunk + 1, seeds), dtype=bool)
    y[:have], curves[:have] = table["y"][:have], table["curves"][:have]
    done[: have // chunk] = True
    appended = {name: table[name][have:] for name in ("x", "y", "curves")}
    where = ("device", "torch", "python")  # the byte model's tables record the Python too
    built = {name: old.get(name, "not recorded") for name in where if name in meta}
    first = {"configs": f"0-{have - 1}", **built, "seconds": old["seconds"]}
    earlier = old.pop("configurations", None) or [first]
    later = {"configs": f"{have}-{len(x) - 1}", **{name: meta[name] for name in where if name in meta}}
    merged = {**old, "configs": len(x), "configurations": [*earlier, later], "seconds": 0.0}
    merged["command"] = f"{meta['command']} --more-configs"
    return y, curves, done, merged, appended


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="mnist1d-mlp", choices=WORKLOADS)
    parser.add_argument("--configs", type=int, help="default: 2048 (MNIST-1D), 320 (stdlib-lm)")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--steps", type=int, help="default: 8000 (MNIST-1D), 400 (stdlib-lm)")
    parser.add_argument(
        "--chunk", type=int, help="configurations trained (and saved) together; default: 128 (MNIST-1D), 32"
    )
    parser.add_argument(
        "--workers", type=int, help="threads or processes; default: one per core, one trainer on a GPU"
    )
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--curves-from",
        type=Path,
        metavar="REBUILT",
        help="add the curves of REBUILT (the same command, --out elsewhere) to the table, which "
        "keeps its values; no training",
    )
    parser.add_argument(
        "--more-seeds",
        action="store_true",
        help="add replicates to the finished table (--out) up to --seeds, keeping its own",
    )
    parser.add_argument(
        "--more-configs",
        action="store_true",
        help="continue the finished table's (--out) configurations to --configs, keeping its own",
    )
    parser.add_argument(
        "--stdlib",
        metavar="DIR",
        help="stdlib-lm: train on DIR's *.py (a copy of the Lib/ the table was built on) instead of "
        "the running Python's standard library",
    )
    args = parser.parse_args()
    if args.more_seeds and args.more_configs:
        raise SystemExit("expected one of --more-seeds and --more-configs, got both")
    if args.stdlib and args.workload != "stdlib-lm":
        raise SystemExit(f"--stdlib: expected --workload stdlib-lm, got {args.workload}")
    if args.curves_from:
        out = args.out or TABLES / f"{args.workload}.npz"
        print(json.dumps(add_curves(out, args.curves_from), indent=2))
        return
    for name, value in DEFAULTS[args.workload].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    trained_on = where_trained(args.workload)
    if args.workers is None:
        # Trainers side by side only share a GPU's queue: one trainer of many members is faster.
        args.workers = 1 if trained_on["device"].startswith("cuda") else os.cpu_count() or 1
    out = args.out or TABLES / f"{args.workload}.npz"
    x = configurations(args.configs)
    y = np.full((args.configs, args.seeds), np.nan)
    eval_every = EVAL_EVERY[args.workload]
    curves = np.full((args.configs, args.seeds, evaluations(args.steps, eval_every)), np.nan)
    done = np.zeros((args.configs // args.chunk + 1, args.seeds), dtype=bool)
    meta = {
        "workload": args.workload,
        "steps": args.steps,
        "configs": args.configs,
        "seeds": args.seeds,
        "cap": CAP[args.workload],
        "space_log10": WIDE_LOG10.tolist(),
        "command": f"python benchmarks/quality_tables.py --workload {args.workload} --configs {args.configs} "
        f"--seeds {args.seeds} --steps {args.steps}",
        "seconds": 0.0,
        "eval_every": eval_every,
        **trained_on,
    }
    appended: dict[str, np.ndarray] = {}
    if args.workload == "stdlib-lm":
        meta.update(lm_meta(args.stdlib))
        meta["command"] = f"{meta['command']} --chunk {args.chunk}"
    if args.more_seeds:
        y, curves, done, meta = with_more_seeds(out, x, args.steps, args.seeds, args.chunk, meta)
    if args.more_configs:
        y, curves, done, meta, appended = with_more_configs(out, x, args.steps, args.seeds, args.chunk, meta)
    pool: Executor | None = None
    if args.workload == "stdlib-lm":
        spawn = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(args.workers, mp_context=spawn, initializer=one_thread)
    partial = out.with_suffix(".partial.npz")
    if partial.exists():
        saved = np.load(partial)
        y, done, curves = saved["y"], saved["done"], saved["curves"]
        meta["seconds"] = float(json.loads(str(saved["meta"]))["seconds"])
        print(f"resuming: {int(done.sum())} chunks done")
    out.parent.mkdir(parents=True, exist_ok=True)
    # Chunk by chunk, each on every replicate: a build cut short leaves whole configurations.
    for chunk, first in enumerate(range(0, args.configs, args.chunk)):
        for replicate in range(args.seeds):
            if done[chunk, replicate]:
                continue
            started = time.perf_counter()
            rows = slice(first, first + args.chunk)
            y[rows, replicate], curves[rows, replicate] = train_chunk(
                args.workload, x[rows], first, replicate, args.steps, args.workers, pool, args.stdlib
            )
            done[chunk, replicate] = True
            meta["seconds"] = float(meta["seconds"]) + time.perf_counter() - started
            np.savez(partial, y=y, done=done, curves=curves, meta=json.dumps(meta))
            trained = int(done.sum()) * args.chunk
            print(
                f"replicate {replicate} configs {first}-{min(first + args.chunk, args.configs) - 1}: "
                f"{time.perf_counter() - started:.0f} s, {trained} runs so far, "
                f"{int(np.isnan(y[rows, replicate]).sum())} diverged",
                flush=True,
            )
    if pool is not None:
        pool.shutdown()
    if args.more_seeds or args.more_configs:  # its own time, then the table's in all
        parts = meta["replicates" if args.more_seeds else "configurations"]
        parts[-1]["seconds"] = meta["seconds"]
        meta["seconds"] = sum(float(part["seconds"]) for part in parts)
    x, y, curves = (
        np.concatenate([ours, appended[name]]) if appended else ours
        for name, ours in (("x", x), ("y", y), ("curves", curves))
    )
    np.savez_compressed(
        out,
        x=x.astype(np.float32),
        y=y.astype(np.float32),
        curves=curves.astype(np.float16),
        meta=json.dumps(meta),
    )
    partial.unlink(missing_ok=True)
    print(f"wrote {out} ({out.stat().st_size / 1e3:.0f} kB) in {meta['seconds'] / 60:.1f} min of training")


if __name__ == "__main__":
    main()
