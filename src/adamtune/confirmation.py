"""Confirm before adopting (PLAYBOOK.md section 5): retrain the best few configurations and the
baseline on the same fresh seeds, and compare their means against the trial variance.

The runs are a study of their own, ``NAME::confirm``, outside the budget: one queued trial per
(configuration, seed), seed-major so that an interrupted confirmation has compared every
configuration on its first seeds. Each configuration is trained on the same N seeds, none of
them the seed of the trial that found it (its result there is the best of many draws, biased
in its favour). A study that grows after its confirmation (a larger budget) is confirmed
again; the earlier confirmation stays, as ``NAME::confirm-after-N`` (N: the results it was
planned after).

Verdict: the winner (the candidate with the best mean) beats the baseline when its mean is
better by more than the trial variance, taken as the pooled standard deviation of single runs
over all configurations (the noise of one training run with the same hyperparameters). Where
the baseline's mean is better than the winner's by more than that, the baseline is the one to
keep: no trial of the study is adopted.
"""

from __future__ import annotations

import logging
import math
import shlex
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import optuna

from adamtune.adaptive import derived_seed
from adamtune.allocation import POINT
from adamtune.choice import best_configurations
from adamtune.config import AdamConfig
from adamtune.errors import ConfigError
from adamtune.outcomes import State
from adamtune.records import SEED, TrialRecord, records_of
from adamtune.space import HYPERPARAMETERS, SearchSpace
from adamtune.trial import StopRules
from adamtune.workers import LAUNCH_ATTR

if TYPE_CHECKING:
    from adamtune.executors import Executor, Objective
    from adamtune.study import Study

logger = logging.getLogger("adamtune")

CONFIRM_SUFFIX = "::confirm"
AFTER = "after"
"""In a confirmation's settings: how many results the study had when it was planned."""
ROLE = "role"
CANDIDATE = "candidate"
SOURCE = "source"
BASELINE_IS = "baseline_is"  # in the confirmation's settings: the candidate that is the baseline
CONFIRM_SALT = 7_777_777  # keeps confirmation seeds apart from every trial seed of the study

DEFAULT_SEEDS = 3
ADAM_DEFAULTS = AdamConfig(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8)
"""Adam's defaults: the baseline when the user gives none."""

WIDE_RANGES: dict[str, tuple[float, float]] = {
    "lr": (1e-10, 100.0),
    "beta1": (0.0, 1.0 - 1e-9),
    "beta2": (0.0, 1.0 - 1e-9),
    "eps": (1e-16, 10.0),
    "weight_decay": (1e-12, 10.0),
}
"""The confirmation study's space: wide enough for any baseline a user may bring."""


def confirm_space(base: SearchSpace) -> SearchSpace:
    """Every hyperparameter in play tuned over ``WIDE_RANGES`` (weight decay when in play)."""
    decay = base.uses_weight_decay
    tuned = [name for name in HYPERPARAMETERS if name != "weight_decay" or decay]
    fixed = {} if decay else {"weight_decay": 0.0}
    return SearchSpace.build(tuned, ranges=WIDE_RANGES, fixed=fixed, optimizer=base.optimizer)


TORCH_DEFAULT_LR: dict[str, float] = {"adam": 1e-3, "adamw": 1e-3, "nadam": 2e-3, "nadamw": 2e-3}
"""The default learning rate of each optimizer's torch class (torch.optim.NAdam's is 2e-3)."""


def default_baseline(space: SearchSpace) -> AdamConfig:
    """torch's defaults for ``space``'s optimizer: Adam's (AdamW and NAdamW with weight decay
    0.01, torch.optim.AdamW's; NAdam's lr 2e-3)."""
    decay = 0.0
    if space.uses_weight_decay:
        decay = space.spec("weight_decay").fixed or 1e-2
    return AdamConfig(
        lr=TORCH_DEFAULT_LR[space.optimizer],
        beta1=0.9,
        beta2=0.999,
        eps=1e-8,
        weight_decay=decay,
        optimizer=space.optimizer,
    )


def parse_baseline(text: str, space: SearchSpace) -> AdamConfig:
    """``lr=1e-3,beta1=0.9`` -> the default baseline with those values replaced."""
    values: dict[str, Any] = default_baseline(space).as_dict()
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, raw = part.partition("=")
        name = name.strip()
        if not sep or name not in HYPERPARAMETERS:
            raise ConfigError(
                f"--baseline: expected NAME=VALUE pairs with NAME one of {', '.join(HYPERPARAMETERS)}, "
                f"got {part!r}"
            )
        try:
            values[name] = float(raw)
        except ValueError:
            raise ConfigError(f"--baseline {name}: expected a number, got {raw!r}") from None
    return AdamConfig(**values)


def check_baseline(baseline: AdamConfig, space: SearchSpace) -> None:
    if baseline.optimizer != space.optimizer:
        raise ConfigError(f"baseline optimizer: expected {space.optimizer}, got {baseline.optimizer}")
    wide = confirm_space(space)
    if not space.uses_weight_decay and baseline.weight_decay:
        raise ConfigError(
            "baseline weight_decay: expected 0 (the study does not use weight decay), "
            f"got {baseline.weight_decay:g}"
        )
    for spec in wide.tuned_specs:
        value = getattr(baseline, spec.name)
        if not spec.low <= value <= spec.high:
            raise ConfigError(
                f"baseline {spec.name}: expected a value in {spec.low:g}..{spec.high:g}, got {value:g}"
            )


def confirmation_seeds(study_seed: int, count: int) -> list[int]:
    return [derived_seed(study_seed, CONFIRM_SALT, index) for index in range(count)]


def same_config(one: AdamConfig | None, other: AdamConfig | None) -> bool:
    """Both given and the same configuration up to rounding (``AdamConfig.matches``)."""
    return one is not None and other is not None and one.matches(other)


@dataclass(frozen=True)
class Task:
    """One confirmation run: a configuration and a seed."""

    adam: AdamConfig
    seed: int
    role: str  # "candidate" or "baseline"
    candidate: int  # 0, 1, ... for candidates (best first); -1 for the baseline
    source: int | None  # the trial (campaign-wide number) that found the candidate


def plan_tasks(
    candidates: Sequence[TrialRecord], baseline: AdamConfig | None, seeds: Sequence[int]
) -> list[Task]:
    """Every run, seed-major; no baseline runs when ``baseline`` is None (a candidate is it)."""
    tasks = []
    for seed in seeds:
        for index, record in enumerate(candidates):
            assert record.adam is not None
            tasks.append(Task(record.adam, seed, "candidate", index, record.number))
        if baseline is not None:
            tasks.append(Task(baseline, seed, "baseline", -1, None))
    return tasks


def task_attrs(task: Task, point: int) -> dict[str, Any]:
    return {
        POINT: point,
        SEED: task.seed,
        ROLE: task.role,
        CANDIDATE: task.candidate,
        SOURCE: task.source,
    }


@dataclass(frozen=True)
class ConfirmedConfig:
    """One configuration's runs over the confirmation seeds. ``same_as``: for a baseline that
    is one of the candidates' configurations, that candidate, whose runs it shares (the same
    configuration on the same seeds is trained once)."""

    role: str
    candidate: int
    source: int | None
    adam: AdamConfig
    values: list[float]
    diverged: int
    pending: int
    same_as: int | None = None

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values) if self.values and not self.diverged else None

    @property
    def std(self) -> float | None:
        return statistics.stdev(self.values) if len(self.values) >= 2 and not self.diverged else None

    @property
    def label(self) -> str:
        if self.role == "baseline":
            return "baseline" if self.same_as is None else f"baseline (= #{self.same_as + 1})"
        return f"#{self.candidate + 1}" + (f" (trial {self.source})" if self.source is not None else "")


@dataclass(frozen=True)
class Confirmation:
    """The confirmation table and its verdict."""

    direction: str
    seeds: list[int]
    configs: list[ConfirmedConfig] = field(default_factory=list)
    after: int | None = None
    """How many results the study had when the confirmation was planned (None: not recorded)."""

    def outdated(self, results: int) -> str | None:
        """Why this confirmation does not speak for a study with ``results`` results, or None."""
        if self.after is None or self.after >= results:
            return None
        return (
            f"this confirmation is of the study's first {self.after} trials, not of its {results}: "
            "run the study's command again with --confirm N (N >= 1) to confirm the grown study"
        )

    @property
    def complete(self) -> bool:
        return all(c.pending == 0 for c in self.configs)

    @property
    def trained(self) -> list[ConfirmedConfig]:
        """The configurations with runs of their own (not a baseline sharing a candidate's)."""
        return [c for c in self.configs if c.same_as is None]

    @property
    def baseline(self) -> ConfirmedConfig | None:
        return next((c for c in self.configs if c.role == "baseline"), None)

    @property
    def winner(self) -> ConfirmedConfig | None:
        """The candidate with the best mean (diverging on any seed disqualifies)."""
        sign = 1.0 if self.direction == "minimize" else -1.0
        scored = [c for c in self.configs if c.role == "candidate" and c.mean is not None]
        return min(scored, key=lambda c: sign * (c.mean or 0.0), default=None)

    @property
    def trial_std(self) -> float | None:
        """Pooled standard deviation of single runs: the trial variance, as a spread."""
        spreads = [(len(c.values) - 1, c.std) for c in self.trained if c.std is not None]
        dof = sum(d for d, _ in spreads)
        if not dof:
            return None
        return math.sqrt(sum(d * s * s for d, s in spreads if s is not None) / dof)

    @property
    def margin(self) -> float | None:
        """How much better the winner's mean is than the baseline's (positive: better)."""
        winner, baseline = self.winner, self.baseline
        if winner is None or baseline is None or winner.mean is None or baseline.mean is None:
            return None
        difference = baseline.mean - winner.mean
        return difference if self.direction == "minimize" else -difference

    def toss_up_note(self, source: int) -> str | None:
        """Where the winner's mean is better than trial ``source``'s by no more than the trial
        spread, a clause that says so (the two are a toss-up); else None."""
        winner, noise = self.winner, self.trial_std
        other = next((c for c in self.configs if c.source == source and c.role == "candidate"), None)
        if winner is None or other is None or winner.mean is None or other.mean is None or noise is None:
            return None
        lead = abs(other.mean - winner.mean)
        if lead > noise:
            return None
        return f"by {lead:.3g}, within the trial spread {noise:.3g}: either will do"

    @property
    def beats_baseline(self) -> bool | None:
        margin, noise = self.margin, self.trial_std
        baseline, winner = self.baseline, self.winner
        if baseline is not None and winner is not None and winner.adam.matches(baseline.adam):
            return False
        if baseline is not None and baseline.diverged and winner is not None:
            return True
        if margin is None or noise is None:
            return None
        return margin > noise

    @property
    def baseline_wins(self) -> bool:
        """Whether the baseline's mean is better than every candidate's by more than the trial
        spread (then keep it: the study found nothing as good)."""
        margin, noise, baseline = self.margin, self.trial_std, self.baseline
        if baseline is None or baseline.same_as is not None or margin is None or noise is None:
            return False
        return self.complete and -margin > noise

    def preferred_over(self, best_trial: int) -> ConfirmedConfig | None:
        """The confirmed winner when it is another trial than ``best_trial`` (the best single
        run): a report must then say which of the two to use. None while runs are pending."""
        winner = self.winner
        if not self.complete or winner is None or winner.source in (None, best_trial):
            return None
        return winner

    def summary(self, best_trial: int | None, results: int | None = None) -> list[str]:
        """The verdict in a line, a second where the winner is another trial than
        ``best_trial`` (the best single run), and a third where the study has grown since
        (``results``: its results now)."""
        lines = [f"confirmation on {len(self.seeds)} seeds: {self.verdict()}"]
        winner = self.preferred_over(best_trial) if best_trial is not None else None
        if winner is not None and best_trial is not None and not self.baseline_wins:
            close = self.toss_up_note(best_trial)
            lines.append(
                f"  (the confirmation prefers trial {winner.source} to the best single run: "
                f"{winner.adam.short()}{'; ' + close if close else ''})"
            )
        outdated = self.outdated(results) if results is not None else None
        if outdated:
            lines.append(f"  note: {outdated}")
        return lines

    def verdict(self) -> str:
        winner, baseline = self.winner, self.baseline
        if winner is None:
            return "no candidate completed every confirmation seed"
        if baseline is not None and baseline.diverged:
            return (
                f"the winner {winner.label} trains on every seed; "
                f"the baseline diverged on {baseline.diverged}"
            )
        if baseline is not None and winner.adam.matches(baseline.adam):
            return f"the winner {winner.label} is the baseline configuration itself: keep the baseline"
        margin, noise = self.margin, self.trial_std
        if margin is None or noise is None:
            return f"the winner is {winner.label}; too few runs to compare it with the baseline"
        better = "better" if margin > 0 else "worse"
        if margin == 0:
            return (
                f"the winner {winner.label} ties the baseline (mean {winner.mean:.4g} each), "
                "not shown to beat it"
            )
        if margin > noise:
            return (
                f"the winner {winner.label} beats the baseline by {margin:.3g}, more than the trial "
                f"spread {noise:.3g}: adopt it"
            )
        if -margin > noise:
            return (
                f"the baseline beats the winner {winner.label} by {-margin:.3g}, more than the trial "
                f"spread {noise:.3g}: keep the baseline"
            )
        return (
            f"the winner {winner.label} is {abs(margin):.3g} {better} than the baseline, within the "
            f"trial spread {noise:.3g}: not shown to beat it"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "seeds": self.seeds,
            "after": self.after,
            "configs": [
                {
                    "label": c.label,
                    "role": c.role,
                    "source": c.source,
                    "params": c.adam.as_dict(),
                    "values": c.values,
                    "diverged": c.diverged,
                    "mean": c.mean,
                    "std": c.std,
                    "same_as": c.same_as,
                }
                for c in self.configs
            ],
            "trial_std": self.trial_std,
            "margin": self.margin,
            "beats_baseline": self.beats_baseline,
            "baseline_wins": self.baseline_wins,
            "verdict": self.verdict(),
        }


def summarise(
    records: Sequence[TrialRecord],
    attrs: Mapping[int, Mapping[str, Any]],
    direction: str,
    seeds: list[int],
    baseline_is: int | None = None,
) -> Confirmation:
    """Group the confirmation study's trials by configuration (``attrs``: number -> user attrs);
    ``baseline_is``: the candidate that is the baseline configuration, trained once for both."""
    groups: dict[int, dict[str, Any]] = {}
    for record in records:
        user = attrs[record.number]
        if record.adam is None or ROLE not in user:
            continue
        group = groups.setdefault(
            int(user[CANDIDATE]),
            {"role": user[ROLE], "source": user.get(SOURCE), "adam": record.adam, "runs": {}},
        )
        if record.state in (State.COMPLETE, State.INFEASIBLE):
            group["runs"][record.seed] = record
    configs = []
    for index in sorted(groups, key=lambda i: (i < 0, i)):
        group = groups[index]
        runs = group["runs"]
        values = [float(r.value) for r in runs.values() if r.state == State.COMPLETE and r.value is not None]
        diverged = sum(1 for r in runs.values() if r.state == State.INFEASIBLE)
        configs.append(
            ConfirmedConfig(
                group["role"], index, group["source"], group["adam"], values, diverged, len(seeds) - len(runs)
            )
        )
    shared = next((c for c in configs if c.role == "candidate" and c.candidate == baseline_is), None)
    if shared is not None:
        configs.append(replace(shared, role="baseline", candidate=-1, source=None, same_as=shared.candidate))
    return Confirmation(direction, seeds, configs)


def confirmation_study_name(name: str) -> str:
    return name + CONFIRM_SUFFIX


def run_confirmation(
    study: Study,
    objective: Objective,
    executor: Executor,
    rules: StopRules,
    *,
    seeds: int,
    top: int,
    baseline: AdamConfig,
    max_consecutive_failures: int,
    progress: object = None,
) -> Confirmation | None:
    """Train the ``top`` best configurations of ``study`` and ``baseline`` on ``seeds`` seeds."""
    from adamtune.study import CONFIRM_ATTR, StudyInfo, _create_or_resume, _Runner

    info = study.info
    storage = study.optuna._storage
    name = confirmation_study_name(study.name)
    candidates = best_configurations(study.trials, info.direction, top)
    recommendation = study.recommended
    if recommendation is not None and not any(
        same_config(recommendation.record.adam, c.adam) for c in candidates
    ):
        # The recommendation is retrained too: it is what the study tells its user to adopt.
        candidates = [recommendation.record, *candidates[: top - 1]]
    if not candidates:
        return None
    seed_list = confirmation_seeds(info.seed, seeds)
    # A candidate that is the baseline configuration is trained once, and stands for both.
    same = next((index for index, c in enumerate(candidates) if same_config(c.adam, baseline)), None)
    tasks = plan_tasks(candidates, baseline if same is None else None, seed_list)
    space = confirm_space(info.space)
    confirm_info = StudyInfo(space, info.tiers, info.seed, info.metric, info.direction)
    results = study.tally().results
    archive_outdated(storage, name, results)
    # A confirmation resumes the runs it queued, even where today's plan would differ.
    count = stored_run_count(storage, name)
    count = len(tasks) if count is None else count
    handle = _create_or_resume(name, storage, confirm_info, count, optuna.pruners.NopPruner(), internal=True)
    if CONFIRM_ATTR not in handle.optuna.user_attrs:
        # Each run is queued once, also where a planner stopped halfway (its settings, written
        # last, are missing) or another process is planning the same runs at the same time.
        queued = {t.user_attrs.get(POINT) for t in handle.optuna.get_trials(deepcopy=False)}
        for point, task in enumerate(tasks):
            if point in queued:
                continue
            params = {
                spec.param_name: spec.param_from_value(getattr(task.adam, spec.name))
                for spec in space.tuned_specs
            }
            handle.optuna.enqueue_trial(params, user_attrs=task_attrs(task, point))
        settings = {"seeds": seed_list, "top": top, "of": study.name, AFTER: results}
        handle.optuna.set_user_attr(
            CONFIRM_ATTR, settings if same is None else {**settings, BASELINE_IS: same}
        )
    # Patience and pruning would cut the runs short: confirmation trains every run in full.
    full = StopRules(rules.direction, rules.divergence_factor, None)
    runs = None
    begin = getattr(progress, "confirmation_started", None)
    if callable(begin) and handle.tally().results < count:
        runs = begin(study, count)
    _Runner(handle, objective, executor, count, runs, full).run(max_consecutive_failures)
    return load_confirmation(study)


def archive_outdated(storage: optuna.storages.BaseStorage, name: str, results: int) -> str | None:
    """Keep the confirmation study ``name`` as ``NAME-after-N`` when it was planned after N
    results and the study has more now (a larger budget extended it): its runs stay, and the
    grown study gets a confirmation of its own. Return the archive's name, or None."""
    from adamtune.study import CONFIRM_ATTR, quiet_optuna

    try:
        stored = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        return None
    settings = stored.user_attrs.get(CONFIRM_ATTR)
    if settings is None or AFTER not in settings or int(settings[AFTER]) >= results:
        return None  # current (confirmations from before AFTER was recorded count as current)
    archive = f"{name}-after-{settings[AFTER]}"
    taken = {summary.study_name for summary in optuna.get_all_study_summaries(storage)}
    if archive not in taken:  # else an earlier attempt copied it and was stopped before deleting
        with quiet_optuna():
            optuna.copy_study(
                from_study_name=name, from_storage=storage, to_storage=storage, to_study_name=archive
            )
    optuna.delete_study(study_name=name, storage=storage)
    logger.info("the confirmation after %s results is kept as %s", settings[AFTER], archive)
    return archive


def earlier_confirmations(study: Study) -> list[tuple[int, str]]:
    """The confirmations ``archive_outdated`` kept: (results planned after, Optuna study name)."""
    prefix = confirmation_study_name(study.name) + "-after-"
    names = [summary.study_name for summary in optuna.get_all_study_summaries(study.optuna._storage)]
    found = [(int(name[len(prefix) :]), name) for name in names if name.startswith(prefix)]
    return sorted(found)


def stored_run_count(storage: optuna.storages.BaseStorage, name: str) -> int | None:
    """How many runs the confirmation study ``name`` queued (its distinct points), or None
    when none was queued yet."""
    from adamtune.study import CONFIRM_ATTR

    try:
        stored = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        return None
    if CONFIRM_ATTR not in stored.user_attrs:
        return None
    return len({t.user_attrs[POINT] for t in stored.get_trials(deepcopy=False) if POINT in t.user_attrs})


class Adopted(NamedTuple):
    """The trial to adopt, and why: "recommended" or "confirmed best"; or "baseline", where the
    confirmation's baseline beat every candidate by more than the noise: ``record`` is then the
    baseline's first confirmation run (its configuration and seed), not a trial of the study."""

    record: TrialRecord | None
    why: Literal["recommended", "confirmed best", "baseline"]

    @property
    def trial(self) -> TrialRecord | None:
        """The study's trial to adopt; None where the baseline is kept (or nothing completed)."""
        return None if self.why == "baseline" else self.record

    def __str__(self) -> str:
        if self.record is None or self.record.adam is None:
            return "no trial to adopt yet"
        if self.why == "baseline":
            return f"the baseline (it beat the study's best on fresh seeds): {self.record.adam.short()}"
        return f"trial {self.record.number} ({self.why}): {self.record.adam.short()}"

    def to_dict(self, names: Sequence[str]) -> dict[str, Any] | None:
        """The JSON shape: number (None for the baseline), why and the values of ``names``
        (None without a trial)."""
        if self.record is None or self.record.adam is None:
            return None
        number = None if self.why == "baseline" else self.record.number
        return {"number": number, "why": self.why, "params": self.record.params(names)}


def how_to_use(study: Study, adopted: Adopted | None = None) -> str | None:
    """What trains with the trial to adopt (``adopted``: ``study.adopted`` when not given): the
    command that started the study with its values and seed filled in (a study of ``adamtune
    run``), else the torch optimizer's constructor; None before any trial completes."""
    record = (adopted if adopted is not None else study.adopted).record
    if record is None or record.adam is None:
        return None
    launch = study.optuna.user_attrs.get(LAUNCH_ATTR)
    if isinstance(launch, dict) and launch.get("kind") == "command":
        from adamtune.executors.command import with_values

        return shlex.join(with_values([str(arg) for arg in launch["argv"]], record.adam, record.seed))
    return record.adam.torch_code()


def use_line(study: Study, adopted: Adopted | None = None) -> str | None:
    """``how_to_use`` as the line that ends a summary: "train with trial N: ..."."""
    adopted = adopted if adopted is not None else study.adopted
    use = how_to_use(study, adopted)
    if use is None or adopted.record is None:
        return None
    return f"{adopted_label(adopted)}: {use}"


def adopted_label(adopted: Adopted) -> str:
    """What the use line trains with: "train with trial N", or "keep the baseline"."""
    if adopted.why == "baseline" or adopted.record is None:
        return "keep the baseline"
    return f"train with trial {adopted.record.number}"


def to_adopt(study: Study) -> Adopted:
    """The confirmation's winner where a complete confirmation of the study as it is prefers
    another trial than the recommended one (the verdict a user acts on), the baseline where it
    beat them all by more than the noise, else the recommended trial (None before any trial
    completes)."""
    recommendation = study.recommended
    chosen = recommendation.record if recommendation is not None else None
    confirmation = study.confirmation
    if confirmation is None or not confirmation.complete or confirmation.outdated(study.tally().results):
        return Adopted(chosen, "recommended")
    baseline = confirmation.baseline
    if confirmation.baseline_wins and baseline is not None:
        kept = TrialRecord(-1, State.COMPLETE, baseline.mean, baseline.adam, confirmation.seeds[0], None)
        return Adopted(kept, "baseline")
    winner = confirmation.winner
    if winner is None or winner.source is None or (chosen is not None and winner.source == chosen.number):
        return Adopted(chosen, "recommended")
    confirmed = next((record for record in study.trials if record.number == winner.source), None)
    return Adopted(confirmed, "confirmed best") if confirmed is not None else Adopted(chosen, "recommended")


def load_confirmation(study: Study) -> Confirmation | None:
    """The confirmation of ``study`` as stored (None when it has none)."""
    from adamtune.study import CONFIRM_ATTR

    storage = study.optuna._storage
    try:
        optuna_study = optuna.load_study(study_name=confirmation_study_name(study.name), storage=storage)
    except KeyError:
        return None
    settings = optuna_study.user_attrs.get(CONFIRM_ATTR)
    if settings is None:
        return None
    space = confirm_space(study.info.space)
    frozen = optuna_study.get_trials(deepcopy=False)
    records = records_of(frozen, space)
    attrs = {t.number: t.user_attrs for t in frozen}
    summary = summarise(
        records, attrs, study.info.direction, list(settings["seeds"]), settings.get(BASELINE_IS)
    )
    return replace(summary, after=settings.get(AFTER))
