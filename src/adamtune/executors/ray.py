"""``RayExecutor``: trials as Ray tasks on a Ray cluster, results told to the same study.

The ask-run-tell loop stays in this process (the driver): it asks the study for a batch of
trials, sends each trial's configuration, seed and stop rules to Ray, and tells the study what
came back. On the Ray worker the objective gets a real ``Trial`` whose reports are recorded;
back on the driver they are replayed into the study (curves, intermediate values), so a trial
run on Ray is stored exactly as one run in-process. The divergence and patience rules apply on
the worker; Optuna's pruner needs the study, so it does not stop trials on Ray.

- ``RayExecutor()``: one Ray task per trial, as many at once as the cluster has CPUs (divided by
  ``num_cpus``), or ``parallel``.
- ``RayExecutor(BatchedExecutor(...), num_gpus=1)``: the whole batch as one Ray task, for
  instance on a GPU node of the cluster.

``address``: an existing cluster ("auto", "ray://host:10001", ...); default: a local Ray
instance started for this process. Install with ``pip install 'adamtune[ray]'``; every node
needs adamtune and the objective's own imports.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from adamtune.errors import ConfigError
from adamtune.executors._base import Executor, Objective
from adamtune.executors.inprocess import run_objective
from adamtune.outcomes import Outcome
from adamtune.trial import StopRules, Trial


@dataclass
class _Recorder:
    """Stands in for the Optuna trial on a Ray worker: records reports, never prunes."""

    number: int
    user_attrs: dict[str, Any]
    study_attrs: dict[str, Any]
    study_name: str
    reports: list[tuple[float, int]] = field(default_factory=list)
    attrs_set: dict[str, Any] = field(default_factory=dict)

    @property
    def study(self) -> _StudyView:
        return _StudyView(self.study_name, self.study_attrs)

    def set_user_attr(self, key: str, value: Any) -> None:
        self.user_attrs[key] = value
        self.attrs_set[key] = value

    def report(self, value: float, step: int) -> None:
        self.reports.append((value, step))

    def should_prune(self) -> bool:
        return False


@dataclass(frozen=True)
class _StudyView:
    study_name: str
    user_attrs: dict[str, Any]


@dataclass(frozen=True)
class _Task:
    """What a Ray worker needs to run one trial."""

    number: int
    adam: Any
    seed: int
    point: int
    metric: str
    rules: StopRules
    user_attrs: dict[str, Any]
    study_attrs: dict[str, Any]
    study_name: str

    @classmethod
    def of(cls, trial: Trial) -> _Task:
        optuna_trial = trial.optuna_trial
        study_attrs = {k: v for k, v in optuna_trial.study.user_attrs.items() if k == "adamtune"}
        return cls(
            trial.number,
            trial.adam,
            trial.seed,
            trial.point,
            trial.metric,
            trial.rules,
            dict(optuna_trial.user_attrs),
            study_attrs,
            optuna_trial.study.study_name,
        )

    def trial(self) -> Trial:
        recorder = _Recorder(self.number, self.user_attrs, self.study_attrs, self.study_name)
        return Trial(
            recorder,  # type: ignore[arg-type]
            self.adam,
            seed=self.seed,
            point=self.point,
            metric=self.metric,
            rules=self.rules,
        )


Result = tuple[Outcome, dict[str, Any], list[tuple[float, int]], dict[str, Any]]
"""An outcome, the trial's state after its reports, the (value, step) pairs reported and the
user attributes the objective set (a command's log paths)."""


def _result(trial: Trial, outcome: Outcome) -> Result:
    recorder = trial.optuna_trial
    assert isinstance(recorder, _Recorder)
    state = {k: v for k, v in vars(trial).items() if k != "_optuna_trial"}
    return outcome, state, list(recorder.reports), dict(recorder.attrs_set)


def _run_one(objective: Objective, task: _Task) -> Result:
    trial = task.trial()
    return _result(trial, run_objective(objective, trial))


def _run_batch(inner: Executor, objective: Objective, tasks: Sequence[_Task]) -> list[Result]:
    trials = [task.trial() for task in tasks]
    outcomes = inner.run(objective, trials)
    return [_result(trial, outcome) for trial, outcome in zip(trials, outcomes, strict=True)]


class RayExecutor:
    """Runs trials as Ray tasks (see the module docstring)."""

    def __init__(
        self,
        inner: Executor | None = None,
        *,
        address: str | None = None,
        parallel: int | None = None,
        num_cpus: float = 1.0,
        num_gpus: float = 0.0,
        init_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if parallel is not None and (
            isinstance(parallel, bool) or not isinstance(parallel, int) or parallel < 1
        ):
            raise ConfigError(f"parallel: expected a whole number >= 1, got {parallel!r}")
        if num_cpus < 0 or num_gpus < 0:
            raise ConfigError(f"num_cpus, num_gpus: expected numbers >= 0, got {num_cpus!r}, {num_gpus!r}")
        self.inner = inner
        self.address = address
        self.parallel = parallel
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        self.init_kwargs = dict(init_kwargs or {})
        self._ray: Any = None

    def _connect(self) -> Any:
        if self._ray is not None:
            return self._ray
        try:
            import ray
        except ImportError:
            raise ConfigError(
                "executor ray: expected the ray package (pip install 'adamtune[ray]'), got none installed"
            ) from None
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, **self.init_kwargs}
            try:
                ray.init(address=self.address, **kwargs)
            except (ConnectionError, ValueError, RuntimeError) as error:
                where = self.address or "a new local instance"
                raise ConfigError(f"--ray-address: cannot connect to Ray at {where} ({error})") from None
        self._ray = ray
        return ray

    @property
    def batch_size(self) -> int:
        if self.inner is not None:
            return self.inner.batch_size
        if self.parallel is not None:
            return self.parallel
        cpus = float(self._connect().cluster_resources().get("CPU", 1))
        return max(1, int(cpus // self.num_cpus) if self.num_cpus else int(cpus))

    def run(self, objective: Objective, trials: Sequence[Trial]) -> list[Outcome]:
        if not trials:
            return []
        ray = self._connect()
        _pickle_by_value(ray, objective)
        tasks = [_Task.of(trial) for trial in trials]
        options = {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus, "max_retries": 0}
        if self.inner is not None:
            batch = ray.remote(_run_batch).options(**options).remote(self.inner, objective, tasks)
            refs = [batch]
        else:
            remote = ray.remote(_run_one).options(**options)
            refs = [remote.remote(objective, task) for task in tasks]
        try:
            gathered = [self._get(ray, ref, len(tasks) if self.inner is not None else 1) for ref in refs]
        except KeyboardInterrupt:
            for ref in refs:
                ray.cancel(ref, force=True)
            raise
        results = [result for group in gathered for result in group]
        outcomes = []
        for trial, (outcome, state, reports, attrs) in zip(trials, results, strict=True):
            _replay(trial, state, reports, attrs)
            outcomes.append(outcome)
        return outcomes

    @staticmethod
    def _get(ray: Any, ref: Any, count: int) -> list[Result]:
        try:
            got = ray.get(ref)
        except ray.exceptions.RayError:
            # The task itself failed (its worker died, out of memory); the objective's own
            # errors never get here: run_objective turns them into outcomes.
            reason = "the Ray task running this trial failed:\n" + traceback.format_exc()
            return [(Outcome.failed(reason, {}), {}, [], {}) for _ in range(count)]
        return list(got) if isinstance(got, list) else [got]


def _replay(
    trial: Trial, state: dict[str, Any], reports: Sequence[tuple[float, int]], attrs: dict[str, Any]
) -> None:
    """Give the driver's trial what the worker's trial saw, and the study its reports and the
    attributes the objective set."""
    for name, value in state.items():
        setattr(trial, name, value)
    for value, step in reports:
        trial.optuna_trial.report(value, step)
    for key, value in attrs.items():
        trial.optuna_trial.set_user_attr(key, value)


def _pickle_by_value(ray: Any, objective: object) -> None:
    """Ship the objective's code to the workers when its module is not installed there
    (a train.py loaded by path, a test module)."""
    module_name = getattr(objective, "__module__", None) or type(objective).__module__
    module = sys.modules.get(module_name)
    if module is None or module_name == "__main__" or module_name.split(".")[0] == "adamtune":
        return
    path = str(getattr(module, "__file__", "") or "")
    if "site-packages" in path or "dist-packages" in path or not path:
        return
    ray.cloudpickle.register_pickle_by_value(module)
