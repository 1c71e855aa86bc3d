"""Importance of each tuned hyperparameter (fANOVA), with a warning when trials are too few."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
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
MAX_TRIALS = 400
"""fANOVA's cost grows faster than the square of its trials (15 s at 1000 on 2 cores, 53 s at
2000): a larger study is read from this many of its trials, drawn at random (seed 0)."""


def minimum_trials(dimensions: int) -> int:
    return max(MIN_TRIALS, PER_DIMENSION * dimensions)


def importance(records: Sequence[TrialRecord], space: SearchSpace) -> list[Finding]:
    """fANOVA over the complete trials inside ``space`` (a campaign's rounds included)."""
    if len(space.tuned) < 2:
        return []
    study, feasible = _as_optuna_study(records, space)
    done = study.get_trials(deepcopy=False)
    if len(done) < 2:
        return []
    names = {spec.param_name: spec.name for spec in space.tuned_specs}
    scores = get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=0), params=list(names))
    shares = {names[param]: float(score) for param, score in scores.items()}
    text = ", ".join(f"{name} {share:.0%}" for name, share in shares.items())
    needed = minimum_trials(len(space.tuned))
    numbers = {"importance": shares, "trials": len(done), "feasible": feasible, "minimum_trials": needed}
    over = f"{len(done)} trials" if len(done) == feasible else f"a random {len(done)} of {feasible} trials"
    if len(done) < needed:
        return [
            Finding(
                "importance",
                "warning",
                f"fANOVA importance over {over}: {text}. Below {needed} trials "
                f"for {len(space.tuned)} hyperparameters this ranking means little.",
                numbers,
                "Do not drop a hyperparameter from the search on this ranking alone.",
            )
        ]
    return [Finding("importance", "info", f"fANOVA importance over {over}: {text}.", numbers)]


def _as_optuna_study(records: Sequence[TrialRecord], space: SearchSpace) -> tuple[optuna.Study, int]:
    """An in-memory Optuna study of the feasible complete trials that lie inside ``space`` (at
    most ``MAX_TRIALS`` of them, drawn at random), and how many there were."""
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
    if len(trials) > MAX_TRIALS:
        drawn = np.random.default_rng(0).choice(len(trials), MAX_TRIALS, replace=False)
        study.add_trials([trials[i] for i in sorted(drawn)])
    else:
        study.add_trials(trials)
    return study, len(trials)
