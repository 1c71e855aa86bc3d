"""What every diagnostic returns: findings with a severity, a sentence, numbers and an action."""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from adamtune.choice import best_configurations, best_first, feasible
from adamtune.records import TrialRecord

Severity = Literal["action", "warning", "info"]
"""action: change something before trusting the best trial; warning: look at it; info: context."""

SEVERITY_ORDER: dict[Severity, int] = {"action": 0, "warning": 1, "info": 2}


@dataclass(frozen=True)
class Finding:
    """One diagnostic result, ready to print, render or act on.

    ``numbers`` holds the values the sentence is built from; ``suggested_range`` is set when the
    action is a new search range for ``hyperparameter`` (in user values, e.g. beta1 not 1-beta1).
    """

    check: str
    severity: Severity
    message: str
    numbers: Mapping[str, Any] = field(default_factory=dict)
    action: str | None = None
    hyperparameter: str | None = None
    suggested_range: tuple[float, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "severity": self.severity,
            "message": self.message,
            "numbers": dict(self.numbers),
            "action": self.action,
            "hyperparameter": self.hyperparameter,
            "suggested_range": list(self.suggested_range) if self.suggested_range else None,
        }


NoiseSource = Literal["seeds", "best-spread", "none"]


@dataclass(frozen=True)
class Noise:
    """The objective's noise: from repeated seeds of one configuration when the study has them,
    else from the spread of the best trials (an upper bound: it mixes noise and real differences).
    """

    value: float
    source: NoiseSource
    detail: str


def complete(records: Sequence[TrialRecord]) -> list[TrialRecord]:
    """Complete, feasible trials with a finite value and a configuration."""
    return feasible(records)


def ranked(records: Sequence[TrialRecord], direction: str) -> list[TrialRecord]:
    """Complete trials, best first."""
    return best_first(complete(records), direction)


def estimate_noise(records: Sequence[TrialRecord], direction: str) -> Noise:
    groups: dict[tuple[Any, ...], list[float]] = {}
    for record in complete(records):
        assert record.adam is not None and record.value is not None
        groups.setdefault(tuple(sorted(record.adam.as_dict().items())), []).append(record.value)
    repeated = [values for values in groups.values() if len(values) >= 2]
    if repeated:
        # Pooled within-configuration standard deviation.
        dof = sum(len(v) - 1 for v in repeated)
        pooled = sum(statistics.variance(v) * (len(v) - 1) for v in repeated) / dof
        seeds = sum(len(v) for v in repeated)
        return Noise(
            math.sqrt(pooled),
            "seeds",
            f"pooled standard deviation over {seeds} runs of {len(repeated)} "
            f"configuration{'s' if len(repeated) != 1 else ''} "
            "with different seeds",
        )
    best = ranked(records, direction)
    # The runners-up, not the best: a lone outlier best would make its own gap the "noise".
    runners_up = best[1 : max(4, len(best) // 5)]
    if len(runners_up) < 3:
        return Noise(0.0, "none", "fewer than 4 complete trials: no noise estimate")
    values = [float(r.value or 0.0) for r in runners_up]
    return Noise(
        statistics.stdev(values),
        "best-spread",
        f"standard deviation of the 2nd to {len(runners_up) + 1}th best trials (no repeated "
        "seeds in this study; it mixes seed noise with real differences)",
    )


NEAR = 2.0
""""Within the noise of the best" means within NEAR x the noise. Two evaluations of the same
true value differ by N(0, 2 sigma^2), so they fall within 2 sigma of each other 84% of the time;
1 sigma would call most equal trials worse, all the more as the best is biased low by noise."""


def in_band(records: Sequence[TrialRecord], direction: str, noise: Noise) -> list[TrialRecord]:
    """The best trial and every complete trial within ``NEAR`` x ``noise`` of it, best first."""
    best = ranked(records, direction)
    if not best:
        return []
    top = float(best[0].value or 0.0)
    band = NEAR * noise.value
    if direction == "minimize":
        return [r for r in best if float(r.value or 0.0) <= top + band]
    return [r for r in best if float(r.value or 0.0) >= top - band]


def within_noise(records: Sequence[TrialRecord], direction: str, noise: Noise) -> list[TrialRecord]:
    """The configurations within ``NEAR`` x ``noise`` of the best, each as its best trial, best
    first. A configuration trained again on another seed (a ``remeasure`` round) counts once:
    "how many trials landed in the good region" asks how much of the region was sampled."""
    return best_configurations(in_band(records, direction, noise), direction)
