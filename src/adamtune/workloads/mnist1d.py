"""MNIST-1D (Greydanus, 2020) with the MLP and CNN of its paper, trained with torch's Adam.

The data is generated offline by the ``mnist1d`` package: 4000 training and 1000 held-out
sequences of 40 features, 10 classes. The held-out split is the validation set here (the
package calls it ``test``). Each evaluation reports ``train_loss``, ``val_loss`` (cross-entropy),
``val_acc`` and ``val_error`` (1 - accuracy). The run returns the best validation cross-entropy
(``val_loss``), the accuracy there (``val_acc``) and its step, the best accuracy
(``max_val_acc``) and the best error (``val_error``): either loss can be the study's metric.
``adamtune demo`` tunes ``val_error``, the paper's measure: on it the best lr (about 1e-2)
lies a decade above the playbook's default range, so the demo shows a range expansion.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache, partial
from typing import TYPE_CHECKING, Literal

from adamtune.workloads.torch_model import TorchWorkload

if TYPE_CHECKING:
    import torch
    from torch import nn

    from adamtune.torch import BatchedSpec
    from adamtune.trial import Trial

ModelName = Literal["mlp", "cnn"]
MODELS: tuple[ModelName, ...] = ("mlp", "cnn")


@lru_cache(maxsize=1)
def load_data() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x_train, y_train, x_val, y_val), generated with the package's default arguments."""
    import mnist1d.data
    import torch

    # make_dataset generates offline; get_dataset would try to download first.
    data = mnist1d.data.make_dataset(mnist1d.data.get_dataset_args())
    return (
        torch.as_tensor(data["x"], dtype=torch.float32),
        torch.as_tensor(data["y"], dtype=torch.long),
        torch.as_tensor(data["x_test"], dtype=torch.float32),
        torch.as_tensor(data["y_test"], dtype=torch.long),
    )


def make_model(name: ModelName, seed: int) -> nn.Module:
    """The paper's MLP (40-100-100-10) or CNN (3 conv layers of 25 channels), seeded."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    if name == "mlp":
        return nn.Sequential(
            nn.Linear(40, 100), nn.ReLU(), nn.Linear(100, 100), nn.ReLU(), nn.Linear(100, 10)
        )
    if name == "cnn":
        return nn.Sequential(
            nn.Unflatten(1, (1, 40)),
            nn.Conv1d(1, 25, 5, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv1d(25, 25, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv1d(25, 25, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(125, 10),
        )
    raise ValueError(f"model: expected one of {MODELS}, got {name!r}")


@dataclass(frozen=True)
class Mnist1dWorkload:
    """An objective: train ``model`` on MNIST-1D for ``steps`` steps with the trial's Adam.

    Batches are drawn by reshuffling the training set every epoch with a generator seeded by
    the trial seed, so a trial is reproducible from its seed alone; ``data_seed`` fixes that
    order for every trial instead (as the batched executor does, whose members share batches).
    ``batched_spec()`` describes the workload to ``adamtune.executors.BatchedExecutor``; a
    separate run is ``TorchWorkload``'s of that description.
    """

    model: ModelName = "mlp"
    steps: int = 8000
    batch_size: int = 100
    eval_every: int = 100
    threads: int = 1  # small models: one thread is as fast, and leaves a core for the rest
    divergence_factor: float = 100.0  # a training loss this many times its first: diverged
    data_seed: int | None = None  # None: the batch order is seeded by the trial seed

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"model: expected one of {MODELS}, got {self.model!r}")
        if not self.divergence_factor > 1:
            raise ValueError(f"divergence_factor: expected a number > 1, got {self.divergence_factor}")
        for name in ("steps", "batch_size", "eval_every", "threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected a whole number >= 1, got {getattr(self, name)}")

    @property
    def __name__(self) -> str:
        return f"mnist1d-{self.model}"

    def batched_spec(self) -> BatchedSpec:
        """This workload for the batched trainer: same models, data, loss, steps and evaluation."""
        from adamtune.torch import BatchedSpec

        x_train, y_train, x_val, y_val = load_data()
        return BatchedSpec(
            model=partial(make_model, self.model),
            x_train=x_train,
            y_train=y_train,
            x_val=x_val,
            y_val=y_val,
            steps=self.steps,
            batch_size=self.batch_size,
            eval_every=self.eval_every,
            accuracy=True,
            divergence_factor=self.divergence_factor,
        )

    def __call__(self, trial: Trial) -> dict[str, float]:
        spec = self.batched_spec()
        return TorchWorkload(spec, self.__name__, data_seed=self.data_seed, threads=self.threads)(trial)
