"""The real cluster launcher path, end to end, on this machine: ``ray up`` -> ``sweep submit``
-> ``ray down``.

``ray up`` logs in over SSH (Ray's ``local`` provider, an ``sshd`` on 127.0.0.1) as an
unprivileged user created for the test, runs cluster.yaml's setup and head start commands
there, and starts a head whose Jobs API ``sweep submit`` then sends a tiny sweep to. The sweep's
driver runs on that head as that user and logs every trial to an MLflow server of the test's
own; ``ray down`` stops it all. Only the AWS parts differ from cluster.yaml: the provider, the
SSH login, no docker section (no docker daemon here) and private ports, so this Ray never meets
the test session's.

Needs root (``useradd``, ``sshd``) and Debian's ``openssh-server``, ``rsync`` and ``acl``, which
.ci/run installs.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import REPO, TESTS
from ray_nodes import worker_port_range
from servers import free_port, mlflow_server

SSHD = "/usr/sbin/sshd"
TOOLS = ("useradd", "userdel", "setfacl", "ssh", "ssh-keygen", "rsync", "ray", "sweep")
RAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
#: The login user's shell is a cluster node's: token authentication on, as cluster.yaml's
#: `-e RAY_AUTH_MODE=token` sets it in the container. (Debian's bash sources ~/.bashrc even for
#: `bash -c` under SSH, and Ray starts its workers with `bash -c`.)
NODE_ENV = RAY_ENV | {"RAY_AUTH_MODE": "token"}
TOKEN_TARGET = "~/.ray/auth_token"  # where cluster.yaml's file_mounts put the cluster's token
TRIALS = 2

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists(SSHD) or not all(map(shutil.which, TOOLS)),
    reason="needs root, Debian openssh-server, rsync and acl (.ci/run installs them)",
)


@dataclass
class LoginUser:
    """An unprivileged user who can run this Python (and so ``ray`` and ``sweep``)."""

    name: str
    home: Path
    uid: int


@dataclass
class Sshd:
    port: int
    key: Path  # the private key that logs in as the user


@dataclass
class Head:
    """The head ``ray up`` started."""

    config: Path
    dashboard: str  # the Jobs API, http://127.0.0.1:PORT
    up_log: str
    down: Callable[[], subprocess.CompletedProcess[str]]
    token: Path  # the cluster's token on "the user's machine"


# --- helpers ----------------------------------------------------------------------------------


def run(
    command: list[str], token: Path | None = None, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """Run a command with the Ray settings every ``ray``/``sweep`` call here needs; with
    ``token``, as cluster.yaml tells the user to call the cluster's Jobs API."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | RAY_ENV
    if token:
        env |= {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
    return subprocess.run(command, env=env, capture_output=True, text=True, **kwargs)


def processes_of(user: str) -> list[str]:
    done = subprocess.run(["pgrep", "-a", "-u", user], capture_output=True, text=True)
    return done.stdout.splitlines()


def untraversable_ancestors(*paths: Path) -> list[Path]:
    """Folders on the way to ``paths`` that other users may not enter (e.g. /root, 0700)."""
    folders = {parent for path in paths for parent in path.resolve().parents}
    return sorted(f for f in folders if not f.stat().st_mode & stat.S_IXOTH)


def head_start_commands(ports: dict[str, int], temp_dir: Path) -> list[str]:
    """cluster.yaml's head start commands, on private loopback ports and a private temp dir.

    Every substitution must hit, so a change to cluster.yaml's commands shows up here.
    """
    commands = yaml.safe_load((REPO / "cluster.yaml").read_text())["head_start_ray_commands"]
    start = next(c for c in commands if "ray start --head" in c)
    for pattern, value in {
        r"--port=\d+": f"--port={ports['port']}",
        r"--object-manager-port=\d+": f"--object-manager-port={ports['object-manager-port']}",
        r"--dashboard-host=\S+": "--dashboard-host=127.0.0.1",
    }.items():
        start, hits = re.subn(pattern, value, start)
        assert hits == 1, f"cluster.yaml's `ray start --head` has no {pattern}"
    extra = " ".join(
        f"--{flag}={port}"
        for flag, port in ports.items()
        if flag not in {"port", "object-manager-port"}
    )
    start += (
        f" --node-ip-address=127.0.0.1 --temp-dir={temp_dir} --num-cpus={TRIALS} {extra}"
        f" --max-worker-port={ports['min-worker-port'] + 100}"
    )
    return [start if "ray start --head" in c else c for c in commands]


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def login_user() -> Iterator[LoginUser]:
    """A fresh unprivileged user with its home in /tmp, removed with all its processes after.

    This Python lives under /root (mode 0700) here, so the user gets an ACL entry that lets it
    pass through (``--x``, not read) each such folder on the way to the interpreter and the
    repository, and nothing else; the entries go when the user does.
    """
    name = f"sweeptest{secrets.token_hex(3)}"
    base = Path(tempfile.mkdtemp(prefix=f"{name}-", dir="/tmp"))
    base.chmod(0o755)
    home = base / "home"
    subprocess.run(
        ["useradd", "--create-home", "--home-dir", str(home), "--shell", "/bin/bash",
         "--user-group", "--password", "*", name],  # "*": no password, yet not locked for sshd
        check=True,
    )  # fmt: skip
    granted = untraversable_ancestors(Path(sys.executable), Path(sys.prefix), REPO)
    try:
        for folder in granted:
            subprocess.run(["setfacl", "-m", f"u:{name}:x", str(folder)], check=True)
        # Ray runs every remote command in `bash --login -i` after `source ~/.bashrc`.
        (home / ".bashrc").write_text(
            f"export PATH={Path(sys.executable).parent}:$PATH\n"
            + "".join(f"export {k}={v}\n" for k, v in NODE_ENV.items())
            + "export TF_CPP_MIN_LOG_LEVEL=2\n"
        )
        uid = int(subprocess.check_output(["id", "-u", name], text=True))
        os.chown(home / ".bashrc", uid, uid)
        yield LoginUser(name, home, uid)
    finally:
        subprocess.run(["pkill", "-KILL", "-u", name], check=False)
        for folder in granted:
            subprocess.run(["setfacl", "-x", f"u:{name}", str(folder)], check=False)
        subprocess.run(["userdel", "--remove", name], check=False, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def sshd(login_user: LoginUser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    """An sshd of the test's own on a free 127.0.0.1 port, admitting only ``login_user`` by key."""
    folder = tmp_path_factory.mktemp("sshd")
    for key in ("host_key", "login_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / key)],
                       check=True)  # fmt: skip
    ssh_dir = login_user.home / ".ssh"
    ssh_dir.mkdir(mode=0o700)
    shutil.copy(folder / "login_key.pub", ssh_dir / "authorized_keys")
    for path in (ssh_dir, ssh_dir / "authorized_keys"):
        os.chown(path, login_user.uid, login_user.uid)
    port = free_port()
    config = folder / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {folder / 'host_key'}\n"
        f"PidFile {folder / 'sshd.pid'}\nAllowUsers {login_user.name}\nUsePAM no\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "AuthorizedKeysFile .ssh/authorized_keys\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation folder
    with open(folder / "sshd.log", "w") as log:
        proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, (folder / "sshd.log").read_text()
                assert time.monotonic() < deadline, "sshd did not listen within 20 s"
                time.sleep(0.2)
        yield Sshd(port, folder / "login_key")
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.fixture(scope="module")
def head(login_user: LoginUser, sshd: Sshd, tmp_path_factory: pytest.TempPathFactory):
    """``ray up -y --no-config-cache`` of a cluster.yaml twin on 127.0.0.1; ``ray down`` after."""
    source = yaml.safe_load((REPO / "cluster.yaml").read_text())
    names = ["port", "object-manager-port", "node-manager-port", "dashboard-port",
             "ray-client-server-port", "dashboard-agent-listen-port", "dashboard-agent-grpc-port",
             "runtime-env-agent-port", "metrics-export-port"]  # fmt: skip
    ports = {name: free_port() for name in names}
    ports["min-worker-port"] = worker_port_range(100)
    cluster_name = f"sweeps-{login_user.name}"
    # The user's token file, as cluster.yaml's header creates it (here in a temp folder).
    token = tmp_path_factory.mktemp("token") / "sweeps-cluster-token"
    token.write_text(secrets.token_hex(32) + "\n")
    token.chmod(0o600)
    assert list(source["file_mounts"]) == [TOKEN_TARGET]
    config = {
        "cluster_name": cluster_name,
        "max_workers": 0,
        "upscaling_speed": source["upscaling_speed"],
        "idle_timeout_minutes": source["idle_timeout_minutes"],
        "provider": {"type": "local", "head_ip": "127.0.0.1", "worker_ips": []},
        "auth": {
            "ssh_user": login_user.name,
            "ssh_private_key": str(sshd.key),
            # Ray has no SSH port setting; ssh and rsync reach the port through this.
            "ssh_proxy_command": f"{sys.executable} {TESTS / 'ssh_relay.py'} 127.0.0.1 {sshd.port}",
        },
        # As in cluster.yaml, minus the docker login (no docker here).
        "initialization_commands": [],
        "file_mounts": {TOKEN_TARGET: str(token)},
        **{key: source[key] for key in ("setup_commands", "head_setup_commands",
                                        "worker_setup_commands", "worker_start_ray_commands")},
        "head_start_ray_commands": head_start_commands(ports, login_user.home / "ray"),
    }  # fmt: skip
    path = tmp_path_factory.mktemp("cluster") / "cluster.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))

    def down() -> subprocess.CompletedProcess[str]:
        return run(["ray", "down", "-y", str(path)], timeout=180)

    up = run(["ray", "up", "-y", "--no-config-cache", str(path)], timeout=300)
    try:
        assert up.returncode == 0, (up.stdout + up.stderr)[-4000:]
        dashboard = f"http://127.0.0.1:{ports['dashboard-port']}"
        yield Head(path, dashboard, up.stdout + up.stderr, down, token)
    finally:
        down()
        for suffix in ("lock", "state"):  # the local provider's record of the cluster
            Path(tempfile.gettempdir(), "ray", f"cluster-{cluster_name}.{suffix}").unlink(
                missing_ok=True
            )


@pytest.fixture(scope="module")
def tracking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An MLflow server on 127.0.0.1 that the cluster's driver logs to."""
    folder = tmp_path_factory.mktemp("mlflow")
    artifacts = ("--artifacts-destination", str(folder / "artifacts"))
    with mlflow_server(folder, *artifacts, env=dict(os.environ)) as url:
        yield url


@pytest.fixture(scope="module")
def submitted(head: Head, tracking: str, login_user: LoginUser) -> subprocess.CompletedProcess:
    """``sweep submit`` of a 2-trial, 2-epoch sweep from the repository, followed to its end."""
    return run(
        ["sweep", "submit", "trainable/families/abalone.yaml", "--address", head.dashboard,
         "--set", f"search.num_samples={TRIALS}", "--set", f"search.max_concurrent={TRIALS}",
         "--set", "search.space.epochs=2", "--set", "search.scheduler=null",
         "--set", f"tracking.uri={tracking}", "--set", f"storage={login_user.home / 'results'}",
         "--allow-local"],  # one node: the head's own disk is the storage
        token=head.token,
        cwd=REPO,
        timeout=300,
    )  # fmt: skip


@pytest.fixture(scope="module")
def job_id(submitted: subprocess.CompletedProcess) -> str:
    match = re.search(r"submitted job (raysubmit_\w+)", submitted.stderr)
    assert match, submitted.stderr[-3000:]
    return match.group(1)


# --- tests, in the order of a user's session --------------------------------------------------


def test_ray_up_runs_the_setup_commands_and_starts_ray_as_the_ssh_user(head, login_user):
    assert 'python -c "import ray, sweeps, trainable"' in head.up_log
    assert any("raylet" in line for line in processes_of(login_user.name))


def test_submit_follows_the_sweep_to_success_on_the_cluster(submitted):
    assert submitted.returncode == 0, (submitted.stdout + submitted.stderr)[-4000:]
    assert f"{TRIALS} trials (0 failed)" in submitted.stdout  # the driver's summary, streamed
    assert "Registered: abalone-age version 1" in submitted.stdout


def test_the_driver_ran_on_the_head_as_the_ssh_user(submitted, login_user):
    results = login_user.home / "results"
    assert results.is_dir() and results.stat().st_uid == login_user.uid


def test_every_trial_is_a_child_run_in_the_tracking_server(submitted, tracking):
    from mlflow import MlflowClient

    client = MlflowClient(tracking)
    experiment = client.get_experiment_by_name("abalone-tensorflow-experiment")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1
    assert len(children) == TRIALS
    for child in children:
        assert child.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        assert child.info.status == "FINISHED"
        history = client.get_metric_history(child.info.run_id, "val_rmse")
        assert [m.step for m in history] == [1, 2]


def test_sweep_status_shows_the_job_succeeded_and_its_mlflow_run(head, job_id):
    shown = run(["sweep", "status", job_id, "--address", head.dashboard], head.token, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert re.search(r"^status\s+SUCCEEDED$", shown.stdout, re.MULTILINE)
    sweep_row = r"^sweep\s+abalone-\d{8}-\d{6}-[0-9a-f]{4} \(MLflow run [0-9a-f]{32}\)$"
    assert re.search(sweep_row, shown.stdout, re.MULTILINE), shown.stdout


def test_the_job_gives_its_driver_30_s_to_stop_cleanly(head, job_id):
    from ray.job_submission import JobSubmissionClient

    bearer = {"Authorization": f"Bearer {head.token.read_text().strip()}"}
    info = JobSubmissionClient(head.dashboard, headers=bearer).get_job_info(job_id)
    assert info.runtime_env["env_vars"]["RAY_JOB_STOP_WAIT_TIME_S"] == "30"


def test_sweep_logs_show_the_drivers_output(head, job_id):
    shown = run(["sweep", "logs", job_id, "--address", head.dashboard], head.token, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert "Top trials of abalone-" in shown.stdout


def test_the_jobs_api_refuses_a_caller_without_the_clusters_token(head, job_id):
    shown = run(["sweep", "status", job_id, "--address", head.dashboard], timeout=60)
    assert shown.returncode != 0
    assert "token" in (shown.stdout + shown.stderr).lower()


def test_the_head_reads_the_token_ray_up_copied_there(head, login_user):
    assert (login_user.home / ".ray" / "auth_token").read_text() == head.token.read_text()


def test_ray_down_leaves_no_process_of_the_ssh_user(head, login_user, submitted):
    assert head.down().returncode == 0
    # ssh's shared connection (ControlPersist, 10 s) is the last to go.
    deadline = time.monotonic() + 30
    while processes_of(login_user.name) and time.monotonic() < deadline:
        time.sleep(1)
    assert processes_of(login_user.name) == []
