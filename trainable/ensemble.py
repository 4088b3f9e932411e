"""An ensemble of logged models behind MLflow's pyfunc interface: one model whose prediction
combines the predictions of K member models, each saved exactly as its family logs a single
model (an MLflow model folder, kept as an artifact of the ensemble).

Combining follows the shape of a single member's prediction, so the ensemble serves like one
model (same columns, dtypes, index and shape; see :func:`combine`): numbers are averaged (a
regression's predictions, a classifier's class probabilities), labels are put to a majority
vote. The ensemble's signature, input example and requirements are its first (best) member's.

This module is pickled by value into the logged model (see :func:`log_ensemble`), so loading it
needs only MLflow, NumPy, pandas and what the members themselves need, not this project.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from collections.abc import Sequence
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd

#: Artifact key of member ``i`` (best first).
MEMBER_ARTIFACT = "member_{}"
REQUIREMENTS_FILE = "requirements.txt"


class EnsembleModel(mlflow.pyfunc.PythonModel):
    """Predicts with every member pyfunc model and combines their predictions (:func:`combine`)."""

    def __init__(self, size: int, task: str) -> None:
        self.size = int(size)
        self.task = task
        self._members: list[Any] = []

    def load_context(self, context: Any) -> None:
        self._members = [
            mlflow.pyfunc.load_model(context.artifacts[MEMBER_ARTIFACT.format(i)])
            for i in range(self.size)
        ]

    # No type hints on model_input: MLflow would validate against them instead of the signature.
    def predict(self, context, model_input, params=None):  # noqa: ANN001, ANN201
        return combine([member.predict(model_input) for member in self._members], self.task)


def combine(predictions: Sequence[Any], task: str) -> Any:
    """One prediction from the members' ``predictions`` (best first), shaped like each of them.

    Numbers (a regression's values; a classifier's class probabilities, one column per class)
    are averaged element by element, keeping the container, columns, index and dtype. Anything
    else a classifier returns (labels) is put to a majority vote per row; a tie goes to the label
    of the best member among the tied ones.
    """
    first = predictions[0]
    if task == "classification" and not _numeric(first):
        return _vote(predictions)
    if isinstance(first, pd.DataFrame):
        mean = np.mean([p.to_numpy(dtype="float64") for p in predictions], axis=0)
        frame = pd.DataFrame(mean, columns=first.columns, index=first.index)
        return frame.astype(first.dtypes.to_dict())
    if isinstance(first, pd.Series):
        mean = np.mean([p.to_numpy(dtype="float64") for p in predictions], axis=0)
        return pd.Series(mean, index=first.index, name=first.name).astype(first.dtype)
    arrays = [np.asarray(p) for p in predictions]
    return np.mean(np.stack(arrays).astype("float64"), axis=0).astype(arrays[0].dtype)


def _numeric(prediction: Any) -> bool:
    if isinstance(prediction, pd.DataFrame):
        return all(pd.api.types.is_numeric_dtype(t) for t in prediction.dtypes)
    if isinstance(prediction, pd.Series):
        return pd.api.types.is_float_dtype(prediction.dtype)
    return np.issubdtype(np.asarray(prediction).dtype, np.floating)


def _vote(predictions: Sequence[Any]) -> Any:
    first = predictions[0]
    columns = [np.asarray(p).reshape(len(first), -1)[:, 0] for p in predictions]
    winners = []
    for row in zip(*columns, strict=True):
        counts = Counter(row)
        most = max(counts.values())
        winners.append(next(label for label in row if counts[label] == most))
    values = np.asarray(winners, dtype=np.asarray(columns[0]).dtype)
    if isinstance(first, pd.Series):
        return pd.Series(values, index=first.index, name=first.name)
    if isinstance(first, pd.DataFrame):
        return pd.DataFrame(values, columns=first.columns[:1], index=first.index)
    return values.reshape(np.asarray(first).shape)


def log_ensemble(
    member_folders: Sequence[str],
    task: str,
    name: str,
    input_example: pd.DataFrame,
    registered_model_name: str | None,
    run_id: str,
) -> Any:
    """Log an :class:`EnsembleModel` of the MLflow model folders ``member_folders`` (best first)
    into run ``run_id`` (not necessarily the active one) and register it; returns MLflow's
    ModelInfo. Its signature and requirements are those of the first member."""
    import cloudpickle
    from mlflow.models import Model

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    best = member_folders[0]
    requirements = os.path.join(best, REQUIREMENTS_FILE)
    return Model.log(
        artifact_path=None,
        name=name,
        flavor=mlflow.pyfunc,
        run_id=run_id,
        python_model=EnsembleModel(len(member_folders), task),
        artifacts={MEMBER_ARTIFACT.format(i): f for i, f in enumerate(member_folders)},
        signature=Model.load(best).signature,
        input_example=input_example,
        registered_model_name=registered_model_name,
        pip_requirements=requirements if os.path.exists(requirements) else None,
    )


__all__ = ["EnsembleModel", "combine", "log_ensemble"]
