"""Keras callback that reports each epoch to Ray Tune and checkpoints on improvement."""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

import keras
from ray import tune


class TuneReporter(keras.callbacks.Callback):
    """Reports ``loss``, ``val_rmse``, ``val_mae`` each epoch; checkpoints on a better ``val_rmse``.

    ``state`` (epoch, best_val_rmse, best_epoch) is updated in place and saved with each
    checkpoint so a retried trial resumes where its best epoch left off.
    """

    def __init__(self, state: dict[str, Any], model_file: str, state_file: str) -> None:
        super().__init__()
        self.state = state
        self.model_file = model_file
        self.state_file = state_file

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        logs = logs or {}
        val_rmse = float(logs["val_rmse"])
        self.state["epoch"] = epoch + 1
        improved = val_rmse < self.state["best_val_rmse"]
        if improved:
            self.state["best_val_rmse"] = val_rmse
            self.state["best_epoch"] = epoch + 1
        metrics = {
            "epoch": epoch + 1,
            "loss": float(logs["loss"]),
            "val_rmse": val_rmse,
            "val_mae": float(logs["val_mae"]),
            "best_val_rmse": self.state["best_val_rmse"],
            "best_epoch": self.state["best_epoch"],
        }
        if not improved:
            tune.report(metrics)
            return
        with tempfile.TemporaryDirectory() as folder:
            self.model.save(os.path.join(folder, self.model_file))
            with open(os.path.join(folder, self.state_file), "w") as fh:
                json.dump(self.state, fh)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))
