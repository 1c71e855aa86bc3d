"""How many members fit a memory budget, and how many threads batched work may use."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from adamtune.torch._trainer import BatchedSpec

# Bytes counted per member, as multiples of its parameter count: parameters, gradients,
# Adam's two moments, and one copy while compacting.
_PARAMETER_COPIES = 5
# Training activations: each layer's output is kept for backward and gets a gradient, and
# the batch-wide temporaries of the loss add about one more.
_ACTIVATION_COPIES = 3
_SAFETY = 1.5  # convolution workspaces, allocator slack


def member_bytes(spec: BatchedSpec, dtype: torch.dtype = torch.float32) -> int:
    """An upper estimate of the memory one member needs while training ``spec``."""
    model = spec.model(0).to(dtype)
    parameters = sum(p.numel() for p in model.parameters())
    sizes: list[int] = []

    def record(module: nn.Module, inputs: object, output: torch.Tensor) -> None:
        if isinstance(output, torch.Tensor):
            sizes.append(output.numel())

    hooks = [m.register_forward_hook(record) for m in model.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            model(spec.x_train[:1].to(dtype))
    finally:
        for hook in hooks:
            hook.remove()
    per_sample, widest = sum(sizes), max(sizes, default=1)
    element = torch.empty((), dtype=dtype).element_size()
    training = _ACTIVATION_COPIES * spec.batch_size * per_sample
    validation = 2 * len(spec.x_val) * widest  # no_grad: a layer's input and output at a time
    return math.ceil(_SAFETY * element * (_PARAMETER_COPIES * parameters + training + validation))


def memory_budget(device: torch.device) -> int:
    """Bytes batched training may use: 80% of the GPU's free memory, or half of the memory
    the system reports available."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(0.8 * free)
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024 // 2
    except OSError:
        pass
    return 4 << 30  # no /proc: assume a modest 4 GiB


def members_per_batch(spec: BatchedSpec, budget: int, dtype: torch.dtype = torch.float32) -> int:
    """How many members fit ``budget`` bytes (at least one: a single member runs regardless)."""
    return max(1, budget // member_bytes(spec, dtype))


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run with ``threads`` intra-op threads, restoring the previous setting afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
