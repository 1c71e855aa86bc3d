"""Renderers: the plot data as matplotlib figures, and figures as PNG bytes.

Only the object-oriented API (``Figure`` and the Agg canvas): no pyplot, no change to
matplotlib's global state or style (Optuna's plots switch it to "ggplot"; these do not).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogFormatterSciNotation, LogLocator, MaxNLocator, NullFormatter

from adamtune.plots.data import (
    AxisData,
    CurveData,
    HeatmapData,
    HistoryData,
    IsolationData,
    Marked,
)
from adamtune.scale import ValueScale

SIZE = (5.0, 3.4)
INFEASIBLE: dict[str, Any] = {"color": "red", "marker": "x", "linestyle": "none", "markersize": 7}


def png(figure: Figure) -> bytes:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


def _empty(figure: Figure, title: str, note: str) -> Figure:
    axes = figure.add_subplot()
    axes.set_title(title)
    axes.text(0.5, 0.5, note, ha="center", va="center", transform=axes.transAxes, color="gray")
    axes.set_xticks([])
    axes.set_yticks([])
    return figure


SHORT_DECADES = 2.0
"""A log axis spanning fewer decades than this also labels 2x and 5x each decade."""


def _log_x(axes: Axes) -> None:
    """A log x axis labelled at the decades, and on a short axis (one or no decade labelled)
    also at 2x and 5x; never at every minor tick, whose labels overlap."""
    axes.set_xscale("log")
    _label_log_axis(axes.xaxis, *axes.get_xlim())


SHORT_VALUE_DECADES = 3.0
"""The same for a vertical log axis, whose stacked labels have room for more."""


def _label_log_axis(axis: Axis, low: float, high: float, short: float = SHORT_DECADES) -> bool:
    """Labels of a log axis from ``low`` to ``high``: see ``_log_x``. True where the axis is
    short enough to be labelled at 2x and 5x too."""
    if math.log10(high / low) < short:
        axis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))
        axis.set_minor_formatter(LogFormatterSciNotation(labelOnlyBase=False, minor_thresholds=(3, 3)))
        return True
    axis.set_minor_formatter(NullFormatter())
    return False


def _log_values(axis: Axis, low: float, high: float) -> None:
    """A log axis of objective values, labelled as numbers are written (0.2, 0.5, 1, 2, 10)
    rather than as powers of ten, and at 2x and 5x below ``SHORT_VALUE_DECADES``."""
    short = _label_log_axis(axis, low, high, SHORT_VALUE_DECADES)
    plain = FuncFormatter(lambda value, _: f"{value:g}")
    axis.set_major_formatter(plain)
    if short:
        axis.set_minor_formatter(plain)


CROWDED = 100
"""Past this many trials on one plot, their dots shrink and fade with the count, so that a
large study's plot shows where its trials are dense instead of one solid blot."""


def _dots(count: int) -> dict[str, Any]:
    """Marker size (points) and opacity of ``count`` trial dots: matplotlib's 6 and opaque up
    to ``CROWDED``, then both scaled by sqrt(CROWDED / count), to at least 2 points and 0.25."""
    if count <= CROWDED:
        return {"markersize": 6.0, "alpha": 1.0}
    scale = math.sqrt(CROWDED / count)
    return {"markersize": max(2.0, 6.0 * scale), "alpha": max(0.25, scale)}


def _legend(axes: Axes) -> None:
    """The legend, its trial dot full-sized and opaque however faded the plot's dots are."""
    legend = axes.legend(loc="best", fontsize="small")
    for handle in legend.legend_handles:
        if isinstance(handle, Line2D) and handle.get_marker() == "o":
            handle.set_alpha(1.0)
            handle.set_markersize(6.0)


def _top_edge(values: Sequence[float], direction: str, scale: ValueScale = "linear") -> float:
    """Where infeasible trials are drawn: just beyond the worst value, at the 'bad' edge (a
    twentieth of the values' span beyond it, on the axis's scale)."""
    if not values:
        return 1.0
    low, high = min(values), max(values)
    if scale == "log":
        return high * math.pow(high / low, 0.05)  # log scale: only for values to minimise
    pad = 0.05 * (high - low or abs(high) or 1.0)
    return high + pad if direction == "minimize" else low - pad


def _value_axis(axes: Axes, scale: ValueScale) -> None:
    """The objective's axis on ``scale`` (``adamtune.scale.value_scale`` decides), labelled as ``_log_x``
    labels a log axis."""
    if scale == "log":
        axes.set_yscale("log")
        _log_values(axes.yaxis, *axes.get_ylim())


def _mark(axes: Axes, marked: Marked | None) -> None:
    """The trial to adopt: a star over its dot, so the answer can be found at a glance."""
    if marked is not None:
        axes.plot(
            [marked.x],
            [marked.y],
            marker="*",
            markersize=15,
            color="tab:orange",
            markeredgecolor="black",
            linestyle="none",
            clip_on=False,  # whole even on the edge of the axes, where an expanded range ends
            label=f"{marked.label} (trial {marked.number})",
        )


def axis_plot(data: AxisData, metric: str, direction: str, scale: ValueScale = "linear") -> Figure:
    figure = Figure(figsize=SIZE)
    title = f"{metric} against {data.label}"
    if not data.x and not data.infeasible_x:
        return _empty(figure, title, "no finished trials yet")
    axes = figure.add_subplot()
    axes.plot(data.x, data.y, "o", color="tab:blue", label="trials", **_dots(len(data.x)))
    _mark(axes, data.marked)
    if data.infeasible_x:
        edge = _top_edge(data.y, direction, scale)
        axes.plot(data.infeasible_x, [edge] * len(data.infeasible_x), **INFEASIBLE, label="diverged")
    for edge_x in data.edges:
        axes.axvline(edge_x, color="gray", linestyle="--", linewidth=1)
    _log_x(axes)
    _value_axis(axes, scale)
    axes.set_xlabel(data.label + " (dashed: search range)")
    axes.set_ylabel(f"{metric} (best during training)")
    axes.set_title(title)
    _legend(axes)
    return figure


def isolation_plot(data: IsolationData, metric: str, scale: ValueScale = "linear") -> Figure:
    figure = Figure(figsize=SIZE)
    title = f"isolation: best {metric} per {data.label} bucket"
    if not data.centres:
        return _empty(figure, title, "no complete trials yet")
    axes = figure.add_subplot()
    axes.plot(data.centres, data.best, "o-", color="tab:green")
    _log_x(axes)
    _value_axis(axes, scale)
    axes.set_xlabel(data.label)
    axes.set_ylabel(f"best {metric} in bucket")
    axes.set_title(title)
    return figure


def heatmap_plot(data: HeatmapData, metric: str) -> Figure:
    figure = Figure(figsize=(5.6, 4.2))
    axes = figure.add_subplot()
    if data.grid_z is not None:
        norm = LogNorm() if data.scale == "log" else None
        mesh = axes.pcolormesh(
            data.grid_x, data.grid_y, data.grid_z, shading="auto", cmap="viridis_r", norm=norm
        )
        bar = figure.colorbar(mesh, ax=axes, label=f"{metric} (fitted surface)")
        if data.scale == "log":
            _log_values(bar.ax.yaxis, *bar.ax.get_ylim())
    else:
        axes.text(
            0.5, 0.92, "too few trials for a surface", ha="center", transform=axes.transAxes, color="gray"
        )
    if data.x:
        dots = _dots(len(data.x))  # a scatter's size is an area: 30 points^2 for the 6-point dot
        size = 30 * (dots["markersize"] / 6) ** 2
        axes.scatter(
            data.x, data.y, c="white", edgecolors="black", s=size, alpha=dots["alpha"], label="trials"
        )
    _mark(axes, data.marked)
    if data.infeasible_x:
        axes.plot(data.infeasible_x, data.infeasible_y, **INFEASIBLE, label="diverged")
    axes.set_xlim(float(data.grid_x.min()), float(data.grid_x.max()))
    axes.set_ylim(float(data.grid_y.min()), float(data.grid_y.max()))
    axes.set_xlabel("log10 lr")
    axes.set_ylabel("log10(1 - beta1)")
    # The star is named in the title: a legend inside would cover trials at the corners.
    marked = data.marked
    star = f"\n(star: {marked.label}, trial {marked.number})" if marked is not None else ""
    axes.set_title(f"{metric} over lr and beta1{star}")
    return figure


def curves_plot(data: Sequence[CurveData], metric: str, scale: ValueScale = "linear") -> Figure:
    figure = Figure(figsize=(6.4, 3.6))
    title = "training curves of the best trials"
    if not any(curve.series for curve in data):
        return _empty(figure, title, "no reported curves")
    axes = figure.add_subplot()
    colours = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple"]
    for curve, colour in zip(data, colours, strict=False):
        for name, (steps, values) in curve.series.items():
            style = "-" if name == metric else ":"
            # One legend entry per trial (its colour); the title says which metric is which style.
            label = f"trial {curve.number}" if name == metric else None
            axes.plot(steps, values, style, color=colour, label=label)
    others = sorted({name for curve in data for name in curve.series if name != metric})
    axes.set_xlabel("step")
    axes.set_ylabel("value")
    _value_axis(axes, scale)
    axes.set_title(title + f"\n(solid: {metric}" + (f"; dotted: {', '.join(others)})" if others else ")"))
    # Beside the axes: inside, the legend covers the curves' flat ends, where they are compared.
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="x-small", frameon=False)
    return figure


def history_plot(data: HistoryData, metric: str, direction: str, scale: ValueScale = "linear") -> Figure:
    figure = Figure(figsize=SIZE)
    title = f"{metric} by trial"
    if not data.numbers and not data.infeasible:
        return _empty(figure, title, "no finished trials yet")
    axes = figure.add_subplot()
    axes.plot(data.numbers, data.values, "o", color="tab:blue", label="trial", **_dots(len(data.numbers)))
    axes.step(data.numbers, data.best_so_far, where="post", color="black", label="best so far")
    _mark(axes, data.marked)
    if data.infeasible:
        edge = _top_edge(data.values, direction, scale)
        axes.plot(data.infeasible, [edge] * len(data.infeasible), **INFEASIBLE, label="diverged")
    _value_axis(axes, scale)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("trial number")
    axes.set_ylabel(metric)
    if len(data.rounds) > 1:  # a campaign: which round found what
        _rounds(axes, data.rounds, max([*data.numbers, *data.infeasible]))
        title += " and round"
    axes.set_title(title)
    _legend(axes)
    return figure


def _rounds(axes: Axes, rounds: list[tuple[int, str]], last: int) -> None:
    """Every other round shaded, each named above the axes at its middle."""
    ends = [number for number, _ in rounds[1:]] + [max(last + 1, rounds[-1][0] + 1)]
    middles = []
    for index, ((start, _), end) in enumerate(zip(rounds, ends, strict=True)):
        if index % 2:
            axes.axvspan(start - 0.5, end - 0.5, color="0.92", zorder=0, linewidth=0)
        middles.append((start + end - 1) / 2)
    top = axes.secondary_xaxis("top")
    top.set_xticks(middles, [label for _, label in rounds], fontsize="x-small")
    top.tick_params(length=0)
