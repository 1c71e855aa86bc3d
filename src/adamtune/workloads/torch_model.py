"""Your own PyTorch model and data as a workload, for the batched executor or any other.

``TorchWorkload(spec)`` takes an ``adamtune.torch.BatchedSpec`` (the seeded model, the
training and validation tensors, the steps, batch size, evaluation interval and loss) and is
an objective two ways. Called with a trial, it trains one model with the trial's
``torch.optim.Adam`` (``train_separately``). Under ``adamtune.executors.BatchedExecutor`` a
batch of its trials trains as one computation, each member reproducing that separate run up
to rounding: the same initial weights (``spec.model(trial.seed)``), the same batches, the
same update. So a study can train batched on one machine and one trial at a time on another
(a worker with another executor), and the numbers mean the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from adamtune.errors import ConfigError, Diverged
from adamtune.workloads._tracking import ValidationTracker

if TYPE_CHECKING:
    from adamtune.torch import BatchedSpec, Loss
    from adamtune.trial import Trial


@dataclass(frozen=True, eq=False)  # tensors inside: compared by identity
class TorchWorkload:
    """An objective that trains ``spec`` with the trial's Adam: see the module's docstring.

    ``data_seed`` seeds the batch order of every trial (None: each trial's own seed, so a run
    is reproducible from its seed alone; the batched executor seeds all members of a study
    with the study's seed, which ``data_seed`` set to it reproduces). ``threads``: torch's
    intra-op threads while training (one is as fast for small models and leaves the other
    cores to other trials). ``device``: where a separate run trains.
    """

    spec: BatchedSpec
    name: str = "torch-workload"
    data_seed: int | None = None
    threads: int = 1
    device: str = "cpu"

    def __post_init__(self) -> None:
        from adamtune.torch import BatchedSpec

        if not isinstance(self.spec, BatchedSpec):
            raise ConfigError(f"spec: expected an adamtune.torch.BatchedSpec, got {type(self.spec).__name__}")
        if isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1:
            raise ConfigError(f"threads: expected a whole number >= 1, got {self.threads!r}")

    @property
    def __name__(self) -> str:
        return self.name

    def batched_spec(self) -> BatchedSpec:
        return self.spec

    def __call__(self, trial: Trial) -> dict[str, float]:
        from adamtune.torch import torch_threads

        with torch_threads(self.threads):
            return train_separately(self.spec, trial, data_seed=self.data_seed, device=self.device)


def train_separately(
    spec: BatchedSpec, trial: Trial, *, data_seed: int | None = None, device: str = "cpu"
) -> dict[str, float]:
    """Train ``spec``'s model for ``trial`` alone, with torch's Adam or AdamW: what a member
    of ``adamtune.torch.BatchedTrainer`` stands for.

    Batches follow ``adamtune.torch.batch_order`` seeded by ``data_seed`` (None: the trial's
    seed). Every ``spec.eval_every`` steps and at the last, the trial is told ``train_loss``
    (the mean since the previous evaluation), ``val_loss`` and, with ``spec.accuracy``,
    ``val_acc`` and ``val_error``. A NaN or infinite training loss, or one above
    ``spec.divergence_factor`` times the loss on the first batch before training, raises
    ``Diverged``. Returns the batched trainer's metrics for a member: the best ``val_loss``,
    its step (``best_step``) and, with accuracy, the accuracy there, the best accuracy and
    the best error.
    """
    import torch

    from adamtune.torch import batch_order, divergence

    model = spec.model(trial.seed).to(device)
    optimizer = trial.adam.make_optimizer(model.parameters())
    loss_of = mean_loss(spec.loss)
    x_train, y_train = spec.x_train.to(device), spec.y_train.to(device)
    x_val, y_val = spec.x_val.to(device), spec.y_val.to(device)
    batches = batch_order(len(x_train), spec.batch_size, trial.seed if data_seed is None else data_seed)
    tracker = ValidationTracker(accuracy=spec.accuracy)
    first = 0.0
    for step in range(1, spec.steps + 1):
        index = next(batches).to(device)
        x, y = x_train[index], y_train[index]
        if step == 1:
            with torch.no_grad():
                first = loss_of(model(x), y).item()
        loss = loss_of(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        value = loss.item()
        tracker.train_losses.append(value)
        reason = divergence(value, first, step, spec.divergence_factor)
        if reason is not None:
            raise Diverged(reason)
        if step % spec.eval_every == 0 or step == spec.steps:
            model.eval()
            with torch.no_grad():
                output = model(x_val)
                val_loss = loss_of(output, y_val).item()
                val_acc = (output.argmax(-1) == y_val).float().mean().item() if spec.accuracy else None
            model.train()
            tracker.evaluated(trial, step, val_loss, val_acc)
    return tracker.result()


def mean_loss(loss: Loss) -> Loss:
    """``loss`` averaged over the batch, as the batched trainer averages it per member; the
    default cross-entropy as ``F.cross_entropy`` computes its mean (the same value to
    rounding, and the exact bits a plain training loop gets)."""
    import torch.nn.functional as F

    from adamtune.torch import cross_entropy

    if loss is cross_entropy:
        return F.cross_entropy
    return lambda output, target: loss(output, target).mean()
