"""The recommendation on a loss that spans decades: GP fitted to the values, or to their logs?

    python benchmarks/quality_regression.py                  # budgets 20 and 50, 50 studies each
    python benchmarks/quality_regression.py --budgets 20 --reps 5

The tuning-quality tables (docs/benchmarks.md) score error rates and a language model's loss,
whose worst trials are at most about 18 times their best. A regression's mean squared error
is another kind of value: an untrained model's is 100 times a tuned one's. Optuna's GP, fitted
to such values, spends its scale on the bad region, and its noise estimate, which decides
which trials are "within the noise of the best", can be 40 times the real seed noise.

Each study tunes a small MLP (20-64-1, 200 steps of batch 32) on a fixed synthetic linear
regression with the playbook strategy, real training, no confirmation. Its trials are then
chosen from twice, by ``adamtune.choice.recommend`` with the values as they are and with
their logs (``scale="linear"`` and ``"log"``), and every chosen configuration is retrained
on ``SEEDS`` fresh seeds: its true quality is the mean of those validation losses. The best
observed trial is scored too. Results: ``benchmarks/results/quality_regression.json``.

    python benchmarks/quality_regression.py --exploit       # the exploitation GP: values or logs

``--exploit`` runs each study twice, its exploitation round's GP fitted to the values as they
are (the product) and to their logs where they span a decade or more (``logged_gp``, a
variant tried and not kept), and scores the product's recommendation of each. Results:
``benchmarks/results/quality_regression_exploit.json``.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")

import optuna
import torch

import adamtune
from adamtune.adaptive import PrunedAwareGPSampler
from adamtune.choice import recommend
from adamtune.scale import value_scale

optuna.logging.set_verbosity(optuna.logging.WARNING)
RESULTS = Path(__file__).parent / "results"
SEEDS = 5
"""Fresh seeds each chosen configuration is retrained on."""
FRESH_SEED = 1_000_000
"""The fresh seeds are FRESH_SEED, FRESH_SEED + 1, ...: no study draws these."""


def _data() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1234)
    x = torch.randn(512, 20, generator=generator)
    y = x @ torch.randn(20, 1, generator=generator) + 0.3 * torch.randn(512, 1, generator=generator)
    return x[:400], y[:400], x[400:], y[400:]


def train(adam: adamtune.AdamConfig, seed: int, trial: adamtune.Trial | None = None) -> float:
    """The best validation MSE of 200 steps (every 20), reported to ``trial`` where given."""
    x, y, x_val, y_val = _data()
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(20, 64), torch.nn.ReLU(), torch.nn.Linear(64, 1))
    optimizer = adam.make_optimizer(model.parameters())
    best = math.inf
    for step in range(200):
        batch = torch.randint(0, 400, (32,))
        loss = torch.nn.functional.mse_loss(model(x[batch]), y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 20 == 19:
            with torch.no_grad():
                value = torch.nn.functional.mse_loss(model(x_val), y_val).item()
            best = min(best, value)
            if trial is not None:
                trial.report(step, train_loss=loss.item(), val_loss=value)
    return best


def objective(trial: adamtune.Trial) -> float:
    return train(trial.adam, trial.seed, trial)


def true_quality(record: adamtune.TrialRecord | None, quality: dict[adamtune.AdamConfig, float]) -> float:
    assert record is not None and record.adam is not None
    if record.adam not in quality:
        quality[record.adam] = float(np.mean([train(record.adam, FRESH_SEED + k) for k in range(SEEDS)]))
    return quality[record.adam]


def one_study(budget: int, rep: int, quality: dict[adamtune.AdamConfig, float]) -> dict[str, Any]:
    study = adamtune.tune(objective, budget=budget, seed=rep, storage="memory", confirm=0, progress=None)
    records, space = study.trials, study.info.space
    values = [r.value for r in records if r.value is not None and math.isfinite(r.value)]
    chosen = {
        "observed": study.best,
        "linear": recommend(records, space, "minimize", scale="linear"),
        "log": recommend(records, space, "minimize", scale="log"),
    }
    row: dict[str, Any] = {"budget": budget, "rep": rep, "spread": max(values) / min(values)}
    for rule, pick in chosen.items():
        record = pick if isinstance(pick, adamtune.TrialRecord) else pick.record if pick else None
        assert record is not None
        row[rule] = {"trial": record.number, "observed": record.value, "true": true_quality(record, quality)}
    return row


def logged_gp(trials: list[Any], direction: str) -> list[Any]:
    """The variant: the exploitation GP's trials valued at the logs of their values where
    ``value_scale`` reads them so (stand-ins: the study keeps its values)."""
    values = [float(t.values[0]) for t in trials]
    if value_scale(values, direction) != "log":
        return trials
    stand_ins = []
    for trial, value in zip(trials, values, strict=True):
        stand_in = copy.copy(trial)
        stand_in.values = [math.log(value)]
        stand_ins.append(stand_in)
    return stand_ins


def one_exploit_pair(budget: int, rep: int, quality: dict[adamtune.AdamConfig, float]) -> dict[str, Any]:
    """The same study with the exploitation GP on the values and on their logs."""
    row: dict[str, Any] = {"budget": budget, "rep": rep}
    product = PrunedAwareGPSampler._sample_relative_impl

    def on_logs(self: PrunedAwareGPSampler, study: optuna.Study, trials: list[Any], *rest: Any) -> Any:
        return product(self, study, logged_gp(trials, study.direction.name.lower()), *rest)

    for arm in ("values", "logs"):
        if arm == "logs":
            PrunedAwareGPSampler._sample_relative_impl = on_logs  # type: ignore[method-assign]
        try:
            study = adamtune.tune(
                objective, budget=budget, seed=rep, storage="memory", confirm=0, progress=None
            )
        finally:
            PrunedAwareGPSampler._sample_relative_impl = product  # type: ignore[method-assign]
        recommended = study.recommended
        record = recommended.record if recommended else None
        row[arm] = {"trial": record.number if record else None, "true": true_quality(record, quality)}
    return row


def exploit_summary(rows: list[dict[str, Any]]) -> list[str]:
    lines = []
    for budget in sorted({r["budget"] for r in rows}):
        cell = [r for r in rows if r["budget"] == budget]
        values = [r["values"]["true"] for r in cell]
        logs = [r["logs"]["true"] for r in cell]
        better = sum(b < a for a, b in zip(values, logs, strict=True))
        worse = sum(b > a for a, b in zip(values, logs, strict=True))
        lines.append(
            f"budget {budget}, {len(cell)} studies: true validation MSE of the recommendation, "
            f"median (mean): exploitation GP on values {np.median(values):.4f} ({np.mean(values):.4f}), "
            f"on logs {np.median(logs):.4f} ({np.mean(logs):.4f}); logs better in {better}, worse in {worse}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", default="20,50")
    parser.add_argument("--reps", type=int, default=50)
    parser.add_argument(
        "--exploit", action="store_true", help="compare the exploitation GP on values and logs"
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    name = "quality_regression_exploit" if args.exploit else "quality_regression"
    out = args.out or RESULTS / f"{name}.json"
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    quality: dict[adamtune.AdamConfig, float] = {}
    if args.exploit:
        for budget in (int(b) for b in args.budgets.split(",")):
            rows += [one_exploit_pair(budget, rep, quality) for rep in range(args.reps)]
        summary = [*exploit_summary(rows), f"{time.perf_counter() - started:.0f} s"]
        print("\n".join(summary))
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"summary": summary, "rows": rows}, indent=2))
        return
    for budget in (int(b) for b in args.budgets.split(",")):
        for rep in range(args.reps):
            rows.append(one_study(budget, rep, quality))
    lines = []
    for budget in sorted({r["budget"] for r in rows}):
        cell = [r for r in rows if r["budget"] == budget]
        medians = {
            rule: float(np.median([r[rule]["true"] for r in cell])) for rule in ("observed", "linear", "log")
        }
        log_better = sum(r["log"]["true"] < r["linear"]["true"] for r in cell)
        log_worse = sum(r["log"]["true"] > r["linear"]["true"] for r in cell)
        mean_diff = float(np.mean([r["log"]["true"] - r["linear"]["true"] for r in cell]))
        spread = float(np.median([r["spread"] for r in cell]))
        lines.append(
            f"budget {budget}, {len(cell)} studies (median worst/best {spread:.0f}x): true validation MSE, "
            f"median of the chosen: best observed {medians['observed']:.4f}, GP on values "
            f"{medians['linear']:.4f}, GP on logs {medians['log']:.4f}; logs better in {log_better}, "
            f"worse in {log_worse}, mean difference {mean_diff:+.4f}"
        )
    lines.append(f"{time.perf_counter() - started:.0f} s")
    print("\n".join(lines))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"summary": lines, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
