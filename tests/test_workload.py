"""The built-in MNIST-1D workload: offline data, the paper's models, real (short) training."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
import torch

import adamtune
from adamtune import State
from adamtune.workloads.mnist1d import Mnist1dWorkload, load_data, make_model


def test_data_is_generated_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the workload tried to open a network connection")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    load_data.cache_clear()
    x_train, y_train, x_val, y_val = load_data()
    assert tuple(x_train.shape) == (4000, 40) and tuple(x_val.shape) == (1000, 40)
    assert tuple(y_train.shape) == (4000,) and set(y_val.tolist()) == set(range(10))


@pytest.mark.parametrize(("name", "parameters"), [("mlp", 15_210), ("cnn", 5_210)])
def test_models_match_the_paper(name: str, parameters: int) -> None:
    model = make_model(name, seed=0)  # type: ignore[arg-type]
    assert sum(p.numel() for p in model.parameters()) == parameters
    assert tuple(model(torch.zeros(7, 40)).shape) == (7, 10)
    same = make_model(name, seed=0)  # type: ignore[arg-type]
    other = make_model(name, seed=1)  # type: ignore[arg-type]
    first = next(model.parameters())
    assert torch.equal(first, next(same.parameters()))
    assert not torch.equal(first, next(other.parameters()))


def test_short_study_learns_and_is_reproducible(tmp_path: Path) -> None:
    workload = Mnist1dWorkload(model="mlp", steps=400, eval_every=100)
    fast = {"lr": (1e-3, 3e-3)}  # learns within 400 steps
    first = adamtune.tune(workload, 2, storage=str(tmp_path / "a.journal"), seed=5, ranges=fast)
    second = adamtune.tune(workload, 2, storage=str(tmp_path / "b.journal"), seed=5, ranges=fast)

    for record in first.trials:
        assert record.state == State.COMPLETE
        assert record.value is not None and record.value < 2.2  # chance is ln(10) = 2.30
        assert set(record.metrics) >= {"val_loss", "val_acc", "max_val_acc", "train_loss"}
        assert record.metrics["val_acc"] > 0.2  # chance is 0.1
        assert [step for step, _ in record.curves["val_loss"]] == [100, 200, 300, 400]
        assert record.value == min(v for _, v in record.curves["val_loss"])
    assert [r.value for r in first.trials] == [r.value for r in second.trials]


def test_divergent_learning_rate_is_recorded_infeasible(tmp_path: Path) -> None:
    workload = Mnist1dWorkload(model="mlp", steps=200, eval_every=50)
    study = adamtune.tune(
        workload,
        2,
        storage=str(tmp_path / "s.journal"),
        ranges={"lr": (1e6, 1e7)},
    )
    assert {r.state for r in study.trials} == {State.INFEASIBLE}
    for record in study.trials:
        assert "exceeded 100x its first value" in (record.reason or "")


def test_bad_workload_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="model: expected one of"):
        Mnist1dWorkload(model="resnet")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="steps: expected a whole number >= 1"):
        Mnist1dWorkload(steps=0)
