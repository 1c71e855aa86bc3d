"""Which trial to recommend: of the best observed ones that are within the noise of each other,
the one a GP of the whole study rates best.

A trial's value is one noisy measurement (one seed). Among many near-equal trials the best
observed one is most often a lucky draw (the winner's curse), and the playbook warns against
trusting it (PLAYBOOK.md section 5). Every trial around it is evidence too: a Gaussian process
fitted to all of the study's feasible trials pools them, and its posterior mean at a trial is
that trial's value with the noise partly averaged out.

The candidates are the ``TOP`` best observed trials whose values lie within the GP's noise
(one standard deviation) of the best observation: the ones a rerun could plausibly put first.
Of those, the one with the best posterior mean is recommended. Only those: a smooth model
misjudges a cliff (a learning rate just below divergence), so it may re-rank trials that were
measured about as good as the best, never promote one that was not; and where the best trial
stands clear of the others by more than the noise, it is recommended as it is.

The GP is Optuna's own, the model its ``GPSampler`` (and so adamtune's exploitation round)
uses, on the study's search scale. A loss that spans a decade or more (``adamtune.scale``: a
regression's MSE, 100 times its best in untrained trials) is fitted as its logs: fitted to the
values themselves, the GP spent its scale on the bad trials and put the noise at several times
the seed noise, and its choice was worse than the best observation in 19 of 50 studies and
better in 6 (``benchmarks/quality_regression.py``; as logs, 6 and 6).

Its fit costs the cube of the trials it is given (27 s at 2000 trials on 2 cores), so a study
of more than ``GP_TRIALS`` feasible trials fits it to the ``GP_TRIALS`` nearest the best
observed ones: the neighbourhood that vouches for them. The rule and its alternatives were
measured on the tuning-quality benchmark (docs/benchmarks.md, "The recommendation"), whose
studies are all smaller than that.
"""

from __future__ import annotations

import logging
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from adamtune.outcomes import State
from adamtune.records import TrialRecord
from adamtune.scale import ValueScale, value_scale
from adamtune.space import SearchSpace

logger = logging.getLogger("adamtune")

TOP = 5
"""At most this many best observed trials are candidates."""
MIN_FEASIBLE = 4
"""Fewer feasible trials than this: too few to fit a GP, the best observed trial is recommended."""
GP_TRIALS = 300
"""The GP is fitted to at most this many trials (about 1 s on 2 cores): those nearest the best."""


@dataclass(frozen=True)
class Recommendation:
    """The trial to adopt, its GP posterior mean (None without a GP) and why it was chosen."""

    record: TrialRecord
    posterior: float | None
    reason: str

    def to_dict(self, names: Sequence[str]) -> dict[str, Any]:
        return {
            "number": self.record.number,
            "value": self.record.value,
            "params": self.record.params(names),
            "posterior_mean": self.posterior,
            "reason": self.reason,
        }


def recommended_line(recommendation: Recommendation | None, best: TrialRecord) -> tuple[str, bool] | None:
    """The line "recommended: trial N, why" where the recommendation is another trial than
    ``best`` (None where it is ``best`` or there is none), and whether it is ``best``'s
    configuration: its other run, as after a remeasure round, where one table of values is
    enough."""
    if recommendation is None or recommendation.record.number == best.number:
        return None
    chosen = recommendation.record
    same = chosen.adam is not None and chosen.adam.matches(best.adam)
    which = f", the configuration of trial {best.number}:" if same else ","
    return f"recommended: trial {chosen.number}{which} {recommendation.reason}", same


def recommend(
    records: Sequence[TrialRecord],
    space: SearchSpace,
    direction: Literal["minimize", "maximize"],
    scale: ValueScale | None = None,
) -> Recommendation | None:
    """The trial to recommend among ``records`` (None when no trial is complete and feasible).
    ``scale``: "log" fits the GP to the logs of the values, and reads the noise in log units;
    None: as ``adamtune.scale.value_scale`` reads the values."""
    usable = feasible(records)
    if not usable:
        return None
    ordered = best_first(usable, direction)
    best = ordered[0]
    if len(usable) < MIN_FEASIBLE:
        return Recommendation(
            best, None, f"the best observed trial ({len(usable)} feasible: too few for a GP)"
        )
    fit = _study_fit(usable, ordered[:TOP], space, direction, scale)
    if isinstance(fit, str):
        return Recommendation(best, None, f"the best observed trial ({fit})")
    top = ordered[:TOP]
    candidates = [r for r in top if fit.fitted_value(r) - fit.fitted_value(best) <= fit.noise]
    chosen = min(candidates, key=lambda r: (fit.means[r.number], r.number))
    posterior = fit.in_values(fit.means[chosen.number])
    noise = fit.noise
    # In log units the noise is a factor: sd 0.0953 is 10% of the value.
    sd = f"sd {noise:.3g} of the values' logs, {math.expm1(noise):.0%}" if fit.logged else f"sd {noise:.3g}"
    within = f"{len(candidates)} best observed within the noise ({sd}) of the best"
    if len(candidates) == 1:
        reason = f"the best observed trial: no other lies within the noise ({sd}) of it"
    elif chosen.number == best.number:
        reason = f"the best observed trial, also the best GP posterior mean of the {within}"
    else:
        reason = (
            f"the best GP posterior mean ({posterior:.6g}) of the {within}; trial {best.number}, "
            f"observed best at {best.value:.6g}, has {fit.in_values(fit.means[best.number]):.6g}"
        )
    return Recommendation(chosen, posterior, reason)


def remeasure_candidates(
    records: Sequence[TrialRecord],
    space: SearchSpace,
    direction: Literal["minimize", "maximize"],
    count: int,
    pool: int,
) -> tuple[list[TrialRecord], str]:
    """The ``count`` trials worth training again, and how they were chosen (for the user): of
    the ``pool`` best observed configurations (one trial each, its best observation), those
    with the best GP posterior means, best first. Without a GP (too few feasible trials, or no
    fit): the ``count`` best observed."""
    ordered = best_configurations(records, direction)
    fit = (
        f"{len(ordered)} feasible configurations: too few for a GP"
        if len(ordered) < MIN_FEASIBLE
        else _study_fit(feasible(records), ordered[:pool], space, direction, None)
    )
    if isinstance(fit, str):
        return ordered[:count], f"the {min(count, len(ordered))} best observed configurations ({fit})"
    chosen = sorted(ordered[:pool], key=lambda r: (fit.means[r.number], r.number))[:count]
    shown = min(pool, len(ordered))
    return chosen, f"the {len(chosen)} best GP posterior means of the {shown} best observed configurations"


def recommend_remeasured(
    candidates: Sequence[TrialRecord],
    again: Sequence[TrialRecord],
    direction: Literal["minimize", "maximize"],
) -> Recommendation | None:
    """Of ``candidates`` (trials trained again, best GP posterior mean first), the one whose
    results in ``again`` (the fresh runs) are best on average; None when none has a fresh result.

    Only the fresh results count: a candidate's first result is the best of many draws (it is
    among the study's best observations because it was lucky as much as good), a fresh one is
    not. A candidate whose fresh run diverged or failed is not chosen."""
    sign = 1.0 if direction == "minimize" else -1.0
    trained = feasible(again)
    fresh: dict[int, list[float]] = {}
    for candidate in candidates:
        runs = [r for r in trained if r.adam is not None and r.adam.matches(candidate.adam)]
        if runs:
            fresh[candidate.number] = [float(r.value or 0.0) for r in runs]
    if not fresh:
        return None
    position = {c.number: k for k, c in enumerate(candidates)}
    chosen = min(
        (c for c in candidates if c.number in fresh),
        key=lambda c: (sign * statistics.fmean(fresh[c.number]), position[c.number]),
    )
    shown = ", ".join(
        f"trial {c.number} {c.value:.6g} then {statistics.fmean(fresh[c.number]):.6g}"
        if c.number in fresh
        else f"trial {c.number} {c.value:.6g} then no result"
        for c in candidates
    )
    reason = (
        f"the best fresh result of the {len(candidates)} candidates trained again on a fresh seed "
        f"(first result, then the fresh one: {shown}); a first result is the best of many draws, "
        "a fresh one is not"
    )
    return Recommendation(chosen, None, reason)


def feasible(records: Sequence[TrialRecord]) -> list[TrialRecord]:
    """The complete, feasible trials with a configuration and a finite value."""
    return [
        r
        for r in records
        if r.state == State.COMPLETE and r.adam is not None and r.value is not None and math.isfinite(r.value)
    ]


def best_configurations(
    records: Sequence[TrialRecord], direction: str, count: int | None = None
) -> list[TrialRecord]:
    """The complete, feasible trials with distinct configurations (each its best trial), best
    first; at most ``count`` of them (None: all)."""
    chosen: list[TrialRecord] = []
    for record in best_first(feasible(records), direction):
        if len(chosen) == count:
            break
        if not any(record.adam is not None and record.adam.matches(other.adam) for other in chosen):
            chosen.append(record)
    return chosen


def best_first(records: Sequence[TrialRecord], direction: str) -> list[TrialRecord]:
    """``records`` by observed value, best first (ties: the earlier trial)."""
    sign = 1.0 if direction == "minimize" else -1.0
    return sorted(records, key=lambda r: (sign * (r.value or 0.0), r.number))


@dataclass(frozen=True)
class _StudyFit:
    """Optuna's GP fitted to a study's feasible trials: posterior means (lower is better, on
    the fitted scale: the values' logs where ``logged``, else the values times ``sign``) of
    the trials it was fitted to, by trial number, and its noise sd on that scale."""

    means: dict[int, float]
    noise: float
    logged: bool
    sign: float

    def fitted_value(self, record: TrialRecord) -> float:
        value = float(record.value or 0.0)
        return math.log(value) if self.logged else self.sign * value

    def in_values(self, mean: float) -> float:
        """A posterior mean in the values' units."""
        return math.exp(mean) if self.logged else self.sign * mean


def _study_fit(
    usable: Sequence[TrialRecord],
    anchors: Sequence[TrialRecord],
    space: SearchSpace,
    direction: Literal["minimize", "maximize"],
    scale: ValueScale | None,
) -> _StudyFit | str:
    """The GP of ``usable`` (at most ``GP_TRIALS`` of them: the ``anchors`` and those nearest
    them), or why there is none."""
    x = _unit_coordinates(usable, space)
    if x.shape[1] == 0:
        return "every trial has the same configuration"
    sign = 1.0 if direction == "minimize" else -1.0
    values = np.array([r.value or 0.0 for r in usable])
    scale = scale or value_scale(values.tolist(), direction)
    logged = scale == "log" and direction == "minimize" and bool(values.min() > 0)
    y = np.log(values) if logged else sign * values
    position = {r.number: i for i, r in enumerate(usable)}
    fitted_rows = nearest_rows(x, [position[r.number] for r in anchors], GP_TRIALS)
    fitted = posterior_means(x[fitted_rows], y[fitted_rows])
    if fitted is None:
        return "the GP could not be fitted"
    means = {usable[row].number: float(fitted[0][i]) for i, row in enumerate(fitted_rows)}
    return _StudyFit(means, fitted[1], logged, sign)


def nearest_rows(x: np.ndarray, anchors: Sequence[int], limit: int) -> np.ndarray:
    """The rows of ``x`` to fit a GP to: all of them if at most ``limit``, else the ``anchors``
    and the rows nearest to one of them (Euclidean on the search scale), ``limit`` in all, in
    their order in ``x``."""
    if len(x) <= limit:
        return np.arange(len(x))
    distances = np.min(np.linalg.norm(x[:, None, :] - x[None, list(anchors), :], axis=2), axis=1)
    distances[list(anchors)] = -1.0  # kept whatever else shares their place
    return np.sort(np.argsort(distances, kind="stable")[:limit])


def _unit_coordinates(records: Sequence[TrialRecord], space: SearchSpace) -> np.ndarray:
    """Each trial on the search scale of ``space`` (0 and 1 at a range's ends), one column per
    hyperparameter that varies among the trials."""
    columns = []
    for spec in space.specs:
        values = [getattr(r.adam, spec.name) for r in records]
        if max(values) == min(values):
            continue
        if spec.scale == "log1m" and not all(v < 1 for v in values):
            continue
        if spec.scale != "log1m" and not all(v > 0 for v in values):
            continue  # weight decay 0 (not tuned in some round) has no place on a log scale
        columns.append([spec.unit_from_value(v) for v in values])
    return np.array(columns, dtype=float).T.reshape(len(records), len(columns))


@dataclass(frozen=True)
class FittedGP:
    """Optuna's GP fitted to standardised values: its posterior mean at the fitted points and
    its noise standard deviation (both in the values' units), and its length scales."""

    means: np.ndarray
    noise: float
    length_scales: np.ndarray


def fit_gp(x: np.ndarray, y: np.ndarray) -> FittedGP | None:
    """Optuna's GP (the model of its ``GPSampler``) fitted to ``(x, y)``, ``x`` on the search
    scale; None if it cannot be fitted. Values all equal: no fit, infinite length scales."""
    try:
        import torch
        from optuna._gp import gp, prior
    except ImportError as error:  # a future Optuna may move its GP module
        logger.warning("no GP (%s): going on without it (best observed trial, whole ranges)", error)
        return None
    mean, std = float(np.mean(y)), float(np.std(y))
    if std == 0.0:
        return FittedGP(np.full(len(y), mean), 0.0, np.full(x.shape[1], np.inf))
    try:
        regressor = gp.fit_kernel_params(
            X=x,
            Y=(y - mean) / std,
            is_categorical=np.zeros(x.shape[1], dtype=bool),
            log_prior=prior.default_log_prior,
            minimum_noise=prior.DEFAULT_MINIMUM_NOISE_VAR,
            deterministic_objective=False,
        )
        with torch.no_grad():
            posterior, _ = regressor.posterior(torch.from_numpy(x))
            scales = np.asarray(regressor.length_scales, dtype=float)
    except (RuntimeError, TypeError, AttributeError, ValueError) as error:
        logger.warning("GP fit failed (%s): going on without it (best observed trial, whole ranges)", error)
        return None
    noise = math.sqrt(float(regressor.noise_var)) * std
    return FittedGP(np.asarray(posterior.numpy(), dtype=float) * std + mean, noise, scales)


def posterior_means(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float] | None:
    """The posterior mean at ``x`` of Optuna's GP fitted to ``(x, y)`` and its noise standard
    deviation, in the units of ``y`` (None if it cannot be fitted)."""
    fitted = fit_gp(x, y)
    return None if fitted is None else (fitted.means, fitted.noise)
