"""Coupling of lr and beta1: how the best lr moves across beta1 buckets."""

from __future__ import annotations

import math
from collections.abc import Sequence

from adamtune.diagnostics._base import Finding, ranked
from adamtune.diagnostics.geometry import position, value_at
from adamtune.records import TrialRecord
from adamtune.space import SearchSpace

BUCKETS = 3
MIN_PER_BUCKET = 2
COUPLED_DECADES = 0.5
"""The best lr moving by more than this many decades across beta1 counts as coupled."""


def coupling(records: Sequence[TrialRecord], space: SearchSpace, direction: str) -> list[Finding]:
    if not {"lr", "beta1"} <= set(space.tuned):
        return []
    beta1 = space.spec("beta1")
    buckets: list[list[TrialRecord]] = [[] for _ in range(BUCKETS)]
    for record in ranked(records, direction):  # best first, so bucket[0] is each bucket's best
        assert record.adam is not None
        where = min(max(position(beta1, record.adam.beta1), 0.0), 1.0 - 1e-12)
        buckets[int(where * BUCKETS)].append(record)
    rows = []
    for index, members in enumerate(buckets):
        if len(members) >= MIN_PER_BUCKET and members[0].adam is not None:
            centre = value_at(beta1, (index + 0.5) / BUCKETS)
            rows.append({"beta1": centre, "best_lr": members[0].adam.lr, "trials": len(members)})
    if len(rows) < 2:
        return []
    lrs = [row["best_lr"] for row in rows]
    decades = math.log10(lrs[-1] / lrs[0])  # signed: lowest to highest beta1
    spread = math.log10(max(lrs) / min(lrs))
    moves = " -> ".join(f"{row['best_lr']:.3g} (beta1 ~{beta1.value_text(row['beta1'])})" for row in rows)
    message = f"Best lr per beta1 bucket: {moves}."
    if spread >= COUPLED_DECADES:
        message += (
            f" The best lr moves by {spread:.1f} decades across beta1: lr and beta1 are coupled, "
            "so tune them jointly (as this study does)."
        )
    else:
        message += " The best lr barely moves with beta1 in this study."
    return [
        Finding(
            "coupling",
            "info",
            message,
            {"buckets": rows, "decades": round(decades, 3), "spread": round(spread, 3)},
        )
    ]
