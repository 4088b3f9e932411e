"""A Ray Tune callback that mirrors every trial into a nested MLflow child run."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ray.tune import Callback
from ray.tune.result import AUTO_RESULT_KEYS

from sweeps.record.runs import SweepTracker, numeric_metrics
from trainable.contract import BEST_PREFIX, epoch_of, reported_epochs

if TYPE_CHECKING:
    from ray.tune.experiment import Trial

#: Tune bookkeeping that is not a model metric.
_SKIP = frozenset(AUTO_RESULT_KEYS) | {"done", "trial_id", "experiment_tag", "should_checkpoint"}


def trial_number(trial: Trial) -> int:
    """The 1-based order in which the searcher created the trial (kept across a resume)."""
    head = str(getattr(trial, "experiment_tag", "") or "").split("_", 1)[0]
    return int(head) if head.isdigit() else 0


def trial_error(trial: Trial) -> str:
    """The text of a failed trial's error (Tune keeps it in the trial's error file)."""
    path = getattr(trial, "error_file", None)
    if path:
        try:
            with open(path) as fh:
                return fh.read()
        except OSError:
            pass
    return str(getattr(trial, "error_msg", None) or "trial failed")


def _is_curve(key: str) -> bool:
    """A per-epoch metric worth a curve: not Tune bookkeeping, the epoch counter or a best-so-far
    (those would clutter the MLflow compare view, whose charts pick the first metric)."""
    return key not in _SKIP and key != "epoch" and not key.startswith(BEST_PREFIX)


class MlflowTrialLogger(Callback):
    """Opens a child run when a trial starts, logs each reported epoch (with the epochs riding
    along) as one batch with its ``step``, and closes the run with final metrics (FINISHED)
    or the error (FAILED)."""

    def __init__(self, tracker: SweepTracker) -> None:
        self.tracker = tracker

    def on_trial_start(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any):
        self.tracker.open_trial(trial.trial_id, trial_number(trial), trial.config)

    def on_trial_result(
        self, iteration: int, trials: list[Trial], trial: Trial, result: dict, **info: Any
    ):
        for epoch in reported_epochs(result):
            metrics = numeric_metrics({k: v for k, v in epoch.items() if _is_curve(k)})
            self.tracker.log_epoch(trial.trial_id, epoch_of(epoch), metrics)

    def on_trial_complete(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any):
        self.tracker.close_trial(trial.trial_id, "FINISHED", self._final(trial))

    def on_trial_error(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any):
        self.tracker.close_trial(
            trial.trial_id, "FAILED", self._final(trial), error=trial_error(trial)
        )

    def _final(self, trial: Trial) -> dict[str, float]:
        last = trial.last_result or {}
        # Running bests are logged once at the end rather than as curves.
        final = numeric_metrics({k: v for k, v in last.items() if k.startswith(BEST_PREFIX)})
        if "epoch" in last:
            final["epochs_trained"] = float(last["epoch"])
        if "time_total_s" in last:
            final["trial_time_s"] = float(last["time_total_s"])
        return final
