"""The command line: ``adamtune demo | tune | run | worker``, which run studies, and
``studies | trials | best | export | report | copy | delete``, which read, copy or remove them.

A user mistake prints one line (``error: ...``) and exits with 2; ``--debug`` shows tracebacks.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import click
from rich.console import Console

from adamtune._version import __version__
from adamtune.campaign import Campaign, Round, campaign_rounds_text
from adamtune.choice import recommended_line
from adamtune.config import OPTIMIZERS, cell_text, optimizer_text
from adamtune.confirmation import Confirmation, how_to_use, parse_baseline, use_line
from adamtune.environment import oversubscription_warning, threads_per_worker, with_thread_limits
from adamtune.errors import AdamTuneError, ConfigError
from adamtune.executors import Executor
from adamtune.executors.command import (
    METRICS_FORMATS,
    CommandObjective,
    MetricsFormat,
    log_dir,
    unpassed_warning,
)
from adamtune.outcomes import State
from adamtune.progress import ProgressBar
from adamtune.records import TrialRecord, duration_text
from adamtune.space import SearchSpace, parse_fixed, parse_limit, parse_names, parse_range
from adamtune.storage import describe
from adamtune.strategy import STRATEGIES
from adamtune.study import Progress, Study, copy_study, delete_study, load_studies, load_study, tune
from adamtune.tables import Column, fitted_table
from adamtune.target import load_target
from adamtune.tiers import check_budget, choose_tuned
from adamtune.workers import Launching, LocalWorkers, build_objective, known_options, launch_spec, read_launch
from adamtune.workloads.demo import DEMO_MODELS, LANGUAGE_MODEL, demo_metric, demo_study, demo_workload

F = TypeVar("F", bound=Callable[..., Any])

# Off a terminal rich would wrap at 80 columns: keep lines whole for logs and pipes.
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 240)
err = Console(stderr=True, highlight=False, soft_wrap=True)

DEMO_BUDGET = 20
REPORT_DIR = "adamtune-report"
STRATEGY_SUMMARY = {
    "playbook": "explore quasi-randomly, expand or narrow the ranges the diagnostics question, "
    "exploit with constrained Bayesian optimisation, confirm the best on fresh seeds",
    "quasi-random": "scrambled Halton points over the space",
    "random": "independent uniform points over the space",
    "grid": "a grid over the space, in a seeded order",
    "bayes": "quasi-random start-up, then Optuna's GP sampler with the divergence constraint",
    "tpe": "quasi-random start-up, then Optuna's TPE sampler",
}


def _storage_option(command: F) -> F:
    return click.option(
        "--storage",
        metavar="URL",
        help="Journal file (PATH.journal), memory, or an Optuna URL such as "
        "sqlite:///s.db or postgresql://user@host/db. Default: ./adamtune.journal",
    )(command)


def _storage_options(command: F) -> F:
    command = _storage_option(command)
    return click.option("--study", "study_name", metavar="NAME", help="Study name.")(command)


def _study_options(command: F) -> F:
    """Options shared by the commands that run studies."""
    options = [
        click.option(
            "--budget",
            type=int,
            metavar="N",
            help="Trials with a result to run. A larger one than a finished study's extends it.",
        ),
        click.option("--seed", type=int, default=0, show_default=True, help="Search seed."),
        click.option("--tune", "tuned", metavar="NAMES", help="Tune these, e.g. lr,beta1."),
        click.option("--range", "ranges", multiple=True, metavar="NAME=LOW:HIGH", help="Search range."),
        click.option(
            "--limit",
            "limits",
            multiple=True,
            metavar="NAME=LOW:HIGH",
            help="Never expand NAME's range beyond LOW:HIGH (playbook strategy).",
        ),
        click.option("--fix", "fixes", multiple=True, metavar="NAME=VALUE", help="Fixed value."),
        click.option(
            "--optimizer",
            type=click.Choice(OPTIMIZERS),
            help="adamw and nadamw decouple weight decay; nadam and nadamw are torch.optim.NAdam.",
            default="adam",
            show_default=True,
        ),
        click.option(
            "--direction",
            type=click.Choice(["minimize", "maximize"]),
            default="minimize",
            show_default=True,
        ),
        click.option(
            "--max-failures",
            type=int,
            default=5,
            show_default=True,
            metavar="N",
            help="Stop after N failed trials in a row.",
        ),
        click.option(
            "--pruner",
            type=click.Choice(["none", "median", "asha"]),
            default="none",
            show_default=True,
            help="Stop unpromising trials early (median rule or ASHA).",
        ),
        click.option(
            "--patience", type=int, metavar="K", help="Stop a trial after K reports without improvement."
        ),
        click.option(
            "--strategy",
            type=click.Choice(list(STRATEGIES)),
            default="playbook",
            show_default=True,
            help="playbook: explore, expand the ranges, exploit with constrained BO, confirm. "
            "Or one search: quasi-random, random, grid (1-2 tuned), bayes (GP), tpe.",
        ),
        click.option(
            "--confirm",
            type=int,
            metavar="N",
            help="Retrain the best configurations and the baseline on N fresh seeds after the "
            "budget (0: off). Default: 3 with the playbook strategy, else 0.",
        ),
        click.option(
            "--confirm-top",
            type=int,
            default=3,
            show_default=True,
            metavar="K",
            help="How many of the best configurations to confirm.",
        ),
        click.option(
            "--baseline",
            metavar="NAME=VALUE,...",
            help="Your current configuration, to compare with (default: torch's defaults "
            "lr=1e-3,beta1=0.9,beta2=0.999,eps=1e-8; NAdam's lr 2e-3; AdamW's and NAdamW's "
            "weight_decay 0.01).",
        ),
        click.option(
            "--divergence-factor",
            type=float,
            default=10.0,
            show_default=True,
            metavar="F",
            help="A training loss F times its first value is divergence (0: off).",
        ),
        click.option(
            "--executor",
            type=click.Choice(["in-process", "batched", "ray"]),
            help="Where trials run: in this process one after another; batched, a batch of trials "
            "as one PyTorch computation (a workload with batched_spec(): the built-in ones or "
            "adamtune.workloads.TorchWorkload; the demo's default); or as Ray tasks "
            "(pip install 'adamtune[ray]'). Default: in-process.",
        ),
        click.option(
            "--ray-address",
            metavar="ADDRESS",
            help="The Ray cluster for --executor ray, e.g. auto or ray://head:10001. "
            "Default: start a local one.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return _storage_options(command)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="adamtune")
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Tune Adam's hyperparameters the way the Deep Learning Tuning Playbook recommends."""
    ctx.obj = {"debug": debug}
    _configure_logging(debug)


@cli.command()
@_study_options
@click.option(
    "--model",
    type=click.Choice(DEMO_MODELS),
    default="mlp",
    show_default=True,
    help="mlp or cnn: MNIST-1D's; lm: a byte-level transformer on the standard library's source.",
)
@click.option("--steps", type=int, default=None, help="Training steps.  [default: 8000; 400 for --model lm]")
def demo(budget: int | None, model: str, steps: int | None, **options: Any) -> None:
    """Run a real study: Adam on the MNIST-1D MLP (or CNN), generated offline, or on a small
    language model of the Python standard library's own source (--model lm).

    The objective is the best validation error during training (a language model's: its
    validation loss in nats per byte); MNIST-1D's trials of a batch train together (--executor
    batched), the language model's one after another. The budget defaults to 20 trials; every
    study option works here too, for example --range lr=1e-5:1e-1 to widen the learning-rate
    range.
    """
    if steps is not None and steps < 1:
        raise ConfigError(f"--steps: expected a whole number >= 1, got {steps}")
    workload = demo_workload(model, steps)
    batchable = hasattr(workload, "batched_spec")  # the language model has none: stdlib_lm says why
    if not batchable and options.get("executor") == "batched":
        raise ConfigError(
            f"--executor batched: expected --model mlp or cnn, got {model} (the language model trains "
            "one trial after another: it has no batched form)"
        )
    name = options.pop("study_name") or demo_study(model)
    budget = DEMO_BUDGET if budget is None else budget
    options["metric"] = demo_metric(model)
    options["executor"] = options.get("executor") or ("batched" if batchable else "in-process")
    storage = options.pop("storage")  # not in the launch spec: each worker names its own
    launch = launch_spec("demo", budget, options, model=model, steps=workload.steps)
    study = _run(workload, budget, name, storage, launch=launch, **options)
    best = study.best
    if best is not None and best.value is not None:
        out.print(f"{_demo_best(model, best.value)} (trial {best.number})")
    out.print(f"report: {study.report(REPORT_DIR)}")


def _demo_best(model: str, value: float) -> str:
    if model == LANGUAGE_MODEL:
        bits = value / math.log(2)
        return f"best validation loss during training {value:.3f} nats per byte ({bits:.3f} bits)"
    return f"best validation accuracy during training {1 - value:.1%}"


@cli.command("tune")
@click.argument("target")
@_study_options
@click.option("--metric", default="val_loss", show_default=True, help="The objective's name.")
@click.option(
    "--workers",
    "processes",
    type=int,
    default=1,
    show_default=True,
    metavar="K",
    help="Processes on this machine that run trials at once (this one and K-1 adamtune workers).",
)
def tune_command(target: str, budget: int | None, metric: str, processes: int, **options: Any) -> None:
    """Tune the objective TARGET: path/to/file.py:function or module:function."""
    if budget is None:
        raise ConfigError("--budget: expected a whole number of trials >= 1, got nothing")
    if processes < 1:
        raise ConfigError(f"--workers: expected a whole number of processes >= 1, got {processes}")
    # Before the objective imports torch: this process and the workers it starts (which inherit
    # the environment) each compute with their share of the cores.
    os.environ.update(with_thread_limits(os.environ, threads_per_worker(processes)))
    objective = load_target(target)
    name = options.pop("study_name") or target.rpartition(":")[2]
    storage = options.pop("storage")
    launch = launch_spec("target", budget, {"metric": metric, **options}, target=target)
    _run(objective, budget, name, storage, metric=metric, launch=launch, spawn=processes - 1, **options)


@cli.command()
@_storage_options
@click.option(
    "--wait",
    type=float,
    default=0.0,
    show_default=True,
    metavar="SECONDS",
    help="Wait this long for the database to answer and the study to be created (workers may "
    "start before either).",
)
def worker(study_name: str | None, storage: str | None, wait: float) -> None:
    """Join a study and run its trials until the budget is spent; on any number of machines.

    The study must have been started by adamtune tune, run or demo (they store what a worker
    needs: the objective and the settings). Share it across machines with a database:
    --storage postgresql://user:password@host:5432/db (see docs/distributed.md).
    """
    name, spec = read_launch(study_name, storage, wait)
    objective = build_objective(spec, storage, name)
    _run(objective, int(spec["budget"]), name, storage, **known_options(spec, _run))


@cli.command("run", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@_study_options
@click.option("--metric", default="val_loss", show_default=True, help="The printed metric to optimise.")
@click.option(
    "--objective",
    "objective_kind",
    type=click.Choice(["best", "last"]),
    default="best",
    show_default=True,
    help="The best value printed during training, or the last.",
)
@click.option(
    "--metrics-format",
    type=click.Choice(METRICS_FORMATS),
    default="json",
    show_default=True,
    help='How the program prints its metrics: JSON lines ({"step": 100, "val_loss": 0.41}), or '
    "pairs: JSON lines and name=value or name: value pairs (step 100: val_loss=0.41).",
)
@click.option("--timeout", type=float, metavar="SECONDS", help="End a trial (and its children) after this.")
@click.option("--workers", type=int, default=1, show_default=True, help="Commands to run at once.")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def run_command(
    command: tuple[str, ...],
    budget: int | None,
    metric: str,
    objective_kind: str,
    metrics_format: MetricsFormat,
    timeout: float | None,
    **options: Any,
) -> None:
    """Tune any program: adamtune run [OPTIONS] -- COMMAND ARG...

    Placeholders {lr} {beta1} {beta2} {eps} {weight_decay} {seed} {trial} {run} in the arguments
    get the trial's values (also in ADAMTUNE_LR, ...); {run} names the run uniquely in the study
    ({trial} restarts in each round). Each line the command prints (on standard output or
    error) that is a JSON object is a report, e.g. {"step": 100, "val_loss": 0.41}; with
    --metrics-format pairs, so is a line with name=value or name: value pairs, e.g. step=100
    val_loss=0.41.
    """
    if budget is None:
        raise ConfigError("--budget: expected a whole number of trials >= 1, got nothing")
    name = options.pop("study_name") or _command_name(command)
    storage = options.pop("storage")
    objective = CommandObjective(
        tuple(command),
        log_dir=log_dir(storage, name),
        metric=metric,
        objective=objective_kind,  # type: ignore[arg-type]
        direction=options["direction"],
        timeout_s=timeout,
        metrics_format=metrics_format,
        threads=threads_per_worker(options["workers"]),
    )
    launch = launch_spec(
        "command",
        budget,
        {"metric": metric, **options},
        argv=list(command),
        metric=metric,
        objective=objective_kind,
        timeout=timeout,
        metrics_format=metrics_format,
    )
    _run(objective, budget, name, storage, metric=metric, launch=launch, **options)


def _command_name(command: Sequence[str]) -> str:
    """A study name from the command: its first argument that is a file, else the program."""
    for arg in command[1:]:
        if os.path.isfile(arg):
            return os.path.basename(arg)
    return os.path.basename(command[0])


def _run(
    objective: Callable[..., Any],
    budget: int,
    name: str,
    storage: str | None,
    *,
    seed: int,
    tuned: str | None = None,
    ranges: Sequence[str] = (),
    limits: Sequence[str] = (),
    fixes: Sequence[str] = (),
    optimizer: str = "adam",
    direction: str = "minimize",
    max_failures: int = 5,
    metric: str = "val_loss",
    workers: int = 1,
    pruner: str = "none",
    patience: int | None = None,
    divergence_factor: float = 10.0,
    strategy: str = "playbook",
    confirm: int | None = None,
    confirm_top: int = 3,
    baseline: str | None = None,
    executor: str | None = None,
    ray_address: str | None = None,
    launch: Mapping[str, Any] | None = None,
    spawn: int = 0,
) -> Study:
    """Run the study; ``launch`` is stored for workers, ``spawn`` workers start beside this one."""
    if spawn and storage in ("memory", ":memory:"):
        raise ConfigError("--workers: expected a storage other processes can open, got memory")
    parsed_ranges = dict(parse_range(text) for text in ranges)
    parsed_limits = dict(parse_limit(text) for text in limits)
    parsed_fixed = dict(parse_fixed(text) for text in fixes)
    requested = parse_names(tuned) if tuned is not None else None
    parsed_baseline = None
    if baseline is not None:
        choice = choose_tuned(check_budget(budget), requested=requested, fixed=parsed_fixed)
        space = SearchSpace.build(
            choice.tuned,
            ranges=parsed_ranges,
            fixed=parsed_fixed,
            optimizer=optimizer,  # type: ignore[arg-type]
            limits=parsed_limits,
        )
        parsed_baseline = parse_baseline(baseline, space)
    runner = _make_executor(executor or "in-process", ray_address)
    local = LocalWorkers(spawn, storage) if spawn else None
    with ProgressBar(err) as bar:
        command = objective.argv if isinstance(objective, CommandObjective) else None
        announce = Launching(_Announcer(bar, describe(storage), command, spawn + 1), launch, local)
        try:
            study = tune(
                objective,
                budget,
                study=name,
                storage=storage,
                seed=seed,
                tune=requested,
                ranges=parsed_ranges,
                fixed=parsed_fixed,
                optimizer=optimizer,  # type: ignore[arg-type]
                limits=parsed_limits,
                direction=direction,  # type: ignore[arg-type]
                metric=metric,
                max_consecutive_failures=max_failures,
                executor=runner,
                workers=workers,
                pruner=pruner,  # type: ignore[arg-type]
                patience=patience,
                divergence_factor=divergence_factor or None,
                progress=announce,
                strategy=strategy,  # type: ignore[arg-type]
                confirm=confirm,
                confirm_top=confirm_top,
                baseline=parsed_baseline,
            )
        except KeyboardInterrupt:
            bar.__exit__()
            if local is not None:
                local.interrupt()
                local.wait()
            err.print("interrupted: finished trials are kept; run the same command again to resume")
            sys.exit(130)
        except BaseException:
            if local is not None:
                local.interrupt()
                local.wait()
            raise
        problems = local.wait() if local is not None else []
    for line in problems:
        err.print(f"warning: {line}", markup=False)
    _print_best(study)
    if local is not None and local.failed():
        sys.exit(1)
    return study


def _make_executor(name: str, ray_address: str | None) -> Executor | None:
    """The executor --executor names (None: tune's default, in this process)."""
    if ray_address is not None and name != "ray":
        raise ConfigError(f"--ray-address: expected --executor ray with it, got --executor {name}")
    if name == "ray":
        from adamtune.executors.ray import RayExecutor

        return RayExecutor(address=ray_address)
    if name == "batched":
        from adamtune.executors import BatchedExecutor

        return BatchedExecutor()
    return None


class _Announcer:
    """Prints what is tuned and why when the study starts, then drives the bar."""

    def __init__(
        self,
        bar: ProgressBar,
        where: str,
        command: Sequence[str] | None = None,
        processes: int = 1,
    ) -> None:
        self._bar = bar
        self._where = where
        self._command = command  # adamtune run's: checked for the placeholders it passes
        # Beside other processes, this one's objective is checked once for the threads it uses.
        self._threads = threads_per_worker(processes) if command is None else None
        self._processes = processes

    def started(self, study: Study, done: int) -> None:
        err.print(
            f"study [bold]{study.name}[/] in {self._where}: budget {study.budget}, seed {study.info.seed}"
        )
        err.print(f"tuning: {study.info.tiers.reason}", markup=False)
        err.print(f"optimizer: {optimizer_text(study.space.optimizer)}", markup=False)
        for line in study.space.describe():
            err.print(f"  {line}", markup=False)
        err.print(f"strategy: {study.strategy}: {STRATEGY_SUMMARY[study.strategy]}", markup=False)
        unpassed = None
        if self._command:
            space = study.space
            unpassed = unpassed_warning(self._command, space.tuned, space.fixed_apart_from_defaults())
        if unpassed is not None:
            err.print(f"warning: {unpassed}", markup=False)
        if done and study.extended_from == done:
            err.print(f"extending: the {done} trials of the finished study, and {study.budget - done} more")
        elif done:
            err.print(f"resuming: {done} of {study.budget} trials already finished")
        self._bar.started(study, done)

    def trial_finished(self, study: Study, record: TrialRecord, done: int) -> None:
        if self._threads is not None and "torch" in sys.modules:  # checked once torch is in use
            warning = oversubscription_warning(self._threads, self._processes)
            self._threads = None
            if warning is not None:
                self._bar.note(f"warning: {warning}")
        self._bar.trial_finished(study, record, done)

    def round_started(self, campaign: Campaign, planned: Round) -> None:
        self._bar.round_started(campaign, planned)

    def confirmation_started(self, study: Study, runs: int) -> Progress:
        return self._bar.confirmation_started(study, runs)


def _print_best(study: Study) -> None:
    tally = study.tally()
    best = study.best
    if isinstance(study, Campaign):
        for line in campaign_rounds_text(study):
            out.print(line, markup=False)
    counts = f"{tally.failed} failed{tally.given_back_text()}"
    trials = "trial" if tally.results == 1 else "trials"
    out.print(f"{tally.results} {trials} with a result ({counts}) in study {study.name}")
    if best is None or best.adam is None:
        out.print("no trial completed: nothing to recommend")
        return
    _print_best_trial(study, best)
    confirmation = study.confirmation
    if confirmation is not None:
        _print_confirmation(confirmation, study.info.metric, study.space.tuned, study.param_names)
        outdated = confirmation.outdated(tally.results)
        if outdated:
            out.print(f"note: {outdated}", markup=False)
    _print_use(study)


def _print_use(study: Study) -> None:
    """The trial to adopt as what to train with: code to paste, or the command filled in."""
    line = use_line(study)
    if line is not None:
        out.print(line, markup=False, soft_wrap=True)


def _print_confirmation(
    confirmation: Confirmation, metric: str, tuned: Sequence[str], names: Sequence[str]
) -> None:
    """The confirmation's table: ``names`` are the study's Adam values (weight decay when in
    play); the untuned ones are left out first when the terminal is narrow."""
    seeds = len(confirmation.seeds)
    columns = [Column(name) for name in ("config", f"mean {metric}", "std", "diverged", *names)]
    rows = [
        [
            config.label,
            cell_text(config.mean),
            cell_text(config.std),
            f"{config.diverged}/{seeds}" if config.diverged else "",
            *(cell_text(getattr(config.adam, name), name) for name in names),
        ]
        for config in confirmation.configs
    ]
    untuned = [name for name in names if name not in tuned]
    _print_fitted(f"confirmation on {seeds} fresh seeds", columns, rows, ["diverged", *untuned, "std"])
    out.print(confirmation.verdict(), markup=False)


def _print_fitted(
    title: str,
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    leave_out: Sequence[str],
    more: str = "",
) -> None:
    """A table that fits the terminal without cutting a value; says which columns it left out."""
    table, left_out = fitted_table(title, columns, rows, out.width, leave_out)
    out.print(table)
    if left_out:
        out.print(f"left out for the terminal's width: {', '.join(left_out)}{more}", markup=False)


@cli.command()
@_storage_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def studies(storage: str | None, fmt: str) -> None:
    """List the studies in a storage: strategy, trials done, best value, the trial to adopt."""
    with err.status(f"reading the studies in {describe(storage)}"):  # a large storage takes a while
        found = load_studies(storage)
        rows = [_study_row(name, study) for name, study in found.items()]
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        out.print(f"no studies in {describe(storage)}")
        return
    counted = f"{len(rows)} stud{'y' if len(rows) == 1 else 'ies'}"
    wrapping = ("to adopt", "confirmation")
    columns = [
        Column(name, wraps=name in wrapping)
        for name in ("study", "strategy", "trials", "best", "to adopt", "confirmation")
    ]
    cells = []
    for row in rows:
        if not row["adamtune"]:
            cells.append([row["name"], "", "", "", "not created by adamtune (Optuna's API reads it)", ""])
            continue
        trials = f"{row['results']}/{row['budget']}"
        trials += f", {row['running']} running" if row["running"] else ""
        trials += f", {row['failed']} failed" if row["failed"] else ""
        best_text = f"{row['metric']} {cell_text(row['best'])}" if row["best"] is not None else "none yet"
        adopt = row["adopt"]
        chosen = ""
        if adopt:
            how = " (confirmed best)" if adopt["why"] == "confirmed best" else ""
            which = "the baseline" if adopt["number"] is None else f"trial {adopt['number']}{how}"
            chosen = f"{which}: {adopt['config']}"
        cells.append([row["name"], row["strategy"], trials, best_text, chosen, _confirmation_text(row)])
    title = f"{counted} in {describe(storage)}"
    _print_fitted(title, columns, cells, ["strategy"], " (--format json shows every field)")


def _study_row(name: str, study: Study | None) -> dict[str, Any]:
    """One study's line of ``adamtune studies``, as data."""
    if study is None:
        return {"name": name, "adamtune": False}
    counts = study.tally()
    best_record = study.best
    confirmation = study.confirmation
    recommendation = study.recommended
    recommended = None
    if recommendation is not None and recommendation.record.adam is not None:
        config = recommendation.record.adam.short()
        recommended = {**recommendation.to_dict(study.param_names), "config": config}
    adopted = study.adopted  # the recommended trial, or the confirmation's winner over it
    adopt = adopted.to_dict(study.param_names)
    if adopt is not None and adopted.record is not None and adopted.record.adam is not None:
        adopt["config"] = adopted.record.adam.short()
    return {
        "name": name,
        "adamtune": True,
        "strategy": study.strategy,
        "budget": study.budget,
        "results": counts.results,
        "running": counts.running,
        "failed": counts.failed,
        "given_back": counts.given_back,
        "metric": study.info.metric,
        "direction": study.info.direction,
        "best": best_record.value if best_record is not None else None,
        "recommended": recommended,
        "adopt": adopt,
        "confirmed": confirmation is not None,
        "beats_baseline": confirmation.beats_baseline if confirmation is not None else None,
        "baseline_wins": confirmation.baseline_wins if confirmation is not None else None,
    }


def _confirmation_text(row: Mapping[str, Any]) -> str:
    if not row["confirmed"]:
        return ""
    if row.get("baseline_wins"):
        return "the baseline is better: keep it"
    verdicts = {True: "beats the baseline", False: "does not beat the baseline", None: "no verdict"}
    return verdicts[row["beats_baseline"]]


@cli.command()
@_storage_options
@click.option(
    "--state",
    type=click.Choice([s.value for s in State]),
    help="Show only trials in this state.",
)
@click.option("--reasons", is_flag=True, help="Print each shown trial's full reason after the table.")
def trials(study_name: str | None, storage: str | None, state: str | None, reasons: bool) -> None:
    """List a study's trials."""
    study = load_study(study_name, storage)
    records = [r for r in study.trials if state is None or r.state == state]
    names = study.param_names
    with_logs = any(record.logs for record in records)
    with_rounds = isinstance(study, Campaign)
    shown = ("#", *(("round",) if with_rounds else ()), "state", study.info.metric, *names, "seed", "time")
    columns = [Column(name) for name in shown] + [Column("reason", wraps=True)]
    columns += [Column("logs", wraps=True)] if with_logs else []
    rows = []
    for record in records:
        params = record.params(names)
        rows.append(
            [
                str(record.number),
                *((str(record.round),) if with_rounds else ()),
                str(record.state),
                cell_text(record.value),
                *(cell_text(params.get(n), n) for n in names),
                str(record.seed) if record.seed is not None else "",
                duration_text(record),
                record.reason_line(80),
                *((_log_text(record.logs),) if with_logs else ()),
            ]
        )
    untuned = [name for name in names if name not in study.space.tuned]
    leave_out = ["logs", *untuned, "time", "seed", "round"]
    title = f"{study.name}: {len(records)} trials"
    _print_fitted(title, columns, rows, leave_out, " (adamtune export --format csv has every column)")
    if reasons:
        for record in records:
            if record.reason:
                out.print(f"\ntrial {record.number} ({record.state}):\n{record.reason}", markup=False)


@cli.command()
@_storage_options
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def best(study_name: str | None, storage: str | None, fmt: str) -> None:
    """Show the best trial of a study."""
    study = load_study(study_name, storage)
    record = study.best
    if record is None:
        raise ConfigError(f"study {study.name}: expected a completed trial, got none yet")
    if fmt == "json":
        body: dict[str, Any] = {
            "number": record.number,
            "value": record.value,
            "params": record.params(study.param_names),
            "seed": record.seed,
        }
        if record.round is not None:
            body["round"] = record.round
        recommendation = study.recommended
        if recommendation is not None:
            body["recommended"] = recommendation.to_dict(study.param_names)
        confirmation = study.confirmation
        if confirmation is not None:
            body["confirmation"] = confirmation.to_dict()
        adopted = study.adopted
        adopt = adopted.to_dict(study.param_names)
        if adopt is not None:  # the one to use: a script's "jq .adopt.params"
            body["adopt"] = adopt
            body["use"] = how_to_use(study, adopted)  # the code or command that trains with it
        click.echo(json.dumps(body, indent=2))
        return
    _print_best_trial(study, record)
    confirmation = study.confirmation
    if confirmation is not None:
        for line in confirmation.summary(record.number, study.tally().results):
            out.print(line, markup=False)
    _print_use(study)


def _print_best_trial(study: Study, best: TrialRecord) -> None:
    """The best single run, and the recommendation where it is another trial."""
    where = f", round {best.round}" if best.round is not None else ""
    out.print(f"best {study.info.metric} {best.value:.6g} (trial {best.number}{where}, seed {best.seed})")
    out.print(f"  {best.adam.short() if best.adam else ''}")
    _print_recommended(study, best)


def _print_recommended(study: Study, best: TrialRecord) -> None:
    """The recommendation, where it is not the best single observation."""
    line = recommended_line(study.recommended, best)
    if line is None:
        return
    text, same = line
    out.print(text, markup=False)
    chosen = study.recommended
    if not same and chosen is not None and chosen.record.adam is not None:
        out.print(f"  {chosen.record.adam.short()}")


@cli.command()
@_storage_options
@click.option("--format", "fmt", type=click.Choice(["json", "csv"]), default="json")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), help="File to write.")
def export(study_name: str | None, storage: str | None, fmt: str, output: str | None) -> None:
    """Export a study: JSON has its settings, every trial with its curves, the recommendation
    and the confirmation; CSV one row per trial."""
    study = load_study(study_name, storage)
    if fmt == "json":
        body = study.to_dict()
        count = len(body["trials"])
        text = json.dumps(body, indent=2)
    else:
        rows = [record.to_dict(study.param_names) for record in study.trials]
        count = len(rows)
        text = _csv(rows, study.param_names)
    if output:
        with open(output, "w", encoding="utf-8") as handle:
            handle.write(text + ("\n" if fmt == "json" else ""))
        err.print(f"wrote {count} trials to {output}")
    else:
        click.echo(text, nl=fmt == "json")


@cli.command()
@_storage_option
@click.option("--study", "study_name", metavar="NAME", required=True, help="The study to copy.")
@click.option("--to", "to", metavar="URL", help="The storage to copy it to (default: the same one).")
@click.option("--as", "new_name", metavar="NAME", help="The copy's name (default: the study's own).")
def copy(study_name: str, storage: str | None, to: str | None, new_name: str | None) -> None:
    """Copy a study, its rounds and its confirmation to another storage (a journal file to
    PostgreSQL, say), or under another name (--as: a branch that resumes, or grows with a
    larger --budget, on its own while the original stays as it was)."""
    if to is None and new_name is None:
        raise ConfigError("copy: expected --to URL (another storage) or --as NAME (a new name), got neither")
    copied = copy_study(study_name, storage, to, new_name)
    where = describe(to if to is not None else storage)
    named = f" as {new_name}" if new_name is not None and new_name != study_name else ""
    out.print(
        f"copied study {study_name} from {describe(storage)} to {where}{named} "
        f"(Optuna studies: {', '.join(copied)})"
    )


@cli.command()
@_storage_option
@click.option("--study", "study_name", metavar="NAME", required=True, help="The study to delete.")
@click.option("--yes", is_flag=True, help="Delete without asking.")
def delete(study_name: str, storage: str | None, yes: bool) -> None:
    """Delete a study, its rounds and its confirmation from the storage: its trials are lost."""
    study = load_study(study_name, storage)
    counts = study.tally()
    where = describe(storage)
    running = f", {counts.running} of them running" if counts.running else ""
    count = len(study.trials)
    what = f"study {study.name} ({count} trial{'' if count == 1 else 's'}{running}) from {where}"
    if not yes and not click.confirm(f"delete {what}?", default=False, err=True):
        out.print(f"kept study {study.name}")
        return
    deleted = delete_study(study.name, storage)
    out.print(f"deleted {what} (Optuna studies: {', '.join(deleted)})")
    logs = log_dir(storage, study.name)
    if logs.is_dir():
        out.print(f"its command logs stay in {logs}")


@cli.command()
@_storage_options
@click.option(
    "--out",
    "--output",
    "-o",
    "out_path",
    type=click.Path(writable=True),
    default=REPORT_DIR,
    show_default=True,
    help="Folder for STUDY.html, or an .html file.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["html", "text"]),
    default="html",
    show_default=True,
    help="html: the full report as one file; text: the diagnostics in the terminal.",
)
def report(study_name: str | None, storage: str | None, out_path: str, fmt: str) -> None:
    """Read a study the playbook's way: best configuration, diagnostics, plots, all trials."""
    from adamtune.plots.report import text_report  # matplotlib loads only when a report is made

    study = load_study(study_name, storage)
    if fmt == "text":
        out.print(text_report(study), markup=False)
        return
    with err.status("drawing the plots"):
        written = study.report(out_path)
    out.print(f"report: {written}")


def _csv(rows: list[dict[str, Any]], names: Sequence[str]) -> str:
    metric_names = sorted({name for row in rows for name in row["metrics"]})
    # A campaign's trials say which round ran them, as in `adamtune trials`.
    rounds = ["round"] if any("round" in row for row in rows) else []
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        ["number", *rounds, "state", "value", *names, "seed", "reason", "duration_s"]
        + [f"metric_{m}" for m in metric_names]
    )
    for row in rows:
        writer.writerow(
            [row["number"], *(row.get(r) for r in rounds), row["state"], row["value"]]
            + [row["params"].get(n) for n in names]
            + [row["seed"], row["reason"], row["duration_s"]]
            + [row["metrics"].get(m) for m in metric_names]
        )
    return buffer.getvalue()


def _log_text(logs: Mapping[str, str]) -> str:
    return f"{logs['stdout']} (+ .stderr)" if "stdout" in logs else ""


def _configure_logging(debug: bool) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.DEBUG if debug else optuna.logging.WARNING)
    logger = logging.getLogger("adamtune")
    if debug and not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)


# The library names a bad value by its Python parameter; on the command line the user gave an
# option. Options whose name is not the parameter's with dashes are listed here.
_OPTION_OF_PARAMETER = {"max_consecutive_failures": "--max-failures"}


def _named_by_option(message: str) -> str:
    """``message`` with a leading ``parameter:`` named as the option the user gave instead."""
    name, colon, rest = message.partition(": ")
    option = _OPTION_OF_PARAMETER.get(name, "--" + name.replace("_", "-"))
    options = {opt for command in cli.commands.values() for param in command.params for opt in param.opts}
    return f"{option}: {rest}" if colon and option in options else message


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: one line and exit code 2 for every user mistake, unless --debug."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    if not [arg for arg in args if arg != "--debug"]:
        # The commands, not an error: click 8.2+ raises a usage error whose message is the help.
        with click.Context(cli, info_name="adamtune") as ctx:
            click.echo(cli.get_help(ctx))
        sys.exit(0)
    try:
        cli.main(args=args, prog_name="adamtune", standalone_mode=False)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.Abort:
        err.print("interrupted")
        sys.exit(130)
    except click.UsageError as error:
        command = error.ctx.command_path if error.ctx else "adamtune"
        err.print(f"error: {error.format_message()} (see {command} --help)", markup=False)
        sys.exit(2)
    except AdamTuneError as error:
        if debug:
            raise
        err.print(f"error: {_named_by_option(str(error))}", markup=False)
        sys.exit(error.exit_code)
    except Exception as error:
        if debug:
            raise
        err.print(
            f"error: {type(error).__name__}: {error} (run with --debug for the traceback)",
            markup=False,
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
