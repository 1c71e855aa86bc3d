"""Infeasible trials (checklist item 3) and instability at the edge of divergence (item 4)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from adamtune.diagnostics._base import Finding, Severity, ranked
from adamtune.diagnostics.geometry import geometric_middle
from adamtune.outcomes import State
from adamtune.records import TrialRecord
from adamtune.space import HyperparameterSpec, SearchSpace

LARGE_SHARE = 0.2
"""An infeasible share at least this large calls for a different range."""


@dataclass(frozen=True)
class DivergentTail:
    """Every trial with ``spec.name`` beyond ``first_diverged`` (towards ``side``) diverged."""

    spec: HyperparameterSpec
    side: str  # "upper" or "lower"
    count: int
    first_diverged: float  # the diverged value closest to the feasible region
    last_feasible: float | None  # the feasible value closest to the tail

    @property
    def boundary(self) -> float:
        """A value between the two: where to cut the range."""
        if self.last_feasible is None:
            return self.first_diverged
        return geometric_middle(self.spec, self.first_diverged, self.last_feasible)


def divergent_tail(records: Sequence[TrialRecord], spec: HyperparameterSpec) -> DivergentTail | None:
    """The longest run of diverged trials at either end of ``spec``'s axis (at least 2)."""
    points = sorted(
        (float(getattr(r.adam, spec.name)), r.state == State.INFEASIBLE)
        for r in records
        if r.adam is not None and r.state in (State.COMPLETE, State.INFEASIBLE)
    )
    best: DivergentTail | None = None
    for side, ordered in (("upper", points[::-1]), ("lower", points)):
        run = 0
        while run < len(ordered) and ordered[run][1]:
            run += 1
        if run >= 2 and (best is None or run > best.count):
            last_feasible = ordered[run][0] if run < len(ordered) else None
            best = DivergentTail(spec, side, run, ordered[run - 1][0], last_feasible)
    return best


def infeasible(records: Sequence[TrialRecord], space: SearchSpace) -> list[Finding]:
    # A trial given back (interrupted, or stopped with a run of failures) ran again as another.
    finished = [r for r in records if r.state != State.RUNNING and not r.given_back]
    diverged = [r for r in finished if r.state == State.INFEASIBLE]
    failed = [r for r in finished if r.state == State.FAILED]
    if not finished or not (diverged or failed):
        return []
    share = (len(diverged) + len(failed)) / len(finished)
    message = (
        f"{len(diverged)} of {len(finished)} trials diverged and {len(failed)} failed "
        f"({share:.0%} infeasible)."
    )
    numbers: dict[str, object] = {
        "diverged": len(diverged),
        "failed": len(failed),
        "trials": len(finished),
        "share": round(share, 4),
    }
    tails = [t for t in (divergent_tail(records, s) for s in space.tuned_specs) if t is not None]
    tail = max(tails, key=lambda t: t.count, default=None)
    action = None
    suggested = None
    name = None
    if tail is not None:
        word = "above" if tail.side == "upper" else "below"
        sign = ">=" if tail.side == "upper" else "<="
        shown = tail.spec.value_text
        message += (
            f" All {tail.count} trials with {tail.spec.name} {sign} {shown(tail.first_diverged)} diverged"
        )
        if tail.last_feasible is not None:
            message += f" (the nearest that did not: {shown(tail.last_feasible)})"
        message += "."
        numbers.update(
            hyperparameter=tail.spec.name,
            side=tail.side,
            tail_count=tail.count,
            first_diverged=tail.first_diverged,
            last_feasible=tail.last_feasible,
        )
        name = tail.spec.name
        if share >= LARGE_SHARE and tail.last_feasible is not None:
            cut = tail.boundary
            suggested = (tail.spec.low, cut) if tail.side == "upper" else (cut, tail.spec.high)
            cut_range = tail.spec.with_range(*suggested).range_text()
            action = (
                f"Narrow {name} to {cut_range}, away from the divergent "
                f"region {word} {shown(cut)}: --range {name}={cut_range}"
            )
    if failed:
        message += " Failed trials crashed: read their reasons (adamtune trials --state failed --reasons)."
    if action is None and share >= LARGE_SHARE:
        action = "Check the failed and diverged trials' reasons: a large share can reveal a bug."
    severity: Severity = "action" if share >= LARGE_SHARE else "warning"
    return [Finding("infeasible", severity, message, numbers, action, name, suggested)]


def instability(records: Sequence[TrialRecord], space: SearchSpace, direction: str) -> list[Finding]:
    """The best lr sits right below the learning rates that diverge."""
    if "lr" not in space.tuned:
        return []
    tail = divergent_tail(records, space.spec("lr"))
    best = ranked(records, direction)
    if tail is None or tail.side != "upper" or not best or best[0].adam is None:
        return []
    best_lr = best[0].adam.lr
    adjacent = tail.last_feasible is not None and best_lr >= tail.last_feasible
    if not (adjacent or best_lr >= tail.first_diverged / 3):
        return []
    return [
        Finding(
            "instability",
            "warning",
            f"The best lr ({best_lr:.3g}) lies next to the learning rates that diverge (all "
            f"{tail.count} trials with lr >= {tail.first_diverged:.3g}): training may be unstable "
            "there, and the best lr is limited by that instability.",
            {"best_lr": best_lr, "first_diverged": tail.first_diverged, "diverged": tail.count},
            "Add learning-rate warmup or gradient clipping (threshold near the 90th percentile of "
            f"gradient norms), then train at {5 * best_lr:.3g}-{10 * best_lr:.3g} (5-10x the best "
            "lr) to confirm the model is stable there.",
            "lr",
        )
    ]
