"""The registered model as the Keras families log it: a pyfunc model with a column-based
signature that takes any DataFrame of raw rows (no sweep needed: an untrained model will do)."""

from __future__ import annotations

import io
from contextlib import redirect_stdout

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("keras")

from trainable.contract import Schema  # noqa: E402
from trainable.families.mlp import classification, regression  # noqa: E402
from trainable.tables import load_dataset, split_dataset  # noqa: E402


def _table(path, rows: int = 200) -> str:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "mean radius": rng.normal(10, 2, rows),  # a space in the name
            "visits": rng.integers(0, 9, rows),  # integers: a `long` column
            "plan type": rng.choice(["basic", "pro plus"], rows),
            "grade": rng.choice(["a", "b", "c"], rows),
            "price": rng.normal(100, 20, rows),
        }
    )
    frame.to_csv(path, index=False)
    return str(path)


def _logged(tmp_path, family, target: str, features: tuple = ()):
    import mlflow

    source = _table(tmp_path / "table.csv")
    dataset = load_dataset(source, Schema(features, target, family.task))
    splits = split_dataset(dataset, 0.2, 0.2, 0)
    model = family.build({"layers": 1, "units": 8}, splits.schema, splits.train)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    mlflow.set_experiment("serving")
    example = splits.test[splits.schema.feature_names].head(5)
    with mlflow.start_run():
        info = family.log_model(model, splits.schema, "model", example, "served")
    loaded = mlflow.pyfunc.load_model(f"models:/served/{info.registered_model_version}")
    return loaded, splits


def test_signature_keeps_the_tables_types(tmp_path):
    loaded, _ = _logged(tmp_path, classification, "grade")
    types = {c.name: getattr(c.type, "name", str(c.type)) for c in loaded.metadata.signature.inputs}
    assert types["mean radius"] == "double"
    assert types["visits"] == "long"
    assert types["plan type"] == "Any"  # str and pandas categorical columns both pass


def test_three_classes_give_a_probability_column_each_for_any_slice(tmp_path):
    loaded, splits = _logged(tmp_path, classification, "grade")
    rows = splits.test.drop(columns="grade").iloc[10:20]
    printed = io.StringIO()
    with redirect_stdout(printed):
        plain = loaded.predict(rows)
        recast = loaded.predict(rows.astype({"plan type": "category", "mean radius": "float32"}))
    assert list(plain.columns) == ["a", "b", "c"]
    assert list(plain.index) == list(rows.index)
    assert np.allclose(plain.sum(axis=1), 1.0)
    assert np.allclose(plain.to_numpy(), recast.to_numpy(), atol=1e-6)
    assert printed.getvalue() == ""


def test_regression_gives_one_number_per_row(tmp_path):
    loaded, splits = _logged(tmp_path, regression, "price")
    rows = splits.test.drop(columns="price").iloc[3:9]
    predictions = loaded.predict(rows)
    assert predictions.shape == (6,)
    assert np.isfinite(predictions).all()


def test_a_missing_column_is_named(tmp_path):
    from mlflow.exceptions import MlflowException

    loaded, splits = _logged(tmp_path, regression, "price")
    rows = splits.test.drop(columns=["price", "visits"]).head(3)
    with pytest.raises(MlflowException, match="visits"):
        loaded.predict(rows)
