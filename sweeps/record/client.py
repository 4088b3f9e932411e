"""MLflow client helpers: resolve, print and open a tracking URI; find or create the
experiment; the git commit; the dataset record (the one call into MLflow's private API)."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from filelock import FileLock

from sweeps.environment import temporarily
from sweeps.record.store_template import create_local_store

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


#: ``scheme://user:password@`` (or ``scheme://token@``) in any text.
_CREDENTIALS_IN_URL = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s@'\"]+@")


def redact_uri(uri: str) -> str:
    """``uri`` without any ``user:password@`` part, for printing."""
    return scrub_urls(uri)


def scrub_urls(text: str) -> str:
    """``text`` with the credentials of every URL in it replaced by ``***``."""
    return _CREDENTIALS_IN_URL.sub(r"\g<scheme>***@", text)


def make_client(uri: str) -> MlflowClient:
    """An MlflowClient for ``uri``, also set as the process-wide tracking URI.

    The sagemaker-mlflow plugin signs requests for the ARN in the *global* tracking URI, not
    the client's (see aws/sagemaker-mlflow#15), so the driver sets both; it is the only
    MLflow user in the process.
    """
    import mlflow

    _sagemaker_headers_for_arns_only()
    mlflow.set_tracking_uri(uri)
    if not uri.startswith("sqlite:///"):
        return mlflow.MlflowClient(tracking_uri=uri)
    # A new SQLite store creates its tables on first use; two sweeps doing that at once collide
    # ("table experiments already exists", or alembic's "Online migration expected to match one
    # row"). One process at a time, until both the tracking and the registry store are made.
    db_file = Path(uri.removeprefix("sqlite:///"))
    db_file.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{db_file}.lock"):
        create_local_store(db_file)
        client = mlflow.MlflowClient(tracking_uri=uri)
        client.search_experiments(max_results=1)
        client.search_registered_models(max_results=1)
    return client


def _sagemaker_headers_for_arns_only() -> None:
    """The sagemaker-mlflow plugin's request-header provider claims every tracking URI and
    fails on any that is not an ARN, so MLflow warns ("Encountered unexpected error during
    resolving request headers: list index out of range") on each request to a plain server
    (aws/sagemaker-mlflow#15). Limit it to ARNs, where it is needed."""
    try:
        from sagemaker_mlflow.mlflow_sagemaker_request_header_provider import (
            MlflowSageMakerRequestHeaderProvider as Provider,
        )
    except ImportError:
        return

    def in_context(self: object) -> bool:
        import mlflow

        return mlflow.get_tracking_uri().startswith("arn:")

    Provider.in_context = in_context  # type: ignore[method-assign]


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
