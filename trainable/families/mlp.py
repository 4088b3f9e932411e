"""Tabular MLP families for any table: ``trainable.families.mlp:regression`` and
``trainable.families.mlp:classification``.

With no code of your own: name one in a spec, with ``data.source``, ``data.target`` and,
optionally, ``data.features``; the model is :func:`trainable.tabular.build_tabular_model`.
Searched hyperparameters: ``layers``, ``units``, ``batch_norm``, ``dropout``,
``learning_rate``, ``optimizer`` (and ``momentum`` for sgd or rmsprop), plus
:class:`~trainable.keras_family.KerasFamily`'s ``epochs``, ``patience``, ``batch_size``, ``seed``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from trainable.contract import Schema, Task
from trainable.keras_family import KerasFamily

if TYPE_CHECKING:
    import keras
    import pandas as pd

#: What each task's model reports every epoch (see build_tabular_model's metrics).
METRICS: dict[str, tuple[str, ...]] = {
    "regression": ("val_rmse", "val_mae", "val_loss"),
    "classification": ("val_auc", "val_accuracy", "val_loss"),
}


class TabularMLP(KerasFamily):
    """A funnel MLP with preprocessing inside the model, for one task and optionally one schema."""

    def __init__(
        self,
        name: str,
        task: Task,
        schema: Schema | None = None,
        default_source: str | None = None,
    ) -> None:
        self.name = name
        self.task = task
        self.schema = schema
        self.default_source = default_source
        self.metrics = METRICS[task]

    def build(self, config: Mapping[str, Any], schema: Schema, train: pd.DataFrame) -> keras.Model:
        from trainable.tabular import build_tabular_model

        return build_tabular_model(config, schema, train, name=f"{self.name}_mlp")

    def __repr__(self) -> str:
        return f"TabularMLP({self.name!r}, {self.task!r})"


regression = TabularMLP("regression", "regression")
classification = TabularMLP("classification", "classification")
