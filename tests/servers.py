"""Real local servers for tests, bound to 127.0.0.1: an S3 API (moto) and MLflow."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: Distinctive dummy credentials: tests assert they never show up in MLflow.
DUMMY_ACCESS_KEY = "AKIASWEEPTESTDUMMY01"
DUMMY_SECRET_KEY = "sweep-test-dummy-secret-never-logged"
REGION = "us-east-1"


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A free port on 127.0.0.1 that this test process has not handed out before.

    The kernel may give back a port it just gave (the socket is closed before the caller
    binds it), so several ports asked for at once could collide: Ray refuses to start when
    two of its components get the same number.
    """
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def fake_aws_env(s3_endpoint: str) -> dict[str, str]:
    """AWS environment pointing every S3 and SageMaker call at the local moto server."""
    return {
        "AWS_ACCESS_KEY_ID": DUMMY_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET_KEY,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL_S3": s3_endpoint,
        "AWS_ENDPOINT_URL_SAGEMAKER": s3_endpoint,
        "AWS_EC2_METADATA_DISABLED": "true",  # never probe the instance metadata address
    }


def wait_for_http(url: str, timeout_s: float = 60, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server for {url} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout_s}s")


@contextmanager
def moto_server(log: Path, **env: str) -> Iterator[str]:
    """moto's server on a free loopback port; yields its endpoint URL."""
    port = free_port()
    with open(log, "w") as out:
        proc = subprocess.Popen(
            # The moto of the Python running the tests, not the first `moto_server` on PATH
            # (another install's, perhaps older, when the venv is not activated).
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for_http(f"{url}/moto-api/", proc=proc)
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=20)


def start_mlflow_server(
    folder: Path, port: int, *artifact_args: str, env: dict[str, str]
) -> subprocess.Popen:
    """Start ``mlflow server`` with its SQLite store in ``folder``; return once it answers.

    Starting it again on the same folder and port brings the same server back. A new store is
    the product's own copy of its cached template, so this also shows ``mlflow server`` takes it.
    """
    from sweeps.record.store_template import create_local_store

    folder.mkdir(parents=True, exist_ok=True)  # for the log, even where no template can be had
    create_local_store(folder / "mlflow.db")  # a copy of the cached template: no migrations
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
        *artifact_args,
    ]  # fmt: skip
    # No job runner: MLflow 3 starts four `huey` consumer processes per server for its GenAI
    # jobs, which the sweeper never uses (about 10 CPU seconds per server start).
    env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **env}
    with open(folder / "server.log", "a") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    wait_for_http(f"http://127.0.0.1:{port}/health", proc=proc)
    return proc


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(timeout=30)


@contextmanager
def mlflow_server(folder: Path, *artifact_args: str, env: dict[str, str]) -> Iterator[str]:
    """``mlflow server`` (SQLite backend) on a free loopback port; yields its URL."""
    port = free_port()
    proc = start_mlflow_server(folder, port, *artifact_args, env=env)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_server(proc)


class FaultyProxy:
    """An HTTP proxy on 127.0.0.1 in front of a real server that answers ``status`` to every
    request whose path contains one of ``failing`` (set it while the proxy runs): a server
    that is up but fails some calls, as a load balancer in front of MLflow can."""

    def __init__(self, target: str) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        import requests

        self.target = target.rstrip("/")
        self.failing: tuple[str, ...] = ()
        self.status = 503
        proxy = self

        class Forward(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if any(part in self.path for part in proxy.failing):
                    self.send_response(proxy.status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                reply = requests.request(
                    self.command, proxy.target + self.path, data=body, headers=headers
                )
                self.send_response(reply.status_code)
                for key, value in reply.headers.items():
                    if key.lower() not in ("transfer-encoding", "content-encoding", "connection"):
                        self.send_header(key, value)
                self.end_headers()
                self.wfile.write(reply.content)

            do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _answer  # noqa: N815

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Forward)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
