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

#: Least seconds between two checkpoints of a running trial (the last one is always written).
CHECKPOINT_INTERVAL_S = 10.0


class TuneReporter(keras.callbacks.Callback):
    """Reports ``loss``, ``val_rmse``, ``val_mae`` each epoch; checkpoints the best model.

    A better ``val_rmse`` keeps the weights in memory (well under a millisecond). A checkpoint
    (the whole Keras model, about 50 ms with Tune's bookkeeping) holding the best weights so
    far is written, if they changed since the last one:

    * at an improving epoch at least ``interval_s`` after the previous checkpoint, so a crash
      costs at most that much of a trial's training;
    * at each of ``stop_epochs``, the epochs after which the scheduler may stop the trial
      (ASHA's rungs): a stopped trial never gets another report;
    * at the last epoch (all epochs done, or early stopping).

    So the newest checkpoint is always the trial's best model so far. ``state`` (epoch,
    best_val_rmse, best_epoch, stopped_early) is updated in place and saved with each
    checkpoint, so a retried trial resumes where it left off. List this callback after
    ``EarlyStopping``, so the epoch where training stops is known to be the last one.
    """

    def __init__(
        self,
        state: dict[str, Any],
        model_file: str,
        state_file: str,
        interval_s: float = CHECKPOINT_INTERVAL_S,
        stop_epochs: Collection[int] = (),
    ) -> None:
        super().__init__()
        self.state = state
        self.model_file = model_file
        self.state_file = state_file
        self.interval_s = interval_s
        self.stop_epochs = frozenset(int(e) for e in stop_epochs)
        self._best_weights: list[Any] | None = None  # best so far, if newer than the checkpoint
        self._last_saved = time.monotonic()

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        logs = logs or {}
        val_rmse = float(logs["val_rmse"])
        self.state["epoch"] = epoch + 1
        improved = val_rmse < self.state["best_val_rmse"]
        if improved:
            self.state["best_val_rmse"] = val_rmse
            self.state["best_epoch"] = epoch + 1
            self._best_weights = self.model.get_weights()
        metrics = {
            "epoch": epoch + 1,
            "loss": float(logs["loss"]),
            "val_rmse": val_rmse,
            "val_mae": float(logs["val_mae"]),
            "best_val_rmse": self.state["best_val_rmse"],
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
