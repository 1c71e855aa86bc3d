"""The playbook strategy: rounds of exploration, range changes read from the diagnostics, a
final round of constrained Bayesian optimisation, then a confirmation on several seeds.

Each round is its own Optuna study (``NAME::round-K``, with one fixed space, as Optuna's
samplers need), and the rounds form one campaign under the user's study name ``NAME``: an
Optuna study without trials whose user attributes hold the campaign's settings and its list of
rounds (kind, budget, space, seed and the reason for each). ``Campaign`` reads the rounds back
as one study: its trials carry a ``round`` and a campaign-wide number.

After each exploration round the diagnostics of all trials so far decide:

- a boundary finding (the best trials at the edge of a range) expands that range one decade
  in that direction, at most ``MAX_DECADES`` beyond the starting range and never outside the
  legal domain or the user's limit, and another exploration round samples the expanded space's
  new side (``narrowing.expansion_focus``: from one trial spacing behind the best trial, since
  the far side was searched already; the expanded space stays the round's ``settled`` space,
  which the diagnostics and the next plan read);
- a large infeasible share with a divergent tail narrows that range away from the divergent
  region (the cut lies between the last trial that trained and the first that diverged).

The budget split is ``strategy.plan_next_round``'s. The final round uses ``AdaptiveSampler``
("gp": Optuna's GPSampler with the ``diverged`` constraint, i.e. constrained LogEI, fitted
also on pruned trials) over the settled space narrowed (with 20 feasible trials or more;
``narrowing``): to a trust region around the recommended trial when no range was expanded,
else around the best trials so far. A long round with no expansion runs as two rounds of half
each, the second in another trust region, around the best explored trial outside the first box
(``narrowing.split_round``). Each starts from a copy of every earlier trial that lies in its
space (marked ``copy_of``: data for the sampler, not results of the round).

The plan of each new round is written to the campaign before the round starts and is a pure
function of the trials before it, so an interrupted campaign resumes exactly where it stopped.

A finished campaign run again with a larger budget is extended (``_open_campaign``): the
extension is recorded in its settings, and its first new round is planned as after an
exploration round, from the diagnostics of every trial so far (the playbook's "run another
round"), whatever kind of round came last.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import optuna
from optuna.distributions import FloatDistribution
from optuna.storages import BaseStorage
from optuna.trial import TrialState, create_trial

from adamtune.adaptive import AdaptiveSampler, derived_seed
from adamtune.allocation import COPY_OF, POINT, RETRY_OF, Tally, has_result, is_copy
from adamtune.choice import Recommendation, best_first, recommend_remeasured, remeasure_candidates
from adamtune.config import AdamConfig
from adamtune.diagnostics import Finding, diagnose_records
from adamtune.diagnostics._base import estimate_noise
from adamtune.diagnostics.boundary import NextRound, boundary
from adamtune.environment import current_environment
from adamtune.errors import StudyMismatchError
from adamtune.executors import Executor, Objective
from adamtune.narrowing import expansion_focus, exploitation_space, second_trust_region, split_round
from adamtune.records import TrialRecord
from adamtune.sampling import PointListSampler, QuasiRandomSampler
from adamtune.space import HyperparameterSpec, SearchSpace
from adamtune.strategy import (
    MAX_DECADES,
    MAX_EXPANSIONS,
    REMEASURE_POOL,
    RoundKind,
    RoundPlan,
    plan_first_round,
    plan_next_round,
    remeasure_trials,
)
from adamtune.study import (
    BUDGET_ATTR,
    INFO_ATTR,
    Progress,
    Study,
    StudyInfo,
    _create_or_resume,
    _Runner,
    _sigterm_as_interrupt,
    run_to_budget,
)
from adamtune.trial import StopRules

logger = logging.getLogger("adamtune")

CAMPAIGN_ATTR = "campaign"
ROUNDS_ATTR = "rounds"
ROUND_ATTR = "round"
ROUND_SEPARATOR = "::round-"
EXTENSIONS_KEY = "extensions"
"""In the campaign's settings: each extension, {"from": old budget, "to": new budget}."""


@dataclass(frozen=True)
class Round:
    """One round of a campaign, as planned and stored."""

    index: int
    kind: RoundKind
    budget: int
    space: SearchSpace
    seed: int
    reason: str
    settled: SearchSpace | None = None
    """A round's space before it was narrowed (an exploitation round's, around the best trials;
    None: not narrowed): the ranges the study as a whole searched, which its diagnostics, its
    next plan and its report use."""
    points: tuple[dict[str, float], ...] = ()
    """A ``remeasure`` round's candidates (Optuna parameters), best GP posterior mean first:
    each is trained once more, on a fresh seed."""

    @property
    def searched(self) -> SearchSpace:
        """The ranges the study as a whole searched up to this round (``settled`` if set)."""
        return self.settled or self.space

    def study_name(self, campaign: str) -> str:
        return f"{campaign}{ROUND_SEPARATOR}{self.index}"

    @property
    def trials_text(self) -> str:
        """The round's budget in words (a small budget's last round can have one trial)."""
        return f"{self.budget} trial{'s' if self.budget != 1 else ''}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "kind": self.kind,
            "budget": self.budget,
            "space": self.space.to_dict(),
            "seed": self.seed,
            "reason": self.reason,
            # Absent when not narrowed: rounds stored before narrowing existed read the same.
            **({"settled": self.settled.to_dict()} if self.settled is not None else {}),
            **({"points": [dict(p) for p in self.points]} if self.points else {}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Round:
        return cls(
            int(data["index"]),
            data["kind"],
            int(data["budget"]),
            SearchSpace.from_dict(data["space"]),
            int(data["seed"]),
            str(data["reason"]),
            SearchSpace.from_dict(data["settled"]) if "settled" in data else None,
            tuple({str(k): float(v) for k, v in p.items()} for p in data.get("points", [])),
        )


def is_campaign(optuna_study: optuna.Study) -> bool:
    return CAMPAIGN_ATTR in optuna_study.user_attrs


class Campaign(Study):
    """A playbook campaign read as one study: every round's trials, numbered in round order.

    ``info.space`` is the space of the latest round (before an exploitation round's narrowing:
    the ranges the study searched, which its diagnostics and report read); ``rounds`` lists
    each round's space and why it was chosen; ``round_study(k)`` opens round k as a plain
    adamtune ``Study``.
    """

    def __init__(self, anchor: optuna.Study, info: StudyInfo) -> None:
        super().__init__(anchor, info)
        self.start_info = info
        rounds = self.rounds
        if rounds:
            self.info = replace(info, space=rounds[-1].searched)

    @property
    def strategy(self) -> str:
        return str(self.settings.get("strategy", "playbook"))

    @property
    def storage(self) -> BaseStorage:
        return self.optuna._storage

    @property
    def rounds(self) -> list[Round]:
        return [Round.from_dict(r) for r in self.optuna.user_attrs.get(ROUNDS_ATTR, [])]

    @property
    def settings(self) -> dict[str, Any]:
        return dict(self.optuna.user_attrs.get(CAMPAIGN_ATTR, {}))

    @property
    def extended_from(self) -> int | None:
        """The budget before the latest extension (None: never extended)."""
        extensions = self.settings.get(EXTENSIONS_KEY, [])
        return int(extensions[-1]["from"]) if extensions else None

    def _created_with(self) -> dict[str, Any]:
        # The space the user started from; each round's own is in its entry.
        extensions = self.settings.get(EXTENSIONS_KEY)
        return {
            **self.start_info.to_dict(),
            "rounds": [planned.to_dict() for planned in self.rounds],
            **({EXTENSIONS_KEY: extensions} if extensions else {}),
        }

    def round_study(self, index: int) -> Study:
        planned = self.rounds[index]
        optuna_study = optuna.load_study(study_name=planned.study_name(self.name), storage=self.storage)
        return Study(optuna_study, StudyInfo.from_dict(optuna_study.user_attrs[INFO_ATTR]))

    def _round_studies(self) -> list[tuple[Round, Study]]:
        found = []
        for planned in self.rounds:
            try:
                found.append((planned, self.round_study(planned.index)))
            except KeyError:
                break  # planned, not created yet (an interruption between the two)
        return found

    @property
    def trials(self) -> list[TrialRecord]:
        merged: list[TrialRecord] = []
        for planned, study in self._round_studies():
            frozen = {t.number: t for t in study.optuna.get_trials(deepcopy=False)}
            for record in study.trials:
                if not is_copy(frozen[record.number]):
                    merged.append(replace(record, number=len(merged), round=planned.index))
        return merged

    def _recommend(self, records: list[TrialRecord]) -> Recommendation | None:
        """After a ``remeasure`` round, its candidate with the best fresh result; else (and
        where no candidate has one) the study's recommendation over all its trials."""
        rounds = self.rounds
        last = rounds[-1] if rounds else None
        if last is not None and last.kind == "remeasure":
            earlier = best_first(
                [r for r in records if r.round is not None and r.round < last.index], self.info.direction
            )
            candidates = []
            for point in last.points:
                adam = last.space.config_from_params(point)
                found = next((r for r in earlier if r.adam is not None and r.adam.matches(adam)), None)
                if found is not None:
                    candidates.append(found)
            again = [r for r in records if r.round == last.index]
            chosen = recommend_remeasured(candidates, again, self.info.direction)
            if chosen is not None:
                return chosen
        return super()._recommend(records)

    def tally(self) -> Tally:
        tallies = [study.tally() for _, study in self._round_studies()]
        return Tally(
            results=sum(t.results for t in tallies),
            running=sum(t.running for t in tallies),
            waiting=sum(t.waiting for t in tallies),
            failed=sum(t.failed for t in tallies),
            given_back=sum(t.given_back for t in tallies),
        )


def run_campaign(
    objective: Objective,
    budget: int,
    name: str,
    storage: BaseStorage,
    info: StudyInfo,
    *,
    pruner: optuna.pruners.BasePruner,
    rules: StopRules,
    executor: Executor,
    max_consecutive_failures: int,
    progress: Progress | None,
    workers: int = 1,
) -> Campaign:
    anchor = _create_or_resume(name, storage, info, budget, pruner, record_budget=False)
    campaign = _open_campaign(anchor, budget)
    if not campaign.rounds:
        first = plan_first_round(budget)
        _append_round(campaign, Round(0, first.kind, first.budget, info.space, info.seed, FIRST_REASON))
    if progress is not None:
        progress.started(campaign, campaign.tally().results)
    with _sigterm_as_interrupt():
        announced = -1
        while True:
            current = campaign.rounds[-1]
            announce = getattr(progress, "round_started", None)
            if callable(announce) and current.index != announced and not _finished(campaign, current):
                announce(campaign, current)
            announced = current.index
            _run_round(
                campaign,
                current,
                objective,
                executor,
                pruner,
                rules,
                progress,
                max_consecutive_failures,
                workers,
            )
            latest = campaign.rounds[-1]
            if (latest.index, latest.budget) != (current.index, current.budget):
                continue  # another process planned the next round (or extended this one): run it
            if not _plan_next(campaign, budget):
                break
    return Campaign(campaign.optuna, campaign.start_info)


FIRST_REASON = "explore: quasi-random search over the starting space"


def _finished(campaign: Campaign, planned: Round) -> bool:
    """Whether round ``planned`` has all its results (a resumed or extended campaign's last)."""
    try:
        return campaign.round_study(planned.index).tally().results >= planned.budget
    except KeyError:
        return False  # planned, not created yet


def _open_campaign(anchor: Study, budget: int) -> Campaign:
    """The campaign under ``anchor``, set up for ``budget``: a new one, the same budget resumed,
    or a finished campaign given a larger budget (an extension: more rounds, planned from the
    diagnostics of every trial so far, as after an exploration round)."""
    settings = anchor.optuna.user_attrs.get(CAMPAIGN_ATTR)
    if settings is None:
        if anchor.optuna.get_trials(deepcopy=False):
            raise StudyMismatchError(
                f"study {anchor.name!r} holds a one-study search (not the playbook strategy's rounds): "
                "resume it with its own --strategy, or give another --study name"
            )
        settings = {"strategy": "playbook", "budget": budget}
        anchor.optuna.set_user_attr(CAMPAIGN_ATTR, settings)
    planned = int(settings["budget"])
    if budget < planned:
        raise StudyMismatchError(
            f"campaign {anchor.name!r}: expected a budget of at least the {planned} it was planned "
            f"for, got {budget}: pass --budget {planned} to resume it, or give another --study name"
        )
    if budget > planned:
        done = Campaign(anchor.optuna, anchor.info).tally().results
        if done < planned:
            raise StudyMismatchError(
                f"campaign {anchor.name!r} was planned for a budget of {planned} and has {done} "
                f"results: expected --budget {planned} until it finishes (then a larger budget "
                f"extends it), got {budget}"
            )
        extensions = [*settings.get(EXTENSIONS_KEY, []), {"from": planned, "to": budget}]
        anchor.optuna.set_user_attr(CAMPAIGN_ATTR, {**settings, "budget": budget, EXTENSIONS_KEY: extensions})
        logger.info("campaign %r extended from %d to %d trials", anchor.name, planned, budget)
    anchor.optuna.set_user_attr(BUDGET_ATTR, budget)
    return Campaign(anchor.optuna, anchor.info)


def _append_round(campaign: Campaign, planned: Round) -> None:
    rounds = campaign.optuna.user_attrs.get(ROUNDS_ATTR, [])
    if any(r["index"] == planned.index for r in rounds):
        return  # another process planned it first; the plan is the same function of the same data
    campaign.optuna.set_user_attr(ROUNDS_ATTR, [*rounds, planned.to_dict()])
    logger.info("round %d (%s, %d trials): %s", planned.index, planned.kind, planned.budget, planned.reason)


def _run_round(
    campaign: Campaign,
    planned: Round,
    objective: Objective,
    executor: Executor,
    pruner: optuna.pruners.BasePruner,
    rules: StopRules,
    progress: Progress | None,
    max_consecutive_failures: int,
    workers: int = 1,
) -> None:
    # A round records where it runs, which after a resume elsewhere is not where the campaign began.
    here = current_environment()
    info = replace(campaign.start_info, space=planned.space, seed=planned.seed, environment=here)
    sampler: optuna.samplers.BaseSampler
    if planned.kind == "exploit":
        sampler = AdaptiveSampler("gp", planned.space, planned.seed, startup=0)
    elif planned.kind == "remeasure":
        sampler = PointListSampler(planned.space, planned.seed, planned.points)
        # Its few runs are not a field to prune: ASHA would stop every fresh run that starts
        # worse than the first, and the candidates would go without the result they are for.
        pruner = optuna.pruners.NopPruner()
    else:
        sampler = QuasiRandomSampler(planned.space, planned.seed)
    name = planned.study_name(campaign.name)
    study = _create_or_resume(name, campaign.storage, info, planned.budget, pruner, sampler, internal=True)
    study.optuna.set_user_attr(ROUND_ATTR, {"campaign": campaign.name, "index": planned.index})
    if planned.kind == "exploit" and not study.optuna.get_trials(deepcopy=False):
        _copy_earlier_trials(campaign, planned, study)
    offset = sum(s.tally().results for r, s in campaign._round_studies() if r.index < planned.index)
    relay = _CampaignProgress(progress, campaign, offset) if progress is not None else None
    runners = [_Runner(study, objective, executor, planned.budget, relay, rules) for _ in range(workers)]
    runners[0].reclaim_dead_workers()
    run_to_budget(runners, objective, max_consecutive_failures, wait=True)  # the next plan needs them all


class _CampaignProgress:
    """Passes a round's progress on as the campaign's: its budget, its trial count."""

    def __init__(self, inner: Progress, campaign: Campaign, offset: int) -> None:
        self._inner, self._campaign, self._offset = inner, campaign, offset

    def started(self, study: Study, done: int) -> None:
        pass  # the campaign announced its start once; a round starting is not a new study

    def trial_finished(self, study: Study, record: TrialRecord, done: int) -> None:
        planned = study.optuna.user_attrs.get(ROUND_ATTR, {}).get("index")
        self._inner.trial_finished(self._campaign, replace(record, round=planned), self._offset + done)


def _copy_earlier_trials(campaign: Campaign, planned: Round, study: Study) -> None:
    """Give the exploitation round every earlier trial inside its space, as data."""
    distributions = planned.space.distributions()
    copies = []
    for earlier, earlier_study in campaign._round_studies():
        if earlier.index >= planned.index:
            continue
        for frozen in earlier_study.optuna.get_trials(deepcopy=False):
            if not has_result(frozen) or frozen.params.keys() != distributions.keys():
                continue
            if not all(_inside(distributions[k], v) for k, v in frozen.params.items()):
                continue
            constraints = {k: v for k, v in frozen.system_attrs.items() if k.startswith("constraints")}
            copies.append(
                create_trial(
                    state=frozen.state,
                    value=frozen.value if frozen.state == TrialState.COMPLETE else None,
                    params=dict(frozen.params),
                    distributions=dict(distributions),
                    user_attrs={
                        # Its point and retry marks belong to its own round's sequence.
                        **{k: v for k, v in frozen.user_attrs.items() if k not in (POINT, RETRY_OF)},
                        COPY_OF: {"round": earlier.index, "number": frozen.number},
                    },
                    system_attrs=constraints,
                    intermediate_values=dict(frozen.intermediate_values),
                )
            )
    study.optuna.add_trials(copies)


def _inside(distribution: Any, value: float) -> bool:
    assert isinstance(distribution, FloatDistribution)
    return distribution.low <= value <= distribution.high


def _plan_next(campaign: Campaign, budget: int) -> bool:
    """Plan the round after the latest one (or extend it); False when the budget is spent."""
    rounds = campaign.rounds
    current = rounds[-1]
    spent = sum(r.budget for r in rounds)
    expansions = _expansions(rounds)
    if spent >= budget:
        return False
    reserved = remeasure_trials(budget)
    if reserved and spent >= budget - reserved:
        _plan_remeasure(campaign, current, budget - spent)
        return True
    budget -= reserved  # what the search rounds may spend
    info = campaign.start_info
    extension = next((e for e in campaign.settings.get(EXTENSIONS_KEY, []) if int(e["from"]) == spent), None)
    after_exploit = current.kind == "exploit" and extension is None
    if after_exploit and len(split_round(budget - spent + current.budget, expanded=expansions > 0)) > 1:
        _plan_second_trust_region(campaign, current, budget - spent)  # split_round's second half
        return True
    searched = current.searched
    findings = diagnose_records(campaign.trials, searched, info.direction, info.metric)
    expanding = next_space(searched, info.space, findings, narrow=False)[0] != searched
    if after_exploit and not _grows(next_space(searched, info.space, findings)[0], searched):
        # The checkpoint (CHECKPOINT_MIN) found no edge: the round goes on.
        _extend_round(
            campaign, current, budget - spent, None, "the boundaries read again: no range to expand"
        )
        return True
    plan: RoundPlan | None = plan_next_round(budget, spent, expansions, expanding)
    if plan is None:
        return False
    # Expansions need quasi-random points in the new region: only an exploration round gets them.
    space, reasons = next_space(searched, info.space, findings, expand=plan.kind == "explore")
    if plan.kind == "explore" and space == searched and current.kind != "remeasure":
        _extend_round(campaign, current, plan.budget, extension)
        return True
    index = current.index + 1
    settled = None
    if plan.kind == "exploit":
        why = "exploit: constrained Bayesian optimisation (GP, constrained LogEI) over the settled space"
        settled = space
        expanded = expansions > 0
        space, narrowings = exploitation_space(space, campaign.trials, info.direction, expanded=expanded)
        reasons = [*reasons, *narrowings]
        parts = split_round(plan.budget, expanded=expanded)
        if len(parts) > 1:
            why += f", the first half of {plan.budget} trials"
        elif plan.budget >= 2 * CHECKPOINT_MIN and not expanded and _can_expand(settled, info.space):
            parts = (plan.budget // 2,)
            why += f", the first {parts[0]} of {plan.budget} trials, then the boundaries are read again"
        plan = replace(plan, budget=parts[0])
    else:
        why = "explore the expanded space"
        settled = space
        space, focus = expansion_focus(space, searched, campaign.trials, info.direction)
        reasons = [*reasons, *focus]
    extended = [_extended_text(extension)] if extension else []
    reason = "; ".join([*extended, why, *reasons])
    seed = derived_seed(info.seed, index)
    narrowed = settled if settled is not None and settled != space else None
    _append_round(campaign, Round(index, plan.kind, plan.budget, space, seed, reason, narrowed))
    return True


def _grows(space: SearchSpace, searched: SearchSpace) -> bool:
    """Whether a tuned range of ``space`` reaches beyond ``searched`` (a narrowing alone does not)."""
    return any(
        spec.low < searched.spec(spec.name).low or spec.high > searched.spec(spec.name).high
        for spec in space.tuned_specs
    )


def _expansions(rounds: Sequence[Round]) -> int:
    return sum(1 for r in rounds[1:] if r.kind == "explore" and r.searched != rounds[r.index - 1].searched)


def next_round(campaign: Campaign) -> NextRound:
    """What the campaign's next round (or a larger budget's) would do with its ranges, read as
    its planner reads the trials: the report's boundary actions say what the same study can do."""
    info = campaign.start_info
    rounds = campaign.rounds
    reach = {spec.name: limit_expansion(spec, (0.0, math.inf)) for spec in info.space.tuned_specs}
    if _expansions(rounds) >= MAX_EXPANSIONS:
        return NextRound({}, reach, f"it has had its {MAX_EXPANSIONS} expansion rounds")
    searched = rounds[-1].searched if rounds else info.space
    # Only boundary findings expand a range: the planner's check with its noise, the trials' own.
    records = campaign.trials
    findings = boundary(records, searched, info.direction, estimate_noise(records, info.direction))
    grown = next_space(searched, info.space, findings, narrow=False)[0]
    expands = {s.name: (s.low, s.high) for s in grown.tuned_specs if s != searched.spec(s.name)}
    return NextRound(expands, reach)


def _plan_second_trust_region(campaign: Campaign, first: Round, trials: int) -> None:
    """Plan the second half of a split exploitation round: ``trials`` trials over
    ``second_trust_region`` of the space the first half narrowed."""
    records = campaign.trials
    explored = [r for r in records if r.round is not None and r.round < first.index]
    space, reasons = second_trust_region(
        first.searched, first.space, explored, records, campaign.start_info.direction
    )
    why = "exploit the second half: constrained Bayesian optimisation (GP, constrained LogEI)"
    index = first.index + 1
    seed = derived_seed(campaign.start_info.seed, index)
    narrowed = first.searched if space != first.searched else None
    reason = "; ".join([why, *reasons])
    _append_round(campaign, Round(index, "exploit", trials, space, seed, reason, narrowed))


def _plan_remeasure(campaign: Campaign, last: Round, trials: int) -> None:
    """Plan the ``remeasure`` round: ``trials`` trials, one fresh training run of each of the
    best candidates (``choice.remeasure_candidates``), over the ranges searched so far (grown
    where needed to hold them). Without a feasible trial there is nothing to train again: the
    last round goes on instead."""
    info = campaign.start_info
    searched = last.searched
    # A trial with another value of a hyperparameter the round does not tune (a study whose
    # tuned set changed with an extension) cannot be one of its points.
    fixed = [spec for spec in searched.specs if spec.name not in searched.tuned]
    records = [
        r
        for r in campaign.trials
        if r.adam is not None and all(math.isclose(getattr(r.adam, f.name), f.fixed or 0.0) for f in fixed)
    ]
    candidates, how = remeasure_candidates(records, searched, info.direction, trials, REMEASURE_POOL)
    if not candidates:
        _extend_round(campaign, last, trials, None, "no feasible trial to train again")
        return
    space = _holding(searched, [c.adam for c in candidates if c.adam is not None])
    points = tuple(
        {spec.param_name: spec.param_from_value(getattr(c.adam, spec.name)) for spec in space.tuned_specs}
        for c in candidates
    )
    numbers = ", ".join(str(c.number) for c in candidates)
    reason = (
        f"remeasure: train again, on a fresh seed each, {how} (trials {numbers}); the best fresh "
        "result is recommended: a first result is the best of many draws, a fresh one is not"
    )
    index = last.index + 1
    seed = derived_seed(info.seed, index)
    settled = searched if space != searched else None
    _append_round(campaign, Round(index, "remeasure", trials, space, seed, reason, settled, points))


def _holding(space: SearchSpace, configs: Sequence[AdamConfig]) -> SearchSpace:
    """``space`` with each tuned range grown, where needed, to hold every one of ``configs``."""
    specs = []
    for spec in space.specs:
        if spec.name not in space.tuned:
            specs.append(spec)
            continue
        values = [getattr(c, spec.name) for c in configs]
        low, high = min(spec.low, *values), max(spec.high, *values)
        specs.append(spec if (low, high) == (spec.low, spec.high) else spec.with_range(low, high))
    return replace(space, specs=tuple(specs))


def _extended_text(extension: dict[str, Any]) -> str:
    return f"the budget extended from {extension['from']} to {extension['to']} trials"


def _extend_round(
    campaign: Campaign,
    current: Round,
    extra: int,
    extension: dict[str, Any] | None,
    why: str = "no range change",
) -> None:
    rounds = campaign.optuna.user_attrs.get(ROUNDS_ATTR, [])
    extended = f" ({_extended_text(extension)})" if extension else ""
    grown = replace(
        current, budget=current.budget + extra, reason=current.reason + f"; continued{extended}: {why}"
    )
    campaign.optuna.set_user_attr(ROUNDS_ATTR, [*rounds[:-1], grown.to_dict()])
    study = campaign.round_study(current.index)
    study.optuna.set_user_attr(BUDGET_ATTR, grown.budget)


def next_space(
    current: SearchSpace,
    start: SearchSpace,
    findings: Sequence[Finding],
    *,
    expand: bool = True,
    narrow: bool = True,
) -> tuple[SearchSpace, list[str]]:
    """The space the findings ask for: expansions and narrowings applied, within the limits."""
    ranges = {spec.name: (spec.low, spec.high) for spec in current.tuned_specs}
    reasons = []
    narrowed = set()
    for finding in findings if narrow else ():
        if finding.check == "infeasible" and finding.suggested_range and finding.hyperparameter:
            narrow_name = finding.hyperparameter
            ranges[narrow_name] = finding.suggested_range
            narrowed.add(narrow_name)
            cut = current.spec(narrow_name).with_range(*finding.suggested_range).range_text("..")
            reasons.append(f"narrow {narrow_name} to {cut}: {finding.message.rstrip('.')}")
    for finding in findings if expand else ():
        if finding.check != "boundary" or finding.severity != "action" or not finding.suggested_range:
            continue
        name = finding.hyperparameter
        if name is None or name in narrowed:
            continue  # the divergent region decides that range
        limited = limit_expansion(start.spec(name), finding.suggested_range)
        if limited == (current.spec(name).low, current.spec(name).high):
            continue
        ranges[name] = limited
        grown = current.spec(name).with_range(*limited).range_text("..")
        reasons.append(f"expand {name} to {grown}: {finding.message.rstrip('.')}")
    specs = tuple(
        spec.with_range(*ranges[spec.name]) if spec.name in ranges else spec for spec in current.specs
    )
    return replace(current, specs=specs), reasons


CHECKPOINT_MIN = 3
"""An exploitation round of at least twice this many trials right after the first exploration
(no range expanded), with a range that could still grow, runs its first half, then reads the
boundaries again: Bayesian optimisation that piles its trials on a range's end finds an edge
the exploration did not (the exploration's best lay inside), and the rest of the round explores
beyond it instead. After an expansion the ranges have moved already, and reading them again
halfway cost more exploitation than it gained (docs/benchmarks.md)."""


def _can_expand(space: SearchSpace, start: SearchSpace) -> bool:
    """Whether a tuned range of ``space`` could still grow (within ``MAX_DECADES`` of ``start``
    and the user's limits)."""
    for spec in space.tuned_specs:
        origin = start.spec(spec.name)
        low, high = origin.clipped_to_limit(*limit_expansion(origin, (0.0, math.inf)))
        if not (math.isclose(spec.low, low, rel_tol=1e-9) and math.isclose(spec.high, high, rel_tol=1e-9)):
            return True
    return False


def limit_expansion(start: HyperparameterSpec, wanted: tuple[float, float]) -> tuple[float, float]:
    """``wanted``, kept within ``MAX_DECADES`` of the starting range on the search scale."""
    low_param, high_param = sorted(start.param_from_value(v) for v in (start.low, start.high))
    floor, ceiling = low_param / 10**MAX_DECADES, high_param * 10**MAX_DECADES
    if start.scale == "log1m":
        ceiling = min(ceiling, 1.0)  # 1 - beta <= 1: beta >= 0

    def clip(value: float) -> float:
        param = min(max(start.param_from_value(value), floor), ceiling)
        return start.value_from_param(param)

    low, high = clip(wanted[0]), clip(wanted[1])
    return (min(low, high), max(low, high))


def campaign_rounds_text(campaign: Campaign) -> list[str]:
    """One line per round: kind, trials, the tuned ranges, and why."""
    lines = []
    for planned in campaign.rounds:
        ranges = ", ".join(planned.space.tuned_ranges())
        lines.append(
            f"round {planned.index} {planned.kind} ({planned.trials_text}; {ranges}): {planned.reason}"
        )
    return lines
