"""The MLflow server goes away mid-sweep and comes back: training goes on, nothing is lost
and nothing is written twice."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from conftest import DEFAULT_SPEC
from mlflow import MlflowClient
from servers import free_port, start_mlflow_server, stop_server

TRIALS = 3
EPOCHS = 8
OUTAGE_S = 12


def _children(client: MlflowClient) -> list:
    experiment = client.get_experiment_by_name("abalone-tensorflow-experiment")
    if experiment is None:
        return []
    runs = client.search_runs([experiment.experiment_id])
    return [r for r in runs if "mlflow.parentRunId" in r.data.tags]


def test_metrics_logged_during_an_outage_arrive_once_the_server_returns(tmp_path):
    folder, port = tmp_path / "server", free_port()
    server_args = ("--default-artifact-root", str(tmp_path / "artifacts"))
    server = start_mlflow_server(folder, port, *server_args, env=dict(os.environ))
    url = f"http://127.0.0.1:{port}"
    client = MlflowClient(url)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "RAY_ADDRESS"))}
    env["RAY_AUTH_MODE"] = "disabled"
    command = [
        sys.executable, "-m", "sweeps.cli", "run", str(DEFAULT_SPEC),
        "--set", f"search.num_samples={TRIALS}",
        "--set", "search.max_concurrent=1",
        "--set", f"search.space.epochs={EPOCHS}",
        "--set", "search.scheduler=null",
        "--set", f"tracking.uri={url}",
    ]  # fmt: skip
    with open(tmp_path / "sweep.log", "w") as log:
        sweep = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + 240
            while not _children(client):  # the first trial has started logging
                assert sweep.poll() is None and time.monotonic() < deadline
                time.sleep(0.5)
            stop_server(server)
            time.sleep(OUTAGE_S)
            assert sweep.poll() is None, "the sweep should keep training through the outage"
            server = start_mlflow_server(folder, port, *server_args, env=dict(os.environ))
            assert sweep.wait(timeout=600) == 0, (tmp_path / "sweep.log").read_text()[-3000:]
        finally:
            if sweep.poll() is None:
                sweep.kill()
            if server.poll() is None:
                stop_server(server)

    server = start_mlflow_server(folder, port, *server_args, env=dict(os.environ))
    try:
        children = _children(client)
        assert len(children) == TRIALS
        for run in children:
            trained = int(run.data.metrics["epochs_trained"])
            for key in ("loss", "val_rmse", "val_mae"):
                steps = [m.step for m in client.get_metric_history(run.info.run_id, key)]
                assert sorted(steps) == list(range(1, trained + 1)), (run.info.run_name, key)
            assert run.info.status == "FINISHED"
    finally:
        stop_server(server)
