"""Offline checks of the AWS cluster: cluster.yaml, the image it runs, and the node policies.

cluster.yaml goes through Ray's own checks as ``ray up`` runs them (``prepare_config`` then
``validate_config``, then the AWS bootstrap inside moto's ``mock_aws``). There is no docker
daemon here, so docker/Dockerfile is checked statically. The policies' statements are checked
here; tests/test_iam_policy.py sends them the requests the real S3 clients send.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cluster_config import check_cluster_config
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[1]
CLUSTER_YAML = ROOT / "cluster.yaml"
DOCKERFILE = ROOT / "docker" / "Dockerfile"
DOCKER_README = ROOT / "docker" / "README.md"
HEAD_POLICY = ROOT / "docker" / "iam-policy-head.json"
WORKER_POLICY = ROOT / "docker" / "iam-policy-worker.json"

MOTO_ACCOUNT = "123456789012"  # moto's default account id
SSH_CIDR = "203.0.113.0/24"  # stands for the user's YOUR_CIDR (TEST-NET-3)
WORLD = {"0.0.0.0/0", "::/0"}
REGION = "us-east-1"
DLC_TF_GPU_TRAINING = re.compile(
    r"^763104351884\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com/tensorflow-training:.*-gpu-"
)
# A TensorFlow itself, not tensorflow-io or tensorflow-datasets: the name, then extras, a
# version specifier, a marker or the end.
TENSORFLOW_DISTS = re.compile(
    r"^(tensorflow|tensorflow-cpu|tensorflow-gpu|tensorflow-intel|tf-nightly)([\[<>=!~;\s]|$)"
)


# --- helpers ---------------------------------------------------------------------------------


def load_cluster(account: str | None = None, security_group: str | None = None) -> dict[str, Any]:
    """cluster.yaml as written; with ``account`` / ``security_group``, their placeholders filled."""
    text = CLUSTER_YAML.read_text()
    if account:
        text = text.replace("ACCOUNT_ID", account)
    if security_group:
        text = text.replace("sg-YOUR_SECURITY_GROUP", security_group)
    return yaml.safe_load(text)


def ray_checked(config: dict[str, Any]) -> dict[str, Any]:
    """What ``ray up`` checks before touching AWS: prepare_config, then validate_config."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    return prepared


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    current = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        keyword, _, args = (current + stripped).partition(" ")
        instructions.append((keyword.upper(), args.strip()))
        current = ""
    return instructions


def shell_commands(run: str) -> list[list[str]]:
    """The simple commands of a RUN line: its words, split at &&, ||, ;, |, { and }."""
    lexer = shlex.shlex(run, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands: list[list[str]] = [[]]
    for token in lexer:
        if token in {"&&", "||", ";", "|", "{", "}"}:
            commands.append([])
        else:
            commands[-1].append(token)
    return [command for command in commands if command]


def pip_installs() -> list[list[str]]:
    """The arguments after ``install`` of each ``pip install`` in the Dockerfile's RUN lines."""
    installs = []
    for keyword, args in dockerfile_instructions():
        if keyword != "RUN":
            continue
        for command in shell_commands(args):
            words = [w for w in command if w not in {"python", "python3", "-m"}]
            if len(words) > 1 and words[0] in {"pip", "pip3"} and words[1] == "install":
                installs.append(words[2:])
    return installs


def arg_default(name: str) -> str:
    """The default value of a Dockerfile ``ARG name=default``."""
    for keyword, args in dockerfile_instructions():
        if keyword == "ARG" and args.startswith(f"{name}="):
            return args.split("=", 1)[1].strip('"')
    raise AssertionError(f"no ARG {name}=... in {DOCKERFILE}")


def statements(policy: Path) -> list[dict[str, Any]]:
    return json.loads(policy.read_text())["Statement"]


def actions_of(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else action


def allowed_actions(policy: Path) -> set[str]:
    actions: set[str] = set()
    for statement in statements(policy):
        assert statement["Effect"] == "Allow"
        actions.update(actions_of(statement))
    return actions


def ssh_ranges(group: dict[str, Any]) -> set[str]:
    """The IPv4 and IPv6 ranges a security group admits to port 22."""
    ranges = set()
    for rule in group["IpPermissions"]:
        all_ports = rule["IpProtocol"] == "-1"
        if all_ports or rule.get("FromPort", 0) <= 22 <= rule.get("ToPort", 65535):
            ranges |= {r["CidrIp"] for r in rule.get("IpRanges", [])}
            ranges |= {r["CidrIpv6"] for r in rule.get("Ipv6Ranges", [])}
    return ranges


@pytest.fixture
def mocked_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """moto's fake AWS with fake credentials; HOME in tmp_path (Ray writes its SSH key there)."""
    import boto3
    from moto import mock_aws
    from ray.autoscaler._private.aws import config as aws_config
    from ray.autoscaler._private.aws import utils as aws_utils

    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_EC2"):
        monkeypatch.delenv(name, raising=False)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)

    # Ray caches boto3 clients and lookups: start and end with none made outside this mock.
    caches = (aws_utils.resource_cache, aws_utils.client_cache, aws_config._get_subnets_or_die)
    for cache in caches:
        cache.cache_clear()
    try:
        with mock_aws():
            yield
    finally:
        for cache in caches:
            cache.cache_clear()


@pytest.fixture
def security_group(mocked_aws: None) -> str:
    """The security group docker/README.md creates: all traffic within it, SSH from one CIDR."""
    import boto3

    ec2 = boto3.client("ec2", region_name=REGION)
    (vpc,) = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    group = ec2.create_security_group(
        GroupName="ray-sweeps", Description="Ray cluster sweeps", VpcId=vpc["VpcId"]
    )["GroupId"]
    within = {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": group}]}
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[within])
    ec2.authorize_security_group_ingress(
        GroupId=group, IpProtocol="tcp", FromPort=22, ToPort=22, CidrIp=SSH_CIDR
    )
    return group


def bootstrap(config: dict[str, Any]) -> dict[str, Any]:
    """``ray up``'s config resolution: prepare, detect node resources, validate, bootstrap AWS."""
    from ray.autoscaler._private.commands import _bootstrap_config

    return _bootstrap_config(copy.deepcopy(config), no_config_cache=True)


# --- cluster.yaml and Ray's checks -----------------------------------------------------------


def test_cluster_yaml_passes_ray_validation_as_ray_up_runs_it() -> None:
    prepared = ray_checked(load_cluster())

    assert prepared["head_node_type"] == "head"
    assert set(prepared["available_node_types"]) == {"head", "gpu_worker"}


def test_raw_cluster_yaml_fails_ray_validation_without_prepare_config() -> None:
    from ray.autoscaler._private.util import validate_config

    with pytest.raises(RuntimeError, match="cluster_synced_files"):
        validate_config(load_cluster())


def test_cluster_yaml_passes_our_gpu_sweep_rules() -> None:
    assert check_cluster_config(load_cluster()) == []


def test_ray_default_setup_commands_do_not_leak_into_the_prepared_config() -> None:
    prepared = ray_checked(load_cluster())

    commands = (
        prepared["setup_commands"]
        + prepared["head_setup_commands"]
        + prepared["worker_setup_commands"]
    )
    assert not any("pip install" in command for command in commands), commands


def test_cluster_yaml_keeps_trials_off_the_cpu_only_head() -> None:
    node_types = load_cluster()["available_node_types"]

    assert node_types["head"]["resources"] == {"CPU": 0}
    assert node_types["gpu_worker"]["resources"] == {"CPU": 4, "GPU": 1}
    assert node_types["gpu_worker"]["node_config"]["InstanceType"] == "g5.xlarge"


def test_cluster_yaml_dashboard_listens_on_the_heads_loopback_only() -> None:
    config = load_cluster()
    (start,) = [c for c in config["head_start_ray_commands"] if "ray start --head" in c]

    assert "--dashboard-host=127.0.0.1" in start.split()
    assert not any("0.0.0.0" in command for command in config["head_start_ray_commands"])


def test_cluster_yaml_starts_ray_with_token_auth_on_every_node() -> None:
    config = load_cluster()
    starts = [
        command
        for key in ("head_start_ray_commands", "worker_start_ray_commands")
        for command in config[key]
        if "ray start" in command
    ]

    assert len(starts) == 2
    assert all("RAY_AUTH_MODE=token ray start" in command for command in starts)
    assert "-e RAY_AUTH_MODE=token" in config["docker"]["run_options"]


def test_cluster_yaml_brings_the_token_from_outside_the_repository_to_every_node() -> None:
    mounts = load_cluster()["file_mounts"]

    # Ray reads ~/.ray/auth_token; the head's autoscaler syncs every file mount to the workers.
    assert list(mounts) == ["~/.ray/auth_token"]
    source = Path(mounts["~/.ray/auth_token"]).expanduser()
    assert source.is_absolute() and ROOT not in source.parents


def test_cluster_yaml_puts_every_node_in_the_users_security_group() -> None:
    config = load_cluster()

    assert "security_group" not in config["provider"]
    for node_type in config["available_node_types"].values():
        assert node_type["node_config"]["SecurityGroupIds"] == ["sg-YOUR_SECURITY_GROUP"]


def test_ray_aws_bootstrap_keeps_our_security_group_and_fills_in_subnets_and_key(
    security_group: str,
) -> None:
    import boto3

    resolved = bootstrap(load_cluster(MOTO_ACCOUNT, security_group))

    ec2 = boto3.client("ec2", region_name=REGION)
    subnets = {s["SubnetId"]: s["VpcId"] for s in ec2.describe_subnets()["Subnets"]}
    (group,) = ec2.describe_security_groups(GroupIds=[security_group])["SecurityGroups"]
    for name, node_type in resolved["available_node_types"].items():
        node_config = node_type["node_config"]
        assert node_config["SubnetIds"]
        assert {subnets[s] for s in node_config["SubnetIds"]} == {group["VpcId"]}
        assert node_config["SecurityGroupIds"] == [security_group]
        assert node_config["KeyName"] == f"ray-autoscaler_{REGION}"
        role = "head" if name == resolved["head_node_type"] else "worker"
        profile = f"arn:aws:iam::{MOTO_ACCOUNT}:instance-profile/ray-sweeps-{role}"
        assert node_config["IamInstanceProfile"] == {"Arn": profile}
    assert Path(resolved["auth"]["ssh_private_key"]).is_file()
    # Our profiles are used as given: bootstrap created no broad default role.
    assert boto3.client("iam").list_roles()["Roles"] == []


def test_after_ray_aws_bootstrap_no_security_group_admits_ssh_from_anywhere(
    security_group: str,
) -> None:
    import boto3

    bootstrap(load_cluster(MOTO_ACCOUNT, security_group))

    groups = boto3.client("ec2", region_name=REGION).describe_security_groups()["SecurityGroups"]
    assert {g["GroupName"] for g in groups} == {"default", "ray-sweeps"}  # Ray made none
    assert {g["GroupName"]: ssh_ranges(g) & WORLD for g in groups} == {
        "default": set(),
        "ray-sweeps": set(),
    }
    (ours,) = [g for g in groups if g["GroupId"] == security_group]
    assert ssh_ranges(ours) == {SSH_CIDR}


def test_ray_opens_ssh_to_the_world_in_a_group_it_creates_despite_ip_permissions(
    mocked_aws: None,
) -> None:
    """Why every node type names SecurityGroupIds: Ray adds provider.security_group's
    IpPermissions to its default rules, SSH from 0.0.0.0/0 among them."""
    import boto3

    config = load_cluster(MOTO_ACCOUNT)
    for node_type in config["available_node_types"].values():
        del node_type["node_config"]["SecurityGroupIds"]
    config["provider"]["security_group"] = {
        "GroupName": "ray-sweeps",
        "IpPermissions": [
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": SSH_CIDR}]}
        ],
    }

    bootstrap(config)

    (group,) = boto3.client("ec2", region_name=REGION).describe_security_groups(
        Filters=[{"Name": "group-name", "Values": ["ray-sweeps"]}]
    )["SecurityGroups"]
    assert ssh_ranges(group) == {SSH_CIDR, "0.0.0.0/0"}


def test_bootstrapped_worker_config_launches_a_tagged_gpu_instance(security_group: str) -> None:
    import boto3
    from ray.autoscaler._private.aws.node_provider import AWSNodeProvider

    iam = boto3.client("iam")
    iam.create_instance_profile(InstanceProfileName="ray-sweeps-worker")
    config = load_cluster(MOTO_ACCOUNT, security_group)
    resolved = bootstrap(config)
    worker = copy.deepcopy(resolved["available_node_types"]["gpu_worker"]["node_config"])
    ec2 = boto3.client("ec2", region_name=REGION)
    worker["ImageId"] = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]

    provider = AWSNodeProvider(resolved["provider"], resolved["cluster_name"])
    provider.create_node(worker, {"ray-node-type": "worker"}, 1)

    (reservation,) = ec2.describe_instances()["Reservations"]
    (instance,) = reservation["Instances"]
    assert instance["InstanceType"] == "g5.xlarge"
    assert {"Key": "ray-cluster-name", "Value": "sweeps"} in instance["Tags"]
    assert instance["IamInstanceProfile"]["Arn"].endswith("instance-profile/ray-sweeps-worker")
    assert [g["GroupId"] for g in instance["SecurityGroups"]] == [security_group]


# --- broken copies ---------------------------------------------------------------------------


def test_unknown_top_level_key_is_rejected_by_ray() -> None:
    import jsonschema

    config = load_cluster()
    config["max_worker"] = 4  # typo of max_workers

    with pytest.raises(jsonschema.ValidationError, match="'max_worker' was unexpected"):
        ray_checked(config)


def test_head_node_type_missing_from_node_types_is_rejected_by_ray() -> None:
    config = load_cluster()
    config["head_node_type"] = "ray.head.default"

    with pytest.raises(ValueError, match="`head_node_type` must be one of `available_node_types`"):
        ray_checked(config)


def test_config_without_gpu_worker_passes_ray_but_not_our_rules() -> None:
    config = load_cluster()
    worker = config["available_node_types"]["gpu_worker"]
    worker["resources"] = {"CPU": 4}
    worker["node_config"]["InstanceType"] = "m6i.xlarge"

    ray_checked(config)
    assert check_cluster_config(config) == [
        'no worker node type with a GPU resource: give a GPU node type resources: {"GPU": 1} '
        "(or more)"
    ]


def _drop_image(config: dict[str, Any]) -> None:
    del config["docker"]["image"]


def _drop_worker_gpus(config: dict[str, Any]) -> None:
    config["docker"]["worker_run_options"] = []


def _gpus_on_all_nodes(config: dict[str, Any]) -> None:
    config["docker"]["run_options"].append("--gpus all")


def _drop_ecr_login(config: dict[str, Any]) -> None:
    config["initialization_commands"] = []


def _omit_setup_commands(config: dict[str, Any]) -> None:
    del config["setup_commands"]


def _unknown_head(config: dict[str, Any]) -> None:
    config["head_node_type"] = "ray.head.default"


def _dashboard_on_every_interface(config: dict[str, Any]) -> None:
    commands = config["head_start_ray_commands"]
    config["head_start_ray_commands"] = [
        c.replace("--dashboard-host=127.0.0.1", "--dashboard-host=0.0.0.0") for c in commands
    ]


def _workers_without_token_auth(config: dict[str, Any]) -> None:
    commands = config["worker_start_ray_commands"]
    config["worker_start_ray_commands"] = [c.replace("RAY_AUTH_MODE=token ", "") for c in commands]


def _no_token_on_the_nodes(config: dict[str, Any]) -> None:
    config["file_mounts"] = {}


def _worker_in_a_ray_made_security_group(config: dict[str, Any]) -> None:
    del config["available_node_types"]["gpu_worker"]["node_config"]["SecurityGroupIds"]


@pytest.mark.parametrize(
    ("breakage", "problem"),
    [
        (_drop_image, "docker.image is not set"),
        (_drop_worker_gpus, "workers' docker run options lack '--gpus all'"),
        (_gpus_on_all_nodes, "the head node type 'head' has no GPU"),
        (_drop_ecr_login, "is in a private ECR registry but no initialization_commands"),
        (_omit_setup_commands, "setup_commands is not set"),
        (_unknown_head, "head_node_type 'ray.head.default' is not one of"),
        (_dashboard_on_every_interface, "binds the dashboard and Jobs API to 0.0.0.0"),
        (_workers_without_token_auth, "worker_start_ray_commands: `ray start` runs without token"),
        (_no_token_on_the_nodes, "no file_mounts entry puts the cluster's token"),
        (_worker_in_a_ray_made_security_group, "'gpu_worker' names no SecurityGroupIds"),
    ],
    ids=lambda value: getattr(value, "__name__", "").lstrip("_") or None,
)
def test_our_rules_report_each_broken_copy(
    breakage: Callable[[dict[str, Any]], None], problem: str
) -> None:
    config = load_cluster()
    breakage(config)

    problems = check_cluster_config(config)

    assert len(problems) == 1, problems
    assert problem in problems[0]


# --- the image -------------------------------------------------------------------------------


def test_dockerfile_base_is_an_aws_dlc_tensorflow_gpu_training_image() -> None:
    instructions = dockerfile_instructions()
    first_from = next(args for keyword, args in instructions if keyword == "FROM")

    assert first_from in {"${BASE_IMAGE}", "$BASE_IMAGE"}
    assert DLC_TF_GPU_TRAINING.match(arg_default("BASE_IMAGE"))


def test_dockerfile_installs_the_copied_project() -> None:
    copies = [args for keyword, args in dockerfile_instructions() if keyword == "COPY"]
    copied = {source for args in copies for source in args.split()[:-1]}

    assert {"pyproject.toml", "README.md", "sweeps/", "trainable/"} <= copied
    assert any("/opt/sweeps" in install for install in pip_installs())


def test_dockerfile_never_pip_installs_tensorflow() -> None:
    installs = pip_installs()

    for install in installs:
        named = [word for word in install if not word.startswith("-")]
        assert not [w for w in named if TENSORFLOW_DISTS.match(w.lower())], install
    # The project's own requirements name `tensorflow`, which the DLC's `tensorflow-gpu` does
    # not satisfy for pip: the project must go in without its dependencies.
    (project,) = [install for install in installs if "/opt/sweeps" in install]
    assert "--no-deps" in project


def test_dockerfile_fails_the_build_if_pip_changed_tensorflow() -> None:
    runs = [args for keyword, args in dockerfile_instructions() if keyword == "RUN"]
    index = {
        "record": next(i for i, run in enumerate(runs) if "> /tmp/tf-before" in run),
        "install": next(i for i, run in enumerate(runs) if "/opt/sweeps" in run),
        "compare": next(i for i, run in enumerate(runs) if "diff /tmp/tf-before" in run),
    }

    assert index["record"] < index["install"] < index["compare"]
    assert "import tensorflow" in runs[index["record"]]
    assert "exit 1" in runs[index["compare"]]


def test_dockerfile_ray_matches_the_local_ray_that_runs_ray_up() -> None:
    import ray

    assert arg_default("RAY_VERSION") == ray.__version__
    assert any("ray[default]==${RAY_VERSION}" in install for install in pip_installs())


def test_dockerfile_sets_the_runtime_environment() -> None:
    env = " ".join(args for keyword, args in dockerfile_instructions() if keyword == "ENV")

    assert "SWEEP_CONTAINER_IMAGE=${IMAGE_URI}" in env
    assert "TF_CPP_MIN_LOG_LEVEL=2" in env
    assert "RAY_USAGE_STATS_ENABLED=0" in env
    assert arg_default("IMAGE_URI") == ""


def test_cluster_runs_the_image_built_from_the_dockerfile() -> None:
    image = load_cluster()["docker"]["image"]
    registry, _, repository = image.partition("/")

    assert re.fullmatch(r"ACCOUNT_ID\.dkr\.ecr\.us-east-1\.amazonaws\.com", registry)
    assert repository.split(":")[0] == "ray-sweeps"
    assert "docker/Dockerfile" in CLUSTER_YAML.read_text()
    assert "docker push $REPO:latest" in DOCKER_README.read_text()
    assert "/ray-sweeps\n" in DOCKER_README.read_text()


def test_dockerignore_keeps_local_state_out_of_the_build_context() -> None:
    patterns = set((ROOT / ".dockerignore").read_text().split())

    assert {"mlflow.db", "mlruns", "sweep-results", ".git", "**/__pycache__"} <= patterns


def test_pyproject_tensorflow_range_admits_the_dlc_tensorflow() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    (requirement,) = [r for r in project["dependencies"] if r.startswith("tensorflow")]
    specifier = SpecifierSet(requirement.removeprefix("tensorflow"))
    base_tf = re.search(r"tensorflow-training:(\d+\.\d+\.\d+)-", arg_default("BASE_IMAGE"))

    assert "2.18.0" in specifier
    assert "2.19.0" in specifier
    assert base_tf and base_tf.group(1) in specifier


# --- the node roles ---------------------------------------------------------------------------

S3_STORAGE = {"s3:ListBucket", "s3:GetObject", "s3:PutObject", "s3:DeleteObject"}
ECR_PULL = {"ecr:GetAuthorizationToken", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"}


def test_head_policy_allows_what_the_ray_head_and_the_sweep_driver_call() -> None:
    needed = {
        "ec2:RunInstances",
        "ec2:TerminateInstances",
        "ec2:DescribeInstances",
        "ec2:CreateTags",
        "ec2:DescribeSubnets",
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeImages",
        "ec2:DescribeInstanceTypes",
        "iam:PassRole",
        "sagemaker-mlflow:*",
    }

    assert needed | S3_STORAGE | ECR_PULL <= allowed_actions(HEAD_POLICY)


def test_worker_policy_allows_storage_and_image_pulls_only() -> None:
    assert allowed_actions(WORKER_POLICY) == S3_STORAGE | ECR_PULL | {
        "s3:AbortMultipartUpload",
        "ecr:BatchCheckLayerAvailability",
    }


def test_worker_policy_holds_no_ec2_passrole_or_mlflow_action() -> None:
    services = {action.split(":")[0] for action in allowed_actions(WORKER_POLICY)}

    assert services == {"s3", "ecr"}
    assert not services & {"ec2", "iam", "sagemaker", "sagemaker-mlflow", "*"}


@pytest.mark.parametrize("policy", [HEAD_POLICY, WORKER_POLICY], ids=lambda p: p.stem)
def test_iam_policies_grant_no_service_wide_wildcards(policy: Path) -> None:
    broad = {a for a in allowed_actions(policy) if a == "*" or a.endswith(":*")}

    assert broad == ({"sagemaker-mlflow:*"} if policy == HEAD_POLICY else set())
    for mlflow in [s for s in statements(policy) if s["Action"] == "sagemaker-mlflow:*"]:
        assert ":mlflow-tracking-server/" in mlflow["Resource"]
    s3 = [s for s in statements(policy) if "s3:GetObject" in actions_of(s)]
    assert [s["Resource"] for s in s3] == ["arn:aws:s3:::YOUR_BUCKET/sweeps/*"]


def test_head_and_worker_policies_share_the_same_s3_statements() -> None:
    def s3(policy: Path) -> list[dict[str, Any]]:
        return [s for s in statements(policy) if any(a.startswith("s3:") for a in actions_of(s))]

    assert s3(HEAD_POLICY) == s3(WORKER_POLICY)


def test_iam_policies_match_the_cluster_they_serve() -> None:
    config = load_cluster()
    node_types = config["available_node_types"]
    head = config["head_node_type"]
    worker_types = {
        spec["node_config"]["InstanceType"] for name, spec in node_types.items() if name != head
    }
    profile = {
        name: spec["node_config"]["IamInstanceProfile"]["Arn"].rsplit("/", 1)[1]
        for name, spec in node_types.items()
    }
    by_sid = {s["Sid"]: s for s in statements(HEAD_POLICY)}
    launch = by_sid["RayHeadLaunchTaggedClusterInstances"]["Condition"]["StringEquals"]

    assert profile == {"head": "ray-sweeps-head", "gpu_worker": "ray-sweeps-worker"}
    assert launch["aws:RequestTag/ray-cluster-name"] == config["cluster_name"]
    assert {launch["ec2:InstanceType"]} == worker_types
    # The head passes the worker role (named as its instance profile), never its own.
    (passed,) = [s["Resource"] for s in statements(HEAD_POLICY) if "iam:PassRole" in actions_of(s)]
    assert passed == "arn:aws:iam::ACCOUNT_ID:role/ray-sweeps-worker"


def test_docs_name_only_policy_files_that_exist() -> None:
    for doc in (CLUSTER_YAML, DOCKER_README, ROOT / "README.md"):
        named = set(re.findall(r"docker/(iam-policy[\w-]*\.json)", doc.read_text()))
        assert {n for n in named if not (ROOT / "docker" / n).is_file()} == set(), doc.name
