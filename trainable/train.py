"""Ray Tune function trainables (worker side).

Importing this module is cheap: TensorFlow is imported inside the trial, so the driver can
check that a trainable exists without loading TensorFlow.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Collection
from typing import Any

from trainable.data import Splits

MODEL_FILE = "model.keras"
STATE_FILE = "trial_state.json"
DEFAULT_PATIENCE = 10


def abalone(config: dict[str, Any], data: Splits, stop_epochs: Collection[int] = ()) -> None:
    """Train the abalone MLP once (one ``model.fit``), reporting every epoch to Ray Tune.

    Reports ``loss``, ``val_rmse`` and ``val_mae`` per epoch; the trial's newest checkpoint (the
    whole Keras model) always holds its best epoch so far (see :class:`TuneReporter`). Early
    stopping uses ``config["patience"]``. A retried trial resumes from its last checkpoint.
    ``stop_epochs`` are the epochs after which the sweep's scheduler may stop the trial (ASHA's
    rungs, passed by the runner); the best model so far is checkpointed at each of them.
    """
    from ray import tune

    _configure_tensorflow(_assigned_cpus())
    import keras

    from trainable.callbacks import TuneReporter
    from trainable.model import build_model_for
    from trainable.pipeline import fit_inputs

    # Actors are reused between trials: drop the previous trial's models and traced graphs.
    # free_memory=False skips a full gc.collect() (about 0.3 s per trial); Python's own
    # collector frees the same objects soon after.
    keras.backend.clear_session(free_memory=False)

    seed = int(config.get("seed", 0))
    train, val = fit_inputs(data, int(config.get("batch_size", 32)), seed)
    epochs = int(config.get("epochs", 50))
    patience = int(config.get("patience", DEFAULT_PATIENCE))

    state = {"epoch": 0, "best_val_rmse": math.inf, "best_epoch": 0}
    checkpoint = tune.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as folder:
            model = keras.models.load_model(os.path.join(folder, MODEL_FILE))
            with open(os.path.join(folder, STATE_FILE)) as fh:
                state.update(json.load(fh))
    else:
        keras.utils.set_random_seed(seed)
        model = build_model_for(config, data.train, data.target)

    if state.get("stopped_early") or state["epoch"] >= epochs:
        return
    model.fit(
        train,
        validation_data=val,
        epochs=epochs,
        shuffle=False,  # the pipeline shuffles
        initial_epoch=int(state["epoch"]),
        verbose=0,
        callbacks=[
            # Before the reporter, which checks whether early stopping ended training.
            keras.callbacks.EarlyStopping(monitor="val_rmse", patience=patience, mode="min"),
            TuneReporter(state, MODEL_FILE, STATE_FILE, stop_epochs=stop_epochs),
        ],
    )


def _assigned_cpus() -> int:
    import ray

    try:
        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
    except Exception:  # not inside a Ray worker (e.g. called directly)
        cpus = 1
    return max(1, int(cpus))


def _configure_tensorflow(cpus: int) -> None:
    """TF threads follow the trial's CPUs; GPU memory grows on demand (several trials per GPU).

    Both must be set before TensorFlow's runtime starts; a reused actor already has them.
    """
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(cpus)
        tf.config.threading.set_inter_op_parallelism_threads(cpus)
        for gpu in tf.config.list_physical_devices("GPU"):
            tf.config.experimental.set_memory_growth(gpu, True)
    except RuntimeError:
        pass  # runtime already initialised by an earlier trial in this (reused) actor
