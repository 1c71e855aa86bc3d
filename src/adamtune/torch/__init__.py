"""PyTorch support: the batched trainer that trains many Adam configurations of one model
as one computation, and its vectorised Adam/AdamW update.

``import adamtune.torch`` imports torch; the rest of adamtune does not need it.
"""

from adamtune.environment import cpu_cores
from adamtune.torch._adam import UPDATES, BatchedAdam, Hyper, UpdateName
from adamtune.torch._forward import PATHS, PathName, bmm_supported, make_forward
from adamtune.torch._resources import member_bytes, members_per_batch, memory_budget, torch_threads
from adamtune.torch._trainer import (
    BACKWARDS,
    BackwardName,
    BatchedSpec,
    BatchedTrainer,
    Cancelled,
    Loss,
    Member,
    MemberResult,
    Reporter,
    batch_order,
    batching_problem,
    cross_entropy,
    default_device,
    divergence,
    train_in_threads,
)

__all__ = [
    "BACKWARDS",
    "PATHS",
    "UPDATES",
    "BackwardName",
    "BatchedAdam",
    "BatchedSpec",
    "BatchedTrainer",
    "Cancelled",
    "Hyper",
    "Loss",
    "Member",
    "MemberResult",
    "PathName",
    "Reporter",
    "UpdateName",
    "batch_order",
    "batching_problem",
    "bmm_supported",
    "cpu_cores",
    "cross_entropy",
    "default_device",
    "divergence",
    "make_forward",
    "member_bytes",
    "members_per_batch",
    "memory_budget",
    "torch_threads",
    "train_in_threads",
]
