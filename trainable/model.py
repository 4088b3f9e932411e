"""The abalone Keras MLP, built from a trial's hyperparameters.

Preprocessing (one-hot ``sex``, normalisation of the numeric columns with statistics of the
training split only) is part of the model, so the exported model predicts from raw rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import keras
import numpy as np

from trainable.data import NUMERIC_FEATURES, SEX, SEX_CODES

if TYPE_CHECKING:
    import pandas as pd

#: The AWS sample's single-run model; the default search space contains it.
REFERENCE_CONFIG: dict[str, Any] = {
    "layers": 3,
    "units": 64,
    "batch_norm": True,
    "dropout": 0.2,
    "learning_rate": 1e-3,
    "batch_size": 32,
    "optimizer": "adam",
}

OPTIMIZERS = {
    "adam": keras.optimizers.Adam,
    "adamw": keras.optimizers.AdamW,
    "rmsprop": keras.optimizers.RMSprop,
    "sgd": keras.optimizers.SGD,
}


def hidden_widths(layers: int, units: int) -> list[int]:
    """Funnel widths: ``units`` halved at each layer (64, 32, 16 for 3 layers), at least 4."""
    return [max(int(units) >> i, 4) for i in range(int(layers))]


def build_model(
    config: Mapping[str, Any], train_numeric: np.ndarray, target_mean: float = 0.0
) -> keras.Model:
    """A compiled regression MLP.

    Hidden layers follow :func:`hidden_widths`; every hidden layer but the last is followed by
    BatchNormalization (if ``batch_norm``) and Dropout (if ``dropout`` > 0), as in the reference
    model. ``train_numeric`` is the training split's numeric features (rows x 7), used only for
    the normalisation statistics; the output starts at ``target_mean`` (the training split's
    mean ``rings``), so early epochs learn the relation rather than the offset. Without that,
    slow learning rates look worst in the first epochs and early stopping (ASHA) drops them.
    """
    inputs = {name: keras.Input(shape=(), name=name, dtype="float32") for name in NUMERIC_FEATURES}
    inputs[SEX] = keras.Input(shape=(), name=SEX, dtype="string")

    columns = [keras.layers.Reshape((1,))(inputs[name]) for name in NUMERIC_FEATURES]
    numeric = keras.layers.Concatenate(name="numeric")(columns)
    mean = train_numeric.mean(axis=0)
    variance = np.maximum(train_numeric.var(axis=0), 1e-12)
    numeric = keras.layers.Normalization(mean=mean, variance=variance, name="normalize")(numeric)
    sex = keras.layers.StringLookup(
        vocabulary=list(SEX_CODES), output_mode="one_hot", name="sex_one_hot"
    )(keras.layers.Reshape((1,))(inputs[SEX]))
    x = keras.layers.Concatenate(name="features")([numeric, sex])

    widths = hidden_widths(config.get("layers", 3), config.get("units", 64))
    dropout = float(config.get("dropout", 0.0))
    for i, width in enumerate(widths):
        x = keras.layers.Dense(width, activation="relu", name=f"dense_{i}")(x)
        if i < len(widths) - 1:
            if config.get("batch_norm", True):
                x = keras.layers.BatchNormalization(name=f"batch_norm_{i}")(x)
            if dropout > 0:
                x = keras.layers.Dropout(dropout, name=f"dropout_{i}")(x)
    output = keras.layers.Dense(
        1, name="rings", bias_initializer=keras.initializers.Constant(float(target_mean))
    )(x)

    model = keras.Model(inputs=inputs, outputs=output, name="abalone_mlp")
    optimizer_name = str(config.get("optimizer", "adam")).lower()
    if optimizer_name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer_name!r}; allowed: {', '.join(OPTIMIZERS)}")
    model.compile(
        optimizer=OPTIMIZERS[optimizer_name](
            learning_rate=float(config.get("learning_rate", 1e-3))
        ),
        loss="mse",
        metrics=[
            keras.metrics.RootMeanSquaredError(name="rmse"),
            keras.metrics.MeanAbsoluteError(name="mae"),
        ],
        # Many small batches per call: the per-step Python overhead dominates otherwise.
        steps_per_execution=int(config.get("steps_per_execution", 32)),
    )
    # Built here, the optimizer's variables exist before fit traces its train step. Otherwise
    # the first trace creates them and TensorFlow traces the step a second time (about 0.5 s
    # of each trial's first epoch).
    model.optimizer.build(model.trainable_variables)
    return model


def build_model_for(config: Mapping[str, Any], train: pd.DataFrame, target: str) -> keras.Model:
    """:func:`build_model` with the normalisation statistics and the output's starting value
    taken from the training split ``train``."""
    return build_model(
        config,
        train[list(NUMERIC_FEATURES)].to_numpy("float32"),
        target_mean=float(train[target].mean()),
    )
