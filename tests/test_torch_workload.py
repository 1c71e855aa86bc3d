"""TorchWorkload: a user's own model and tensors, trained one trial at a time or batched, with
the same numbers either way."""

from __future__ import annotations

import re
import runpy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from torch import nn

import adamtune
from adamtune import State
from adamtune.cli import cli
from adamtune.config import AdamConfig
from adamtune.errors import ConfigError, Diverged
from adamtune.executors import BatchedExecutor
from adamtune.torch import BatchedSpec, BatchedTrainer, Member
from adamtune.workloads import TorchWorkload

EXAMPLE = Path(__file__).parent.parent / "examples" / "batched_digits.py"


@dataclass
class Reporter:
    """What train_separately needs of a trial: its Adam, its seed and report()."""

    adam: AdamConfig
    seed: int
    reports: list[tuple[int, dict[str, float]]] = field(default_factory=list)

    def report(self, step: int, **metrics: float) -> None:
        self.reports.append((step, metrics))


def classifier(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 12), nn.GELU(), nn.Linear(12, 3)).double()


class Regressor(nn.Module):
    """Not an nn.Sequential: the batched trainer runs it through vmap."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden, self.out = nn.Linear(6, 8), nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.hidden(x))
        return self.out(h - h.mean(-1, keepdim=True))  # type: ignore[no-any-return]


def regressor(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return Regressor()


def squared_error(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(output, target, reduction="none")


def data(dtype: torch.dtype, regression: bool = False) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(5)
    x = torch.randn(120, 6, generator=generator, dtype=dtype)
    y = x[:, :2] * 2 if regression else (x[:, 0] > 0).long() + (x[:, 1] > 0.7).long()
    return {"x_train": x[:80], "y_train": y[:80], "x_val": x[80:], "y_val": y[80:]}


def classification(steps: int = 15, **changes: Any) -> BatchedSpec:
    settings: dict[str, Any] = {"steps": steps, "batch_size": 16, "eval_every": 6, **changes}
    return BatchedSpec(model=classifier, **data(torch.float64), **settings)


def regression(steps: int = 15) -> BatchedSpec:
    return BatchedSpec(
        model=regressor,
        **data(torch.float32, regression=True),
        steps=steps,
        batch_size=16,
        eval_every=5,
        loss=squared_error,
        accuracy=False,
    )


def test_a_separate_run_is_what_a_batched_member_stands_for() -> None:
    spec = classification()
    configs = (AdamConfig(lr=3e-2), AdamConfig(lr=1e-2, beta1=0.8, beta2=0.99, eps=1e-6))
    seeds = (4, 9)
    reporters = [Reporter(c, s) for c, s in zip(configs, seeds, strict=True)]
    trainer = BatchedTrainer(
        spec, [Member(r.adam, r.seed, r) for r in reporters], data_seed=2, device="cpu", dtype=torch.float64
    )
    results = trainer.run()
    for reporter, result in zip(reporters, results, strict=True):
        alone = Reporter(reporter.adam, reporter.seed)
        metrics = TorchWorkload(spec, data_seed=2)(alone)  # type: ignore[arg-type]
        assert (
            metrics.keys()
            == result.metrics.keys()
            == {"val_loss", "val_acc", "best_step", "max_val_acc", "val_error"}
        )
        assert metrics == pytest.approx(result.metrics, rel=1e-10)
        assert [s for s, _ in alone.reports] == [s for s, _ in reporter.reports] == [6, 12, 15]
        for (_, mine), (_, theirs) in zip(alone.reports, reporter.reports, strict=True):
            assert mine.keys() == theirs.keys() == {"train_loss", "val_loss", "val_acc", "val_error"}
            assert mine == pytest.approx(theirs, rel=1e-10)


class Tagger(nn.Module):
    """A class per token of a sequence: outputs (B, T, C) against targets (B, T)."""

    def __init__(self) -> None:
        super().__init__()
        self.embed, self.out = nn.Embedding(5, 8), nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(self.embed(x)))  # type: ignore[no-any-return]


def tagger(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return Tagger().double()


def token_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(output.transpose(1, 2), target, reduction="none")


def test_sequence_outputs_score_every_token_batched_as_alone() -> None:
    tokens = torch.randint(0, 5, (60, 7), generator=torch.Generator().manual_seed(2))
    tags = tokens % 3
    spec = BatchedSpec(
        model=tagger,
        x_train=tokens[:40],
        y_train=tags[:40],
        x_val=tokens[40:],
        y_val=tags[40:],
        steps=12,
        batch_size=8,
        eval_every=4,
        loss=token_loss,
    )
    reporters = [Reporter(AdamConfig(lr=5e-2), 1), Reporter(AdamConfig(lr=1e-2, beta1=0.5), 2)]
    trainer = BatchedTrainer(
        spec, [Member(r.adam, r.seed, r) for r in reporters], data_seed=0, device="cpu", dtype=torch.float64
    )
    for reporter, result in zip(reporters, trainer.run(), strict=True):
        alone = Reporter(reporter.adam, reporter.seed)
        metrics = TorchWorkload(spec, data_seed=0)(alone)  # type: ignore[arg-type]
        assert metrics == pytest.approx(result.metrics, rel=1e-10)
        assert 0 < metrics["max_val_acc"] <= 1  # a share of the 20 x 7 tokens
        assert metrics["max_val_acc"] * 140 == pytest.approx(round(metrics["max_val_acc"] * 140), abs=1e-4)
        for (_, mine), (_, theirs) in zip(alone.reports, reporter.reports, strict=True):
            assert mine == pytest.approx(theirs, rel=1e-10)


def tune(objective: Any, budget: int, **options: Any) -> adamtune.Study:
    return adamtune.tune(objective, budget, storage="memory", strategy="quasi-random", confirm=0, **options)


def test_a_study_of_a_custom_loss_and_model_is_the_same_batched_or_not() -> None:
    spec = regression()
    batched = tune(TorchWorkload(spec, name="regression"), 4, seed=3, executor=BatchedExecutor(workers=1))
    separate = tune(TorchWorkload(spec, data_seed=3), 4, seed=3)  # the study seed orders the batches
    assert batched.name == "regression"
    for one, other in zip(batched.trials, separate.trials, strict=True):
        assert one.state == other.state == State.COMPLETE
        assert one.metrics.keys() == other.metrics.keys() == {"train_loss", "val_loss", "best_step"}
        assert one.value == pytest.approx(other.value, rel=1e-5)
        assert set(one.curves) == {"train_loss", "val_loss"}
        assert [v for _, v in one.curves["val_loss"]] == pytest.approx(
            [v for _, v in other.curves["val_loss"]], rel=1e-4
        )


def test_divergence_ends_a_separate_run_as_it_freezes_a_member() -> None:
    spec = classification(divergence_factor=2.0)
    trial = Reporter(AdamConfig(lr=50.0), 1)
    with pytest.raises(Diverged, match=r"exceeded 2x its first value"):
        TorchWorkload(spec)(trial)  # type: ignore[arg-type]
    [result] = BatchedTrainer(spec, [Member(trial.adam, 1)], data_seed=1, device="cpu").run()
    assert result.status == "diverged" and result.reason is not None
    assert "exceeded 2x its first value" in result.reason


def batch_norm(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 12), nn.BatchNorm1d(12), nn.ReLU(), nn.Linear(12, 3)).double()


def dropout(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 12), nn.ReLU(), nn.Dropout(0.2), nn.Linear(12, 3)).double()


@pytest.mark.parametrize(("model", "problem"), [(batch_norm, "buffers"), (dropout, "dropout")])
def test_a_model_the_batched_trainer_cannot_train_is_refused_in_one_line(model: Any, problem: str) -> None:
    workload = TorchWorkload(
        BatchedSpec(model=model, **data(torch.float64), steps=4, batch_size=16, eval_every=2)
    )
    with pytest.raises(ConfigError, match=rf"executor 'batched': .*{problem}.*; use the in-process executor"):
        tune(workload, 2, executor=BatchedExecutor())
    study = tune(workload, 2)  # one at a time it trains, in train mode, evaluated in eval mode
    assert [t.state for t in study.trials] == [State.COMPLETE] * 2
    with pytest.raises(ConfigError, match=r"spec: expected an adamtune\.torch\.BatchedSpec, got dict"):
        TorchWorkload({"model": model})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="threads: expected a whole number >= 1, got 0"):
        TorchWorkload(workload.spec, threads=0)


@pytest.mark.slow
def test_the_example_tunes_its_own_model_batched_from_the_command_line(tmp_path: Path) -> None:
    storage = f"{tmp_path}/studies.journal"
    arguments = f"tune {EXAMPLE}:workload --budget 6 --executor batched --metric val_error --confirm 0"
    result = CliRunner().invoke(cli, [*arguments.split(), "--study", "digits-cli", "--storage", storage])
    assert result.exit_code == 0, result.output
    study = adamtune.load_study("digits-cli", storage)
    assert len(study.trials) == 6 and all(t.state == State.COMPLETE for t in study.trials)
    assert all(t.batch is not None and t.batch > 1 for t in study.trials)  # trained batched
    assert all(t.metrics.keys() >= {"val_error", "val_loss", "val_acc"} for t in study.trials)
    assert study.best is not None and study.best.value is not None and study.best.value < 0.5


@pytest.mark.slow
def test_the_example_script_tunes_and_confirms_from_python(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    tune = adamtune.tune

    def small(objective: TorchWorkload, budget: int, **kwargs: Any) -> adamtune.Study:
        assert (
            budget == 20 and kwargs["study"] == "digits" and isinstance(kwargs["executor"], BatchedExecutor)
        )
        return tune(objective, 4, **{**kwargs, "storage": "memory", "confirm": 2, "confirm_top": 1})

    monkeypatch.setattr(adamtune, "tune", small)
    runpy.run_path(str(EXAMPLE), run_name="__main__")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("budget 4 (1-9 trials): tune lr;")
    assert re.fullmatch(r"best validation error \d+\.\d\d% with lr=\S+ beta1=0\.9 .* \(trial \d\)", lines[1])
    assert lines[2].startswith("confirmation on 2 seeds: the winner #1 (trial ")
