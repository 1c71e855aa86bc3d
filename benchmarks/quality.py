"""Tuning-quality benchmark: adamtune's strategies against Optuna's samplers and random search.

Every method tunes Adam against a surrogate of a real training table (``benchmarks/tables``,
made by ``benchmarks/quality_tables.py``): a Gaussian process fitted to the seed-mean best
validation loss of thousands of quasi-random configurations, plus a nearest-neighbour
classifier of divergence, plus seed noise drawn with the table's pooled seed spread. So each
method's choice can be scored by its true (surrogate) mean, not its lucky observation.

    python benchmarks/quality.py fidelity              # the surrogates' held-out fidelity
    python benchmarks/quality.py compare --quick       # under 10 minutes
    python benchmarks/quality.py compare               # the full comparison (make bench)
    python benchmarks/quality.py live                  # real training at budget 20 (MNIST-1D MLP)
    python benchmarks/quality.py overview --gaps       # the saved results' tables, and the gaps
    python benchmarks/quality.py overview --name quality_fresh --also quality   # reps 0-99

Regret of a choice x on a workload: (mean(x) - best) / (median - best), with ``best`` the
surrogate mean of the table's best measured configuration and ``median`` the median surrogate
mean over the table: 0 is the best of the whole table, 1 a typical configuration, and a
negative regret a choice the surrogate rates above everything the table trained.
Methods (the chosen configuration is each method's best observed trial): adamtune's default
strategy (playbook, no confirmation), adamtune's quasi-random search, Optuna's TPE, GP and
QMC samplers with their defaults, random search, and quasi-random search with twice the budget.
Settings: "default" (the ranges of PLAYBOOK.md section 1; adamtune's tiers choose what it
tunes, the generic methods tune all four) and "wide" (lr 1e-5..1, 1-beta1 1e-3..0.5,
1-beta2 1e-4..0.1, eps 1e-10..1, all log). In both, the playbook's range expansions are
limited to the wide space (``limits``), the tables' space, where the surrogate is fitted.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

TABLES = Path(__file__).parent / "tables"
RESULTS = Path(__file__).parent / "results"
NAMES = ("lr", "beta1", "beta2", "eps")
WIDE = {"lr": (1e-5, 1.0), "beta1": (0.5, 0.999), "beta2": (0.9, 0.9999), "eps": (1e-10, 1.0)}
DEFAULT = {"lr": (1e-5, 1e-3), "beta1": (0.9, 0.999), "beta2": (0.99, 0.999), "eps": (1e-8, 1e-6)}
FIXED = {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}
METHODS = ("adamtune", "adamtune-qr", "tpe", "gp", "qmc", "random", "qr-2x")
GP_POINTS = 2500
FOLDS = 5
FIDELITY_RHO = 0.9
"""A surrogate is used only if its held-out Spearman rank correlation reaches this ..."""
FIDELITY_ERROR = 2.0
"""... and its held-out RMSE over the best quarter of the table (where every method's choice
is scored) is at most this many seed-noise standard deviations. The error over the whole
table is reported too: near the divergence edge a configuration can train on one side of a
cliff and its neighbours on the other, and a smooth surrogate misses such points by far more
than the seed noise of the configurations that train."""


def coordinates(config: dict[str, float]) -> np.ndarray:
    """The surrogate's inputs: log10 lr, log10(1 - beta1), log10(1 - beta2), log10 eps."""
    return np.array(
        [
            math.log10(config["lr"]),
            math.log10(1 - config["beta1"]),
            math.log10(1 - config["beta2"]),
            math.log10(config["eps"]),
        ]
    )


def seed_means(y: np.ndarray, cap: float) -> np.ndarray:
    """Per-configuration means over seeds (rows of ``y``), a diverged run (NaN) counted as
    ``cap`` and no run worse than it."""
    return np.asarray(np.mean(np.where(np.isnan(y), cap, np.minimum(y, cap)), axis=1))


@dataclass
class Table:
    workload: str
    x: np.ndarray  # (n, 4) coordinates
    y: np.ndarray  # (n, seeds) best validation loss; NaN where the run diverged
    cap: float  # the value a diverged run stands for (the loss of an untrained model)
    meta: dict[str, Any]

    @classmethod
    def load(cls, path: Path) -> Table:
        data = np.load(path, allow_pickle=False)
        meta = json.loads(str(data["meta"]))
        return cls(
            meta["workload"], data["x"].astype(float), data["y"].astype(float), float(meta["cap"]), meta
        )

    @property
    def diverged(self) -> np.ndarray:
        return np.asarray(np.isnan(self.y).mean(axis=1) >= 0.5)

    @property
    def means(self) -> np.ndarray:
        return seed_means(self.y, self.cap)

    @property
    def seed_sd(self) -> float:
        """Pooled seed standard deviation over configurations that trained on every seed."""
        ok = ~np.isnan(self.y).any(axis=1) & (self.y.max(axis=1) < self.cap)
        values = self.y[ok]
        return float(np.sqrt(np.mean(np.var(values, axis=1, ddof=1))))


class Surrogate:
    """GP mean of the seed-mean loss, kNN divergence, Gaussian seed noise."""

    def __init__(self, table: Table, rows: np.ndarray | None = None) -> None:
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel
        from sklearn.neighbors import KNeighborsClassifier

        rows = np.arange(len(table.x)) if rows is None else rows
        x, diverged, means = table.x[rows], table.diverged[rows], table.means[rows]
        self.cap = table.cap
        self.noise = table.seed_sd
        # No prediction may be much better than the best configuration trained: a GP can dip
        # below every observation where the table is sparse (at lr 0.5 it predicted 0.86 for a
        # configuration measured at 1.04, when the best of the table measured 1.00).
        self.floor = float(np.min(table.means[rows])) - 2 * self.noise
        self.classifier = KNeighborsClassifier(n_neighbors=5).fit(x, diverged)
        kernel = ConstantKernel() * Matern(length_scale=np.ones(4), length_scale_bounds=(1e-2, 1e3), nu=2.5)
        self.gp = GaussianProcessRegressor(kernel + WhiteKernel(), normalize_y=True, random_state=0)
        trained = np.flatnonzero(~diverged)
        if len(trained) > GP_POINTS:  # exact GP cost grows as n^3: fit on a random subset
            trained = np.random.default_rng(0).choice(trained, GP_POINTS, replace=False)
        self.gp.fit(x[trained], means[trained])

    def mean(self, x: np.ndarray) -> np.ndarray:
        x = np.atleast_2d(x)
        predicted = np.clip(self.gp.predict(x), self.floor, self.cap)
        return np.where(self.classifier.predict(x), self.cap, predicted)

    def diverges(self, x: np.ndarray) -> bool:
        return bool(self.classifier.predict(np.atleast_2d(x))[0])


def fidelity(table: Table, folds: int = FOLDS, seed: int = 0) -> dict[str, Any]:
    """Held-out fidelity by k-fold cross-validation: every configuration is predicted once by a
    surrogate fitted to the other folds. Rank correlation over every trained configuration;
    error in seed-noise units over all of them and over the best quarter of the table."""
    from scipy.stats import spearmanr

    order = np.random.default_rng(seed).permutation(len(table.x))
    predicted, actual, correct = [], [], []
    for held in np.array_split(order, folds):
        surrogate = Surrogate(table, np.setdiff1d(order, held))
        ok = held[~table.diverged[held]]
        predicted.append(np.minimum(surrogate.gp.predict(table.x[ok]), table.cap))  # divergence apart
        actual.append(table.means[ok])
        correct.append(surrogate.classifier.predict(table.x[held]) == table.diverged[held])
    guess, truth = np.concatenate(predicted), np.concatenate(actual)
    best_quarter = truth <= np.percentile(table.means[~table.diverged], 25)
    rho = float(spearmanr(guess, truth).statistic)
    rmse = float(np.sqrt(np.mean((guess - truth) ** 2)))
    rmse_best = float(np.sqrt(np.mean((guess - truth)[best_quarter] ** 2)))
    return {
        "folds": folds,
        "held_out": len(order),
        "spearman": round(rho, 4),
        "rmse": round(rmse, 5),
        "seed_sd": round(table.seed_sd, 5),
        "rmse_in_seed_sd": round(rmse / table.seed_sd, 3),
        "best_quarter_rmse_in_seed_sd": round(rmse_best / table.seed_sd, 3),
        "divergence_accuracy": round(float(np.mean(np.concatenate(correct))), 4),
        "usable": bool(rho >= FIDELITY_RHO and rmse_best <= FIDELITY_ERROR * table.seed_sd),
    }


def table_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def fidelity_of(path: Path, saved: Path | None = None) -> dict[str, Any]:
    """The fidelity of a table's surrogate, from the report ``saved`` (default: the main
    tables') when it was measured on this very table (cross-validating a 2048-configuration
    table takes minutes)."""
    saved = saved or RESULTS / "quality_fidelity.json"
    workload = path.stem
    if saved.exists():
        report = json.loads(saved.read_text()).get(workload, {})
        if report.get("table_sha256") == table_digest(path) and report.get("folds") == FOLDS:
            return dict(report)
    return measure_fidelity(path)


def measure_fidelity(path: Path) -> dict[str, Any]:
    return {**fidelity(Table.load(path)), "table_sha256": table_digest(path)}


# --- methods ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    table: str  # the table file
    workload: str
    setting: str  # "default" or "wide"
    method: str
    budget: int
    rep: int


class Objective:
    """The surrogate as a training run: noisy value, divergence as NaN."""

    def __init__(self, surrogate: Surrogate, rep: int) -> None:
        self.surrogate = surrogate
        self.rng = np.random.default_rng([rep, 12345])
        self.calls = 0

    def value(self, config: dict[str, float]) -> float:
        self.calls += 1
        x = coordinates(config)
        if self.surrogate.diverges(x):
            return math.nan
        mean = float(self.surrogate.mean(x)[0])
        return mean + float(self.rng.normal(0.0, self.surrogate.noise))


class LiveObjective(Objective):
    """Real training instead of the surrogate: the workload the table was trained on, for the
    table's steps, a fresh training seed per call (the surrogate is kept for its cap only)."""

    def __init__(self, surrogate: Surrogate, rep: int, steps: int, workload: str = "mnist1d-mlp") -> None:
        super().__init__(surrogate, rep)
        from adamtune.workloads import StdlibLmWorkload
        from adamtune.workloads.mnist1d import Mnist1dWorkload

        if workload.startswith("mnist1d-"):
            self.workload: Callable[..., Any] = Mnist1dWorkload(
                model=workload.removeprefix("mnist1d-"), steps=steps
            )  # type: ignore[arg-type]
        elif workload == "stdlib-lm":
            self.workload = StdlibLmWorkload(steps=steps)
        else:
            raise ValueError(f"live runs: expected mnist1d-mlp, mnist1d-cnn or stdlib-lm, got {workload!r}")

    def value(self, config: dict[str, float], seed: int | None = None) -> float:
        from adamtune.config import AdamConfig
        from adamtune.errors import Diverged

        self.calls += 1
        trial = _LiveTrial(AdamConfig(**config), seed if seed is not None else int(self.rng.integers(2**31)))
        try:
            return float(self.workload(trial)["val_loss"])  # type: ignore[arg-type]
        except Diverged:
            return math.nan


@dataclass
class _LiveTrial:
    """What the workload reads from a trial: its Adam configuration, seed and report."""

    adam: Any
    seed: int

    def report(self, step: int, **metrics: float) -> None:
        pass  # a live run is scored by its returned best value; its curve is not needed


LIVE_SEEDS = 3
"""Fresh seeds the chosen configuration of a live run is retrained on to score it."""


def adamtune_study(
    objective: Objective,
    run: Run,
    budget: int,
    strategy: str = "playbook",
    confirm: int = 0,
    confirm_top: int = 3,
) -> Any:
    """An adamtune study of ``objective`` in memory, with ``run``'s seed and setting."""
    import adamtune

    def train(trial: adamtune.Trial) -> float:
        return objective.value(trial.adam.as_dict())

    train.__name__ = "surrogate"  # type: ignore[attr-defined]
    return adamtune.tune(
        train,
        budget,
        storage="memory",
        seed=run.rep,
        strategy=strategy,  # type: ignore[arg-type]
        ranges=WIDE if run.setting == "wide" else None,
        # The table's space is the whole world the surrogate knows: beyond it the GP only
        # extrapolates, so the playbook may expand its ranges up to the table's edges only.
        limits=WIDE,
        confirm=confirm,
        confirm_top=confirm_top,
    )


def as_config(adam: Any) -> dict[str, float]:
    """An ``AdamConfig`` as the benchmark's dict (Adam's defaults when there is none)."""
    return dict(FIXED) if adam is None else {name: float(getattr(adam, name)) for name in NAMES}


def run_adamtune(objective: Objective, run: Run, strategy: str, budget: int) -> dict[str, float]:
    study = adamtune_study(objective, run, budget, strategy)
    if run.method == "qr-2x":
        # The playbook's bar is plain quasi-random search: it adopts its best observation.
        chosen = study.best
    else:
        recommendation = study.recommended  # what adamtune tells its user to adopt
        chosen = recommendation.record if recommendation is not None else None
    return as_config(chosen.adam if chosen is not None else None)


def run_optuna(objective: Objective, run: Run) -> dict[str, float]:
    import optuna

    ranges = WIDE if run.setting == "wide" else DEFAULT
    samplers: dict[str, Callable[[], optuna.samplers.BaseSampler]] = {
        "tpe": lambda: optuna.samplers.TPESampler(seed=run.rep),
        "gp": lambda: optuna.samplers.GPSampler(seed=run.rep),
        "qmc": lambda: optuna.samplers.QMCSampler(seed=run.rep),
        "random": lambda: optuna.samplers.RandomSampler(seed=run.rep),
    }
    study = optuna.create_study(sampler=samplers[run.method]())
    worst = objective.surrogate.cap

    def train(trial: optuna.Trial) -> float:
        config = {
            "lr": trial.suggest_float("lr", *ranges["lr"], log=True),
            "beta1": 1
            - trial.suggest_float(
                "one_minus_beta1", 1 - ranges["beta1"][1], 1 - ranges["beta1"][0], log=True
            ),
            "beta2": 1
            - trial.suggest_float(
                "one_minus_beta2", 1 - ranges["beta2"][1], 1 - ranges["beta2"][0], log=True
            ),
            "eps": trial.suggest_float("eps", *ranges["eps"], log=True),
        }
        value = objective.value(config)
        # A generic user returns a bad value for a diverged run (NaN would make the trial FAIL).
        return worst if math.isnan(value) else value

    study.optimize(train, n_trials=run.budget)
    params = study.best_trial.params
    return {
        "lr": params["lr"],
        "beta1": 1 - params["one_minus_beta1"],
        "beta2": 1 - params["one_minus_beta2"],
        "eps": params["eps"],
    }


def choose(objective: Objective, run: Run) -> dict[str, float]:
    """``run``'s method tuning ``objective``: the configuration it chooses."""
    if run.method == "adamtune":
        return run_adamtune(objective, run, "playbook", run.budget)
    if run.method == "adamtune-qr":
        return run_adamtune(objective, run, "quasi-random", run.budget)
    if run.method == "qr-2x":
        return run_adamtune(objective, run, "quasi-random", 2 * run.budget)
    return run_optuna(objective, run)


_SURROGATES: dict[str, tuple[Surrogate, float, float]] = {}


def surrogate_for(path: str) -> tuple[Surrogate, float, float]:
    """The surrogate of a table with the table's best and median surrogate means (cached)."""
    if path not in _SURROGATES:
        table = Table.load(Path(path))
        surrogate = Surrogate(table)
        means = surrogate.mean(table.x)
        # The best of the table is its best measured configuration, scored by its surrogate mean
        # (the minimum of the surrogate over the table would pick a GP dip in a sparse corner).
        best = float(means[int(np.argmin(table.means))])
        _SURROGATES[path] = (surrogate, best, float(np.median(means)))
    return _SURROGATES[path]


def execute(run: Run, live_steps: int | None = None) -> dict[str, Any]:
    """One method's run against the surrogate, or with real training when ``live_steps``."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    surrogate, best, median = surrogate_for(run.table)
    live = live_steps is not None
    objective = (
        LiveObjective(surrogate, run.rep, live_steps, run.workload)
        if live_steps
        else Objective(surrogate, run.rep)
    )
    started = time.perf_counter()
    chosen = choose(objective, run)
    surrogate_mean = float(surrogate.mean(coordinates(chosen))[0])
    true_mean = surrogate_mean
    extra: dict[str, Any] = {}
    if isinstance(objective, LiveObjective):
        # Scored by retraining on fresh seeds (the same seeds for every method of a repetition).
        values = [objective.value(chosen, seed=10**6 + 100 * run.rep + k) for k in range(LIVE_SEEDS)]
        cap = surrogate.cap
        true_mean = statistics.fmean(cap if math.isnan(v) else min(v, cap) for v in values)
        extra = {"retrained": values, "surrogate_mean": surrogate_mean}
    return {
        **{k: v for k, v in run.__dict__.items() if k != "table"},
        "chosen": chosen,
        "true_mean": true_mean,
        "regret": (true_mean - best) / (median - best),
        "trials": objective.calls - (LIVE_SEEDS if live else 0),
        "seconds": round(time.perf_counter() - started, 2),
        **extra,
    }


def execute_live(run: Run, steps: int) -> dict[str, Any]:
    return execute(run, live_steps=steps)


# --- summaries ----------------------------------------------------------------------------------


def summarise(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Median and IQR of regret, mean rank, and win rate against qr-2x, per cell."""
    summary: dict[str, Any] = {}
    keys = sorted({(r["workload"], r["setting"], r["budget"]) for r in results})
    for workload, setting, budget in keys:
        cell = [
            r for r in results if (r["workload"], r["setting"], r["budget"]) == (workload, setting, budget)
        ]
        reps = sorted({r["rep"] for r in cell})
        by = {(r["method"], r["rep"]): r["regret"] for r in cell}
        methods = [m for m in METHODS if any(r["method"] == m for r in cell)]
        ranks: dict[str, list[float]] = {m: [] for m in methods}
        for rep in reps:
            present = [m for m in methods if (m, rep) in by]
            ordered = sorted(present, key=lambda m: by[(m, rep)])
            for m in present:
                ties = [o for o in ordered if by[(o, rep)] == by[(m, rep)]]
                ranks[m].append(ordered.index(ties[0]) + 1 + (len(ties) - 1) / 2)
        rows = {}
        for m in methods:
            regrets = [by[(m, rep)] for rep in reps if (m, rep) in by]
            q1, q3 = np.percentile(regrets, [25, 75])
            wins = [
                1.0
                if by[(m, rep)] < by[("qr-2x", rep)]
                else 0.5
                if by[(m, rep)] == by[("qr-2x", rep)]
                else 0.0
                for rep in reps
                if (m, rep) in by and ("qr-2x", rep) in by
            ]
            rows[m] = {
                "median_regret": float(np.median(regrets)),
                "iqr": [float(q1), float(q3)],
                "mean_rank": statistics.fmean(ranks[m]),
                "win_rate_vs_qr2x": statistics.fmean(wins) if wins and m != "qr-2x" else None,
                "reps": len(regrets),
            }
        summary[f"{workload}/{setting}/{budget}"] = rows
    return summary


def markdown(summary: dict[str, Any]) -> str:
    lines = []
    for key, rows in summary.items():
        workload, setting, budget = key.split("/")
        lines.append(f"\n**{workload}, {setting} ranges, budget {budget}**\n")
        lines.append("| method | median regret | IQR | mean rank | win rate vs quasi-random 2x |")
        lines.append("|---|---|---|---|---|")
        for method, row in rows.items():
            win = "" if row["win_rate_vs_qr2x"] is None else f"{row['win_rate_vs_qr2x']:.0%}"
            lines.append(
                f"| {method} | {row['median_regret']:.3f} | {row['iqr'][0]:.3f}-{row['iqr'][1]:.3f} "
                f"| {row['mean_rank']:.2f} | {win} |"
            )
    return "\n".join(lines)


def overview(summary: dict[str, Any], workload: str) -> str:
    """One table per workload: every method's median regret (the lowest in bold), its
    interquartile range and its mean rank per budget and setting, and adamtune's win rate
    against quasi-random search with twice its budget."""
    lines = [
        f"| budget | setting | {' | '.join(METHODS)} | adamtune beats qr-2x |",
        "|---|---|" + "---|" * (len(METHODS) + 1),
    ]
    cells = sorted(
        (int(k.split("/")[2]), k.split("/")[1], rows)
        for k, rows in summary.items()
        if k.split("/")[0] == workload
    )
    for budget, setting, rows in sorted(cells, key=lambda c: (c[1], c[0])):
        lowest = min(row["median_regret"] for row in rows.values())
        medians = []
        for m in METHODS:
            row = rows[m]
            median = f"{row['median_regret']:.3f}"
            median = f"**{median}**" if row["median_regret"] == lowest else median
            medians.append(f"{median} ({row['iqr'][0]:.3f} to {row['iqr'][1]:.3f}) · {row['mean_rank']:.2f}")
        win = rows["adamtune"]["win_rate_vs_qr2x"]
        lines.append(f"| {budget} | {setting} | {' | '.join(medians)} | {win:.0%} |")
    return "\n".join(lines)


def standing(
    summary: dict[str, Any], workloads: Sequence[str], cells: set[tuple[str, str, int]] | None = None
) -> str:
    """How many cells adamtune's median is the lowest in (per workload too), and how many from
    budget 20 on it is below quasi-random search's with twice its budget: the counts the issue's
    goal is stated in. ``cells``: only these (workload, setting, budget); None: all."""
    led: dict[str, list[bool]] = {}
    ahead_of_qr2x = []
    for key, rows in sorted(summary.items()):
        workload, setting, budget_text = key.split("/")
        budget = int(budget_text)
        if workload not in workloads or (cells is not None and (workload, setting, budget) not in cells):
            continue
        ours = rows["adamtune"]["median_regret"]
        led.setdefault(workload, []).append(ours == min(row["median_regret"] for row in rows.values()))
        if budget >= 20 and "qr-2x" in rows:
            ahead_of_qr2x.append(ours < rows["qr-2x"]["median_regret"])
    flat = [x for w in led.values() for x in w]
    each = ", ".join(f"{w} {sum(v)} of {len(v)}" for w, v in led.items())
    return (
        f"adamtune's median is the lowest in {sum(flat)} of {len(flat)} cells ({each}), and below "
        f"quasi-random search's with twice the budget in {sum(ahead_of_qr2x)} of {len(ahead_of_qr2x)} "
        "from budget 20 on"
    )


GAP_RESAMPLES = 4000


def gap_interval(
    ours: Sequence[float], theirs: Sequence[float], seed: int = 0, level: float = 0.9
) -> tuple[float, float, float]:
    """The difference of medians (ours - theirs) and its bootstrap interval at ``level``: each
    method's repetitions resampled on their own (the methods' runs are not paired)."""
    rng = np.random.default_rng(seed)
    a, b = np.asarray(ours, dtype=float), np.asarray(theirs, dtype=float)
    draws_a = np.median(rng.choice(a, size=(GAP_RESAMPLES, len(a))), axis=1)
    draws_b = np.median(rng.choice(b, size=(GAP_RESAMPLES, len(b))), axis=1)
    low, high = np.quantile(draws_a - draws_b, [(1 - level) / 2, (1 + level) / 2])
    return float(np.median(a) - np.median(b)), float(low), float(high)


def gaps(results: Sequence[dict[str, Any]], workload: str, floor: float) -> str:
    """Every cell where adamtune's median is not the lowest: the method ahead, by how much, the
    90% bootstrap interval of that gap and the gap in seed sds of the table (``floor``: one
    seed sd in regret)."""
    lines = [
        "| budget | setting | ahead | gap | 90% interval | gap in seed sd |",
        "|---|---|---|---|---|---|",
    ]
    cells = sorted({(r["setting"], r["budget"]) for r in results if r["workload"] == workload})
    for setting, budget in cells:
        regrets: dict[str, list[float]] = {}
        for r in results:
            if (r["workload"], r["setting"], r["budget"]) == (workload, setting, budget):
                regrets.setdefault(r["method"], []).append(r["regret"])
        ahead = min(regrets, key=lambda m: float(np.median(regrets[m])))
        if ahead == "adamtune" or np.median(regrets[ahead]) == np.median(regrets["adamtune"]):
            continue
        gap, low, high = gap_interval(regrets["adamtune"], regrets[ahead])
        lines.append(
            f"| {budget} | {setting} | {ahead} | {gap:.3f} | {low:.3f} to {high:.3f} | {gap / floor:.2f} |"
        )
    return "\n".join(lines)


def noise_floor(path: str) -> float:
    """One seed standard deviation of the table, in normalised regret: a method whose regret
    is below it chose a configuration that one retraining cannot tell from the table's best."""
    _, best, median = surrogate_for(path)
    return Table.load(Path(path)).seed_sd / (median - best)


REGRET_TICKS = (-0.05, -0.02, -0.01, 0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)


def regret_ticks(axes: Any) -> None:
    """Label the regret axis at round values within its limits: symlog's own ticks are decades
    only, and a panel whose medians lie within one decade (the MLP's) showed a single label.
    A panel that spans less than two of ``REGRET_TICKS`` gets evenly spaced round values."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullLocator

    low, high = axes.get_ylim()
    ticks = [t for t in REGRET_TICKS if low <= t <= high]
    if len(ticks) < 3:
        ticks = [float(t) for t in MaxNLocator(5).tick_values(low, high) if low <= t <= high]
    axes.yaxis.set_major_locator(FixedLocator(ticks))
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axes.yaxis.set_minor_locator(NullLocator())


def plot(results: Sequence[dict[str, Any]], path: Path, floors: dict[str, float] | None = None) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    workloads = sorted({r["workload"] for r in results})
    settings = sorted({r["setting"] for r in results})
    figure = Figure(figsize=(5 * len(settings), 3.6 * len(workloads)), layout="constrained")
    FigureCanvasAgg(figure)
    axes_grid = figure.subplots(len(workloads), len(settings), squeeze=False)
    for i, workload in enumerate(workloads):
        for j, setting in enumerate(settings):
            axes = axes_grid[i][j]
            for method in METHODS:
                cells = [
                    r
                    for r in results
                    if (r["workload"], r["setting"], r["method"]) == (workload, setting, method)
                ]
                budgets = sorted({r["budget"] for r in cells})
                if not budgets:
                    continue
                medians = [
                    float(np.median([r["regret"] for r in cells if r["budget"] == b])) for b in budgets
                ]
                axes.plot(budgets, medians, "o-", label=method)
            if floors and workload in floors:
                axes.axhline(floors[workload], color="grey", linestyle=":", label="one seed sd")
            axes.set_xscale("log")
            shown = sorted({r["budget"] for r in results if r["workload"] == workload})
            axes.set_xticks(shown, [str(b) for b in shown])
            axes.minorticks_off()
            axes.set_yscale("symlog", linthresh=0.01)
            regret_ticks(axes)
            axes.set_title(f"{workload}, {setting} ranges")
            axes.set_xlabel("budget (trials)")
            axes.set_ylabel("median normalised regret")
            axes.legend(fontsize="x-small")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100, bbox_inches="tight")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["fidelity", "compare", "live", "overview"])
    parser.add_argument("--workloads", default=None, help="comma-separated; default: every table")
    parser.add_argument(
        "--budgets", help="comma-separated; default 8,20,50,100 (live: 20; overview: every saved one)"
    )
    parser.add_argument(
        "--reps",
        type=int,
        help="repetitions; default 50 (live: 4; overview: every saved one from --first-rep)",
    )
    parser.add_argument(
        "--first-rep",
        type=int,
        default=0,
        help="number of the first repetition (to add more with --merge; overview: the first shown)",
    )
    parser.add_argument("--settings", default="default,wide")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="budgets 8,20, 5 repetitions")
    parser.add_argument("--live", action="store_true", help="overview: of the live runs")
    parser.add_argument(
        "--rescore",
        action="store_true",
        help="live: no training; score the saved live runs of --workloads on their tables as they "
        "are now (a table that changed moves its best and median, so its regret scale)",
    )
    parser.add_argument(
        "--gaps",
        action="store_true",
        help="overview: the cells adamtune does not lead, with bootstrap intervals",
    )
    parser.add_argument("--tables", type=Path, default=TABLES, help="folder of WORKLOAD.npz tables")
    parser.add_argument("--unfit", action="store_true", help="use surrogates that fail the bar (trying only)")
    parser.add_argument(
        "--name",
        help="results as benchmarks/results/NAME.json and NAME_fidelity.json, for tables kept "
        "apart from the main ones (default: quality, quick: quality_quick)",
    )
    parser.add_argument(
        "--also",
        help="overview: comma-separated names of more saved results whose runs are added (a run "
        "of --name's with the same workload, setting, budget, method and repetition wins)",
    )
    parser.add_argument(
        "--merge",
        action="store_true",
        help="add to the saved results (a run with the same workload, setting, budget, method and "
        "repetition is replaced) instead of starting them afresh: one workload at a time",
    )
    args = parser.parse_args()
    # A table still being built is WORKLOAD.partial.npz: not a table yet.
    available = sorted(p.stem for p in args.tables.glob("*.npz") if not p.name.endswith(".partial.npz"))
    workloads = args.workloads.split(",") if args.workloads else available
    paths = {w: str(args.tables / f"{w}.npz") for w in workloads}
    fidelity_saved = RESULTS / f"{args.name or 'quality'}_fidelity.json"
    if args.what == "fidelity":
        report = {w: measure_fidelity(Path(paths[w])) for w in workloads}
        print(json.dumps(report, indent=2))
        RESULTS.mkdir(exist_ok=True)
        previous = json.loads(fidelity_saved.read_text()) if fidelity_saved.exists() else {}
        fidelity_saved.write_text(json.dumps({**previous, **report}, indent=2, sort_keys=True))
        return
    if args.what == "live":
        live(args, paths)
        return
    if args.what == "overview":  # the saved results, one table per workload (docs/benchmarks.md)
        shown = "quality_live" if args.live else args.name or "quality"
        also = args.also.split(",") if args.also else []
        missing = [n for n in [shown, *also] if not (RESULTS / f"{n}.json").exists()]
        if missing:
            parser.error(f"--name/--also: expected saved results in {RESULTS}, got no {missing[0]}.json")
        if args.budgets and not all(b.isdigit() for b in args.budgets.split(",")):
            parser.error(f"--budgets: expected comma-separated whole numbers, got {args.budgets!r}")
        saved = json.loads((RESULTS / f"{shown}.json").read_text())
        runs, summary = saved["runs"], saved["summary"]
        for other in also:
            runs = merge_runs(json.loads((RESULTS / f"{other}.json").read_text())["runs"], runs)
        if also or args.budgets or args.reps or args.first_rep:  # summarised afresh
            budgets = [int(b) for b in args.budgets.split(",")] if args.budgets else None
            runs = select_runs(runs, first_rep=args.first_rep, reps=args.reps, budgets=budgets)
            summary = summarise(runs)
        for workload in workloads:
            print(f"\n**{workload}**\n\n{overview(summary, workload)}")
            if args.gaps:
                floor = noise_floor(paths[workload])
                print(f"\nwhere adamtune's median is not the lowest:\n\n{gaps(runs, workload, floor)}")
        print(f"\n{standing(summary, workloads)}")
        if also:  # the cells --name has runs in, with every saved repetition of them
            named = {(r["workload"], r["setting"], r["budget"]) for r in saved["runs"]}
            print(f"of the {len(named)} cells with runs in {shown}: {standing(summary, workloads, named)}")
        return
    if args.quick:
        args.budgets, args.reps = args.budgets or "8,20", args.reps or 5
    args.budgets, args.reps = args.budgets or "8,20,50,100", args.reps or 50
    usable = [w for w in workloads if args.unfit or fidelity_of(Path(paths[w]), fidelity_saved)["usable"]]
    for left_out in sorted(set(workloads) - set(usable)):
        print(f"skipping {left_out}: its surrogate fails the fidelity bar")
    runs = [
        Run(paths[w], w, s, m, int(b), rep)
        for w in usable
        for s in args.settings.split(",")
        for b in args.budgets.split(",")
        for m in args.methods.split(",")
        for rep in range(args.first_rep, args.first_rep + args.reps)
    ]
    results = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for done, result in enumerate(pool.map(execute, runs), 1):
            results.append(result)
            if done % 20 == 0 or done == len(runs):
                print(f"{done}/{len(runs)} runs", flush=True)
    name = args.name or ("quality_quick" if args.quick else "quality")
    saved = RESULTS / f"{name}.json"
    RESULTS.mkdir(exist_ok=True)
    floors = {w: noise_floor(paths[w]) for w in usable}
    with open(RESULTS / f"{name}.lock", "w") as lock:
        # Two merging runs must not both read the saved results before either writes (that lost
        # one run's results once): read, merge and write under an exclusive lock.
        fcntl.flock(lock, fcntl.LOCK_EX)
        previous = json.loads(saved.read_text()) if args.merge and saved.exists() else {}
        if previous:
            results = merge_runs(previous["runs"], results)
            floors = {**previous.get("noise_floor", {}), **floors}
        summary = summarise(results)
        report = {
            "summary": summary,
            "noise_floor": floors,
            "written_with": written_with(previous),
            "runs": results,
        }
        saved.write_text(json.dumps(report, indent=2))
    plot(results, Path(__file__).parent.parent / "docs" / "img" / f"{name}.png", floors)
    print("one seed sd in normalised regret:", {w: round(f, 3) for w, f in floors.items()})
    print(markdown(summary))


def select_runs(
    runs: Sequence[dict[str, Any]],
    *,
    first_rep: int = 0,
    reps: int | None = None,
    budgets: Sequence[int] | None = None,
) -> list[dict[str, Any]]:
    """The runs of ``reps`` repetitions from ``first_rep`` on (None: every one from there) and
    of ``budgets`` (None: all)."""
    last = math.inf if reps is None else first_rep + reps
    return [r for r in runs if first_rep <= r["rep"] < last and (budgets is None or r["budget"] in budgets)]


def written_with(previous: dict[str, Any]) -> list[dict[str, Any]]:
    """A results file's record of what wrote it, with this run added: the date, the command line
    and the environment (the quality scripts that save results write one). adamtune's GP rounds
    repeat exactly only with the same libraries, processor and thread count ("Reproducing the
    comparison elsewhere" in docs/benchmarks.md)."""
    from adamtune.environment import current_environment

    entry = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": " ".join(["python", f"benchmarks/{Path(sys.argv[0]).name}", *sys.argv[1:]]),
        "environment": current_environment(),
    }
    return [*previous.get("written_with", []), entry]


def merge_runs(saved: Sequence[dict[str, Any]], new: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The saved runs with ``new`` added; a new run replaces a saved one of the same workload,
    setting, budget, method and repetition."""
    key = ("workload", "setting", "budget", "method", "rep")
    replaced = {tuple(r[k] for k in key) for r in new}
    return [r for r in saved if tuple(r[k] for k in key) not in replaced] + list(new)


def live(args: argparse.Namespace, paths: dict[str, str]) -> None:
    """Every method at budget 20 with real training (each table's workload and steps), the
    chosen configurations retrained on fresh seeds: does the surrogate's ordering hold?
    Added to the saved live runs (the same workload, setting, budget, method and repetition
    replaced)."""
    if args.rescore:
        rescore_live(args.workloads.split(",") if args.workloads else ["mnist1d-mlp"], paths)
        return
    runs, steps = [], {}
    for workload in args.workloads.split(",") if args.workloads else ["mnist1d-mlp"]:
        steps[workload] = int(Table.load(Path(paths[workload])).meta["steps"])
        runs += [
            Run(paths[workload], workload, s, m, int(b), rep)
            for s in args.settings.split(",")
            for b in (args.budgets or "20").split(",")
            for m in args.methods.split(",")
            for rep in range(args.first_rep, args.first_rep + (args.reps or 4))
        ]
    print(f"{len(runs)} live runs: {', '.join(f'{w} ({n} steps)' for w, n in steps.items())}", flush=True)
    results = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for done, result in enumerate(pool.map(execute_live, runs, [steps[r.workload] for r in runs]), 1):
            results.append(result)
            print(f"{done}/{len(runs)} runs ({result['method']}, {result['seconds']:.0f} s)", flush=True)
    save_live(lambda saved: merge_runs(saved, results))


def save_live(update: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]) -> None:
    """Write the saved live runs as ``update`` makes them of the saved ones (none at first),
    under an exclusive lock, with their summary; print it."""
    RESULTS.mkdir(exist_ok=True)
    saved = RESULTS / "quality_live.json"
    with open(RESULTS / "quality_live.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        previous = json.loads(saved.read_text()) if saved.exists() else {}
        runs = update(previous.get("runs", []))
        summary = summarise(runs)
        report = {"summary": summary, "written_with": written_with(previous), "runs": runs}
        saved.write_text(json.dumps(report, indent=2))
    print(markdown(summary))


def rescored(run: dict[str, Any], path: str) -> dict[str, Any]:
    """A saved live run scored on its table as it is now: the same retrained values (its true
    mean), the table's best and median, and the surrogate's mean at its choice, of today."""
    surrogate, best, median = surrogate_for(path)
    surrogate_mean = float(surrogate.mean(coordinates(run["chosen"]))[0])
    regret = (run["true_mean"] - best) / (median - best)
    return {**run, "regret": regret, "surrogate_mean": surrogate_mean}


def rescore_live(workloads: Sequence[str], paths: dict[str, str]) -> None:
    save_live(
        lambda saved: [
            rescored(run, paths[run["workload"]]) if run["workload"] in workloads else run for run in saved
        ]
    )


if __name__ == "__main__":
    main()
