"""S3 storage and data, a remote MLflow server, SageMaker managed MLflow by ARN.

Real stand-ins on 127.0.0.1: moto's S3 API server and ``mlflow server`` processes. The ARN
path goes through the real sagemaker-mlflow plugin (``SAGEMAKER_MLFLOW_CUSTOM_ENDPOINT`` points
it at a local server, which ignores the SigV4 signature).
"""

from __future__ import annotations

import io
import os

import boto3
import pytest
from helpers import DEFAULT_SPEC, holdout_rmse, small_spec_overrides
from mlflow import MlflowClient
from rich.console import Console
from servers import DUMMY_ACCESS_KEY, DUMMY_SECRET_KEY, mlflow_server, moto_server
from typer.testing import CliRunner

from sweeps.cli import app
from sweeps.config.spec import load_spec
from sweeps.running.sweep import run_sweep
from trainable.families.abalone import SCHEMA
from trainable.tables import load_dataset

BUCKET = "sweeps-test"
DATA_KEY = "data/abalone.csv"


@pytest.fixture(scope="module")
def bucket(s3_endpoint):
    s3 = boto3.client("s3")
    if BUCKET not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket=BUCKET)
    frame = load_dataset("builtin:abalone", SCHEMA).frame
    s3.put_object(Bucket=BUCKET, Key=DATA_KEY, Body=frame.to_csv(index=False).encode())
    return s3


@pytest.fixture(scope="module")
def proxy_folder(tmp_path_factory):
    return tmp_path_factory.mktemp("mlflow-proxy")


@pytest.fixture(scope="module")
def proxy_server(bucket, s3_endpoint, proxy_folder):
    """``mlflow server`` with a SQLite backend and artifacts proxied into the S3 bucket."""
    env = {**os.environ, "MLFLOW_S3_ENDPOINT_URL": s3_endpoint}
    args = ("--artifacts-destination", f"s3://{BUCKET}/mlflow")
    with mlflow_server(proxy_folder, *args, env=env) as url:
        yield url


@pytest.fixture(scope="module")
def s3_sweep(ray_session, proxy_server, tmp_path_factory):
    """A small sweep: data from S3, Tune state and checkpoints in S3, tracking on the server."""
    tmp = tmp_path_factory.mktemp("s3-sweep")
    overrides = small_spec_overrides(
        tmp,
        **{
            "search.num_samples": 2,
            "search.space.epochs": 2,
            "data.source": f"s3://{BUCKET}/{DATA_KEY}",
            "storage": f"s3://{BUCKET}/runs",
            "tracking.uri": proxy_server,
            "register.model_name": "abalone-s3",
        },
    )
    console = Console(file=io.StringIO(), width=120)
    outcome = run_sweep(load_spec(DEFAULT_SPEC, overrides), console=console)
    outcome.console_text = console.file.getvalue()  # type: ignore[attr-defined]
    return outcome, MlflowClient(proxy_server)


def _keys(s3, prefix: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def test_tune_state_and_checkpoints_land_in_the_bucket(s3_sweep, bucket):
    outcome, _ = s3_sweep
    prefix = outcome.storage_path.removeprefix(f"s3://{BUCKET}/")
    keys = _keys(bucket, prefix)
    assert any(k.endswith("/tuner.pkl") for k in keys)
    assert any("/experiment_state-" in k for k in keys)
    assert any(k.endswith("/sweep-state.json") for k in keys)
    checkpoints = [k for k in keys if "/checkpoint_" in k and k.endswith("/model.keras")]
    assert {k.split("/")[-3] for k in checkpoints} == {"trial-0001", "trial-0002"}


def test_registered_version_lives_in_the_bucket_and_loads_through_the_server(s3_sweep, bucket):
    import mlflow

    outcome, client = s3_sweep
    reg = outcome.registration
    assert any(k.endswith("/model.keras") for k in _keys(bucket, "mlflow/"))
    mlflow.set_tracking_uri(outcome.tracking_uri)
    model = mlflow.pyfunc.load_model(f"models:/{reg.model_name}/{reg.version}")
    assert holdout_rmse(model, outcome.spec) == pytest.approx(reg.value, rel=1e-5)


def test_sweep_ls_against_a_plain_server_prints_no_library_warning(s3_sweep, proxy_server):
    """The sagemaker-mlflow plugin's request-header provider would warn on every request to a
    non-ARN server (aws/sagemaker-mlflow#15); `sweep ls` prints its table and nothing else."""
    import subprocess

    from helpers import cli_env, sweep_command

    done = subprocess.run(
        sweep_command("ls", "--tracking-uri", proxy_server),
        env=cli_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "abalone-" in done.stdout
    assert done.stderr == ""


def test_parent_run_records_the_s3_data_source(s3_sweep):
    outcome, client = s3_sweep
    tags = client.get_run(outcome.parent_run_id).data.tags
    assert tags["data.source"] == f"s3://{BUCKET}/{DATA_KEY}"


def test_no_aws_credentials_in_params_tags_or_artifacts(s3_sweep, tmp_path):
    outcome, client = s3_sweep
    texts = []
    for run in client.search_runs([outcome.experiment_id]):
        texts += [*run.data.params.values(), *run.data.tags.values(), *run.data.params]
        folder = client.download_artifacts(run.info.run_id, "", str(tmp_path / run.info.run_id))
        for root, _, files in os.walk(folder):
            for name in files:
                with open(os.path.join(root, name), "rb") as fh:
                    texts.append(fh.read().decode("latin-1"))
    reg = outcome.registration
    texts += list(client.get_model_version(reg.model_name, reg.version).tags.values())
    blob = "\n".join(texts)
    assert DUMMY_ACCESS_KEY not in blob
    assert DUMMY_SECRET_KEY not in blob


def test_no_aws_credentials_anywhere_the_sweep_wrote(s3_sweep, bucket, proxy_folder):
    """Every object in the bucket (the MLflow artifact store with the model's files, Tune's
    state and checkpoints), every file of the tracking server (its database and log), and the
    sweep's console output."""
    outcome, _ = s3_sweep
    blobs = {"console": outcome.console_text.encode()}
    for key in _keys(bucket, ""):
        blobs[key] = bucket.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    assert any("/models/" in k or k.startswith("mlflow/") for k in blobs)  # the model's files
    for path in proxy_folder.rglob("*"):
        if path.is_file():
            blobs[str(path)] = path.read_bytes()
    for where, blob in blobs.items():
        assert DUMMY_ACCESS_KEY.encode() not in blob, where
        assert DUMMY_SECRET_KEY.encode() not in blob, where


# ------------------------------------------------------------------ SageMaker managed MLflow


@pytest.fixture(scope="module")
def sagemaker_like_server(bucket, s3_endpoint, tmp_path_factory):
    """A local stand-in for a SageMaker MLflow server: artifacts go straight to S3 from the
    client (no proxying), as with the managed service."""
    folder = tmp_path_factory.mktemp("mlflow-sagemaker")
    args = ("--default-artifact-root", f"s3://{BUCKET}/sagemaker-mlflow", "--no-serve-artifacts")
    with mlflow_server(folder, *args, env=dict(os.environ)) as url:
        yield url


@pytest.mark.parametrize("kind", ["mlflow-tracking-server", "mlflow-app"])
def test_arn_tracking_uri_goes_through_the_sagemaker_plugin(
    kind, ray_session, sagemaker_like_server, tmp_path, monkeypatch
):
    monkeypatch.setenv("SAGEMAKER_MLFLOW_CUSTOM_ENDPOINT", sagemaker_like_server)
    arn = f"arn:aws:sagemaker:us-east-1:123456789012:{kind}/sweeps-test"
    overrides = small_spec_overrides(
        tmp_path,
        **{
            "search.num_samples": 1,
            "search.space.epochs": 1,
            "tracking.uri": arn,
            "experiment": f"arn-{kind}",
            "register.model_name": f"abalone-{kind}",
        },
    )
    outcome = run_sweep(load_spec(DEFAULT_SPEC, overrides))

    plain = MlflowClient(sagemaker_like_server)  # read back without the plugin
    experiment = plain.get_experiment_by_name(f"arn-{kind}")
    runs = plain.search_runs([experiment.experiment_id])
    assert len(runs) == 2  # the parent and its one trial
    version = plain.get_model_version(f"abalone-{kind}", outcome.registration.version)
    assert version.run_id in {r.info.run_id for r in runs}
    assert "Model Registry" in outcome.registry_note


# ------------------------------------------------------------------ preflight failures

runner = CliRunner()


def _validate(*overrides: str):
    args = ["validate", str(DEFAULT_SPEC)]
    for override in overrides:
        args += ["--set", override]
    return runner.invoke(app, args)


def _assert_one_line_error(result, expected: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert expected in result.output, result.output


def test_missing_bucket_is_named(bucket, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = _validate("storage=s3://no-such-bucket/sweeps")
    _assert_one_line_error(
        result, "storage: cannot write to s3://no-such-bucket/sweeps: no such bucket"
    )


def test_a_parquet_table_in_s3_is_read(bucket, tmp_path, monkeypatch):
    import io

    monkeypatch.chdir(tmp_path)
    body = io.BytesIO()
    load_dataset("builtin:abalone", SCHEMA).frame.head(400).to_parquet(body)
    bucket.put_object(Bucket=BUCKET, Key="data/abalone.parquet", Body=body.getvalue())
    result = _validate(
        f"data.source=s3://{BUCKET}/data/abalone.parquet",
        f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}",
    )
    assert result.exit_code == 0, result.output
    assert f"s3://{BUCKET}/data/abalone.parquet: 400 rows" in result.output


def test_missing_data_object_is_named(bucket, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = _validate(f"data.source=s3://{BUCKET}/data/nope.csv")
    _assert_one_line_error(result, f"data.source: cannot read s3://{BUCKET}/data/nope.csv")


def test_stopped_tracking_server_is_named(bucket, tmp_path, monkeypatch, sagemaker_like_server):
    from servers import free_port

    monkeypatch.chdir(tmp_path)
    stopped = f"http://127.0.0.1:{free_port()}"
    _assert_one_line_error(
        _validate(f"tracking.uri={stopped}"), f"MLflow server {stopped}: connection refused"
    )


def test_unreachable_sagemaker_endpoint_is_named(bucket, tmp_path, monkeypatch):
    from servers import free_port

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SAGEMAKER_MLFLOW_CUSTOM_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    arn = "arn:aws:sagemaker:us-east-1:123456789012:mlflow-tracking-server/gone"
    _assert_one_line_error(_validate(f"tracking.uri={arn}"), f"tracking.uri: {arn} does not answer")


def test_no_credentials_are_reported(bucket, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    result = _validate(f"storage=s3://{BUCKET}/sweeps")
    _assert_one_line_error(result, "no AWS credentials found")


def test_bad_credentials_are_reported(tmp_path, monkeypatch):
    """A second S3 API that checks credentials: the dummy key is unknown to it."""
    monkeypatch.chdir(tmp_path)
    with moto_server(tmp_path / "moto-auth.log", INITIAL_NO_AUTH_ACTION_COUNT="0") as url:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", url)
        result = _validate(f"storage=s3://{BUCKET}/sweeps")
    _assert_one_line_error(result, "invalid AWS access key")
