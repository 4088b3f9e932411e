"""The abalone age family: predict ``rings`` from 8 physical measurements (UCI abalone table,
shipped offline by scikit-lego), with the tabular MLP of :mod:`trainable.tabular`.

Its default spec is ``abalone.yaml`` beside this module.
"""

from __future__ import annotations

from typing import Any

from trainable.contract import CATEGORICAL, Column, Schema
from trainable.families.mlp import TabularMLP

SCHEMA = Schema(
    features=(
        Column("sex", CATEGORICAL, ("F", "I", "M")),
        Column("length"),
        Column("diameter"),
        Column("height"),
        Column("whole_weight"),
        Column("shucked_weight"),
        Column("viscera_weight"),
        Column("shell_weight"),
    ),
    target="rings",
    task="regression",
)

#: The AWS sample's single-run model; the default search space contains it and tries it first.
REFERENCE_CONFIG: dict[str, Any] = {
    "layers": 3,
    "units": 64,
    "batch_norm": True,
    "dropout": 0.2,
    "learning_rate": 1e-3,
    "batch_size": 32,
    "optimizer": "adam",
}

family = TabularMLP("abalone", "regression", SCHEMA, default_source="builtin:abalone")
