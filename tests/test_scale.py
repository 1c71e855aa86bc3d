"""Which values are read as their logs: the report's axes and the recommendation's GP."""

from __future__ import annotations

import math

import pytest

from adamtune.scale import value_scale


@pytest.mark.parametrize(
    ("values", "direction", "scale"),
    [
        ([0.15, 1.0, 14.7], "minimize", "log"),  # a loss whose worst trials are 100x its best
        ([0.1, 0.5, 1.0], "minimize", "log"),  # a decade exactly
        ([0.33, 0.5, 0.9], "minimize", "linear"),  # an error rate: less than a decade
        ([0.15, 1.0, 14.7], "maximize", "linear"),  # the good values are the large ones
        ([0.0, 1.0, 14.7], "minimize", "linear"),  # no log of 0
        ([-2.0, 1.0, 14.7], "minimize", "linear"),
        ([0.5, math.inf, 0.6], "minimize", "linear"),  # inf is not a value drawn
        ([], "minimize", "linear"),
    ],
)
def test_the_objective_axis_is_logarithmic_where_values_to_minimise_span_a_decade(
    values: list[float], direction: str, scale: str
) -> None:
    assert value_scale(values, direction) == scale
