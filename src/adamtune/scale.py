"""How a study's values are read: as they are, or as their logs.

A value to minimise that is positive and spans a decade or more across the trials (a
regression's mean squared error, whose untrained trials are 100 times its tuned ones) varies
by factors, not by amounts: read on its own scale, its bad trials set every scale and the
trials near the best, which are the ones compared, look flat. The report draws such values on
a log axis (``adamtune.plots``), and the recommendation fits its GP to their logs
(``adamtune.choice``). To maximise (an accuracy), the good values are the large ones, which a
log squeezes: those are read as they are.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

ValueScale = Literal["linear", "log"]

LOG_SPREAD = 10.0
"""Values to minimise whose largest is this many times their smallest, or more, are read as logs."""


def value_scale(values: Sequence[float], direction: str) -> ValueScale:
    """ "log" where the finite ``values`` are all positive, to be minimised, and span at least
    ``LOG_SPREAD``; else "linear"."""
    finite = [v for v in values if math.isfinite(v)]
    if direction != "minimize" or not finite or min(finite) <= 0:
        return "linear"
    return "log" if max(finite) / min(finite) >= LOG_SPREAD else "linear"
