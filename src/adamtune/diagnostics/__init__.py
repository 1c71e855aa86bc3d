"""The playbook's checklist for reading a study (PLAYBOOK.md section 4), as data.

Every check is a pure function of the study's trials that returns ``Finding`` objects; the
plots and the report render them, and the strategies act on their suggested ranges.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from adamtune.diagnostics._base import Finding, Noise, Severity, estimate_noise, within_noise
from adamtune.diagnostics.boundary import boundary
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
    info = study.info
    return diagnose_records(study.trials, info.space, info.direction, info.metric)


def diagnose_records(
    records: Sequence[TrialRecord], space: SearchSpace, direction: str, metric: str
) -> list[Finding]:
    """Every check over ``records`` read against ``space``, most urgent first."""
    from adamtune.diagnostics._base import SEVERITY_ORDER

    noise = estimate_noise(records, direction)
    findings = [
        *boundary(records, space, direction, noise),
        *density(records, direction, noise),
        *infeasible(records, space),
        *instability(records, space, direction),
        *coupling(records, space, direction),
        *curves(records, metric, direction, noise),
        *importance(records, space),
    ]
    return sorted(findings, key=lambda f: SEVERITY_ORDER[f.severity])
