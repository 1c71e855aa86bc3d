"""Where trials run. An executor runs a batch of trials and returns their outcomes."""

from adamtune.executors._base import Executor, Objective
from adamtune.executors.batched import BatchedExecutor
from adamtune.executors.inprocess import InProcessExecutor, run_objective

__all__ = ["BatchedExecutor", "Executor", "InProcessExecutor", "Objective", "run_objective"]
