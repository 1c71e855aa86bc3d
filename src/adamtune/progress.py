"""The progress bar of long studies: trials done, best so far, time left, and a line above it
for each round and for the confirmation. The CLI draws it; so does ``tune(progress=True)``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from adamtune.records import TrialRecord
from adamtune.study import Study

if TYPE_CHECKING:
    from adamtune.campaign import Campaign, Round
    from adamtune.study import Progress as StudyProgress


class ProgressBar:
    """A ``study.Progress`` drawn with rich on standard error."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._phase: str | None = None

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def started(self, study: Study, done: int) -> None:
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[best]}"),
            TimeElapsedColumn(),
            TextColumn("left"),
            TimeRemainingColumn(),
            console=self._console,
        )
        self._task = self._progress.add_task(
            "trials", total=study.budget, completed=done, best=_best_text(study)
        )
        self._progress.start()

    def trial_finished(self, study: Study, record: TrialRecord, done: int) -> None:
        if self._progress is None or self._task is None:
            return
        if record.state != "complete":
            reason = (record.reason or "").strip().splitlines()
            where = f" of round {record.round}" if record.round is not None else ""
            self.note(f"  trial {record.number}{where} {record.state}: {reason[-1] if reason else ''}")
        best = _best_text(study) if self._phase is None else self._phase
        self._progress.update(self._task, completed=done, best=best)

    def round_started(self, campaign: Campaign, planned: Round) -> None:
        ranges = ", ".join(planned.space.tuned_ranges())
        self.note(f"round {planned.index}: {planned.kind}, {planned.trials_text}, {ranges}")

    def confirmation_started(self, study: Study, runs: int) -> StudyProgress:
        self.note(f"confirming: the best configurations and the baseline on fresh seeds ({runs} runs)")
        self.phase("confirm", runs)
        return _ConfirmProgress(self)

    def note(self, text: str) -> None:
        """A line above the bar."""
        console = self._progress.console if self._progress is not None else self._console
        console.print(text, highlight=False, markup=False)

    def phase(self, name: str, total: int) -> None:
        """Follow a new phase (the confirmation runs) with its own bar, below the trials'."""
        if self._progress is None:
            return
        # The phase's own label, not a "best" of runs that repeat the same configurations.
        self._phase = f"({name} runs)"
        self._task = self._progress.add_task(name, total=total, completed=0, best=self._phase)


class _ConfirmProgress:
    """Drives the confirmation bar that ``confirmation_started`` opened."""

    def __init__(self, bar: ProgressBar) -> None:
        self._bar = bar

    def started(self, study: Study, done: int) -> None:
        """Nothing to draw: ``confirmation_started`` opened this bar, with its note."""

    def trial_finished(self, study: Study, record: TrialRecord, done: int) -> None:
        self._bar.trial_finished(study, record, done)


def _best_text(study: Study) -> str:
    best = study.best
    if best is None or best.value is None:
        return "best: -"
    return f"best {study.info.metric} {best.value:.4g}"
