"""Commands at once: ``adamtune run --workers K`` on a PyTorch program that sets no thread count.

Each command's PyTorch computes with a thread per core unless told otherwise, so K commands on
K cores run K threads a core, and the oversubscribed cores slow every run (PLAYBOOK.md,
section 9). ``adamtune run`` gives each command its share of the cores (``OMP_NUM_THREADS``,
...) unless the user set a count. This times a small study three ways: one command at a time,
K at once with a thread per core each (``OMP_NUM_THREADS`` set to the core count: what every
command computed with before adamtune set it), and K at once as adamtune runs them now.

    python benchmarks/command_threads.py              # 8 trials, 2 at once
    python benchmarks/command_threads.py --budget 8 --workers 2 --repeats 2

The last line is one JSON object. docs/performance.md has the results.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from adamtune.environment import THREAD_VARIABLES, cpu_cores

ADAMTUNE = str(Path(sys.executable).parent / "adamtune")

# A user's script: an MLP on a fixed synthetic problem, 10 epochs, metrics logged as pairs
# on standard error, and no torch.set_num_threads.
PROGRAM = textwrap.dedent(
    """
    import argparse, logging
    import torch

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--beta1", type=float, default=0.9)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(1234)
    x = torch.randn(2000, 10)
    y = ((x[:, 0] * x[:, 1] + torch.sin(3 * x[:, 2])) > 0).long()
    torch.manual_seed(args.seed)
    model = torch.nn.Sequential(torch.nn.Linear(10, 64), torch.nn.ReLU(), torch.nn.Linear(64, 2))
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(args.beta1, 0.999))
    for epoch in range(10):
        order = torch.randperm(1500)
        for start in range(0, 1500, 100):
            batch = order[start : start + 100]
            loss = torch.nn.functional.cross_entropy(model(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            val_loss = torch.nn.functional.cross_entropy(model(x[1500:]), y[1500:]).item()
        logging.info("epoch %d train_loss=%.4f val_loss=%.4f", epoch, loss.item(), val_loss)
    """
)


def study_seconds(folder: Path, budget: int, workers: int, threads: str | None) -> float:
    """Wall seconds of one quasi-random study (no confirmation); ``threads``: the thread
    variables' value in the environment it starts from (None: unset)."""
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    if threads is not None:
        env.update(dict.fromkeys(THREAD_VARIABLES, threads))
    storage = folder / f"study-{time.monotonic_ns()}.journal"
    command = [ADAMTUNE, "run", "--storage", str(storage), "--budget", str(budget), "--workers", str(workers)]
    command += ["--strategy", "quasi-random", "--metrics-format", "pairs", "--confirm", "0"]
    command += ["--", sys.executable, "train.py", "--lr", "{lr}", "--beta1", "{beta1}", "--seed", "{seed}"]
    start = time.monotonic()
    subprocess.run(command, cwd=folder, env=env, check=True, capture_output=True)
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    cores = cpu_cores()
    settings = {
        "one at a time": (1, None),
        f"{args.workers} at once, a thread per core each": (args.workers, str(cores)),
        f"{args.workers} at once, adamtune's share": (args.workers, None),
    }
    results: dict[str, list[float]] = {name: [] for name in settings}
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "train.py").write_text(PROGRAM)
        for _ in range(args.repeats):  # alternating, so that a busy spell hits every setting
            for name, (workers, threads) in settings.items():
                seconds = study_seconds(Path(folder), args.budget, workers, threads)
                results[name].append(round(seconds, 1))
                print(f"{name}: {seconds:.1f} s", flush=True)
    print(json.dumps({"cores": cores, "budget": args.budget, "seconds": results}))


if __name__ == "__main__":
    main()
