"""``register.enabled: false``: an exploratory sweep records its trials and its best trial on
the parent run, and registers nothing (the CLI's exit 0 and its lines: test_collisions.py)."""

from __future__ import annotations

from mlflow import MlflowClient

from sweeps.registration.selection import TAG_NOT_REGISTERED


def test_nothing_is_registered(exploratory_sweep):
    _, outcome = exploratory_sweep
    assert outcome.registration is None
    assert MlflowClient(outcome.tracking_uri).search_registered_models() == []


def test_the_parent_run_says_why_nothing_was_registered(exploratory_sweep):
    _, outcome = exploratory_sweep
    parent = MlflowClient(outcome.tracking_uri).get_run(outcome.parent_run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags[TAG_NOT_REGISTERED].startswith("register.enabled is false")


def test_the_best_trial_is_still_recorded_on_the_parent_run(exploratory_sweep):
    _, outcome = exploratory_sweep
    best = min(outcome.trials, key=lambda t: t.best_value)
    parent = MlflowClient(outcome.tracking_uri).get_run(outcome.parent_run_id)
    assert parent.data.metrics["best_val_rmse"] == best.best_value
    assert parent.data.params["best.units"] == str(best.config["units"])
