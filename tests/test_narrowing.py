"""Narrowing the settled space around the best trials before the exploitation round."""

from __future__ import annotations

import math

import pytest

from adamtune import AdamConfig, SearchSpace, State, TrialRecord
from adamtune.narrowing import MARGIN, MIN_FEASIBLE, MIN_WIDTH, SNAP, exploitation_space

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
    narrowed, reasons = exploitation_space(space(), records, "minimize")
    best = sorted(records, key=lambda r: r.value or 0)[:6]  # a quarter of 24
    lrs = [r.adam.lr for r in best if r.adam]
    lr = narrowed.spec("lr")
    assert lr.low < min(lrs) and max(lrs) < lr.high
    # Margin of 0.1 of the 5-decade range (half a decade) on each side of the best trials' span.
    assert math.log10(min(lrs) / lr.low) == pytest.approx(5 * MARGIN)
    assert math.log10(lr.high / max(lrs)) == pytest.approx(5 * MARGIN)
    assert reasons == [f"narrow lr to {lr.low:.3g}:{lr.high:.3g}: where the best 6 of 24 feasible trials lie"]


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
    narrowed, reasons = exploitation_space(space(), records, "minimize")
    assert narrowed.spec("beta1") == beta1
    assert narrowed.spec("lr") != space().spec("lr")
    assert not any("beta1" in reason for reason in reasons)


def test_maximising_keeps_the_highest_values() -> None:
    records = [replace_value(r, -(r.value or 0)) for r in grid_records(best_lr=1e-4)]
    narrowed, _ = exploitation_space(space(), records, "maximize")
    assert narrowed.spec("lr").low < 1e-4 < narrowed.spec("lr").high
    assert narrowed.spec("lr").high < 1e-2


def replace_value(r: TrialRecord, value: float) -> TrialRecord:
    return TrialRecord(r.number, r.state, value, r.adam, r.seed, r.point)


def test_a_narrowed_range_keeps_its_minimum_width_and_stays_inside() -> None:
    # Every good trial at one lr at the top of the range: the range keeps MIN_WIDTH, ending at 1.
    records = [
        record(n, 0.0 if n < 6 else 1.0 + n, 0.9 if n < 6 else 10 ** (-5 + n / 6), 0.9) for n in range(24)
    ]
    narrowed, _ = exploitation_space(space(), records, "minimize")
    lr = narrowed.spec("lr")
    assert lr.high == 1.0
    assert math.log10(lr.high / lr.low) == pytest.approx(5 * MIN_WIDTH)


def test_too_few_feasible_trials_narrow_nothing() -> None:
    records = grid_records()[: MIN_FEASIBLE - 1]
    records += [record(30 + n, None, 0.5, 0.9, State.INFEASIBLE) for n in range(10)]
    assert exploitation_space(space(), records, "minimize") == (space(), [])


def test_infeasible_and_pruned_trials_do_not_count_among_the_best() -> None:
    records = grid_records(best_lr=1e-2)
    # Pruned trials (with their best value so far) at lr 1: never inside the best span.
    records += [record(30 + n, -5.0, 0.9, 0.9, State.PRUNED) for n in range(5)]
    narrowed, _ = exploitation_space(space(), records, "minimize")
    assert narrowed.spec("lr").high < 0.9


def test_trials_outside_the_space_are_ignored() -> None:
    inner = SearchSpace.build(["lr", "beta1"], ranges={"lr": (1e-4, 1e-1), "beta1": WIDE["beta1"]})
    records = grid_records(best_lr=1e-2)
    # Better than anything, but outside the space (a trial from before a narrowing).
    records += [record(40 + n, -1.0, 0.5, 0.9) for n in range(4)]
    narrowed, _ = exploitation_space(inner, records, "minimize")
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
    assert exploitation_space(space(), records, "minimize")[0].spec("beta1") == beta1
