"""The regression benchmark: a loss that spans decades, chosen from on its values and its logs."""

from __future__ import annotations

import sys
from pathlib import Path

import adamtune
from adamtune.adaptive import PrunedAwareGPSampler

sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))

import quality_regression


def test_a_study_scores_each_choice_by_its_retraining_on_fresh_seeds() -> None:
    quality: dict[adamtune.AdamConfig, float] = {}
    row = quality_regression.one_study(8, 0, quality)
    assert row["spread"] >= 10  # the regression's loss spans decades even in 8 trials
    # Each distinct chosen configuration retrained once; every choice scored by its retraining.
    assert 1 <= len(quality) <= 3
    assert {row[rule]["true"] for rule in ("observed", "linear", "log")} <= set(quality.values())
    # The best observed trial is the study's lowest value; every choice is one of its trials.
    assert row["observed"]["observed"] == min(row[rule]["observed"] for rule in ("observed", "linear", "log"))
    # A configuration's true quality is the mean over the fresh seeds, computed once.
    adam = next(iter(quality))
    again = [
        quality_regression.train(adam, quality_regression.FRESH_SEED + k)
        for k in range(quality_regression.SEEDS)
    ]
    assert quality[adam] == sum(again) / len(again)


def test_the_exploit_variant_is_undone_after_each_study() -> None:
    product = PrunedAwareGPSampler._sample_relative_impl
    row = quality_regression.one_exploit_pair(8, 0, {})
    assert PrunedAwareGPSampler._sample_relative_impl is product
    assert set(row) == {"budget", "rep", "values", "logs"} and row["values"]["true"] > 0
    lines = quality_regression.exploit_summary([row])
    assert lines[0].startswith("budget 8, 1 studies: true validation MSE of the recommendation")
