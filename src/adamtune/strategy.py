"""Search strategies, and how the playbook strategy splits its budget into rounds.

``playbook`` (the default) spends the budget in rounds (see ``campaign``): quasi-random
exploration, more exploration after a range is expanded, then constrained Bayesian optimisation
over the settled space, and a confirmation on several seeds. The others run one study with
one sampler: ``quasi-random`` (scrambled Halton), ``random``, ``grid`` (1-2 tuned
hyperparameters only), ``bayes`` (Optuna's GP sampler, constrained LogEI) and ``tpe``.

The budget split of the playbook strategy (``plan_first_round``, ``plan_next_round``):

- budget >= 8: the first exploration round gets half the budget, but no more than 25 trials
  (``FIRST_ROUND_FLOOR``) or a third of the budget (``FIRST_ROUND_SHARE``), whichever is
  larger: 10 of 20, 25 of 50 to 75, 34 of 100. Quasi-random points spread over every range,
  enough (4 or more) for the boundary and density checks to mean something. Beyond 25
  trials, more exploration buys less than more Bayesian optimisation: on the tuning-quality
  benchmark a third instead of half at budget 100 lowered the median regret in all six cells
  and chose better in 174 and worse in 124 of 300 paired runs (docs/benchmarks.md), while a
  first round of 20 instead of 25 at budget 50 was not better.
  After each exploration round the diagnostics decide. When they ask for a wider range, an
  expansion round of 20% of the budget (at least 3 trials) explores the expanded space (its
  new side: ``narrowing.expansion_focus``), at most ``MAX_EXPANSIONS`` times; settling the
  space comes first, because exploiting the wrong space finds the best of the wrong region.
  An expansion round that would leave fewer than 3 trials takes them too. What is left goes
  to the final Bayesian round over the settled space (narrowed when there are 20 feasible ones
  or more: ``narrowing``; a round of 50 trials or more with no expansion before it runs in
  two halves, each in its own trust region), which starts from every earlier trial inside it.
  A shorter round with no expansion before it (6 to 49 trials) and a range that could still
  grow runs its first half, then reads the boundaries again (``campaign.CHECKPOINT_MIN``):
  where the GP went to a range's end the exploration's best did not reach, the rest is an
  expansion round; else the round goes on.
- budget >= 100 (``REMEASURE_FROM``): the last 3 trials are a ``remeasure`` round. Of the 10
  best observed configurations, the 3 with the best GP posterior means are each trained once
  more on a fresh seed, and the one whose fresh result is best is recommended
  (``choice.recommend_remeasured``). At budget 100 the choice among near-equal trials, not the
  search, was where adamtune lost (the best trial trained lay 0.02-0.04 of the regret scale
  below the one chosen); a fresh result is not the best of many draws (the winner's curse),
  so it tells the candidates apart where the first results cannot (docs/benchmarks.md).
- budget < 8: too small for a Bayesian round to pay off; the first round gets 60% (at least 3),
  and the rest goes to one more exploration round (over the expanded space when the
  diagnostics asked for it, else over the same space).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from optuna.samplers import BaseSampler

from adamtune.adaptive import AdaptiveSampler
from adamtune.errors import ConfigError
from adamtune.sampling import GRID_MAX_DIMS, QuasiRandomSampler
from adamtune.space import SearchSpace

StrategyName = Literal["playbook", "quasi-random", "random", "grid", "bayes", "tpe"]
STRATEGIES: tuple[StrategyName, ...] = ("playbook", "quasi-random", "random", "grid", "bayes", "tpe")

MIN_EXPLOIT_BUDGET = 8
"""Below this budget the playbook strategy explores only."""
MAX_EXPANSIONS = 3
"""Expansion rounds at most; each range also grows at most ``MAX_DECADES`` beyond its start."""
MAX_DECADES = 2.0


def check_strategy(strategy: object, space: SearchSpace) -> StrategyName:
    if strategy not in STRATEGIES:
        raise ConfigError(f"strategy: expected one of {', '.join(STRATEGIES)}, got {strategy!r}")
    if strategy == "grid" and len(space.tuned) > GRID_MAX_DIMS:
        raise ConfigError(
            f"strategy grid: expected at most {GRID_MAX_DIMS} tuned hyperparameters, got "
            f"{len(space.tuned)} ({', '.join(space.tuned)}): a grid over more dimensions spends "
            "most trials on repeated values of each hyperparameter; use quasi-random, or --tune lr,beta1"
        )
    return strategy


def bayes_startup(budget: int) -> int:
    """Quasi-random trials before the GP (or TPE) takes over in a one-round study."""
    return max(3, min(10, budget // 2))


def make_sampler(strategy: StrategyName, space: SearchSpace, seed: int, budget: int) -> BaseSampler:
    """The Optuna sampler of a one-study strategy (``playbook`` rounds use their own)."""
    if strategy in ("playbook", "quasi-random"):
        return QuasiRandomSampler(space, seed)
    if strategy == "random":
        return QuasiRandomSampler(space, seed, "random")
    if strategy == "grid":
        return QuasiRandomSampler(space, seed, "grid", size=budget)
    kind: Literal["gp", "tpe"] = "gp" if strategy == "bayes" else "tpe"
    return AdaptiveSampler(kind, space, seed, bayes_startup(budget))


RoundKind = Literal["explore", "exploit", "remeasure"]


@dataclass(frozen=True)
class RoundPlan:
    kind: RoundKind
    budget: int


FIRST_ROUND_SHARE = 1 / 3
"""The first exploration round's share of a budget above ``3 * FIRST_ROUND_FLOOR``."""
FIRST_ROUND_FLOOR = 25
"""The first exploration round has at least this many trials, or half the budget if fewer."""


def plan_first_round(budget: int) -> RoundPlan:
    if budget < MIN_EXPLOIT_BUDGET:
        return RoundPlan("explore", min(budget, max(MIN_ROUND, math.ceil(0.6 * budget))))
    share = max(FIRST_ROUND_FLOOR, math.ceil(FIRST_ROUND_SHARE * budget))
    return RoundPlan("explore", min(math.ceil(budget / 2), share))


MIN_ROUND = 3
"""The smallest round worth running on its own."""


def expansion_size(budget: int) -> int:
    return max(MIN_ROUND, math.ceil(0.2 * budget))


REMEASURE_FROM = 100
"""From this budget on, the playbook strategy's last ``REMEASURE_TRIALS`` trials train its best
candidates again (a ``remeasure`` round). From budget 50 it was worse: the search, the
expansions above all, needs those trials there (docs/benchmarks.md)."""
REMEASURE_TRIALS = 3
"""Trials of the ``remeasure`` round: one fresh training run of each of this many candidates."""
REMEASURE_POOL = 10
"""The ``remeasure`` round's candidates are among this many best observed configurations."""


def remeasure_trials(budget: int) -> int:
    """How many of ``budget``'s trials the ``remeasure`` round takes at the end (0: none)."""
    return REMEASURE_TRIALS if budget >= REMEASURE_FROM else 0


def plan_next_round(budget: int, spent: int, expansions: int, wants_expansion: bool) -> RoundPlan | None:
    """The next round after ``spent`` trials and ``expansions`` expansion rounds; None: done.

    ``wants_expansion``: the diagnostics asked for a wider range after the latest round.
    """
    left = budget - spent
    if left <= 0:
        return None
    if wants_expansion and expansions < MAX_EXPANSIONS:
        size = expansion_size(budget)
        if budget < MIN_EXPLOIT_BUDGET or left - size < MIN_ROUND:
            size = left
        return RoundPlan("explore", min(size, left))
    if budget < MIN_EXPLOIT_BUDGET:
        return RoundPlan("explore", left)
    return RoundPlan("exploit", left)
