"""MLflow client helpers: resolve, print and open a tracking URI; find or create the
experiment; the git commit; the dataset record (the one call into MLflow's private API)."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from sweeps.environment import temporarily

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from trainable.tables import Dataset

LOCAL_STORE_FILE = "mlflow.db"
#: What :func:`quick_requests` sets: fail fast instead of MLflow's minutes of HTTP retries.
QUICK_REQUESTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "15"}


@contextlib.contextmanager
def quick_requests() -> Iterator[None]:
    """MLflow HTTP calls inside fail within seconds instead of minutes of retries."""
    with temporarily(QUICK_REQUESTS):
        yield


def resolve_tracking_uri(spec_uri: str | None, cwd: Path | None = None) -> str:
    """The spec's URI, else ``MLFLOW_TRACKING_URI``, else a SQLite store in the working folder."""
    uri = spec_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{(cwd or Path.cwd()).resolve() / LOCAL_STORE_FILE}"


def redact_uri(uri: str) -> str:
    """``uri`` without any ``user:password@`` part, for printing."""
    if "@" in uri and "://" in uri:
        scheme, rest = uri.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return uri


def make_client(uri: str) -> MlflowClient:
    """An MlflowClient for ``uri``, also set as the process-wide tracking URI.

    The sagemaker-mlflow plugin signs requests for the ARN in the *global* tracking URI, not
    the client's (see aws/sagemaker-mlflow#15), so the driver sets both; it is the only
    MLflow user in the process.
    """
    import mlflow

    mlflow.set_tracking_uri(uri)
    return mlflow.MlflowClient(tracking_uri=uri)


def is_local_store(uri: str) -> bool:
    """A store that this process reads and writes directly (no server)."""
    if uri.startswith(("sqlite:", "file:")):
        return True
    return "://" not in uri and not uri.startswith(("arn:", "databricks"))


def git_commit(folder: Path | None = None) -> str | None:
    """The commit checked out in ``folder`` (the working folder), if it is a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=folder or Path.cwd(),
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def local_artifact_location(uri: str) -> str | None:
    """For a local SQLite store, ``mlruns`` beside the database file (MLflow's own default is
    ``./mlruns`` in whatever folder the first run happened in); None for servers."""
    if not uri.startswith("sqlite:///"):
        return None
    return str(Path(uri.removeprefix("sqlite:///")).resolve().parent / "mlruns")


def ensure_experiment(client: MlflowClient, name: str, artifact_location: str | None = None) -> str:
    """The id of experiment ``name``, created if missing (once, on the driver: mlflow#4123)."""
    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            client.restore_experiment(experiment.experiment_id)
        return experiment.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifact_location)
    except MlflowException:  # created meanwhile by another sweep
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


def dataset_input(dataset: Dataset):
    import mlflow.data
    from mlflow.entities import DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    from trainable.tables import source_origin

    ds = mlflow.data.from_pandas(
        dataset.frame,
        source=source_origin(dataset.source),
        targets=dataset.target,
        name=Path(dataset.source.split(":")[-1]).stem or "data",
        digest=dataset.sha256[:16],
    )
    return DatasetInput(
        dataset=ds._to_mlflow_entity(),
        tags=[
            InputTag(MLFLOW_DATASET_CONTEXT, "training"),
            InputTag("sha256", dataset.sha256),
        ],
    )
