"""Adam, AdamW, NAdam and NAdamW for N members at once, each with its own hyperparameters.

The members' parameters live in one tensor of shape (N, P): row i is member i, flattened.
Every member follows torch.optim.Adam (``optimizer="adam"``, L2 weight decay added to the
gradient) or torch.optim.AdamW (``"adamw"``, decoupled decay), with t counting from 1::

    g <- g + wd * theta                                    (adam, nadam)
    theta <- theta * (1 - lr * wd)                         (adamw, nadamw)
    m <- beta1 * m + (1 - beta1) * g          v <- beta2 * v + (1 - beta2) * g**2
    theta <- theta - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

or torch.optim.NAdam (``"nadam"``, ``"nadamw"`` with ``decoupled_weight_decay=True``), whose
last line is, with mu_t = beta1 * (1 - 0.5 * 0.96**(t * psi)) and P_t = mu_1 * ... * mu_t::

    theta <- theta - lr * ((1 - mu_t) / (1 - P_t) * g + mu_{t+1} / (1 - P_{t+1}) * m)
                        / (sqrt(v / (1 - beta2**t)) + eps)

Two implementations of the same update: ``vectorised`` (a handful of elementwise ops over the
whole (N, P) tensor, the hyperparameters broadcast as (N, 1) columns: one pass for all members,
good on a GPU) and ``fused`` (per member on its row, torch's own kernel: the fused Adam/AdamW
kernel, or NAdam's single-tensor update, which has no fused kernel; one pass over memory per
member, measured faster on the CPU for Adam, see docs/performance.md). One batch holds one
family, Adam's or NAdam's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch.optim.nadam import nadam

from adamtune.config import MOMENTUM_DECAY, AdamConfig

UpdateName = Literal["auto", "vectorised", "fused"]
UPDATES: tuple[UpdateName, ...] = ("auto", "vectorised", "fused")


@dataclass
class Hyper:
    """The members' hyperparameters as (N, 1) float64 columns (float64: bias corrections such as
    1 - 0.999**t lose digits in float32; torch computes them in Python floats, i.e. float64)."""

    lr: torch.Tensor
    beta1: torch.Tensor
    beta2: torch.Tensor
    eps: torch.Tensor
    l2: torch.Tensor  # weight decay of "adam" and "nadam" members, else 0
    decoupled: torch.Tensor  # weight decay of "adamw" and "nadamw" members, else 0
    configs: tuple[AdamConfig, ...]

    @property
    def nesterov(self) -> bool:
        """Whether the members are NAdam's (one family per batch, checked by ``of``)."""
        return bool(self.configs) and self.configs[0].nesterov

    @classmethod
    def of(cls, configs: Sequence[AdamConfig], device: torch.device) -> Hyper:
        families = {config.nesterov for config in configs}
        if len(families) > 1:
            raise ValueError(
                "members: expected one family per batch, Adam's (adam, adamw) or NAdam's "
                f"(nadam, nadamw), got {sorted({c.optimizer for c in configs})}"
            )

        def column(values: Sequence[float]) -> torch.Tensor:
            return torch.tensor(values, dtype=torch.float64, device=device).view(-1, 1)

        return cls(
            lr=column([c.lr for c in configs]),
            beta1=column([c.beta1 for c in configs]),
            beta2=column([c.beta2 for c in configs]),
            eps=column([c.eps for c in configs]),
            l2=column([0.0 if c.decoupled else c.weight_decay for c in configs]),
            decoupled=column([c.weight_decay if c.decoupled else 0.0 for c in configs]),
            configs=tuple(configs),
        )

    def select(self, keep: torch.Tensor, kept: Sequence[int]) -> Hyper:
        """The hyperparameters of the rows ``keep`` (a long tensor; ``kept`` the same as ints)."""
        return Hyper(
            self.lr[keep],
            self.beta1[keep],
            self.beta2[keep],
            self.eps[keep],
            self.l2[keep],
            self.decoupled[keep],
            tuple(self.configs[i] for i in kept),
        )


class BatchedAdam:
    """Adam's state (m, v, t; NAdam's also P_t) for a (N, P) parameter tensor, and the update.

    ``active`` (a bool column per member) freezes members: a frozen row keeps its parameters
    and moments unchanged whatever its gradient holds (NaN included).
    """

    def __init__(self, params: torch.Tensor, hyper: Hyper, update: UpdateName = "auto") -> None:
        if update not in UPDATES:
            raise ValueError(f"update: expected one of {UPDATES}, got {update!r}")
        if update == "auto":
            # Measured (docs/performance.md): per-member fused kernels win on the CPU; on a GPU
            # one vectorised pass avoids N kernel launches per step.
            update = "fused" if params.device.type == "cpu" else "vectorised"
        self.update: UpdateName = update
        self.hyper = hyper
        self.exp_avg = torch.zeros_like(params)
        self.exp_avg_sq = torch.zeros_like(params)
        self.t = 0
        self._fused_step = torch.zeros((), dtype=torch.float32, device=params.device)
        # NAdam's P_t and step count per member, in the dtype torch.optim.NAdam keeps them
        # (float32 unless the default dtype is float64), so that members match its runs.
        scalar = torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32
        self.mu_product = torch.ones(len(params), dtype=scalar, device=params.device)
        self._member_steps = torch.zeros(len(params), dtype=scalar, device=params.device)

    def select(self, keep: torch.Tensor, kept: Sequence[int]) -> None:
        self.exp_avg = self.exp_avg[keep]
        self.exp_avg_sq = self.exp_avg_sq[keep]
        self.mu_product = self.mu_product[keep]
        self._member_steps = self._member_steps[keep]
        self.hyper = self.hyper.select(keep, kept)

    @torch.no_grad()
    def step(self, params: torch.Tensor, grads: torch.Tensor, active: Sequence[bool]) -> None:
        """One Adam step of every active member, in place on ``params`` (N, P)."""
        self.t += 1
        if self.hyper.nesterov:
            if self.update == "fused":
                self._nadam_per_member(params, grads, active)
            else:
                self._nadam_vectorised(params, grads, active)
        elif self.update == "fused":
            self._fused(params, grads, active)
        else:
            self._vectorised(params, grads, active)

    def _fused(self, params: torch.Tensor, grads: torch.Tensor, active: Sequence[bool]) -> None:
        self._fused_step.add_(1)
        for i, config in enumerate(self.hyper.configs):
            if not active[i]:
                continue
            kernel = torch._fused_adamw_ if config.optimizer == "adamw" else torch._fused_adam_
            kernel(
                [params[i]],
                [grads[i]],
                [self.exp_avg[i]],
                [self.exp_avg_sq[i]],
                [],
                [self._fused_step],
                lr=config.lr,
                beta1=config.beta1,
                beta2=config.beta2,
                weight_decay=config.weight_decay,
                eps=config.eps,
                amsgrad=False,
                maximize=False,
            )

    def _decay_and_moments(
        self, params: torch.Tensor, grads: torch.Tensor, active: Sequence[bool]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """What both vectorised updates do first: weight decay, then m and v, frozen rows left
        as they were. Returns the (decayed) gradients, each row's lr (0 when frozen) and the
        rows' mask (None when every row is active)."""
        h, dtype = self.hyper, params.dtype
        mask = None if all(active) else torch.tensor(active, device=params.device).view(-1, 1)
        if mask is not None:
            # A frozen row's gradient may be NaN: zero it so 0 * NaN never reaches its state.
            grads = torch.where(mask, grads, 0.0)
        lr = h.lr if mask is None else h.lr * mask
        if bool((h.l2 > 0).any()):
            grads = grads.add(params * h.l2.to(dtype))
        if bool((h.decoupled > 0).any()):
            params.mul_((1 - lr * h.decoupled).to(dtype))
        # Keep frozen moments as they were: beta = 1 leaves m and v unchanged.
        beta1 = h.beta1 if mask is None else torch.where(mask, h.beta1, 1.0)
        beta2 = h.beta2 if mask is None else torch.where(mask, h.beta2, 1.0)
        self.exp_avg.lerp_(grads, (1 - beta1).to(dtype))
        self.exp_avg_sq.mul_(beta2.to(dtype)).addcmul_(grads, grads * (1 - beta2).to(dtype))
        return grads, lr, mask

    def _vectorised(self, params: torch.Tensor, grads: torch.Tensor, active: Sequence[bool]) -> None:
        h, dtype, t = self.hyper, params.dtype, self.t
        _, lr, _ = self._decay_and_moments(params, grads, active)
        step_size = lr / (1 - h.beta1**t)
        bias_correction2_sqrt = (1 - h.beta2**t).sqrt()
        denom = (self.exp_avg_sq.sqrt() / bias_correction2_sqrt.to(dtype)).add_(h.eps.to(dtype))
        params.addcdiv_(self.exp_avg * (-step_size).to(dtype), denom)

    def _nadam_per_member(self, params: torch.Tensor, grads: torch.Tensor, active: Sequence[bool]) -> None:
        for i, config in enumerate(self.hyper.configs):
            if not active[i]:
                continue
            nadam(
                [params[i]],
                [grads[i]],
                [self.exp_avg[i]],
                [self.exp_avg_sq[i]],
                [self.mu_product[i]],  # views: the update writes P_t and the step in place
                [self._member_steps[i]],
                decoupled_weight_decay=config.decoupled,
                foreach=False,
                beta1=config.beta1,
                beta2=config.beta2,
                lr=config.lr,
                weight_decay=config.weight_decay,
                momentum_decay=MOMENTUM_DECAY,
                eps=config.eps,
            )

    def _nadam_vectorised(self, params: torch.Tensor, grads: torch.Tensor, active: Sequence[bool]) -> None:
        h, dtype, t = self.hyper, params.dtype, self.t
        grads, lr, mask = self._decay_and_moments(params, grads, active)
        # The warm-up factors in Python floats, as torch computes them, then per member.
        mu = h.beta1 * (1.0 - 0.5 * 0.96 ** (t * MOMENTUM_DECAY))
        mu_next = h.beta1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * MOMENTUM_DECAY))
        product = self.mu_product.view(-1, 1)
        product.mul_((mu if mask is None else torch.where(mask, mu, 1.0)).to(product.dtype))
        product_now = product.to(torch.float64)
        grad_scale = -lr * (1.0 - mu) / (1.0 - product_now)
        momentum_scale = -lr * mu_next / (1.0 - product_now * mu_next)
        denom = (self.exp_avg_sq / (1 - h.beta2**t).to(dtype)).sqrt_().add_(h.eps.to(dtype))
        params.addcdiv_(grads * grad_scale.to(dtype), denom)
        params.addcdiv_(self.exp_avg * momentum_scale.to(dtype), denom)
