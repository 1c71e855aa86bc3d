"""Your own PyTorch model and data, its trials trained many at a time as one computation.

    python examples/batched_digits.py        # 20 trials from Python, batched
    adamtune tune examples/batched_digits.py:workload --budget 20 --executor batched \\
        --metric val_error --study digits-cli

A ``BatchedSpec`` describes the training: a function from a seed to the model, the training
and validation tensors, the steps, batch size, evaluation interval and loss. ``TorchWorkload``
makes it an objective. Under the batched executor each batch of trials trains as one
computation, every trial the ``torch.optim.Adam`` run it would be on its own (up to
rounding); without it each trial trains alone, with the same numbers. The batched trainer
takes models without buffers or dropout (no BatchNorm).
"""

from __future__ import annotations

import torch
from sklearn.datasets import load_digits
from torch import nn

import adamtune
from adamtune.executors import BatchedExecutor
from adamtune.torch import BatchedSpec
from adamtune.workloads import TorchWorkload


def make_model(seed: int) -> nn.Module:
    """The model a trial with this seed starts from (a module-level function: workers import it)."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10))


def digits() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """scikit-learn's bundled 8x8 digits (no download), split once: every trial is judged on
    the same validation set."""
    data = load_digits()
    x = torch.as_tensor(data.data / 16.0, dtype=torch.float32)
    y = torch.as_tensor(data.target, dtype=torch.long)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(1234))
    train, val = order[:1400], order[1400:]
    return x[train], y[train], x[val], y[val]


x_train, y_train, x_val, y_val = digits()
# Reports train_loss, val_loss, val_acc and val_error; returns the best of each: any can be the metric.
workload = TorchWorkload(
    BatchedSpec(
        model=make_model,
        x_train=x_train,
        y_train=y_train,
        x_val=x_val,
        y_val=y_val,
        steps=600,
        batch_size=64,
        eval_every=50,
    ),
    name="digits-mlp",
)

if __name__ == "__main__":
    study = adamtune.tune(
        workload, budget=20, study="digits", metric="val_error", seed=0, executor=BatchedExecutor()
    )
    print(study.info.tiers.reason)
    best = study.best
    if best is not None and best.adam is not None and best.value is not None:
        print(f"best validation error {best.value:.2%} with {best.adam.short()} (trial {best.number})")
    if study.confirmation is not None:
        print("\n".join(study.confirmation.summary(best.number if best is not None else None)))
