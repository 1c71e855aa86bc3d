"""Narrowing the settled space around the best trials before the exploitation round.

The playbook narrows a range once exploration has shown where the good region lies. Here the
exploitation round searches, in each tuned dimension, the span of the best ``TOP_SHARE`` of the
feasible trials so far, widened by ``MARGIN`` of the range on each side (on the search scale).
Why: with a wide range, the GP's expected improvement is largest where it knows least, and in a
dimension the exploration found nearly flat that is the range's edges; it spends the round
there (beta1 0.5, eps 1e-10) instead of refining the good region. Narrowing only ever shrinks a
range, and never below ``MIN_WIDTH`` of it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal

from adamtune.outcomes import State
from adamtune.records import TrialRecord
from adamtune.space import HyperparameterSpec, SearchSpace

TOP_SHARE = 0.25
"""The share of the feasible trials whose span the exploitation round keeps."""
MIN_TOP = 4
"""At least this many of the best trials define the span."""
MIN_FEASIBLE = 20
"""Fewer feasible trials than this: too little evidence to narrow anything. The best quarter of
fewer than 20 trials is 4 points or fewer; on the quality benchmark, narrowing at budget 20
(10-18 trials before the exploitation round) helped in one cell and hurt in two."""
MARGIN = 0.1
"""Added on each side of the best trials' span, as a share of the range on the search scale."""
MIN_WIDTH = 0.3
"""A narrowed range keeps at least this share of the range on the search scale."""
SNAP = 0.1
"""A narrowed end this close to the range's end (as a share of the range) stays at that end:
cutting a sliver off a range changes nothing but the reason shown."""


def exploitation_space(
    space: SearchSpace, records: Sequence[TrialRecord], direction: Literal["minimize", "maximize"]
) -> tuple[SearchSpace, list[str]]:
    """``space`` narrowed around its best trials, and the reason (none when nothing narrowed)."""
    found = best_trials(space, records, direction)
    if found is None:
        return space, []
    best, inside = found
    spans = {}
    for spec in space.tuned_specs:
        units = [spec.unit_from_value(getattr(r.adam, spec.name)) for r in best]
        spans[spec.name] = (min(units) - MARGIN, max(units) + MARGIN)
    return narrowed_to(space, spans, f"where the best {len(best)} of {len(inside)} feasible trials lie")


def narrowed_to(
    space: SearchSpace, spans: Mapping[str, tuple[float, float]], where: str
) -> tuple[SearchSpace, list[str]]:
    """``space`` with the range of each tuned hyperparameter in ``spans`` cut to its (low, high)
    on the search scale (clipped to the range, grown to ``MIN_WIDTH``, an end within ``SNAP`` of
    the range's end kept), and the reason, ``narrow ...: where``; none when nothing was cut."""
    specs = []
    narrowed_ranges = []
    for spec in space.specs:
        if spec.name not in space.tuned or spec.name not in spans:
            specs.append(spec)
            continue
        low, high = _widened(*spans[spec.name])
        low, high = (0.0 if low < SNAP else low), (1.0 if high > 1.0 - SNAP else high)
        if low == 0.0 and high == 1.0:
            specs.append(spec)
            continue
        narrowed = _range_from_units(spec, low, high)
        specs.append(narrowed)
        narrowed_ranges.append(f"{spec.name} to {narrowed.low:.3g}:{narrowed.high:.3g}")
    if not narrowed_ranges:
        return space, []
    return SearchSpace(tuple(specs), space.tuned, space.optimizer), [
        f"narrow {', '.join(narrowed_ranges)}: {where}"
    ]


def best_trials(
    space: SearchSpace, records: Sequence[TrialRecord], direction: Literal["minimize", "maximize"]
) -> tuple[list[TrialRecord], list[TrialRecord]] | None:
    """The best ``TOP_SHARE`` (at least ``MIN_TOP``) of the feasible trials inside ``space``, and
    all of those; None with fewer than ``MIN_FEASIBLE`` of them (too little evidence)."""
    inside = [r for r in records if _usable(r) and _inside(space, r)]
    if len(inside) < MIN_FEASIBLE:
        return None
    ordered = sorted(inside, key=_value, reverse=direction == "maximize")
    return ordered[: max(MIN_TOP, math.ceil(TOP_SHARE * len(ordered)))], inside


def _usable(record: TrialRecord) -> bool:
    return record.state == State.COMPLETE and record.value is not None and record.adam is not None


def _value(record: TrialRecord) -> float:
    assert record.value is not None  # only usable records are sorted
    return record.value


def _inside(space: SearchSpace, record: TrialRecord) -> bool:
    assert record.adam is not None
    return all(spec.low <= getattr(record.adam, spec.name) <= spec.high for spec in space.tuned_specs)


def _widened(low: float, high: float) -> tuple[float, float]:
    """``low:high`` clipped to [0, 1], then grown to ``MIN_WIDTH`` about its centre (kept inside)."""
    low, high = max(low, 0.0), min(high, 1.0)
    if high - low < MIN_WIDTH:
        centre = min(max((low + high) / 2, MIN_WIDTH / 2), 1.0 - MIN_WIDTH / 2)
        low, high = centre - MIN_WIDTH / 2, centre + MIN_WIDTH / 2
    return low, high


def _range_from_units(spec: HyperparameterSpec, low: float, high: float) -> HyperparameterSpec:
    ends = sorted(spec.value_from_param(spec.param_from_unit(u)) for u in (low, high))
    # The ends of the original range stay exact (no exp/log round-off at an untouched edge).
    start = spec.low if math.isclose(ends[0], spec.low) else max(ends[0], spec.low)
    stop = spec.high if math.isclose(ends[1], spec.high) else min(ends[1], spec.high)
    return spec.with_range(start, stop)
