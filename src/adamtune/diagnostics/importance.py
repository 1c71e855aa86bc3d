"""Importance of each tuned hyperparameter (fANOVA), with a warning when trials are too few."""

from __future__ import annotations

import optuna
from optuna.importance import FanovaImportanceEvaluator, get_param_importances
from optuna.trial import TrialState

from adamtune.diagnostics._base import Finding
from adamtune.space import SearchSpace

MIN_TRIALS = 15
"""fANOVA ranked correctly on 15 trials where PED-ANOVA did not (PLAYBOOK.md section 7)."""
PER_DIMENSION = 5


def minimum_trials(dimensions: int) -> int:
    return max(MIN_TRIALS, PER_DIMENSION * dimensions)


def importance(study: optuna.Study, space: SearchSpace) -> list[Finding]:
    if len(space.tuned) < 2:
        return []
    done = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    if len(done) < 2:
        return []
    names = {spec.param_name: spec.name for spec in space.tuned_specs}
    scores = get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=0), params=list(names))
    shares = {names[param]: float(score) for param, score in scores.items()}
    text = ", ".join(f"{name} {share:.0%}" for name, share in shares.items())
    needed = minimum_trials(len(space.tuned))
    numbers = {"importance": shares, "trials": len(done), "minimum_trials": needed}
    if len(done) < needed:
        return [
            Finding(
                "importance",
                "warning",
                f"fANOVA importance over {len(done)} trials: {text}. Below {needed} trials "
                f"for {len(space.tuned)} hyperparameters this ranking means little.",
                numbers,
                "Do not drop a hyperparameter from the search on this ranking alone.",
            )
        ]
    return [Finding("importance", "info", f"fANOVA importance over {len(done)} trials: {text}.", numbers)]
