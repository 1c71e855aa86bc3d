"""What the workloads report at each evaluation and return at the end."""

from __future__ import annotations

from typing import Any


class ValidationTracker:
    """Reports ``train_loss`` (mean since the last evaluation), ``val_loss`` and, with
    ``accuracy``, ``val_acc`` and ``val_error`` to the trial, and keeps the best validation
    loss (with its step and accuracy) and the best accuracy for the run's result: the metrics
    the batched trainer gives each member."""

    def __init__(self, accuracy: bool = True) -> None:
        self.accuracy = accuracy
        self.train_losses: list[float] = []
        self.best = {"val_loss": float("inf"), "val_acc": 0.0, "step": 0.0}
        self.max_val_acc = 0.0

    def evaluated(self, trial: Any, step: int, val_loss: float, val_acc: float | None = None) -> None:
        train_loss = sum(self.train_losses) / len(self.train_losses)
        self.train_losses.clear()
        if val_acc is None:
            trial.report(step, train_loss=train_loss, val_loss=val_loss)
        else:
            trial.report(
                step, train_loss=train_loss, val_loss=val_loss, val_acc=val_acc, val_error=1.0 - val_acc
            )
            self.max_val_acc = max(self.max_val_acc, val_acc)
        if val_loss < self.best["val_loss"]:
            self.best = {"val_loss": val_loss, "val_acc": val_acc or 0.0, "step": float(step)}

    def result(self) -> dict[str, float]:
        if not self.accuracy:
            return {"val_loss": self.best["val_loss"], "best_step": self.best["step"]}
        return {
            "val_loss": self.best["val_loss"],
            "val_acc": self.best["val_acc"],
            "best_step": self.best["step"],
            "max_val_acc": self.max_val_acc,
            "val_error": 1.0 - self.max_val_acc,  # the best validation error during training
        }
