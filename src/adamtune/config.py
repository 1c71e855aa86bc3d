"""``AdamConfig``: one concrete setting of Adam's hyperparameters."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

from adamtune.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Iterable

    import torch

OptimizerName = Literal["adam", "adamw", "nadam", "nadamw"]
OPTIMIZERS: tuple[OptimizerName, ...] = ("adam", "adamw", "nadam", "nadamw")
DECOUPLED: frozenset[OptimizerName] = frozenset({"adamw", "nadamw"})
"""The optimizers whose weight decay is decoupled (applied to the weights, scaled by lr)."""
NESTEROV: frozenset[OptimizerName] = frozenset({"nadam", "nadamw"})
"""The optimizers with Nesterov momentum (torch.optim.NAdam)."""
OPTIMIZER_TEXT: dict[OptimizerName, str] = {
    "adam": "torch.optim.Adam",
    "adamw": "torch.optim.AdamW: decoupled weight decay",
    "nadam": "torch.optim.NAdam: Nesterov momentum",
    "nadamw": "torch.optim.NAdam with decoupled_weight_decay=True",
}
"""What each optimizer name trains with."""


def optimizer_text(name: OptimizerName) -> str:
    """``nadamw (torch.optim.NAdam with decoupled_weight_decay=True)``: as the CLI and the
    report name a study's optimizer."""
    return f"{name} ({OPTIMIZER_TEXT[name]})"


MOMENTUM_DECAY = 0.004
"""torch.optim.NAdam's momentum_decay (psi below), kept at torch's default: not tuned."""
BETAS = ("beta1", "beta2")


def value_text(name: str, value: float, digits: int = 3) -> str:
    """``value`` of hyperparameter ``name`` as shown to people: ``digits`` significant figures,
    of ``1 - beta`` for a beta (by its own figures beta2 0.99999 would read 1, and 0.99874
    0.999)."""
    if name not in BETAS or not 0.0 <= value < 1.0:
        return f"{value:.{digits}g}"
    decimals = digits - 1 - math.floor(math.log10(1.0 - value))
    return f"{value:.{decimals}f}".rstrip("0").rstrip(".")


CODE_ULPS = 64
"""How near a short decimal a value is written as it: exp(log(x)) alone is off by up to 11
units at 1e-8 (its error grows with log x), and a sampler adds its own scaling."""
CODE_DIGITS = 8
"""The most significant figures of a short decimal: a drawn value lies within ``CODE_ULPS``
of one with a chance of about 1e-6 at most."""


def code_number(value: float) -> str:
    """``value`` for code a person reads: the shortest decimal of at most ``CODE_DIGITS`` figures
    within ``CODE_ULPS`` units in the last place of it, else in full. A point on a range's end
    trains with beta1 0.9000000000000001 or lr 0.0009999999999999994 (``1 - beta`` and the log
    scale each round, by a few units): that is 0.9 or 1e-3 to every float32 tensor, and reads
    as a bug when pasted; a value the search drew keeps all its digits (no shorter decimal is
    that close)."""
    for digits in range(1, CODE_DIGITS + 1):
        short = float(f"{value:.{digits}g}")
        if abs(short - value) <= CODE_ULPS * math.ulp(value):
            return repr(short)
    return repr(value)


def cell_text(value: float | None, name: str = "") -> str:
    """A table cell: 4 significant figures (of ``1 - beta`` when ``name`` is a beta), "" for
    nothing."""
    if value is None:
        return ""
    return value_text(name, value, 4) if math.isfinite(value) else str(value)


@dataclass(frozen=True)
class AdamConfig:
    """Adam's hyperparameters, validated on creation.

    The update, with bias correction (t counts steps from 1)::

        m <- beta1 * m + (1 - beta1) * g          v <- beta2 * v + (1 - beta2) * g**2
        theta <- theta - lr * (m / (1 - beta1**t)) / (sqrt(v / (1 - beta2**t)) + eps)

    ``weight_decay`` is L2 added to the gradient for ``adam`` and ``nadam``, and decoupled
    (applied to the weights directly, scaled by lr) for ``adamw`` and ``nadamw``.

    ``nadam`` and ``nadamw`` are torch.optim.NAdam (Dozat 2016): Adam with Nesterov momentum,
    whose momentum coefficient warms up as ``mu_t = beta1 * (1 - 0.5 * 0.96**(t * psi))``
    (psi = ``MOMENTUM_DECAY``), with ``P_t`` the product of ``mu_1 .. mu_t``::

        theta <- theta - lr * ((1 - mu_t) / (1 - P_t) * g + mu_{t+1} / (1 - P_{t+1}) * m)
                           / (sqrt(v / (1 - beta2**t)) + eps)

    The same four hyperparameters (and weight decay) are tuned; NAdamW is the optimizer of
    AlgoPerf's baseline.
    """

    lr: float
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.0
    optimizer: OptimizerName = "adam"

    def __post_init__(self) -> None:
        checks: dict[str, tuple[Callable[[float], bool], str]] = {
            "lr": (lambda v: v > 0, "a number > 0"),
            "beta1": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
            "beta2": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
            "eps": (lambda v: v > 0, "a number > 0"),
            "weight_decay": (lambda v: v >= 0, "a number >= 0"),
        }
        for name, (legal, expected) in checks.items():
            value = getattr(self, name)
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if not (number and math.isfinite(value) and legal(value)):
                raise ConfigError(f"{name}: expected {expected}, got {value!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer: expected one of {OPTIMIZERS}, got {self.optimizer!r}")

    @property
    def decoupled(self) -> bool:
        """Whether weight decay is decoupled (AdamW, NAdamW)."""
        return self.optimizer in DECOUPLED

    @property
    def nesterov(self) -> bool:
        """Whether the update uses Nesterov momentum (NAdam, NAdamW)."""
        return self.optimizer in NESTEROV

    @property
    def torch_name(self) -> str:
        """The class in ``torch.optim``: Adam, AdamW or NAdam (NAdamW is NAdam with
        ``decoupled_weight_decay=True``)."""
        return "NAdam" if self.nesterov else ("AdamW" if self.decoupled else "Adam")

    def torch_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for the class named by ``torch_name`` (``torch.optim.Adam`` for
        Adam)."""
        kwargs: dict[str, Any] = {
            "lr": self.lr,
            "betas": (self.beta1, self.beta2),
            "eps": self.eps,
            "weight_decay": self.weight_decay,
        }
        if self.nesterov and self.decoupled:
            kwargs["decoupled_weight_decay"] = True
        return kwargs

    def make_optimizer(self, params: Iterable[torch.Tensor]) -> torch.optim.Optimizer:
        """Build the torch optimizer this configuration describes."""
        import torch

        optimizer_class: type[torch.optim.Optimizer] = getattr(torch.optim, self.torch_name)
        return optimizer_class(params, **self.torch_kwargs())

    def torch_code(self, params: str = "model.parameters()") -> str:
        """The torch optimizer's constructor with these values in full precision, to paste into a
        training script: ``torch.optim.Adam(model.parameters(), lr=..., betas=(...), eps=...)``
        (a value a rounding away from a short one, as on a range's end, written short:
        ``code_number``)."""
        lr, beta1, beta2, eps = (code_number(v) for v in (self.lr, self.beta1, self.beta2, self.eps))
        args = [params, f"lr={lr}", f"betas=({beta1}, {beta2})", f"eps={eps}"]
        if self.weight_decay or self.decoupled:
            args.append(f"weight_decay={code_number(self.weight_decay)}")
        if self.nesterov and self.decoupled:
            args.append("decoupled_weight_decay=True")
        return f"torch.optim.{self.torch_name}({', '.join(args)})"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def matches(self, other: AdamConfig | None) -> bool:
        """The same configuration up to the rounding of the search scales: a point on the edge
        1 - beta1 = 0.1 reads back as beta1 0.9000000000000001, which is Adam's 0.9. Betas are
        compared as 1 - beta, the scale they are searched on. None matches nothing."""
        if other is None:
            return False
        pairs = (
            (self.lr, other.lr),
            (1 - self.beta1, 1 - other.beta1),
            (1 - self.beta2, 1 - other.beta2),
            (self.eps, other.eps),
            (self.weight_decay, other.weight_decay),
        )
        same = all(math.isclose(a, b, rel_tol=1e-9) for a, b in pairs)
        return same and self.optimizer == other.optimizer

    def short(self) -> str:
        """A compact one-line rendering for tables and logs."""
        betas = f"beta1={value_text('beta1', self.beta1)} beta2={value_text('beta2', self.beta2)}"
        text = f"lr={self.lr:.3g} {betas} eps={self.eps:.3g}"
        if self.weight_decay or self.decoupled:
            text += f" weight_decay={self.weight_decay:.3g}"
        if self.weight_decay or self.optimizer != "adam":
            text += f" ({self.optimizer})"
        return text


DEFAULT_ADAM = AdamConfig(lr=1e-3)
"""Adam's published defaults (Kingma and Ba), the baseline a tuned result is compared with."""
