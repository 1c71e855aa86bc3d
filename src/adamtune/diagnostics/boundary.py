"""Search-space boundaries (checklist item 1): do the best trials sit at an edge of a range?"""

from __future__ import annotations

from collections.abc import Sequence

from adamtune.diagnostics._base import Finding, Noise, complete, within_noise
from adamtune.diagnostics.geometry import expanded, position
from adamtune.records import TrialRecord
from adamtune.space import SearchSpace

EDGE = 0.10
"""The outer share of a range, on its search scale, that counts as "at the edge"."""
OUTERMOST_EDGE = 0.20
"""A wider edge for a best trial that is also the outermost trial on its side: nothing was
tried between it and the edge, and with few trials the outermost one often falls just short
of the 10% band while the objective still improves towards the edge. Missing an optimum
outside the range costs far more than one exploration round over a wider one."""


def boundary(
    records: Sequence[TrialRecord], space: SearchSpace, direction: str, noise: Noise
) -> list[Finding]:
    near = within_noise(records, direction, noise)
    if not near:
        return []
    findings = []
    for spec in space.tuned_specs:
        values = [float(getattr(r.adam, spec.name)) for r in near]
        best_at = position(spec, values[0])
        everywhere = [position(spec, float(getattr(r.adam, spec.name))) for r in complete(records)]
        side = edge_side(best_at, everywhere)
        if side is None:
            continue
        band = EDGE if min(best_at, 1 - best_at) <= EDGE else OUTERMOST_EDGE
        at_edge = sum(
            1
            for v in values
            if (position(spec, v) >= 1 - band if side == "upper" else position(spec, v) <= band)
        )
        new_low, new_high = expanded(spec, side)
        edge = spec.high if side == "upper" else spec.low
        beyond = "above" if side == "upper" else "below"
        closest = "" if band == EDGE else " (no trial was closer to that edge)"
        message = (
            f"The best trial's {spec.name} ({values[0]:.3g}) sits in the {side} {band:.0%} of its range "
            f"{spec.low:g}..{spec.high:g}{closest}, and {at_edge} of the {len(near)} trials within the "
            f"noise of the best sit there too: the optimum may lie {beyond} {edge:g}."
        )
        numbers = {
            "best_value": values[0],
            "best_position": round(best_at, 4),
            "near_best": len(near),
            "near_best_at_edge": at_edge,
            "range": [spec.low, spec.high],
            "side": side,
        }
        if (new_low, new_high) == (spec.low, spec.high):
            findings.append(
                Finding(
                    "boundary",
                    "info",
                    message + " The range is already at its legal limit.",
                    numbers,
                    None,
                    spec.name,
                )
            )
            continue
        action = (
            f"Expand {spec.name} to {new_low:g}:{new_high:g} (one decade {beyond}) and run another "
            f"round: --range {spec.name}={new_low:g}:{new_high:g}"
        )
        findings.append(
            Finding("boundary", "action", message, numbers, action, spec.name, (new_low, new_high))
        )
    return findings


def edge_side(best_at: float, positions: Sequence[float]) -> str | None:
    """ "upper" or "lower" when the best trial sits at that edge (see ``OUTERMOST_EDGE``)."""
    if best_at >= 1 - EDGE or (best_at >= 1 - OUTERMOST_EDGE and best_at >= max(positions)):
        return "upper"
    if best_at <= EDGE or (best_at <= OUTERMOST_EDGE and best_at <= min(positions)):
        return "lower"
    return None
