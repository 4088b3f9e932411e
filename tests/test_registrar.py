"""Registration runs in a child process (the driver never loads TensorFlow) against a real
MLflow SQLite store."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient

from sweeps.registration.registrar import Registrar, RegistrationFailed, RegistrationJob
from sweeps.registration.registry import Lineage
from trainable.contract import Objective
from trainable.families.abalone import REFERENCE_CONFIG, SCHEMA, family
from trainable.keras_family import MODEL_FILE
from trainable.tables import load_dataset, split_dataset

MODEL_NAME = "abalone-age"
TRAINABLE = "trainable.families.abalone:family"


@pytest.fixture(scope="module")
def splits():
    return split_dataset(load_dataset("builtin:abalone", SCHEMA), 0.15, 0.15, 0)


@pytest.fixture
def store(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment_id = client.create_experiment("registrar", str(tmp_path / "artifacts"))
    parent = client.create_run(experiment_id, run_name="sweep")
    trial = client.create_run(
        experiment_id, run_name="trial-0001", tags={"mlflow.parentRunId": parent.info.run_id}
    )
    lineage = Lineage(
        sweep_run_id=parent.info.run_id,
        trial_run_id=trial.info.run_id,
        data_sha256="0" * 64,
        spec_sha256="1" * 64,
        checkpoint_uri=str(tmp_path / "checkpoint"),
    )
    return uri, client, lineage


def _job(folder, splits, lineage) -> RegistrationJob:
    return RegistrationJob(
        checkpoint_dir=str(folder),
        test=splits.test,
        schema=splits.schema,
        lineage=lineage,
        model_name=MODEL_NAME,
        alias="champion",
        champion=Objective("test_rmse", "min"),
    )


def test_registrar_child_registers_the_checkpointed_model_with_lineage(tmp_path, splits, store):
    uri, client, lineage = store
    folder = tmp_path / "checkpoint"
    folder.mkdir()
    family.build(REFERENCE_CONFIG, splits.schema, splits.train).save(folder / MODEL_FILE)

    registrar = Registrar(uri, TRAINABLE)
    try:
        registrar.start()
        registrar.submit(_job(folder, splits, lineage))
        registration = registrar.result()
    finally:
        registrar.close()

    version = client.get_model_version(MODEL_NAME, registration.version)
    assert version.run_id == lineage.trial_run_id
    assert version.tags["sweep_run_id"] == lineage.sweep_run_id
    assert float(version.tags["test_rmse"]) == pytest.approx(registration.value)
    assert registration.metric == "test_rmse"
    assert set(registration.metrics) == {"test_loss", "test_rmse", "test_mae"}
    assert registration.alias_moved


def test_a_failed_registration_reports_the_childs_error(tmp_path, splits, store):
    uri, _, lineage = store
    empty = tmp_path / "no-checkpoint"
    empty.mkdir()
    registrar = Registrar(uri, TRAINABLE)
    try:
        registrar.submit(_job(empty, splits, lineage))
        with pytest.raises(RegistrationFailed, match=MODEL_FILE):
            registrar.result()
    finally:
        registrar.close()


def test_closing_a_registrar_that_got_no_job_stops_its_child(store):
    uri, _, _ = store
    registrar = Registrar(uri, TRAINABLE)
    registrar.start()
    child = registrar._proc
    registrar.close()
    assert child is not None and child.poll() is not None


@pytest.mark.parametrize(
    ("trainable", "loads_tensorflow"),
    [("trainable.families.abalone:family", True), ("plain_family:family", False)],
)
def test_the_registration_process_loads_tensorflow_only_for_a_family_that_needs_it(
    trainable, loads_tensorflow, tmp_path
):
    import os
    import subprocess
    import sys

    from helpers import pythonpath_with_tests

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    code = (
        "import sys; from sweeps.registration.__main__ import warm_up; "
        f"warm_up({uri!r}, {trainable!r}); print('tensorflow' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": pythonpath_with_tests()},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == str(loads_tensorflow)
