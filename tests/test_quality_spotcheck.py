"""Spot checks of the quality benchmark's surrogates: which choices are retrained, how the
surrogate's error at them is reported, and how they join the table."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))

import quality
import quality_spotcheck as spot

BOX = [[-5.0, 0.0], [-3.0, math.log10(0.5)], [-4.0, -1.0], [-10.0, 0.0]]


def bowl_table(path: Path, count: int = 120) -> quality.Table:
    """A smooth bowl with seed noise 0.01, over the tables' space, with curves."""
    rng = np.random.default_rng(0)
    box = np.array(BOX)
    x = rng.uniform(box[:, 0], box[:, 1], size=(count, 4))
    y = 0.5 + 0.1 * (x[:, [0]] + 2.5) ** 2 + rng.normal(0, 0.01, size=(count, 2))
    meta = {"workload": "bowl", "cap": math.log(10), "steps": 10, "space_log10": BOX}
    curves = np.zeros((count, 2, 3), dtype=np.float16)
    np.savez_compressed(
        path, x=x.astype(np.float32), y=y.astype(np.float32), curves=curves, meta=json.dumps(meta)
    )
    return quality.Table.load(path)


def run(lr: float, beta1: float = 0.9) -> dict[str, object]:
    return {"workload": "bowl", "chosen": {"lr": lr, "beta1": beta1, "beta2": 0.999, "eps": 1e-8}}


def test_chosen_points_are_distinct_inside_the_space_and_new(tmp_path: Path) -> None:
    table = bowl_table(tmp_path / "bowl.npz")
    in_table = table.x[0]
    known = {
        "lr": 10 ** in_table[0],
        "beta1": 1 - 10 ** in_table[1],
        "beta2": 1 - 10 ** in_table[2],
        "eps": 10 ** in_table[3],
    }
    runs = [
        run(1e-3),
        run(1e-3),
        run(1e-2),
        run(3.0),
        run(1e-3, beta1=0.2),
        {"workload": "bowl", "chosen": known},
    ]
    points = spot.chosen_points(runs, table, count=10)  # type: ignore[arg-type]
    # 1e-3 once, 1e-2; lr 3 and beta1 0.2 lie outside the table's space; the last is a table row.
    assert sorted(np.round(points[:, 0], 6)) == [-3.0, -2.0]
    assert len(spot.chosen_points(runs, table, count=1)) == 1  # type: ignore[arg-type]


def test_drawn_by_choice_a_configuration_chosen_in_most_runs_is_all_but_sure_to_be_checked(
    tmp_path: Path,
) -> None:
    table = bowl_table(tmp_path / "bowl.npz")
    corner = run(0.9, beta1=0.5)  # one sampler's pick in all of its 300 runs
    runs = [corner] * 300 + [run(10 ** (-4 + 0.01 * k)) for k in range(300)]
    for seed in range(5):
        drawn = spot.chosen_points(runs, table, count=10, seed=seed, by_choice=True)  # type: ignore[arg-type]
        assert len(drawn) == 10 and len({tuple(row) for row in drawn}) == 10
        assert any(row[0] == pytest.approx(math.log10(0.9)) for row in drawn)
    # Drawn as distinct configurations, the corner is one of 301: ten draws rarely find it.
    found = [
        any(row[0] == pytest.approx(math.log10(0.9)) for row in spot.chosen_points(runs, table, 10, seed))  # type: ignore[arg-type]
        for seed in range(5)
    ]
    assert sum(found) <= 1


def test_lowest_points_lie_where_the_surrogate_predicts_best_and_apart(tmp_path: Path) -> None:
    table = bowl_table(tmp_path / "bowl.npz")
    surrogate = quality.Surrogate(table)
    points = spot.lowest_points(surrogate, table, count=5)
    assert points.shape == (5, 4)
    box = np.array(BOX)
    assert np.all(points >= box[:, 0]) and np.all(points <= box[:, 1])
    # The bowl's floor is at lr 10 ** -2.5 whatever the other three are.
    assert np.all(np.abs(points[:, 0] + 2.5) < 0.5)
    predicted = surrogate.mean(points)
    assert predicted[0] == pytest.approx(predicted.min())
    assert predicted.max() < surrogate.mean(table.x).min() + 0.01
    width = box[:, 1] - box[:, 0]
    gaps = [np.linalg.norm((a - b) / width) for i, a in enumerate(points) for b in points[i + 1 :]]
    assert min(gaps) >= spot.LOWEST_SPACING
    assert np.array_equal(points, spot.lowest_points(surrogate, table, count=5))  # seeded


def test_the_report_says_where_the_surrogate_was_optimistic(tmp_path: Path) -> None:
    table = bowl_table(tmp_path / "bowl.npz")
    surrogate = quality.Surrogate(table)
    x = np.array([[-2.5, -1.0, -2.0, -8.0], [-1.0, -1.0, -2.0, -8.0], [-4.0, -1.0, -2.0, -8.0]])
    truth = 0.5 + 0.1 * (x[:, 0] + 2.5) ** 2
    honest = spot.compare(surrogate, table, x, np.stack([truth, truth], axis=1))
    assert honest["optimistic_by_over_2_seed_sd"] == 0 and honest["rmse_in_seed_sd"] < 2
    worse = truth + np.array([0.0, 0.0, 0.5])  # the third trained far worse than predicted
    report = spot.compare(surrogate, table, x, np.stack([worse, worse], axis=1))
    assert report["optimistic_by_over_2_seed_sd"] == 1 and report["pessimistic_by_over_2_seed_sd"] == 0
    assert report["worst"]["x"][0] == -4.0 and report["worst"]["real"] == pytest.approx(worse[2], abs=1e-3)
    diverged = spot.compare(surrogate, table, x, np.array([[np.nan, np.nan]] * 3))  # counted at the cap
    assert diverged["optimistic_by_over_2_seed_sd"] == 3


def test_augmenting_appends_rows_and_records_how(tmp_path: Path) -> None:
    path = tmp_path / "bowl.npz"
    table = bowl_table(path)
    x = np.array([[-2.0, -1.0, -2.0, -8.0]])
    y = np.array([[0.6, 0.62]])
    spot.augment(path, table, x, y, np.ones((1, 2, 3)), "the command")
    grown = quality.Table.load(path)
    assert len(grown.x) == len(table.x) + 1
    assert grown.x[-1] == pytest.approx(x[0]) and grown.y[-1] == pytest.approx(y[0], abs=1e-6)
    assert np.array_equal(grown.x[:-1], table.x) and np.array_equal(grown.y[:-1], table.y)
    assert grown.meta["spot_checks"] == [{"rows": 1, "command": "the command"}]
    assert np.load(path)["curves"].shape == (len(table.x) + 1, 2, 3)


def test_curves_from_a_rebuild_join_a_table_that_keeps_its_values(tmp_path: Path) -> None:
    import quality_tables

    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    y = np.array([[1.0, 1.1], [np.nan, 2.0], [0.5, 0.6]], dtype=np.float32)
    meta = json.dumps({"workload": "bowl", "command": "old"})
    np.savez_compressed(tmp_path / "t.npz", x=x, y=y, meta=meta)
    again = y + np.array([[0.0, 1e-7], [0.0, 0.05], [np.nan, 0.0]], dtype=np.float32)
    curves = np.ones((3, 2, 5), dtype=np.float16)
    rebuilt_meta = json.dumps({"command": "python benchmarks/quality_tables.py ..."})
    np.savez_compressed(tmp_path / "r.npz", x=x, y=again, curves=curves, meta=rebuilt_meta)
    match = quality_tables.add_curves(tmp_path / "t.npz", tmp_path / "r.npz")
    assert match["diverged_in_one_build_only"] == 1 and match["runs_differing_by_over_0.01"] == 1
    assert match["max_abs_difference"] == pytest.approx(0.05, abs=1e-6)
    table = np.load(tmp_path / "t.npz")
    assert np.array_equal(table["y"], y, equal_nan=True)  # the table's own values stay
    assert table["curves"].shape == (3, 2, 5)
    assert json.loads(str(table["meta"]))["curves_from_rebuild"]["command"].startswith("python benchmarks")
    np.savez_compressed(tmp_path / "other.npz", x=x + 1, y=again, curves=curves, meta=rebuilt_meta)
    with pytest.raises(SystemExit, match="is not a rebuild of"):
        quality_tables.add_curves(tmp_path / "t.npz", tmp_path / "other.npz")


def test_more_seeds_keep_the_tables_replicates_and_record_where_each_was_trained(tmp_path: Path) -> None:
    import quality_tables

    x = quality_tables.configurations(5)
    y = np.array([[1.0, 1.1], [np.nan, 2.0], [0.5, 0.6], [0.7, 0.8], [0.9, 1.0]], dtype=np.float32)
    curves = np.arange(5 * 2 * 3, dtype=np.float16).reshape(5, 2, 3)
    old = {"workload": "mnist1d-mlp", "steps": 300, "seconds": 60.0, "curves_from_rebuild": {"runs": 10}}
    path = tmp_path / "t.npz"
    np.savez_compressed(path, x=x.astype(np.float32), y=y, curves=curves, meta=json.dumps(old))
    command = "python benchmarks/quality_tables.py --seeds 4"
    meta = {"steps": 300, "command": command, "device": "cuda (X)", "torch": "9"}
    y4, curves4, done, merged = quality_tables.with_more_seeds(path, x, 300, 4, 2, meta)
    assert y4.shape == (5, 4) and np.isnan(y4[:, 2:]).all()
    assert np.array_equal(y4[:, :2], y, equal_nan=True) and np.array_equal(curves4[:, :2], curves)
    # 5 configurations in chunks of 2: chunks 0-2 (the last of one) of replicates 0-1 are done
    assert done.tolist() == [[True, True, False, False]] * 3
    assert merged["curves_from_rebuild"] == {"runs": 10}  # the table's own record stays
    assert merged["replicates"] == [
        {"replicates": "0-1", "device": "cpu", "torch": "not recorded", "seconds": 60.0},
        {"replicates": "2-3", "device": "cuda (X)", "torch": "9"},
    ]
    assert merged["command"].endswith("--seeds 4 --more-seeds")
    with pytest.raises(SystemExit, match="expected --seeds above the table's 2, got 2"):
        quality_tables.with_more_seeds(path, x, 300, 2, 2, meta)
    with pytest.raises(SystemExit, match="at 400 steps, got 5 at 300"):
        quality_tables.with_more_seeds(path, x, 400, 4, 2, meta)
    np.savez_compressed(tmp_path / "bare.npz", x=x.astype(np.float32), y=y, meta=json.dumps(old))
    with pytest.raises(SystemExit, match="keep its curves; add them with --curves-from"):
        quality_tables.with_more_seeds(tmp_path / "bare.npz", x, 300, 4, 2, meta)
    with pytest.raises(SystemExit, match="expected a finished table"):
        quality_tables.with_more_seeds(tmp_path / "none.npz", x, 300, 4, 2, meta)


def test_more_configs_continue_the_sequence_and_keep_appended_rows_last(tmp_path: Path) -> None:
    import quality_tables

    x = quality_tables.configurations(6)
    y = np.array([[1.0, 1.1], [np.nan, 2.0], [0.5, 0.6], [0.7, 0.8], [3.0, 3.1]], dtype=np.float32)
    spot = np.array([[-2.0, -1.0, -2.0, -8.0]], dtype=np.float32)  # a spot check after the 4 configs
    curves = np.arange(5 * 2 * 3, dtype=np.float16).reshape(5, 2, 3)
    data = {"files": 3, "bytes": 100, "train_bytes": 90, "val_bytes": 10, "model": {"d_model": 64}}
    old = {"workload": "stdlib-lm", "configs": 4, "steps": 300, "seconds": 60.0, "python": "3.11.7", **data}
    old["spot_checks"] = [{"rows": 1, "command": "spot"}]
    path = tmp_path / "t.npz"
    table_x = np.concatenate([x[:4], spot]).astype(np.float32)
    np.savez_compressed(path, x=table_x, y=y, curves=curves, meta=json.dumps(old))
    command = "python benchmarks/quality_tables.py --configs 6"
    meta = {"command": command, "device": "cpu", "torch": "9", "python": "3.12.3", **data}
    y6, curves6, done, merged, appended = quality_tables.with_more_configs(path, x, 300, 2, 2, meta)
    assert y6.shape == (6, 2) and np.isnan(y6[4:]).all()
    assert np.array_equal(y6[:4], y[:4], equal_nan=True) and np.array_equal(curves6[:4], curves[:4])
    assert curves6.shape == (6, 2, 3)
    # 6 configurations in chunks of 2: the table's chunks 0-1 are done on both replicates
    assert done.tolist() == [[True, True], [True, True], [False, False], [False, False]]
    assert np.array_equal(appended["x"], spot) and np.array_equal(appended["y"], y[4:])
    assert merged["configs"] == 6 and merged["spot_checks"] == old["spot_checks"]
    assert merged["python"] == "3.11.7"  # where the data came from
    assert merged["configurations"] == [
        {
            "configs": "0-3",
            "device": "not recorded",
            "torch": "not recorded",
            "python": "3.11.7",
            "seconds": 60,
        },
        {"configs": "4-5", "device": "cpu", "torch": "9", "python": "3.12.3"},
    ]
    assert merged["command"].endswith("--configs 6 --more-configs")
    with pytest.raises(SystemExit, match="expected --configs above the table's 4, got 4"):
        quality_tables.with_more_configs(path, x[:4], 300, 2, 2, meta)
    with pytest.raises(SystemExit, match="a --chunk that divides the table's 4, got 3"):
        quality_tables.with_more_configs(path, x, 300, 2, 3, meta)
    with pytest.raises(SystemExit, match="to be 2 seeds at 400 steps, got 4 configurations x 2 seeds at 300"):
        quality_tables.with_more_configs(path, x, 400, 2, 2, meta)
    with pytest.raises(SystemExit, match="does not begin with this command's Halton sequence"):
        quality_tables.with_more_configs(path, x + 0.5, 300, 2, 2, meta)
    other = {**meta, "bytes": 101, "train_bytes": 91}
    differ = r"differ from the table's \(bytes, train_bytes\): expected 100, 90, got 101, 91"
    with pytest.raises(SystemExit, match=differ):
        quality_tables.with_more_configs(path, x, 300, 2, 2, other)
    with pytest.raises(SystemExit, match="expected a finished table"):
        quality_tables.with_more_configs(tmp_path / "none.npz", x, 300, 2, 2, meta)


@pytest.mark.parametrize("other", ["--by-choice", "--augment-saved"])
def test_lowest_with_another_draw_is_refused_before_any_work(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], other: str
) -> None:
    monkeypatch.setattr(sys, "argv", ["quality_spotcheck.py", "--workload", "mnist1d-cnn", "--lowest", other])
    with pytest.raises(SystemExit) as exit_info:
        spot.main()
    assert exit_info.value.code == 2
    assert "--lowest: expected it alone (it draws its own points), got it with" in capsys.readouterr().err
