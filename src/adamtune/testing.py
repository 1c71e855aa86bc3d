"""Cheap objectives with known answers, for tests and for trying adamtune without training.

``SyntheticObjective`` mimics what matters about tuning Adam: a valley in log lr (optimum
``best_lr``), a weak coupling with beta1 (the best lr moves as 1 - beta1 shrinks, as it does
for Adam), and divergence above ``diverge_above``. It reports a short training curve.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from adamtune.trial import Trial


@dataclass(frozen=True)
class SyntheticObjective:
    best_lr: float = 1e-3
    diverge_above: float = math.inf
    steps: int = 5
    sleep_s: float = 0.0  # per step: lets tests interrupt a trial in progress

    @property
    def __name__(self) -> str:
        return "synthetic"

    def value(self, lr: float, beta1: float) -> float:
        """The objective's exact value (no noise): 0.1 at the optimum, growing quadratically."""
        shift = 0.5 * math.log10((1 - beta1) / 0.1)  # smaller 1-beta1: the best lr moves up
        return 0.1 + (math.log10(lr) - math.log10(self.best_lr) - shift) ** 2

    def __call__(self, trial: Trial) -> float:
        final = self.value(trial.adam.lr, trial.adam.beta1)
        for step in range(self.steps):
            if self.sleep_s:
                time.sleep(self.sleep_s)
            if trial.adam.lr > self.diverge_above and step >= self.steps // 2:
                trial.report(step, val_loss=math.nan)  # raises Diverged
            trial.report(step, val_loss=final + 1.0 / (step + 1))
        return final
