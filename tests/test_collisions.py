"""Two sweeps of one spec at once get their own parent run, folder and trials; a sweep whose
driver still runs cannot be resumed by a second driver."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from helpers import DEFAULT_SPEC, cli_env, sweep_command
from mlflow import MlflowClient

TRIALS = 2


def _command() -> list[str]:
    return sweep_command(
        "run",
        str(DEFAULT_SPEC),
        search__num_samples=TRIALS,
        search__max_concurrent=1,
        search__space__epochs=2,
        search__scheduler="null",
        register__enabled="false",  # exploratory: nothing registered, exit 0 all the same
    )


@pytest.fixture(scope="module")
def twin_sweeps(tmp_path_factory) -> tuple[Path, list[subprocess.CompletedProcess]]:
    """The same spec started twice at the same moment, in the same folder and MLflow store."""
    folder = tmp_path_factory.mktemp("twins")
    procs = [
        subprocess.Popen(
            _command(),
            cwd=folder,
            env=cli_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for _ in range(2)
    ]
    done = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return folder, done


def test_both_sweeps_finish(twin_sweeps):
    _, done = twin_sweeps
    for result in done:
        assert result.returncode == 0, result.stderr[-3000:]


def test_a_sweep_with_registration_off_says_so_and_exits_0(twin_sweeps):
    _, done = twin_sweeps
    for result in done:
        assert "Not registered: register.enabled is false" in result.stdout
        assert "is not registered" in result.stderr  # the line during the sweep


def test_each_sweep_has_its_own_parent_run_folder_and_trials(twin_sweeps):
    folder, _ = twin_sweeps
    client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("abalone-tensorflow-experiment")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 2
    assert len({p.info.run_name for p in parents}) == 2
    for parent in parents:
        children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
        assert sorted(r.info.run_name for r in children) == ["trial-0001", "trial-0002"]
        assert {r.info.status for r in children} == {"FINISHED"}
        sweep_folder = Path(parent.data.tags["sweep.storage"])
        assert sweep_folder.name == parent.info.run_name
        assert len(list(sweep_folder.glob("trial-*"))) == TRIALS
    folders = list((folder / "sweep-results").iterdir())
    assert len(folders) == 2


def test_resume_is_refused_while_the_sweeps_driver_runs(tmp_path):
    command = sweep_command(
        "run", str(DEFAULT_SPEC), search__num_samples=4, search__max_concurrent=1,
        search__space__epochs=30, search__scheduler="null",
    )  # fmt: skip
    driver = subprocess.Popen(
        command, cwd=tmp_path, env=cli_env(), stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not list((tmp_path / "sweep-results").glob("*/sweep-state.json")):
            assert driver.poll() is None and time.monotonic() < deadline
            time.sleep(0.5)
        folder = next((tmp_path / "sweep-results").iterdir())
        refused = subprocess.run(
            sweep_command("resume", str(folder)),
            cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        # Only while the driver is unreaped: its pid (and so its group id) is still its own.
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
        driver.wait(timeout=60)
    assert refused.returncode == 2
    assert f"still being run by process {driver.pid}" in refused.stderr
    assert "Traceback" not in refused.stderr
