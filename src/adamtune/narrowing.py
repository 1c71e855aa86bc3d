"""Narrowing the settled space before the exploitation round.

The playbook narrows a range once exploration has shown where the good region lies. Why: with a
wide range, the GP's expected improvement is largest where it knows least, and in a dimension
the exploration found nearly flat that is the range's edges; it spends the round there (beta1
0.5, eps 1e-10) instead of refining the good region. Narrowing only ever shrinks a range, never
below ``MIN_WIDTH`` of it, and needs ``MIN_FEASIBLE`` feasible trials. Two shapes:

- ``trust_region``, for a round with no expansion before it: a box around the trial adamtune
  recommends so far, as trust-region BO (TuRBO) keeps, whose side in each dimension follows
  the GP's length scale there, so a dimension the trials show flat keeps more of its range. On
  the language model's wide ranges the best quarter of 25 trials spans most of the space and
  the GP round spent itself on its faces; the box lowered the median regret at budget 50 in all
  three wide cells of the quality benchmark. A round of ``SPLIT_FROM`` trials or more is split
  in two halves (``split_round``) with a box each, TuRBO's several trust regions: the second
  around the best explored trial outside the first box (``second_trust_region``). At budget
  100 (66 trials) with wide ranges, over 100 repetitions, the span of the best trials had a
  median regret of 0.062 on the MLP, 0.015 on the language model and -0.025 on the CNN; one
  box 0.035, 0.000 and -0.013 (it missed the CNN's better region, large eps, away from the
  first round's incumbent); two boxes 0.042, 0.001 and -0.020, ahead of every other method
  in all three cells.
- ``best_span``, after an expansion: in each tuned dimension the span of the best
  ``TOP_SHARE`` of the feasible trials, widened by ``MARGIN`` of the range on each side. A box
  around the best trial so far would cut off the direction the expansion was heading.

An exploration round after an expansion is cut too (``expansion_focus``): a range that grew
on one side is sampled from one trial spacing behind the best trial so far to its new end,
not over the part the earlier rounds searched already. Sampling all of the expanded range spent
half of those rounds' trials where the first round had shown the objective far worse (lr
under 2e-4 on the MNIST-1D MLP); the cut lowered the median regret with the default ranges at
budget 8 on the CNN (0.306 to 0.168) and the language model (0.109 to 0.055).

All on the search scale (log lr, log eps, log(1-beta)).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

import numpy as np

from adamtune.choice import GP_TRIALS, TOP, best_first, feasible, fit_gp, nearest_rows, recommend
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


SPLIT_FROM = 50
"""An exploitation round of this many trials or more (with no expansion before it) searches two
trust regions in turn (``split_round``); a shorter one searches one. One box was measured
better than the span of the best trials at 25 and 35 trials (budgets 50 and 60) and mixed at
66 (budget 100: worse on the CNN), where two boxes of 33 lost less on the CNN and gained almost
as much elsewhere. At 45 trials (budget 70) two boxes of 22 and 23 had a higher median than one
box in all three wide cells (30 repetitions, each by under 0.1 seed sd)."""
TRUST_SIDE = 0.5
"""The trust region's side (a share of the range) in a dimension of average GP length scale
(TuRBO's base length)."""


def split_round(trials: int, *, expanded: bool) -> tuple[int, ...]:
    """The parts an exploitation round of ``trials`` trials runs in, each its own Optuna study:
    the whole round, or two halves for a round of ``SPLIT_FROM`` trials or more with no
    expansion before it (``expanded``), the second over ``second_trust_region``."""
    if expanded or trials < SPLIT_FROM:
        return (trials,)
    return (trials // 2, trials - trials // 2)


def exploitation_space(
    space: SearchSpace,
    records: Sequence[TrialRecord],
    direction: Literal["minimize", "maximize"],
    *,
    expanded: bool,
) -> tuple[SearchSpace, list[str]]:
    """The space of an exploitation round (its first part: ``split_round``) over the settled
    ``space`` (``expanded``: an exploration round after the first changed it), and the reason
    (none when nothing narrowed): ``trust_region`` with no expansion, else ``best_span``."""
    if not expanded:
        return trust_region(space, records, direction)
    return best_span(space, records, direction)


def second_trust_region(
    settled: SearchSpace,
    first_box: SearchSpace,
    explored: Sequence[TrialRecord],
    records: Sequence[TrialRecord],
    direction: Literal["minimize", "maximize"],
) -> tuple[SearchSpace, list[str]]:
    """The space of a split exploitation round's second half, and the reason: a box of the first
    box's sides (``trust_sides`` of the ``explored`` trials, those before the round) around the
    trial ``choice.recommend`` picks among the explored trials outside ``first_box``, the best
    of another region; if none lies outside it, the ``trust_region`` of all ``records``."""
    inside = [r for r in feasible(explored) if _inside(settled, r)]
    outside = [r for r in inside if not _inside(first_box, r)]
    found = recommend(outside, settled, direction)
    if found is None:
        return trust_region(settled, records, direction)
    centre = found.record
    assert centre.adam is not None  # a usable record
    # Named by its values, not its number, as in expansion_focus: a resumed campaign may number
    # its trials differently and must plan the same rounds.
    at = ", ".join(
        f"{spec.name} {spec.value_text(getattr(centre.adam, spec.name))}" for spec in settled.tuned_specs
    )
    where = f"a second trust region, around the best explored trial outside the first ({at})"
    return box_around(settled, centre, trust_sides(settled, inside, direction), where)


EDGE = 1e-9
"""Units closer than this to an end of the expanded range are that end (log round-off)."""


def expansion_focus(
    expanded: SearchSpace,
    searched: SearchSpace,
    records: Sequence[TrialRecord],
    direction: Literal["minimize", "maximize"],
) -> tuple[SearchSpace, list[str]]:
    """The part of ``expanded`` an exploration round after an expansion samples, and the reason
    (none when nothing was cut): each range that grew on one side only is cut on the other, one
    trial spacing (``n ** (-1 / dimensions)`` of the ``searched`` range, n its feasible trials) behind the
    best feasible trial so far. Its far side was searched already and lies behind the best
    trial as seen from the expansion; ``expanded`` stays the searched space."""
    searched_trials = [r for r in feasible(records) if _inside(searched, r)]
    if not searched_trials:
        return expanded, []
    best = best_first(searched_trials, direction)[0]
    assert best.adam is not None  # a feasible record
    spacing = len(searched_trials) ** (-1.0 / len(expanded.tuned))
    spans = {}
    for spec in expanded.tuned_specs:
        before = searched.spec(spec.name)
        low, high = sorted(spec.unit_from_value(value) for value in (before.low, before.high))
        grew_up, grew_down = high < 1.0 - EDGE, low > EDGE
        if grew_up == grew_down:
            continue  # not expanded, or on both sides
        at = spec.unit_from_value(getattr(best.adam, spec.name))
        reach = spacing * (high - low)
        spans[spec.name] = (at - reach, 1.0) if grew_up else (0.0, at + reach)
    # Named by its values, not its number: a resumed campaign numbers its trials differently
    # (an interrupted trial keeps its number) and must plan the same rounds.
    at_best = ", ".join(
        f"{name} {expanded.spec(name).value_text(getattr(best.adam, name))}" for name in spans
    )
    where = f"the expanded side, from one trial spacing behind the best trial so far ({at_best})"
    return narrowed_to(expanded, spans, where, verb="sample")


def best_span(
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


def trust_region(
    space: SearchSpace, records: Sequence[TrialRecord], direction: Literal["minimize", "maximize"]
) -> tuple[SearchSpace, list[str]]:
    """``space`` narrowed to a box around the trial ``choice.recommend`` picks among the feasible
    trials inside it, of sides ``trust_sides``, and the reason (none when nothing narrowed)."""
    found = best_trials(space, records, direction)
    if found is None:
        return space, []
    inside = found[1]
    recommendation = recommend(inside, space, direction)
    assert recommendation is not None  # best_trials found feasible trials
    centre = recommendation.record
    where = f"a trust region around trial {centre.number}, the one recommended so far"
    return box_around(space, centre, trust_sides(space, inside, direction), where)


def box_around(
    space: SearchSpace, centre: TrialRecord, sides: Iterable[float], where: str
) -> tuple[SearchSpace, list[str]]:
    """``space`` cut (``narrowed_to``) to the box centred on ``centre``'s configuration whose
    side in each tuned dimension is the share of the range in ``sides``, and the reason."""
    assert centre.adam is not None  # a feasible trial
    spans = {}
    for spec, side in zip(space.tuned_specs, sides, strict=True):
        unit = spec.unit_from_value(getattr(centre.adam, spec.name))
        spans[spec.name] = (unit - side / 2, unit + side / 2)
    return narrowed_to(space, spans, where)


def trust_sides(
    space: SearchSpace, records: Sequence[TrialRecord], direction: Literal["minimize", "maximize"]
) -> np.ndarray:
    """TuRBO's sides of the trust region, one per tuned dimension: ``TRUST_SIDE`` times the
    dimension's length scale in Optuna's GP fitted to ``records`` (at most ``GP_TRIALS``: those
    nearest the best, as TuRBO's local model) over the geometric mean of the length scales,
    within [``MIN_WIDTH``, 1]. A dimension in which every record has the same value, or that
    the GP finds flat, gets a side of 1 (as do all without a GP fit): the box reaches half the
    range either side of the trial, clipped to the range."""
    tuned = space.tuned_specs
    x = np.array([[spec.unit_from_value(getattr(r.adam, spec.name)) for spec in tuned] for r in records])
    y = np.array([r.value for r in records], dtype=float)  # the length scales are the same for -y
    best = np.argsort(-y if direction == "maximize" else y, kind="stable")[:TOP]
    rows = nearest_rows(x, best.tolist(), GP_TRIALS)
    x, y = x[rows], y[rows]
    varying = x.max(axis=0) > x.min(axis=0)
    scales = np.full(len(tuned), np.inf)
    fitted = fit_gp(x[:, varying], y) if varying.any() else None
    if fitted is not None:
        scales[varying] = fitted.length_scales
    finite = np.isfinite(scales)
    if not finite.any():
        return np.ones(len(tuned))
    mean = float(np.exp(np.log(scales[finite]).mean()))
    return np.clip(TRUST_SIDE * scales / mean, MIN_WIDTH, 1.0)


def narrowed_to(
    space: SearchSpace, spans: Mapping[str, tuple[float, float]], where: str, verb: str = "narrow"
) -> tuple[SearchSpace, list[str]]:
    """``space`` with the range of each tuned hyperparameter in ``spans`` cut to its (low, high)
    on the search scale (clipped to the range, grown to ``MIN_WIDTH``, an end within ``SNAP`` of
    the range's end kept), and the reason, ``narrow lr to low..high: where`` (``sample lr
    low..high: where`` with ``verb="sample"``); none when nothing was cut."""
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
        to = " to " if verb == "narrow" else " "
        narrowed_ranges.append(f"{spec.name}{to}{narrowed.range_text('..')}")
    if not narrowed_ranges:
        return space, []
    return SearchSpace(tuple(specs), space.tuned, space.optimizer), [
        f"{verb} {', '.join(narrowed_ranges)}: {where}"
    ]


def best_trials(
    space: SearchSpace, records: Sequence[TrialRecord], direction: Literal["minimize", "maximize"]
) -> tuple[list[TrialRecord], list[TrialRecord]] | None:
    """The best ``TOP_SHARE`` (at least ``MIN_TOP``) of the feasible trials inside ``space``, and
    all of those; None with fewer than ``MIN_FEASIBLE`` of them (too little evidence)."""
    inside = [r for r in feasible(records) if _inside(space, r)]
    if len(inside) < MIN_FEASIBLE:
        return None
    ordered = best_first(inside, direction)
    return ordered[: max(MIN_TOP, math.ceil(TOP_SHARE * len(ordered)))], inside


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
