"""``BatchedExecutor``: train a batch of trials of one PyTorch model as one computation."""

from __future__ import annotations

import traceback
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from adamtune.errors import ConfigError, Diverged, Pruned
from adamtune.executors._base import Objective
from adamtune.outcomes import Outcome, State, judge_return
from adamtune.trial import Trial

if TYPE_CHECKING:
    import torch

    from adamtune.torch import BackwardName, BatchedSpec, MemberResult, PathName, UpdateName


class BatchedExecutor:
    """Trains up to ``max_members`` trials at once with ``adamtune.torch.BatchedTrainer``.

    The objective must describe itself for batched training: a ``batched_spec()`` method
    returning an ``adamtune.torch.BatchedSpec`` (``Mnist1dWorkload`` has one; wrap your own
    model and tensors in ``adamtune.workloads.TorchWorkload``). Each trial's
    curves go through ``trial.report`` as in any executor, so pruners, patience and the
    divergence rules stop members exactly as they stop separate trials.

    - Batch order: the members of a batch share it, seeded by ``data_seed`` (default: the
      study's seed), so every trial of a study sees the same batches and differs from the
      others only by its hyperparameters and its initialisation (``trial.seed``).
    - Memory: the trials handed over at once are split into batches that fit ``memory_budget``
      bytes (default: 80% of free GPU memory, or half the available CPU memory).
    - Threads: on the CPU a batch is trained as ``workers`` trainers side by side, one Python
      thread each (default: as many as the cores this process may use hold ``threads``, at
      most one per member), each with ``threads`` intra-op threads (default 1; set only while
      training). Multi-threaded operations on these small models gain little and, when another
      process takes a core, wait at every barrier: measured 7-100x slower (docs/performance.md).
      Trainers in worker processes instead of threads were measured no faster (up to 13%
      slower), so there are none. On a GPU one trainer runs the whole batch.
    - ``backward``: "auto" trains an MLP (Linear layers and ReLU, Tanh, Sigmoid or Identity,
      default cross-entropy) with a hand-written backward pass, faster than autograd; "manual"
      insists on it, "autograd" turns it off.
    - ``device``: "cuda" when available, else "cpu"; ``dtype`` float32 unless told.
    """

    def __init__(
        self,
        max_members: int = 64,
        *,
        device: str | None = None,
        dtype: torch.dtype | None = None,
        memory_budget: int | None = None,
        threads: int | None = None,
        workers: int | None = None,
        data_seed: int | None = None,
        path: PathName = "auto",
        update: UpdateName = "auto",
        backward: BackwardName = "auto",
        compact_at: float = 0.25,
    ) -> None:
        if isinstance(max_members, bool) or not isinstance(max_members, int) or max_members < 1:
            raise ConfigError(f"max_members: expected a whole number >= 1, got {max_members!r}")
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise ConfigError(f"threads: expected a whole number >= 1, got {threads!r}")
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
            raise ConfigError(f"workers: expected a whole number >= 1, got {workers!r}")
        if path not in ("auto", "vmap", "bmm"):
            raise ConfigError(f"path: expected auto, vmap or bmm, got {path!r}")
        if update not in ("auto", "vectorised", "fused"):
            raise ConfigError(f"update: expected auto, vectorised or fused, got {update!r}")
        if backward not in ("auto", "manual", "autograd"):
            raise ConfigError(f"backward: expected auto, manual or autograd, got {backward!r}")
        if not (isinstance(compact_at, int | float) and 0 < compact_at <= 1):
            raise ConfigError(f"compact_at: expected a fraction in (0, 1], got {compact_at!r}")
        if memory_budget is not None and memory_budget < 1:
            raise ConfigError(f"memory_budget: expected a number of bytes >= 1, got {memory_budget!r}")
        self.max_members = max_members
        self.device = device
        self.dtype = dtype
        self.memory_budget = memory_budget
        self.threads = threads
        self.workers = workers
        self.data_seed = data_seed
        self.path: PathName = path
        self.update: UpdateName = update
        self.backward: BackwardName = backward
        self.compact_at = compact_at
        self.batches: list[int] = []  # the member count of every batch trained, for reports

    @property
    def batch_size(self) -> int:
        return self.max_members

    def run(self, objective: Objective, trials: Sequence[Trial]) -> list[Outcome]:
        import torch

        from adamtune.torch import (
            batching_problem,
            cpu_cores,
            default_device,
            members_per_batch,
            memory_budget,
            torch_threads,
        )

        describe = getattr(objective, "batched_spec", None)
        if not callable(describe):
            name = getattr(objective, "__name__", type(objective).__name__)
            raise ConfigError(
                "executor 'batched': expected a workload with a batched_spec() method, such as "
                f"adamtune.workloads.TorchWorkload, got {name}; use the in-process executor"
            )
        if not trials:
            return []
        spec: BatchedSpec = describe()
        problem = batching_problem(spec.model(0))
        if problem is not None:
            raise ConfigError(f"executor 'batched': {problem}; use the in-process executor")
        device = torch.device(self.device) if self.device is not None else default_device()
        dtype = self.dtype or torch.float32
        budget = self.memory_budget if self.memory_budget is not None else memory_budget(device)
        size = min(self.max_members, members_per_batch(spec, budget, dtype))
        seed = self.data_seed if self.data_seed is not None else study_seed(trials[0])
        threads = self.threads or 1
        most = self.workers or max(1, cpu_cores() // threads)
        outcomes: list[Outcome] = []
        for start in range(0, len(trials), size):
            group = trials[start : start + size]
            workers = 1 if device.type != "cpu" else min(most, len(group))
            self.batches.append(len(group))
            with torch_threads(threads):
                outcomes.extend(self._run_batch(spec, group, seed, device, dtype, workers))
        return outcomes

    def _run_batch(
        self,
        spec: BatchedSpec,
        trials: Sequence[Trial],
        seed: int,
        device: torch.device,
        dtype: torch.dtype,
        workers: int,
    ) -> list[Outcome]:
        from adamtune.torch import Member, train_in_threads

        try:
            results = train_in_threads(
                spec,
                [Member(trial.adam, trial.seed, trial) for trial in trials],
                workers,
                data_seed=seed,
                device=device,
                dtype=dtype,
                path=self.path,
                update=self.update,
                backward=self.backward,
                compact_at=self.compact_at,
            )
        except Exception:  # the batch failed as a whole (a bug, out of memory): say so per trial
            reason = traceback.format_exc()
            return [Outcome.failed(reason, trial.last_metrics) for trial in trials]
        return [outcome_of(trial, result) for trial, result in zip(trials, results, strict=True)]


def outcome_of(trial: Trial, result: MemberResult) -> Outcome:
    """A member's result as the outcome the in-process executor would give the same trial."""
    if result.status == "diverged":
        return Outcome.infeasible(result.reason or "diverged", trial.last_metrics)
    if result.status == "failed":
        return Outcome.failed(result.reason or "report failed", trial.last_metrics)
    if result.status == "stopped":
        if isinstance(result.signal, Diverged):
            return Outcome.infeasible(result.reason or "the trial diverged", trial.last_metrics)
        state = State.PRUNED if isinstance(result.signal, Pruned) else State.COMPLETE
        return Outcome(state, trial.best_so_far, result.reason, trial.last_metrics)
    return judge_return(result.metrics, trial.metric, trial.last_metrics)


def study_seed(trial: Trial) -> int:
    """The seed the trial's study was created with (0 when it cannot be read)."""
    try:
        info: Any = trial.optuna_trial.study.user_attrs.get("adamtune", {})
        return int(info.get("seed", 0))
    except (AttributeError, TypeError, ValueError):
        return 0
