"""Built-in real workloads: they generate or read their data, nothing is downloaded."""

from adamtune.workloads.mnist1d import MODELS, Mnist1dWorkload
from adamtune.workloads.stdlib_lm import StdlibLmWorkload

__all__ = ["MODELS", "Mnist1dWorkload", "StdlibLmWorkload"]
