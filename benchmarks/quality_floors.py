"""The lowest regret each method's search space allows: the surrogate's best mean inside it.

A method can only choose a configuration inside the space it searches, so the best surrogate
mean there bounds what it can reach in a cell of the comparison (``quality.py``):

- ``adamtune`` (the playbook) tunes what the budget's tier allows (``adamtune.tiers``; the rest
  fixed at Adam's defaults), over the setting's ranges expanded as far as its expansion limit
  lets them (``MAX_DECADES`` beyond the start, within the tables' space);
- ``adamtune-qr`` tunes the same tier over the setting's ranges, never expanded;
- ``qr-2x`` is ``adamtune-qr`` with twice the budget, so the tier of twice the budget;
- Optuna's samplers and random search (``optuna``) tune all four over the setting's ranges.

Where a cell's best median lies below adamtune's floor, no search within the playbook's tiers
can take that cell. The floor is found by 4096 Sobol points over the space's unit cube, then
Nelder-Mead from the best five, on the search scale.

    python benchmarks/quality_floors.py     # 2 minutes for the three tables on the idle 2 cores
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from quality import DEFAULT, NAMES, RESULTS, TABLES, WIDE, Surrogate, coordinates, surrogate_for
from scipy.optimize import minimize
from scipy.stats import qmc

from adamtune.campaign import limit_expansion
from adamtune.space import SearchSpace
from adamtune.tiers import choose_tuned

BUDGETS = (8, 20, 50, 100)
SPACES = ("adamtune", "adamtune-qr", "qr-2x", "optuna")
SOBOL_POINTS = 4096
REFINED = 5


def method_space(method: str, setting: str, budget: int) -> SearchSpace:
    """The space ``method`` searches in a cell: its tuned set over its reachable ranges."""
    ranges = WIDE if setting == "wide" else DEFAULT
    tier_budget = 2 * budget if method == "qr-2x" else budget
    tuned = NAMES if method == "optuna" else choose_tuned(tier_budget).tuned
    space = SearchSpace.build(tuned, ranges=ranges, limits=WIDE)
    if method != "adamtune":
        return space
    # The playbook may expand each range up to its limit: its reachable space is all of that.
    specs = tuple(
        spec.with_range(*spec.clipped_to_limit(*limit_expansion(spec, WIDE[spec.name])))
        if spec.name in tuned
        else spec
        for spec in space.specs
    )
    return SearchSpace(specs, space.tuned, space.optimizer)


def surrogate_floor(
    surrogate: Surrogate, space: SearchSpace, seed: int = 0
) -> tuple[float, dict[str, float]]:
    """The lowest surrogate mean in ``space`` and the configuration that has it."""

    def configs(units: np.ndarray) -> np.ndarray:
        rows = []
        for unit in np.clip(units, 0.0, np.nextafter(1.0, 0.0)):
            adam = space.config_from_params(space.params_from_unit(unit))
            rows.append(coordinates({name: float(getattr(adam, name)) for name in NAMES}))
        return np.array(rows)

    def mean(units: np.ndarray) -> np.ndarray:
        return np.concatenate(
            [surrogate.mean(configs(units[i : i + 1024])) for i in range(0, len(units), 1024)]
        )

    dims = len(space.tuned)
    starts = qmc.Sobol(dims, seed=seed).random(SOBOL_POINTS)
    values = mean(starts)
    one: Callable[[np.ndarray], float] = lambda unit: float(mean(unit[None, :])[0])  # noqa: E731
    best_value, best_unit = np.inf, starts[0]
    for index in np.argsort(values)[:REFINED]:
        found = minimize(one, starts[index], method="Nelder-Mead", options={"xatol": 1e-4, "fatol": 1e-7})
        if found.fun < best_value:
            best_value, best_unit = float(found.fun), np.clip(found.x, 0.0, np.nextafter(1.0, 0.0))
    adam = space.config_from_params(space.params_from_unit(best_unit))
    return best_value, {name: float(getattr(adam, name)) for name in NAMES}


def floors(workload: str) -> list[dict[str, Any]]:
    surrogate, best, median = surrogate_for(str(TABLES / f"{workload}.npz"))
    rows = []
    found: dict[str, tuple[float, dict[str, float]]] = {}  # many cells share a space
    for setting in ("default", "wide"):
        for budget in BUDGETS:
            for method in SPACES:
                space = method_space(method, setting, budget)
                key = json.dumps(space.to_dict(), sort_keys=True)
                if key not in found:
                    found[key] = surrogate_floor(surrogate, space)
                value, config = found[key]
                rows.append(
                    {
                        "workload": workload,
                        "setting": setting,
                        "budget": budget,
                        "method": method,
                        "tuned": list(space.tuned),
                        "floor": round((value - best) / (median - best), 4),
                        "at": {k: float(f"{v:.4g}") for k, v in config.items()},
                    }
                )
    return rows


def table(rows: Sequence[dict[str, Any]], medians: dict[tuple[str, str, int], tuple[str, float]]) -> str:
    """Markdown: per cell, each space's floor and the cell's best median in the comparison."""
    lines = [
        "| workload | setting | budget | adamtune | adamtune-qr | qr-2x | optuna | best median (method) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    cells = sorted({(r["workload"], r["setting"], r["budget"]) for r in rows})
    for cell in cells:
        by_method = {
            r["method"]: r["floor"] for r in rows if (r["workload"], r["setting"], r["budget"]) == cell
        }
        leader = medians.get(cell)
        led = f"{leader[1]:.3f} ({leader[0]})" if leader else ""
        values = " | ".join(f"{by_method[m]:.3f}" for m in SPACES)
        lines.append(f"| {cell[0]} | {cell[1]} | {cell[2]} | {values} | {led} |")
    return "\n".join(lines)


def best_medians(path: str) -> dict[tuple[str, str, int], tuple[str, float]]:
    """Each cell's lowest median regret in the saved comparison, and its method."""
    with open(path) as saved:
        runs = json.load(saved)["runs"]
    regrets: dict[tuple[str, str, int, str], list[float]] = {}
    for run in runs:
        key = (run["workload"], run["setting"], run["budget"], run["method"])
        regrets.setdefault(key, []).append(run["regret"])
    best: dict[tuple[str, str, int], tuple[str, float]] = {}
    for (workload, setting, budget, method), values in regrets.items():
        median = float(np.median(values))
        cell = (workload, setting, budget)
        if cell not in best or median < best[cell][1]:
            best[cell] = (method, median)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default="mnist1d-mlp,mnist1d-cnn,stdlib-lm")
    parser.add_argument("--against", default=str(RESULTS / "quality.json"), help="the saved comparison")
    parser.add_argument("--out", default=str(RESULTS / "quality_floors.json"))
    args = parser.parse_args()
    rows = [row for workload in args.workloads.split(",") for row in floors(workload)]
    print(table(rows, best_medians(args.against)))
    with open(args.out, "w") as out:
        json.dump({"floors": rows}, out, indent=2)


if __name__ == "__main__":
    main()
