"""Keras callbacks of a trial: reporting each epoch to Ray Tune with checkpoints of the latest
state and the best model, and early stopping that survives a resume."""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

import keras
from ray import tune

from trainable.contract import BEST_PREFIX, EARLIER_EPOCHS, Objective

#: Least seconds between two checkpoints of a running trial (the last one is always written).
CHECKPOINT_INTERVAL_S = 10.0
#: Most seconds an epoch's metrics wait to be reported (they go with the next report).
REPORT_INTERVAL_S = 1.0
#: The model as it was at the checkpoint's epoch, when that is not its best epoch.
LATEST_FILE = "latest.keras"


class TuneReporter(keras.callbacks.Callback):
    """Reports ``loss`` and every ``val_*`` metric each epoch; checkpoints the trial's latest
    state and its best model by ``objective`` apart.

    A better value of the objective's metric keeps the weights in memory (well under a
    millisecond). A checkpoint is written:

    * at the first epoch at least ``interval_s`` after the previous checkpoint, so a crash
      costs at most that much of a trial's training;
    * at each of ``stop_epochs``, the epochs after which the scheduler may stop the trial
      (ASHA's rungs): a stopped trial never gets another report;
    * at the last epoch (all epochs done, or early stopping).

    Tune's function trainables report synchronously: training waits at each report until the
    driver has taken the result and asked for the next. So an epoch is reported when the
    driver needs it (a stop epoch, a checkpoint, the last epoch) or at least
    ``report_interval_s`` after the previous report; the epochs in between ride along under
    :data:`~trainable.contract.EARLIER_EPOCHS`. ``report_interval_s=0`` reports every epoch.

    It holds ``model_file``, the best model so far (what registration loads), and, if the
    current epoch is not the best one, ``latest_file``, the model as it is now (weights and
    optimizer state), from which a retried or resumed trial goes on training. ``state``
    (epoch, best value, best_epoch, stopped_early) is updated in place and saved with each
    checkpoint as ``state_file``. ``best_weights`` are those of a restored checkpoint's best
    model. ``extra`` gives more metrics of the model to report each epoch (the model's cost,
    :class:`~trainable.model_cost.ModelCost`). List this callback after ``EarlyStopping``, so
    the epoch where training stops is known to be the last one.
    """

    def __init__(
        self,
        state: dict[str, Any],
        objective: Objective,
        model_file: str,
        state_file: str,
        interval_s: float = CHECKPOINT_INTERVAL_S,
        stop_epochs: Collection[int] = (),
        latest_file: str = LATEST_FILE,
        best_weights: list[Any] | None = None,
        extra: Callable[[keras.Model], Mapping[str, float]] | None = None,
        report_interval_s: float = REPORT_INTERVAL_S,
    ) -> None:
        super().__init__()
        self.state = state
        self.objective = objective
        self.model_file = model_file
        self.state_file = state_file
        self.latest_file = latest_file
        self.interval_s = interval_s
        self.stop_epochs = frozenset(int(e) for e in stop_epochs)
        self._best_weights = best_weights  # the best model's weights so far
        self.extra = extra
        self._last_saved = time.monotonic()
        self.report_interval_s = report_interval_s
        self._last_reported = time.monotonic()
        self._unreported: list[dict[str, float]] = []

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        extra = dict(self.extra(self.model)) if self.extra else {}
        logs = {**(logs or {}), **extra}
        metric = self.objective.metric
        if metric not in logs:
            raise KeyError(
                f"search.metric {metric!r} is not among the metrics this model reports: "
                f"{', '.join(sorted(logs))}"
            )
        value = float(logs[metric])
        self.state["epoch"] = epoch + 1
        if self.objective.better(value, self.state["best_value"]):
            self.state["best_value"] = value
            self.state["best_epoch"] = epoch + 1
            self._best_weights = self.model.get_weights()
        metrics = {
            "epoch": epoch + 1,
            # The training loss and every validation metric (training-split metrics would
            # double the curves in MLflow for little use).
            **{k: float(v) for k, v in logs.items() if k == "loss" or k.startswith("val_")},
            **extra,
            BEST_PREFIX + metric: self.state["best_value"],
            "best_epoch": self.state["best_epoch"],
        }
        last = self.model.stop_training or epoch + 1 >= self.params.get("epochs", math.inf)
        due = (
            last
            or epoch + 1 in self.stop_epochs
            or time.monotonic() - self._last_saved >= self.interval_s
        )
        if self._best_weights is None or not due:  # no checkpoint at this epoch
            if due or time.monotonic() - self._last_reported >= self.report_interval_s:
                self._report(metrics)
            else:
                self._unreported.append(metrics)
            return
        if last:
            self.state["stopped_early"] = bool(self.model.stop_training)
        with tempfile.TemporaryDirectory() as folder:
            self._save(folder)
            self._report(metrics, tune.Checkpoint.from_directory(folder))
        self._last_saved = time.monotonic()

    def _report(self, metrics: dict[str, float], checkpoint: tune.Checkpoint | None = None) -> None:
        """Report this epoch, with the epochs not reported yet riding along."""
        if self._unreported:
            metrics = {**metrics, EARLIER_EPOCHS: self._unreported}
            self._unreported = []
        tune.report(metrics, checkpoint=checkpoint)
        self._last_reported = time.monotonic()

    def _save(self, folder: str) -> None:
        """The best model, the latest one if it differs, and the state, into ``folder``."""
        if self.state["best_epoch"] == self.state["epoch"]:
            self.model.save(os.path.join(folder, self.model_file))
        else:
            self.model.save(os.path.join(folder, self.latest_file))
            current = self.model.get_weights()
            self.model.set_weights(self._best_weights)
            self.model.save(os.path.join(folder, self.model_file))
            self.model.set_weights(current)  # training goes on from where it was
        with open(os.path.join(folder, self.state_file), "w") as fh:
            json.dump(self.state, fh)


class ResumedEarlyStopping(keras.callbacks.EarlyStopping):
    """EarlyStopping that, in a resumed trial, counts patience from the trial's best epoch
    rather than from the restart."""

    def __init__(self, state: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.state = state

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        super().on_train_begin(logs)
        if self.state.get("epoch"):
            self.wait = int(self.state["epoch"]) - int(self.state["best_epoch"])
            self.best = float(self.state["best_value"])
