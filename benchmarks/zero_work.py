"""A model family that does no work: one report per trial, to measure the sweeper's fixed cost.

Name it in a spec with ``trainable=benchmarks.zero_work:regression`` (or ``:classification``,
matching the task of the spec's own family, so its data loads as it would). A trial reports
the objective's metric once and saves no checkpoint, so the sweep has nothing to register:
``sweep run`` ends with exit code 1 after recording every trial.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

from trainable.contract import ModelFamily, Objective, Schema, Task

if TYPE_CHECKING:
    import pandas as pd

    from trainable.tables import Splits

NO_MODEL = "the zero-work family trains and saves no model"


class ZeroWork(ModelFamily):
    """No model: :meth:`train` reports ``{objective.metric: 1.0, "epoch": 1}`` and returns.

    No schema or default table of its own (the spec's ``data`` is used) and no declared
    metrics (so any ``search.metric`` is accepted).
    """

    metrics: tuple[str, ...] = ()

    def __init__(self, task: Task = "regression") -> None:
        self.task = task

    def train(
        self,
        config: Mapping[str, Any],
        data: Splits,
        objective: Objective,
        stop_epochs: Collection[int] = (),
    ) -> None:
        from ray import tune

        tune.report({objective.metric: 1.0, "epoch": 1})

    def load(self, checkpoint_dir: str) -> Any:
        raise NotImplementedError(NO_MODEL)

    def evaluate(self, model: Any, test: pd.DataFrame, schema: Schema) -> dict[str, float]:
        raise NotImplementedError(NO_MODEL)

    def log_model(
        self,
        model: Any,
        schema: Schema,
        name: str,
        input_example: pd.DataFrame,
        registered_model_name: str,
    ) -> Any:
        raise NotImplementedError(NO_MODEL)

    def __repr__(self) -> str:
        return f"ZeroWork({self.task!r})"


regression = ZeroWork("regression")
classification = ZeroWork("classification")
