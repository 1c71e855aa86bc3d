"""adamtune: tune Adam's hyperparameters the way the Deep Learning Tuning Playbook recommends.

import adamtune

def objective(trial):
    model = make_model(seed=trial.seed)
    optimizer = trial.adam.make_optimizer(model.parameters())
    ...
    trial.report(step, train_loss=..., val_loss=...)
    return best_val_loss

study = adamtune.tune(objective, budget=20, seed=0)
print(study.best.adam)
"""

from adamtune._version import __version__
from adamtune.config import DEFAULT_ADAM, AdamConfig
from adamtune.errors import (
    AdamTuneError,
    ConfigError,
    Diverged,
    StorageError,
    StudyMismatchError,
    StudyNotFoundError,
    TargetError,
    TooManyFailuresError,
    TrialFailed,
)
from adamtune.executors import Executor, InProcessExecutor
from adamtune.outcomes import Outcome, State
from adamtune.records import TrialRecord
from adamtune.sampling import QuasiRandomSampler, halton_points
from adamtune.space import DEFAULT_SPECS, HyperparameterSpec, SearchSpace
from adamtune.study import Study, StudyInfo, copy_study, delete_study, load_studies, load_study, tune
from adamtune.tiers import TierChoice, choose_tuned
from adamtune.trial import Trial

__all__ = [
    "DEFAULT_ADAM",
    "DEFAULT_SPECS",
    "AdamConfig",
    "AdamTuneError",
    "ConfigError",
    "Diverged",
    "Executor",
    "HyperparameterSpec",
    "InProcessExecutor",
    "Outcome",
    "QuasiRandomSampler",
    "SearchSpace",
    "State",
    "StorageError",
    "Study",
    "StudyInfo",
    "StudyMismatchError",
    "StudyNotFoundError",
    "TargetError",
    "TierChoice",
    "TooManyFailuresError",
    "Trial",
    "TrialFailed",
    "TrialRecord",
    "__version__",
    "choose_tuned",
    "copy_study",
    "delete_study",
    "halton_points",
    "load_studies",
    "load_study",
    "tune",
]
