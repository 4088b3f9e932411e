"""Ctrl-C, SIGTERM and failures end a sweep cleanly: nothing left RUNNING, nothing partial
registered, and an interrupted sweep resumes to exactly its planned trials."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from helpers import DEFAULT_SPEC, cli_env, sweep_command
from mlflow import MlflowClient

TRIALS = 3
EXPERIMENT = "abalone-tensorflow-experiment"


def _start_sweep(folder: Path, epochs: int = 25) -> subprocess.Popen:
    command = sweep_command(
        "run",
        str(DEFAULT_SPEC),
        search__num_samples=TRIALS,
        search__max_concurrent=2,
        search__space__epochs=epochs,
        search__scheduler="null",
    )
    log = open(folder / "run.log", "w")  # noqa: SIM115 - closed with the process
    # Its own session: the signal goes to the sweep's process group, as a terminal's Ctrl-C.
    return subprocess.Popen(
        command, cwd=folder, env=cli_env(), stdout=log, stderr=log, start_new_session=True
    )


def _finished_children(db: Path) -> int:
    try:
        with sqlite3.connect(db) as conn:
            return conn.execute(
                "select count(*) from runs r join tags t on r.run_uuid = t.run_uuid "
                "where t.key = 'mlflow.parentRunId' and r.status = 'FINISHED'"
            ).fetchone()[0]
    except sqlite3.Error:
        return 0  # not created yet


def _signal_once_a_trial_finished(
    proc: subprocess.Popen, folder: Path, signum: int, group: bool = True
) -> float:
    """Wait until one trial finished (others are mid-training), signal the sweep's process
    group (or only its driver), and return how many seconds the sweep took to exit."""
    deadline = time.monotonic() + 300
    while _finished_children(folder / "mlflow.db") == 0:
        assert proc.poll() is None, (folder / "run.log").read_text()[-3000:]
        assert time.monotonic() < deadline, "no trial finished in time"
        time.sleep(0.5)
    if group:
        os.killpg(proc.pid, signum)
    else:
        os.kill(proc.pid, signum)
    sent = time.monotonic()
    proc.wait(timeout=120)
    return time.monotonic() - sent


def _runs(folder: Path) -> tuple[object, list]:
    client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(EXPERIMENT)
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1
    return parents[0], children


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory):
    """A sweep stopped with Ctrl-C (SIGINT to its process group) while trials train."""
    folder = tmp_path_factory.mktemp("ctrl-c")
    proc = _start_sweep(folder)
    took = _signal_once_a_trial_finished(proc, folder, signal.SIGINT)
    return folder, proc.returncode, took


def test_ctrl_c_exits_130_within_seconds_and_says_how_to_resume(interrupted):
    folder, code, took = interrupted
    assert code == 130
    assert took < 60
    last = (folder / "run.log").read_text().strip().splitlines()[-1]
    assert "Continue it with: sweep resume " in last


def test_ctrl_c_marks_unfinished_trials_and_the_parent_killed(interrupted):
    folder, _, _ = interrupted
    parent, children = _runs(folder)
    assert parent.info.status == "KILLED"
    assert parent.data.tags["sweep.end_reason"] == "stopped by SIGINT"
    statuses = [r.info.status for r in children]
    assert "KILLED" in statuses
    assert set(statuses) <= {"FINISHED", "KILLED"}


def test_ctrl_c_registers_nothing(interrupted):
    folder, _, _ = interrupted
    client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    assert client.search_model_versions("name='abalone-age'") == []


def test_resume_refuses_tune_state_changed_after_the_driver_left(interrupted, tmp_path):
    """Tune's state is unpickled on resume and trial code can write the storage: a state file
    that differs from what the driver recorded on the MLflow parent run is refused."""
    import shutil

    folder, _, _ = interrupted
    original = next((folder / "sweep-results").iterdir())
    copy = tmp_path / original.name
    shutil.copytree(original, copy, ignore=shutil.ignore_patterns("driver-lease.json"))
    with open(copy / "tuner.pkl", "ab") as fh:
        fh.write(b"tampered")
    done = subprocess.run(
        sweep_command("resume", str(copy)),
        cwd=folder, env=cli_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-3000:]
    assert f"resume: {copy / 'tuner.pkl'} was changed after the sweep's driver left it" in (
        done.stderr
    )
    parent, _ = _runs(folder)
    assert parent.info.status == "KILLED"  # untouched


def test_resume_after_ctrl_c_completes_exactly_the_planned_trials(interrupted):
    folder, _, _ = interrupted
    last = (folder / "run.log").read_text().strip().splitlines()[-1]
    resume_command = last.split("Continue it with: ", 1)[1].split()
    assert resume_command[:2] == ["sweep", "resume"]
    done = subprocess.run(
        sweep_command("resume", *resume_command[2:]),
        cwd=folder, env=cli_env(), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    parent, children = _runs(folder)
    assert parent.info.status == "FINISHED"
    assert sorted(r.info.run_name for r in children) == [
        f"trial-{i:04d}" for i in range(1, TRIALS + 1)
    ]
    assert {r.info.status for r in children} == {"FINISHED"}
    client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    assert len(client.search_model_versions("name='abalone-age'")) == 1


def test_sigterm_ends_the_sweep_killed_with_exit_143(tmp_path):
    """What `ray job stop` does to a submitted sweep: SIGTERM to the driver process."""
    proc = _start_sweep(tmp_path)
    took = _signal_once_a_trial_finished(proc, tmp_path, signal.SIGTERM, group=False)
    assert proc.returncode == 143
    assert took < 30  # `sweep submit` gives a stopped job 30 s before SIGKILL
    parent, children = _runs(tmp_path)
    assert parent.info.status == "KILLED"
    assert parent.data.tags["sweep.end_reason"] == "stopped by SIGTERM"
    assert "RUNNING" not in {r.info.status for r in children}
