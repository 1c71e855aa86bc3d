"""The built-in byte-level language model on the standard library's source: offline data, the
transformer, real (short) training."""

from __future__ import annotations

import math
import re
import socket
import sysconfig
from pathlib import Path
from typing import Any

import pytest
import torch

import adamtune
from adamtune import State
from adamtune.config import AdamConfig
from adamtune.errors import Diverged
from adamtune.workloads import StdlibLmWorkload
from adamtune.workloads.stdlib_lm import load_data, make_model, next_byte_loss, source_files, windows


class RecordingTrial:
    """The part of a Trial a workload uses, keeping every report."""

    def __init__(self, lr: float, seed: int = 0) -> None:
        self.adam = AdamConfig(lr=lr)
        self.seed = seed
        self.reports: list[tuple[int, dict[str, float]]] = []

    def report(self, step: int, **metrics: float) -> None:
        self.reports.append((step, metrics))


def test_data_is_read_offline_from_the_standard_library(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the workload tried to open a network connection")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    load_data.cache_clear()
    windows.cache_clear()
    train, val = load_data()
    files = source_files()
    assert [f.name for f in files] == sorted(
        f.name for f in Path(sysconfig.get_paths()["stdlib"]).glob("*.py")
    )
    assert train.dtype == torch.uint8 and val.dtype == torch.uint8
    assert len(train) + len(val) == sum(f.stat().st_size for f in files)
    assert 0.05 < len(val) / (len(train) + len(val)) < 0.2  # every tenth file
    # The validation set is files 10, 20, ...: it starts with the bytes of the tenth file.
    assert bytes(val[:200].tolist()) == files[9].read_bytes()[:200]
    assert bytes(train[:200].tolist()) == files[0].read_bytes()[:200]
    # Reading again (after the cache) gives the same bytes, and the same validation windows.
    train_windows, val_windows = windows(64, 8)
    load_data.cache_clear()
    windows.cache_clear()
    again_train, again_val = windows(64, 8)
    assert tuple(train_windows.shape) == (len(train) // 65, 65) and tuple(val_windows.shape) == (8, 65)
    assert torch.equal(train_windows, again_train) and torch.equal(val_windows, again_val)
    assert torch.equal(train_windows[1], train[65:130])


def test_another_folder_of_python_files_is_the_data_when_named(tmp_path: Path) -> None:
    for index in range(12):
        (tmp_path / f"m{index:02d}.py").write_bytes(bytes([65 + index]) * 300)
    (tmp_path / "notes.txt").write_text("not python")
    train, val = load_data(str(tmp_path))
    assert len(train) == 11 * 300 and bytes(val.tolist()) == b"J" * 300  # the tenth file, m09
    workload = StdlibLmWorkload(steps=2, eval_every=1, val_windows=4, source=str(tmp_path))
    trial = RecordingTrial(lr=1e-3)
    assert workload(trial)["val_loss"] < math.log(256)  # trained on the folder's bytes
    assert torch.equal(windows(64, 4, str(tmp_path))[1][0, :3], torch.tensor([74, 74, 74], dtype=torch.uint8))
    (tmp_path / "m00.py").unlink()
    (tmp_path / "m01.py").unlink()
    (tmp_path / "m02.py").unlink()
    with pytest.raises(
        ValueError, match=r"source: expected a folder of at least 10 \*.py files, got .*\(9\)"
    ):
        StdlibLmWorkload(source=str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"expected at least 10 \*.py files in .*empty.* found 0"):
        load_data(str(tmp_path / "empty"))


def test_model_starts_near_the_uniform_loss_and_is_seeded() -> None:
    model = make_model(seed=0)
    assert not list(model.buffers())  # parameters only: a batched trainer could stack it
    assert sum(p.numel() for p in model.parameters()) == 137_216
    _, val = windows(64, 64)
    logits = model(val[:, :-1])
    assert tuple(logits.shape) == (64, 64, 256)
    assert next_byte_loss(logits, val[:, 1:]).item() == pytest.approx(math.log(256), abs=0.1)
    first = next(make_model(seed=0).parameters())
    assert torch.equal(first, next(model.parameters()))
    assert not torch.equal(first, next(make_model(seed=1).parameters()))
    # Causal: a byte's logits do not depend on later bytes.
    changed = val[:2, :-1].clone()
    changed[:, 40:] = 32
    assert torch.allclose(model(changed)[:, :40], logits[:2, :40], atol=1e-5)
    assert not torch.allclose(model(changed)[:, 40:], logits[:2, 40:], atol=1e-3)


def test_short_run_learns_and_is_reproducible() -> None:
    workload = StdlibLmWorkload(steps=60, eval_every=20)
    trial = RecordingTrial(lr=3e-3, seed=3)
    result = workload(trial)  # type: ignore[arg-type]
    assert set(result) == {"val_loss", "val_acc", "best_step", "max_val_acc", "val_error"}
    assert [step for step, _ in trial.reports] == [20, 40, 60]
    curve = [metrics["val_loss"] for _, metrics in trial.reports]
    assert set(trial.reports[0][1]) == {"train_loss", "val_loss", "val_acc", "val_error"}
    assert curve[-1] < curve[0] < math.log(256) - 0.5  # learning, and well below chance
    assert result["val_loss"] == min(curve) and result["best_step"] == 60
    assert result["val_error"] == pytest.approx(1 - result["max_val_acc"])
    again = RecordingTrial(lr=3e-3, seed=3)
    assert workload(again) == result  # type: ignore[arg-type]
    assert again.reports == trial.reports
    other_seed = RecordingTrial(lr=3e-3, seed=4)
    assert workload(other_seed)["val_loss"] != result["val_loss"]  # type: ignore[arg-type]
    # A fixed data seed: the batch order no longer follows the trial seed (the model still does).
    ordered = StdlibLmWorkload(steps=20, eval_every=20, data_seed=0)
    assert ordered(RecordingTrial(3e-3, seed=3)) != StdlibLmWorkload(steps=20, eval_every=20)(  # type: ignore[arg-type]
        RecordingTrial(3e-3, seed=3)  # type: ignore[arg-type]
    )


def test_huge_learning_rate_diverges() -> None:
    with pytest.raises(Diverged, match="exceeded 10x its first value"):
        StdlibLmWorkload(steps=50, eval_every=25)(RecordingTrial(lr=1e3))  # type: ignore[arg-type]


def test_divergence_is_recorded_infeasible_in_a_study(tmp_path: Path) -> None:
    workload = StdlibLmWorkload(steps=30, eval_every=10)
    study = adamtune.tune(workload, 2, storage=str(tmp_path / "s.journal"), ranges={"lr": (1e6, 1e7)})
    assert {r.state for r in study.trials} == {State.INFEASIBLE}
    for record in study.trials:  # a NaN loss is named as such, a finite one by the factor
        assert re.fullmatch(
            r"train_loss (was nan at step \d+|\S+ at step \d+ exceeded 10x its first value \S+)",
            record.reason or "",
        )


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"steps": 0}, "steps: expected a whole number >= 1, got 0"),
        ({"batch_size": 2.5}, "batch_size: expected a whole number >= 1, got 2.5"),
        ({"context": True}, "context: expected a whole number >= 1, got True"),
        ({"heads": 5}, "heads: expected a divisor of d_model 64, got 5"),
        ({"divergence_factor": 1.0}, "divergence_factor: expected a number > 1, got 1.0"),
    ],
)
def test_bad_settings_are_refused_in_one_line(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(") + "$"):
        StdlibLmWorkload(**settings)
