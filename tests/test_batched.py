"""The batched trainer and executor: every member is the separate torch.optim.Adam run it
stands for, a divergent or stopped member leaves the others alone, and studies run through it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import adamtune
from adamtune import State
from adamtune.config import AdamConfig
from adamtune.errors import ConfigError, Pruned
from adamtune.executors import BatchedExecutor
from adamtune.torch import (
    BackwardName,
    BatchedSpec,
    BatchedTrainer,
    Cancelled,
    Member,
    PathName,
    UpdateName,
    batch_order,
    member_bytes,
    members_per_batch,
)
from adamtune.torch._forward import member_sums
from adamtune.workloads.mnist1d import Mnist1dWorkload

CONFIGS = (
    AdamConfig(lr=3e-2),
    AdamConfig(lr=1e-2, beta1=0.8, beta2=0.99, eps=1e-6, weight_decay=1e-2),  # L2 decay
    AdamConfig(lr=5e-3, beta1=0.95, weight_decay=0.1, optimizer="adamw"),  # decoupled decay
)
NADAM_CONFIGS = (
    AdamConfig(lr=3e-2, optimizer="nadam"),
    AdamConfig(lr=1e-2, beta1=0.8, beta2=0.99, eps=1e-6, weight_decay=1e-2, optimizer="nadam"),
    AdamConfig(lr=5e-3, beta1=0.95, weight_decay=0.1, optimizer="nadamw"),
)
FAMILIES = {"adam": CONFIGS, "nadam": NADAM_CONFIGS}
UPDATES_OF_FAMILIES = [("adam", "auto"), ("nadam", "fused"), ("nadam", "vectorised")]
SEEDS = (11, 12, 13)


def mlp(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3))


def cnn(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Unflatten(1, (1, 8)),
        nn.Conv1d(1, 4, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv1d(4, 4, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(16, 3),
    )


def make_spec(model: Callable[[int], nn.Module] = mlp, steps: int = 12, **changes: Any) -> BatchedSpec:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(96, 8, generator=generator)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()
    settings: dict[str, Any] = {"steps": steps, "batch_size": 16, "eval_every": 4, **changes}
    return BatchedSpec(model=model, x_train=x[:64], y_train=y[:64], x_val=x[64:], y_val=y[64:], **settings)


def separate_run(
    spec: BatchedSpec, adam: AdamConfig, seed: int, dtype: torch.dtype, data_seed: int = 0
) -> tuple[list[float], torch.Tensor]:
    """What the member stands for: one model, torch's own Adam/AdamW/NAdam, the same batches."""
    model = spec.model(seed).to(dtype)
    optimizer = adam.make_optimizer(model.parameters())
    batches = batch_order(len(spec.x_train), spec.batch_size, data_seed)
    losses = []
    for _ in range(spec.steps):
        index = next(batches)
        loss = F.cross_entropy(model(spec.x_train[index].to(dtype)), spec.y_train[index])
        optimizer.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        losses.append(loss.item())
    return losses, torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def train(
    spec: BatchedSpec,
    configs: Sequence[AdamConfig] = CONFIGS,
    seeds: Sequence[int] = SEEDS,
    reporters: Sequence[Any] | None = None,
    **options: Any,
) -> tuple[BatchedTrainer, list[Any]]:
    reporters = reporters or [None] * len(configs)
    options.setdefault("device", "cpu")  # the references run on the CPU; CUDA has its own test
    members = [Member(c, s, r) for c, s, r in zip(configs, seeds, reporters, strict=True)]
    trainer = BatchedTrainer(spec, members, record_losses=True, **options)
    return trainer, trainer.run()


@pytest.mark.parametrize("model", [mlp, cnn], ids=["mlp", "cnn"])
@pytest.mark.parametrize(("path", "backward"), [("bmm", "auto"), ("bmm", "autograd"), ("vmap", "auto")])
@pytest.mark.parametrize("update", ["vectorised", "fused"])
@pytest.mark.parametrize("family", FAMILIES)
def test_members_reproduce_separate_adam_runs_in_float64(
    model: Callable[[int], nn.Module], path: PathName, backward: BackwardName, update: UpdateName, family: str
) -> None:
    spec = make_spec(model)
    configs = FAMILIES[family]
    trainer, results = train(spec, configs, dtype=torch.float64, path=path, update=update, backward=backward)
    assert trainer.path == path and trainer.adam.update == update
    # "auto" trains the MLP by hand on the bmm path, with autograd otherwise.
    by_hand = model is mlp and path == "bmm" and backward == "auto"
    assert trainer.backward == ("manual" if by_hand else "autograd")
    for adam, seed, result in zip(configs, SEEDS, results, strict=True):
        losses, params = separate_run(spec, adam, seed, torch.float64)
        assert result.status == "complete" and len(result.losses) == spec.steps
        assert max(abs(a - b) for a, b in zip(losses, result.losses, strict=True)) < 1e-10
        assert result.parameters is not None
        assert torch.allclose(result.parameters, params, rtol=0, atol=1e-10)


class Residual(nn.Module):
    """Not an nn.Sequential: the bmm path cannot run it, vmap can."""

    def __init__(self) -> None:
        super().__init__()
        self.inner, self.out = nn.Linear(8, 8), nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(x + torch.tanh(self.inner(x)))  # type: ignore[no-any-return]


def residual(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return Residual()


def test_auto_path_falls_back_to_vmap_for_other_modules() -> None:
    spec = make_spec(residual, steps=6)
    trainer, results = train(spec, dtype=torch.float64)
    assert trainer.path == "vmap"
    losses, _ = separate_run(spec, CONFIGS[0], SEEDS[0], torch.float64)
    assert max(abs(a - b) for a, b in zip(losses, results[0].losses, strict=True)) < 1e-10
    with pytest.raises(ValueError, match="path 'bmm'"):
        BatchedTrainer(spec, [Member(CONFIGS[0], 1)], path="bmm", device="cpu")


def test_a_cancelled_trainer_stops_at_the_next_step() -> None:
    trainer = BatchedTrainer(make_spec(), [Member(CONFIGS[0], 1)], device="cpu")
    trainer.cancel.set()
    with pytest.raises(Cancelled, match="before step 1"):
        trainer.run()


@pytest.mark.parametrize("update", ["vectorised", "fused"])
@pytest.mark.parametrize("family", FAMILIES)
def test_members_reproduce_separate_adam_runs_in_float32(update: UpdateName, family: str) -> None:
    spec = make_spec(mlp)
    _, results = train(spec, FAMILIES[family], update=update)
    for adam, seed, result in zip(FAMILIES[family], SEEDS, results, strict=True):
        losses, params = separate_run(spec, adam, seed, torch.float32)
        assert result.parameters is not None and result.parameters.dtype == torch.float32
        # float32 rounding (about 6e-8 relative), a little amplified by a dozen Adam steps
        assert result.losses == pytest.approx(losses, rel=2e-6)
        assert torch.allclose(result.parameters, params, rtol=1e-5, atol=1e-6)


def test_member_starts_from_its_seeded_model_and_metrics_are_a_separate_runs() -> None:
    spec = make_spec(steps=8)
    _, results = train(spec, dtype=torch.float64)
    assert results[0].metrics.keys() == {"val_loss", "val_acc", "best_step", "max_val_acc", "val_error"}
    assert results[0].metrics["val_error"] == pytest.approx(1 - results[0].metrics["max_val_acc"])
    assert results[0].metrics["best_step"] in (4.0, 8.0)
    fresh = BatchedTrainer(spec, [Member(CONFIGS[1], SEEDS[1])], dtype=torch.float64, device="cpu")
    row = fresh.unflatten(fresh.params[0])
    for name, param in mlp(SEEDS[1]).to(torch.float64).named_parameters():
        assert torch.equal(row[name], param.detach())


class Recorder:
    """A reporter that keeps the reports and raises ``signal`` at ``stop_at``."""

    def __init__(self, stop_at: int | None = None, signal: Exception | None = None) -> None:
        self.reports: list[tuple[int, dict[str, float]]] = []
        self.stop_at, self.signal = stop_at, signal

    def report(self, step: int, **metrics: float) -> None:
        self.reports.append((step, metrics))
        if step == self.stop_at and self.signal is not None:
            raise self.signal


@pytest.mark.parametrize("compact_at", [0.25, 1.0])
@pytest.mark.parametrize(("family", "update"), UPDATES_OF_FAMILIES)
def test_divergent_member_is_frozen_and_the_others_are_unaffected(
    compact_at: float, family: str, update: UpdateName
) -> None:
    spec = make_spec(divergence_factor=None)
    configs = FAMILIES[family]
    healthy = [configs[0], configs[2]]
    # parameters ~1e30 after one step: inf logits at step 2
    exploding = AdamConfig(lr=1e30, optimizer=configs[0].optimizer)
    with_it, with_results = train(
        spec, [healthy[0], exploding, healthy[1]], [1, 2, 3], compact_at=compact_at, update=update
    )
    _, without_results = train(spec, healthy, [1, 3], update=update)
    bad = with_results[1]
    assert bad.status == "diverged" and bad.step == 2 and bad.reason is not None and "step 2" in bad.reason
    assert len(bad.losses) == 2 and with_it.params.shape[0] == (2 if compact_at < 1 else 3)
    for kept, alone in zip([with_results[0], with_results[2]], without_results, strict=True):
        assert kept.status == "complete"
        assert kept.losses == alone.losses  # identical, not merely close
        assert kept.parameters is not None and alone.parameters is not None
        # A member's row in the shared first-layer product can change that product's rounding
        # by one float32 ulp: the parameters agree to that, the losses exactly.
        assert torch.allclose(kept.parameters, alone.parameters, rtol=0, atol=1e-6)


def test_divergence_factor_freezes_a_member_whose_loss_explodes() -> None:
    spec = make_spec(divergence_factor=3.0)
    _, results = train(spec, [CONFIGS[0], AdamConfig(lr=50.0)], [1, 2])
    assert results[0].status == "complete"
    assert results[1].status == "diverged" and results[1].reason is not None
    assert "exceeded 3x its first value" in results[1].reason


@pytest.mark.parametrize(("family", "update"), UPDATES_OF_FAMILIES)
def test_stopped_members_are_compacted_away_and_the_rest_train_on(family: str, update: UpdateName) -> None:
    spec = make_spec(steps=12)
    configs = [*FAMILIES[family], AdamConfig(lr=2e-3, optimizer=FAMILIES[family][0].optimizer)]
    seeds = [*SEEDS, 14]
    reporters = [Recorder(), Recorder(4, Pruned("pruned at step 4")), Recorder(), Recorder(8, Pruned("p8"))]
    trainer, results = train(
        spec, configs, seeds, reporters, dtype=torch.float64, compact_at=0.25, update=update
    )
    assert trainer.params.shape[0] == 2 and trainer.rows == [0, 2]
    assert trainer.adam.exp_avg.shape[0] == 2 and trainer.adam.mu_product.shape[0] == 2
    assert [r.status for r in results] == ["complete", "stopped", "complete", "stopped"]
    assert (results[1].step, results[3].step) == (4, 8)
    assert isinstance(results[1].signal, Pruned) and len(results[1].losses) == 4
    assert [step for step, _ in reporters[0].reports] == [4, 8, 12]
    assert [step for step, _ in reporters[1].reports] == [4]
    assert set(reporters[0].reports[0][1]) == {"train_loss", "val_loss", "val_acc", "val_error"}
    for index in (0, 2):  # compaction did not disturb the members that went on
        losses, params = separate_run(spec, configs[index], seeds[index], torch.float64)
        assert max(abs(a - b) for a, b in zip(losses, results[index].losses, strict=True)) < 1e-10
        parameters = results[index].parameters
        assert parameters is not None and torch.allclose(parameters, params, rtol=0, atol=1e-10)


def test_train_loss_reported_is_the_mean_since_the_last_report() -> None:
    spec = make_spec(steps=8)
    recorder = Recorder()
    _, results = train(spec, [CONFIGS[0]], [1], [recorder], dtype=torch.float64)
    losses = results[0].losses
    assert [step for step, _ in recorder.reports] == [4, 8]
    assert recorder.reports[1][1]["train_loss"] == pytest.approx(sum(losses[4:]) / 4, rel=1e-12)


def test_members_per_batch_follows_the_memory_budget() -> None:
    spec = make_spec()
    one = member_bytes(spec)
    assert one > 4 * 5 * sum(p.numel() for p in mlp(0).parameters())  # parameters, grads, moments
    assert members_per_batch(spec, 3 * one + 1) == 3
    assert members_per_batch(spec, 1) == 1  # one member always runs
    assert member_bytes(spec, torch.float64) > one


def study_workload(**changes: Any) -> Mnist1dWorkload:
    settings: dict[str, Any] = {"model": "mlp", "steps": 60, "eval_every": 20, **changes}
    return Mnist1dWorkload(**settings)


def tune(objective: Any, budget: int, **options: Any) -> adamtune.Study:
    """One plain quasi-random study in memory, without the confirmation runs."""
    return adamtune.tune(objective, budget, storage="memory", strategy="quasi-random", confirm=0, **options)


@pytest.mark.parametrize("optimizer", ["adam", "nadamw"])
def test_tune_with_the_batched_executor_matches_the_in_process_runs(optimizer: str) -> None:
    # The batched executor seeds the batch order with the study seed; the in-process workload
    # with data_seed set to it draws the same batches, so each trial must come out the same.
    executor = BatchedExecutor(max_members=8, workers=2)  # two trainers in threads
    batched = tune(study_workload(), 4, seed=3, executor=executor, optimizer=optimizer)
    separate = tune(study_workload(data_seed=3), 4, seed=3, optimizer=optimizer)
    assert executor.batches == [4]
    for one, other in zip(batched.trials, separate.trials, strict=True):
        assert one.state == other.state == State.COMPLETE
        assert one.adam is not None and one.adam.optimizer == optimizer
        assert (one.adam, one.seed) == (other.adam, other.seed)
        assert one.value is not None and other.value is not None
        assert one.value == pytest.approx(other.value, rel=1e-5)
        assert one.metrics.keys() == other.metrics.keys()
        assert (
            [s for s, _ in one.curves["val_loss"]] == [s for s, _ in other.curves["val_loss"]] == [20, 40, 60]
        )
        for name in ("train_loss", "val_loss"):
            assert [v for _, v in one.curves[name]] == pytest.approx(
                [v for _, v in other.curves[name]], rel=1e-4
            )


def test_memory_budget_splits_a_study_into_several_batches() -> None:
    workload = study_workload()
    budget = 2 * member_bytes(workload.batched_spec()) + 1
    executor = BatchedExecutor(max_members=5, memory_budget=budget, threads=1)
    study = tune(workload, 5, seed=1, executor=executor)
    assert executor.batches == [2, 2, 1]
    assert [t.state for t in study.trials] == [State.COMPLETE] * 5


def test_divergent_and_stopped_trials_become_the_same_outcomes_as_in_process() -> None:
    workload = study_workload()
    executor = BatchedExecutor(max_members=4, threads=1)
    study = tune(workload, 4, seed=2, executor=executor, ranges={"lr": (1e1, 1e3)})
    for trial in study.trials:
        assert trial.state == State.INFEASIBLE
        assert trial.reason is not None and "at step" in trial.reason
    patient = tune(
        workload, 2, seed=2, executor=BatchedExecutor(threads=1), patience=1, ranges={"lr": (0.5, 1.0)}
    )
    for trial in patient.trials:
        assert trial.state in (State.COMPLETE, State.INFEASIBLE)
        if trial.state == State.COMPLETE:
            assert trial.value == min(v for _, v in trial.curves["val_loss"])


def test_a_batch_holds_one_family() -> None:
    with pytest.raises(ValueError, match=r"one family per batch.*\['adam', 'nadam'\]"):
        train(make_spec(), [CONFIGS[0], NADAM_CONFIGS[0]], SEEDS[:2])


def test_threads_are_restored_and_plain_objectives_are_refused() -> None:
    before = torch.get_num_threads()
    executor = BatchedExecutor(threads=1)
    tune(study_workload(steps=20), 1, executor=executor)
    assert torch.get_num_threads() == before

    def objective(trial: Any) -> float:
        return 1.0

    with pytest.raises(ConfigError, match="batched_spec"):
        tune(objective, 1, executor=BatchedExecutor())
    with pytest.raises(ConfigError, match="max_members"):
        BatchedExecutor(max_members=0)
    with pytest.raises(ConfigError, match="path"):
        BatchedExecutor(path="jit")  # type: ignore[arg-type]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("update", ["vectorised", "fused"])
@pytest.mark.parametrize("family", FAMILIES)
def test_members_reproduce_separate_runs_on_cuda(update: UpdateName, family: str) -> None:
    spec = make_spec(mlp)
    trainer, results = train(spec, FAMILIES[family], dtype=torch.float64, device="cuda", update=update)
    assert trainer.params.device.type == "cuda"
    for adam, seed, result in zip(FAMILIES[family], SEEDS, results, strict=True):
        losses, params = separate_run(spec, adam, seed, torch.float64)
        assert max(abs(a - b) for a, b in zip(losses, result.losses, strict=True)) < 1e-10
        assert result.parameters is not None
        assert torch.allclose(result.parameters.cpu(), params, rtol=0, atol=1e-10)


@pytest.mark.parametrize(("model", "backward"), [("mlp", "manual"), ("mlp", "autograd"), ("cnn", "autograd")])
def test_a_members_training_does_not_depend_on_its_place_in_the_batch(model: str, backward: str) -> None:
    # The MNIST-1D models. Before: the MLP's first-layer bias gradient was summed over the shared
    # input's (B, N, F) layout, whose vectorised edges fell on the last member (1e-6 apart within
    # 10 steps, and 8000 steps made that another run: the demo's confirmations of one trial,
    # 34.5% and 34.2%); the CNN's last layer multiplied a view with the members interleaved.
    spec = Mnist1dWorkload(model=model, steps=40).batched_spec()  # type: ignore[arg-type]
    trainer, results = train(spec, CONFIGS, SEEDS, backward=backward)
    assert trainer.backward == backward
    last = train(spec, CONFIGS[::-1], SEEDS[::-1], backward=backward)[1][-1]
    assert results[0].losses == last.losses
    assert results[0].parameters is not None and last.parameters is not None
    assert torch.equal(results[0].parameters, last.parameters)


def test_member_sums_are_the_same_in_every_place() -> None:
    # Over shapes where autograd's own sum and a product with ones (the batched matrix product
    # rounds narrow members by place) both failed: shared-input layout and F = 10, 25.
    generator = torch.Generator().manual_seed(0)
    for members, batch, features in [(3, 100, 10), (7, 37, 25), (25, 128, 100), (8, 64, 3)]:
        grad = torch.randn(batch, members, features, generator=generator).transpose(0, 1)
        order = torch.randperm(members, generator=generator)
        sums = member_sums(grad)
        assert torch.equal(member_sums(grad[order])[order.argsort()], sums)
        torch.testing.assert_close(sums, grad.sum(1))
