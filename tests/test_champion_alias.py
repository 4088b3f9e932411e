"""The champion alias moves only to a version that is better by the sweep's objective on the
test split: lower for ``min``, higher for ``max``."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient

from sweeps.registration.registry import promote
from trainable.contract import Objective

MODEL = "alias-test-model"
RMSE = Objective("test_rmse", "min")
AUC = Objective("test_auc", "max")


@pytest.fixture()
def client(tmp_path):
    """A real MLflow SQLite store with a registered model and a run to source versions from."""
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.create_experiment("alias-test", artifact_location=str(tmp_path / "art"))
    run = client.create_run(experiment)
    client.create_registered_model(MODEL)
    client.run_id = run.info.run_id  # type: ignore[attr-defined]
    return client


def _version(client: MlflowClient, value: float, metric: str = "test_rmse") -> str:
    version = client.create_model_version(
        MODEL, source=f"runs:/{client.run_id}/model", run_id=client.run_id
    )
    client.set_model_version_tag(MODEL, version.version, metric, repr(value))
    return str(version.version)


def _holder(client: MlflowClient) -> str:
    return str(client.get_model_version_by_alias(MODEL, "champion").version)


def test_first_version_becomes_champion(client):
    first = _version(client, 2.3)
    moved, previous, _ = promote(client, MODEL, "champion", first, RMSE, 2.3)
    assert moved and previous is None
    assert _holder(client) == first


def test_alias_moves_to_a_version_with_lower_test_rmse(client):
    first = _version(client, 2.3)
    promote(client, MODEL, "champion", first, RMSE, 2.3)
    better = _version(client, 2.1)
    moved, previous, previous_rmse = promote(client, MODEL, "champion", better, RMSE, 2.1)
    assert moved
    assert (previous, previous_rmse) == (first, 2.3)
    assert _holder(client) == better


def test_alias_stays_when_the_new_version_is_not_better(client):
    first = _version(client, 2.3)
    promote(client, MODEL, "champion", first, RMSE, 2.3)
    worse = _version(client, 2.4)
    moved, previous, _ = promote(client, MODEL, "champion", worse, RMSE, 2.4)
    assert not moved
    assert previous == first
    assert _holder(client) == first


def test_with_mode_max_the_alias_moves_to_a_higher_value(client):
    first = _version(client, 0.90, "test_auc")
    promote(client, MODEL, "champion", first, AUC, 0.90)
    lower = _version(client, 0.85, "test_auc")
    assert not promote(client, MODEL, "champion", lower, AUC, 0.85)[0]
    higher = _version(client, 0.95, "test_auc")
    moved, previous, previous_value = promote(client, MODEL, "champion", higher, AUC, 0.95)
    assert moved and (previous, previous_value) == (first, 0.90)
    assert _holder(client) == higher


def test_a_holder_without_the_champion_metric_is_beaten(client):
    first = _version(client, 2.3, "test_rmse")
    promote(client, MODEL, "champion", first, RMSE, 2.3)
    second = _version(client, 0.5, "test_auc")
    moved, previous, previous_value = promote(client, MODEL, "champion", second, AUC, 0.5)
    assert moved and (previous, previous_value) == (first, None)


def test_a_failed_alias_lookup_fails_the_promotion_and_leaves_the_alias(tmp_path, monkeypatch):
    """A tracking server that cannot read the registered model right now is not "no champion
    yet": the alias stays where it was and the error surfaces."""
    import os

    from mlflow.exceptions import MlflowException
    from servers import FaultyProxy, mlflow_server

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    with mlflow_server(tmp_path / "server", env=dict(os.environ)) as url:
        proxy = FaultyProxy(url)
        try:
            client = MlflowClient(proxy.url)
            experiment = client.create_experiment("alias-test")
            client.run_id = client.create_run(experiment).info.run_id  # type: ignore[attr-defined]
            client.create_registered_model(MODEL)
            first, worse = _version(client, 2.3), _version(client, 2.9)
            promote(client, MODEL, "champion", first, RMSE, 2.3)
            proxy.failing = ("/registered-models/get",)
            with pytest.raises(MlflowException):
                promote(client, MODEL, "champion", worse, RMSE, 2.9)
            proxy.failing = ()
            assert _holder(client) == first
        finally:
            proxy.close()
