"""Built-in real workloads (they generate or read their data, nothing is downloaded), and
``TorchWorkload`` for your own model and tensors."""

from adamtune.workloads.mnist1d import MODELS, Mnist1dWorkload
from adamtune.workloads.stdlib_lm import StdlibLmWorkload
from adamtune.workloads.torch_model import TorchWorkload, train_separately

__all__ = ["MODELS", "Mnist1dWorkload", "StdlibLmWorkload", "TorchWorkload", "train_separately"]
