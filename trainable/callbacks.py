"""Keras callback that reports each epoch to Ray Tune and checkpoints the trial's best model."""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections.abc import Collection
from typing import Any

import keras
from ray import tune

from trainable.contract import Objective

#: Least seconds between two checkpoints of a running trial (the last one is always written).
CHECKPOINT_INTERVAL_S = 10.0


class TuneReporter(keras.callbacks.Callback):
    """Reports ``loss`` and every ``val_*`` metric each epoch; checkpoints the best model by
    ``objective``.

    A better value of the objective's metric keeps the weights in memory (well under a
    millisecond). A checkpoint (the whole Keras model, about 50 ms with Tune's bookkeeping)
    holding the best weights so far is written, if they changed since the last one:

    * at an improving epoch at least ``interval_s`` after the previous checkpoint, so a crash
      costs at most that much of a trial's training;
    * at each of ``stop_epochs``, the epochs after which the scheduler may stop the trial
      (ASHA's rungs): a stopped trial never gets another report;
    * at the last epoch (all epochs done, or early stopping).

    So the newest checkpoint is always the trial's best model so far. ``state`` (epoch,
    best value, best_epoch, stopped_early) is updated in place and saved with each
    checkpoint, so a retried trial resumes where it left off. List this callback after
    ``EarlyStopping``, so the epoch where training stops is known to be the last one.
    """

    def __init__(
        self,
        state: dict[str, Any],
        objective: Objective,
        model_file: str,
        state_file: str,
        interval_s: float = CHECKPOINT_INTERVAL_S,
        stop_epochs: Collection[int] = (),
    ) -> None:
        super().__init__()
        self.state = state
        self.objective = objective
        self.model_file = model_file
        self.state_file = state_file
        self.interval_s = interval_s
        self.stop_epochs = frozenset(int(e) for e in stop_epochs)
        self._best_weights: list[Any] | None = None  # best so far, if newer than the checkpoint
        self._last_saved = time.monotonic()

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        logs = logs or {}
        metric = self.objective.metric
        if metric not in logs:
            raise KeyError(
                f"search.metric {metric!r} is not among the metrics this model reports: "
                f"{', '.join(sorted(logs))}"
            )
        value = float(logs[metric])
        self.state["epoch"] = epoch + 1
        improved = self.objective.better(value, self.state["best_value"])
        if improved:
            self.state["best_value"] = value
            self.state["best_epoch"] = epoch + 1
            self._best_weights = self.model.get_weights()
        metrics = {
            "epoch": epoch + 1,
            # The training loss and every validation metric (training-split metrics would
            # double the curves in MLflow for little use).
            **{k: float(v) for k, v in logs.items() if k == "loss" or k.startswith("val_")},
            f"best_{metric}": self.state["best_value"],
            "best_epoch": self.state["best_epoch"],
        }
        last = self.model.stop_training or epoch + 1 >= self.params.get("epochs", math.inf)
        due = (
            last
            or epoch + 1 in self.stop_epochs
            or (improved and time.monotonic() - self._last_saved >= self.interval_s)
        )
        if self._best_weights is None or not due:
            tune.report(metrics)
            return
        if last:
            self.state["stopped_early"] = bool(self.model.stop_training)
        current = None if improved or last else self.model.get_weights()
        self.model.set_weights(self._best_weights)  # training ends or goes on from `current`
        with tempfile.TemporaryDirectory() as folder:
            self.model.save(os.path.join(folder, self.model_file))
            with open(os.path.join(folder, self.state_file), "w") as fh:
                json.dump(self.state, fh)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))
        if current is not None:
            self.model.set_weights(current)
        self._best_weights = None
        self._last_saved = time.monotonic()
