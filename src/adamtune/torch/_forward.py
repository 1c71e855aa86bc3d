"""Forward passes of N members at once: ``output = forward(params, x)`` with ``params`` the
per-parameter views of shape (N, *shape) and ``x`` the batch all members share.

- ``vmap``: ``torch.func.functional_call`` under ``torch.func.vmap``; any module without
  buffers.
- ``bmm``: ``nn.Sequential`` of Linear, Conv1d, Flatten/Unflatten and elementwise activations,
  run as batched matrix products (the first layer, whose input all members share, as one
  product or convolution with the members' weights side by side; later convolutions as
  grouped convolutions, one group per member). Measured
  several times faster than ``vmap`` on the CPU (docs/performance.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

PathName = Literal["auto", "vmap", "bmm"]
PATHS: tuple[PathName, ...] = ("auto", "vmap", "bmm")
Forward = Callable[[Sequence[torch.Tensor], torch.Tensor], torch.Tensor]

# Modules that act elementwise: they apply unchanged to (N, B, ...) activations.
_ELEMENTWISE = (nn.ReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.SiLU, nn.LeakyReLU, nn.ELU, nn.Identity)


def bmm_supported(module: nn.Module) -> bool:
    """Whether the ``bmm`` path can run ``module``."""
    if not isinstance(module, nn.Sequential):
        return False
    for layer in module:
        if isinstance(layer, nn.Conv1d):
            if (
                layer.padding_mode != "zeros"
                or isinstance(layer.padding, str)
                or layer.groups != 1
                or layer.dilation != (1,)
            ):
                return False
        elif not isinstance(layer, (nn.Linear, nn.Flatten, nn.Unflatten, *_ELEMENTWISE)):
            return False
    return True


def make_forward(template: nn.Module, path: PathName) -> tuple[Forward, PathName]:
    """The batched forward of ``template`` by ``path`` ("auto": bmm when supported)."""
    if path not in PATHS:
        raise ValueError(f"path: expected one of {PATHS}, got {path!r}")
    if path == "auto":
        path = "bmm" if bmm_supported(template) else "vmap"
    if path == "bmm":
        if not bmm_supported(template):
            raise ValueError(
                "path 'bmm': expected an nn.Sequential of Linear, Conv1d, Flatten, Unflatten and "
                f"elementwise activations, got {type(template).__name__}; use path='vmap'"
            )
        return _bmm_forward(template), "bmm"
    return _vmap_forward(template), "vmap"


def _vmap_forward(template: nn.Module) -> Forward:
    names = [name for name, _ in template.named_parameters()]

    def one(params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = torch.func.functional_call(template, params, (x,))
        return out

    batched = torch.func.vmap(one, in_dims=(0, None))

    def forward(params: Sequence[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = batched(dict(zip(names, params, strict=True)), x)
        return out

    return forward


def _bmm_forward(template: nn.Module) -> Forward:
    layers = list(template.children())
    slots: list[int] = []  # index of each layer's first parameter in the flat list
    count = 0
    for layer in layers:
        slots.append(count)
        count += len(list(layer.parameters()))

    def forward(params: Sequence[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        # h is (N, B, ...) once member-specific; None while it is still the shared input.
        n = params[0].shape[0]
        shared: torch.Tensor | None = x
        h: torch.Tensor = x
        bias: torch.Tensor | None
        for layer, slot in zip(layers, slots, strict=True):
            if isinstance(layer, nn.Linear):
                weight = params[slot]
                bias = params[slot + 1] if layer.bias is not None else None
                h = linear(h if shared is None else None, shared, weight, bias)
                shared = None
            elif isinstance(layer, nn.Conv1d):
                weight = params[slot]
                bias = params[slot + 1] if layer.bias is not None else None
                h = _conv1d(h if shared is None else None, shared, weight, bias, layer)
                shared = None
            elif isinstance(layer, nn.Flatten | nn.Unflatten):
                if shared is not None:
                    shared = layer(shared)
                    continue
                h = _shift_dims(layer, h)
            elif shared is not None:
                shared = layer(shared)
            else:
                h = layer(h)
        return h if shared is None else shared.unsqueeze(0).expand(n, *shared.shape)

    return forward


def linear(
    h: torch.Tensor | None, shared: torch.Tensor | None, weight: torch.Tensor, bias: torch.Tensor | None
) -> torch.Tensor:
    n, out_features, in_features = weight.shape
    # Under autograd the bias is added on its own, for a gradient that is the same in every place.
    fused = bias if bias is not None and not (torch.is_grad_enabled() and bias.requires_grad) else None
    if shared is not None:
        # All members see the same input: one (B, in) x (in, N*out) product instead of N small.
        lead = shared.shape[:-1]
        flat_in = shared.reshape(-1, in_features)
        stacked = weight.reshape(n * out_features, in_features)
        y = flat_in @ stacked.t() if fused is None else torch.addmm(fused.reshape(-1), flat_in, stacked.t())
        y = y.view(*lead, n, out_features).movedim(-2, 0)
    else:
        assert h is not None
        # Each member's rows contiguous: over a view with the members interleaved (a grouped
        # convolution's output) the product rounded a member by its place in the batch.
        h3 = h.reshape(n, -1, in_features).contiguous()
        if fused is None:
            y = torch.bmm(h3, weight.transpose(1, 2))
        else:
            y = torch.baddbmm(fused.unsqueeze(1), h3, weight.transpose(1, 2))
        y = y.view(*h.shape[:-1], out_features)
    if bias is None or fused is not None:
        return y
    out: torch.Tensor = _AddMemberBias.apply(y, bias)  # type: ignore[no-untyped-call]
    return out


def member_sums(grad: torch.Tensor) -> torch.Tensor:
    """The sum of ``grad`` (N, ..., F) over its middle axes, (N, F): a bias's gradient, rounded
    alike for every member. Summed in place over the shared input's (B, N, F) layout, the
    vectorised reduction's edges fell on the ends of the batch; as a product with ones, the
    batched matrix product itself rounded narrow members (F = 10 or 25) by their place."""
    return grad.reshape(grad.shape[0], -1, grad.shape[-1]).contiguous().sum(1)


class _AddMemberBias(torch.autograd.Function):
    """``y + bias`` for ``y`` (N, ..., F) and ``bias`` (N, F), with the bias gradient of
    ``member_sums``: autograd's own sum rounded the members at the ends of the batch apart."""

    @staticmethod
    def forward(ctx: Any, y: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        return y + bias.view(bias.shape[0], *[1] * (y.dim() - 2), bias.shape[1])

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return grad, member_sums(grad)


def _conv1d(
    h: torch.Tensor | None,
    shared: torch.Tensor | None,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    layer: nn.Conv1d,
) -> torch.Tensor:
    n, out_channels, channels, size = weight.shape
    stride, padding = layer.stride[0], layer.padding[0]  # bmm_supported ruled out "same"/"valid"
    if shared is not None:
        # A shared input needs one convolution with all members' filters side by side.
        out = F.conv1d(
            shared,
            weight.reshape(n * out_channels, channels, size),
            None if bias is None else bias.reshape(-1),
            stride=stride,
            padding=padding,
        )
        return out.view(out.shape[0], n, out_channels, out.shape[-1]).transpose(0, 1)
    assert h is not None
    # Members become groups: (N, B, C, L) -> (B, N*C, L), weights (N*out, C, k), groups=N.
    # (im2col with one batched product instead was no faster for the MNIST-1D CNN.)
    _, batch, _, length = h.shape
    out = F.conv1d(
        h.transpose(0, 1).reshape(batch, n * channels, length),
        weight.reshape(n * out_channels, channels, size),
        None if bias is None else bias.reshape(-1),
        stride=stride,
        padding=padding,
        groups=n,
    )
    # A view in (N, B, C, L) order over (B, N*C, L) memory: the next conv reads it back free.
    return out.view(batch, n, out_channels, out.shape[-1]).transpose(0, 1)


def _shift_dims(layer: nn.Flatten | nn.Unflatten, h: torch.Tensor) -> torch.Tensor:
    # The member axis is a new leading axis: the layer's (non-negative) dims move by one.
    if isinstance(layer, nn.Flatten):
        start = layer.start_dim + 1 if layer.start_dim >= 0 else layer.start_dim
        end = layer.end_dim + 1 if layer.end_dim >= 0 else layer.end_dim
        return h.flatten(start, end)
    dim = int(layer.dim)
    shape = tuple(int(size) for size in layer.unflattened_size)
    return h.unflatten(dim + 1 if dim >= 0 else dim, shape)  # type: ignore[no-untyped-call,no-any-return]
