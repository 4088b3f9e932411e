"""A team's own model family, in its own folder outside the repository, swept end to end.

The family and its spec are the README's "Bring your own model" blocks, copied as they are:
the README's example is what this test runs. No file of the repository is touched.
"""

from __future__ import annotations

import re
import subprocess

import numpy as np
import pandas as pd
import pytest
from helpers import REPO, cli_env, sweep_command
from mlflow import MlflowClient

README_FILE = re.compile(r"<!-- file: (\S+) -->\n```\w+\n(.*?)```", re.DOTALL)


def readme_files() -> dict[str, str]:
    """The files the README's "Bring your own model" section shows, by name."""
    return dict(README_FILE.findall((REPO / "README.md").read_text()))


def churn_table(rows: int = 400, seed: int = 0) -> pd.DataFrame:
    """A learnable churn table: short tenure and the basic plan churn more."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(1, 72, rows)
    spend = rng.normal(60, 15, rows).round(2)
    plan = rng.choice(["basic", "pro"], rows)
    score = -0.06 * tenure + 0.03 * (spend - 60) + np.where(plan == "basic", 1.0, -0.5)
    churned = np.where(score + rng.normal(0, 0.7, rows) > -1.0, "yes", "no")
    return pd.DataFrame({"tenure": tenure, "spend": spend, "plan": plan, "churned": churned})


def _git_status() -> str:
    done = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout


def _dummy_champion(uri: str, model: str, auc: float) -> str:
    """A registered version holding the alias, tagged with a poor test AUC."""
    client = MlflowClient(uri)
    experiment = client.create_experiment("setup")
    run = client.create_run(experiment)
    client.create_registered_model(model)
    version = client.create_model_version(model, f"runs:/{run.info.run_id}/m", run.info.run_id)
    client.set_model_version_tag(model, version.version, "test_auc", repr(auc))
    client.set_registered_model_alias(model, "champion", version.version)
    return str(version.version)


@pytest.fixture(scope="module")
def own_sweep(tmp_path_factory):
    """The README's family and spec in one folder; `sweep run` started from another."""
    team = tmp_path_factory.mktemp("team")
    work = tmp_path_factory.mktemp("work")
    files = readme_files()
    assert set(files) == {"churn_model.py", "churn.yaml"}
    for name, text in files.items():
        (team / name).write_text(text)
    churn_table().to_csv(team / "churn.csv", index=False)
    uri = f"sqlite:///{work / 'mlflow.db'}"
    dummy = _dummy_champion(uri, "churn", auc=0.2)
    before = _git_status()
    command = sweep_command(
        "run",
        str(team / "churn.yaml"),
        search__num_samples=3,
        search__max_concurrent=2,
        search__space__epochs=3,
    )
    done = subprocess.run(
        command, cwd=work, env=cli_env(), capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done, MlflowClient(uri), dummy, team, before


def test_a_family_in_its_own_folder_runs_with_nested_trial_runs(own_sweep):
    done, client, _, _, _ = own_sweep
    assert "Traceback" not in done.stderr
    experiment = client.get_experiment_by_name("churn")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(children) == 3
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parents[0].info.run_id}
    for child in children:
        steps = [m.step for m in client.get_metric_history(child.info.run_id, "val_auc")]
        assert steps == sorted(steps) and steps[0] == 1


def test_the_alias_follows_the_familys_objective_with_mode_max(own_sweep):
    done, client, dummy, _, _ = own_sweep
    holder = client.get_model_version_by_alias("churn", "champion")
    assert str(holder.version) != dummy  # test AUC above 0.2 beats it only if higher is better
    assert holder.tags["champion_metric"] == "test_auc (max)"
    assert float(holder.tags["test_auc"]) > 0.2
    assert f"moved from version {dummy}" in done.stdout.replace("\n", " ")


def test_the_registered_model_returns_class_probabilities(own_sweep):
    import mlflow

    _, client, _, team, _ = own_sweep
    mlflow.set_tracking_uri(client.tracking_uri)
    model = mlflow.pyfunc.load_model("models:/churn@champion")
    rows = pd.read_csv(team / "churn.csv").drop(columns="churned").iloc[100:110]
    probabilities = model.predict(rows)
    assert list(probabilities.columns) == ["no", "yes"]
    assert list(probabilities.index) == list(rows.index)
    assert np.allclose(probabilities.sum(axis=1), 1.0)


def test_no_file_of_the_repository_is_touched(own_sweep):
    *_, before = own_sweep
    assert _git_status() == before


def test_trial_workers_get_the_family_without_its_folder_on_their_path(ray_session, tmp_path):
    """The session's Ray workers cannot import from ``tmp_path``: the family travels pickled
    by value, as it does to a cluster's workers."""
    from sweeps.config.spec import load_spec
    from sweeps.running.sweep import run_sweep

    for name, text in readme_files().items():
        (tmp_path / name).write_text(text)
    churn_table().to_csv(tmp_path / "churn.csv", index=False)
    overrides = [
        "search.num_samples=2",
        "search.space.epochs=2",
        f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}",
        f"storage={tmp_path / 'results'}",
    ]
    outcome = run_sweep(load_spec(tmp_path / "churn.yaml", overrides))
    assert [t.status for t in outcome.trials] == ["TERMINATED", "TERMINATED"]
    assert outcome.registration is not None and outcome.registration.metric == "test_auc"
