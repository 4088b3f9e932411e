"""A sweep whose driver is SIGKILLed continues with `sweep resume` in the same parent run."""

from __future__ import annotations

import os
import signal
import subprocess
import time

from helpers import DEFAULT_SPEC, cli_env, sweep_command
from mlflow import MlflowClient

TRIALS = 4
EPOCHS = 4


def _children(client: MlflowClient, experiment_id: str) -> list:
    runs = client.search_runs([experiment_id])
    return [r for r in runs if "mlflow.parentRunId" in r.data.tags]


def _wait_for_a_finished_trial(client: MlflowClient, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the sweep ended before it could be killed"
        experiment = client.get_experiment_by_name("abalone-tensorflow-experiment")
        if experiment is not None:
            done = [
                r
                for r in _children(client, experiment.experiment_id)
                if r.info.status == "FINISHED"
            ]
            if done:
                return
        time.sleep(0.5)
    raise TimeoutError("no trial finished in time")


def test_killed_sweep_resumes_with_one_child_per_trial_and_no_duplicate_steps(tmp_path):
    command = sweep_command(
        "run",
        str(DEFAULT_SPEC),
        search__num_samples=TRIALS,
        search__max_concurrent=1,
        search__space__epochs=EPOCHS,
        search__scheduler="null",
    )
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    with open(tmp_path / "run.log", "w") as log:
        # Its own session, so SIGKILL takes the driver and the local Ray it started.
        proc = subprocess.Popen(
            command, cwd=tmp_path, env=cli_env(), stdout=log, stderr=log, start_new_session=True
        )
        try:
            _wait_for_a_finished_trial(client, proc)
        finally:
            # Only while the driver is unreaped: its pid (and so its group id) is still its own.
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
    experiment = client.get_experiment_by_name("abalone-tensorflow-experiment")
    parent_before = {
        r.data.tags["mlflow.parentRunId"] for r in _children(client, experiment.experiment_id)
    }

    folders = list((tmp_path / "sweep-results").glob("abalone-*"))
    assert len(folders) == 1
    resumed = subprocess.run(
        sweep_command("resume", str(folders[0])),
        cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "the saved sweep state could not be verified" in resumed.stderr  # no record: killed

    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = _children(client, experiment.experiment_id)
    assert len(parents) == 1
    assert {parents[0].info.run_id} == parent_before
    assert parents[0].info.status == "FINISHED"
    assert sorted(r.info.run_name for r in children) == [
        f"trial-{i:04d}" for i in range(1, TRIALS + 1)
    ]
    assert {r.info.status for r in children} == {"FINISHED"}
    for run in children:
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "val_rmse")]
        assert len(steps) == len(set(steps)), run.info.run_name
    assert len(client.search_model_versions("name='abalone-age'")) == 1


def _fake_sweep(root, name: str) -> None:
    folder = root / "sweep-results" / name
    folder.mkdir(parents=True)
    (folder / "sweep-state.json").write_text("{}")


def test_resume_finds_the_newest_sweep_of_a_name(tmp_path, monkeypatch):
    from sweeps.running.resume import locate_sweep

    monkeypatch.chdir(tmp_path)
    _fake_sweep(tmp_path, "abalone-20261101-090000")
    _fake_sweep(tmp_path, "abalone-20261102-090000")
    newest = str(tmp_path / "sweep-results" / "abalone-20261102-090000")
    assert locate_sweep("abalone") == newest
    assert locate_sweep("abalone-20261101-090000").endswith("abalone-20261101-090000")
    assert locate_sweep(newest) == newest


def test_resume_by_name_never_picks_a_sweep_of_a_longer_name(tmp_path, monkeypatch):
    from sweeps.running.resume import locate_sweep

    monkeypatch.chdir(tmp_path)
    _fake_sweep(tmp_path, "abalone-20261101-090000-3fa2")
    _fake_sweep(tmp_path, "abalone-wide-20261102-090000-1b2c")  # newer, another spec
    assert locate_sweep("abalone").endswith("/abalone-20261101-090000-3fa2")
    assert locate_sweep("abalone-wide").endswith("/abalone-wide-20261102-090000-1b2c")


def test_resume_of_an_unknown_sweep_is_a_one_line_error(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from sweeps.cli import app

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["resume", "nosuch"])
    assert result.exit_code == 2
    assert "resume: no sweep found at 'nosuch'" in result.output
    assert "Traceback" not in result.output
