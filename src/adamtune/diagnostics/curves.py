"""Training curves of the best few trials (checklist item 5)."""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence

from adamtune.diagnostics._base import Finding, Noise, ranked
from adamtune.records import TrialRecord

BEST_FEW = 3
MIN_POINTS = 4
LATE = 0.75  # the last quarter of training is "late"
EARLY = 0.5  # reaching the best before half of training is "long before the end"


def curves(records: Sequence[TrialRecord], metric: str, direction: str, noise: Noise) -> list[Finding]:
    best = [r for r in ranked(records, direction) if len(r.curves.get(metric, [])) >= MIN_POINTS]
    best = best[:BEST_FEW]
    if not best:
        return []
    sign = 1.0 if direction == "minimize" else -1.0
    found: dict[str, list[dict[str, float]]] = {}
    for record in best:
        steps = [float(p[0]) for p in record.curves[metric]]
        values = [sign * float(p[1]) for p in record.curves[metric]]  # lower is better
        tolerance = noise.value if noise.value > 0 else 0.01 * abs(min(values)) or 1e-12
        for kind, numbers in _shapes(steps, values, tolerance).items():
            found.setdefault(kind, []).append({"trial": record.number, **numbers})
    overfit = {row["trial"] for row in found.get("overfitting", [])}
    regularisation = _regularisation([r for r in best if r.number in overfit])
    return [_finding(kind, rows, len(best), metric, regularisation) for kind, rows in found.items()]


def _shapes(steps: list[float], values: list[float], tolerance: float) -> dict[str, dict[str, float]]:
    """Which of the four shapes a curve has; values are oriented so lower is better."""
    shapes: dict[str, dict[str, float]] = {}
    end = steps[-1]
    low = min(range(len(values)), key=values.__getitem__)
    rise = values[-1] - values[low]
    if low < len(values) - 1 and rise > tolerance:
        shapes["overfitting"] = {"best_step": steps[low], "rise": rise, "noise": tolerance}
    late = [v for s, v in zip(steps, values, strict=True) if s >= LATE * end]
    if len(late) >= 3:
        jitter = statistics.stdev(b - a for a, b in itertools.pairwise(late))
        if jitter > tolerance:
            shapes["late_variance"] = {"step_to_step_std": jitter, "noise": tolerance}
    before_late = [v for s, v in zip(steps, values, strict=True) if s <= LATE * end]
    gain = (before_late[-1] - values[-1]) if before_late else 0.0
    if low == len(values) - 1 and gain > tolerance:
        shapes["still_improving"] = {"gain_in_last_quarter": gain, "noise": tolerance}
    reached = next(i for i, v in enumerate(values) if v <= values[low] + tolerance)
    if "overfitting" not in shapes and steps[reached] <= EARLY * end and low > reached:
        shapes["flat"] = {"flat_from_step": steps[reached], "last_step": end, "noise": tolerance}
    return shapes


def _regularisation(records: Sequence[TrialRecord]) -> str:
    """How to regularise more, given the weight decay the trials already train with."""
    configs = [r.adam for r in records if r.adam is not None]
    if configs and all(c.decoupled for c in configs):
        decays = ", ".join(f"{d:g}" for d in sorted({c.weight_decay for c in configs}))
        return f"add more weight decay than these trials' {decays} (tune it: add weight_decay to --tune)"
    return "add regularisation (weight decay: --optimizer adamw or nadamw)"


def _finding(
    kind: str, rows: list[dict[str, float]], count: int, metric: str, regularisation: str
) -> Finding:
    trials = ", ".join(str(int(row["trial"])) for row in rows)
    share = f"{len(rows)} of the best {count} trials ({trials})"
    numbers = {"trials": rows}
    if kind == "overfitting":
        return Finding(
            "curves",
            "warning",
            f"{share}: {metric} rose after its best value by more than the noise "
            f"(by {max(r['rise'] for r in rows):.3g}): overfitting.",
            numbers,
            "The objective keeps the best value during training, so the ranking stands; to use "
            f"more of the training, {regularisation} or more data, or stop training near the "
            "best step.",
        )
    if kind == "late_variance":
        return Finding(
            "curves",
            "warning",
            f"{share}: {metric} jumps from one evaluation to the next late in training by more "
            "than the noise.",
            numbers,
            "Decay the learning rate late in training, or use a larger batch, before comparing "
            "trials on their final values.",
        )
    if kind == "still_improving":
        return Finding(
            "curves",
            "warning",
            f"{share}: {metric} was still improving at the end: training is compute-bound.",
            numbers,
            "Train longer (for example twice the steps) before trusting the comparison.",
        )
    return Finding(
        "curves",
        "info",
        f"{share}: {metric} was flat, within the noise of its best, from step "
        f"{min(r['flat_from_step'] for r in rows):g} of {rows[0]['last_step']:g}: not compute-bound.",
        numbers,
        "Train for fewer steps and spend the compute on more trials.",
    )
