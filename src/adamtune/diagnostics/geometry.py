"""Positions on a hyperparameter's search scale, oriented by value (0: low end, 1: high end)."""

from __future__ import annotations

import math

from adamtune.space import HyperparameterSpec


def position(spec: HyperparameterSpec, value: float) -> float:
    """Where ``value`` sits in the range on its search scale: 0 at ``low``, 1 at ``high``.

    For betas the search scale is log(1 - beta), which runs the other way; flip it so that
    "upper edge" always means values near ``high``.
    """
    unit = spec.unit_from_value(value)
    return 1.0 - unit if spec.scale == "log1m" else unit


def value_at(spec: HyperparameterSpec, where: float) -> float:
    """The value at position ``where`` (the inverse of ``position``)."""
    unit = 1.0 - where if spec.scale == "log1m" else where
    return spec.value_from_param(spec.param_from_unit(unit))


def expanded(spec: HyperparameterSpec, side: str, decades: float = 1.0) -> tuple[float, float]:
    """The range grown by ``decades`` on its search scale towards ``side``, kept legal and
    inside the user's limit."""
    factor = 10.0**decades
    low, high = spec.low, spec.high
    if spec.scale == "log":
        grown = (low / factor, high) if side == "lower" else (low, high * factor)
    elif side == "upper":  # beta towards 1: shrink 1 - beta
        grown = low, 1.0 - (1.0 - high) / factor
    else:
        wider = (1.0 - low) * factor
        grown = (0.0 if wider >= 1.0 - 1e-9 else 1.0 - wider), high  # beta >= 0, without round-off
    return spec.clipped_to_limit(*grown)


def geometric_middle(spec: HyperparameterSpec, a: float, b: float) -> float:
    """The midpoint of two values on the spec's search scale."""
    pa, pb = spec.param_from_value(a), spec.param_from_value(b)
    return spec.value_from_param(math.sqrt(pa * pb))
