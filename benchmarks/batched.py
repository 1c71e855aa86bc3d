"""Batched-training benchmark: trial-steps per second on the MNIST-1D models.

For N trials of one model (MLP 40-100-100-10, MLP 40-256-256-10, the paper's CNN), batch 100,
STEPS steps each, compare three ways of using this machine's cores:

  loop      one process, one thread (the MNIST-1D workload's default), the trials one after
            another, torch.optim.Adam; one after another, its rate does not depend on N, so it
            is measured on min(N, 4) trials
  parallel  one single-thread process per core, fused torch.optim.Adam, the trials dealt out
            among them: the best non-batched use of the cores
  batched   adamtune.torch batched training as BatchedExecutor runs it on the CPU: one trainer
            per core in threads of one process, one intra-op thread each, the N trials split
            among them (also shown: one trainer for all N with all cores as intra-op threads)

    python benchmarks/batched.py            # N = 1, 8, 25, 64 on all three models
    python benchmarks/batched.py --quick    # MLP-100 at N = 25 only
    python benchmarks/batched.py --updates  # the update's cost, Adam and NAdam, both updates

Also prints where a batched step's time goes, and the batched run's matrix-multiply rate
against this machine's. The last line is one JSON object (quick mode: the N = 25 MLP-100 row).
docs/performance.md has the results.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import time
from typing import Any

BATCH = 100
LRS = (1e-3, 3e-3, 1e-2)  # trials differ by lr (safe values: no member diverges or stops)


def build(model: str, seed: int) -> Any:
    from torch import nn

    from adamtune.workloads.mnist1d import make_model

    if model == "mlp256":
        import torch

        torch.manual_seed(seed)
        width = 256
        return nn.Sequential(
            nn.Linear(40, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 10)
        )
    return make_model("mlp" if model == "mlp100" else "cnn", seed)  # type: ignore[arg-type]


def train_one(model: str, seed: int, lr: float, steps: int, fused: bool) -> None:
    import torch
    import torch.nn.functional as F

    from adamtune.torch import batch_order
    from adamtune.workloads.mnist1d import load_data

    x_train, y_train, _, _ = load_data()
    net = build(model, seed)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr, fused=fused or None)
    batches = batch_order(len(x_train), BATCH, 0)
    for _ in range(steps):
        index = next(batches)
        loss = F.cross_entropy(net(x_train[index]), y_train[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss.item()  # the loop reads its loss every step, as a training loop does


def loop(model: str, n: int, steps: int, threads: int) -> float:
    import torch

    torch.set_num_threads(threads)
    train_one(model, 0, LRS[0], 5, fused=False)  # warm-up
    started = time.perf_counter()
    for i in range(n):
        train_one(model, i, LRS[i % len(LRS)], steps, fused=False)
    return n * steps / (time.perf_counter() - started)


def _worker(model: str, trials: list[int], steps: int, barrier: Any, out: Any) -> None:
    import torch

    torch.set_num_threads(1)
    train_one(model, 0, LRS[0], 5, fused=True)  # warm-up, before the clock starts
    barrier.wait()
    started = time.perf_counter()
    for i in trials:
        train_one(model, i, LRS[i % len(LRS)], steps, fused=True)
    out.put(time.perf_counter() - started)


def parallel(model: str, n: int, steps: int, cores: int) -> float:
    context = mp.get_context("spawn")
    workers = min(cores, n)
    barrier, out = context.Barrier(workers), context.Queue()
    deal = [list(range(n))[k::workers] for k in range(workers)]
    processes = [
        context.Process(target=_worker, args=(model, deal[k], steps, barrier, out)) for k in range(workers)
    ]
    for process in processes:
        process.start()
    walls = [out.get() for _ in processes]
    for process in processes:
        process.join()
    return n * steps / max(walls)


def batched(model: str, n: int, steps: int, threads: int, workers: int = 1, device: str = "cpu") -> float:
    """Trial-steps per second of ``workers`` batched trainers side by side (as BatchedExecutor
    runs them), with ``threads`` intra-op threads each."""
    import torch

    from adamtune.torch import torch_threads, train_in_threads

    spec, members = _batched_setup(model, n, steps)
    with torch_threads(threads):
        train_in_threads(_batched_setup(model, n, 5)[0], members, workers, device=device)  # warm-up
        started = time.perf_counter()
        train_in_threads(spec, members, workers, device=device)
        if device == "cuda":
            torch.cuda.synchronize()
        return n * steps / (time.perf_counter() - started)


def batched_profile(
    model: str, n: int, steps: int, optimizer: str = "adam", update: str = "auto"
) -> tuple[dict[str, float], str]:
    """Milliseconds per step by phase: one trainer, all N members, one thread."""
    from adamtune.torch import BatchedTrainer, torch_threads

    spec, members = _batched_setup(model, n, steps, optimizer)
    with torch_threads(1):
        BatchedTrainer(_batched_setup(model, n, 5)[0], members, device="cpu", update=update).run()  # type: ignore[arg-type]
        trainer = BatchedTrainer(spec, members, device="cpu", profile=True, update=update)  # type: ignore[arg-type]
        trainer.run()
    assert trainer.timings is not None
    timings = {phase: 1e3 * seconds / steps for phase, seconds in trainer.timings.items()}
    return timings, f"{trainer.path} path, {trainer.backward} backward"


def updates(steps: int) -> None:
    """The update phase's milliseconds per step for each optimizer family and update (one
    trainer, one thread): which update ``auto`` should choose on the CPU."""
    print("| model | N | optimizer | update | update ms/step | whole step ms |")
    print("|---|---|---|---|---|---|")
    for model, n in (("mlp100", 25), ("mlp256", 25), ("cnn", 25), ("mlp100", 64)):
        for optimizer in ("adam", "nadam"):
            for update in ("fused", "vectorised"):
                per_step, _ = batched_profile(model, n, steps, optimizer, update)
                whole = sum(per_step.values())
                print(f"| {model} | {n} | {optimizer} | {update} | {per_step['update']:.3f} | {whole:.2f} |")


def _batched_setup(model: str, n: int, steps: int, optimizer: str = "adam") -> tuple[Any, list[Any]]:
    from adamtune.config import AdamConfig
    from adamtune.torch import BatchedSpec, Member
    from adamtune.workloads.mnist1d import load_data

    x_train, y_train, x_val, y_val = load_data()
    spec = BatchedSpec(
        model=lambda seed: build(model, seed),
        x_train=x_train,
        y_train=y_train,
        x_val=x_val,
        y_val=y_val,
        steps=steps,
        batch_size=BATCH,
        eval_every=steps,  # one evaluation, at the end: the other set-ups do none
        divergence_factor=100.0,
    )
    configs = [AdamConfig(lr=LRS[i % len(LRS)], optimizer=optimizer) for i in range(n)]  # type: ignore[arg-type]
    return spec, [Member(config, i) for i, config in enumerate(configs)]


def matmul_rate(threads: int) -> dict[str, float]:
    """GFLOP/s of a large float32 matmul and of the MLP-100's middle layer at N = 25."""

    from adamtune.torch import torch_threads

    with torch_threads(threads):
        return _matmul_rate()


def _matmul_rate() -> dict[str, float]:
    import torch

    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    x, w = torch.randn(25, 100, 100), torch.randn(25, 100, 100)
    rates = {}
    for name, run, flops in (
        ("matmul 1024^3", lambda: a @ b, 2 * 1024**3),
        ("bmm 25x(100x100)(100x100)", lambda: torch.bmm(x, w), 2 * 25 * 100**3),
    ):
        for _ in range(3):
            run()
        repeats, started = 0, time.perf_counter()
        while time.perf_counter() - started < 1.0:
            run()
            repeats += 1
        rates[name] = flops * repeats / (time.perf_counter() - started) / 1e9
    return rates


def mlp_flops(width: int) -> int:
    """Multiply-add FLOPs of one training step of one trial: forward 2*B*sum(in*out), backward
    twice that, less the input gradient of the first layer, which is never needed."""
    dims = [(40, width), (width, width), (width, 10)]
    forward = 2 * BATCH * sum(i * o for i, o in dims)
    return 3 * forward - 2 * BATCH * 40 * width


def measure(model: str, n: int, steps: int, cores: int, quick: bool) -> dict[str, Any]:
    loop_rate = loop(model, min(n, 4), steps, 1)
    parallel_rate = parallel(model, n, steps, cores)
    # As BatchedExecutor: one trainer per core (at most one per trial), one thread each.
    batched_rate = batched(model, n, steps, 1, workers=min(cores, n))
    # Shown in quick mode only: with another process on the cores, multi-threaded operations
    # wait at every barrier and this set-up slowed down 7-100x (docs/performance.md).
    one_trainer_rate = batched(model, n, min(steps, 100), cores) if quick else None
    per_step, path = batched_profile(model, n, steps)
    row: dict[str, Any] = {
        "model": model,
        "n": n,
        "steps": steps,
        "loop_trial_steps_per_s": round(loop_rate),
        "parallel_trial_steps_per_s": round(parallel_rate),
        "batched_trial_steps_per_s": round(batched_rate),
        "batched_one_trainer_all_threads": one_trainer_rate and round(one_trainer_rate),
        "batched_path": path,
        "batched_ms_per_step": {k: round(v, 3) for k, v in per_step.items()},
    }
    if model.startswith("mlp"):
        width = 100 if model == "mlp100" else 256
        row["batched_gflops"] = round(batched_rate * mlp_flops(width) / 1e9, 1)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="MLP-100 at N = 25 only")
    parser.add_argument("--steps", type=int, default=None, help="training steps per trial")
    parser.add_argument(
        "--cuda", action="store_true", help="the batched set-up alone on the GPU, MLP-100, N up to 4096"
    )
    parser.add_argument(
        "--updates",
        action="store_true",
        help="the update's cost per step: Adam and NAdam, fused and vectorised",
    )
    args = parser.parse_args()
    if args.updates:
        updates(args.steps or 400)
        return
    if args.cuda:
        for n in (1, 25, 64, 256, 1024, 4096):
            rate = batched("mlp100", n, args.steps or 400, 1, device="cuda")
            row = {"model": "mlp100", "n": n, "device": "cuda", "batched_trial_steps_per_s": round(rate)}
            print(json.dumps(row))
        return
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # spawned workers start single-threaded
    from adamtune.torch import cpu_cores

    cores = cpu_cores()
    steps = args.steps or 400
    models = ("mlp100", "mlp256", "cnn")
    cases = [("mlp100", 25)] if args.quick else [(m, n) for m in models for n in (1, 8, 25, 64)]
    from adamtune.environment import current_environment, describe_environment

    print(describe_environment(current_environment()))  # rates are this machine's, not the docs'
    print(f"cores: {cores}, load average: {os.getloadavg()[0]:.2f}, steps per trial: {steps}")
    for threads in sorted({1, cores}):
        rates = {k: round(v, 1) for k, v in matmul_rate(threads).items()}
        print(f"matmul GFLOP/s with {threads} thread(s):", rates)
    print("| model | N | loop | parallel | batched | batched/loop | batched/parallel |")
    print("|---|---|---|---|---|---|---|")
    rows = []
    for model, n in cases:
        row = measure(model, n, steps, cores, args.quick)
        rows.append(row)
        loop_rate, par, bat = (
            row["loop_trial_steps_per_s"],
            row["parallel_trial_steps_per_s"],
            row["batched_trial_steps_per_s"],
        )
        print(f"| {model} | {n} | {loop_rate} | {par} | {bat} | {bat / loop_rate:.1f}x | {bat / par:.1f}x |")
        print(
            f"  batched as one trainer with {cores} threads: {row['batched_one_trainer_all_threads']}; "
            f"one trainer on one thread, ms per step: {row['batched_ms_per_step']} ({row['batched_path']})",
            flush=True,
        )
        if "batched_gflops" in row:
            print(f"  batched matmul rate: {row['batched_gflops']} GFLOP/s")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    if args.quick:
        keys = ("model", "n", *(f"{s}_trial_steps_per_s" for s in ("loop", "parallel", "batched")))
        print(json.dumps({k: rows[0][k] for k in keys}))
    else:
        print(json.dumps(rows))


if __name__ == "__main__":
    main()
