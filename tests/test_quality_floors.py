"""The search-space floors: each method's space, and the surrogate's best mean inside it."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))

import quality
import quality_floors as floors

from test_quality_spotcheck import bowl_table


def ranges(method: str, setting: str, budget: int) -> dict[str, tuple[float, float]]:
    space = floors.method_space(method, setting, budget)
    return {spec.name: (spec.low, spec.high) for spec in space.tuned_specs}


def test_each_method_searches_its_tier_over_its_reachable_ranges() -> None:
    # The playbook at budget 20 tunes lr and beta1, each expandable two decades within the tables.
    assert ranges("adamtune", "default", 20) == {"lr": (1e-5, pytest.approx(0.1)), "beta1": (0.5, 0.999)}
    assert ranges("adamtune-qr", "default", 20) == {"lr": (1e-5, 1e-3), "beta1": (0.9, 0.999)}
    # Twice the budget: the 25-49 tier, eps too, never expanded.
    assert ranges("qr-2x", "default", 20) == {"lr": (1e-5, 1e-3), "beta1": (0.9, 0.999), "eps": (1e-8, 1e-6)}
    assert ranges("optuna", "wide", 8) == quality.WIDE
    assert ranges("adamtune", "wide", 8) == {"lr": quality.WIDE["lr"]}
    # eps expands two decades either way from 1e-8..1e-6; beta2's limit is the tables' 0.9..0.9999.
    reach = ranges("adamtune", "default", 50)
    assert reach["eps"] == (pytest.approx(1e-10), pytest.approx(1e-4))
    assert reach["beta2"] == (pytest.approx(0.9), pytest.approx(0.9999))


def test_the_floor_is_the_bowls_bottom_where_the_space_reaches_it(tmp_path: Path) -> None:
    surrogate = quality.Surrogate(bowl_table(tmp_path / "bowl.npz"))  # best lr 10**-2.5
    reaching = floors.method_space("adamtune", "default", 8)  # lr up to 0.1
    bottom, at = floors.surrogate_floor(surrogate, reaching)
    assert abs(math.log10(at["lr"]) + 2.5) < 0.15
    assert (at["beta1"], at["beta2"], at["eps"]) == (0.9, 0.999, 1e-8)  # Adam's defaults, not tuned
    short = floors.method_space("adamtune-qr", "default", 8)  # lr up to 1e-3 only
    edge, at_edge = floors.surrogate_floor(surrogate, short)
    assert at_edge["lr"] == pytest.approx(1e-3, rel=1e-3)
    assert edge - bottom == pytest.approx(0.1 * 0.5**2, abs=0.01)  # the bowl's rise to lr 1e-3


def test_the_table_sets_each_cells_floors_beside_its_best_median(tmp_path: Path) -> None:
    saved = tmp_path / "quality.json"
    runs = [
        {"workload": "w", "setting": "wide", "budget": 8, "method": method, "regret": regret}
        for method, regrets in {"gp": [0.1, 0.2, 0.3], "adamtune": [0.15, 0.25, 0.35]}.items()
        for regret in regrets
    ]
    saved.write_text(json.dumps({"runs": runs}))
    best = floors.best_medians(str(saved))
    assert best == {("w", "wide", 8): ("gp", pytest.approx(0.2))}
    rows = [
        {"workload": "w", "setting": "wide", "budget": 8, "method": method, "floor": value}
        for method, value in zip(floors.SPACES, (0.05, 0.06, 0.04, -0.1), strict=True)
    ]
    lines = floors.table(rows, best).splitlines()
    assert lines[-1] == "| w | wide | 8 | 0.050 | 0.060 | 0.040 | -0.100 | 0.200 (gp) |"
