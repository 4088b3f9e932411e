"""The best trial's model: test-split evaluation, logging, registration, champion alias.

:func:`register_best` loads TensorFlow, so it runs in the registrar's child process
(:mod:`sweeps.registrar`), never in the driver.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from trainable.data import to_model_inputs
from trainable.train import MODEL_FILE

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient

MODEL_ARTIFACT = "model"
CONTAINER_IMAGE_VARS = ("SWEEP_CONTAINER_IMAGE", "CONTAINER_IMAGE", "DLC_IMAGE")


@dataclass(frozen=True)
class Registration:
    """What was registered and what happened to the alias."""

    model_name: str
    version: str
    alias: str
    alias_moved: bool
    previous_version: str | None
    previous_test_rmse: float | None
    test_rmse: float
    test_mae: float
    model_uri: str


@dataclass(frozen=True)
class Lineage:
    """Where a registered version came from; stored as model version tags."""

    sweep_run_id: str
    trial_run_id: str
    data_sha256: str
    spec_sha256: str
    checkpoint_uri: str
    git_commit: str | None = None

    def tags(self) -> dict[str, str]:
        tags = {
            "sweep_run_id": self.sweep_run_id,
            "trial_run_id": self.trial_run_id,
            "data_sha256": self.data_sha256,
            "spec_sha256": self.spec_sha256,
            "checkpoint_uri": self.checkpoint_uri,
        }
        if self.git_commit:
            tags["git_commit"] = self.git_commit
        image = next((os.environ[v] for v in CONTAINER_IMAGE_VARS if os.environ.get(v)), None)
        if image:
            tags["container_image"] = image
        return tags


def rmse_mae(predictions: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """Root mean squared and mean absolute error."""
    err = np.asarray(predictions, dtype="float64").reshape(-1) - np.asarray(target, "float64")
    return float(np.sqrt(np.mean(err**2))), float(np.mean(np.abs(err)))


def register_best(
    client: MlflowClient,
    checkpoint_dir: str,
    test: pd.DataFrame,
    target: str,
    lineage: Lineage,
    model_name: str,
    alias: str,
) -> Registration:
    """Evaluate the model in ``checkpoint_dir`` on the ``test`` split, log it into the trial's
    child run with signature and input example, register it, tag its lineage and move the
    alias only if its test RMSE beats the current holder's."""
    import mlflow
    from mlflow.models import infer_signature

    from sweeps.quiet import native_stderr_silenced

    with native_stderr_silenced():
        import keras

        keras.utils.disable_interactive_logging()  # no progress bars
        model = keras.models.load_model(os.path.join(checkpoint_dir, MODEL_FILE))
    x_test = to_model_inputs(test)
    y_test = test[target].to_numpy("float32")
    # One eager call: predict() would trace a function first (0.7 s) for a single pass.
    predictions = np.asarray(model(x_test, training=False))
    test_rmse, test_mae = rmse_mae(predictions, y_test)

    example = {k: v[:5] for k, v in x_test.items()}
    signature = infer_signature(example, predictions[:5])
    mlflow.set_tracking_uri(client.tracking_uri)
    with mlflow.start_run(run_id=lineage.trial_run_id):
        mlflow.log_metrics({"test_rmse": test_rmse, "test_mae": test_mae})
        info = mlflow.tensorflow.log_model(
            model,
            name=MODEL_ARTIFACT,
            signature=signature,
            input_example=example,
            registered_model_name=model_name,
            # Stated, not inferred: inference reloads the model in a subprocess (about 9 s).
            pip_requirements=[
                *mlflow.tensorflow.get_default_pip_requirements(),
                f"keras=={keras.__version__}",
            ],
        )
    version = str(info.registered_model_version)
    for key, value in {**lineage.tags(), "test_rmse": repr(test_rmse)}.items():
        client.set_model_version_tag(model_name, version, key, value)
    client.log_metric(lineage.sweep_run_id, "test_rmse", test_rmse)
    client.log_metric(lineage.sweep_run_id, "test_mae", test_mae)

    moved, prev_version, prev_rmse = promote(client, model_name, alias, version, test_rmse)
    return Registration(
        model_name=model_name,
        version=version,
        alias=alias,
        alias_moved=moved,
        previous_version=prev_version,
        previous_test_rmse=prev_rmse,
        test_rmse=test_rmse,
        test_mae=test_mae,
        model_uri=f"models:/{model_name}/{version}",
    )


def promote(
    client: MlflowClient, model_name: str, alias: str, version: str, test_rmse: float
) -> tuple[bool, str | None, float | None]:
    """Point ``alias`` at ``version`` if nothing holds it yet or ``test_rmse`` is lower than the
    holder's ``test_rmse`` tag. Returns (moved, previous version, previous test RMSE)."""
    from mlflow.exceptions import MlflowException

    try:
        current = client.get_model_version_by_alias(model_name, alias)
    except MlflowException:
        current = None
    if current is None:
        client.set_registered_model_alias(model_name, alias, version)
        return True, None, None
    try:
        current_rmse = float(current.tags.get("test_rmse", "inf"))
    except ValueError:
        current_rmse = math.inf
    if str(current.version) != version and test_rmse < current_rmse:
        client.set_registered_model_alias(model_name, alias, version)
        return True, str(current.version), current_rmse
    return False, str(current.version), current_rmse


__all__ = ["Lineage", "Registration", "promote", "register_best", "rmse_mae"]
