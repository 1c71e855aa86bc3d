"""How a trial ended: complete, infeasible (diverged), pruned or failed, with the reason."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class State(StrEnum):
    COMPLETE = "complete"
    INFEASIBLE = "infeasible"
    PRUNED = "pruned"
    FAILED = "failed"
    RUNNING = "running"


@dataclass(frozen=True)
class Outcome:
    """The end of one trial, before it is recorded.

    ``value`` is the objective for complete and pruned trials and ``None`` otherwise;
    ``metrics`` are the values the objective returned, merged over its last reports.
    """

    state: State
    value: float | None
    reason: str | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def complete(cls, value: float, metrics: Mapping[str, float]) -> Outcome:
        return cls(State.COMPLETE, value, None, metrics)

    @classmethod
    def infeasible(cls, reason: str, metrics: Mapping[str, float] | None = None) -> Outcome:
        return cls(State.INFEASIBLE, None, reason, metrics or {})

    @classmethod
    def failed(cls, reason: str, metrics: Mapping[str, float] | None = None) -> Outcome:
        return cls(State.FAILED, None, reason, metrics or {})


def as_number(value: Any) -> float | None:
    """``value`` as a float when it is a real number (Python, NumPy or a 0-d tensor), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Real):
        return float(value)
    item = getattr(value, "item", None)  # NumPy scalars and 0-d arrays or tensors
    if callable(item) and getattr(value, "ndim", 0) == 0:
        try:
            inner = item()
        except (TypeError, ValueError, RuntimeError):
            return None
        return as_number(inner)
    return None


def judge_return(returned: Any, metric: str, reported: Mapping[str, float]) -> Outcome:
    """The outcome of an objective that returned ``returned`` without raising.

    A number is the objective's value; a mapping names it by ``metric``. A NaN or infinite
    objective is infeasible (diverged); anything else unusable is a failure, with the reason.
    """
    metrics = dict(reported)
    if isinstance(returned, Mapping):
        numeric = {str(k): as_number(v) for k, v in returned.items()}
        metrics.update({k: v for k, v in numeric.items() if v is not None})
        if metric not in returned:
            names = ", ".join(sorted(map(str, returned))) or "none"
            return Outcome.failed(
                f"the objective returned no metric named {metric!r} (it returned: {names})",
                metrics,
            )
        value = numeric[metric]
        if value is None:
            return Outcome.failed(f"metric {metric!r}: expected a number, got {returned[metric]!r}", metrics)
    else:
        value = as_number(returned)
        if value is None:
            return Outcome.failed(
                "the objective must return a number or a dict of metrics naming "
                f"{metric!r}, got {type(returned).__name__}: {returned!r:.80}",
                metrics,
            )
        metrics[metric] = value
    if not math.isfinite(value):
        return Outcome.infeasible(f"the objective returned {value}", metrics)
    return Outcome.complete(value, metrics)
