"""A model family that needs no TensorFlow: only its module's imports are exercised (the
registration process's warm-up), so its methods refuse to run."""

from __future__ import annotations

from typing import Any

from trainable.contract import ModelFamily


class NumpyOnly(ModelFamily):
    metrics = ("val_rmse",)

    def train(self, config, data, objective, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("only imported by the tests")

    def load(self, checkpoint_dir: str) -> Any:
        raise NotImplementedError("only imported by the tests")

    def evaluate(self, model, test, schema) -> dict[str, float]:
        raise NotImplementedError("only imported by the tests")

    def log_model(self, model, schema, name, input_example, registered_model_name) -> Any:
        raise NotImplementedError("only imported by the tests")


family = NumpyOnly()
