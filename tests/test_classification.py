"""The classification family (breast cancer, ``val_auc``, ``mode: max``) end to end, and its
registered model served by ``mlflow models serve`` on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

import numpy as np
import pandas as pd
import pytest
from helpers import CLASSIFICATION_SPEC, small_spec_overrides
from mlflow import MlflowClient
from servers import free_port, wait_for_http

from sweeps.config.spec import load_spec
from sweeps.running.sweep import run_sweep

CLASSES = ["benign", "malignant"]


@pytest.fixture(scope="module")
def sweep(ray_session, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("classification")
    outcome = run_sweep(load_spec(CLASSIFICATION_SPEC, small_spec_overrides(tmp)))
    return outcome, MlflowClient(outcome.tracking_uri)


@pytest.fixture(scope="module")
def test_rows(sweep):
    from trainable.families.breast_cancer import SCHEMA
    from trainable.tables import load_dataset, split_dataset

    outcome, _ = sweep
    split = outcome.spec.data.split
    dataset = load_dataset("builtin:breast_cancer", SCHEMA)
    return split_dataset(dataset, split.val, split.test, split.seed).test


@pytest.fixture(scope="module")
def model(sweep):
    import mlflow

    outcome, _ = sweep
    mlflow.set_tracking_uri(outcome.tracking_uri)
    return mlflow.pyfunc.load_model(outcome.registration.model_uri)


def test_the_best_trial_is_the_one_with_the_highest_val_auc(sweep):
    outcome, client = sweep
    children = client.search_runs(
        [outcome.experiment_id], f"tags.`mlflow.parentRunId` = '{outcome.parent_run_id}'"
    )
    best = max(children, key=lambda r: r.data.metrics["best_val_auc"])
    version = client.get_model_version(outcome.spec.model_name, outcome.registration.version)
    assert version.run_id == best.info.run_id
    assert outcome.best.best_value == pytest.approx(best.data.metrics["best_val_auc"])


def test_registration_is_judged_by_test_auc(sweep):
    outcome, client = sweep
    reg = outcome.registration
    assert reg.metric == "test_auc"
    assert {"test_auc", "test_accuracy", "test_loss"} <= set(reg.metrics)
    tags = client.get_model_version(reg.model_name, reg.version).tags
    assert tags["champion_metric"] == "test_auc (max)"
    assert float(tags["test_auc"]) == pytest.approx(reg.value)


def test_registered_model_gives_class_probabilities_for_a_dataframe_slice(model, test_rows):
    rows = test_rows.drop(columns="diagnosis").iloc[40:50]
    probabilities = model.predict(rows)
    assert list(probabilities.columns) == CLASSES
    assert list(probabilities.index) == list(rows.index)
    assert np.allclose(probabilities.sum(axis=1), 1.0)
    assert ((probabilities >= 0) & (probabilities <= 1)).all().all()


def test_registered_model_ranks_the_test_split_as_its_logged_auc(sweep, model, test_rows):
    from sklearn.metrics import roc_auc_score

    outcome, _ = sweep
    malignant = model.predict(test_rows.drop(columns="diagnosis"))["malignant"]
    auc = roc_auc_score(test_rows["diagnosis"] == "malignant", malignant)
    assert auc == pytest.approx(outcome.registration.value, abs=0.01)


def test_registered_model_has_a_column_signature_with_the_tables_types(model):
    inputs = model.metadata.signature.inputs
    assert inputs.input_names()[:2] == ["mean_radius", "mean_texture"]
    assert {t.name for t in inputs.input_types()} == {"double"}
    assert [c.name for c in model.metadata.signature.outputs.inputs] == CLASSES


@pytest.fixture(scope="module")
def served(sweep):
    """``mlflow models serve`` of the registered version, on a loopback port."""
    outcome, _ = sweep
    port = free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": outcome.tracking_uri}
    command = [
        sys.executable, "-m", "mlflow", "models", "serve",
        "-m", outcome.registration.model_uri,
        "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port),
    ]  # fmt: skip
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/ping", timeout_s=120, proc=proc)
        yield f"http://127.0.0.1:{port}/invocations"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _post(url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def test_served_model_answers_dataframe_split_like_pyfunc(served, model, test_rows):
    rows = test_rows.drop(columns="diagnosis").iloc[5:12]
    status, answer = _post(served, {"dataframe_split": json.loads(rows.to_json(orient="split"))})
    assert status == 200, answer
    served_probabilities = pd.DataFrame(answer["predictions"])[CLASSES].to_numpy()
    assert np.allclose(served_probabilities, model.predict(rows).to_numpy(), atol=1e-6)


def test_served_model_answers_dataframe_records_like_pyfunc(served, model, test_rows):
    rows = test_rows.drop(columns="diagnosis").iloc[20:23]
    status, answer = _post(served, {"dataframe_records": rows.to_dict(orient="records")})
    assert status == 200, answer
    served_probabilities = pd.DataFrame(answer["predictions"])[CLASSES].to_numpy()
    assert np.allclose(served_probabilities, model.predict(rows).to_numpy(), atol=1e-6)


def test_served_model_names_a_missing_column(served, test_rows):
    rows = test_rows.drop(columns=["diagnosis", "worst_area"]).iloc[:2]
    status, answer = _post(served, {"dataframe_split": json.loads(rows.to_json(orient="split"))})
    assert 400 <= status < 500
    assert "worst_area" in json.dumps(answer)
