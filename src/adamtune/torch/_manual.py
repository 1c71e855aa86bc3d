"""A hand-written training step for batched MLPs: forward, cross-entropy and backward of N
members as batched matrix products, without autograd.

For an ``nn.Sequential`` of Linear layers and ReLU, Tanh, Sigmoid or Identity activations
trained with the default cross-entropy, autograd costs about a third of the forward and
backward on the CPU (MNIST-1D MLP-100, 25 members, one thread, alternating runs: 6.8-7.1 ms
with autograd, 4.5-5.3 ms by hand; see docs/performance.md). The step computes exactly what
autograd computes (the same products and the same derivative kernels), so the members still
reproduce ``torch.optim.Adam`` runs to 1e-10 in float64 (tests/test_batched.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from adamtune.torch._forward import linear, member_sums

# Backward of each supported activation from its output y: the kernels autograd itself calls.
_DERIVATIVES: dict[type[nn.Module], Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    nn.ReLU: lambda grad, y: torch.ops.aten.threshold_backward(grad, y, 0),
    nn.Tanh: lambda grad, y: torch.ops.aten.tanh_backward(grad, y),
    nn.Sigmoid: lambda grad, y: torch.ops.aten.sigmoid_backward(grad, y),
    nn.Identity: lambda grad, y: grad,
}


def manual_supported(template: nn.Module) -> bool:
    """Whether the hand-written step can train ``template``: Linear layers and the activations
    above, in an ``nn.Sequential`` that starts with a Linear layer."""
    if not isinstance(template, nn.Sequential) or len(template) == 0:
        return False
    layers = list(template.children())
    if not isinstance(layers[0], nn.Linear):
        return False
    return all(isinstance(layer, nn.Linear) or type(layer) in _DERIVATIVES for layer in layers)


@dataclass
class Tape:
    """What the backward pass needs from the forward: each layer's input and output."""

    inputs: list[torch.Tensor]
    outputs: list[torch.Tensor]
    log_probs: torch.Tensor  # (N, C, B): classes before the batch, see ManualStep


class ManualStep:
    """``forward(params, x, y)`` gives the members' mean cross-entropy losses (N,) and a tape;
    ``backward(tape, params, grads, y)`` writes the gradients of their sum into ``grads``
    (views of shape (N, *shape), one per parameter, in the model's parameter order).

    The log-softmax runs on the logits seen as (N, C, B), classes before the batch: 8x faster
    than along the last axis of (N, B, C) on the CPU (10 classes vectorise badly). Computing
    the last layer itself in that layout was faster still, but made a member's rounding
    depend on the other rows after compaction; the members must not affect each other.
    """

    def __init__(self, template: nn.Module) -> None:
        if not manual_supported(template):
            raise ValueError(
                "backward 'manual': expected an nn.Sequential of Linear layers and ReLU, Tanh, "
                f"Sigmoid or Identity activations, got {template!r}"
            )
        self.layers = list(template.children())
        self.slots: list[int] = []  # index of each layer's weight in the parameter list
        count = 0
        for layer in self.layers:
            self.slots.append(count)
            if isinstance(layer, nn.Linear):
                count += 2 if layer.bias is not None else 1

    def _bias(self, index: int, params: Sequence[torch.Tensor]) -> torch.Tensor | None:
        layer = self.layers[index]
        assert isinstance(layer, nn.Linear)
        return params[self.slots[index] + 1] if layer.bias is not None else None

    @torch.no_grad()
    def forward(
        self, params: Sequence[torch.Tensor], x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, Tape]:
        inputs: list[torch.Tensor] = []
        outputs: list[torch.Tensor] = []
        h = x
        for index, layer in enumerate(self.layers):
            inputs.append(h)
            if not isinstance(layer, nn.Linear):
                h = layer(h)
            elif index == 0:  # the input is shared by all members: one product for all
                h = linear(None, h, params[self.slots[0]], self._bias(0, params))
            else:
                h = linear(h, None, params[self.slots[index]], self._bias(index, params))
            outputs.append(h)
        log_probs = h.transpose(1, 2).log_softmax(1)
        n, batch = log_probs.shape[0], log_probs.shape[2]
        losses = -log_probs.gather(1, y.view(1, 1, batch).expand(n, 1, batch)).squeeze(1).mean(1)
        return losses, Tape(inputs, outputs, log_probs)

    @torch.no_grad()
    def backward(
        self, tape: Tape, params: Sequence[torch.Tensor], grads: Sequence[torch.Tensor], y: torch.Tensor
    ) -> None:
        n, _, batch = tape.log_probs.shape
        # d(sum of the members' mean losses)/d logits = (softmax - one_hot(y)) / B, per member.
        delta = tape.log_probs.exp()
        target = y.view(1, 1, batch).expand(n, 1, batch)
        delta.scatter_add_(1, target, delta.new_full((1, 1, 1), -1.0).expand(n, 1, batch))
        delta.div_(batch)
        delta = delta.transpose(1, 2)  # (N, B, C)
        for index in range(len(self.layers) - 1, -1, -1):
            layer, slot = self.layers[index], self.slots[index]
            if not isinstance(layer, nn.Linear):
                delta = _DERIVATIVES[type(layer)](delta, tape.outputs[index])
                continue
            source = tape.inputs[index]
            if index == 0:
                source = source.expand(n, *source.shape)  # the shared input, as a batch of views
            grads[slot].copy_(torch.bmm(delta.transpose(1, 2), source))
            if layer.bias is not None:
                grads[slot + 1].copy_(member_sums(delta))  # the same wherever a member sits
            if index > 0:
                delta = torch.bmm(delta, params[slot])
