"""The acceptance run, exactly as a user types it, from an unrelated working folder."""

from __future__ import annotations

import subprocess

from helpers import DEFAULT_SPEC, cli_env, sweep_command
from mlflow import MlflowClient


def test_sweep_run_from_any_folder_records_parent_children_and_champion(tmp_path):
    command = sweep_command(
        "run",
        str(DEFAULT_SPEC),
        search__num_samples=3,
        search__max_concurrent=2,
        search__space__epochs=2,
    )
    done = subprocess.run(
        command, cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert f"mlflow ui --backend-store-uri {uri}" in done.stdout.replace("\n", "")
    assert "Traceback" not in done.stderr

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("abalone-tensorflow-experiment")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1
    assert len(children) == 3
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parents[0].info.run_id}
    champion = client.get_model_version_by_alias("abalone-age", "champion")
    assert champion.run_id in {c.info.run_id for c in children}
    assert (tmp_path / "sweep-results").is_dir()
