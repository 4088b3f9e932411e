"""The views' SQLite reader answers as MLflow's own client does, on a store MLflow wrote."""

from __future__ import annotations

import math

import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

from sweeps.views.local_store import RunNotFound, open_local


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A parent run with three child runs (one deleted, one with a NaN), a registered version."""
    tmp = tmp_path_factory.mktemp("local-store")
    path = tmp / "mlflow.db"
    client = MlflowClient(f"sqlite:///{path}")
    exp = client.create_experiment("views", artifact_location=str(tmp / "art"))
    parent = client.create_run(exp, run_name="sweep-1", tags={"sweep.role": "sweep"})
    pid = parent.info.run_id
    children = []
    for n in (1, 2, 3):
        run = client.create_run(
            exp,
            run_name=f"trial-{n:04d}",
            tags={"mlflow.parentRunId": pid, "sweep.trial_number": str(n), "sweep.role": "trial"},
        )
        rid = run.info.run_id
        client.log_batch(
            rid,
            params=[Param("units", str(16 * n)), Param("quote", "it's")],
            metrics=[Metric("val_rmse", 3.0 - n + s, 1000 + s, s) for s in (1, 2)]
            + [Metric("odd", math.nan, 1000, 1)],
            tags=[RunTag("note", f"n={n}")],
        )
        client.set_terminated(rid, "FAILED" if n == 3 else "FINISHED")
        children.append(rid)
    client.delete_run(children[2])
    client.create_registered_model("m")
    version = client.create_model_version("m", "file:///x", run_id=children[0])
    client.set_model_version_tag("m", version.version, "sweep_run_id", pid)
    client.set_registered_model_alias("m", "champion", version.version)
    return client, open_local(str(path)), exp, pid


def _same_run(ours, theirs) -> None:
    assert ours.info.run_id == theirs.info.run_id
    assert ours.info.run_name == theirs.info.run_name
    assert ours.info.status == theirs.info.status
    assert ours.info.start_time == theirs.info.start_time
    assert ours.info.end_time == theirs.info.end_time
    assert ours.data.params == theirs.data.params
    assert ours.data.tags == theirs.data.tags
    assert ours.data.metrics.keys() == theirs.data.metrics.keys()
    for key, value in theirs.data.metrics.items():
        assert ours.data.metrics[key] == pytest.approx(value, nan_ok=True)


@pytest.mark.parametrize(
    "filter_string",
    [
        "tags.`sweep.role` = 'sweep'",
        "tags.`mlflow.parentRunId` = '{pid}'",
        "tags.`mlflow.parentRunId` = '{pid}' and tags.`sweep.trial_number` = '2'",
        "tags.`sweep.role` = 'sweep' and attributes.run_name = 'sweep-1'",
        "tags.`mlflow.parentRunId` = '{pid}' and attributes.status = 'FINISHED'",
        "tags.`sweep.role` = 'sweep' and attributes.run_name = 'it\\'s'",
    ],
)
def test_search_runs_matches_mlflow(store, filter_string):
    client, local, exp, pid = store
    text = filter_string.format(pid=pid)
    theirs = client.search_runs([exp], filter_string=text, order_by=["attributes.start_time DESC"])
    ours = local.search_runs([exp], filter_string=text, order_by=["attributes.start_time DESC"])
    assert [r.info.run_id for r in ours] == [r.info.run_id for r in theirs]
    for mine, other in zip(ours, theirs, strict=True):
        _same_run(mine, other)
    assert ours.token is None


def test_runs_experiments_histories_and_versions_match_mlflow(store):
    client, local, exp, pid = store
    assert local.get_experiment_by_name("views").experiment_id == exp
    assert local.get_experiment_by_name("nope") is None
    _same_run(local.get_run(pid), client.get_run(pid))
    child = client.search_runs([exp], filter_string=f"tags.`mlflow.parentRunId` = '{pid}'")[0]
    ours = local.get_metric_history(child.info.run_id, "val_rmse")
    theirs = client.get_metric_history(child.info.run_id, "val_rmse")
    assert [(m.step, m.value) for m in ours] == [(m.step, m.value) for m in theirs]
    [mine] = local.search_model_versions(f"tags.sweep_run_id = '{pid}'")
    other = client.get_model_version("m", "1")
    assert (mine.name, mine.version, mine.run_id) == (other.name, other.version, other.run_id)
    assert mine.aliases == list(other.aliases) and mine.tags == other.tags
    with pytest.raises(RunNotFound):
        local.get_run("0" * 32)


def test_a_store_without_mlflows_tables_is_left_to_mlflow(tmp_path):
    import sqlite3

    sqlite3.connect(tmp_path / "other.db").execute("CREATE TABLE runs (x)").connection.commit()
    assert open_local(str(tmp_path / "other.db")) is None
    assert open_local(str(tmp_path / "missing.db")) is None
