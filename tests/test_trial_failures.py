"""Trials that raise are retried from their checkpoint; one that keeps failing ends FAILED in
MLflow with its error, and the sweep goes on."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import DEFAULT_SPEC, small_spec_overrides
from mlflow import MlflowClient

from sweeps.config.spec import load_spec
from sweeps.running.sweep import run_sweep


def _sweep(tmp, trainable: str, trials: int, epochs: int, **extra: object):
    overrides = small_spec_overrides(
        tmp,
        **{
            "trainable": f"sample_trainables:{trainable}",
            "search.num_samples": trials,
            "search.space.epochs": epochs,
            "search.max_failures": 1,
            **extra,
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
    # Its tests read the trials' runs only: nothing registered (register.enabled false).
    return _sweep(
        tmp, "crashes_once_after_first_checkpoint", trials=2, epochs=3,
        **{"register.enabled": "false"},
    )  # fmt: skip


def test_crashed_trial_is_retried_from_its_checkpoint_and_finishes(sweep_with_retries):
    outcome, client = sweep_with_retries
    runs = _runs_by_name(outcome, client)
    assert sorted(runs) == ["trial-0001", "trial-0002"]
    for run in runs.values():
        assert run.info.status == "FINISHED"
        assert run.data.metrics["epochs_trained"] == 3
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "val_rmse")]
        assert steps == [1, 2, 3]


@pytest.fixture(scope="module")
def retried_after_a_best_epoch(ray_session, tmp_path_factory):
    """One trial, best at epoch 2, checkpointed at epoch 3, crashed, retried to epoch 5."""
    tmp = tmp_path_factory.mktemp("latest")
    probes = tmp / "probes"
    probes.mkdir()
    outcome, client = _sweep(
        tmp, "crashes_after_a_best_epoch", trials=1, epochs=5,
        **{"search.space.probe_dir": str(probes), "search.initial_points": "[]"},
    )  # fmt: skip
    digests = {p.name: p.read_text() for p in probes.iterdir()}
    return outcome, client, digests


def test_a_retried_trial_goes_on_from_its_latest_epoch_not_its_best(retried_after_a_best_epoch):
    _, _, digests = retried_after_a_best_epoch
    assert digests["resumed"] == digests["epoch-3"]
    assert digests["epoch-3"] != digests["epoch-2"]


def test_a_retried_trial_still_registers_its_best_epoch(retried_after_a_best_epoch):
    from helpers import only_checkpoint_state
    from sample_trainables import crashes_after_a_best_epoch, weights_digest

    outcome, _, digests = retried_after_a_best_epoch
    state = only_checkpoint_state(outcome.storage_path, "trial-0001")
    assert (state["epoch"], state["best_epoch"], state["best_value"]) == (5, 2, 1.0)
    folder = sorted(Path(outcome.storage_path, "trial-0001").glob("checkpoint_*"))[0]
    assert weights_digest(crashes_after_a_best_epoch.load(str(folder))) == digests["epoch-2"]
    assert outcome.trials[0].best_epoch == 2


def test_a_retried_trial_logs_each_epoch_once(retried_after_a_best_epoch):
    outcome, client, _ = retried_after_a_best_epoch
    run = client.get_run(outcome.trials[0].run_id)
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "val_rmse")]
    assert steps == [1, 2, 3, 4, 5]
