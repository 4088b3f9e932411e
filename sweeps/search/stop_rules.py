"""``search.stop``: the rules that end a sweep before its ``num_samples`` trials.

- ``target``: a trial reports a value of the search metric at least as good as the target;
- ``patience`` (with ``min_delta``): that many trials finish in a row without improving the
  best value by more than ``min_delta``;
- ``search.time_budget_s`` (Tune's own): the budget is spent.

Tune asks a :class:`~ray.tune.Stopper` after every result; :class:`StopRules` is one, and a
Tune callback besides, so it hears when a trial finishes. Whatever ended the sweep is its
:attr:`StopRules.reason`, recorded on the parent run (tag ``sweep.stop_reason``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ray.tune import Callback, Stopper

if TYPE_CHECKING:
    from ray.tune.experiment import Trial

    from sweeps.config.spec import SearchSpec
    from trainable.contract import Objective

TAG_STOP_REASON = "sweep.stop_reason"


class StopRules(Stopper, Callback):
    """Ends the whole sweep on a target value or on ``patience`` trials without improvement."""

    def __init__(self, search: SearchSpec, objective: Objective) -> None:
        self.objective = objective
        self.target = search.stop.target if search.stop else None
        self.patience = search.stop.patience if search.stop else None
        self.min_delta = search.stop.min_delta if search.stop else 0.0
        self.reason: str | None = None
        self.best: float | None = None  # best value of the finished trials
        self.without_improvement = 0
        self._trial_best: dict[str, float] = {}
        self._stopping: str | None = None  # the trial that reached the target, until it ends

    # Stopper: after every reported result
    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        value = result.get(self.objective.metric)
        if not isinstance(value, int | float) or not math.isfinite(value):
            return False
        if self.objective.better(value, self._trial_best.get(trial_id)):
            self._trial_best[trial_id] = float(value)
        if self.reason is None and self.target is not None and self.reached(value):
            self.reason = (
                f"target reached: {self.objective.metric} {value:.4g} "
                f"(target {self.target:g}, {self.objective.mode})"
            )
            # This trial stops as a scheduler stops one: after its checkpoint of this result
            # is saved. The others stop (stop_all) once it has.
            self._stopping = trial_id
            return True
        return False

    def stop_all(self) -> bool:
        return self.reason is not None and self._stopping is None

    def reached(self, value: float) -> bool:
        """Whether ``value`` is at least as good as the target."""
        assert self.target is not None
        return value <= self.target if self.objective.mode == "min" else value >= self.target

    # Callback: when a trial finishes
    def on_trial_complete(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any):
        self._ended(trial.trial_id)
        self.finished(self._trial_best.get(trial.trial_id))

    def on_trial_error(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any):
        self._ended(trial.trial_id)

    def _ended(self, trial_id: str) -> None:
        if trial_id == self._stopping:
            self._stopping = None

    def finished(self, value: float | None) -> None:
        """Count one finished trial whose best value was ``value`` (None: it reported none)."""
        if self.patience is None or value is None:
            return
        if self.best is None or self._improves(value):
            self.best, self.without_improvement = value, 0
            return
        self.without_improvement += 1
        if self.reason is None and self.without_improvement >= self.patience:
            self.reason = (
                f"no improvement: {self.patience} finished trials in a row did not improve "
                f"{self.objective.metric} {self.best:.4g} by more than {self.min_delta:g}"
            )

    def _improves(self, value: float) -> bool:
        assert self.best is not None
        gain = self.best - value if self.objective.mode == "min" else value - self.best
        return gain > self.min_delta


def end_reason(
    rules: StopRules | None, search: SearchSpec, started: int, finished: int, elapsed_s: float
) -> str:
    """Why the sweep's trials ended: a rule, the time budget, or all trials done."""
    if rules is not None and rules.reason:
        return rules.reason
    if finished >= search.num_samples:
        return f"all {search.num_samples} trials ran"
    if search.time_budget_s and elapsed_s >= search.time_budget_s * 0.95:
        return f"time budget of {search.time_budget_s:g} s spent after {started} trials"
    return f"{started} of {search.num_samples} trials ran"
