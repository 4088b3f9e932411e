"""A real sweep (local Ray, TensorFlow, MLflow SQLite store), checked through MLflow."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import DEFAULT_SWEEP_EPOCHS as EPOCHS
from helpers import DEFAULT_SWEEP_TRIALS as EXPECTED_TRIALS
from helpers import holdout_rmse, only_checkpoint_state


@pytest.fixture(scope="module")
def sweep(default_sweep):
    """The session's default small sweep (4 trials x 3 epochs, 2 at a time), read via MLflow."""
    from mlflow import MlflowClient

    return default_sweep, MlflowClient(default_sweep.tracking_uri)


def _children(outcome, client):
    return client.search_runs(
        [outcome.experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{outcome.parent_run_id}'",
    )


def test_sweep_has_one_parent_run_with_a_nested_child_per_trial(sweep):
    outcome, client = sweep
    parent = client.get_run(outcome.parent_run_id)
    children = _children(outcome, client)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags.get("mlflow.parentRunId") is None
    assert len(children) == EXPECTED_TRIALS
    names = sorted(r.info.run_name for r in children)
    assert names == [f"trial-{i:04d}" for i in range(1, EXPECTED_TRIALS + 1)]
    assert len({r.data.tags["ray.trial_id"] for r in children}) == EXPECTED_TRIALS


def test_each_child_logs_every_epoch_with_its_step(sweep):
    outcome, client = sweep
    for run in _children(outcome, client):
        for key in ("loss", "val_rmse", "val_mae"):
            history = client.get_metric_history(run.info.run_id, key)
            assert [m.step for m in history] == list(range(1, EPOCHS + 1)), key


def test_short_epochs_reach_the_driver_in_fewer_reports_than_epochs(sweep):
    # A report makes the trial wait for the driver; epochs well under a second ride along
    # with the next report (every one of them still logged: the test above).
    outcome, client = sweep
    reports = sum(
        len(Path(outcome.storage_path, run.info.run_name, "result.json").read_text().splitlines())
        for run in _children(outcome, client)
    )
    assert reports < EXPECTED_TRIALS * EPOCHS


def test_each_trial_record_holds_its_best_epoch_among_those_that_rode_along(sweep):
    outcome, client = sweep
    for trial in outcome.trials:
        history = client.get_metric_history(trial.run_id, "val_rmse")
        best = min(history, key=lambda m: m.value)
        assert (trial.best_epoch, trial.best_value) == (best.step, pytest.approx(best.value))
        assert trial.history == [m.value for m in sorted(history, key=lambda m: m.step)]


def test_each_child_has_its_hyperparameters_as_params(sweep):
    outcome, client = sweep
    for run in _children(outcome, client):
        assert set(outcome.spec.searched) <= set(run.data.params)
        assert run.data.params["epochs"] == str(EPOCHS)
        assert run.info.status == "FINISHED"


def test_registered_version_comes_from_the_best_trials_child_run(sweep):
    outcome, client = sweep
    children = _children(outcome, client)
    best = min(children, key=lambda r: r.data.metrics["best_val_rmse"])
    version = client.get_model_version(outcome.spec.model_name, outcome.registration.version)
    assert version.run_id == best.info.run_id
    assert "test_rmse" in client.get_run(best.info.run_id).data.metrics


def test_registered_version_carries_lineage_tags(sweep):
    outcome, client = sweep
    reg = outcome.registration
    tags = client.get_model_version(reg.model_name, reg.version).tags
    assert tags["sweep_run_id"] == outcome.parent_run_id
    assert tags["trial_run_id"]
    assert len(tags["data_sha256"]) == 64
    assert tags["spec_sha256"] == outcome.spec.sha256
    assert tags["checkpoint_uri"].startswith(outcome.storage_path)


def test_registered_model_predicts_raw_rows_with_the_logged_test_rmse(sweep):
    import mlflow

    outcome, client = sweep
    reg = outcome.registration
    mlflow.set_tracking_uri(outcome.tracking_uri)
    model = mlflow.pyfunc.load_model(f"models:/{reg.model_name}/{reg.version}")
    logged = client.get_run(outcome.parent_run_id).data.metrics["test_rmse"]
    assert holdout_rmse(model, outcome.spec) == pytest.approx(logged, rel=1e-5)


def test_registered_model_takes_any_dataframe_slice_and_column_types(sweep):
    """Any index, float32 or float64 numbers, str or pandas categorical columns: same numbers,
    1-D, and nothing printed."""
    import io
    from contextlib import redirect_stdout

    import mlflow
    import numpy as np
    from helpers import abalone_test_split

    outcome, _ = sweep
    reg = outcome.registration
    mlflow.set_tracking_uri(outcome.tracking_uri)
    model = mlflow.pyfunc.load_model(f"models:/{reg.model_name}/{reg.version}")
    rows = abalone_test_split(outcome.spec).drop(columns="rings").iloc[200:210]
    printed = io.StringIO()
    with redirect_stdout(printed):
        plain = model.predict(rows)
        narrow = model.predict(rows.astype({"sex": "category", "length": "float32"}))
    assert plain.shape == (10,)
    assert np.allclose(plain, narrow, rtol=1e-5)
    assert printed.getvalue() == ""


def test_champion_alias_points_at_the_first_registered_version(sweep):
    outcome, client = sweep
    reg = outcome.registration
    holder = client.get_model_version_by_alias(reg.model_name, reg.alias)
    assert str(holder.version) == reg.version
    assert reg.alias_moved


def test_parent_run_holds_spec_dataset_and_best_trial(sweep):
    outcome, client = sweep
    parent = client.get_run(outcome.parent_run_id)
    assert "spec.yaml" in [a.path for a in client.list_artifacts(outcome.parent_run_id)]
    inputs = parent.inputs.dataset_inputs
    assert len(inputs) == 1
    assert {t.key: t.value for t in inputs[0].tags}["sha256"] == parent.data.tags["data.sha256"]
    assert {f"best.{k}" for k in outcome.spec.searched} <= set(parent.data.params)
    assert parent.data.metrics["best_val_rmse"] == pytest.approx(outcome.best.best_value)


def test_parent_run_holds_results_table_and_plots(sweep):
    outcome, client = sweep
    names = {a.path for a in client.list_artifacts(outcome.parent_run_id, "summary")}
    assert {"summary/results.csv", "summary/summary.html"} <= names
    assert "summary/optimization_history.png" in names
    assert "summary/parallel_coordinates.png" in names


def test_local_store_keeps_artifacts_beside_the_database(sweep):
    outcome, client = sweep
    experiment = client.get_experiment(outcome.experiment_id)
    database = outcome.tracking_uri.removeprefix("sqlite:///")
    assert experiment.artifact_location.removeprefix("file://").startswith(
        database.rsplit("/", 1)[0]
    )


def test_each_trial_keeps_one_checkpoint_holding_its_best_epoch(sweep):
    outcome, client = sweep
    for run in _children(outcome, client):
        state = only_checkpoint_state(outcome.storage_path, run.info.run_name)
        history = client.get_metric_history(run.info.run_id, "val_rmse")
        best = min(history, key=lambda m: m.value)
        assert state["best_epoch"] == best.step
        assert state["best_value"] == pytest.approx(best.value)
