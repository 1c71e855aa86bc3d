from __future__ import annotations

import traceback
from collections.abc import Sequence

from adamtune.errors import Diverged, Pruned, Stopped, TrialFailed
from adamtune.executors._base import Objective
from adamtune.outcomes import Outcome, State, judge_return
from adamtune.trial import Trial


class InProcessExecutor:
    """Runs each trial by calling the objective in this process, one after another."""

    @property
    def batch_size(self) -> int:
        return 1

    def run(self, objective: Objective, trials: Sequence[Trial]) -> list[Outcome]:
        return [run_objective(objective, trial) for trial in trials]


def run_objective(objective: Objective, trial: Trial) -> Outcome:
    """Call ``objective(trial)`` and say how it ended. Divergence and crashes are outcomes."""
    try:
        returned = objective(trial)
    except Diverged as signal:
        reason = str(signal) or "the objective raised Diverged"
        return Outcome.infeasible(reason, trial.last_metrics)
    except (Pruned, Stopped) as stop:
        state = State.PRUNED if isinstance(stop, Pruned) else State.COMPLETE
        return Outcome(state, trial.best_so_far, str(stop), trial.last_metrics)
    except TrialFailed as failure:
        return Outcome.failed(str(failure) or "the objective raised TrialFailed", trial.last_metrics)
    except Exception:
        return Outcome.failed(traceback.format_exc(), trial.last_metrics)
    return judge_return(returned, trial.metric, trial.last_metrics)
