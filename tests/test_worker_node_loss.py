"""On a two-node Ray cluster, losing the worker node mid-sweep loses no trial: interrupted
trials resume from their last checkpoint on the remaining node and the sweep completes."""

from __future__ import annotations

import subprocess
import time

import pytest
from helpers import DEFAULT_SPEC, cli_env, sweep_command
from mlflow import MlflowClient
from ray_nodes import RAY_ENV, RayNode

TRIALS = 4
EPOCHS = 12


@pytest.fixture()
def two_nodes():
    head, worker = RayNode(), RayNode()
    port = head.start(num_cpus=1)
    worker.start(num_cpus=1, head_port=port)
    yield port, head, worker
    worker.kill()
    head.kill()


def _finished_children(client: MlflowClient) -> list:
    experiment = client.get_experiment_by_name("abalone-tensorflow-experiment")
    if experiment is None:
        return []
    runs = client.search_runs([experiment.experiment_id])
    return [r for r in runs if "mlflow.parentRunId" in r.data.tags and r.info.status == "FINISHED"]


def test_sweep_completes_after_the_worker_node_is_killed(two_nodes, tmp_path):
    port, _, worker = two_nodes
    env = cli_env(**RAY_ENV, RAY_ADDRESS=f"127.0.0.1:{port}")
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    command = sweep_command(
        "run",
        str(DEFAULT_SPEC),
        search__num_samples=TRIALS,
        search__max_concurrent=2,
        search__space__epochs=EPOCHS,
        search__space__patience=100,
        search__scheduler="null",
        search__max_failures=2,
    )
    with open(tmp_path / "sweep.log", "w") as log:
        sweep = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + 300
            # Trials spread over both nodes: wait for one finished and one on the worker node.
            while not (_finished_children(client) and worker.running_trial()):
                assert sweep.poll() is None, (tmp_path / "sweep.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "no trial ran on the worker node"
                time.sleep(0.3)
            finished_before = {r.info.run_id for r in _finished_children(client)}
            worker.kill()
            assert sweep.wait(timeout=600) == 0, (tmp_path / "sweep.log").read_text()[-3000:]
        finally:
            if sweep.poll() is None:
                sweep.kill()

    finished = _finished_children(client)
    assert len(finished) == TRIALS
    assert finished_before <= {r.info.run_id for r in finished}
    for run in finished:
        assert run.data.metrics["epochs_trained"] == EPOCHS
    assert client.get_model_version_by_alias("abalone-age", "champion") is not None
