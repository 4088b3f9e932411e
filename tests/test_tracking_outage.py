"""The MLflow server goes away mid-sweep and comes back: training goes on, nothing is lost
and nothing is written twice."""

from __future__ import annotations

import os
import subprocess
import time

from helpers import DEFAULT_SPEC, cli_env, sweep_command
from mlflow import MlflowClient
from servers import free_port, start_mlflow_server, stop_server

TRIALS = 3
EPOCHS = 8
OUTAGE_S = 8
#: The sweep's writer tries again every 2 s at most (15 s by default): the server's return is
#: seen sooner, and the test waits less.
QUICK_RETRIES = {"SWEEP_MLFLOW_RETRY_MAX_S": "2"}


def _children(client: MlflowClient) -> list:
    experiment = client.get_experiment_by_name("abalone-tensorflow-experiment")
    if experiment is None:
        return []
    runs = client.search_runs([experiment.experiment_id])
    return [r for r in runs if "mlflow.parentRunId" in r.data.tags]


def _command(url: str, trials: int, epochs: int, register: bool = True) -> list[str]:
    return sweep_command(
        "run",
        str(DEFAULT_SPEC),
        search__num_samples=trials,
        search__max_concurrent=1,
        search__space__epochs=epochs,
        search__scheduler="null",
        tracking__uri=url,
        register__enabled=str(register).lower(),
    )


def test_metrics_logged_during_an_outage_arrive_once_the_server_returns(tmp_path):
    folder, port = tmp_path / "server", free_port()
    server_args = ("--default-artifact-root", str(tmp_path / "artifacts"))
    server = start_mlflow_server(folder, port, *server_args, env=dict(os.environ))
    url = f"http://127.0.0.1:{port}"
    client = MlflowClient(url)
    command = _command(url, TRIALS, EPOCHS, register=False)  # the trials' writes are the subject
    with open(tmp_path / "sweep.log", "w") as log:
        env = cli_env(**QUICK_RETRIES)
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


def test_writes_an_outage_kept_past_the_sweep_arrive_with_sweep_sync(tmp_path):
    """The server stops mid-training and stays down after the sweep ends: the sweep keeps its
    unsent writes on disk and says so; once the server is back, `sweep sync` completes the
    record, with nothing left RUNNING and every epoch logged once."""
    folder, port = tmp_path / "server", free_port()
    server_args = ("--default-artifact-root", str(tmp_path / "artifacts"))
    server = start_mlflow_server(folder, port, *server_args, env=dict(os.environ))
    url = f"http://127.0.0.1:{port}"
    client = MlflowClient(url)
    command = _command(url, 2, EPOCHS, register=False)
    # MLflow's own HTTP retries off (the sweep's writer retries), and a short final wait.
    env = cli_env(
        MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",
        MLFLOW_HTTP_REQUEST_TIMEOUT="5",
        SWEEP_MLFLOW_END_WAIT_S="5",
        **QUICK_RETRIES,
    )
    with open(tmp_path / "sweep.log", "w") as log:
        sweep = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + 240
            while not _children(client):
                assert sweep.poll() is None and time.monotonic() < deadline
                time.sleep(0.5)
            stop_server(server)
            sweep.wait(timeout=600)
        finally:
            if sweep.poll() is None:
                sweep.kill()
    output = (tmp_path / "sweep.log").read_text()
    assert "MLflow writes are not sent yet" in output, output[-3000:]
    sweep_folder = next((tmp_path / "sweep-results").iterdir())
    assert f"sweep sync {sweep_folder}" in output
    assert (sweep_folder / "mlflow-spool.jsonl").is_file()

    server = start_mlflow_server(folder, port, *server_args, env=dict(os.environ))
    try:
        synced = subprocess.run(
            sweep_command("sync", str(sweep_folder)),
            cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert synced.returncode == 0, synced.stderr[-3000:]
        assert synced.stdout.startswith("sent ")
        experiment = client.get_experiment_by_name("abalone-tensorflow-experiment")
        runs = client.search_runs([experiment.experiment_id])
        assert "RUNNING" not in {r.info.status for r in runs}
        children = _children(client)
        assert len(children) == 2
        for run in children:
            assert run.info.status == "FINISHED"
            trained = int(run.data.metrics["epochs_trained"])
            steps = [m.step for m in client.get_metric_history(run.info.run_id, "val_rmse")]
            assert sorted(steps) == list(range(1, trained + 1)), run.info.run_name
        parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
        assert parent.info.status in ("FINISHED", "FAILED")
        assert not (sweep_folder / "mlflow-spool.jsonl").exists()
        again = subprocess.run(
            sweep_command("sync", str(sweep_folder)),
            cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert again.stdout.strip() == "nothing to send"
    finally:
        stop_server(server)


def test_a_short_outage_during_registration_still_registers_the_best_model(tmp_path):
    """The server stops as the registration starts and comes back a little later: MLflow's own
    client retries carry the registration through, and the record ends complete."""
    folder, port = tmp_path / "server", free_port()
    server_args = ("--default-artifact-root", str(tmp_path / "artifacts"))
    server = start_mlflow_server(folder, port, *server_args, env=dict(os.environ))
    url = f"http://127.0.0.1:{port}"
    command = _command(url, 2, 3)
    log_path = tmp_path / "sweep.log"
    # MLflow's own retries wait 1, 2, 4 ... s instead of 2, 4, 8 ... s.
    env = cli_env(MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR="1", **QUICK_RETRIES)
    with open(log_path, "w") as log:
        sweep = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + 300
            while "registering the best trial's model" not in log_path.read_text():
                assert sweep.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
            stop_server(server)
            time.sleep(5)
            server = start_mlflow_server(folder, port, *server_args, env=dict(os.environ))
            assert sweep.wait(timeout=600) == 0, log_path.read_text()[-3000:]
        finally:
            if sweep.poll() is None:
                sweep.kill()
    try:
        client = MlflowClient(url)
        assert len(client.search_model_versions("name='abalone-age'")) == 1
        experiment = client.get_experiment_by_name("abalone-tensorflow-experiment")
        runs = client.search_runs([experiment.experiment_id])
        assert {r.info.status for r in runs} == {"FINISHED"}
        parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
        assert "summary/results.csv" in {
            f.path for f in client.list_artifacts(parent.info.run_id, "summary")
        }
    finally:
        stop_server(server)
