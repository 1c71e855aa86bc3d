"""``Trial``: what an objective gets, and the curves it reports."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import optuna

from adamtune.config import AdamConfig
from adamtune.errors import ConfigError, Diverged, Pruned, Stopped
from adamtune.outcomes import as_number
from adamtune.storage import PART_MARK

Curves = dict[str, list[list[float]]]
"""metric -> [[step, value], ...] in report order."""


@dataclass(frozen=True)
class StopRules:
    """When ``report`` ends a trial early (PLAYBOOK.md section 6).

    - divergence: a NaN or infinite metric, or a training loss (a metric named ``loss`` or
      ``train...loss``) more than ``divergence_factor`` times its first reported value;
      validation losses are left out because overfitting can raise them that far;
    - patience: no improvement of the objective metric for ``patience`` reports;
    - pruning: the study's Optuna pruner, fed with the best value so far at each step.
    """

    direction: str = "minimize"
    divergence_factor: float | None = 10.0
    patience: int | None = None

    def __post_init__(self) -> None:
        factor = self.divergence_factor
        if factor is not None and not (isinstance(factor, int | float) and factor > 1):
            raise ConfigError(f"divergence_factor: expected a number > 1, got {factor!r}")
        patience = self.patience
        if patience is not None and (
            isinstance(patience, bool) or not isinstance(patience, int) or patience < 1
        ):
            raise ConfigError(f"patience: expected a whole number of reports >= 1, got {patience!r}")


def is_training_loss(name: str) -> bool:
    return name == "loss" or (name.startswith("train") and name.endswith("loss"))


class Trial:
    """One trial of a study, as the objective sees it.

    ``adam`` is the configuration to train with, ``seed`` the seed to train with (derived from
    the study seed and the trial's point, so a rerun of the point trains identically),
    ``number`` Optuna's trial number (from 0 in each round of a campaign; ``name`` is unique in
    the study). Call ``report(step, **metrics)`` during training: the curves are stored with
    the trial, and a NaN or infinite metric ends the trial as diverged.
    """

    def __init__(
        self,
        optuna_trial: optuna.Trial,
        adam: AdamConfig,
        *,
        seed: int,
        point: int,
        metric: str,
        rules: StopRules | None = None,
    ) -> None:
        self._optuna_trial = optuna_trial
        self.adam = adam
        self.seed = seed
        self.point = point
        self.metric = metric
        self._curves: Curves = {}
        self._last: dict[str, float] = {}
        self._last_step = -1
        self.rules = rules or StopRules()
        self._best: float | None = None
        self._best_step = -1
        self._since_best = 0

    @property
    def number(self) -> int:
        return int(self._optuna_trial.number)

    @property
    def part(self) -> str:
        """The part of a campaign this trial runs in (``round-K``, ``confirm``); "" in a plain
        study. Each part is an Optuna study that numbers its trials from 0."""
        return self._optuna_trial.study.study_name.partition(PART_MARK)[2]

    @property
    def name(self) -> str:
        """A name unique in the study, for naming files: ``trial-N``, and in a campaign
        ``round-K-trial-N`` or ``confirm-trial-N``."""
        return f"{self.part}-trial-{self.number}" if self.part else f"trial-{self.number}"

    @property
    def optuna_trial(self) -> optuna.Trial:
        """The underlying Optuna trial, for code that needs Optuna's own API."""
        return self._optuna_trial

    @property
    def curves(self) -> Curves:
        return {name: [list(p) for p in points] for name, points in self._curves.items()}

    @property
    def best_so_far(self) -> float | None:
        """The best value of the objective metric reported so far (None before any)."""
        return self._best

    @property
    def last_step(self) -> int:
        """The step of the latest report (-1 before the first)."""
        return self._last_step

    @property
    def last_metrics(self) -> dict[str, float]:
        return dict(self._last)

    def report(self, step: int, **metrics: float) -> None:
        """Record ``metrics`` at training step ``step`` (a whole number that never decreases).
        Reports at one step are one evaluation: a point told again is kept once, and the
        objective told again does not count towards ``patience``.

        Raises a signal the objective need not catch: ``Diverged`` for a NaN or infinite metric
        or a training loss far above its first value (the trial is kept as infeasible data with
        the step and metric in its reason), ``Stopped`` when patience runs out and ``Pruned``
        when the study's pruner says so (both keep the best value so far).
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
        told = self._curves.get(self.metric, [])
        again = bool(told) and told[-1][0] == step  # the objective was reported at this step
        self._last_step = step
        for name, value in values.items():
            points = self._curves.setdefault(name, [])
            if points[-1:] != [[step, value]]:  # the same point told again is kept once
                points.append([step, value])
            self._last[name] = value
        self._check_divergence(step, values)
        if self.metric in values:
            self._follow_objective(step, values[self.metric], again)

    def _check_divergence(self, step: int, values: Mapping[str, float]) -> None:
        factor = self.rules.divergence_factor
        for name, value in values.items():
            if not math.isfinite(value):
                raise Diverged(f"{name} was {value} at step {step}")
            first = self._curves[name][0][1]
            if factor is not None and is_training_loss(name) and first > 0 and value > factor * first:
                raise Diverged(
                    f"{name} {value:.3g} at step {step} is more than {factor:g}x its first value {first:.3g}"
                )

    def _follow_objective(self, step: int, value: float, again: bool) -> None:
        # ``again``: the objective told again at the same step is the same evaluation (a program
        # that prints it twice): it may be the best, but it is not another report without
        # improvement, and Optuna keeps one value per step.
        better = self._best is None or (
            value < self._best if self.rules.direction == "minimize" else value > self._best
        )
        if better:
            self._best, self._best_step, self._since_best = value, step, 0
        elif not again:
            self._since_best += 1
        assert self._best is not None
        if again:
            return
        # Optuna sees the best so far: its pruners then compare what the objective will be,
        # and a pruned trial's stored value (the last one reported) is its best.
        self._optuna_trial.report(self._best, step)
        patience = self.rules.patience
        if patience is not None and self._since_best >= patience:
            raise Stopped(
                f"stopped at step {step}: no improvement of {self.metric} for {patience} reports "
                f"(best {self._best:.6g} at step {self._best_step})"
            )
        if self._optuna_trial.should_prune():
            raise Pruned(f"pruned at step {step} (best {self.metric} so far {self._best:.6g})")

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
