"""A byte-level language model of the Python standard library's own source, trained with Adam.

The data is the concatenated bytes of the top-level ``Lib/*.py`` files of the running
Python (``sysconfig.get_paths()["stdlib"]``, file names sorted; about 4.7 MB for CPython
3.11), read from disk: nothing is downloaded. ``source`` names another folder of ``*.py``
files instead (a copy of another Python's ``Lib``, say, to train on the same bytes there).
Every tenth file (the 10th, 20th, ...) is the validation set, the rest the training set. The
training set is cut into non-overlapping windows of ``context + 1`` bytes (the model reads
the first ``context`` and predicts the next byte at every position), reshuffled every epoch;
validation uses ``val_windows`` fixed windows of the validation bytes drawn by a generator
with seed 0, so evaluation is cheap and the same for every trial.

The model is a small decoder-only transformer of plain torch modules (byte embedding, learned
positions, pre-LayerNorm blocks of causal multi-head attention and a 4x GELU MLP, a final
LayerNorm and a linear read-out to 256 bytes), with no buffers. Each evaluation reports
``train_loss``, ``val_loss`` (cross-entropy in nats per byte; divide by ln 2 for bits),
``val_acc`` (next-byte accuracy) and ``val_error``; the run returns the same metrics as
``Mnist1dWorkload``: the best ``val_loss``, ``val_acc`` there and its step (``best_step``),
the best accuracy (``max_val_acc``) and the best error (``val_error``). An untrained model
scores about ln 256 = 5.55 nats per byte.

The defaults (context 64, d_model 64, 2 layers of 4 heads, 137,216 parameters, batches of 16
windows, 400 steps) train in about 7 s on one CPU core (17 ms a step, torch 2.13); at lr 1e-3
the validation loss falls from 5.6 to about 2.4 nats per byte. There is no ``batched_spec()``:
the batched trainer's "vmap" path (``torch.func.vmap`` over this model, its loss computed
inside the module because the trainer's loss takes no (B, T) targets) measured 18-19 ms per
member-step with 4 members and 21 ms with 16, against 16-18 ms for runs one after another
(one thread, same process, interleaved); with explicit masked attention instead of
``scaled_dot_product_attention``, which vmap runs through a slow fallback, it was slower still.
"""

from __future__ import annotations

import math
import sysconfig
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from adamtune.errors import Diverged
from adamtune.workloads._tracking import ValidationTracker

if TYPE_CHECKING:
    import torch
    from torch import nn

    from adamtune.trial import Trial

VOCAB = 256
UNTRAINED_LOSS = math.log(VOCAB)
"""The loss of a model that predicts every byte equally likely: ln 256 nats per byte."""
VALIDATION_STRIDE = 10  # every tenth file is validation


def source_folder(source: str | None = None) -> Path:
    """``source``, or the running Python's standard library when it is None."""
    return Path(source) if source is not None else Path(sysconfig.get_paths()["stdlib"])


def source_files(source: str | None = None) -> list[Path]:
    """The top-level ``*.py`` files of ``source`` (default: the running Python's standard
    library), sorted by name."""
    return sorted(source_folder(source).glob("*.py"), key=lambda path: path.name)


@lru_cache(maxsize=2)
def load_data(source: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, val): the training and validation bytes as flat uint8 tensors."""
    import torch

    files = source_files(source)
    if len(files) < VALIDATION_STRIDE:
        raise FileNotFoundError(
            f"expected at least {VALIDATION_STRIDE} *.py files in {source_folder(source)} "
            f"(every tenth is validation), found {len(files)}"
        )
    parts: tuple[list[bytes], list[bytes]] = ([], [])
    for index, path in enumerate(files):
        parts[index % VALIDATION_STRIDE == VALIDATION_STRIDE - 1].append(path.read_bytes())
    train, val = (torch.frombuffer(bytearray(b"".join(chunks)), dtype=torch.uint8) for chunks in parts)
    return train, val


@lru_cache(maxsize=4)
def windows(context: int, val_windows: int, source: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, val) windows of ``context + 1`` bytes, uint8: all non-overlapping training
    windows, and ``val_windows`` validation windows at offsets drawn with seed 0."""
    import torch

    train, val = load_data(source)
    train_windows = train.unfold(0, context + 1, context + 1)
    generator = torch.Generator().manual_seed(0)
    starts = torch.randint(0, len(val) - context, (val_windows,), generator=generator)
    val_set = val[starts[:, None] + torch.arange(context + 1)]
    return train_windows, val_set


def make_model(
    seed: int, *, context: int = 64, d_model: int = 64, layers: int = 2, heads: int = 4
) -> nn.Module:
    """The byte transformer, seeded: (B, T) byte values (any dtype) -> (B, T, 256) logits."""
    import torch

    from adamtune.workloads._transformer import ByteTransformer

    torch.manual_seed(seed)
    return ByteTransformer(context, d_model, layers, heads)


def next_byte_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy in nats per byte of (..., T, 256) logits against (..., T) bytes."""
    import torch.nn.functional as F

    return F.cross_entropy(logits.reshape(-1, VOCAB), targets.reshape(-1).long())


@dataclass(frozen=True)
class StdlibLmWorkload:
    """An objective: train the byte transformer on the standard library's source for ``steps``
    steps of ``batch_size`` windows of ``context`` bytes with the trial's Adam.

    Batches are drawn by reshuffling the training windows every epoch with a generator seeded
    by the trial seed, so a trial is reproducible from its seed alone; ``data_seed`` fixes that
    order for every trial instead (the order ``adamtune.torch.batch_order`` draws).
    """

    steps: int = 400
    batch_size: int = 16
    context: int = 64
    d_model: int = 64
    layers: int = 2
    heads: int = 4
    val_windows: int = 64
    eval_every: int = 50
    threads: int = 1  # as Mnist1dWorkload: one core a run; runs side by side use the others
    # A training loss this many times its first (about ln 256) is divergence: 10x is 55 nats per
    # byte, far above anything a training model reaches. (MNIST-1D's 100x would miss runs that
    # blew up to 185 nats per byte at lr 1 and stayed there.)
    divergence_factor: float = 10.0
    data_seed: int | None = None  # None: the batch order is seeded by the trial seed
    source: str | None = None  # a folder of *.py files; None: the running Python's standard library

    def __post_init__(self) -> None:
        counts = ("steps", "batch_size", "context", "d_model", "layers", "heads", "val_windows", "eval_every")
        for name in (*counts, "threads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a whole number >= 1, got {value!r}")
        if self.d_model % self.heads:
            raise ValueError(f"heads: expected a divisor of d_model {self.d_model}, got {self.heads}")
        if not self.divergence_factor > 1:
            raise ValueError(f"divergence_factor: expected a number > 1, got {self.divergence_factor}")
        if self.source is not None and len(found := source_files(self.source)) < VALIDATION_STRIDE:
            raise ValueError(
                f"source: expected a folder of at least {VALIDATION_STRIDE} *.py files, "
                f"got {self.source!r} ({len(found)})"
            )

    @property
    def __name__(self) -> str:
        return "stdlib-lm"

    def make_model(self, seed: int) -> nn.Module:
        """This workload's model, seeded."""
        return make_model(
            seed, context=self.context, d_model=self.d_model, layers=self.layers, heads=self.heads
        )

    def __call__(self, trial: Trial) -> dict[str, float]:
        import torch

        from adamtune.torch import divergence

        torch.set_num_threads(self.threads)
        train, val = windows(self.context, self.val_windows, self.source)
        x_val, y_val = val[:, :-1], val[:, 1:].long()
        model = self.make_model(trial.seed)
        optimizer = trial.adam.make_optimizer(model.parameters())
        generator = torch.Generator().manual_seed(trial.seed if self.data_seed is None else self.data_seed)
        order = torch.randperm(len(train), generator=generator)
        cursor = 0
        tracker = ValidationTracker()
        train_losses = tracker.train_losses
        with torch.no_grad():
            first = train[order[: self.batch_size]]
            first_loss = next_byte_loss(model(first[:, :-1]), first[:, 1:]).item()
        for step in range(1, self.steps + 1):
            if cursor + self.batch_size > len(order):
                order, cursor = torch.randperm(len(train), generator=generator), 0
            batch = train[order[cursor : cursor + self.batch_size]]
            cursor += self.batch_size
            loss = next_byte_loss(model(batch[:, :-1]), batch[:, 1:])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            train_losses.append(loss.item())
            reason = divergence(train_losses[-1], first_loss, step, self.divergence_factor)
            if reason is not None:
                raise Diverged(reason)
            if step % self.eval_every == 0 or step == self.steps:
                with torch.no_grad():
                    logits = model(x_val)
                    val_loss = next_byte_loss(logits, y_val).item()
                    val_acc = (logits.argmax(-1) == y_val).float().mean().item()
                tracker.evaluated(trial, step, val_loss, val_acc)
        return tracker.result()
