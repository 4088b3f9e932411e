"""The registered model: a Keras model behind MLflow's pyfunc interface, for tabular rows.

MLflow's TensorFlow flavour accepts only tensor-based signatures ("All fields in the model
signature's input schema must be of type TensorSpec"), and a tensor-based signature makes
``pyfunc.predict`` fail on a DataFrame whose index is not 0..n-1 and ``mlflow models serve``
answer 400 to ``dataframe_split``. So the model is logged as a pyfunc
:class:`TabularKerasModel` with a column-based signature, the Keras file as its artifact.

This module is pickled by value into the logged model (see :func:`log_tabular_keras_model`),
so loading it needs only MLflow, Keras and pandas, not this project.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Sequence
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd

KERAS_ARTIFACT = "keras_model"
KERAS_FILE = "model.keras"
#: Rows per model call: bounded memory for large requests.
CHUNK_ROWS = 65536


class TabularKerasModel(mlflow.pyfunc.PythonModel):
    """Predicts from a DataFrame of raw feature columns (any index, extra columns ignored).

    Regression: a 1-D array of predictions. Classification: a DataFrame of class
    probabilities, one column per class label, indexed like the input.
    """

    def __init__(
        self, features: Sequence[tuple[str, bool]], task: str, classes: Sequence[Any] = ()
    ) -> None:
        self.features = [(str(name), bool(categorical)) for name, categorical in features]
        self.task = task
        self.classes = [str(c) for c in classes]
        self._model: Any = None

    def load_context(self, context: Any) -> None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import keras

        self._model = keras.models.load_model(context.artifacts[KERAS_ARTIFACT], compile=False)

    # No type hints on model_input: MLflow would validate against them instead of the signature.
    def predict(self, context, model_input, params=None):  # noqa: ANN001, ANN201
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        outputs = [
            np.asarray(self._model(self._inputs(frame.iloc[i : i + CHUNK_ROWS]), training=False))
            for i in range(0, len(frame), CHUNK_ROWS)
        ]
        if not outputs:
            outputs = [np.zeros((0, 1 if self.task == "regression" else len(self.classes)))]
        output = np.concatenate(outputs).astype("float64").reshape(len(frame), -1)
        if self.task == "regression":
            return output[:, 0]
        if output.shape[1] == 1 and len(self.classes) == 2:  # one sigmoid: P(second class)
            output = np.concatenate([1.0 - output, output], axis=1)
        return pd.DataFrame(output, columns=self.classes, index=frame.index)

    def _inputs(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        inputs = {}
        for name, categorical in self.features:
            column = frame[name]
            if categorical:
                inputs[name] = column.astype(str).str.strip().to_numpy(dtype=object)
            else:
                inputs[name] = pd.to_numeric(column).to_numpy(dtype="float32")
        return inputs


def signature_for(input_example: pd.DataFrame, categorical: Sequence[str], outputs: Sequence[str]):
    """Column-based signature: each feature with its type in the table (``long``, ``double``);
    categorical columns typed Any, so ``str`` and pandas ``category`` columns are both taken.
    ``outputs`` names the class probability columns (empty: one unnamed regression output)."""
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types import ColSpec, Schema
    from mlflow.types.schema import AnyType

    inferred = infer_signature(input_example).inputs
    columns = [
        ColSpec(AnyType(), spec.name) if spec.name in categorical else spec
        for spec in inferred.inputs
    ]
    out = Schema([ColSpec("double", name) for name in outputs] or [ColSpec("double")])
    return ModelSignature(inputs=Schema(columns), outputs=out)


def log_tabular_keras_model(
    keras_model: Any,
    features: Sequence[tuple[str, bool]],
    task: str,
    classes: Sequence[Any],
    name: str,
    input_example: pd.DataFrame,
    registered_model_name: str,
) -> Any:
    """Log ``keras_model`` as a :class:`TabularKerasModel` into the active run and register it."""
    import cloudpickle
    import keras
    import tensorflow as tf

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    wrapper = TabularKerasModel(features, task, classes)
    categorical = [n for n, is_categorical in wrapper.features if is_categorical]
    outputs = wrapper.classes if task == "classification" else []
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, KERAS_FILE)
        keras_model.save(path)
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=wrapper,
            artifacts={KERAS_ARTIFACT: path},
            signature=signature_for(input_example, categorical, outputs),
            input_example=input_example,
            registered_model_name=registered_model_name,
            # Stated, not inferred: inference reloads the model in a subprocess (about 9 s).
            pip_requirements=[
                f"mlflow=={mlflow.__version__}",
                f"tensorflow=={tf.__version__}",
                f"keras=={keras.__version__}",
                f"pandas=={pd.__version__}",
                f"numpy=={np.__version__}",
                f"cloudpickle=={cloudpickle.__version__}",
            ],
        )


__all__ = ["TabularKerasModel", "log_tabular_keras_model", "signature_for"]
