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


def recommend(
    records: Sequence[TrialRecord],
    space: SearchSpace,
    direction: Literal["minimize", "maximize"],
    scale: ValueScale | None = None,
) -> Recommendation | None:
    """The trial to recommend among ``records`` (None when no trial is complete and feasible).
    ``scale``: "log" fits the GP to the logs of the values, and reads the noise in log units;
    None: as ``adamtune.scale.value_scale`` reads the values."""
    usable = [
        r
        for r in records
        if r.state == State.COMPLETE and r.adam is not None and r.value is not None and math.isfinite(r.value)
    ]
    if not usable:
        return None
    sign = 1.0 if direction == "minimize" else -1.0
    ordered = sorted(usable, key=lambda r: (sign * (r.value or 0.0), r.number))
    best = ordered[0]
    if len(usable) < MIN_FEASIBLE:
        return Recommendation(
            best, None, f"the best observed trial ({len(usable)} feasible: too few for a GP)"
        )
    x = _unit_coordinates(usable, space)
    if x.shape[1] == 0:
        return Recommendation(best, None, "the best observed trial (every trial has the same configuration)")
    values = np.array([r.value or 0.0 for r in usable])
    scale = scale or value_scale(values.tolist(), direction)
    logged = scale == "log" and direction == "minimize" and bool(values.min() > 0)
    y = np.log(values) if logged else sign * values
    position = {r.number: i for i, r in enumerate(usable)}
    fitted_rows = nearest_rows(x, [position[r.number] for r in ordered[:TOP]], GP_TRIALS)
    fitted = posterior_means(x[fitted_rows], y[fitted_rows])
    if fitted is None:
        return Recommendation(best, None, "the best observed trial (the GP could not be fitted)")
    means, noise = fitted
    index = {usable[row].number: i for i, row in enumerate(fitted_rows)}
    fitted_value = {r.number: float(y[position[r.number]]) for r in ordered[:TOP]}
    candidates = [r for r in ordered[:TOP] if fitted_value[r.number] - fitted_value[best.number] <= noise]
    chosen = min(candidates, key=lambda r: (means[index[r.number]], r.number))

    def in_values(mean: float) -> float:  # a posterior mean in the values' units
        return math.exp(mean) if logged else sign * mean

    posterior = in_values(float(means[index[chosen.number]]))
    # In log units the noise is a factor: sd 0.0953 is 10% of the value.
    sd = f"sd {noise:.3g} of the values' logs, {math.expm1(noise):.0%}" if logged else f"sd {noise:.3g}"
    within = f"{len(candidates)} best observed within the noise ({sd}) of the best"
    if len(candidates) == 1:
        reason = f"the best observed trial: no other lies within the noise ({sd}) of it"
    elif chosen.number == best.number:
        reason = f"the best observed trial, also the best GP posterior mean of the {within}"
    else:
        reason = (
            f"the best GP posterior mean ({posterior:.6g}) of the {within}; trial {best.number}, "
            f"observed best at {best.value:.6g}, has {in_values(float(means[index[best.number]])):.6g}"
        )
    return Recommendation(chosen, posterior, reason)


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
