"""The data behind each plot: pure functions of a study's trials, tested against exact values.

Betas are plotted as ``1 - beta`` on a log axis, the scale they are searched on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from adamtune.config import AdamConfig
from adamtune.diagnostics._base import complete, ranked
from adamtune.diagnostics.geometry import position
from adamtune.outcomes import State
from adamtune.records import TrialRecord
from adamtune.scale import ValueScale
from adamtune.space import HyperparameterSpec, SearchSpace


def complete_values(records: Sequence[TrialRecord]) -> list[float]:
    """The objective values the plots draw: those of the complete, feasible trials."""
    return [float(r.value or 0.0) for r in complete(records)]


def axis_value(spec: HyperparameterSpec, value: float) -> float:
    """Where a value is drawn: itself, or ``1 - beta`` for betas."""
    return spec.param_from_value(value)


def axis_label(spec: HyperparameterSpec) -> str:
    return f"1 - {spec.name}" if spec.scale == "log1m" else spec.name


@dataclass(frozen=True)
class Marked:
    """The trial to adopt, drawn apart from the others: where the study's answer sits (the
    recommended trial, or the confirmation's winner where it prefers another)."""

    number: int
    x: float
    y: float
    label: str = "recommended"


def _answer(record: TrialRecord | None) -> tuple[int, AdamConfig, float] | None:
    """The marked trial's number, configuration and value, where it has them."""
    if record is None or record.adam is None or record.value is None:
        return None
    return record.number, record.adam, float(record.value)


@dataclass(frozen=True)
class AxisData:
    """The basic hyperparameter axis plot: objective against one hyperparameter."""

    label: str
    x: list[float]
    y: list[float]
    infeasible_x: list[float]
    edges: tuple[float, float]
    marked: Marked | None = None


def axis_data(
    records: Sequence[TrialRecord],
    spec: HyperparameterSpec,
    adopted: TrialRecord | None = None,
    label: str = "recommended",
) -> AxisData:
    done = complete(records)
    infeasible = [r for r in records if r.state == State.INFEASIBLE and r.adam is not None]
    edges = sorted((axis_value(spec, spec.low), axis_value(spec, spec.high)))
    answer = _answer(adopted)
    marked = None
    if answer is not None:
        number, adam, value = answer
        marked = Marked(number, axis_value(spec, getattr(adam, spec.name)), value, label)
    return AxisData(
        label=axis_label(spec),
        x=[axis_value(spec, getattr(r.adam, spec.name)) for r in done],
        y=[float(r.value or 0.0) for r in done],
        infeasible_x=[axis_value(spec, getattr(r.adam, spec.name)) for r in infeasible],
        edges=(edges[0], edges[1]),
        marked=marked,
    )


@dataclass(frozen=True)
class IsolationData:
    """Best trial per bucket of one hyperparameter: the others optimised away."""

    label: str
    centres: list[float]
    best: list[float]
    trials: list[int]


def isolation_buckets(count: int) -> int:
    return max(2, min(8, count // 3))


def isolation_data(records: Sequence[TrialRecord], spec: HyperparameterSpec, direction: str) -> IsolationData:
    done = ranked(records, direction)  # best first: the first trial seen in a bucket is its best
    buckets = isolation_buckets(len(done))
    best: dict[int, TrialRecord] = {}
    for record in done:
        where = min(max(position(spec, getattr(record.adam, spec.name)), 0.0), 1.0 - 1e-12)
        best.setdefault(int(where * buckets), record)
    centres, values, numbers = [], [], []
    for index in sorted(best):
        low = _value_at(spec, index / buckets)
        high = _value_at(spec, (index + 1) / buckets)
        centres.append(math.sqrt(axis_value(spec, low) * axis_value(spec, high)))
        values.append(float(best[index].value or 0.0))
        numbers.append(best[index].number)
    return IsolationData(axis_label(spec), centres, values, numbers)


def _value_at(spec: HyperparameterSpec, where: float) -> float:
    from adamtune.diagnostics.geometry import value_at

    return value_at(spec, where)


@dataclass(frozen=True)
class HeatmapData:
    """Objective over (log10 lr, log10(1 - beta1)): trial points and a smooth fitted surface."""

    x: list[float]
    y: list[float]
    z: list[float]
    infeasible_x: list[float]
    infeasible_y: list[float]
    grid_x: np.ndarray
    grid_y: np.ndarray
    grid_z: np.ndarray | None  # None when there are too few trials to fit a surface
    marked: Marked | None = None  # y: log10(1 - beta1), not the objective
    scale: ValueScale = "linear"  # of the colours, and of the values the surface is fitted to


MIN_SURFACE_TRIALS = 4


def heatmap_data(
    records: Sequence[TrialRecord],
    space: SearchSpace,
    resolution: int = 60,
    adopted: TrialRecord | None = None,
    label: str = "recommended",
    scale: ValueScale = "linear",
) -> HeatmapData | None:
    """``scale``: "log" fits the surface to log10 of the values (positive ones only: see
    ``adamtune.scale``). The surface stays within the trials' values: where it would extrapolate
    beyond the best or worst trial, a colour would show a value no trial reached."""
    if not {"lr", "beta1"} <= set(space.tuned):
        return None
    lr, beta1 = space.spec("lr"), space.spec("beta1")

    def coordinates(group: Sequence[TrialRecord]) -> tuple[list[float], list[float]]:
        xs = [math.log10(r.adam.lr) for r in group if r.adam]
        ys = [math.log10(1.0 - r.adam.beta1) for r in group if r.adam]
        return xs, ys

    done = complete(records)
    x, y = coordinates(done)
    bad_x, bad_y = coordinates([r for r in records if r.state == State.INFEASIBLE])
    grid_x, grid_y = np.meshgrid(
        np.linspace(math.log10(lr.low), math.log10(lr.high), resolution),
        np.linspace(math.log10(1.0 - beta1.high), math.log10(1.0 - beta1.low), resolution),
    )
    values = complete_values(records)  # the values of ``done``, in its order
    grid_z = None
    if len(done) >= MIN_SURFACE_TRIALS:
        from scipy.interpolate import RBFInterpolator

        points = np.column_stack([x, y])
        observed = np.array(values)
        scale = scale if observed.min() > 0 else "linear"  # no log of a value of 0 or below
        if scale == "log":
            observed = np.log10(observed)
        # Thin-plate spline with light smoothing: it follows the trend, not every seed. 0.1 had the
        # lowest leave-one-out error on the demo study (0.048 against 0.062 at 1.0 and 0.050 at 0).
        fitted = RBFInterpolator(points, observed, kernel="thin_plate_spline", smoothing=0.1, degree=1)
        surface = fitted(np.column_stack([grid_x.ravel(), grid_y.ravel()])).reshape(grid_x.shape)
        grid_z = np.clip(surface, observed.min(), observed.max())
        if scale == "log":
            grid_z = 10.0**grid_z
    answer = _answer(adopted)
    marked = None
    if answer is not None:
        number, adam, _ = answer
        marked = Marked(number, math.log10(adam.lr), math.log10(1.0 - adam.beta1), label)
    return HeatmapData(x, y, values, bad_x, bad_y, grid_x, grid_y, grid_z, marked, scale)


@dataclass(frozen=True)
class CurveData:
    number: int
    value: float
    series: dict[str, tuple[list[float], list[float]]]  # metric -> (steps, values)


def curves_data(
    records: Sequence[TrialRecord], metric: str, direction: str, count: int = 3
) -> list[CurveData]:
    """The training curves (train loss and the objective metric) of the best ``count`` trials."""
    shown = []
    for record in ranked(records, direction)[:count]:
        series = {}
        for name in ("train_loss", metric):
            points = record.curves.get(name, [])
            if points:
                series[name] = ([float(p[0]) for p in points], [float(p[1]) for p in points])
        shown.append(CurveData(record.number, float(record.value or 0.0), series))
    return shown


def curve_values(curves: Sequence[CurveData], metric: str) -> list[float]:
    """The objective's values on the training curves plot, which decide its axis's scale: the
    curves compared there (a train loss falling to 1e-4 as the model overfits must not put
    an error rate's curves on a log axis, where they would be one flat line)."""
    return [value for curve in curves if metric in curve.series for value in curve.series[metric][1]]


@dataclass(frozen=True)
class HistoryData:
    """Objective and best-so-far against trial number; in a campaign, where each round starts
    (its first trial's number) and its label above the plot (index and kind)."""

    numbers: list[int]
    values: list[float]
    best_so_far: list[float]
    infeasible: list[int]
    marked: Marked | None = None
    rounds: list[tuple[int, str]] = field(default_factory=list)


def history_data(
    records: Sequence[TrialRecord],
    direction: str,
    adopted: TrialRecord | None = None,
    label: str = "recommended",
    kinds: Mapping[int, str] | None = None,
) -> HistoryData:
    """``kinds``: a campaign's round kinds by index, for the rounds' labels."""
    numbers, values, best, bad = [], [], [], []
    current: float | None = None
    for record in sorted(records, key=lambda r: r.number):
        if record.state == State.INFEASIBLE:
            bad.append(record.number)
        if record.state != State.COMPLETE or record.value is None or not math.isfinite(record.value):
            continue
        value = float(record.value)
        if current is None or (value < current if direction == "minimize" else value > current):
            current = value
        numbers.append(record.number)
        values.append(value)
        best.append(current)
    answer = _answer(adopted)
    marked = None if answer is None else Marked(answer[0], answer[0], answer[2], label)
    return HistoryData(numbers, values, best, bad, marked, _round_starts(records, kinds or {}))


def _round_starts(records: Sequence[TrialRecord], kinds: Mapping[int, str]) -> list[tuple[int, str]]:
    """Each round's first trial number and label ("1 explore"), in order."""
    first: dict[int, int] = {}
    for record in records:
        if record.round is not None:
            first[record.round] = min(first.get(record.round, record.number), record.number)
    return [
        (number, f"{index} {kinds[index]}" if index in kinds else str(index))
        for index, number in sorted(first.items(), key=lambda item: item[1])
    ]
