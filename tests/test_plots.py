"""Plot data steps against exact values; renderers that leave matplotlib's global state alone."""

from __future__ import annotations

import functools
import math
from dataclasses import replace
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from matplotlib.lines import Line2D

import adamtune
from adamtune.config import AdamConfig
from adamtune.errors import TooManyFailuresError
from adamtune.outcomes import State
from adamtune.plots import data as plot_data
from adamtune.plots import figures, render
from adamtune.plots.report import drawn
from adamtune.records import TrialRecord
from adamtune.space import SearchSpace
from adamtune.study import load_study
from adamtune.testing import SyntheticObjective

# These tests are about one study searched quasi-randomly (the playbook strategy runs rounds of them).
quasi_random = functools.partial(adamtune.tune, strategy="quasi-random")


SPACE = SearchSpace.build(["lr", "beta1"])
LR = SPACE.spec("lr")
BETA1 = SPACE.spec("beta1")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def record(
    number: int,
    value: float | None,
    lr: float,
    beta1: float = 0.9,
    state: State = State.COMPLETE,
    curves: dict[str, list[list[float]]] | None = None,
) -> TrialRecord:
    return TrialRecord(
        number=number,
        state=state,
        value=value,
        adam=AdamConfig(lr=lr, beta1=beta1),
        seed=number,
        point=number,
        curves=curves or {},
    )


RECORDS = [
    record(0, 0.5, 1e-5, 0.9),
    record(1, 0.2, 1e-4, 0.99),
    record(2, 0.3, 1e-3, 0.999),
    record(3, None, 1e-3, 0.95, state=State.INFEASIBLE),
    record(4, None, 3e-4, 0.9, state=State.FAILED),
    record(5, 0.25, 3e-5, 0.9),
]


def test_axis_data_exact() -> None:
    data = plot_data.axis_data(RECORDS, LR)
    assert data.label == "lr"
    assert data.x == pytest.approx([1e-5, 1e-4, 1e-3, 3e-5])
    assert data.y == [0.5, 0.2, 0.3, 0.25]
    assert data.infeasible_x == pytest.approx([1e-3])
    assert data.edges == pytest.approx((1e-5, 1e-3))


def test_axis_data_draws_betas_as_one_minus_beta() -> None:
    data = plot_data.axis_data(RECORDS, BETA1)
    assert data.label == "1 - beta1"
    assert data.x == pytest.approx([0.1, 0.01, 0.001, 0.1])
    assert data.infeasible_x == pytest.approx([0.05])
    assert data.edges == pytest.approx((1e-3, 1e-1))


def test_the_recommended_trial_is_marked_where_each_plot_draws_it() -> None:
    recommended = RECORDS[5]  # lr 3e-5, beta1 0.9, value 0.25
    assert plot_data.axis_data(RECORDS, LR, recommended).marked == plot_data.Marked(5, 3e-5, 0.25)
    on_beta1 = plot_data.axis_data(RECORDS, BETA1, recommended).marked
    assert on_beta1 is not None and on_beta1.x == pytest.approx(0.1) and on_beta1.y == 0.25
    heatmap = plot_data.heatmap_data(RECORDS, SPACE, resolution=10, adopted=recommended)
    assert heatmap is not None and heatmap.marked is not None
    assert (heatmap.marked.x, heatmap.marked.y) == pytest.approx((math.log10(3e-5), -1.0))
    assert plot_data.history_data(RECORDS, "minimize", recommended).marked == plot_data.Marked(5, 5, 0.25)
    # Nothing to mark: no recommendation yet, or a trial without a value.
    assert plot_data.axis_data(RECORDS, LR).marked is None
    assert plot_data.axis_data(RECORDS, LR, RECORDS[3]).marked is None
    figure = render.axis_plot(plot_data.axis_data(RECORDS, LR, recommended), "val_loss", "minimize")
    labels = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    assert labels == ["trials", "recommended (trial 5)", "diverged"]
    confirmed = plot_data.heatmap_data(
        RECORDS, SPACE, resolution=10, adopted=recommended, label="confirmed best"
    )
    assert confirmed is not None and confirmed.marked is not None
    assert (
        render.heatmap_plot(confirmed, "val_loss")
        .axes[0]
        .get_title()
        .endswith("(star: confirmed best, trial 5)")
    )


def test_isolation_keeps_the_best_trial_of_each_bucket() -> None:
    # 4 complete trials -> 2 buckets over log lr [1e-5, 1e-3], split at 1e-4.
    data = plot_data.isolation_data(RECORDS, LR, "minimize")
    assert data.trials == [5, 1]  # 0.25 beats 0.5 in the lower bucket; 0.2 beats 0.3 in the upper
    assert data.best == [0.25, 0.2]
    assert data.centres == pytest.approx([math.sqrt(1e-5 * 1e-4), math.sqrt(1e-4 * 1e-3)])


def test_isolation_maximize_keeps_the_highest() -> None:
    data = plot_data.isolation_data(RECORDS, LR, "maximize")
    assert data.trials == [0, 2]
    assert data.best == [0.5, 0.3]


@pytest.mark.parametrize(
    ("centres", "between"),
    [([2e-3, 8e-3, 3e-2], [2e-3, 5e-3, 2e-2]), ([1e-5, 1e-3, 1e-1], [])],  # 1.2 decades; 4
)
def test_a_short_log_axis_is_labelled_between_its_decades(centres: list[float], between: list[float]) -> None:
    data = plot_data.IsolationData("1 - beta1", centres, [0.3, 0.2, 0.25], [0, 1, 2])
    figure = render.isolation_plot(data, "val_loss")
    render.png(figure)  # labels are set when the figure is drawn
    axis = figure.axes[0].xaxis
    low, high = figure.axes[0].get_xlim()
    minor = zip(axis.get_minorticklocs(), axis.get_ticklabels(minor=True), strict=True)
    labelled = [float(at) for at, label in minor if label.get_text() and low <= at <= high]
    assert labelled == pytest.approx(between)


def test_history_best_so_far_and_infeasible_trials() -> None:
    data = plot_data.history_data(RECORDS, "minimize")
    assert data.numbers == [0, 1, 2, 5]
    assert data.values == [0.5, 0.2, 0.3, 0.25]
    assert data.best_so_far == [0.5, 0.2, 0.2, 0.2]
    assert data.infeasible == [3]


def test_history_shows_where_each_round_of_a_campaign_starts() -> None:
    rounds = [0, 0, 0, 1, 1, 2]  # a campaign numbers its trials across rounds
    records = [replace(r, round=k) for r, k in zip(RECORDS, rounds, strict=True)]
    data = plot_data.history_data(records, "minimize", kinds={0: "explore", 1: "explore", 2: "exploit"})
    assert data.rounds == [(0, "0 explore"), (3, "1 explore"), (5, "2 exploit")]
    assert plot_data.history_data(RECORDS, "minimize").rounds == []  # one study: no rounds

    axes = render.history_plot(data, "val_loss", "minimize").axes[0]
    render.png(axes.figure)  # labels are set when the figure is drawn
    (top,) = axes.child_axes
    labelled = [
        (at, label.get_text()) for at, label in zip(top.get_xticks(), top.get_xticklabels(), strict=True)
    ]
    # Each label at the middle of its round, which runs to the next round's first trial.
    assert labelled == [(1.0, "0 explore"), (3.5, "1 explore"), (5.0, "2 exploit")]
    shaded = [patch for patch in axes.patches if patch.get_facecolor()[:3] == pytest.approx((0.92,) * 3)]
    assert len(shaded) == 1 and shaded[0].get_x() == 2.5 and shaded[0].get_width() == 2.0  # round 1


def test_curves_of_the_best_trials_in_order() -> None:
    curves = {"train_loss": [[1, 0.9], [2, 0.4]], "val_loss": [[1, 1.0], [2, 0.2]]}
    records = [*RECORDS[:1], record(1, 0.2, 1e-4, curves=curves), *RECORDS[2:]]
    shown = plot_data.curves_data(records, "val_loss", "minimize", count=2)
    assert [c.number for c in shown] == [1, 5]
    assert shown[0].series == {"train_loss": ([1.0, 2.0], [0.9, 0.4]), "val_loss": ([1.0, 2.0], [1.0, 0.2])}
    assert shown[1].series == {}
    # One legend entry per trial, beside the axes; the title says which metric is which style.
    axes = render.curves_plot(shown, "val_loss").axes[0]
    legend = axes.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["trial 1"]
    assert "(solid: val_loss; dotted: train_loss)" in axes.get_title()


def test_heatmap_needs_lr_and_beta1_tuned() -> None:
    assert plot_data.heatmap_data(RECORDS, SearchSpace.build(["lr"])) is None


def test_heatmap_points_and_surface() -> None:
    data = plot_data.heatmap_data(RECORDS, SPACE, resolution=10)
    assert data is not None
    assert data.x == pytest.approx([-5, -4, -3, math.log10(3e-5)])
    assert data.y == pytest.approx([-1, -2, -3, -1])
    assert data.infeasible_x == pytest.approx([-3]) and data.infeasible_y == pytest.approx([math.log10(0.05)])
    assert data.grid_z is not None and data.grid_z.shape == (10, 10)
    assert data.grid_x.min() == pytest.approx(-5) and data.grid_x.max() == pytest.approx(-3)
    assert data.grid_y.min() == pytest.approx(-3) and data.grid_y.max() == pytest.approx(-1)
    # Too few complete trials for a surface: points only.
    few = plot_data.heatmap_data(RECORDS[:3], SPACE)
    assert few is not None and few.grid_z is None


def test_a_large_studys_dots_shrink_and_fade_with_their_count() -> None:
    # Up to CROWDED trials, matplotlib's 6-point opaque dot; 4 times as many, half the size
    # and opacity; never below 2 points and 0.25, so a huge study still shows every trial.
    def drawn(count: int) -> tuple[float, float, float, float]:
        values = [float(k % 7) for k in range(count)]
        numbers = list(range(count))
        lrs = [10 ** (-5 + 5 * k / count) for k in range(count)]
        axis = plot_data.AxisData("lr", lrs, values, [], (1e-5, 1.0))
        dots = render.axis_plot(axis, "val_loss", "minimize").axes[0].lines[0]
        history = plot_data.HistoryData(numbers, values, values, [])
        by_trial = render.history_plot(history, "val_loss", "minimize").axes[0].lines[0]
        grid = np.linspace(0.0, 1.0, 3)
        heatmap = plot_data.HeatmapData(values, values, values, [], [], grid, grid, None)
        scatter = render.heatmap_plot(heatmap, "val_loss").axes[0].collections[0]
        assert by_trial.get_markersize() == dots.get_markersize() and by_trial.get_alpha() == dots.get_alpha()
        for axes in (dots.axes, by_trial.axes):  # the legend's dot stays readable
            legend = axes.get_legend()
            assert legend is not None
            handle = legend.legend_handles[0]
            assert isinstance(handle, Line2D) and (handle.get_markersize(), handle.get_alpha()) == (6.0, 1.0)
        return (
            dots.get_markersize(),
            float(dots.get_alpha() or 1.0),
            float(scatter.get_sizes()[0]),
            float(scatter.get_alpha() or 1.0),
        )

    assert drawn(render.CROWDED) == (6.0, 1.0, 30.0, 1.0)
    assert drawn(4 * render.CROWDED) == pytest.approx((3.0, 0.5, 7.5, 0.5))
    assert drawn(20 * render.CROWDED) == pytest.approx((2.0, 0.25, 30 * (2 / 6) ** 2, 0.25))


def test_a_loss_spanning_decades_is_drawn_on_log_axes_labelled_as_numbers() -> None:
    # A loss from about 0.1 to 4.1: on a linear axis the trials near the best, whose edges the
    # boundary check reads, would be a flat line at the bottom.
    def loss(trial: adamtune.Trial) -> float:
        value = (math.log10(trial.adam.lr) + 3.0) ** 2 + 0.1
        trial.report(0, train_loss=10 * value, val_loss=10 * value)
        trial.report(1, train_loss=value, val_loss=value)
        return value

    study = quasi_random(loss, 12, storage="memory", seed=0)
    shown = dict(drawn(study))
    for caption in ("val_loss against lr", "isolation of lr", "training curves", "by trial"):
        axes = shown[caption].axes[0]
        assert axes.get_yscale() == "log", caption
    lr_axes = shown["val_loss against lr"].axes[0]
    lr_axes.figure.canvas.draw()
    labels = {t.get_text() for t in [*lr_axes.get_yticklabels(), *lr_axes.get_yticklabels(minor=True)]}
    assert {"0.2", "0.5", "1", "2", "5"} <= labels  # under 3 decades: 2x and 5x, as numbers
    heatmap = shown["lr x beta1"]
    assert isinstance(heatmap.axes[0].collections[0].norm, matplotlib.colors.LogNorm)

    # An error rate from 0.3 to 0.5 (under a decade) keeps linear axes, also where its train
    # loss falls by decades: the curves' scale is the objective's, the curves compared there.
    def error_rate(trial: adamtune.Trial) -> float:
        value = 0.3 + ((math.log10(trial.adam.lr) + 3.0) ** 2) / 20
        trial.report(0, train_loss=1.0, val_error=0.9)
        trial.report(1, train_loss=1e-4, val_error=value)
        return value

    rate = quasi_random(error_rate, 12, storage="memory", seed=0, metric="val_error")
    assert all(figure.axes[0].get_yscale() == "linear" for _, figure in drawn(rate))


def test_the_heatmaps_surface_stays_within_the_trials_values() -> None:
    # Trials in the middle of the lr range, their value a power law of lr: the surface fitted
    # to log10 of the values reproduces the power law exactly where the trials are, and where
    # it would extrapolate beyond the best or worst trial it stops at their values.
    lrs = [10 ** (-4.5 + k / 6) for k in range(7)]
    records = [
        record(k, 10 ** (-2 * math.log10(lr) - 8), lr, beta1)
        for k, lr in enumerate(lrs)
        for beta1 in (0.9, 0.99)
    ]
    records = [replace(r, number=n) for n, r in enumerate(records)]
    values = [float(r.value or 0.0) for r in records]
    for scale in ("log", "linear"):
        data = plot_data.heatmap_data(records, SPACE, resolution=13, scale=scale)
        assert data is not None and data.grid_z is not None and data.scale == scale
        assert data.grid_z.min() == pytest.approx(min(values)) and data.grid_z.max() == pytest.approx(
            max(values)
        )
    logged = plot_data.heatmap_data(records, SPACE, resolution=13, scale="log")
    assert logged is not None and logged.grid_z is not None
    inside = (logged.grid_x >= -4.5) & (logged.grid_x <= -3.5)
    expected = 10 ** (-2 * logged.grid_x[inside] - 8)
    assert logged.grid_z[inside] == pytest.approx(expected, rel=1e-6)
    # Values of 0 or below have no log: the surface is fitted to the values themselves.
    zero = [replace(r, value=float(r.value or 0.0) - min(values)) for r in records]
    flat = plot_data.heatmap_data(zero, SPACE, resolution=13, scale="log")
    assert flat is not None and flat.scale == "linear"


def test_rendering_leaves_matplotlib_global_state_alone() -> None:
    before = dict(matplotlib.rcParams)
    backend = matplotlib.get_backend()
    study = quasi_random(SyntheticObjective(diverge_above=5e-4), 12, storage="memory", seed=1)
    shown = figures(study)
    assert dict(matplotlib.rcParams) == before
    assert matplotlib.get_backend() == backend
    captions = [caption for caption, _ in shown]
    assert captions == [
        "val_loss against lr",
        "val_loss against beta1",
        "lr x beta1",
        "isolation of lr",
        "isolation of beta1",
        "training curves",
        "by trial",
    ]
    assert all(image.startswith(PNG_MAGIC) for _, image in shown)


def test_empty_and_tiny_studies_still_render(tmp_path: Path) -> None:
    def crashes(trial: adamtune.Trial) -> float:
        raise RuntimeError("broken")

    storage = str(tmp_path / "s.journal")
    with pytest.raises(TooManyFailuresError):
        quasi_random(crashes, 3, study="empty", storage=storage, max_consecutive_failures=2)
    empty = load_study("empty", storage)
    assert empty.best is None and len(empty.trials) == 2
    for _, image in figures(empty):
        assert image.startswith(PNG_MAGIC)
    one = quasi_random(SyntheticObjective(), 1, storage="memory")
    assert len(figures(one)) == 4  # lr axis, lr isolation, curves, history


def test_empty_plots_say_why() -> None:
    figure = render.axis_plot(plot_data.axis_data([], LR), "val_loss", "minimize")
    texts = [t.get_text() for t in figure.axes[0].texts]
    assert texts == ["no finished trials yet"]
