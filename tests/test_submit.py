"""``sweep submit`` / ``status`` / ``logs`` before any cluster answers: what is checked locally,
and how an unreachable cluster is reported. The way to a real cluster is in
test_cluster_launcher.py."""

from __future__ import annotations

import os
import shlex
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from helpers import DEFAULT_SPEC, REPO
from servers import free_port

from sweeps.cluster.submit import entrypoint, is_job_id

#: A spec whose record leaves the cluster (checked only in form by `sweep submit`).
REMOTE = ["--set", "tracking.uri=http://10.0.0.5:5000", "--set", "storage=s3://bucket/sweeps"]


def sweep(*args: str, cwd=REPO) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    return subprocess.run(
        ["sweep", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def nothing_listening() -> str:
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def not_a_ray_dashboard() -> Iterator[str]:
    """An HTTP server that answers every request with 404."""

    class NotFound(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            self.send_error(404)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_the_job_runs_sweep_run_with_the_same_spec_and_overrides():
    overrides = ["tracking.uri=http://10.0.0.5:5000", "search.space.units={choice: [32, 64]}"]
    command = entrypoint("trainable/families/abalone.yaml", overrides)
    assert shlex.split(command) == [
        "sweep", "run", "trainable/families/abalone.yaml",
        "--set", "tracking.uri=http://10.0.0.5:5000",
        "--set", "search.space.units={choice: [32, 64]}",
    ]  # fmt: skip


def test_without_a_spec_the_job_runs_the_packaged_default():
    assert entrypoint(None, []) == "sweep run"


def test_unreachable_cluster_is_one_line_and_exit_2(nothing_listening):
    done = sweep("submit", *REMOTE, "--address", nothing_listening)
    assert done.returncode == 2
    assert done.stderr.startswith(
        f"error: --address: cannot reach the Ray Jobs API at {nothing_listening}"
    )
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_a_server_that_is_not_ray_is_named_as_such(not_a_ray_dashboard):
    done = sweep("submit", *REMOTE, "--address", not_a_ray_dashboard)
    assert done.returncode == 2
    assert "it answers, but not as a Ray dashboard" in done.stderr


def test_the_spec_is_checked_before_the_cluster_is_contacted(nothing_listening):
    done = sweep("submit", str(DEFAULT_SPEC), "--set", "search.num_samples=0",
                 "--address", nothing_listening)  # fmt: skip
    assert done.returncode == 2
    assert "search.num_samples" in done.stderr and "--address" not in done.stderr


def test_a_spec_outside_the_shipped_folder_is_refused(tmp_path, nothing_listening):
    spec = tmp_path / "mine.yaml"
    spec.write_text(DEFAULT_SPEC.read_text())
    done = sweep("submit", str(spec), *REMOTE, "--address", nothing_listening)
    assert done.returncode == 2
    assert "outside the working folder" in done.stderr


def test_a_local_mlflow_store_or_storage_on_a_cluster_is_refused(nothing_listening):
    done = sweep("submit", str(DEFAULT_SPEC), "--address", nothing_listening)
    assert done.returncode == 2
    assert "error: tracking.uri (not set): on the cluster this is a local MLflow store" in (
        done.stderr
    )
    assert "error: storage (./sweep-results): a folder on the head node" in done.stderr
    assert "--allow-local" in done.stderr and "--address" not in done.stderr


def test_allow_local_submits_a_local_store_with_a_warning(nothing_listening):
    done = sweep("submit", str(DEFAULT_SPEC), "--allow-local", "--address", nothing_listening)
    assert done.returncode == 2
    assert "cannot reach the Ray Jobs API" in done.stderr  # got past the check to the cluster


def test_key_and_credential_files_are_never_uploaded(tmp_path):
    """The working folder as Ray packages it for the job, with the excludes `submit` passes."""
    import zipfile

    from ray._private.runtime_env.packaging import create_package

    from sweeps.cluster.submit import EXCLUDES

    secrets = [".env", ".env.production", "deploy.pem", "tls.key", "id_rsa", "id_ed25519.pub",
               ".aws/credentials", ".ssh/config", "credentials.json", ".netrc",
               ".git-credentials", ".kube/config", ".docker/config.json", ".pypirc", ".npmrc",
               ".envrc", ".s3cfg", ".boto", "gcloud/application_default_credentials.json",
               "infra/terraform.tfstate", "infra/terraform.tfstate.backup",
               ".ray/bootstrap_config.yaml"]  # fmt: skip
    kept = ["spec.yaml", "model.py", "data/table.csv", "notes/keys.md"]
    work = tmp_path / "work"
    for name in secrets + kept:
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text("x")
    package = tmp_path / "package.zip"
    create_package(str(work), package, include_gitignore=True, excludes=EXCLUDES)
    packed = {n for n in zipfile.ZipFile(package).namelist() if not n.endswith("/")}
    assert packed == set(kept)


def test_the_home_folder_is_refused_as_the_working_folder(tmp_path, nothing_listening):
    home = tmp_path / "home"
    home.mkdir()
    (home / "spec.yaml").write_text(DEFAULT_SPEC.read_text())
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | {"HOME": str(home)}
    done = subprocess.run(
        ["sweep", "submit", "spec.yaml", *REMOTE, "--address", nothing_listening],
        cwd=home, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert f"the working folder is {home}" in done.stderr
    assert "--address" not in done.stderr and "Traceback" not in done.stderr


def test_status_of_a_job_id_asks_the_cluster(nothing_listening):
    done = sweep("status", "raysubmit_abc", "--address", nothing_listening)
    assert done.returncode == 2
    assert done.stderr.startswith("error: --address: cannot reach the Ray Jobs API")


def test_logs_of_an_unreachable_cluster_is_one_line_and_exit_2(nothing_listening):
    done = sweep("logs", "raysubmit_abc", "--address", nothing_listening)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_job_ids_are_told_apart_from_sweep_names():
    assert is_job_id("raysubmit_4LamXRuQpYdSMg7J")
    assert not is_job_id("abalone-20261127-171346")
    assert not is_job_id(None)


@pytest.fixture
def token_protected() -> Iterator[str]:
    """An HTTP server that answers every request with 401, as a Ray dashboard with token
    authentication answers a caller without the token."""

    class Unauthorized(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            self.send_error(401)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Unauthorized)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_a_cluster_that_wants_its_token_says_how_to_give_it(token_protected):
    done = sweep("submit", *REMOTE, "--address", token_protected)
    assert done.returncode == 2
    assert "needs the cluster's token (HTTP 401)" in done.stderr
    assert "RAY_AUTH_TOKEN_PATH" in done.stderr


def test_a_password_in_an_override_is_refused_before_anything_is_sent(nothing_listening):
    done = sweep("submit", str(DEFAULT_SPEC), "--set", "tracking.uri=http://u:s3cret@10.0.0.5:5000",
                 "--set", "storage=s3://bucket/sweeps", "--address", nothing_listening)  # fmt: skip
    assert done.returncode == 2
    assert "tracking.uri: contains credentials" in done.stderr
    assert "s3cret" not in done.stderr and "--address" not in done.stderr
