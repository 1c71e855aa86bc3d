"""Sampling density (checklist item 2): how many trials landed in the good region?"""

from __future__ import annotations

from collections.abc import Sequence

from adamtune.choice import best_configurations
from adamtune.diagnostics._base import NEAR, Finding, Noise, complete, in_band
from adamtune.records import TrialRecord

FEW = 2
"""At most this many trials near the best: the good region is barely sampled."""


def density(records: Sequence[TrialRecord], direction: str, noise: Noise) -> list[Finding]:
    total = len(complete(records))
    if noise.source == "none":
        return [
            Finding(
                "density",
                "info",
                f"Only {total} complete trials: too few to judge the sampling density or the noise.",
                {"complete": total},
            )
        ]
    band = in_band(records, direction, noise)
    near = best_configurations(band, direction)  # within_noise: a configuration counts once
    runs = len(band)
    numbers = {
        "near_best": len(near),
        "near_best_runs": runs,
        "complete": total,
        "noise": noise.value,
        "noise_source": noise.source,
        "trials": [r.number for r in near],
    }
    # A configuration trained on several seeds is one point of the region, however many runs.
    counted = (
        f"{len(near)} of {total} complete trials are"
        if runs == len(near)
        else f"{len(near)} configuration{'s' if len(near) != 1 else ''} ({runs} of {total} complete "
        f"trials, a configuration trained on several seeds counted once) {'are' if len(near) != 1 else 'is'}"
    )
    message = (
        f"{counted} within the noise of the best ({NEAR:g} x "
        f"{noise.value:.3g}, the noise being the {noise.detail})."
    )
    if len(near) <= FEW:
        return [
            Finding(
                "density",
                "warning",
                message + " The good region is barely sampled.",
                numbers,
                "Sample more trials in the current space, or narrow it around the best trials "
                "before trusting the best one.",
            )
        ]
    return [Finding("density", "info", message, numbers)]
