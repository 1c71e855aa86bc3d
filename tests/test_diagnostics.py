"""The playbook's checklist as data, on studies built with known answers."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import adamtune
from adamtune import AdamConfig, Diverged, State, TrialRecord
from adamtune.campaign import Campaign
from adamtune.diagnostics import (
    Finding,
    Noise,
    coupling,
    curves,
    density,
    diagnose,
    estimate_noise,
    infeasible,
    instability,
    within_noise,
)
from adamtune.diagnostics.boundary import NextRound, _company
from adamtune.diagnostics.geometry import expanded, position
from adamtune.diagnostics.importance import MAX_TRIALS, importance
from adamtune.space import DEFAULT_SPECS, SearchSpace
from adamtune.testing import SyntheticObjective

# These tests are about one study searched quasi-randomly (the playbook strategy runs rounds of them).
quasi_random = functools.partial(adamtune.tune, strategy="quasi-random")


STEPS = [100 * (i + 1) for i in range(10)]


def healthy(value: float) -> list[float]:
    """Improves until 70% of training, then holds: neither compute-bound nor flat too early."""
    return [value + 0.3 * max(0.0, 1 - i / 6) ** 2 for i in range(10)]


def valley(lr: float, centre: float = 1e-4, curvature: float = 1.0) -> float:
    return 0.1 + curvature * (math.log10(lr) - math.log10(centre)) ** 2


def study_of(
    value_of: Callable[[adamtune.AdamConfig], float],
    budget: int,
    *,
    shape: Callable[[float], list[float]] = healthy,
    diverges: Callable[[adamtune.AdamConfig], bool] = lambda adam: False,
    **kwargs: object,
) -> adamtune.Study:
    def objective(trial: adamtune.Trial) -> float:
        if diverges(trial.adam):
            raise Diverged("loss was nan")
        values = shape(value_of(trial.adam))
        for step, value in zip(STEPS, values, strict=True):
            trial.report(step, val_loss=value)
        return min(values)

    return quasi_random(objective, budget, storage="memory", **kwargs)  # type: ignore[arg-type]


def only(findings: Sequence[Finding], check: str) -> Finding:
    matching = [f for f in findings if f.check == check]
    assert len(matching) == 1, findings
    return matching[0]


def test_well_centred_study_has_no_false_findings() -> None:
    # A broad valley centred in the range: several trials share the best region.
    study = study_of(lambda adam: valley(adam.lr, curvature=0.1), 16, tune=["lr"])
    findings = diagnose(study)
    assert {f.severity for f in findings} == {"info"}, findings
    assert [f.check for f in findings] == ["density"]
    assert findings[0].numbers["near_best"] >= 3


def test_best_trials_at_the_upper_lr_edge() -> None:
    study = study_of(lambda adam: valley(adam.lr, centre=1e-1), 8)
    finding = only(diagnose(study), "boundary")
    assert finding.severity == "action"
    assert finding.hyperparameter == "lr"
    assert finding.suggested_range == (1e-5, pytest.approx(1e-2))
    assert finding.numbers["side"] == "upper"
    assert finding.numbers["best_position"] >= 0.9
    best = study.best
    assert best is not None and best.adam is not None
    assert finding.numbers["best_value"] == best.adam.lr
    # The space of a study is fixed: the wider range is a new study, and the action says so.
    assert finding.action == (
        "Expand lr to 1e-05..0.01 (one decade above) and tune again under a new study name: "
        "--range lr=1e-05:0.01 (or with --strategy playbook, which expands its ranges itself, in rounds)"
    )


def test_a_campaigns_boundary_action_is_what_a_larger_budget_does(tmp_path: Path) -> None:
    # The same study goes on with a larger budget where its next round would expand the range.
    settings: dict[str, Any] = {"storage": str(tmp_path / "c.journal"), "tune": ["lr"], "confirm": 0}
    campaign = adamtune.tune(lambda trial: valley(trial.adam.lr, centre=10.0), 4, **settings)
    assert isinstance(campaign, Campaign) and campaign.rounds[-1].searched.spec("lr").high == pytest.approx(
        1e-2
    )
    assert only(diagnose(campaign), "boundary").action == (
        "Expand lr to 1e-05..0.1: run the study's command again (with a larger --budget once it has "
        "finished), and its next round explores that range; or tune under a new study name with "
        "--range lr=1e-05:0.1"
    )
    grown = adamtune.tune(lambda trial: valley(trial.adam.lr, centre=10.0), 8, **settings)
    assert isinstance(grown, Campaign) and grown.rounds[-1].searched.spec("lr").high == pytest.approx(0.1)
    # Two decades past the start: the campaign stops there, and the action says so.
    assert only(diagnose(grown), "boundary").action == (
        "Expand lr to 1e-05..1 (one decade above) and tune again under a new study name: "
        "--range lr=1e-05:1 (a larger --budget would not expand it in this study: the playbook "
        "strategy expands a range at most two decades past where it started)"
    )


def test_a_campaign_says_why_its_next_round_would_not_expand_a_range() -> None:
    lr = SearchSpace.build(["lr"]).spec("lr")  # 1e-5..1e-3
    spent = NextRound({}, {"lr": (1e-7, 1e-1)}, "it has had its 3 expansion rounds")
    assert spent.why_not(lr, "upper") == "it has had its 3 expansion rounds"
    at_reach = NextRound({}, {"lr": (1e-7, 1e-3)})
    assert at_reach.why_not(lr, "upper").endswith("at most two decades past where it started")
    assert at_reach.why_not(lr, "lower").endswith("by that the best is not at this edge")


def test_boundary_on_the_beta_scale() -> None:
    # The best beta1 is near 0.999: the upper edge, where 1 - beta1 is smallest.
    study = study_of(lambda adam: valley(adam.lr) + 10 * (1 - adam.beta1), 16)
    finding = only(diagnose(study), "boundary")
    assert finding.hyperparameter == "beta1"
    assert finding.numbers["side"] == "upper"
    assert finding.suggested_range == (0.9, pytest.approx(0.9999))
    best = study.best
    assert best is not None and best.adam is not None
    shown = DEFAULT_SPECS[1].value_text(best.adam.beta1)
    assert shown != "0.999"  # inside the range, and shown so (3 figures of beta1 itself: 0.999)
    assert (
        f"The best trial's beta1 ({shown}) sits in the upper 10% of its range 0.9..0.999" in finding.message
    )
    # The best is the only one of the 3 trials within its noise at the edge.
    assert "and none of the 2 other trials within the noise of the best is there" in finding.message


@pytest.mark.parametrize(
    ("at_edge", "others", "text"),
    [
        (0, 0, "no other trial lies within the noise of the best"),
        (1, 1, "the one other trial within the noise of the best sits there too"),
        (0, 1, "the one other trial within the noise of the best is not there"),
        (0, 2, "none of the 2 other trials within the noise of the best is there"),
        (1, 3, "1 of the 3 other trials within the noise of the best sits there too"),
        (2, 3, "2 of the 3 other trials within the noise of the best sit there too"),
        (3, 3, "all 3 other trials within the noise of the best sit there too"),
    ],
)
def test_the_boundary_finding_counts_the_other_trials_at_the_best_ones_edge(
    at_edge: int, others: int, text: str
) -> None:
    assert _company(at_edge, others) == text


def test_expansion_is_one_decade_on_the_search_scale_and_stays_legal() -> None:
    lr, beta1, _, eps, _ = DEFAULT_SPECS
    assert expanded(lr, "upper") == (1e-5, pytest.approx(1e-2))
    assert expanded(lr, "lower") == (pytest.approx(1e-6), 1e-3)
    assert expanded(eps, "lower") == (pytest.approx(1e-9), 1e-6)
    assert expanded(beta1, "upper") == (0.9, pytest.approx(0.9999))
    assert expanded(beta1, "lower") == (0.0, 0.999)  # 1 - 0.9 = 0.1 -> 1.0: beta1 = 0, not below
    assert position(beta1, 0.999) == pytest.approx(1.0)
    assert position(beta1, 0.9) == pytest.approx(0.0)
    assert position(lr, 1e-4) == pytest.approx(0.5)


def test_most_trials_above_some_lr_diverge() -> None:
    study = study_of(
        lambda adam: valley(adam.lr, centre=1e-3), 16, tune=["lr"], diverges=lambda adam: adam.lr > 1.5e-4
    )
    records = study.trials
    diverged = sorted(r.adam.lr for r in records if r.state == "infeasible" and r.adam)
    feasible = sorted(r.adam.lr for r in records if r.state == "complete" and r.adam)

    finding = only(infeasible(records, study.space), "infeasible")
    assert finding.severity == "action"
    assert finding.numbers["diverged"] == len(diverged) and len(diverged) >= 6
    assert finding.numbers["tail_count"] == len(diverged)
    assert finding.numbers["first_diverged"] == diverged[0]
    assert finding.numbers["last_feasible"] == feasible[-1]
    assert f"All {len(diverged)} trials with lr >= {diverged[0]:.3g} diverged" in finding.message
    low, high = finding.suggested_range or (0, 0)
    assert low == 1e-5
    assert high == pytest.approx(math.sqrt(diverged[0] * feasible[-1]))

    # The best lr is the largest that did not diverge: right at the edge of instability.
    unstable = only(instability(records, study.space, "minimize"), "instability")
    assert unstable.numbers["best_lr"] == feasible[-1]
    assert "warmup or gradient clipping" in (unstable.action or "")
    assert f"{5 * feasible[-1]:.3g}-{10 * feasible[-1]:.3g}" in (unstable.action or "")


def test_few_divergent_trials_far_from_the_best_are_only_a_warning() -> None:
    study = study_of(
        lambda adam: valley(adam.lr, centre=1e-4), 16, tune=["lr"], diverges=lambda adam: adam.lr > 7e-4
    )
    findings = diagnose(study)
    finding = only(findings, "infeasible")
    assert finding.severity == "warning" and finding.suggested_range is None
    assert finding.numbers["share"] < 0.2
    assert not [f for f in findings if f.check == "instability"]


def test_one_trial_in_the_good_region() -> None:
    def value_of(adam: adamtune.AdamConfig) -> float:
        return 0.1 if abs(math.log10(adam.lr) + 4) < 0.06 else 1.0 + abs(math.log10(adam.lr))

    study = study_of(value_of, 12, tune=["lr"])
    records = study.trials
    assert sum(1 for r in records if r.value == 0.1) == 1
    noise = estimate_noise(records, "minimize")
    assert noise.source == "best-spread"
    finding = only(density(records, "minimize", noise), "density")
    assert finding.severity == "warning"
    assert finding.numbers["near_best"] == 1
    assert "barely sampled" in finding.message


def test_noise_from_repeated_seeds_is_preferred_and_said() -> None:
    # Identical configurations (lr fixed, only eps tuned over a point range) stand in for seeds.
    study = study_of(lambda adam: 0.5, 4, tune=["eps"], fixed={"lr": 1e-3})
    noise = estimate_noise(study.trials, "minimize")
    assert noise.source == "best-spread"
    repeated = [
        adamtune.TrialRecord(i, adamtune.State.COMPLETE, v, adamtune.AdamConfig(lr=lr), i, i)
        for i, (lr, v) in enumerate([(1e-3, 1.0), (1e-3, 1.2), (2e-3, 2.0), (2e-3, 2.2)])
    ]
    noise = estimate_noise(repeated, "minimize")
    assert noise.source == "seeds"
    assert noise.value == pytest.approx(math.sqrt(0.02))  # pooled: variances 0.02 and 0.02
    assert "4 runs of 2 configurations" in noise.detail


def test_a_configuration_trained_again_counts_once_in_the_good_region() -> None:
    # The best configuration run twice (as a remeasure round does), one other near it, two far.
    runs = [(1e-3, 1.00), (1e-3, 1.04), (2e-3, 1.05), (5e-3, 2.0), (1e-4, 2.5)]
    records = [
        adamtune.TrialRecord(i, adamtune.State.COMPLETE, v, adamtune.AdamConfig(lr=lr), i, i)
        for i, (lr, v) in enumerate(runs)
    ]
    noise = estimate_noise(records, "minimize")
    assert noise.source == "seeds" and noise.value == pytest.approx(0.04 / math.sqrt(2))
    assert [r.number for r in within_noise(records, "minimize", noise)] == [0, 2]  # each its best run
    finding = only(density(records, "minimize", noise), "density")
    assert finding.numbers["near_best"] == 2 and finding.numbers["near_best_runs"] == 3
    assert finding.severity == "warning"  # 2 configurations: barely sampled, however many runs
    assert finding.message.startswith(
        "2 configurations (3 of 5 complete trials, a configuration trained on several seeds counted once) "
        "are within the noise of the best"
    )
    # Without the second run the count and the message are the trials' as before.
    once = only(density(records[1:], "minimize", noise), "density")
    assert once.numbers["near_best"] == once.numbers["near_best_runs"] == 2
    assert once.message.startswith("2 of 4 complete trials are within the noise of the best")


CURVE_NOISE = Noise(0.05, "seeds", "given")


def curve_study(shape: Callable[[float], list[float]]) -> adamtune.Study:
    return study_of(lambda adam: valley(adam.lr), 4, tune=["lr"], shape=shape)


def test_a_curve_that_overfits() -> None:
    study = curve_study(
        lambda v: [v + 1, v + 0.5, v, v + 0.1, v + 0.2, v + 0.3, v + 0.4, v + 0.5, v + 0.6, v + 0.7]
    )
    finding = only(curves(study.trials, "val_loss", "minimize", CURVE_NOISE), "curves")
    assert finding.severity == "warning" and "overfitting" in finding.message
    rows = finding.numbers["trials"]
    assert len(rows) == 3
    assert all(row["best_step"] == 300 for row in rows)
    assert all(row["rise"] == pytest.approx(0.7) for row in rows)
    assert "add regularisation (weight decay: --optimizer adamw or nadamw) or more data" in (
        finding.action or ""
    )


@pytest.mark.parametrize("optimizer", ["adamw", "nadamw"])
def test_overfitting_with_decoupled_weight_decay_asks_for_more_of_it(optimizer: str) -> None:
    overfits = [1.0, 0.5, 0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]
    study = study_of(
        lambda adam: valley(adam.lr),
        4,
        tune=["lr"],
        shape=lambda v: [v + d for d in overfits],
        optimizer=optimizer,
    )
    finding = only(curves(study.trials, "val_loss", "minimize", CURVE_NOISE), "curves")
    assert (
        "add more weight decay than these trials' 0.01 (tune it: add weight_decay to --tune) or more data"
        in (finding.action or "")
    )


def test_a_curve_still_improving_at_the_end() -> None:
    study = curve_study(lambda v: [v + 1 - i / 9 for i in range(10)])
    finding = only(curves(study.trials, "val_loss", "minimize", CURVE_NOISE), "curves")
    assert "still improving" in finding.message and "Train longer" in (finding.action or "")
    assert finding.numbers["trials"][0]["gain_in_last_quarter"] == pytest.approx(3 / 9)


def test_a_curve_flat_long_before_the_end() -> None:
    study = curve_study(lambda v: [v + 1, v + 0.01] + [v + 0.001 * (8 - i) for i in range(8)])
    finding = only(curves(study.trials, "val_loss", "minimize", CURVE_NOISE), "curves")
    assert finding.severity == "info" and "flat" in finding.message
    assert finding.numbers["trials"][0]["flat_from_step"] == 200


def test_a_curve_with_late_jitter() -> None:
    study = curve_study(
        lambda v: [v + 1, v + 0.8, v + 0.6, v + 0.5, v + 0.4, v + 0.3, v + 0.1, v + 0.4, v, v + 0.3]
    )
    found = {f.message.split(": ", 1)[1] for f in curves(study.trials, "val_loss", "minimize", CURVE_NOISE)}
    assert any("jumps from one evaluation to the next" in text for text in found)


def test_coupling_reports_the_best_lr_per_beta1_bucket() -> None:
    beta1 = DEFAULT_SPECS[1]

    def value_of(adam: adamtune.AdamConfig) -> float:
        # The best lr falls two decades as beta1 goes from 0.9 to 0.999.
        return valley(adam.lr, centre=10 ** (-3 - 2 * position(beta1, adam.beta1)))

    study = study_of(value_of, 48, tune=["lr", "beta1"], ranges={"lr": (1e-6, 1e-2)})
    finding = only(coupling(study.trials, study.space, "minimize"), "coupling")
    buckets = finding.numbers["buckets"]
    assert len(buckets) == 3
    assert [b["beta1"] for b in buckets] == sorted(b["beta1"] for b in buckets)
    assert sum(b["trials"] for b in buckets) == 48
    assert -2.0 <= finding.numbers["decades"] < -0.9
    assert "coupled" in finding.message
    # Bucket centres at 1/6, 1/2 and 5/6 of log(1 - beta1) over 1e-1..1e-3, shown by 1 - beta1.
    assert "(beta1 ~0.9536)" in finding.message and "(beta1 ~0.99785)" in finding.message


def test_no_coupling_finding_without_both_lr_and_beta1() -> None:
    study = study_of(lambda adam: valley(adam.lr), 8, tune=["lr"])
    assert coupling(study.trials, study.space, "minimize") == []


def test_importance_warns_below_its_trial_count() -> None:
    study = quasi_random(SyntheticObjective(), 10, storage="memory")
    finding = only(diagnose(study), "importance")
    assert finding.severity == "warning"
    assert finding.numbers["minimum_trials"] == 15
    assert set(finding.numbers["importance"]) == {"lr", "beta1"}
    assert sum(finding.numbers["importance"].values()) == pytest.approx(1.0)

    bigger = quasi_random(SyntheticObjective(), 20, storage="memory", tune=["lr", "beta1"])
    finding = only(diagnose(bigger), "importance")
    assert finding.severity == "info"
    assert max(finding.numbers["importance"], key=finding.numbers["importance"].get) == "lr"


def test_importance_of_a_large_study_reads_a_random_sample_of_its_trials() -> None:
    # fANOVA's cost grows faster than the square of its trials: past MAX_TRIALS it reads that
    # many, drawn at random, and says so; lr (a bowl) still ranks first, beta1 (flat) last.
    rng = np.random.default_rng(0)
    records = []
    for n in range(MAX_TRIALS + 100):
        lr, beta1 = 10 ** rng.uniform(-5, -3), 1 - 10 ** rng.uniform(-3, -1)
        value = (math.log10(lr) + 4) ** 2 + 0.01 * rng.normal()
        records.append(TrialRecord(n, State.COMPLETE, value, AdamConfig(lr=lr, beta1=beta1), n, n))
    space = SearchSpace.build(["lr", "beta1"])
    (finding,) = importance(records, space)
    assert finding.severity == "info"
    assert finding.message.startswith(
        f"fANOVA importance over a random {MAX_TRIALS} of {MAX_TRIALS + 100} trials: lr "
    )
    assert finding.numbers["trials"] == MAX_TRIALS and finding.numbers["feasible"] == MAX_TRIALS + 100
    assert finding.numbers["importance"]["lr"] > 0.9


def test_findings_come_most_urgent_first_and_serialise() -> None:
    study = study_of(lambda adam: valley(adam.lr, centre=1e-1), 8)
    findings = diagnose(study)
    order = {"action": 0, "warning": 1, "info": 2}
    assert [order[f.severity] for f in findings] == sorted(order[f.severity] for f in findings)
    assert all(isinstance(f.to_dict()["message"], str) for f in findings)


def test_space_is_not_changed_by_diagnosis() -> None:
    study = study_of(lambda adam: valley(adam.lr, centre=1e-1), 8)
    before = study.space
    diagnose(study)
    assert study.space == before == SearchSpace.from_dict(study.space.to_dict())


def test_the_outermost_trial_among_the_best_two_counts_as_at_the_edge() -> None:
    # Ten quasi-random points (seed 0): the highest lr falls at 89% of its range, just short of
    # the 10% band, and the objective still improves towards the upper edge.
    study = study_of(lambda adam: valley(adam.lr, centre=1e-2), 10, tune=["lr", "beta1"])
    finding = only(diagnose(study), "boundary")
    assert finding.severity == "action" and finding.numbers["side"] == "upper"
    assert finding.numbers["rule"] == "outermost trial among the best two"
    assert finding.suggested_range == (1e-5, pytest.approx(1e-2))
    assert "closest to the upper edge of lr's range 1e-05..0.001 (0.000599, at 89% of the range" in (
        finding.message
    )
    # An optimum inside the range, with the outermost trial far from the best: no finding.
    centred = study_of(lambda adam: valley(adam.lr, centre=2e-4, curvature=3.0), 10, tune=["lr", "beta1"])
    assert not [f for f in diagnose(centred) if f.check == "boundary"]


def test_a_best_trial_at_a_legal_limit_is_context_not_an_action() -> None:
    # beta1 searched down to 0, and the lower the better: there is nothing beyond to explore.
    study = study_of(
        lambda adam: 0.1 + adam.beta1 + 0.01 * abs(math.log10(adam.lr / 1e-4)),
        16,
        tune=["lr", "beta1"],
        ranges={"beta1": (0.0, 0.9)},
    )
    finding = only([f for f in diagnose(study) if f.hyperparameter == "beta1"], "boundary")
    assert finding.severity == "info" and finding.action is None and finding.suggested_range is None
    assert finding.message.endswith("the range already reaches the legal limit of beta1, 0.")
    assert "may lie below" not in finding.message


def test_a_users_limit_clips_the_expansion_then_stops_it() -> None:
    # lr: the higher the better; the user allows lr up to 3e-3 only.
    def higher_lr_is_better(adam: adamtune.AdamConfig) -> float:
        return 0.1 - 0.01 * math.log10(adam.lr) + 0.001 * abs(math.log10(1 - adam.beta1) + 2)

    limited = study_of(higher_lr_is_better, 16, tune=["lr", "beta1"], limits={"lr": (1e-5, 3e-3)})
    finding = only([f for f in diagnose(limited) if f.hyperparameter == "lr"], "boundary")
    assert finding.severity == "action" and finding.suggested_range == pytest.approx((1e-5, 3e-3))
    assert finding.action is not None and "(up to the limit you set above)" in finding.action
    at_limit = study_of(
        higher_lr_is_better,
        16,
        tune=["lr", "beta1"],
        ranges={"lr": (1e-5, 3e-3)},
        limits={"lr": (1e-5, 3e-3)},
    )
    finding = only([f for f in diagnose(at_limit) if f.hyperparameter == "lr"], "boundary")
    assert finding.severity == "info" and finding.action is None and finding.suggested_range is None
    assert finding.message.endswith("the range already reaches the limit you set for lr, 0.003.")


def test_the_outermost_rule_at_a_legal_limit_is_context_too() -> None:
    from adamtune.config import AdamConfig
    from adamtune.diagnostics import boundary
    from adamtune.outcomes import State
    from adamtune.records import TrialRecord

    space = SearchSpace.build(["lr", "beta1"], ranges={"beta1": (0.0, 0.9)})
    # beta1 0.25 sits at 12.5% of the range from its lower (legal) edge 0, and is the best.
    values = {0.25: 0.10, 0.5: 0.30, 0.7: 0.40, 0.8: 0.45, 0.85: 0.50}
    records = [
        TrialRecord(n, State.COMPLETE, value, AdamConfig(lr=1e-4, beta1=beta1), n, n)
        for n, (beta1, value) in enumerate(values.items())
    ]
    (finding,) = boundary(records, space, "minimize", Noise(0.01, "seeds", "test"))
    assert finding.hyperparameter == "beta1" and finding.severity == "info"
    assert finding.numbers["rule"] == "outermost trial among the best two"
    assert finding.message.endswith("the range already reaches the legal limit of beta1, 0.")
