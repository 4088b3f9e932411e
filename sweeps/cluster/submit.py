"""Send a sweep to a Ray cluster through the Ray Jobs API, and follow it there.

``sweep submit`` runs ``sweep run SPEC --set ...`` as a Ray job: the driver (Tune, Optuna, all
MLflow traffic) runs on the cluster's head, so the sweep goes on when the submitting laptop
sleeps or disconnects. The working folder travels with the job (Ray's ``working_dir``), so a
spec, a CSV or a trainable module next to it is there on the cluster too.

Ray is imported lazily: ``sweep --help`` stays fast.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sweeps.errors import UserError

T = TypeVar("T")

if TYPE_CHECKING:
    from ray.job_submission import JobDetails, JobSubmissionClient

    from sweeps.config.spec import SweepSpec

DEFAULT_ADDRESS = "http://127.0.0.1:8265"

#: Left out of the uploaded working folder (gitignore syntax; Ray also honours .gitignore):
#: local results and stores would be large, stale and useless on the cluster.
LOCAL_STATE = [
    ".git",
    "mlflow.db",
    "mlruns",
    "mlartifacts",
    "sweep-results",
    "__pycache__",
    ".venv",
]
#: Never uploaded, whatever .gitignore says: keys and credentials.
SECRETS = [
    ".env",
    ".env.*",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    ".ssh",
    ".aws",
    ".netrc",
    ".pgpass",
    "credentials",
    "credentials.json",
    "*.kubeconfig",
    ".git-credentials",
    ".kube",
    ".docker/config.json",
    ".pypirc",
    ".npmrc",
    ".envrc",
    ".s3cfg",
    ".boto",
    "application_default_credentials.json",  # gcloud
    "*.tfstate",
    "*.tfstate.*",
    ".ray",
]
EXCLUDES = LOCAL_STATE + SECRETS

#: Seconds Ray gives a stopped job between SIGTERM and SIGKILL (its default, 3, is too short to
#: end the trials and the MLflow runs cleanly).
STOP_GRACE_S = 30

#: Ray's client-side INFO lines ("Uploading package", "WebSocket closed") and its notice that
#: .git is excluded by default (we exclude it anyway).
CHATTY_LOGGERS = {
    "ray.dashboard.modules.dashboard_sdk": logging.WARNING,
    "ray.dashboard.modules.job.sdk": logging.WARNING,
    "ray._private.runtime_env": logging.WARNING,
    "ray._private.runtime_env.working_dir": logging.ERROR,
}

#: Seconds to wait for the Jobs API to answer before calling the address unreachable.
CONNECT_TIMEOUT_S = 10.0

#: How ``sweep run`` / ``sweep resume`` name the sweep and its MLflow parent run in their log.
_SWEEP_NAME = re.compile(r"^(?:resuming )?sweep (\S+?)(?::| from) ", re.MULTILINE)
_PARENT_RUN = re.compile(r"MLflow run ([0-9a-f]{32})")


@dataclass
class Submission:
    """A submitted sweep job."""

    job_id: str
    address: str
    entrypoint: str
    warnings: list[str]


def resolve_address(address: str | None) -> str:
    """The Jobs API address: ``address``, else ``$RAY_ADDRESS``, else the local dashboard port."""
    chosen = address or os.environ.get("RAY_ADDRESS") or DEFAULT_ADDRESS
    return chosen if "://" in chosen else f"http://{chosen}"


def connect(address: str | None) -> JobSubmissionClient:
    """A Jobs API client for the cluster at ``address`` (see :func:`resolve_address`).

    Raises:
        UserError: nothing answers there, or what answers is not a Ray dashboard.
    """
    import requests

    url = resolve_address(address)
    try:
        reply = requests.get(
            f"{url.rstrip('/')}/api/version", headers=_auth_headers(), timeout=CONNECT_TIMEOUT_S
        )
        if reply.status_code in (401, 403):
            raise _unauthorized(url, reply.status_code)
        reply.raise_for_status()
        reply.json()["ray_version"]
    except requests.ConnectionError:
        raise _unreachable(url, "connection refused or host unknown") from None
    except requests.Timeout:
        raise _unreachable(url, f"no answer within {CONNECT_TIMEOUT_S:.0f} s") from None
    except (requests.RequestException, ValueError, KeyError, TypeError):
        raise _unreachable(url, "it answers, but not as a Ray dashboard") from None

    from ray.job_submission import JobSubmissionClient

    for chatty, level in CHATTY_LOGGERS.items():
        logging.getLogger(chatty).setLevel(level)
    try:
        return JobSubmissionClient(url)
    except (ConnectionError, RuntimeError) as exc:
        raise _unreachable(url, str(exc)) from None


def entrypoint(spec: str | None, overrides: list[str] | None) -> str:
    """The shell command the job runs on the cluster: ``sweep run [SPEC] --set ...``."""
    words = ["sweep", "run"] + ([spec] if spec else [])
    for override in overrides or []:
        words += ["--set", override]
    return shlex.join(words)


def submit_sweep(
    spec: Path | None,
    overrides: list[str] | None,
    address: str | None,
    working_dir: Path | None = None,
    allow_local: bool = False,
) -> Submission:
    """Validate the spec here, then submit ``sweep run`` as a Ray job; returns at once.

    Only the spec itself is checked locally (``load_spec``): data paths, the tracking server and
    storage may resolve only on the cluster, where ``sweep run`` checks them before any trial.
    Key and credential files (:data:`SECRETS`) are never uploaded.

    Raises:
        UserError: the working folder is the home folder (or ``/``), the spec is invalid, lies
            outside the working folder, keeps its MLflow store or storage on the head's disk
            (unless ``allow_local``), or the cluster is unreachable or refuses the job.
    """
    from sweeps.config.spec import load_spec

    folder = (working_dir or Path.cwd()).resolve()
    if folder == Path.home().resolve() or folder == Path(folder.anchor):
        raise UserError(
            f"submit: the working folder is {folder}, which Ray would upload whole (keys, "
            "caches, every project); run `sweep submit` from the project's own folder"
        )
    loaded = load_spec(spec, overrides)
    relative = _relative_spec(spec, folder)
    local = _local_on_cluster(loaded)
    if local and not allow_local:
        raise UserError(*local, "pass --allow-local to run the sweep this way anyway")
    client = connect(address)
    command = entrypoint(relative, overrides)
    try:
        job_id = client.submit_job(
            entrypoint=command,
            runtime_env={
                "working_dir": str(folder),
                "excludes": EXCLUDES,
                "env_vars": {"RAY_JOB_STOP_WAIT_TIME_S": str(STOP_GRACE_S)},
            },
            metadata={"sweep": loaded.name, "submitted_by": "sweep submit"},
        )
    except (RuntimeError, ValueError, OSError) as exc:
        address = client.get_address()
        raise UserError(f"submit: the cluster at {address} refused the job: {exc}") from None
    return Submission(job_id, client.get_address(), command, local)


def follow_logs(address: str | None, job_id: str, write: Callable[[str], object]) -> JobDetails:
    """Stream the job's log through ``write`` until the job ends; returns its final details
    (status ``SUCCEEDED``, ``FAILED`` or ``STOPPED``, and Ray's message).

    Raises:
        UserError: the cluster is unreachable, has no such job, or the log stream broke off
            (the job itself goes on running on the cluster).
    """
    client = connect(address)
    try:
        client.get_job_status(job_id)
    except RuntimeError:
        raise _no_such_job(client, job_id) from None

    async def tail() -> None:
        async for chunk in client.tail_job_logs(job_id):
            write(chunk)

    try:
        asyncio.run(tail())
    except (RuntimeError, OSError) as exc:
        raise UserError(
            f"lost the log stream of job {job_id} ({exc}); the job goes on running on the "
            f"cluster: `sweep status {job_id}`, `sweep logs {job_id}`"
        ) from None
    return client.get_job_info(job_id)


def job_details(address: str | None, job_id: str) -> JobDetails:
    """What the cluster knows about a job: status, message, entrypoint, times.

    Raises:
        UserError: the cluster is unreachable or has no such job.
    """
    return _ask(address, job_id, lambda client: client.get_job_info(job_id))


def job_logs(address: str | None, job_id: str) -> str:
    """The job's log so far (the driver's stdout and stderr).

    Raises:
        UserError: the cluster is unreachable or has no such job.
    """
    return _ask(address, job_id, lambda client: client.get_job_logs(job_id))


def _ask(address: str | None, job_id: str, call: Callable[[Any], T]) -> T:
    """``call(client)`` on the cluster's Jobs API; a job the cluster does not know is a
    UserError."""
    client = connect(address)
    try:
        return call(client)
    except RuntimeError:
        raise _no_such_job(client, job_id) from None


def is_job_id(target: str | None) -> bool:
    """Whether ``target`` looks like a Ray job submission id (``raysubmit_...``)."""
    return bool(target) and target.startswith("raysubmit_")


def describe(details: JobDetails, log: str = "") -> list[tuple[str, str]]:
    """(label, value) rows for printing a job's details; with its ``log``, also the line in
    which the sweep names its MLflow parent run (for ``sweep status NAME``)."""
    rows = [
        ("job", details.submission_id or details.job_id or "?"),
        ("status", str(details.status)),
        ("message", first_line(details.message)),
        ("entrypoint", details.entrypoint or ""),
    ]
    name, run = _SWEEP_NAME.search(log), _PARENT_RUN.search(log)
    if name:
        rows.append(("sweep", name.group(1) + (f" (MLflow run {run.group(1)})" if run else "")))
    if details.start_time:
        rows.append(("started", _timestamp(details.start_time)))
    if details.end_time:
        rows.append(("ended", _timestamp(details.end_time)))
        if details.start_time:
            rows.append(("took", f"{(details.end_time - details.start_time) / 1000:.0f} s"))
    return rows


def first_line(message: str | None) -> str:
    """The first line of a Ray job message (a failed job's message goes on with its log)."""
    return (message or "").strip().split("\n", 1)[0]


def _relative_spec(spec: Path | None, folder: Path) -> str | None:
    """The spec's path inside the working folder, as the job on the cluster will see it."""
    if spec is None:
        return None  # the packaged default spec, installed on the cluster too
    try:
        return spec.resolve().relative_to(folder).as_posix()
    except ValueError:
        raise UserError(
            f"spec: {spec} is outside the working folder {folder}, which is what is sent to the "
            "cluster; run from a folder that contains it or pass --working-dir"
        ) from None


def _local_on_cluster(spec: SweepSpec) -> list[str]:
    """Settings that work locally but, on a cluster, keep the record on the head's disk."""
    from sweeps.record.client import is_local_store
    from sweeps.running import storage

    problems = []
    if spec.tracking.uri is None or is_local_store(spec.tracking.uri):
        where = spec.tracking.uri or "not set"
        problems.append(
            f"tracking.uri ({where}): on the cluster this is a local MLflow store on the head "
            "(or in the job's temporary folder): set tracking.uri to your MLflow server or "
            "SageMaker MLflow ARN"
        )
    if not storage.is_remote(spec.storage):
        problems.append(
            f"storage ({spec.storage}): a folder on the head node, lost with it, and not shared "
            "with the workers: set storage to s3://BUCKET/PREFIX"
        )
    return problems


def _auth_headers() -> dict[str, str]:
    """The cluster token as Ray's own clients send it, when ``RAY_AUTH_MODE=token``."""
    if os.environ.get("RAY_AUTH_MODE", "").lower() != "token":
        return {}
    # Ray's JobSubmissionClient adds the same header itself; this probe goes before it.
    from ray._private.authentication.http_token_authentication import (
        get_auth_headers_if_auth_enabled,
    )

    return dict(get_auth_headers_if_auth_enabled({}))


def _unauthorized(url: str, status: int) -> UserError:
    problem = "needs the cluster's token" if status == 401 else "refused the token"
    return UserError(
        f"--address: the Ray Jobs API at {url} {problem} (HTTP {status}): export "
        "RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH=~/.ray/sweeps-cluster-token (the token "
        "`ray up` copied to the cluster; see cluster.yaml)"
    )


def _unreachable(url: str, cause: str) -> UserError:
    return UserError(
        f"--address: cannot reach the Ray Jobs API at {url}: {cause} (is the cluster up? "
        "`ray dashboard cluster.yaml` forwards it to http://127.0.0.1:8265)"
    )


def _no_such_job(client: JobSubmissionClient, job_id: str) -> UserError:
    return UserError(f"job {job_id}: no such job on the cluster at {client.get_address()}")


def _timestamp(millis: int) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(millis / 1000))
