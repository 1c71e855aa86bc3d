"""Which hyperparameters a budget can tune well (PLAYBOOK.md section 2).

The playbook's tiers are "<10", "10-25", "25+" and "substantially more than 25" trials.
adamtune reads them as the thresholds 10, 25 and 50, and says so whenever it applies them.
lr and beta1 are tuned jointly, never one after the other: the best lr moves with beta1.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from adamtune.errors import ConfigError

TIERS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (50, ("lr", "beta1", "eps", "beta2")),
    (25, ("lr", "beta1", "eps")),
    (10, ("lr", "beta1")),
    (1, ("lr",)),
)
"""(smallest budget, tuned set), largest first."""

_READING = (
    "the playbook's tiers are <10, 10-25, 25+ and 'substantially more than 25' trials; "
    "adamtune reads them as the thresholds 10, 25 and 50"
)


@dataclass(frozen=True)
class TierChoice:
    """The hyperparameters a study tunes, and why."""

    tuned: tuple[str, ...]
    reason: str
    source: Literal["tiers", "user"]

    def to_dict(self) -> dict[str, Any]:
        return {"tuned": list(self.tuned), "reason": self.reason, "source": self.source}


def check_budget(budget: object) -> int:
    """A budget is a whole number of trials, at least 1."""
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise ConfigError(f"budget: expected a whole number of trials >= 1, got {budget!r}")
    return budget


def choose_tuned(
    budget: int,
    *,
    requested: Iterable[str] | None = None,
    fixed: Iterable[str] = (),
    ranged: Iterable[str] = (),
) -> TierChoice:
    """The tuned set for ``budget``, or the user's ``requested`` set, with the reason.

    A hyperparameter the user fixed is dropped from the tier's set (fixing it is the user's
    way of saying "do not tune this"); an explicitly requested one may not also be fixed.
    One the user gave a range (``ranged``) but that is not tuned is named in the reason: a
    range alone does not tune it, and the user may expect it to.
    """
    check_budget(budget)
    fixed = set(fixed)
    ranged = list(ranged)
    if requested is not None:
        tuned = tuple(requested)
        both = [name for name in tuned if name in fixed]
        if both:
            raise ConfigError(
                f"{', '.join(both)}: expected each hyperparameter either tuned or fixed, "
                "got both --tune and --fix"
            )
        advice = _advice(budget, tuned)
        reason = f"tuning {', '.join(tuned)} as requested" + (f"; {advice}" if advice else "")
        return TierChoice(tuned, reason + _untuned_note(tuned, ranged, "not in the requested set"), "user")

    threshold, tier = next((low, names) for low, names in TIERS if budget >= low)
    tuned = tuple(name for name in tier if name not in fixed)
    span = _span(threshold)
    reason = f"budget {budget} ({span} trials): tune {_join(tier)}"
    if len(tier) > 1:
        reason += " jointly"
    dropped = [name for name in tier if name in fixed]
    if dropped:
        reason += f", except {', '.join(dropped)} (fixed by the user)"
    reason += f"; {_READING}"
    if not tuned:
        raise ConfigError(f"tuned hyperparameters: every one the budget would tune is fixed ({_join(tier)})")
    return TierChoice(
        tuned, reason + _untuned_note(tuned, ranged, f"not tuned with {budget} trials"), "tiers"
    )


def _untuned_note(tuned: tuple[str, ...], ranged: list[str], why: str) -> str:
    """The reason's note on hyperparameters given a range that are not tuned ("" if none)."""
    names = [name for name in dict.fromkeys(ranged) if name not in tuned]
    if not names:
        return ""
    if len(names) == 1:
        return (
            f"; {names[0]} has a range but is {why}: it stays at its fixed value "
            "(name it in --tune, or tune=, to tune anyway)"
        )
    return (
        f"; {_join(names)} have a range but are {why}: they stay at their fixed values "
        "(name them in --tune, or tune=, to tune anyway)"
    )


def _span(threshold: int) -> str:
    bounds = sorted(low for low, _ in TIERS)
    index = bounds.index(threshold)
    if index + 1 < len(bounds):
        return f"{threshold}-{bounds[index + 1] - 1}"
    return f"{threshold} or more"


def _advice(budget: int, tuned: tuple[str, ...]) -> str:
    recommended = next(names for low, names in TIERS if budget >= low)
    if len(tuned) > len(recommended):
        return (
            f"note: the tiers would tune only {_join(recommended)} with {budget} trials; "
            "more dimensions need more trials to search well"
        )
    return ""


def _join(names: Iterable[str]) -> str:
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
