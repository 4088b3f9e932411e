"""Our own rules for the Ray cluster launcher config (``cluster.yaml``), on top of Ray's schema.

Ray's checks (``prepare_config`` then ``validate_config``) accept a config that would start a
cluster on which a GPU sweep can never run, that quietly runs Ray's default setup commands, or
whose doors are open: a dashboard on every interface, Ray without token authentication, SSH from
anywhere. :func:`check_cluster_config` finds those. It takes the config as written (the YAML
loaded into a dict, before Ray fills in its defaults) and imports nothing heavy.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

GPUS_ALL = "--gpus all"

#: Where Ray looks for the cluster's token when RAY_AUTH_MODE=token and neither RAY_AUTH_TOKEN
#: nor RAY_AUTH_TOKEN_PATH is set (ray._private.authentication).
TOKEN_FILE = "~/.ray/auth_token"
LOOPBACK = {"127.0.0.1", "localhost"}

# Omitted, these take Ray's AWS defaults, which pip-install a nightly Ray wheel and boto3.
SETUP_COMMAND_KEYS = ("setup_commands", "head_setup_commands", "worker_setup_commands")

_ECR_IMAGE = re.compile(r"^(?P<registry>[^./]+)\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com/")


def check_cluster_config(config: dict[str, Any]) -> list[str]:
    """Problems with a cluster config for GPU sweeps, one readable line each; empty if none.

    The rules: at least one worker node type declares a ``GPU`` resource (declared, not left to
    Ray's instance-type detection, so the autoscaler knows which type to launch for GPU trials);
    the ``docker`` section names an image; the workers' docker run options include
    ``--gpus all`` and the head's do not when the head has no GPU (``docker run`` fails there);
    an image in a private ECR registry is pulled only after an ``initialization_commands``
    login; the setup command lists are set explicitly; and the doors are closed: the dashboard
    binds a loopback address, every ``ray start`` runs with ``RAY_AUTH_MODE=token`` and a
    ``file_mounts`` entry puts the token where Ray reads it on every node, and on AWS every node
    type names its security group (one Ray creates admits SSH from 0.0.0.0/0).
    """
    problems: list[str] = []
    node_types: dict[str, Any] = config.get("available_node_types") or {}
    head = config.get("head_node_type")
    if head not in node_types:
        problems.append(
            f"head_node_type {head!r} is not one of available_node_types {sorted(node_types)}"
        )

    workers = {name: spec for name, spec in node_types.items() if name != head}
    if not any(_gpus(spec) > 0 for spec in workers.values()):
        problems.append(
            "no worker node type with a GPU resource: give a GPU node type "
            'resources: {"GPU": 1} (or more)'
        )

    docker: dict[str, Any] = config.get("docker") or {}
    image = docker.get("worker_image") or docker.get("image")
    if not image:
        problems.append("docker.image is not set: name the image built from docker/Dockerfile")

    run_options = list(docker.get("run_options") or [])
    worker_options = run_options + list(docker.get("worker_run_options") or [])
    head_options = run_options + list(docker.get("head_run_options") or [])
    if GPUS_ALL not in worker_options:
        problems.append(
            f"workers' docker run options lack {GPUS_ALL!r}: add it to docker.worker_run_options"
        )
    if GPUS_ALL in head_options and head in node_types and _gpus(node_types[head]) == 0:
        problems.append(
            f"the head node type {head!r} has no GPU but its docker run options include "
            f"{GPUS_ALL!r}: move it from docker.run_options to docker.worker_run_options"
        )

    images = (docker.get(key) for key in ("image", "head_image", "worker_image"))
    for candidate in dict.fromkeys(i for i in images if i):
        match = _ECR_IMAGE.match(candidate)
        if match and not _logs_in_to(config, match.group("registry")):
            problems.append(
                f"image {candidate} is in a private ECR registry but no "
                "initialization_commands entry runs `aws ecr get-login-password` for it"
            )

    for key in SETUP_COMMAND_KEYS:
        if key not in config:
            problems.append(
                f"{key} is not set: Ray's defaults would run instead (they pip-install "
                "a nightly Ray wheel); set it, to [] if there is nothing to run"
            )

    problems.extend(_open_doors(config, node_types))
    return problems


def _open_doors(config: dict[str, Any], node_types: dict[str, Any]) -> list[str]:
    """Problems that leave the cluster reachable by more than its owner."""
    problems: list[str] = []
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        for words in _ray_starts(config.get(key) or []):
            hosts = [w.split("=", 1)[1] for w in words if w.startswith("--dashboard-host=")]
            if any(host not in LOOPBACK for host in hosts):
                problems.append(
                    f"{key}: `ray start` binds the dashboard and Jobs API to {hosts[-1]}: "
                    "use --dashboard-host=127.0.0.1 and reach it with `ray dashboard`"
                )
            if "RAY_AUTH_MODE=token" not in words[: words.index("ray")]:
                problems.append(
                    f"{key}: `ray start` runs without token authentication: "
                    "prefix it with RAY_AUTH_MODE=token"
                )
    if TOKEN_FILE not in (config.get("file_mounts") or {}):
        problems.append(
            f"no file_mounts entry puts the cluster's token at {TOKEN_FILE}: "
            "with token authentication on, `ray start` fails on every node"
        )
    if (config.get("provider") or {}).get("type") == "aws":
        for name, spec in node_types.items():
            if not (spec.get("node_config") or {}).get("SecurityGroupIds"):
                problems.append(
                    f"node type {name!r} names no SecurityGroupIds: Ray would put it in a "
                    "security group of its own, which admits SSH from 0.0.0.0/0"
                )
    return problems


def _ray_starts(commands: list[str]) -> list[list[str]]:
    """The words of each simple command that is a ``ray start`` (assignments before it kept)."""
    starts = []
    for command in commands:
        for part in re.split(r"&&|\|\||;|\n", command):
            words = shlex.split(part)
            at = words.index("ray") if "ray" in words else -1
            if at >= 0 and words[at + 1 : at + 2] == ["start"]:
                starts.append(words)
    return starts


def _gpus(node_type: dict[str, Any]) -> float:
    """The ``GPU`` resource a node type declares (0 when it declares none)."""
    resources = node_type.get("resources") or {}
    return float(resources.get("GPU", 0) or 0)


def _logs_in_to(config: dict[str, Any], registry: str) -> bool:
    """Whether an initialization command logs docker in to the ECR registry of this account."""
    return any(
        "ecr get-login-password" in command and f"{registry}.dkr.ecr." in command
        for command in config.get("initialization_commands") or []
    )
