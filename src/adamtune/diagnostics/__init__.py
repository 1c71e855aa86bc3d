"""The playbook's checklist for reading a study (PLAYBOOK.md section 4), as data.

Every check is a pure function of the study's trials that returns ``Finding`` objects; the
plots and the report render them, and the strategies act on their suggested ranges.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from adamtune.diagnostics._base import Finding, Noise, Severity, estimate_noise, within_noise
from adamtune.diagnostics.boundary import NextRound, boundary
from adamtune.diagnostics.coupling import coupling
from adamtune.diagnostics.curves import curves
from adamtune.diagnostics.density import density
from adamtune.diagnostics.divergence import divergent_tail, infeasible, instability
from adamtune.diagnostics.importance import importance

if TYPE_CHECKING:
    from adamtune.records import TrialRecord
    from adamtune.space import SearchSpace
    from adamtune.study import Study

__all__ = [
    "Finding",
    "Noise",
    "Severity",
    "boundary",
    "confirmed_noise",
    "coupling",
    "curves",
    "density",
    "diagnose",
    "diagnose_records",
    "divergent_tail",
    "estimate_noise",
    "importance",
    "infeasible",
    "instability",
    "within_noise",
]


def diagnose(study: Study) -> list[Finding]:
    """Every check over ``study``, most urgent first (actions, then warnings, then context)."""
    from adamtune.campaign import Campaign, next_round

    info = study.info
    noise = confirmed_noise(study)
    ahead = next_round(study) if isinstance(study, Campaign) else None
    return diagnose_records(study.trials, info.space, info.direction, info.metric, noise, next_round=ahead)


def confirmed_noise(study: Study) -> Noise | None:
    """The trial spread the study's confirmation measured, when it ran on 2 seeds or more.

    Seed noise next to the best configurations, measured on fresh seeds: the playbook's trial
    variance (PLAYBOOK.md section 5), where the spread of the best trials mixes noise with real
    differences.
    """
    confirmation = study.confirmation
    if confirmation is None or not confirmation.complete or confirmation.trial_std is None:
        return None
    measured = [c for c in confirmation.trained if c.std is not None]
    runs = sum(len(c.values) for c in measured)
    return Noise(
        confirmation.trial_std,
        "seeds",
        f"pooled standard deviation of the confirmation's {runs} runs: {len(measured)} "
        f"configurations on the same {len(confirmation.seeds)} fresh seeds",
    )


def diagnose_records(
    records: Sequence[TrialRecord],
    space: SearchSpace,
    direction: str,
    metric: str,
    noise: Noise | None = None,
    *,
    next_round: NextRound | None = None,
) -> list[Finding]:
    """Every check over ``records`` read against ``space``, most urgent first; ``noise`` is the
    objective's noise when measured elsewhere (else estimated from ``records``); ``next_round``:
    a playbook campaign's next expansions, which its boundary actions name."""
    from adamtune.diagnostics._base import SEVERITY_ORDER

    noise = noise if noise is not None else estimate_noise(records, direction)
    findings = [
        *boundary(records, space, direction, noise, next_round=next_round),
        *density(records, direction, noise),
        *infeasible(records, space),
        *instability(records, space, direction),
        *coupling(records, space, direction),
        *curves(records, metric, direction, noise),
        *importance(records, space),
    ]
    return sorted(findings, key=lambda f: SEVERITY_ORDER[f.severity])
