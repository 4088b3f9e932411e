"""``register.ensemble: K``: the best K trials' models registered as one pyfunc model that
averages them, scored on the test split next to the single best, and followed by the champion
rule. One real sweep (local Ray, TensorFlow, an MLflow SQLite store, 4 trials x 2 epochs); the
classification ensemble and the fallbacks run the registration child's own function in this
process on real checkpoints; the choice of members is checked on trial records."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from helpers import (
    DEFAULT_SPEC,
    abalone_test_split,
    holdout_rmse,
    small_spec_overrides,
)
from mlflow import MlflowClient
from rich.console import Console
from typer.testing import CliRunner

from sweeps.cli import app
from sweeps.config.spec import load_spec
from sweeps.registration.job import Member
from sweeps.registration.members import choose_members, shortfall_note
from sweeps.results import TrialRecord
from sweeps.running.sweep import run_sweep
from trainable.contract import Objective
from trainable.ensemble import combine

ENSEMBLE = 3  # of 4 trials: one trial is left out
PARENT_MEMBERS = "sweep.ensemble_members"


@pytest.fixture(scope="module")
def sweep(ray_session, tmp_path_factory):
    """4 abalone trials x 2 epochs with ``register.ensemble: 3``, once for the module."""
    tmp = tmp_path_factory.mktemp("ensemble")
    extra = {"search.space.epochs": 2, "register.ensemble": ENSEMBLE}
    spec = load_spec(DEFAULT_SPEC, small_spec_overrides(tmp, **extra))
    outcome = run_sweep(spec)
    return outcome, MlflowClient(outcome.tracking_uri)


@pytest.fixture(scope="module")
def ensemble(sweep):
    """The registered version, loaded as users load it."""
    import mlflow

    outcome, _ = sweep
    reg = outcome.registration
    mlflow.set_tracking_uri(outcome.tracking_uri)
    return mlflow.pyfunc.load_model(f"models:/{reg.model_name}/{reg.version}")


def _job(
    root: Path, folders: list[str], test, schema, champion, note: str | None = None
) -> tuple[MlflowClient, Any]:
    """A new MLflow store in ``root`` and the job the driver would hand the registration child
    for checkpoint ``folders`` (best first), each member with a child run of one parent run."""
    from sweeps.registration.job import RegistrationJob
    from sweeps.registration.registry import Lineage

    store = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    experiment = store.create_experiment("direct", artifact_location=str(root / "artifacts"))
    parent = store.create_run(experiment).info.run_id
    runs = [
        store.create_run(experiment, tags={"mlflow.parentRunId": parent}).info.run_id
        for _ in folders
    ]
    members = [
        Member(i + 1, run, f, f) for i, (run, f) in enumerate(zip(runs, folders, strict=True))
    ]
    job = RegistrationJob(
        checkpoint_dir=folders[0],
        test=test,
        schema=schema,
        lineage=Lineage(parent, runs[0], "0" * 64, "1" * 64, folders[0]),
        model_name="direct",
        alias="champion",
        champion=champion,
        members=tuple(members),
        note=note,
    )
    return store, job


@pytest.fixture(scope="module")
def classification(tmp_path_factory):
    """Three breast cancer models (1 epoch, seeds 0-2) saved as the family saves a trial's
    checkpoint, registered as an ensemble by the registration child's own function
    (:func:`sweeps.registration.ensemble.register`), in this process, in a new store; the job
    says, as the driver would for ``register.ensemble: 5``, that only 3 trials completed."""
    import keras

    from sweeps.registration.ensemble import register
    from trainable.families.breast_cancer import SCHEMA, family
    from trainable.pipeline import fit_inputs
    from trainable.tables import load_dataset, split_dataset

    tmp = tmp_path_factory.mktemp("ensemble-classification")
    splits = split_dataset(load_dataset("builtin:breast_cancer", SCHEMA), 0.15, 0.15, 0)
    folders = []
    for seed in range(3):
        keras.utils.set_random_seed(seed)
        model = family.build({"layers": 1, "units": 8}, splits.schema, splits.train)
        train, val = fit_inputs(splits, 32, seed, family.xy)
        model.fit(train, validation_data=val, epochs=1, verbose=0)
        folder = tmp / f"checkpoint-{seed}"
        folder.mkdir()
        model.save(folder / family.model_file)
        folders.append(str(folder))
    note = shortfall_note(5, len(folders))
    store, job = _job(tmp, folders, splits.test, splits.schema, Objective("test_auc", "max"), note)
    return register(store, family, job), store, job


def _members(outcome, client) -> list[tuple[str, str]]:
    """(trial name, child run id) of each member, best first, from the parent run's tag."""
    tag = client.get_run(outcome.parent_run_id).data.tags[PARENT_MEMBERS]
    return [tuple(item.split(":", 1)) for item in tag.split(",")]


def _load_members(outcome, client) -> list:
    """Each member's own model, as its family logged it into its child run."""
    import mlflow

    mlflow.set_tracking_uri(outcome.tracking_uri)
    return [mlflow.pyfunc.load_model(f"runs:/{run}/model") for _, run in _members(outcome, client)]


def _children(outcome, client):
    return client.search_runs(
        [outcome.experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{outcome.parent_run_id}'",
    )


# ------------------------------------------------------------------ regression (abalone)


def test_members_are_the_best_trials_by_the_search_metric_best_first(sweep):
    outcome, client = sweep
    ranked = sorted(_children(outcome, client), key=lambda r: r.data.metrics["best_val_rmse"])
    expected = [(r.info.run_name, r.info.run_id) for r in ranked[:ENSEMBLE]]
    assert _members(outcome, client) == expected
    assert [f"trial-{n:04d}" for n in outcome.registration.members] == [n for n, _ in expected]


def test_registered_ensemble_predicts_the_mean_of_its_members_checkpoints(sweep, ensemble):
    """Members loaded from their own checkpoints (the version's lineage), predicted directly
    with Keras on the raw test rows: the registered model returns their mean."""
    from trainable.families.abalone import family
    from trainable.tabular import model_inputs

    outcome, client = sweep
    reg = outcome.registration
    tags = client.get_model_version(reg.model_name, reg.version).tags
    test = abalone_test_split(outcome.spec)
    inputs = model_inputs(test, family.schema)
    outputs = [
        np.asarray(family.load(folder)(inputs, training=False), dtype="float64")[:, 0]
        for folder in tags["ensemble_checkpoint_uris"].split(",")
    ]
    assert len(outputs) == ENSEMBLE
    predicted = ensemble.predict(test[family.schema.feature_names])
    assert predicted.shape == (len(test),) and predicted.dtype == np.float64
    assert np.allclose(predicted, np.mean(outputs, axis=0), rtol=1e-6, atol=1e-6)


def test_ensemble_has_the_single_best_models_signature_and_input_example(sweep, ensemble):
    outcome, client = sweep
    best = _load_members(outcome, client)[0]
    assert ensemble.metadata.signature == best.metadata.signature
    assert ensemble.metadata.signature.outputs == best.metadata.signature.outputs
    pd.testing.assert_frame_equal(ensemble.input_example, best.input_example)


def test_parent_run_has_the_single_best_and_the_ensemble_test_scores(sweep, ensemble):
    outcome, client = sweep
    metrics = client.get_run(outcome.parent_run_id).data.metrics
    best_child = client.get_run(_members(outcome, client)[0][1]).data.metrics
    assert metrics["test_rmse"] == pytest.approx(best_child["test_rmse"])
    assert metrics["ensemble_test_rmse"] == pytest.approx(
        holdout_rmse(ensemble, outcome.spec), rel=1e-5
    )
    assert {"ensemble_test_mae", "ensemble_test_loss"} <= set(metrics)
    children = {r.info.run_id for r in _children(outcome, client)}
    assert {run for _, run in _members(outcome, client)} <= children
    reg = outcome.registration
    assert client.get_model_version(reg.model_name, reg.version).run_id == outcome.parent_run_id


def test_the_champion_rule_compares_the_ensembles_test_score(sweep):
    outcome, client = sweep
    reg = outcome.registration
    ensemble_rmse = client.get_run(outcome.parent_run_id).data.metrics["ensemble_test_rmse"]
    version = client.get_model_version(reg.model_name, reg.version)
    assert float(version.tags["test_rmse"]) == pytest.approx(ensemble_rmse)
    assert reg.value == pytest.approx(ensemble_rmse)
    holder = client.get_model_version_by_alias(reg.model_name, reg.alias)
    assert str(holder.version) == reg.version


def test_end_of_run_names_the_ensemble_and_both_scores(sweep):
    from sweeps.views.outcome import print_outcome

    outcome, _ = sweep
    reg = outcome.registration
    out = io.StringIO()
    print_outcome(outcome, Console(file=out, width=300))
    numbers = ", ".join(f"#{n}" for n in reg.members)
    assert (
        f"ensemble of {ENSEMBLE} trials ({numbers}): test_rmse {reg.value:.4f} "
        f"vs single best {reg.single_metrics['test_rmse']:.4f}"
    ) in out.getvalue()


def test_sweep_best_names_the_ensemble(sweep):
    from sweeps.views.tables import print_best

    outcome, client = sweep
    out = io.StringIO()
    print_best(Console(file=out, width=400), outcome.run_name, tracking_uri=outcome.tracking_uri)
    names = ", ".join(name for name, _ in _members(outcome, client))
    assert f"source: ensemble of {ENSEMBLE} trials ({names}; single best test_rmse" in (
        out.getvalue()
    )


def test_a_family_that_cannot_average_gets_the_single_best_and_a_note(sweep, tmp_path):
    """The registration child's side, given the sweep's members and a family without
    ``average``: the single best is registered, and the parent run and the terminal say why."""
    from sweeps.registration.ensemble import register
    from sweeps.views.outcome import print_outcome
    from trainable.contract import ModelFamily
    from trainable.families.abalone import SCHEMA
    from trainable.families.mlp import TabularMLP

    class NoAverage(TabularMLP):
        average = ModelFamily.average

    outcome, client = sweep
    reg = outcome.registration
    folders = client.get_model_version(reg.model_name, reg.version).tags
    folders = folders["ensemble_checkpoint_uris"].split(",")
    test = abalone_test_split(outcome.spec)
    store, job = _job(tmp_path, folders, test, SCHEMA, Objective("test_rmse"))
    registration = register(store, NoAverage("abalone", "regression", SCHEMA), job)
    assert registration.members == ()
    note = "NoAverage does not average models: the single best model is registered"
    assert registration.note == note
    assert store.get_run(job.lineage.sweep_run_id).data.tags["sweep.ensemble_note"] == note
    version = store.get_model_version("direct", registration.version)
    assert version.run_id == job.lineage.trial_run_id
    out = io.StringIO()
    print_outcome(replace(outcome, registration=registration), Console(file=out, width=300))
    assert note in out.getvalue()


# ------------------------------------------------------------------ classification


def test_classification_ensemble_serves_like_a_single_model(classification):
    """Same columns, dtypes and index (a slice of the table) as a single model's prediction;
    the class probabilities are the mean of the members'."""
    import mlflow

    registration, store, job = classification
    mlflow.set_tracking_uri(store.tracking_uri)
    model = mlflow.pyfunc.load_model(registration.model_uri)
    members = [mlflow.pyfunc.load_model(f"runs:/{m.trial_run_id}/model") for m in job.members]
    rows = job.test[job.schema.feature_names].iloc[[40, 7, 13, 79, 5]]
    predicted = model.predict(rows)
    single = [member.predict(rows) for member in members]
    assert isinstance(predicted, pd.DataFrame)
    assert list(predicted.columns) == list(single[0].columns) == ["benign", "malignant"]
    assert predicted.dtypes.equals(single[0].dtypes)
    assert predicted.index.equals(rows.index)
    mean = np.mean([s.to_numpy() for s in single], axis=0)
    assert np.allclose(predicted.to_numpy(), mean, rtol=1e-6)
    assert np.allclose(predicted.sum(axis=1), 1.0)
    assert model.metadata.signature == members[0].metadata.signature
    assert registration.metric == "test_auc" and len(registration.members) == 3


def test_a_smaller_ensemble_is_registered_with_its_note_on_the_parent_run(classification):
    registration, store, job = classification
    assert len(registration.members) == 3
    assert registration.note == job.note
    assert store.get_run(job.lineage.sweep_run_id).data.tags["sweep.ensemble_note"] == job.note
    version = store.get_model_version(registration.model_name, registration.version)
    assert version.tags["ensemble_members"] == ",".join(m.label for m in job.members)


# ------------------------------------------------------------------ without a sweep


def _record(number: int, value: float | None, status: str = "TERMINATED") -> TrialRecord:
    return TrialRecord(number, f"t{number}", status, value, run_id=f"run{number}")


TRIALS = [_record(1, 2.0), _record(2, None), _record(3, 1.5, "ERROR"), _record(4, 2.5)]
TRIALS += [_record(5, 2.2), _record(6, 2.1)]
BEST = Member(1, "run1", "/c/1", "/c/1")


def _choose(size: int, without_checkpoint: tuple[str, ...] = ()):
    checkpoints = {t.trial_id: f"/c/{t.number}" for t in TRIALS}
    for trial_id in without_checkpoint:
        del checkpoints[trial_id]
    return choose_members(
        BEST, TRIALS[0], TRIALS, checkpoints, size, Objective("val_rmse"), lambda c, n: (c, c)
    )


def test_members_after_the_best_are_the_next_complete_trials_with_a_checkpoint():
    members, note = _choose(3, without_checkpoint=("t6",))
    assert [m.number for m in members] == [1, 5, 4]  # no value, failed, no checkpoint: out
    assert note is None
    assert [m.number for m in _choose(2)[0]] == [1, 6]


def test_fewer_complete_trials_than_asked_make_a_smaller_ensemble_and_say_so():
    members, note = _choose(5)
    assert [m.number for m in members] == [1, 6, 5, 4]
    assert note == (
        "register.ensemble: 5 asked, only 4 trials completed with a model: "
        "an ensemble of 4 is registered"
    )


def test_a_single_completed_trial_registers_the_single_best_with_a_note():
    members, note = _choose(3, without_checkpoint=("t4", "t5", "t6"))
    assert members == ()
    assert note == (
        "register.ensemble: 3 asked, only 1 trial completed with a model: "
        "the single best model is registered"
    )


def test_label_predictions_are_put_to_a_majority_vote_ties_to_the_best_member():
    labels = [np.array(["a", "b", "c"]), np.array(["b", "b", "a"]), np.array(["b", "c", "b"])]
    assert combine(labels, "classification").tolist() == ["b", "b", "c"]
    series = [pd.Series(v, index=[5, 6, 7], name="label") for v in labels]
    voted = combine(series, "classification")
    assert voted.tolist() == ["b", "b", "c"] and list(voted.index) == [5, 6, 7]


runner = CliRunner()
BAD_ENSEMBLE = {
    "1": "register.ensemble = 1: must be greater than or equal to 2",
    "0": "register.ensemble = 0: must be greater than or equal to 2",
    "x": "register.ensemble = 'x': must be a valid integer",
    "21": "register.ensemble = 21: must be less than or equal to 20",
}


@pytest.mark.parametrize("value", BAD_ENSEMBLE, ids=list(BAD_ENSEMBLE))
def test_bad_ensemble_size_is_one_line_naming_the_field(value, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    result = runner.invoke(
        app, ["validate", str(DEFAULT_SPEC), "--set", f"register.ensemble={value}"]
    )
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: {BAD_ENSEMBLE[value]}"), errors
