"""`sweep ls`, `sweep status`, `sweep best`: views of a real sweep read back from MLflow."""

from __future__ import annotations

import os

import pytest
from helpers import DEFAULT_SWEEP_TRIALS as TRIALS
from servers import free_port
from typer.testing import CliRunner

from sweeps.cli import app
from sweeps.results import SweepOutcome

runner = CliRunner()


@pytest.fixture(scope="module")
def sweep(default_sweep) -> SweepOutcome:
    """The session's default small sweep, alone in its SQLite store."""
    return default_sweep


def _invoke(outcome: SweepOutcome, *args: str):
    result = runner.invoke(app, [*args, "--tracking-uri", outcome.tracking_uri])
    assert "Traceback" not in result.output
    return result


def _fmt(value: float) -> str:
    return f"{value:.4f}"


def test_ls_lists_the_sweep_with_its_trials_best_value_and_run_id(sweep):
    result = _invoke(sweep, "ls")
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if sweep.run_name in line)
    assert "FINISHED" in row
    assert f"{TRIALS} finished of {TRIALS}" in row
    assert _fmt(sweep.best.best_value) in row
    assert _fmt(sweep.registration.value) in row
    assert sweep.parent_run_id in row


def test_status_of_the_newest_sweep_counts_trials_by_state(sweep):
    result = _invoke(sweep, "status")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert f"sweep {sweep.run_name} FINISHED" in lines[0]
    header = next(i for i, line in enumerate(lines) if "planned" in line)
    cells = lines[header + 2].split()
    counts = dict(zip(lines[header].split()[1::2], cells[1::2], strict=False))
    n = str(TRIALS)
    assert counts == {"planned": n, "running": "0", "finished": n, "failed": "0", "killed": "0"}


def test_status_shows_the_best_value_so_far_and_elapsed_time(sweep):
    result = _invoke(sweep, "status", sweep.run_name)
    assert result.exit_code == 0, result.output
    best_line = next(line for line in result.output.splitlines() if "best" in line)
    assert f"val_rmse {_fmt(sweep.best.best_value)} (min)" in best_line
    assert f"trial-{sweep.best.number:04d}" in best_line
    assert "elapsed" in result.output


def test_status_accepts_the_parent_run_id(sweep):
    result = _invoke(sweep, "status", sweep.parent_run_id)
    assert result.exit_code == 0, result.output
    assert sweep.run_name in result.output.splitlines()[0]


def test_best_shows_the_best_trials_params_metrics_and_run(sweep):
    result = _invoke(sweep, "best", sweep.run_name)
    assert result.exit_code == 0, result.output
    best = sweep.best
    assert f"trial-{best.number:04d} with val_rmse {_fmt(best.best_value)}" in result.output
    assert best.run_id in result.output
    for name in sweep.spec.searched:
        row = next(line for line in result.output.splitlines() if f" {name} " in line)
        assert str(best.config[name]) in row
    assert "val_mae" in result.output


def test_best_shows_the_registered_version_and_its_alias(sweep):
    result = _invoke(sweep, "best")
    assert result.exit_code == 0, result.output
    reg = sweep.registration
    assert f"registered: {reg.model_name} version {reg.version} ({reg.alias})" in result.output
    assert "source: this trial" in result.output


def test_unknown_sweep_name_is_one_error_line_and_exit_2(sweep):
    result = _invoke(sweep, "status", "abalone-19990101-000000")
    assert result.exit_code == 2
    assert result.output.startswith("error: no sweep named 'abalone-19990101-000000'")
    assert len(result.output.strip().splitlines()) == 1


def test_a_trial_run_id_points_to_its_sweep(sweep):
    result = _invoke(sweep, "best", sweep.best.run_id)
    assert result.exit_code == 2
    assert f"its sweep is run {sweep.parent_run_id}" in result.output


def test_unknown_experiment_is_an_error(sweep):
    result = _invoke(sweep, "ls", "--experiment", "no-such-experiment")
    assert result.exit_code == 2
    assert "error: no experiment 'no-such-experiment'" in result.output


def test_unreachable_server_is_an_error(sweep):
    uri = f"http://127.0.0.1:{free_port()}"
    result = runner.invoke(app, ["ls", "--tracking-uri", uri])
    assert result.exit_code == 2
    assert result.output.strip() == f"error: tracking URI: MLflow server {uri}: connection refused"


def test_missing_local_store_is_an_error_and_is_not_created(tmp_path):
    missing = tmp_path / "mlflow.db"
    result = runner.invoke(app, ["ls", "--tracking-uri", f"sqlite:///{missing}"])
    assert result.exit_code == 2
    assert f"error: no MLflow store at {missing}" in result.output
    assert not missing.exists()


def test_tracking_uri_defaults_to_the_environment(sweep, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", sweep.tracking_uri)
    monkeypatch.chdir(os.path.dirname(sweep.storage_path))
    result = runner.invoke(app, ["ls"])
    assert result.exit_code == 0, result.output
    assert sweep.run_name in result.output
