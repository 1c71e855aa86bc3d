"""Importance of each tuned hyperparameter (fANOVA), with a warning when trials are too few."""

from __future__ import annotations

import math
from collections.abc import Sequence

import optuna
from optuna.importance import FanovaImportanceEvaluator, get_param_importances
from optuna.trial import create_trial

from adamtune.diagnostics._base import Finding
from adamtune.outcomes import State
from adamtune.records import TrialRecord
from adamtune.space import SearchSpace

MIN_TRIALS = 15
"""fANOVA ranked correctly on 15 trials where PED-ANOVA did not (PLAYBOOK.md section 7)."""
PER_DIMENSION = 5


def minimum_trials(dimensions: int) -> int:
    return max(MIN_TRIALS, PER_DIMENSION * dimensions)


def importance(records: Sequence[TrialRecord], space: SearchSpace) -> list[Finding]:
    """fANOVA over the complete trials inside ``space`` (a campaign's rounds included)."""
    if len(space.tuned) < 2:
        return []
    study = _as_optuna_study(records, space)
    done = study.get_trials(deepcopy=False)
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


def _as_optuna_study(records: Sequence[TrialRecord], space: SearchSpace) -> optuna.Study:
    """An in-memory Optuna study of the feasible complete trials that lie inside ``space``."""
    distributions = space.distributions()
    from adamtune.study import quiet_optuna  # study imports the diagnostics lazily too

    with quiet_optuna():  # no "new study created" line per diagnosis
        study = optuna.create_study()
    trials = []
    for record in records:
        if record.state != State.COMPLETE or record.adam is None or record.value is None:
            continue
        if not math.isfinite(record.value):
            continue
        params = {s.param_name: s.param_from_value(getattr(record.adam, s.name)) for s in space.tuned_specs}
        if all(distributions[k].low <= v <= distributions[k].high for k, v in params.items()):
            trials.append(create_trial(value=record.value, params=params, distributions=dict(distributions)))
    study.add_trials(trials)
    return study
