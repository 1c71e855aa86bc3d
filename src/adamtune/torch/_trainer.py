"""Train N Adam configurations of one model as one computation.

Member i starts from ``spec.model(seed_i)``, exactly the weights a separate run seeded with
``seed_i`` starts from. All members of one trainer see the same batches: the training set is
reshuffled every epoch by a generator seeded with ``data_seed`` (the executor passes the
study's seed), the same order ``Mnist1dWorkload(data_seed=...)`` draws in a separate run. So
with the same inputs each member reproduces a separate ``torch.optim.Adam`` run, up to
floating-point rounding (tests/test_batched.py checks 1e-10 in float64).

Parameters of all members live in one (N, P) tensor, one row per member; the model's
parameters are (N, *shape) views of it whose gradients land in a (N, P) gradient tensor, so
the Adam update, divergence checks and compaction each work on a whole row at once.
"""

from __future__ import annotations

import math
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from adamtune.config import AdamConfig
from adamtune.errors import Diverged, Pruned, Stopped
from adamtune.torch._adam import BatchedAdam, Hyper, UpdateName
from adamtune.torch._forward import PathName, make_forward
from adamtune.torch._manual import ManualStep, manual_supported

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``loss(output, target) -> per-sample losses`` (``reduction="none"``): a member's loss is
their mean, as the mean-reduced loss of a separate run."""

cross_entropy: Loss = partial(F.cross_entropy, reduction="none")

BackwardName = Literal["auto", "manual", "autograd"]
BACKWARDS: tuple[BackwardName, ...] = ("auto", "manual", "autograd")


@dataclass(frozen=True)
class BatchedSpec:
    """What the batched trainer needs to know about a workload.

    ``model(seed)`` builds the seeded module (parameters only, no buffers); ``eval_every``
    steps (and at the last step) the validation loss (and accuracy, when ``accuracy``) is
    reported. ``divergence_factor``: a training loss this many times the member's loss on the
    first batch before training is divergence, like a NaN or infinite loss or parameter.
    """

    model: Callable[[int], nn.Module]
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    steps: int
    batch_size: int
    eval_every: int
    loss: Loss = cross_entropy
    accuracy: bool = True
    divergence_factor: float | None = None

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "eval_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a whole number >= 1, got {value!r}")
        if self.batch_size > len(self.x_train):
            raise ValueError(
                f"batch_size: expected at most the {len(self.x_train)} training samples, "
                f"got {self.batch_size}"
            )


class Reporter(Protocol):
    """Where a member's curves go: ``adamtune.trial.Trial`` is one. ``report`` may raise
    ``Diverged``, ``Pruned`` or ``Stopped`` to stop the member."""

    def report(self, step: int, **metrics: float) -> None: ...


@dataclass(frozen=True)
class Member:
    adam: AdamConfig
    seed: int
    reporter: Reporter | None = None


Status = Literal["complete", "diverged", "stopped", "failed"]


@dataclass
class MemberResult:
    """How a member ended.

    ``status``: complete (trained every step), diverged (frozen by the trainer at ``step``:
    NaN or infinite loss or parameters, or the divergence factor), stopped (its ``report``
    raised ``signal``: Diverged, Pruned or Stopped) or failed (``report`` raised anything else).
    ``metrics`` is what a separate run returns: the best validation loss, the accuracy there
    (``val_acc``), its step (``best_step``) and the best accuracy (``max_val_acc``).
    """

    status: Status = "complete"
    step: int = 0
    reason: str | None = None
    signal: Exception | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    losses: list[float] = field(default_factory=list)  # every step's training loss, if recorded
    parameters: torch.Tensor | None = None  # the final (P,) row


def batch_order(n: int, batch_size: int, seed: int) -> Iterator[torch.Tensor]:
    """Batch indices: reshuffle ``n`` samples every epoch, drop the tail that does not fill a batch."""
    generator = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(n, generator=generator)
        for start in range(0, n - batch_size + 1, batch_size):
            yield order[start : start + batch_size]


def divergence(loss: float, first: float, step: int, factor: float | None) -> str | None:
    """Why a training ``loss`` at ``step`` is divergence (NaN or infinite, or above ``factor``
    times the ``first`` loss), or None."""
    if not math.isfinite(loss):
        return f"train_loss was {loss} at step {step}"
    if factor is not None and not loss <= factor * first:
        return f"train_loss {loss:.3g} at step {step} exceeded {factor:g}x its first value {first:.3g}"
    return None


def batching_problem(model: nn.Module) -> str | None:
    """Why the batched trainer cannot train ``model`` as separate runs would, or None."""
    buffers = [name for name, _ in model.named_buffers()]
    if buffers:
        return (
            "modules with buffers (such as BatchNorm's running statistics) are not supported yet, "
            f"got {type(model).__name__} with buffers {', '.join(buffers[:3])}"
        )
    # Separate runs draw their own dropout masks from their seeds; members cannot, yet.
    dropout = [
        name for name, layer in model.named_modules() if isinstance(layer, nn.modules.dropout._DropoutNd)
    ]
    if dropout:
        where = ", ".join(dropout[:3])
        return f"dropout is not supported yet, got {type(model).__name__} with dropout at {where}"
    return None


class BatchedTrainer:
    """Trains ``members`` on ``spec`` as one computation; ``run()`` returns one result each.

    ``path`` picks the forward ("bmm": batched matrix products, "vmap": torch.func.vmap over
    functional_call, "auto": bmm where the model allows) and ``update`` the Adam kernel
    ("vectorised", "fused", "auto"); see docs/performance.md for the measurements behind the
    defaults. ``backward`` "manual" trains with the hand-written forward and backward of
    ``adamtune.torch._manual`` (an MLP with the default cross-entropy on the bmm path),
    "autograd" with torch's autograd, "auto" by hand where it can. When at least
    ``compact_at`` of the rows belong to stopped members, they are dropped from the tensors so
    they stop costing compute.
    """

    def __init__(
        self,
        spec: BatchedSpec,
        members: Sequence[Member],
        *,
        data_seed: int = 0,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
        path: PathName = "auto",
        update: UpdateName = "auto",
        backward: BackwardName = "auto",
        compact_at: float = 0.25,
        record_losses: bool = False,
        profile: bool = False,
    ) -> None:
        if not members:
            raise ValueError("members: expected at least one member, got none")
        if not 0 < compact_at <= 1:
            raise ValueError(f"compact_at: expected a fraction in (0, 1], got {compact_at!r}")
        self.spec = spec
        self.members = tuple(members)
        self.data_seed = data_seed
        self.device = torch.device(device if device is not None else default_device())
        self.dtype = dtype
        self.compact_at = compact_at
        self.record_losses = record_losses
        # Seconds spent per phase when profiling (benchmarks/batched.py prints them).
        self.timings: dict[str, float] | None = dict.fromkeys(PHASES, 0.0) if profile else None
        models = [spec.model(m.seed).to(device=self.device, dtype=dtype) for m in self.members]
        template = models[0]
        problem = batching_problem(template)
        if problem is not None:
            raise ValueError(f"model: {problem}")
        self.names = [name for name, _ in template.named_parameters()]
        self.shapes = [p.shape for p in template.parameters()]
        self.sizes = [p.numel() for p in template.parameters()]
        with torch.no_grad():
            self.params = torch.stack(
                [torch.cat([p.reshape(-1) for p in model.parameters()]) for model in models]
            )
        self.forward, self.path = make_forward(template, path)
        self.manual = self._manual_step(template, backward)
        self.backward: BackwardName = "autograd" if self.manual is None else "manual"
        self.adam = BatchedAdam(self.params, Hyper.of([m.adam for m in self.members], self.device), update)
        self.rows = list(range(len(self.members)))  # row -> member index
        self.cancel = threading.Event()  # set from another thread: run() stops at the next step
        self._bind()

    def _manual_step(self, template: nn.Module, backward: BackwardName) -> ManualStep | None:
        if backward not in BACKWARDS:
            raise ValueError(f"backward: expected one of {BACKWARDS}, got {backward!r}")
        possible = (
            self.path == "bmm"
            and manual_supported(template)
            and self.spec.loss is cross_entropy
            and self.spec.x_train.dim() == 2
        )
        if backward == "manual" and not possible:
            raise ValueError(
                "backward 'manual': expected the bmm path, an nn.Sequential of Linear layers and "
                "ReLU, Tanh, Sigmoid or Identity activations, 2-d inputs and the default "
                f"cross-entropy loss, got {type(template).__name__} on the {self.path} path; "
                "use backward='autograd'"
            )
        return ManualStep(template) if possible and backward != "autograd" else None

    def _bind(self) -> None:
        """(Re)build the per-parameter leaf views of ``params`` and their gradient views."""
        self.grads = torch.zeros_like(self.params)
        self.views: list[torch.Tensor] = []
        self.grad_views: list[torch.Tensor] = []
        offset = 0
        n = self.params.shape[0]
        for shape, size in zip(self.shapes, self.sizes, strict=True):
            view = self.params[:, offset : offset + size].view(n, *shape).detach().requires_grad_()
            # Autograd adds into an existing .grad in place: gradients land in self.grads rows.
            view.grad = self.grads[:, offset : offset + size].view(n, *shape)
            self.views.append(view)
            self.grad_views.append(view.grad)
            offset += size

    def unflatten(self, row: torch.Tensor) -> dict[str, torch.Tensor]:
        """A member's (P,) parameter row as named tensors, like ``model.named_parameters()``."""
        parts = torch.split(row, self.sizes)
        return {
            name: part.view(shape) for name, part, shape in zip(self.names, parts, self.shapes, strict=True)
        }

    def _member_losses(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        n, batch = output.shape[0], output.shape[1]
        if self.spec.loss is cross_entropy and output.dim() == 3:
            # The same loss with the classes in the middle: (N, C, B) runs several times faster
            # on the CPU than (N*B, C), whose log-softmax vectorises badly over 10 classes.
            per_member = F.cross_entropy(output.transpose(1, 2), target.expand(n, batch), reduction="none")
            return per_member.mean(1)
        per_sample = self.spec.loss(output.flatten(0, 1), target.repeat(n, *[1] * (target.dim() - 1)))
        return per_sample.view(n, batch, *per_sample.shape[1:]).flatten(1).mean(1)

    def _input(self, x: torch.Tensor) -> torch.Tensor:
        """Inputs on the device, in the trainer's dtype when they are numbers (token ids stay integers)."""
        return x.to(self.device, self.dtype) if x.is_floating_point() else x.to(self.device)

    def run(self) -> list[MemberResult]:
        spec, dev = self.spec, self.device
        x_train = self._input(spec.x_train)
        y_train = spec.y_train.to(dev)
        x_val = self._input(spec.x_val)
        y_val = spec.y_val.to(dev)
        results = [MemberResult() for _ in self.members]
        active = [True] * len(self.rows)
        batches = batch_order(len(x_train), spec.batch_size, self.data_seed)
        first_batch = next(batch_order(len(x_train), spec.batch_size, self.data_seed)).to(dev)
        with torch.no_grad():
            first = self._member_losses(self.forward(self.views, x_train[first_batch]), y_train[first_batch])
        first_losses = first.tolist()
        sums = [0.0] * len(self.rows)
        counts = 0
        best = [{"val_loss": math.inf, "val_acc": 0.0, "best_step": 0.0} for _ in self.members]
        max_acc = [0.0] * len(self.members)
        factor = spec.divergence_factor

        def stop(row: int, step: int, status: Status, reason: str, signal: Exception | None = None) -> None:
            active[row] = False
            result = results[self.rows[row]]
            result.status, result.step, result.reason, result.signal = status, step, reason, signal
            result.parameters = self.params[row].detach().clone()

        clock = _Clock(self.timings)
        for step in range(1, spec.steps + 1):
            if self.cancel.is_set():
                raise Cancelled(f"cancelled before step {step}")
            clock.start()
            index = next(batches).to(dev)
            x, y = x_train[index], y_train[index]
            clock.lap("data")
            if self.manual is not None:
                losses, tape = self.manual.forward(self.views, x, y)
                clock.lap("forward")
                self.manual.backward(tape, self.views, self.grad_views, y)
            else:
                losses = self._member_losses(self.forward(self.views, x), y)
                clock.lap("forward")
                self.grads.zero_()
                with warnings.catch_warnings():
                    # Our gradient views have the parameters' strides on purpose (rows of one tensor).
                    warnings.filterwarnings("ignore", message="grad and param do not obey")
                    losses.sum().backward()  # type: ignore[no-untyped-call]
            clock.lap("backward")
            values = losses.detach().tolist()
            counts += 1
            for row, value in enumerate(values):
                if not active[row]:
                    continue
                sums[row] += value
                if self.record_losses:
                    results[self.rows[row]].losses.append(value)
                reason = divergence(value, first_losses[row], step, factor)
                if reason is not None:
                    stop(row, step, "diverged", reason)
            clock.lap("checks")
            self.adam.step(self.params, self.grads, active)
            clock.lap("update")
            # A row sum is finite iff the row is (short of overflow near 1e38 in float32).
            finite = torch.isfinite(self.params.sum(1)).tolist()
            for row, ok in enumerate(finite):
                if active[row] and not ok:
                    stop(row, step, "diverged", f"parameters became NaN or infinite at step {step}")
            clock.lap("checks")
            if step % spec.eval_every == 0 or step == spec.steps:
                self._evaluate(step, x_val, y_val, active, sums, counts, best, max_acc, stop)
                sums, counts = [0.0] * len(self.rows), 0
                clock.lap("evaluate")
            if not any(active):
                break
            stopped = active.count(False)
            if stopped and stopped >= self.compact_at * len(active):
                sums = [s for s, a in zip(sums, active, strict=True) if a]
                first_losses = [f for f, a in zip(first_losses, active, strict=True) if a]
                self._compact(active)
                active = [True] * len(self.rows)
                clock.lap("checks")
        for row, member in enumerate(self.rows):
            if active[row]:
                results[member].step = spec.steps
                results[member].parameters = self.params[row].detach().clone()
        for member, result in enumerate(results):
            metrics = dict(best[member])
            if spec.accuracy:
                metrics["max_val_acc"] = max_acc[member]
                metrics["val_error"] = 1.0 - max_acc[member]  # the best error during training
            else:
                del metrics["val_acc"]
            result.metrics = metrics
        return results

    def _evaluate(
        self,
        step: int,
        x_val: torch.Tensor,
        y_val: torch.Tensor,
        active: list[bool],
        sums: list[float],
        counts: int,
        best: list[dict[str, float]],
        max_acc: list[float],
        stop: Callable[..., None],
    ) -> None:
        with torch.no_grad():
            output = self.forward(self.views, x_val)
            val_losses = self._member_losses(output, y_val).tolist()
            accs = None
            if self.spec.accuracy:  # over every prediction: per sample, or per token of a sequence
                accs = (output.argmax(-1) == y_val).float().flatten(1).mean(1).tolist()
        for row, member in enumerate(self.rows):
            if not active[row]:
                continue
            metrics = {"train_loss": sums[row] / counts, "val_loss": val_losses[row]}
            if accs is not None:
                metrics["val_acc"] = accs[row]
                metrics["val_error"] = 1.0 - accs[row]
                max_acc[member] = max(max_acc[member], accs[row])
            if val_losses[row] < best[member]["val_loss"]:
                best[member] = {
                    "val_loss": val_losses[row],
                    "val_acc": metrics.get("val_acc", 0.0),
                    "best_step": float(step),
                }
            reporter = self.members[member].reporter
            if reporter is None:
                continue
            try:
                reporter.report(step, **metrics)
            except (Diverged, Pruned, Stopped) as signal:
                stop(row, step, "stopped", str(signal), signal)
            except Exception as error:  # a broken reporter fails its member, not the batch
                stop(row, step, "failed", f"{type(error).__name__}: {error}", error)

    def _compact(self, active: Sequence[bool]) -> None:
        """Drop the rows of stopped members from every tensor."""
        kept = [row for row, a in enumerate(active) if a]
        keep = torch.tensor(kept, device=self.device)
        with torch.no_grad():
            self.params = self.params[keep]
        self.adam.select(keep, kept)
        self.rows = [self.rows[row] for row in kept]
        self._bind()


class Cancelled(Exception):
    """``BatchedTrainer.run`` was cancelled from another thread (the study was interrupted)."""


def train_in_threads(
    spec: BatchedSpec, members: Sequence[Member], workers: int, **options: Any
) -> list[MemberResult]:
    """Train ``members`` as ``workers`` batched trainers side by side, one thread each.

    Each trainer runs its torch operations on its own thread with one intra-op thread (set
    that with ``torch.set_num_threads(1)`` first), so ``workers`` cores are busy without the
    barriers of a multi-threaded operation, which collapse when another process takes a core.
    torch releases the GIL inside its operations; only the Python glue of a step contends.
    Results come back in member order; Ctrl-C cancels every trainer before it propagates.
    """
    workers = max(1, min(workers, len(members)))
    bounds = [round(k * len(members) / workers) for k in range(workers + 1)]
    trainers = [BatchedTrainer(spec, members[bounds[k] : bounds[k + 1]], **options) for k in range(workers)]
    if workers == 1:
        return trainers[0].run()
    with ThreadPoolExecutor(workers, thread_name_prefix="adamtune-batched") as pool:
        futures = [pool.submit(trainer.run) for trainer in trainers]
        try:
            return [result for future in futures for result in future.result()]
        except BaseException:
            for trainer in trainers:
                trainer.cancel.set()
            raise


PHASES = ("data", "forward", "backward", "update", "checks", "evaluate")


class _Clock:
    """Adds the time since the previous lap to a phase, when profiling (else does nothing).
    On a GPU the phases are only meaningful with CUDA_LAUNCH_BLOCKING=1."""

    def __init__(self, timings: dict[str, float] | None) -> None:
        self.timings = timings
        self.last = 0.0

    def start(self) -> None:
        if self.timings is not None:
            self.last = time.perf_counter()

    def lap(self, phase: str) -> None:
        if self.timings is not None:
            now = time.perf_counter()
            self.timings[phase] += now - self.last
            self.last = now


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
