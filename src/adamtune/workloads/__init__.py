"""Built-in real workloads: they generate their data, nothing is downloaded."""

from adamtune.workloads.mnist1d import MODELS, Mnist1dWorkload

__all__ = ["MODELS", "Mnist1dWorkload"]
