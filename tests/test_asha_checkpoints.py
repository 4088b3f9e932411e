"""With ASHA, a trial stopped at a rung still leaves a checkpoint of its best epoch, so the
best trial can always be registered (a real sweep: local Ray, TensorFlow, MLflow SQLite)."""

from __future__ import annotations

import pytest
from helpers import DEFAULT_SPEC, only_checkpoint_state, small_spec_overrides

from sweeps.config.spec import load_spec
from sweeps.running.sweep import run_sweep

EPOCHS = 4
ASHA = f"{{type: asha, max_t: {EPOCHS}, grace_period: 1, reduction_factor: 2}}"


@pytest.fixture(scope="module")
def asha_sweep(ray_session, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("asha")
    overrides = small_spec_overrides(
        tmp,
        **{"search.num_samples": 6, "search.space.epochs": EPOCHS, "search.scheduler": ASHA},
    )
    outcome = run_sweep(load_spec(DEFAULT_SPEC, overrides))
    from mlflow import MlflowClient

    client = MlflowClient(outcome.tracking_uri)
    children = client.search_runs(
        [outcome.experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{outcome.parent_run_id}'",
    )
    return outcome, client, children


def test_asha_stops_some_trials_before_the_last_epoch(asha_sweep):
    _, _, children = asha_sweep
    trained = [run.data.metrics["epochs_trained"] for run in children]
    assert len(trained) == 6
    assert min(trained) < EPOCHS


def test_every_trial_asha_stopped_or_not_checkpointed_its_best_epoch(asha_sweep):
    outcome, client, children = asha_sweep
    for run in children:
        state = only_checkpoint_state(outcome.storage_path, run.info.run_name)
        best = min(client.get_metric_history(run.info.run_id, "val_rmse"), key=lambda m: m.value)
        assert state["best_epoch"] == best.step, run.info.run_name


def test_the_best_trial_is_registered(asha_sweep):
    outcome, client, children = asha_sweep
    best = min(children, key=lambda run: run.data.metrics["best_val_rmse"])
    version = client.get_model_version(outcome.spec.model_name, outcome.registration.version)
    assert version.run_id == best.info.run_id
