"""Narrowing the settled space before the exploitation round: the span of the best trials, or a
trust region around the recommended one; and an expansion round cut to the expanded side."""

from __future__ import annotations

import math

import numpy as np
import pytest

from adamtune import AdamConfig, SearchSpace, State, TrialRecord, narrowing
from adamtune.choice import GP_TRIALS, TOP, FittedGP, recommend
from adamtune.narrowing import (
    MARGIN,
    MIN_FEASIBLE,
    MIN_WIDTH,
    SNAP,
    SPLIT_FROM,
    best_span,
    expansion_focus,
    exploitation_space,
    narrowed_to,
    second_trust_region,
    split_round,
    trust_region,
    trust_sides,
)

WIDE = {"lr": (1e-5, 1.0), "beta1": (0.5, 0.999)}


def space() -> SearchSpace:
    return SearchSpace.build(["lr", "beta1"], ranges=WIDE)


def record(
    n: int, value: float | None, lr: float, beta1: float, state: State = State.COMPLETE
) -> TrialRecord:
    return TrialRecord(n, state, value, AdamConfig(lr=lr, beta1=beta1), n, n)


def grid_records(best_lr: float = 1e-2) -> list[TrialRecord]:
    """24 trials over lr 1e-5..1 and beta1, valued by the distance to ``best_lr`` in log lr
    only: beta1 is flat."""
    records = []
    for n in range(24):
        lr = 10 ** (-5 + 5 * (n + 0.5) / 24)
        beta1 = 1 - 10 ** (-3 + 2.7 * ((n * 7) % 24 + 0.5) / 24)
        records.append(record(n, abs(math.log10(lr / best_lr)), lr, beta1))
    return records


def test_a_range_narrows_to_the_span_of_the_best_quarter_with_a_margin() -> None:
    records = grid_records()
    narrowed, reasons = best_span(space(), records, "minimize")
    best = sorted(records, key=lambda r: r.value or 0)[:6]  # a quarter of 24
    lrs = [r.adam.lr for r in best if r.adam]
    lr = narrowed.spec("lr")
    assert lr.low < min(lrs) and max(lrs) < lr.high
    # Margin of 0.1 of the 5-decade range (half a decade) on each side of the best trials' span.
    assert math.log10(min(lrs) / lr.low) == pytest.approx(5 * MARGIN)
    assert math.log10(lr.high / max(lrs)) == pytest.approx(5 * MARGIN)
    assert reasons == [
        f"narrow lr to {lr.low:.3g}..{lr.high:.3g}: where the best 6 of 24 feasible trials lie"
    ]


def test_a_flat_dimension_whose_best_trials_span_it_is_left_alone() -> None:
    records = grid_records()
    best = sorted(records, key=lambda r: r.value or 0)[:6]
    beta1 = space().spec("beta1")
    spread = {
        r.number: beta1.value_from_param(beta1.param_from_unit(u))
        for r, u in zip(best, (0.02, 0.2, 0.4, 0.6, 0.8, 0.98), strict=True)
    }
    records = [
        record(r.number, r.value, r.adam.lr, spread[r.number]) if r.number in spread and r.adam else r
        for r in records
    ]
    narrowed, reasons = best_span(space(), records, "minimize")
    assert narrowed.spec("beta1") == beta1
    assert narrowed.spec("lr") != space().spec("lr")
    assert not any("beta1" in reason for reason in reasons)


def test_maximising_keeps_the_highest_values() -> None:
    records = [replace_value(r, -(r.value or 0)) for r in grid_records(best_lr=1e-4)]
    narrowed, _ = best_span(space(), records, "maximize")
    assert narrowed.spec("lr").low < 1e-4 < narrowed.spec("lr").high
    assert narrowed.spec("lr").high < 1e-2


def replace_value(r: TrialRecord, value: float) -> TrialRecord:
    return TrialRecord(r.number, r.state, value, r.adam, r.seed, r.point)


def test_a_narrowed_range_keeps_its_minimum_width_and_stays_inside() -> None:
    # Every good trial at one lr at the top of the range: the range keeps MIN_WIDTH, ending at 1.
    records = [
        record(n, 0.0 if n < 6 else 1.0 + n, 0.9 if n < 6 else 10 ** (-5 + n / 6), 0.9) for n in range(24)
    ]
    narrowed, _ = best_span(space(), records, "minimize")
    lr = narrowed.spec("lr")
    assert lr.high == 1.0
    assert math.log10(lr.high / lr.low) == pytest.approx(5 * MIN_WIDTH)


def test_too_few_feasible_trials_narrow_nothing() -> None:
    records = grid_records()[: MIN_FEASIBLE - 1]
    records += [record(30 + n, None, 0.5, 0.9, State.INFEASIBLE) for n in range(10)]
    assert best_span(space(), records, "minimize") == (space(), [])


def test_infeasible_and_pruned_trials_do_not_count_among_the_best() -> None:
    records = grid_records(best_lr=1e-2)
    # Pruned trials (with their best value so far) at lr 1: never inside the best span.
    records += [record(30 + n, -5.0, 0.9, 0.9, State.PRUNED) for n in range(5)]
    narrowed, _ = best_span(space(), records, "minimize")
    assert narrowed.spec("lr").high < 0.9


def test_trials_outside_the_space_are_ignored() -> None:
    inner = SearchSpace.build(["lr", "beta1"], ranges={"lr": (1e-4, 1e-1), "beta1": WIDE["beta1"]})
    records = grid_records(best_lr=1e-2)
    # Better than anything, but outside the space (a trial from before a narrowing).
    records += [record(40 + n, -1.0, 0.5, 0.9) for n in range(4)]
    narrowed, _ = best_span(inner, records, "minimize")
    assert narrowed.spec("lr").high < 0.5
    assert inner.spec("lr").low <= narrowed.spec("lr").low


def test_a_sliver_is_not_cut_off() -> None:
    # The best trials reach within SNAP of both ends of beta1 once the margin is added: kept whole.
    records = grid_records()
    best = sorted(records, key=lambda r: r.value or 0)[:6]
    beta1 = space().spec("beta1")
    ends = (SNAP, 0.3, 0.5, 0.5, 0.6, 1 - SNAP)  # with the margin, 0 and 1 minus a sliver
    spread = {
        r.number: beta1.value_from_param(beta1.param_from_unit(u)) for r, u in zip(best, ends, strict=True)
    }
    records = [
        record(r.number, r.value, r.adam.lr, spread[r.number]) if r.number in spread and r.adam else r
        for r in records
    ]
    assert best_span(space(), records, "minimize")[0].spec("beta1") == beta1


def test_a_beta_cut_by_little_more_than_a_sliver_reads_cut() -> None:
    # 1 - beta2 from 1e-3 * 10**0.15 = 0.001413: beta2 0.99859, which 3 significant figures of
    # beta2 itself would show as the range's end 0.999.
    space = SearchSpace.build(["lr", "beta2"])
    beta2 = space.spec("beta2")
    shown = []
    for units in ((0.0, 1 - 0.15), (0.15, 1.0)):
        narrowed, reasons = narrowed_to(space, {"beta2": units}, "a test")
        cut = narrowed.spec("beta2")
        assert reasons == [f"narrow beta2 to {cut.range_text('..')}: a test"]
        ends, whole = cut.range_text().split(":"), beta2.range_text().split(":")
        assert sum(a != b for a, b in zip(ends, whole, strict=True)) == 1  # one end moved, and reads so
        shown.append(cut.range_text())
    assert "0.99:0.99859" in shown


def bowl_in_lr(n_trials: int = 30) -> list[TrialRecord]:
    """Random trials valued by a bowl in log lr around 1e-2 (a little noise); beta1 is flat."""
    rng = np.random.default_rng(0)
    records = []
    for n in range(n_trials):
        lr, beta1 = 10 ** rng.uniform(-5, 0), 1 - 10 ** rng.uniform(-3, math.log10(0.5))
        records.append(record(n, (math.log10(lr) + 2) ** 2 + 0.01 * rng.normal(), lr, beta1))
    return records


def test_trust_sides_follow_the_gp_length_scales() -> None:
    # lr's length scale is short, beta1's (flat) long: lr gets the minimum side, beta1 the whole
    # range; without variation in a dimension it keeps the whole range too.
    sides = trust_sides(space(), bowl_in_lr(), "minimize")
    assert sides[0] == pytest.approx(MIN_WIDTH) and sides[1] == pytest.approx(1.0)
    same_beta1 = [record(r.number, r.value, r.adam.lr, 0.9) for r in bowl_in_lr() if r.adam]
    assert trust_sides(space(), same_beta1, "minimize")[1] == 1.0
    flat = [record(r.number, 1.0, r.adam.lr, r.adam.beta1) for r in bowl_in_lr() if r.adam]
    assert list(trust_sides(space(), flat, "minimize")) == [1.0, 1.0]


def test_trust_sides_of_many_trials_come_from_those_nearest_the_best(monkeypatch: pytest.MonkeyPatch) -> None:
    # Past GP_TRIALS trials the GP (whose cost is the cube of its trials) sees the GP_TRIALS
    # nearest the best: here a band around lr 1e-2, still a bowl in lr and flat in beta1.
    fitted: list[np.ndarray] = []
    full_fit = narrowing.fit_gp

    def recorded(x: np.ndarray, y: np.ndarray) -> FittedGP | None:
        fitted.append(y)
        return full_fit(x, y)

    monkeypatch.setattr(narrowing, "fit_gp", recorded)
    records = bowl_in_lr(3 * GP_TRIALS)
    sides = trust_sides(space(), records, "minimize")
    assert sides[0] == pytest.approx(MIN_WIDTH) and sides[1] == pytest.approx(1.0)
    assert len(fitted) == 1 and len(fitted[0]) == GP_TRIALS
    best = sorted(r.value or 0.0 for r in records)[:TOP]
    assert set(best) <= set(fitted[0].tolist())  # the best trials themselves among them
    assert max(fitted[0]) < max(r.value or 0.0 for r in records) / 4  # the far, poor ones left out


def test_a_trust_region_is_a_box_around_the_recommended_trial() -> None:
    records = bowl_in_lr()
    narrowed, reasons = trust_region(space(), records, "minimize")
    centre = recommend(records, space(), "minimize")
    assert centre is not None and centre.record.adam is not None
    lr = narrowed.spec("lr")
    # A side of MIN_WIDTH of the 5-decade range, centred on the recommended trial's lr.
    assert math.log10(lr.high / lr.low) == pytest.approx(5 * MIN_WIDTH)
    assert math.log10(centre.record.adam.lr) == pytest.approx(math.log10(lr.low * lr.high) / 2)
    assert 1e-3 < lr.low < 1e-2 < lr.high < 1e-1  # around the bowl's bottom
    # beta1 is flat: a side of the whole range, half of it either side of the trial (clipped).
    whole = space().spec("beta1")
    unit = whole.unit_from_value(centre.record.adam.beta1)
    low, high = max(unit - 0.5, 0.0), min(unit + 0.5, 1.0)
    low, high = (0.0 if low < SNAP else low), (1.0 if high > 1 - SNAP else high)
    beta1 = narrowed.spec("beta1")
    ends = sorted(whole.unit_from_value(v) for v in (beta1.low, beta1.high))
    assert ends == pytest.approx([low, high])
    assert high - low < 1.0  # this centre lies off the middle: the box reaches one end only
    assert reasons == [
        f"narrow lr to {lr.low:.3g}..{lr.high:.3g}, beta1 to {beta1.range_text('..')}: "
        f"a trust region around trial {centre.record.number}, the one recommended so far"
    ]
    assert trust_region(space(), records[: MIN_FEASIBLE - 1], "minimize") == (space(), [])


def test_a_round_with_no_expansion_gets_the_trust_region_and_one_after_an_expansion_the_best_span() -> None:
    records = bowl_in_lr()
    trust, span = trust_region(space(), records, "minimize"), best_span(space(), records, "minimize")
    assert trust != span
    assert exploitation_space(space(), records, "minimize", expanded=False) == trust
    assert exploitation_space(space(), records, "minimize", expanded=True) == span


def test_a_long_round_with_no_expansion_is_split_in_two_halves() -> None:
    assert split_round(25, expanded=False) == (25,)
    assert split_round(SPLIT_FROM - 1, expanded=False) == (SPLIT_FROM - 1,)
    assert split_round(SPLIT_FROM, expanded=False) == (25, 25)
    assert split_round(SPLIT_FROM + 1, expanded=False) == (25, 26)
    assert split_round(66, expanded=False) == (33, 33)
    assert split_round(66, expanded=True) == (66,)  # after an expansion: one round over the span


def test_the_second_trust_region_is_around_the_best_explored_trial_outside_the_first() -> None:
    explored = bowl_in_lr()
    first, _ = trust_region(space(), explored, "minimize")
    low, high = first.spec("lr").low, first.spec("lr").high
    outside = [r for r in explored if r.adam and not low <= r.adam.lr <= high]
    assert outside and len(outside) < len(explored)
    # The first half's trials, all inside the first box, better than any explored trial.
    first_half = [record(100 + n, -1.0, 1e-2 * 1.1**n, 0.9) for n in range(3)]
    second, reasons = second_trust_region(space(), first, explored, explored + first_half, "minimize")
    centre = recommend(outside, space(), "minimize")
    assert centre is not None and centre.record.adam is not None
    assert not low <= centre.record.adam.lr <= high  # another region
    # The first box's sides (fitted to the explored trials), around the new centre, cut to the
    # range and snapped to its ends as any narrowing is.
    whole_lr = space().spec("lr")
    unit = whole_lr.unit_from_value(centre.record.adam.lr)
    ends = [unit - MIN_WIDTH / 2, unit + MIN_WIDTH / 2]
    ends = [0.0 if ends[0] < SNAP else ends[0], 1.0 if ends[1] > 1 - SNAP else ends[1]]
    lr = second.spec("lr")
    assert [whole_lr.unit_from_value(lr.low), whole_lr.unit_from_value(lr.high)] == pytest.approx(ends)
    assert second != first and len(reasons) == 1
    assert "a second trust region, around the best explored trial outside the first" in reasons[0]
    assert f"lr {centre.record.adam.lr:.3g}" in reasons[0]
    # No explored trial outside the first box: the trust region of all the trials instead.
    whole = space()
    assert second_trust_region(whole, whole, explored, explored + first_half, "minimize") == trust_region(
        whole, explored + first_half, "minimize"
    )


def lr_records(lrs: list[float]) -> list[TrialRecord]:
    """Trials valued by their distance from lr 1e-3 (log10)."""
    return [
        TrialRecord(n, State.COMPLETE, 1.0 + abs(math.log10(lr) + 3), AdamConfig(lr=lr), n, n)
        for n, lr in enumerate(lrs)
    ]


def test_an_expansion_round_searches_from_one_trial_spacing_behind_the_best() -> None:
    searched = SearchSpace.build(["lr"])  # lr 1e-5..1e-3
    expanded = SearchSpace.build(["lr"], ranges={"lr": (1e-5, 1e-2)})
    records = lr_records([3e-5, 3e-4, 9.7e-4, 1e-4])
    focused, reasons = expansion_focus(expanded, searched, records, "minimize")
    lr = focused.spec("lr")
    # 4 trials in 1 dimension: a quarter of the searched range (2 decades) below trial 2's 9.7e-4.
    assert lr.low == pytest.approx(9.7e-4 / 10 ** (2 / 4), rel=1e-6) and lr.high == 1e-2
    assert reasons == [
        f"sample lr {lr.low:.3g}..0.01: "
        "the expanded side, from one trial spacing behind the best trial so far (lr 0.00097)"
    ]
    # Maximising, the best is trial 0 (3e-5), within one spacing of the far end: nothing to cut.
    assert expansion_focus(expanded, searched, records, "maximize") == (expanded, [])
    # Grown on both sides, or not at all, or no feasible trial: nothing to cut.
    both = SearchSpace.build(["lr"], ranges={"lr": (1e-6, 1e-2)})
    assert expansion_focus(both, searched, records, "minimize") == (both, [])
    assert expansion_focus(searched, searched, records, "minimize") == (searched, [])
    diverged = [TrialRecord(0, State.INFEASIBLE, None, AdamConfig(lr=1e-3), 0, 0)]
    assert expansion_focus(expanded, searched, diverged, "minimize") == (expanded, [])


def test_an_expanded_beta1_is_cut_on_its_far_side_and_the_other_ranges_kept() -> None:
    searched = SearchSpace.build(["lr", "beta1"])  # 1-beta1 1e-3..0.1
    expanded = SearchSpace.build(["lr", "beta1"], ranges={"beta1": (0.5, 0.999)})
    values = {0.92: 1.0, 0.99: 2.0, 0.95: 1.5, 0.998: 3.0}
    records = [
        TrialRecord(n, State.COMPLETE, value, AdamConfig(lr=1e-4, beta1=beta1), n, n)
        for n, (beta1, value) in enumerate(values.items())
    ]
    focused, _ = expansion_focus(expanded, searched, records, "minimize")
    assert focused.spec("lr") == expanded.spec("lr")
    beta1 = focused.spec("beta1")
    # 4 trials in 2 dimensions: half the searched range (2 decades of 1-beta1) beyond 1-0.92.
    assert beta1.low == 0.5 and 1 - beta1.high == pytest.approx(0.08 / 10, rel=1e-6)
