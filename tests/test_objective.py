"""One objective everywhere: a spec with ``search.metric: val_mae`` optimises, stops early,
checkpoints and registers on MAE (asserted from what lands in MLflow and the checkpoints)."""

from __future__ import annotations

import pytest
from helpers import MAE_SWEEP_EPOCHS as EPOCHS
from helpers import only_checkpoint_state
from mlflow import MlflowClient

from trainable.contract import Objective


@pytest.fixture(scope="module")
def sweep(mae_conditional_sweep):
    outcome = mae_conditional_sweep
    client = MlflowClient(outcome.tracking_uri)
    children = client.search_runs(
        [outcome.experiment_id], f"tags.`mlflow.parentRunId` = '{outcome.parent_run_id}'"
    )
    return outcome, client, children


def _history(client, run, key) -> list[float]:
    history = client.get_metric_history(run.info.run_id, key)
    return [m.value for m in sorted(history, key=lambda m: m.step)]


def test_early_stopping_follows_val_mae(sweep):
    """Patience 1: every epoch improves val_mae, except a last one where the trial stopped."""
    _, client, children = sweep
    stopped = 0
    for run in children:
        mae = _history(client, run, "val_mae")
        assert all(mae[i] < min(mae[:i]) for i in range(1, len(mae) - 1)), mae
        if len(mae) < EPOCHS:
            stopped += 1
            assert mae[-1] >= min(mae[:-1]), mae
    assert stopped, "no trial stopped early: the test shows nothing"


def test_checkpoints_hold_the_best_val_mae_epoch(sweep):
    outcome, client, children = sweep
    for run in children:
        mae = _history(client, run, "val_mae")
        state = only_checkpoint_state(outcome.storage_path, run.info.run_name)
        assert state["best_value"] == pytest.approx(min(mae))
        assert state["best_epoch"] == mae.index(min(mae)) + 1


def test_the_best_trial_and_the_champion_follow_mae(sweep):
    outcome, client, children = sweep
    best = min(children, key=lambda r: r.data.metrics["best_val_mae"])
    reg = outcome.registration
    version = client.get_model_version(reg.model_name, reg.version)
    assert version.run_id == best.info.run_id
    assert reg.metric == "test_mae"
    assert version.tags["champion_metric"] == "test_mae (min)"
    parent = client.get_run(outcome.parent_run_id)
    assert parent.data.metrics["best_val_mae"] == pytest.approx(best.data.metrics["best_val_mae"])
    assert parent.data.params["register.metric"] == "test_mae"


def test_objective_compares_by_mode():
    assert Objective("val_mae", "min").better(1.0, 2.0)
    assert Objective("val_auc", "max").better(0.9, 0.8)
    assert not Objective("val_auc", "max").better(float("nan"), 0.1)
    assert Objective("val_auc", "max").best([0.7, None, 0.9]) == 0.9
    assert Objective("val_mae").test_metric == "test_mae"
