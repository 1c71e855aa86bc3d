"""The playbook's checklist for reading a study (PLAYBOOK.md section 4), as data.

Every check is a pure function of the study's trials that returns ``Finding`` objects; the
plots and the report render them, and the strategies act on their suggested ranges.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from adamtune.diagnostics._base import Finding, Noise, Severity, estimate_noise, within_noise
from adamtune.diagnostics.boundary import boundary
from adamtune.diagnostics.coupling import coupling
from adamtune.diagnostics.curves import curves
from adamtune.diagnostics.density import density
from adamtune.diagnostics.divergence import divergent_tail, infeasible, instability
from adamtune.diagnostics.importance import importance

if TYPE_CHECKING:
    from adamtune.study import Study

__all__ = [
    "Finding",
    "Noise",
    "Severity",
    "boundary",
    "coupling",
    "curves",
    "density",
    "diagnose",
    "divergent_tail",
    "estimate_noise",
    "importance",
    "infeasible",
    "instability",
    "within_noise",
]


def diagnose(study: Study) -> list[Finding]:
    """Every check over ``study``, most urgent first (actions, then warnings, then context)."""
    from adamtune.diagnostics._base import SEVERITY_ORDER

    records = study.trials
    info = study.info
    noise = estimate_noise(records, info.direction)
    findings = [
        *boundary(records, info.space, info.direction, noise),
        *density(records, info.direction, noise),
        *infeasible(records, info.space),
        *instability(records, info.space, info.direction),
        *coupling(records, info.space, info.direction),
        *curves(records, info.metric, info.direction, noise),
        *importance(study.optuna, info.space),
    ]
    return sorted(findings, key=lambda f: SEVERITY_ORDER[f.severity])
