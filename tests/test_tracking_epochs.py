"""Trial epochs reach MLflow in batches, complete and in order (a real SQLite store)."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient

from sweeps.record.runs import SweepTracker


@pytest.fixture
def tracker(tmp_path):
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment_id = client.create_experiment("epochs", artifact_location=str(tmp_path / "art"))
    parent = client.create_run(experiment_id, run_name="sweep")
    tracker = SweepTracker(client, experiment_id, parent.info.run_id)
    yield tracker
    tracker.writer.close(timeout_s=30)


def _history(tracker: SweepTracker, trial_id: str, key: str) -> list[tuple[int, float]]:
    run_id = tracker.child_run_id(trial_id)
    return [(m.step, m.value) for m in tracker.client.get_metric_history(run_id, key)]


def test_epochs_reported_faster_than_the_batch_interval_are_all_logged_in_order(tracker):
    tracker.open_trial("t1", 1, {"units": 16})
    for epoch in range(1, 41):
        tracker.log_epoch("t1", epoch, {"val_rmse": 10.0 / epoch})
    assert tracker.flush(timeout_s=30)
    assert _history(tracker, "t1", "val_rmse") == [(e, 10.0 / e) for e in range(1, 41)]


def test_closing_a_trial_writes_its_held_back_epochs_before_the_end_status(tracker):
    tracker.open_trial("t1", 1, {})
    for epoch in (1, 2, 3):
        tracker.log_epoch("t1", epoch, {"loss": float(epoch)})
    tracker.close_trial("t1", "FINISHED", {"epochs_trained": 3.0})
    assert tracker.flush(timeout_s=30)
    run = tracker.client.get_run(tracker.child_run_id("t1"))
    assert run.info.status == "FINISHED"
    assert [step for step, _ in _history(tracker, "t1", "loss")] == [1, 2, 3]


def test_a_retried_trial_does_not_log_an_epoch_twice(tracker):
    tracker.open_trial("t1", 1, {})
    for epoch in (1, 2, 3):
        tracker.log_epoch("t1", epoch, {"loss": 1.0})
    assert tracker.flush(timeout_s=30)
    for epoch in (3, 4):  # the retry resumes from its epoch-2 checkpoint and re-reports 3
        tracker.log_epoch("t1", epoch, {"loss": 2.0})
    assert tracker.flush(timeout_s=30)
    assert _history(tracker, "t1", "loss") == [(1, 1.0), (2, 1.0), (3, 1.0), (4, 2.0)]


def test_more_epochs_than_one_mlflow_batch_holds_are_all_logged(tracker):
    tracker.open_trial("t1", 1, {})
    metrics = {"loss": 1.0, "val_rmse": 2.0, "val_mae": 3.0, "lr": 4.0}
    for epoch in range(1, 301):  # 1,200 values: more than log_batch's 1,000
        tracker.log_epoch("t1", epoch, metrics)
    assert tracker.flush(timeout_s=60)
    assert [step for step, _ in _history(tracker, "t1", "val_mae")] == list(range(1, 301))


def test_the_waits_of_a_sweeps_end_share_one_bound(tracker, monkeypatch):
    """Reading the results and ending the parent run wait for MLflow at most
    ``SWEEP_MLFLOW_END_WAIT_S`` together, not each."""
    import sweeps.record.runs as runs

    now = [1000.0]
    monkeypatch.setattr(runs.time, "monotonic", lambda: now[0])
    assert tracker.end_wait(120) == 120  # the results are read: the bound starts
    now[0] += 100  # that wait took 100 s (an outage)
    assert tracker.end_wait(120) == 20  # the parent run's end gets what is left
    assert tracker.end_wait(10) == 10  # a stop's shorter wait stays shorter
    now[0] += 30
    assert tracker.end_wait(120) == 0
