"""A Keras MLP for any table, built from a trial's hyperparameters and the table's schema.

Preprocessing is part of the model (numeric columns normalised with statistics of the training
split only, categorical columns one-hot over their allowed values), so the model predicts from
raw rows. The head follows the task: one linear output for regression (starting at the
training mean), one sigmoid output for two classes, a softmax over the classes otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import keras
import numpy as np
import pandas as pd

from trainable.contract import Schema

OPTIMIZERS = {
    "adam": keras.optimizers.Adam,
    "adamw": keras.optimizers.AdamW,
    "rmsprop": keras.optimizers.RMSprop,
    "sgd": keras.optimizers.SGD,
}


def hidden_widths(layers: int, units: int) -> list[int]:
    """Funnel widths: ``units`` halved at each layer (64, 32, 16 for 3 layers), at least 4."""
    return [max(int(units) >> i, 4) for i in range(int(layers))]


def layer_name(column: str) -> str:
    """A Keras-safe layer name for a column (``mean radius`` -> ``mean_radius``)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", column) or "column"


def model_inputs(frame: pd.DataFrame, schema: Schema) -> dict[str, np.ndarray]:
    """Raw feature columns as the dict of 1-D arrays the model takes: numbers as float32,
    categories as strings."""
    inputs = {}
    for column in schema.features:
        values = frame[column.name]
        if column.categorical:
            inputs[column.name] = values.astype(str).to_numpy(dtype=object)
        else:
            inputs[column.name] = values.to_numpy(dtype="float32")
    return inputs


def encode_target(values: pd.Series, schema: Schema) -> np.ndarray:
    """The target as the model is trained on it: the value (regression), the class index as
    0/1 (two classes) or one-hot rows (more classes)."""
    if schema.task == "regression":
        return values.to_numpy(dtype="float32")
    index = {str(c): i for i, c in enumerate(schema.classes)}
    codes = np.array([index[str(v)] for v in values], dtype="int64")
    if len(schema.classes) == 2:
        return codes.astype("float32")
    return np.eye(len(schema.classes), dtype="float32")[codes]


def xy(frame: pd.DataFrame, schema: Schema) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """A split's model inputs and encoded target."""
    return model_inputs(frame, schema), encode_target(frame[schema.target], schema)


def feature_inputs(schema: Schema, train: pd.DataFrame) -> tuple[dict[str, Any], Any]:
    """The model's inputs (one per feature column, named like it) and the preprocessed feature
    vector: numeric columns normalised with the statistics of ``train``, categorical columns
    one-hot over their allowed values (plus one slot for an unknown value). Build the rest of a
    tabular Keras model on the second; pass the first to ``keras.Model``."""
    inputs: dict[str, Any] = {}
    for column in schema.features:
        dtype = "string" if column.categorical else "float32"
        # Named like the column (spaces are fine): Keras matches a dict's keys to input names.
        name = column.name if "/" not in column.name else layer_name(column.name)
        inputs[column.name] = keras.Input(shape=(), name=name, dtype=dtype)
    parts = []
    if schema.numeric:
        columns = [keras.layers.Reshape((1,))(inputs[c]) for c in schema.numeric]
        numeric = (
            keras.layers.Concatenate(name="numeric")(columns) if len(columns) > 1 else columns[0]
        )
        values = train[schema.numeric].to_numpy("float32")
        variance = np.maximum(values.var(axis=0), 1e-12)
        normalize = keras.layers.Normalization(
            mean=values.mean(axis=0), variance=variance, name="normalize"
        )
        parts.append(normalize(numeric))
    for column in schema.categorical:
        lookup = keras.layers.StringLookup(
            vocabulary=list(column.values),
            output_mode="one_hot",
            name=f"{layer_name(column.name)}_one_hot",
        )
        parts.append(lookup(keras.layers.Reshape((1,))(inputs[column.name])))
    x = keras.layers.Concatenate(name="features")(parts) if len(parts) > 1 else parts[0]
    return inputs, x


def build_tabular_model(
    config: Mapping[str, Any], schema: Schema, train: pd.DataFrame, name: str = "tabular_mlp"
) -> keras.Model:
    """A compiled MLP for ``schema``, normalised with the training split ``train``.

    Hidden layers follow :func:`hidden_widths` (``layers``, ``units``); every hidden layer but
    the last is followed by BatchNormalization (if ``batch_norm``) and Dropout (if ``dropout``
    > 0). The optimizer is ``optimizer`` with ``learning_rate``, and ``momentum`` for sgd and
    rmsprop when the config has one. Metrics: ``rmse`` and ``mae`` for regression; ``auc`` and
    ``accuracy`` for classification (Keras adds ``val_`` for the validation split).
    """
    inputs, x = feature_inputs(schema, train)

    widths = hidden_widths(config.get("layers", 3), config.get("units", 64))
    dropout = float(config.get("dropout", 0.0))
    for i, width in enumerate(widths):
        x = keras.layers.Dense(width, activation="relu", name=f"dense_{i}")(x)
        if i < len(widths) - 1:
            if config.get("batch_norm", True):
                x = keras.layers.BatchNormalization(name=f"batch_norm_{i}")(x)
            if dropout > 0:
                x = keras.layers.Dropout(dropout, name=f"dropout_{i}")(x)
    output, loss, metrics = _head(x, schema, train)
    model = keras.Model(inputs=inputs, outputs=output, name=name)
    optimizer_name = str(config.get("optimizer", "adam")).lower()
    if optimizer_name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer_name!r}; allowed: {', '.join(OPTIMIZERS)}")
    options = {"learning_rate": float(config.get("learning_rate", 1e-3))}
    if "momentum" in config and optimizer_name in ("sgd", "rmsprop"):
        options["momentum"] = float(config["momentum"])  # e.g. a parameter only sgd has
    model.compile(
        optimizer=OPTIMIZERS[optimizer_name](**options),
        loss=loss,
        metrics=metrics,
        # Many small batches per call: the per-step Python overhead dominates otherwise.
        steps_per_execution=int(config.get("steps_per_execution", 32)),
    )
    # Built here, the optimizer's variables exist before fit traces its train step. Otherwise
    # the first trace creates them and TensorFlow traces the step a second time (about 0.5 s
    # of each trial's first epoch).
    model.optimizer.build(model.trainable_variables)
    return model


def _head(x: Any, schema: Schema, train: pd.DataFrame) -> tuple[Any, str, list[Any]]:
    """Output layer, loss and metrics for the task. The output starts at what the training
    split says without any feature (its mean, or its class frequencies), so early epochs learn
    the relation rather than the offset and slow learning rates are not judged worst early."""
    target = train[schema.target]
    name = layer_name(schema.target)
    if schema.task == "regression":
        output = keras.layers.Dense(
            1, name=name, bias_initializer=keras.initializers.Constant(float(target.mean()))
        )(x)
        metrics = [
            keras.metrics.RootMeanSquaredError(name="rmse"),
            keras.metrics.MeanAbsoluteError(name="mae"),
        ]
        return output, "mse", metrics
    counts = target.astype(str).value_counts()
    prior = np.array([counts.get(str(c), 0) for c in schema.classes], "float64") + 1.0
    prior /= prior.sum()
    if len(schema.classes) == 2:
        logit = float(np.log(prior[1] / prior[0]))
        output = keras.layers.Dense(
            1, activation="sigmoid", name=name, bias_initializer=keras.initializers.Constant(logit)
        )(x)
        metrics = [keras.metrics.AUC(name="auc"), keras.metrics.BinaryAccuracy(name="accuracy")]
        return output, "binary_crossentropy", metrics
    output = keras.layers.Dense(
        len(schema.classes),
        activation="softmax",
        name=name,
        bias_initializer=keras.initializers.Constant(np.log(prior)),
    )(x)
    metrics = [keras.metrics.AUC(name="auc"), keras.metrics.CategoricalAccuracy(name="accuracy")]
    return output, "categorical_crossentropy", metrics


def probabilities(output: np.ndarray, n_classes: int) -> np.ndarray:
    """Class probabilities (rows x classes) from the model's output."""
    output = np.asarray(output, dtype="float64")
    if n_classes == 2:
        p = output.reshape(-1)
        return np.stack([1.0 - p, p], axis=1)
    return output


__all__ = [
    "build_tabular_model",
    "encode_target",
    "feature_inputs",
    "hidden_widths",
    "layer_name",
    "model_inputs",
    "probabilities",
    "xy",
]
