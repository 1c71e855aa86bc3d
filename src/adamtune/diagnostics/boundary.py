"""Search-space boundaries (checklist item 1): do the best trials sit at an edge of a range?"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from adamtune.diagnostics._base import Finding, Noise, complete, ranked, within_noise
from adamtune.diagnostics.geometry import expanded, position
from adamtune.records import TrialRecord
from adamtune.space import HyperparameterSpec, SearchSpace


@dataclass(frozen=True)
class NextRound:
    """What a playbook campaign's next round (or a larger budget's) would do with its ranges
    (``campaign.next_round``): the report's boundary action says what the same study can do."""

    expands: Mapping[str, tuple[float, float]]
    """The ranges it would expand, by name, as it would expand them."""
    reach: Mapping[str, tuple[float, float]]
    """How far it may ever expand each range: two decades past where it started."""
    spent: str | None = None
    """Why it expands nothing more at all (it has had all its expansion rounds)."""

    def why_not(self, spec: HyperparameterSpec, side: str) -> str:
        if self.spent is not None:
            return self.spent
        reach = self.reach[spec.name]
        edge, far = (spec.high, reach[1]) if side == "upper" else (spec.low, reach[0])
        if math.isclose(edge, far, rel_tol=1e-9):
            return "the playbook strategy expands a range at most two decades past where it started"
        return "its rounds take the trials' own spread as the noise, and by that the best is not at this edge"


EDGE = 0.10
"""The outer share of a range, on its search scale, that counts as "at the edge"."""
OUTERMOST_EDGE = 0.20
"""A second rule: the trial closest to an edge is the best or the runner-up and lies in the
outer 20%. With few trials the outermost one often falls just short of the 10% band while the
objective still improves towards the edge (the demo's 10 quasi-random points reach 89% of the
lr range). Missing an optimum outside the range costs far more than one exploration round."""
OUTERMOST_RANK = 2


def boundary(
    records: Sequence[TrialRecord],
    space: SearchSpace,
    direction: str,
    noise: Noise,
    *,
    next_round: NextRound | None = None,
) -> list[Finding]:
    """``next_round``: of a playbook campaign, the ranges its next round (or a larger budget's)
    would expand, and why no others (``campaign.next_round``). Its action then says
    first what the same study can do; a new study would start from zero."""
    near = within_noise(records, direction, noise)
    if not near:
        return []
    top = ranked(records, direction)[:OUTERMOST_RANK]
    findings = []
    for spec in space.tuned_specs:
        values = [float(getattr(r.adam, spec.name)) for r in near]
        best_at = position(spec, values[0])
        at_band = _band_side(best_at)
        side, outermost = at_band, None
        if side is None:
            side, outermost = _outermost_side(spec, records, top)
        if side is None:
            continue
        edge = spec.high if side == "upper" else spec.low
        beyond = "above" if side == "upper" else "below"
        at_edge = sum(1 for v in values if _band_side(position(spec, v)) == side)
        if outermost is None:
            head = (
                f"The best trial's {spec.name} ({spec.value_text(values[0])}) sits in the {side} 10% "
                f"of its range {spec.range_text('..')}, and {_company(at_edge - 1, len(near) - 1)}"
            )
        else:
            outer_value = float(getattr(outermost.adam, spec.name))
            where = position(spec, outer_value)
            rank = "best" if outermost is top[0] else "second best"
            head = (
                f"The trial closest to the {side} edge of {spec.name}'s range {spec.range_text('..')} "
                f"({spec.value_text(outer_value)}, at {where:.0%} of the range on its "
                f"search scale) is the {rank} of the study: the objective still improves towards the edge"
            )
        joiner = ": " if outermost is None else ", and "
        message = f"{head}{joiner}the optimum may lie {beyond} {edge:g}."
        numbers = {
            "best_value": values[0],
            "best_position": round(best_at, 4),
            "near_best": len(near),
            "near_best_at_edge": at_edge,
            "range": [spec.low, spec.high],
            "side": side,
            "rule": "outer 10%" if outermost is None else "outermost trial among the best two",
        }
        new_low, new_high = expanded(spec, side)
        if (new_low, new_high) == (spec.low, spec.high):
            whose = "the limit you set for" if _at_user_limit(spec, side) else "the legal limit of"
            findings.append(
                Finding(
                    "boundary",
                    "info",
                    f"{head}: the range already reaches {whose} {spec.name}, {edge:g}.",
                    numbers,
                    None,
                    spec.name,
                )
            )
            continue
        how_far = (
            "up to the limit you set"
            if _at_user_limit(spec.with_range(new_low, new_high), side)
            else "one decade"
        )
        if next_round is not None and spec.name in next_round.expands:
            new_low, new_high = next_round.expands[spec.name]  # the campaign's own, within its reach
        action = _expand_action(spec, side, (new_low, new_high), f"{how_far} {beyond}", next_round)
        findings.append(
            Finding("boundary", "action", message, numbers, action, spec.name, (new_low, new_high))
        )
    return findings


def _expand_action(
    spec: HyperparameterSpec,
    side: str,
    wider: tuple[float, float],
    how_far: str,
    next_round: NextRound | None,
) -> str:
    """What to do about an edge: a study's space is fixed once it starts (resuming it with
    another is refused), so the wider range is a new study, or a campaign's next round."""
    option = f"--range {spec.name}={wider[0]:g}:{wider[1]:g}"
    if next_round is not None and spec.name in next_round.expands:
        return (
            f"Expand {spec.name} to {wider[0]:g}..{wider[1]:g}: run the study's command again (with a "
            "larger --budget once it has finished), and its next round explores that range; or tune "
            f"under a new study name with {option}"
        )
    elsewhere = (
        f"Expand {spec.name} to {wider[0]:g}..{wider[1]:g} ({how_far}) and tune again under a new "
        f"study name: {option}"
    )
    if next_round is None:
        return f"{elsewhere} (or with --strategy playbook, which expands its ranges itself, in rounds)"
    return (
        f"{elsewhere} (a larger --budget would not expand it in this study: {next_round.why_not(spec, side)})"
    )


def _at_user_limit(spec: HyperparameterSpec, side: str) -> bool:
    if spec.limit is None:
        return False
    return spec.high == spec.limit[1] if side == "upper" else spec.low == spec.limit[0]


def _company(at_edge: int, others: int) -> str:
    """How many of the ``others`` trials within the noise of the best share its edge."""
    noise = "within the noise of the best"
    if others == 0:
        return f"no other trial lies {noise}"
    if others == 1:
        return f"the one other trial {noise} {'sits there too' if at_edge else 'is not there'}"
    if at_edge == 0:
        return f"none of the {others} other trials {noise} is there"
    if at_edge == others:
        return f"all {others} other trials {noise} sit there too"
    return f"{at_edge} of the {others} other trials {noise} {'sits' if at_edge == 1 else 'sit'} there too"


def _band_side(where: float) -> str | None:
    return "upper" if where >= 1 - EDGE else "lower" if where <= EDGE else None


def _outermost_side(
    spec: HyperparameterSpec, records: Sequence[TrialRecord], top: Sequence[TrialRecord]
) -> tuple[str | None, TrialRecord | None]:
    """The side whose outermost trial is among ``top`` and in the outer ``OUTERMOST_EDGE``."""
    done = complete(records)
    if len(done) < 3:
        return None, None
    placed = sorted(done, key=lambda r: position(spec, float(getattr(r.adam, spec.name))))
    for side, outermost in (("upper", placed[-1]), ("lower", placed[0])):
        where = position(spec, float(getattr(outermost.adam, spec.name)))
        inside = where >= 1 - OUTERMOST_EDGE if side == "upper" else where <= OUTERMOST_EDGE
        if inside and any(outermost is t for t in top):
            return side, outermost
    return None, None
