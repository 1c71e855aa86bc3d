"""The quality benchmark's scoring: regret summaries, ranks, win rates, and surrogate fidelity."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import optuna
import pytest

ROOT = Path(__file__).parent.parent


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / "quality.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


quality = _load("quality_benchmark")


def result(method: str, rep: int, regret: float, budget: int = 8) -> dict[str, Any]:
    return {
        "workload": "w",
        "setting": "default",
        "budget": budget,
        "method": method,
        "rep": rep,
        "regret": regret,
    }


def test_summary_medians_ranks_and_win_rates() -> None:
    results = [
        result("adamtune", 0, 0.1),
        result("adamtune", 1, 0.3),
        result("random", 0, 0.5),
        result("random", 1, 0.3),
        result("qr-2x", 0, 0.2),
        result("qr-2x", 1, 0.2),
    ]
    rows = quality.summarise(results)["w/default/8"]
    assert rows["adamtune"]["median_regret"] == pytest.approx(0.2)
    # rep 0: adamtune 1st, qr-2x 2nd, random 3rd; rep 1: qr-2x 1st, adamtune and random tie for 2nd.
    assert rows["adamtune"]["mean_rank"] == pytest.approx((1 + 2.5) / 2)
    assert rows["random"]["mean_rank"] == pytest.approx((3 + 2.5) / 2)
    assert rows["qr-2x"]["mean_rank"] == pytest.approx((2 + 1) / 2)
    assert rows["adamtune"]["win_rate_vs_qr2x"] == pytest.approx(0.5)
    assert rows["random"]["win_rate_vs_qr2x"] == pytest.approx(0.0)
    assert rows["qr-2x"]["win_rate_vs_qr2x"] is None
    assert "| adamtune | 0.200 |" in quality.markdown(quality.summarise(results))


def test_standing_counts_the_cells_led_and_those_ahead_of_twice_the_budget() -> None:
    def cell(budget: int, ours: float, other: float, qr2x: float) -> list[dict[str, Any]]:
        regrets = {"adamtune": ours, "tpe": other, "qr-2x": qr2x}
        return [result(m, rep, v, budget) for m, v in regrets.items() for rep in range(2)]

    # Budget 8: led, tied with qr-2x (not counted: below budget 20 anyway). Budget 20: tied for
    # the lowest (led), not below qr-2x. Budget 50: TPE ahead, below qr-2x.
    summary = quality.summarise([*cell(8, 0.1, 0.2, 0.1), *cell(20, 0.1, 0.1, 0.1), *cell(50, 0.2, 0.1, 0.3)])
    expected = (
        "lowest in 2 of 3 cells (w 2 of 3), and below quasi-random search's with twice the budget in 1 of 2"
    )
    assert expected in quality.standing(summary, ["w"])
    assert "lowest in 1 of 1 cells" in quality.standing(summary, ["w"], {("w", "default", 20)})
    assert "lowest in 0 of 0 cells" in quality.standing(summary, ["other"])


def synthetic_table(path: Path, count: int = 200) -> None:
    """A smooth bowl in the four coordinates with seed noise 0.01 and a divergent corner."""
    rng = np.random.default_rng(0)
    x = rng.uniform([-5, -3, -4, -10], [0, math.log10(0.5), -1, 0], size=(count, 4))
    mean = 0.5 + 0.1 * (x[:, 0] + 2.5) ** 2 + 0.05 * (x[:, 1] + 1.5) ** 2
    y = mean[:, None] + rng.normal(0, 0.01, size=(count, 2))
    y[x[:, 0] > -0.5] = np.nan
    meta = {"workload": "bowl", "cap": math.log(10)}
    np.savez_compressed(path, x=x.astype(np.float32), y=y.astype(np.float32), meta=json.dumps(meta))


def test_surrogate_fidelity_on_a_learnable_table(tmp_path: Path) -> None:
    synthetic_table(tmp_path / "bowl.npz")
    table = quality.Table.load(tmp_path / "bowl.npz")
    assert table.seed_sd == pytest.approx(0.01, rel=0.15)
    report = quality.fidelity(table)
    assert report["held_out"] == 200  # every configuration predicted once, by the other folds
    assert report["spearman"] > 0.95
    assert report["divergence_accuracy"] > 0.9
    assert report["best_quarter_rmse_in_seed_sd"] <= quality.FIDELITY_ERROR
    assert report["usable"] is True


def test_a_surrogate_of_an_unlearnable_table_is_refused(tmp_path: Path) -> None:
    # Means that do not depend on the configuration, measured with seed noise 0.01: nothing
    # to learn, so held-out predictions miss by the spread of the means (0.3), 30 seed sd.
    rng = np.random.default_rng(1)
    x = rng.uniform([-5, -3, -4, -10], [0, math.log10(0.5), -1, 0], size=(200, 4))
    y = rng.uniform(0.5, 1.5, size=(200, 1)) + rng.normal(0, 0.01, size=(200, 2))
    meta = {"workload": "noise", "cap": math.log(10)}
    np.savez_compressed(
        tmp_path / "noise.npz", x=x.astype(np.float32), y=y.astype(np.float32), meta=json.dumps(meta)
    )
    report = quality.fidelity(quality.Table.load(tmp_path / "noise.npz"))
    assert report["spearman"] < quality.FIDELITY_RHO
    assert report["best_quarter_rmse_in_seed_sd"] > quality.FIDELITY_ERROR
    assert report["usable"] is False


def test_saved_fidelity_is_reused_only_for_the_same_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synthetic_table(tmp_path / "bowl.npz")
    monkeypatch.setattr(quality, "RESULTS", tmp_path)
    saved = {
        "bowl": {
            "usable": False,
            "folds": quality.FOLDS,
            "table_sha256": quality.table_digest(tmp_path / "bowl.npz"),
        }
    }
    (tmp_path / "quality_fidelity.json").write_text(json.dumps(saved))
    assert quality.fidelity_of(tmp_path / "bowl.npz")["usable"] is False  # the saved verdict
    synthetic_table(tmp_path / "bowl.npz", count=150)  # a different table under the same name
    assert quality.fidelity_of(tmp_path / "bowl.npz")["usable"] is True  # measured afresh


def test_a_run_scores_the_true_mean_of_its_choice(tmp_path: Path) -> None:
    synthetic_table(tmp_path / "bowl.npz")
    run = quality.Run(str(tmp_path / "bowl.npz"), "bowl", "wide", "adamtune-qr", 8, 0)
    scored = quality.execute(run)
    surrogate, best, median = quality.surrogate_for(str(tmp_path / "bowl.npz"))
    chosen = quality.coordinates(scored["chosen"])
    assert scored["true_mean"] == pytest.approx(float(surrogate.mean(chosen)[0]))
    assert scored["regret"] == pytest.approx((scored["true_mean"] - best) / (median - best))
    assert scored["trials"] == 8


def test_merged_results_replace_the_same_runs_and_keep_the_others() -> None:
    saved = [result("adamtune", 0, 0.1), result("adamtune", 1, 0.2), result("gp", 0, 0.3, budget=20)]
    merged = quality.merge_runs(saved, [result("adamtune", 1, 0.9), result("adamtune", 0, 0.5, budget=50)])
    assert sorted((r["method"], r["budget"], r["rep"], r["regret"]) for r in merged) == [
        ("adamtune", 8, 0, 0.1),
        ("adamtune", 8, 1, 0.9),
        ("adamtune", 50, 0, 0.5),
        ("gp", 20, 0, 0.3),
    ]


def test_the_noise_floor_is_one_seed_sd_in_regret(tmp_path: Path) -> None:
    synthetic_table(tmp_path / "bowl.npz")
    path = str(tmp_path / "bowl.npz")
    _, best, median = quality.surrogate_for(path)
    floor = quality.noise_floor(path)
    # A choice one seed sd (0.01 by construction) worse than the best has exactly that regret.
    assert floor == pytest.approx(0.01 / (median - best), rel=0.15)
    assert 0 < floor < 1


def test_live_runs_train_the_table_workload_for_real(tmp_path: Path) -> None:
    synthetic_table(tmp_path / "bowl.npz")
    surrogate, _, _ = quality.surrogate_for(str(tmp_path / "bowl.npz"))
    live = quality.LiveObjective(surrogate, rep=0, steps=30)
    config = {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}
    first, again = live.value(config, seed=5), live.value(config, seed=5)
    assert first == again and 0.5 < first < math.log(10) + 0.5  # a real cross-entropy, seeded
    assert live.value(config, seed=6) != first
    assert math.isnan(live.value({**config, "lr": 1e4}, seed=5))  # diverged, as in the table
    assert live.calls == 4


def test_live_runs_train_the_model_of_each_table(tmp_path: Path) -> None:
    synthetic_table(tmp_path / "bowl.npz")
    surrogate, _, _ = quality.surrogate_for(str(tmp_path / "bowl.npz"))
    cnn = quality.LiveObjective(surrogate, rep=0, steps=20, workload="mnist1d-cnn")
    assert cnn.workload.model == "cnn" and cnn.workload.steps == 20
    value = cnn.value({"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}, seed=1)
    assert 0.5 < value < math.log(10) + 0.5
    lm = quality.LiveObjective(surrogate, rep=0, steps=20, workload="stdlib-lm")
    assert type(lm.workload).__name__ == "StdlibLmWorkload" and lm.workload.steps == 20
    with pytest.raises(
        ValueError, match="live runs: expected mnist1d-mlp, mnist1d-cnn or stdlib-lm, got 'bowl'"
    ):
        quality.LiveObjective(surrogate, rep=0, steps=20, workload="bowl")


def test_a_live_run_is_rescored_on_its_tables_scale_from_its_own_retrainings(tmp_path: Path) -> None:
    synthetic_table(tmp_path / "bowl.npz")
    path = str(tmp_path / "bowl.npz")
    surrogate, best, median = quality.surrogate_for(path)
    chosen = {"lr": 10**-2.5, "beta1": 1 - 10**-1.5, "beta2": 0.999, "eps": 1e-8}
    run = {"workload": "bowl", "chosen": chosen, "true_mean": median, "regret": 0.3, "surrogate_mean": 9.0}
    again = quality.rescored(run, path)
    assert again["regret"] == pytest.approx(1.0)  # the table's median retrained: regret 1
    assert quality.rescored({**run, "true_mean": best}, path)["regret"] == pytest.approx(0.0)
    assert again["surrogate_mean"] == pytest.approx(float(surrogate.mean(quality.coordinates(chosen))[0]))
    assert again["surrogate_mean"] == pytest.approx(0.5, abs=0.05)  # the bowl's floor, at its centre
    assert again["true_mean"] == median and again["chosen"] == chosen  # the retrainings stand


def test_the_gap_interval_is_the_difference_of_medians_with_its_bootstrap_spread() -> None:
    same = [0.1, 0.2, 0.3, 0.4, 0.5]
    gap, low, high = quality.gap_interval(same, same)
    assert gap == 0.0 and -0.3 <= low < 0 < high <= 0.3
    gap, low, high = quality.gap_interval([1.0 + 0.01 * k for k in range(20)], [0.01 * k for k in range(20)])
    assert gap == pytest.approx(1.0) and 0.9 < low <= gap <= high < 1.1  # far apart: excludes 0
    assert quality.gap_interval([0.3] * 10, [0.1] * 10) == pytest.approx((0.2, 0.2, 0.2))


def test_gaps_list_only_the_cells_adamtune_does_not_lead() -> None:
    runs = [result("adamtune", rep, 0.10 + 0.01 * rep) for rep in range(10)]
    runs += [result("gp", rep, 0.20 + 0.01 * rep) for rep in range(10)]  # behind: not listed
    runs += [result("adamtune", rep, 0.30 + 0.01 * rep, budget=20) for rep in range(10)]
    runs += [result("tpe", rep, 0.10 + 0.01 * rep, budget=20) for rep in range(10)]
    rows = quality.gaps(runs, "w", floor=0.1).splitlines()[2:]
    assert len(rows) == 1
    budget, setting, ahead, gap, interval, in_sd = (c.strip() for c in rows[0].strip("|").split("|"))
    assert (budget, setting, ahead, gap, in_sd) == ("20", "default", "tpe", "0.200", "2.00")
    low, high = (float(v) for v in interval.split(" to "))
    assert 0 < low <= 0.2 <= high


def test_named_results_keep_side_tables_apart_from_the_main_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tables, results = tmp_path / "side", tmp_path / "results"
    tables.mkdir()
    synthetic_table(tables / "bowl.npz")
    results.mkdir()
    (results / "quality_fidelity.json").write_text('{"bowl": {"usable": false}}')
    monkeypatch.setattr(quality, "RESULTS", results)
    plotted: list[Path] = []
    monkeypatch.setattr(quality, "plot", lambda runs, path, floors: plotted.append(path))

    def main(*args: str) -> None:
        monkeypatch.setattr(sys, "argv", ["quality.py", *args, "--tables", str(tables), "--name", "side"])
        quality.main()

    main("fidelity")
    assert json.loads((results / "side_fidelity.json").read_text())["bowl"]["usable"] is True
    assert json.loads((results / "quality_fidelity.json").read_text()) == {"bowl": {"usable": False}}
    main("compare", "--budgets", "8", "--reps", "2", "--methods", "random", "--settings", "wide", "--jobs=1")
    saved = json.loads((results / "side.json").read_text())
    assert [(r["method"], r["rep"]) for r in saved["runs"]] == [("random", 0), ("random", 1)]
    assert not (results / "quality.json").exists() and plotted[0].name == "side.png"
    # The results say what wrote them, and a merge adds to that record.
    (written,) = saved["written_with"]
    assert written["command"].startswith("python benchmarks/quality.py compare --budgets 8 --reps 2")
    assert written["environment"]["optuna"] == optuna.__version__
    one = ("compare", "--budgets=8", "--reps=1", "--methods=random", "--settings=wide", "--jobs=1")
    main(*one, "--first-rep", "2", "--merge")
    saved = json.loads((results / "side.json").read_text())
    assert len(saved["runs"]) == 3 and len(saved["written_with"]) == 2
    main(*one, "--first-rep", "3")  # afresh: the earlier runs and their record are replaced
    saved = json.loads((results / "side.json").read_text())
    assert len(saved["runs"]) == 1 and len(saved["written_with"]) == 1


def test_select_runs_keeps_the_named_repetitions_and_budgets() -> None:
    runs = [result("adamtune", rep, 0.1, budget=budget) for rep in range(6) for budget in (8, 20, 50)]
    held_out = quality.select_runs(runs, first_rep=3, reps=2, budgets=[8, 20])
    assert sorted((r["rep"], r["budget"]) for r in held_out) == [(3, 8), (3, 20), (4, 8), (4, 20)]
    assert sorted({r["rep"] for r in quality.select_runs(runs, first_rep=4)}) == [4, 5]
    assert quality.select_runs(runs) == runs


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["--name", "no-such-results"], "got no no-such-results.json"),
        (["--also", "quality,no-such-results"], "got no no-such-results.json"),
        (["--budgets", "8,x"], "--budgets: expected comma-separated whole numbers, got '8,x'"),
    ],
)
def test_overview_says_what_it_expected_in_one_line(arguments: list[str], expected: str) -> None:
    script = Path(__file__).parent.parent / "benchmarks" / "quality.py"
    done = subprocess.run(
        [sys.executable, str(script), "overview", *arguments], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    assert expected in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        ((-0.02, 0.7), [-0.02, -0.01, 0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5]),  # round values
        ((0.16, 0.24), [0.16, 0.18, 0.2, 0.22, 0.24]),  # within a decade: evenly spaced
    ],
)
def test_the_regret_axis_is_labelled_at_round_values(
    limits: tuple[float, float], expected: list[float]
) -> None:
    from matplotlib.figure import Figure

    axes = Figure().add_subplot()
    axes.set_yscale("symlog", linthresh=0.01)
    axes.set_ylim(*limits)
    quality.regret_ticks(axes)
    assert list(axes.get_yticks()) == pytest.approx(expected)
    assert [t.get_text() for t in axes.get_yticklabels()][-1] == f"{expected[-1]:g}"
