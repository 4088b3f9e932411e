"""Trials that raise are retried from their checkpoint; one that keeps failing ends FAILED in
MLflow with its error, and the sweep goes on."""

from __future__ import annotations

import pytest
from helpers import DEFAULT_SPEC, small_spec_overrides
from mlflow import MlflowClient

from sweeps.config.spec import load_spec
from sweeps.running.sweep import run_sweep


def _sweep(tmp, trainable: str, trials: int, epochs: int):
    overrides = small_spec_overrides(
        tmp,
        **{
            "trainable": f"sample_trainables:{trainable}",
            "search.num_samples": trials,
            "search.space.epochs": epochs,
            "search.max_failures": 1,
        },
    )
    outcome = run_sweep(load_spec(DEFAULT_SPEC, overrides))
    return outcome, MlflowClient(outcome.tracking_uri)


@pytest.fixture(scope="module")
def sweep_with_failure(ray_session, tmp_path_factory):
    return _sweep(tmp_path_factory.mktemp("failing"), "second_trial_fails", trials=3, epochs=2)


def _runs_by_name(outcome, client):
    runs = client.search_runs(
        [outcome.experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{outcome.parent_run_id}'",
    )
    return {r.info.run_name: r for r in runs}


def test_failed_trial_child_run_ends_failed_with_the_error(sweep_with_failure):
    outcome, client = sweep_with_failure
    failed = _runs_by_name(outcome, client)["trial-0002"]
    assert failed.info.status == "FAILED"
    assert "injected failure in trial-0002" in failed.data.tags["sweep.error"]


def test_other_trials_finish_and_the_best_is_registered(sweep_with_failure):
    outcome, client = sweep_with_failure
    runs = _runs_by_name(outcome, client)
    assert runs["trial-0001"].info.status == "FINISHED"
    assert runs["trial-0003"].info.status == "FINISHED"
    assert outcome.registration is not None
    version = client.get_model_version(
        outcome.registration.model_name, outcome.registration.version
    )
    assert version.run_id != runs["trial-0002"].info.run_id


def test_sweep_summary_counts_the_failed_trial(sweep_with_failure):
    outcome, _ = sweep_with_failure
    assert [t.number for t in outcome.trials if t.status == "ERROR"] == [2]


@pytest.fixture(scope="module")
def sweep_with_retries(ray_session, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("retried")
    return _sweep(tmp, "crashes_once_after_first_checkpoint", trials=2, epochs=3)


def test_crashed_trial_is_retried_from_its_checkpoint_and_finishes(sweep_with_retries):
    outcome, client = sweep_with_retries
    runs = _runs_by_name(outcome, client)
    assert sorted(runs) == ["trial-0001", "trial-0002"]
    for run in runs.values():
        assert run.info.status == "FINISHED"
        assert run.data.metrics["epochs_trained"] == 3
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "val_rmse")]
        assert steps == [1, 2, 3]
