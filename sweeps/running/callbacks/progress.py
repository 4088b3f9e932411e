"""Live progress of a sweep on the terminal: trials done/running/total, best so far, ETA."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ray.tune import Callback
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from trainable.contract import BEST_PREFIX, Objective

if TYPE_CHECKING:
    from ray.tune.experiment import Trial


class SweepProgress(Callback):
    """A rich progress bar driven by Tune's trial events.

    Shows ``done/total`` trials, how many are running, failed, best ``metric`` so far, elapsed
    time and an ETA from the mean time per finished trial.
    """

    def __init__(
        self,
        total: int,
        objective: Objective,
        console: Console | None = None,
        already_done: int = 0,
    ) -> None:
        self.total = total
        self.objective = objective
        self.metric = objective.metric
        self.done = already_done
        self._resumed = already_done
        self.failed = 0
        self.running: set[str] = set()
        self.best: float | None = None
        self._start = time.monotonic()
        self._progress = Progress(
            TextColumn("[bold]trials[/]"),
            BarColumn(bar_width=24),
            TextColumn("{task.completed:.0f}/{task.total:.0f} done"),
            TextColumn("{task.fields[running]} running"),
            TextColumn("{task.fields[failed]}"),
            TextColumn("best {task.fields[best]}"),
            TimeElapsedColumn(),
            TextColumn("ETA {task.fields[eta]}"),
            console=console,
            transient=False,
        )
        self._task = self._progress.add_task(
            "sweep", total=total, completed=already_done, **self._fields()
        )

    def __enter__(self) -> SweepProgress:
        self._start = time.monotonic()
        self._progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._refresh()
        self._progress.stop()

    def _fields(self) -> dict[str, str]:
        best = "-" if self.best is None else f"{self.metric}={self.best:.4f}"
        failed = f"[red]{self.failed} failed[/]" if self.failed else ""
        return {
            "running": str(len(self.running)),
            "failed": failed,
            "best": best,
            "eta": self._eta(),
        }

    def _eta(self) -> str:
        finished_here = self.done - self._resumed
        if finished_here <= 0 or self.done >= self.total:
            return "-"
        elapsed = time.monotonic() - self._start
        # Trials run concurrently, so the rate of completions already accounts for parallelism.
        remaining = elapsed / finished_here * (self.total - self.done)
        return time.strftime("%H:%M:%S", time.gmtime(remaining))

    def _refresh(self) -> None:
        self._progress.update(self._task, completed=self.done, **self._fields())

    def on_trial_start(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any):
        self.running.add(trial.trial_id)
        self._refresh()

    def on_trial_result(
        self, iteration: int, trials: list[Trial], trial: Trial, result: dict, **info: Any
    ):
        # The trial's best so far when it reports one: epochs riding along may hold it.
        value = result.get(BEST_PREFIX + self.metric, result.get(self.metric))
        if isinstance(value, int | float) and self.objective.better(float(value), self.best):
            self.best = float(value)
        self._refresh()

    def on_trial_complete(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any):
        self._finish(trial)

    def on_trial_error(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any):
        self.failed += 1
        self._finish(trial)

    def _finish(self, trial: Trial) -> None:
        self.running.discard(trial.trial_id)
        self.done += 1
        self._refresh()
