"""``Trial``: what an objective gets, and the curves it reports."""

from __future__ import annotations

import math
from collections.abc import Mapping

import optuna

from adamtune.config import AdamConfig
from adamtune.errors import ConfigError, Diverged
from adamtune.outcomes import as_number

Curves = dict[str, list[list[float]]]
"""metric -> [[step, value], ...] in report order."""


class Trial:
    """One trial of a study, as the objective sees it.

    ``adam`` is the configuration to train with, ``seed`` the seed to train with (derived from
    the study seed and the trial's point, so a rerun of the point trains identically),
    ``number`` Optuna's trial number. Call ``report(step, **metrics)`` during training: the
    curves are stored with the trial, and a NaN or infinite metric ends the trial as diverged.
    """

    def __init__(
        self,
        optuna_trial: optuna.Trial,
        adam: AdamConfig,
        *,
        seed: int,
        point: int,
        metric: str,
    ) -> None:
        self._optuna_trial = optuna_trial
        self.adam = adam
        self.seed = seed
        self.point = point
        self.metric = metric
        self._curves: Curves = {}
        self._last: dict[str, float] = {}
        self._last_step = -1

    @property
    def number(self) -> int:
        return int(self._optuna_trial.number)

    @property
    def optuna_trial(self) -> optuna.Trial:
        """The underlying Optuna trial, for code that needs Optuna's own API."""
        return self._optuna_trial

    @property
    def curves(self) -> Curves:
        return {name: [list(p) for p in points] for name, points in self._curves.items()}

    @property
    def last_step(self) -> int:
        """The step of the latest report (-1 before the first)."""
        return self._last_step

    @property
    def last_metrics(self) -> dict[str, float]:
        return dict(self._last)

    def report(self, step: int, **metrics: float) -> None:
        """Record ``metrics`` at training step ``step`` (a whole number that never decreases).

        Raises ``Diverged`` when a metric is NaN or infinite: the objective need not catch it,
        and the trial is kept as infeasible data with the step and the metric in its reason.
        """
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ConfigError(f"report step: expected a whole number >= 0, got {step!r}")
        if step < self._last_step:
            raise ConfigError(
                f"report step: expected steps that never decrease, got {step} after {self._last_step}"
            )
        if not metrics:
            raise ConfigError("report: expected at least one metric, such as val_loss=0.3")
        values = self._numbers(metrics)
        self._last_step = step
        for name, value in values.items():
            self._curves.setdefault(name, []).append([step, value])
            self._last[name] = value
        for name, value in values.items():
            if not math.isfinite(value):
                raise Diverged(f"{name} was {value} at step {step}")
        if self.metric in values:
            self._optuna_trial.report(values[self.metric], step)

    @staticmethod
    def _numbers(metrics: Mapping[str, object]) -> dict[str, float]:
        values = {}
        for name, raw in metrics.items():
            value = as_number(raw)
            if value is None:
                raise ConfigError(f"report {name}: expected a number, got {raw!r:.80}")
            values[name] = value
        return values

    def __repr__(self) -> str:
        return f"Trial(number={self.number}, seed={self.seed}, {self.adam.short()})"
