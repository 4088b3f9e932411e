"""A conditional space end to end: a parameter exists in a trial only when its condition holds,
and only then is it in the trial's config, its MLflow child run and the summary."""

from __future__ import annotations

import csv

import pytest
from helpers import MAE_SWEEP_TRIALS as TRIALS
from mlflow import MlflowClient


@pytest.fixture(scope="module")
def sweep(mae_conditional_sweep):
    outcome = mae_conditional_sweep
    client = MlflowClient(outcome.tracking_uri)
    children = client.search_runs(
        [outcome.experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{outcome.parent_run_id}'",
    )
    return outcome, client, children


def test_both_branches_of_the_condition_were_tried(sweep):
    _, _, children = sweep
    assert {run.data.params["optimizer"] for run in children} == {"adam", "sgd"}
    assert all(run.info.status == "FINISHED" for run in children)


def test_the_conditional_parameter_is_logged_only_where_it_exists(sweep):
    _, _, children = sweep
    for run in children:
        params = run.data.params
        assert ("momentum" in params) == (params["optimizer"] == "sgd"), params


def test_trial_configs_hold_only_the_parameters_that_exist(sweep):
    outcome, _, _ = sweep
    for trial in outcome.trials:
        assert ("momentum" in trial.config) == (trial.config["optimizer"] == "sgd")
        if "momentum" in trial.config:
            assert 0.0 <= trial.config["momentum"] <= 0.9


def test_the_summary_leaves_a_missing_parameter_empty(sweep, tmp_path):
    outcome, client, _ = sweep
    folder = client.download_artifacts(outcome.parent_run_id, "summary", str(tmp_path))
    with open(f"{folder}/results.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == TRIALS
    for row in rows:
        assert (row["momentum"] != "") == (row["optimizer"] == "sgd"), row
    assert (tmp_path / "summary" / "summary.html").exists()
