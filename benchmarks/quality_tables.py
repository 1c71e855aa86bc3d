"""Training tables for the quality benchmark: real training over a dense quasi-random set of
Adam configurations on a wide space, several seeds each, trained with the batched trainer.

    python benchmarks/quality_tables.py --workload mnist1d-mlp            # 2048 configs x 2 seeds
    python benchmarks/quality_tables.py --workload mnist1d-mlp --configs 256 --steps 500  # a sample

The space (PLAYBOOK.md section 1 widened as the quality issue asks): lr 1e-5..1, 1-beta1
1e-3..0.5, 1-beta2 1e-4..0.1, eps 1e-10..1, all log, filled by one scrambled Halton sequence
(seed 0). Seed replicate j of configuration i initialises its model with seed 1000*j + i and
draws batches in the order of data seed j (shared by the configurations of one replicate, as
in a batched study). The value is the best validation cross-entropy during training; a run
that diverges is NaN (the benchmark treats it as ln 10, the loss of an untrained 10-class
model). Stored as ``benchmarks/tables/WORKLOAD.npz``: ``x`` (configs x 4: log10 lr,
log10(1-beta1), log10(1-beta2), log10 eps), ``y`` (configs x seeds), ``meta`` (JSON). The run
saves after every chunk and resumes from the file.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np

TABLES = Path(__file__).parent / "tables"
WIDE_LOG10 = np.array([[-5.0, 0.0], [-3.0, math.log10(0.5)], [-4.0, -1.0], [-10.0, 0.0]])
"""Per coordinate: log10 of the low and high end (lr, 1-beta1, 1-beta2, eps)."""
CAP = math.log(10.0)


def configurations(count: int) -> np.ndarray:
    from adamtune.sampling import halton_points

    unit = halton_points(0, 4, count)
    return WIDE_LOG10[:, 0] + unit * (WIDE_LOG10[:, 1] - WIDE_LOG10[:, 0])


def train_chunk(
    workload: str, x: np.ndarray, first: int, replicate: int, steps: int, workers: int
) -> np.ndarray:
    import torch

    from adamtune.config import AdamConfig
    from adamtune.torch import Member, train_in_threads
    from adamtune.workloads.mnist1d import Mnist1dWorkload

    model = workload.removeprefix("mnist1d-")
    spec = Mnist1dWorkload(model=model, steps=steps).batched_spec()  # type: ignore[arg-type]
    members = [
        Member(
            AdamConfig(lr=10 ** row[0], beta1=1 - 10 ** row[1], beta2=1 - 10 ** row[2], eps=10 ** row[3]),
            seed=1000 * replicate + first + i,
        )
        for i, row in enumerate(x)
    ]
    torch.set_num_threads(1)
    results = train_in_threads(spec, members, workers, data_seed=replicate)
    return np.array(
        [r.metrics.get("val_loss", math.nan) if r.status == "complete" else math.nan for r in results]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="mnist1d-mlp", choices=["mnist1d-mlp", "mnist1d-cnn"])
    parser.add_argument("--configs", type=int, default=2048)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=8000)
    parser.add_argument("--chunk", type=int, default=128, help="configurations trained as one batch")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    out = args.out or TABLES / f"{args.workload}.npz"
    x = configurations(args.configs)
    y = np.full((args.configs, args.seeds), np.nan)
    done = np.zeros((args.configs // args.chunk + 1, args.seeds), dtype=bool)
    meta = {
        "workload": args.workload,
        "steps": args.steps,
        "configs": args.configs,
        "seeds": args.seeds,
        "cap": CAP,
        "space_log10": WIDE_LOG10.tolist(),
        "command": f"python benchmarks/quality_tables.py --workload {args.workload} --configs {args.configs} "
        f"--seeds {args.seeds} --steps {args.steps}",
        "seconds": 0.0,
    }
    partial = out.with_suffix(".partial.npz")
    if partial.exists():
        saved = np.load(partial)
        y, done = saved["y"], saved["done"]
        meta["seconds"] = float(json.loads(str(saved["meta"]))["seconds"])
        print(f"resuming: {int(done.sum())} chunks done")
    out.parent.mkdir(parents=True, exist_ok=True)
    for replicate in range(args.seeds):
        for chunk, first in enumerate(range(0, args.configs, args.chunk)):
            if done[chunk, replicate]:
                continue
            started = time.perf_counter()
            rows = slice(first, first + args.chunk)
            y[rows, replicate] = train_chunk(
                args.workload, x[rows], first, replicate, args.steps, args.workers
            )
            done[chunk, replicate] = True
            meta["seconds"] = float(meta["seconds"]) + time.perf_counter() - started
            np.savez(partial, y=y, done=done, meta=json.dumps(meta))
            trained = int(done.sum()) * args.chunk
            print(
                f"replicate {replicate} configs {first}-{min(first + args.chunk, args.configs) - 1}: "
                f"{time.perf_counter() - started:.0f} s, {trained} runs so far, "
                f"{int(np.isnan(y[rows, replicate]).sum())} diverged",
                flush=True,
            )
    np.savez_compressed(out, x=x.astype(np.float32), y=y.astype(np.float32), meta=json.dumps(meta))
    partial.unlink(missing_ok=True)
    print(f"wrote {out} ({out.stat().st_size / 1e3:.0f} kB) in {meta['seconds'] / 60:.1f} min of training")


if __name__ == "__main__":
    main()
