"""The Adam search space: hyperparameter specs, their scales, and user overrides.

Scales (PLAYBOOK.md section 1):

- ``log``: log-uniform in the value (lr, eps, weight_decay);
- ``log1m``: log-uniform in ``1 - value`` (beta1, beta2), so beta1 in [0.9, 0.999] puts half
  its samples above 0.99. Users always see and give beta values; Optuna stores the parameter
  ``one_minus_beta1`` so its samplers model the right parametrisation.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from optuna.distributions import FloatDistribution

from adamtune.config import DECOUPLED, OPTIMIZERS, AdamConfig, OptimizerName, value_text
from adamtune.errors import ConfigError

Scale = Literal["log", "log1m"]

HYPERPARAMETERS: tuple[str, ...] = ("lr", "beta1", "beta2", "eps", "weight_decay")


def _check_known(name: str) -> None:
    if name not in HYPERPARAMETERS:
        raise ConfigError(f"unknown hyperparameter {name!r}: expected one of {', '.join(HYPERPARAMETERS)}")


@dataclass(frozen=True)
class _Domain:
    """Where a hyperparameter's values are legal, and how to say so."""

    low: float
    low_open: bool
    high: float
    high_open: bool

    def contains(self, value: float) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return math.isfinite(value) and above and below

    def text(self) -> str:
        left = "(" if self.low_open else "["
        right = ")" if self.high_open else "]"
        return f"{left}{self.low:g}, {self.high:g}{right}"


_POSITIVE = _Domain(0.0, True, math.inf, True)
_BETA = _Domain(0.0, False, 1.0, True)
_NON_NEGATIVE = _Domain(0.0, False, math.inf, True)

# Values legal as a fixed setting; a searched range must also avoid 0 on a log scale.
_FIXED_DOMAINS = {
    "lr": _POSITIVE,
    "beta1": _BETA,
    "beta2": _BETA,
    "eps": _POSITIVE,
    "weight_decay": _NON_NEGATIVE,
}
_RANGE_DOMAINS = {**_FIXED_DOMAINS, "weight_decay": _POSITIVE}


@dataclass(frozen=True)
class HyperparameterSpec:
    """One hyperparameter: its search range, scale, and value when it is not tuned."""

    name: str
    low: float
    high: float
    scale: Scale
    fixed: float | None
    limit: tuple[float, float] | None = None
    """Values the range may never leave when the playbook expands it (None: the legal domain)."""

    def __post_init__(self) -> None:
        _check_known(self.name)
        domain = _RANGE_DOMAINS[self.name]
        if self.limit is not None:
            object.__setattr__(self, "limit", (float(self.limit[0]), float(self.limit[1])))
            self._check_limit(domain)
        if not (domain.contains(self.low) and domain.contains(self.high)):
            raise ConfigError(
                f"range for {self.name}: expected values in {domain.text()}, got {self.low:g}:{self.high:g}"
            )
        if not self.low < self.high:
            raise ConfigError(f"range for {self.name}: expected low < high, got {self.low:g}:{self.high:g}")
        if self.fixed is not None and not _FIXED_DOMAINS[self.name].contains(self.fixed):
            raise ConfigError(
                f"fixed value for {self.name}: expected a value in "
                f"{_FIXED_DOMAINS[self.name].text()}, got {self.fixed:g}"
            )

    def _check_limit(self, domain: _Domain) -> None:
        assert self.limit is not None
        low, high = self.limit
        if not (domain.contains(low) and domain.contains(high)) or not low < high:
            raise ConfigError(
                f"limit for {self.name}: expected LOW < HIGH in {domain.text()}, got {low:g}:{high:g}"
            )
        if not low <= self.low < self.high <= high:
            raise ConfigError(
                f"limit for {self.name}: expected a limit that contains the search range "
                f"{self.low:g}:{self.high:g}, got {low:g}:{high:g}"
            )

    def clipped_to_limit(self, low: float, high: float) -> tuple[float, float]:
        """``low:high`` kept inside the user's limit, if there is one."""
        if self.limit is None:
            return low, high
        return max(low, self.limit[0]), min(high, self.limit[1])

    @property
    def param_name(self) -> str:
        """The parameter's name in the Optuna study."""
        return f"one_minus_{self.name}" if self.scale == "log1m" else self.name

    def distribution(self) -> FloatDistribution:
        """The Optuna distribution of ``param_name``."""
        if self.scale == "log1m":
            return FloatDistribution(1.0 - self.high, 1.0 - self.low, log=True)
        return FloatDistribution(self.low, self.high, log=True)

    def value_from_param(self, param: float) -> float:
        return 1.0 - param if self.scale == "log1m" else param

    def value_text(self, value: float) -> str:
        """``value`` as shown to people (``config.value_text``: 3 significant figures, of
        ``1 - beta`` for a beta)."""
        return value_text(self.name, value)

    def range_text(self, separator: str = ":") -> str:
        """The range, ``low`` and ``high`` as ``value_text`` shows them."""
        return f"{self.value_text(self.low)}{separator}{self.value_text(self.high)}"

    def param_from_value(self, value: float) -> float:
        return 1.0 - value if self.scale == "log1m" else value

    def param_from_unit(self, unit: float) -> float:
        """Map ``unit`` in [0, 1) log-uniformly onto the parameter's range."""
        dist = self.distribution()
        log_low, log_high = math.log(dist.low), math.log(dist.high)
        param = math.exp(log_low + unit * (log_high - log_low))
        return min(max(param, dist.low), dist.high)  # exp/log round-off must not leave the range

    def unit_from_value(self, value: float) -> float:
        """Where ``value`` sits on the search scale: 0 at one end of the range, 1 at the other."""
        dist = self.distribution()
        log_low, log_high = math.log(dist.low), math.log(dist.high)
        return (math.log(self.param_from_value(value)) - log_low) / (log_high - log_low)

    def with_range(self, low: float, high: float) -> HyperparameterSpec:
        return replace(self, low=float(low), high=float(high))

    def to_dict(self) -> dict[str, Any]:
        stored: dict[str, Any] = {
            "name": self.name,
            "low": self.low,
            "high": self.high,
            "scale": self.scale,
            "fixed": self.fixed,
        }
        if self.limit is not None:  # absent otherwise: spaces stored before limits read the same
            stored["limit"] = list(self.limit)
        return stored


DEFAULT_SPECS: tuple[HyperparameterSpec, ...] = (
    HyperparameterSpec("lr", 1e-5, 1e-3, "log", None),
    HyperparameterSpec("beta1", 0.9, 0.999, "log1m", 0.9),
    HyperparameterSpec("beta2", 0.99, 0.999, "log1m", 0.999),
    HyperparameterSpec("eps", 1e-8, 1e-6, "log", 1e-8),
    HyperparameterSpec("weight_decay", 1e-5, 1e-1, "log", 0.0),
)
"""PLAYBOOK.md section 1's ranges and fixed values; weight_decay is off (0) unless asked for."""

ADAMW_DEFAULT_WEIGHT_DECAY = 1e-2
"""torch.optim.AdamW's default, used for AdamW and NAdamW when weight_decay is neither tuned nor
fixed (torch.optim.NAdam's own default, 0, would make NAdamW plain NAdam)."""


@dataclass(frozen=True)
class SearchSpace:
    """All five hyperparameters in canonical order, and which of them are tuned."""

    specs: tuple[HyperparameterSpec, ...]
    tuned: tuple[str, ...]
    optimizer: OptimizerName = "adam"

    def __post_init__(self) -> None:
        if tuple(spec.name for spec in self.specs) != HYPERPARAMETERS:
            raise ConfigError(f"space: expected specs for {HYPERPARAMETERS}, got {self.specs}")
        if not self.tuned:
            raise ConfigError("tuned hyperparameters: expected at least one, got none")
        for name in self.tuned:
            _check_known(name)
        if len(set(self.tuned)) != len(self.tuned):
            raise ConfigError(f"tuned hyperparameters: expected no repeats, got {self.tuned}")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer: expected one of {OPTIMIZERS}, got {self.optimizer!r}")
        for spec in self.specs:
            if spec.name not in self.tuned and spec.fixed is None:
                raise ConfigError(
                    f"tune: expected {spec.name} among the tuned hyperparameters (it has no default "
                    f"value) or a fixed {spec.name} (--fix {spec.name}=VALUE, or "
                    f"fixed={{'{spec.name}': VALUE}}), got {', '.join(self.tuned)}"
                )
        # Canonical order, so equal spaces compare and store equal.
        ordered = tuple(name for name in HYPERPARAMETERS if name in self.tuned)
        object.__setattr__(self, "tuned", ordered)

    @classmethod
    def build(
        cls,
        tuned: Iterable[str],
        *,
        ranges: Mapping[str, tuple[float, float]] | None = None,
        fixed: Mapping[str, float] | None = None,
        optimizer: OptimizerName = "adam",
        limits: Mapping[str, tuple[float, float]] | None = None,
    ) -> SearchSpace:
        """The default space with the user's ranges, fixed values and expansion limits applied,
        all validated."""
        ranges = dict(ranges or {})
        fixed = dict(fixed or {})
        limits = dict(limits or {})
        for name in [*ranges, *fixed, *limits]:
            _check_known(name)
        specs = []
        for spec in DEFAULT_SPECS:
            if spec.name in ranges or spec.name in limits:
                low, high = ranges.get(spec.name, (spec.low, spec.high))
                spec = replace(spec, low=float(low), high=float(high), limit=limits.get(spec.name))
            default_fixed = spec.fixed
            if spec.name == "weight_decay" and optimizer in DECOUPLED:
                default_fixed = ADAMW_DEFAULT_WEIGHT_DECAY
            fixed_value = fixed.get(spec.name, default_fixed)
            specs.append(replace(spec, fixed=None if fixed_value is None else float(fixed_value)))
        return cls(tuple(specs), tuple(tuned), optimizer)

    def fixed_apart_from_defaults(self) -> dict[str, float]:
        """The untuned values that differ from PLAYBOOK.md's fixed values (beta1 0.9, beta2
        0.999, eps 1e-8, no weight decay): the user's ``--fix`` or AdamW's weight decay."""
        defaults = {spec.name: spec.fixed for spec in DEFAULT_SPECS}
        return {
            spec.name: spec.fixed
            for spec in self.specs
            if spec.name not in self.tuned and spec.fixed is not None and spec.fixed != defaults[spec.name]
        }

    @property
    def uses_weight_decay(self) -> bool:
        """Whether weight decay is in play: a decoupled optimizer, or a tuned or non-zero fixed
        weight decay."""
        tuned_or_fixed = "weight_decay" in self.tuned or bool(self.spec("weight_decay").fixed)
        return self.optimizer in DECOUPLED or tuned_or_fixed

    def spec(self, name: str) -> HyperparameterSpec:
        _check_known(name)
        return next(spec for spec in self.specs if spec.name == name)

    @property
    def tuned_specs(self) -> tuple[HyperparameterSpec, ...]:
        return tuple(spec for spec in self.specs if spec.name in self.tuned)

    def tuned_ranges(self, separator: str = "..") -> list[str]:
        """``name low..high`` for each tuned hyperparameter, as ``range_text`` shows it."""
        return [f"{spec.name} {spec.range_text(separator)}" for spec in self.tuned_specs]

    def distributions(self) -> dict[str, FloatDistribution]:
        """Optuna parameter name -> distribution, for the tuned hyperparameters."""
        return {spec.param_name: spec.distribution() for spec in self.tuned_specs}

    def params_from_unit(self, unit: Sequence[float]) -> dict[str, float]:
        """Optuna parameters of the point ``unit`` of the unit cube (one dimension per tuned)."""
        if len(unit) != len(self.tuned):
            raise ValueError(f"expected a point with {len(self.tuned)} coordinates, got {unit}")
        return {
            spec.param_name: spec.param_from_unit(float(u))
            for spec, u in zip(self.tuned_specs, unit, strict=True)
        }

    def config_from_params(self, params: Mapping[str, float]) -> AdamConfig:
        """The full configuration: tuned values from ``params``, the rest at their fixed values."""
        values: dict[str, float] = {}
        for spec in self.specs:
            if spec.name in self.tuned:
                values[spec.name] = spec.value_from_param(float(params[spec.param_name]))
            else:
                assert spec.fixed is not None  # checked in __post_init__
                values[spec.name] = spec.fixed
        return AdamConfig(**values, optimizer=self.optimizer)

    def to_dict(self) -> dict[str, Any]:
        return {
            "optimizer": self.optimizer,
            "tuned": list(self.tuned),
            "specs": [spec.to_dict() for spec in self.specs],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SearchSpace:
        specs = tuple(HyperparameterSpec(**spec) for spec in data["specs"])
        return cls(specs, tuple(data["tuned"]), data["optimizer"])

    def differences(self, other: SearchSpace) -> list[str]:
        """Readable differences from ``other`` (empty when the spaces are the same)."""
        found = []
        if self.optimizer != other.optimizer:
            found.append(f"optimizer {self.optimizer} vs {other.optimizer}")
        if self.tuned != other.tuned:
            found.append(f"tuned {','.join(self.tuned)} vs {','.join(other.tuned)}")
        for mine, theirs in zip(self.specs, other.specs, strict=True):
            if mine.name in self.tuned and (mine.low, mine.high) != (theirs.low, theirs.high):
                found.append(
                    f"{mine.name} range {mine.low:g}:{mine.high:g} vs {theirs.low:g}:{theirs.high:g}"
                )
            if mine.name in self.tuned and mine.limit != theirs.limit:
                found.append(f"{mine.name} limit {_limit_text(mine.limit)} vs {_limit_text(theirs.limit)}")
            if mine.name not in self.tuned and mine.fixed != theirs.fixed:
                found.append(f"{mine.name} fixed at {mine.fixed} vs {theirs.fixed}")
        return found

    def describe(self) -> list[str]:
        """One line per hyperparameter: its range and scale when tuned, else its fixed value."""
        lines = []
        for spec in self.specs:
            if spec.name in self.tuned:
                scale = "log(1-beta)" if spec.scale == "log1m" else "log"
                limit = "" if spec.limit is None else f", never beyond {spec.limit[0]:g} .. {spec.limit[1]:g}"
                lines.append(f"{spec.name:<13} tuned  {spec.low:g} .. {spec.high:g} ({scale}{limit})")
            else:
                lines.append(f"{spec.name:<13} fixed  {spec.fixed:g}")
        return lines


def _limit_text(limit: tuple[float, float] | None) -> str:
    return "none" if limit is None else f"{limit[0]:g}:{limit[1]:g}"


def _number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{what}: expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise ConfigError(f"{what}: expected a finite number, got {text!r}")
    return value


def _split_assignment(text: str, option: str, shape: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise ConfigError(f"{option}: expected {shape}, got {text!r}")
    name = name.strip()
    _check_known(name)
    return name, value.strip()


def parse_range(text: str) -> tuple[str, tuple[float, float]]:
    """``"lr=1e-5:1e-1"`` -> ``("lr", (1e-5, 1e-1))``; the range itself is checked by the spec."""
    return _parse_bounds(text, "--range", "lr=1e-5:1e-1", "range")


def parse_limit(text: str) -> tuple[str, tuple[float, float]]:
    """``"lr=1e-6:1"`` -> ``("lr", (1e-6, 1.0))``: how far the playbook may expand lr's range."""
    return _parse_bounds(text, "--limit", "lr=1e-6:1", "limit")


def _parse_bounds(text: str, option: str, example: str, what: str) -> tuple[str, tuple[float, float]]:
    shape = f"NAME=LOW:HIGH such as {example}"
    name, value = _split_assignment(text, option, shape)
    low, sep, high = value.partition(":")
    if not sep:
        raise ConfigError(f"{option}: expected {shape}, got {text!r}")
    return name, (_number(low, f"{what} for {name}"), _number(high, f"{what} for {name}"))


def parse_fixed(text: str) -> tuple[str, float]:
    """``"beta2=0.98"`` -> ``("beta2", 0.98)``."""
    name, value = _split_assignment(text, "--fix", "NAME=VALUE such as beta2=0.98")
    return name, _number(value, f"fixed value for {name}")


def parse_names(text: str) -> tuple[str, ...]:
    """``"lr,beta1"`` -> ``("lr", "beta1")``, each name checked."""
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if not names:
        raise ConfigError(f"--tune: expected names such as lr,beta1, got {text!r}")
    for name in names:
        _check_known(name)
    return names
