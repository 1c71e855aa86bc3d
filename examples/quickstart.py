"""Tune Adam for a small PyTorch model from Python.

    python examples/quickstart.py            # 12 trials: lr and beta1, tuned jointly

The study is stored in ./adamtune.journal; run the script again to resume it, and read it
with `adamtune trials --study quickstart`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

import adamtune
from adamtune.workloads.mnist1d import load_data, make_model


def objective(trial: adamtune.Trial) -> float:
    """Train the MNIST-1D MLP with the trial's Adam and return the best validation loss."""
    torch.set_num_threads(1)
    x_train, y_train, x_val, y_val = load_data()
    model = make_model("mlp", seed=trial.seed)
    optimizer = trial.adam.make_optimizer(model.parameters())
    generator = torch.Generator().manual_seed(trial.seed)
    best = float("inf")
    for step in range(1, 2001):
        batch = torch.randint(len(x_train), (100,), generator=generator)
        loss = F.cross_entropy(model(x_train[batch]), y_train[batch])
        optimizer.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        if step % 200 == 0:
            with torch.no_grad():
                val_loss = F.cross_entropy(model(x_val), y_val).item()
            trial.report(step, train_loss=loss.item(), val_loss=val_loss)  # NaN ends the trial
            best = min(best, val_loss)
    return best


if __name__ == "__main__":
    study = adamtune.tune(objective, budget=12, study="quickstart", seed=0, progress=True)
    print(study.info.tiers.reason)
    best = study.best
    if best is not None and best.adam is not None:
        print(f"best val_loss {best.value:.4f} with {best.adam.short()} (seed {best.seed})")
    recommended = study.recommended
    if recommended is not None:
        print(f"recommended: trial {recommended.record.number}, {recommended.reason}")
    if study.confirmation is not None:  # the best few and Adam's defaults, retrained on fresh seeds
        print("\n".join(study.confirmation.summary(best.number if best is not None else None)))
