from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from adamtune.outcomes import Outcome
from adamtune.trial import Trial

Objective = Callable[[Trial], Any]
"""``objective(trial) -> float | dict``: train with ``trial.adam`` and ``trial.seed``."""


class Executor(Protocol):
    """Runs trials. ``batch_size`` is how many it wants at once (1: one after another).

    ``run`` returns one outcome per trial, in order. It must not swallow KeyboardInterrupt:
    the study marks the unfinished trials interrupted and gives their points back.
    """

    @property
    def batch_size(self) -> int: ...

    def run(self, objective: Objective, trials: Sequence[Trial]) -> list[Outcome]: ...
