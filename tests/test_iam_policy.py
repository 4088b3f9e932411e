"""The node roles' policies against the requests pyarrow, Ray's storage and boto3 really send.

Each role's policy (docker/iam-policy-head.json, docker/iam-policy-worker.json, placeholders
filled in) belongs to an IAM user of a moto server with IAM enforcement on. The clients use that
user's keys and reach S3 through a gate on 127.0.0.1 in front of moto, and every request is
decided twice:

1. The gate reads the request as AWS authorizes it (the IAM action, the resource and the
   condition keys our policies use, see :func:`s3_authorizations`) and evaluates the role's
   policy with :func:`allowed`, a small evaluator of our own. A denied request gets S3's
   403 AccessDenied, so the client fails as it would on AWS.
2. moto checks each request the gate lets through against the policy's Action and Resource
   (as moto reads them, below).

Why not moto alone: moto (5.2.5, 5.2.6) enforces Action and Resource, but not our Conditions,
and names S3 authorizations differently from AWS (moto/iam/access_control.py,
policy_conditions.py, moto/s3/responses.py, moto/core/responses.py). With the gate letting
everything through, moto alone still denied Put/Get/Delete of single keys outside ``sweeps/``
and every EC2 call of the worker, but let a listing of ``other/`` through, let HeadBucket through
without the HeadBucket statement, and deleted ``other/secret.txt`` on a DeleteObjects:

- Conditions: moto implements only ``StringEquals``, and fills in no request context key but
  ``sts:ExternalId``; any other operator (``StringLike``, ``Null``) or key counts as satisfied.
  To moto, "list only under sweeps/" is "list anything", and the HeadBucket statement changes
  nothing.
- HeadBucket: moto checks ``s3:HeadBucket``; AWS checks ``s3:ListBucket`` (there is no
  ``s3:HeadBucket`` IAM action), so moto denies HeadBucket under any real policy.
- DeleteObjects: moto checks ``s3:DeleteObject`` (5.2.6: ``s3:DeleteObjects``) once, on the
  bucket's ARN, then deletes every key; AWS checks ``s3:DeleteObject`` on each key.
- Operation names: from 5.2.6 on, moto checks every S3 request as ``s3:`` plus its API
  operation's name (``_get_action`` no longer reads the action moto/s3/responses.py's
  ``ACTION_MAP`` sets, as 5.2.5 did), so it also denies, under any real policy,
  ``s3:ListObjectsV2``, ``s3:HeadObject``, ``s3:CreateMultipartUpload``, ``s3:UploadPart`` and
  ``s3:CompleteMultipartUpload``: none is an IAM action (AWS checks ``s3:ListBucket``,
  ``s3:GetObject``, ``s3:PutObject``).

So moto holds the policy as it reads it (:func:`as_moto_reads_it`): also moto's names
(:data:`MOTO_NAMES`) where the policy allows the IAM action they stand for, and the bucket's
ARN where the policy allows ``s3:DeleteObject`` on the bucket's keys. The gate decides those
requests as AWS does.

EC2 and IAM calls go to moto directly: it denies a worker's RunInstances by the Action alone.
``iam:PassRole`` (checked by AWS inside RunInstances) and ``sagemaker-mlflow:*`` (no moto
service) are not requests a test can send; :func:`allowed` decides those.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import threading
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from servers import free_port, moto_server

ROOT = Path(__file__).resolve().parents[1]
POLICIES = {
    "head": ROOT / "docker" / "iam-policy-head.json",
    "worker": ROOT / "docker" / "iam-policy-worker.json",
}
ROLES = list(POLICIES)
ACCOUNT = "123456789012"  # moto's default account id
REGION = "us-east-1"
BUCKET = "sweeps-bucket"
SERVER = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:mlflow-tracking-server/sweeps-mlflow"
OTHER_SERVER = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:mlflow-tracking-server/someone-elses"
HEAD_ROLE = f"arn:aws:iam::{ACCOUNT}:role/ray-sweeps-head"
WORKER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/ray-sweeps-worker"
EC2 = {"iam:PassedToService": "ec2.amazonaws.com"}
#: A worker's policy without the statement that lets HeadBucket through.
WITHOUT_HEADBUCKET = "worker-without-headbucket"
ADMIN = "admin"  # sets the scene and looks behind it, straight at moto
EVERYTHING = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}


# --- the policies ------------------------------------------------------------------------------


def load_policy(role: str) -> dict[str, Any]:
    """A role's policy with its placeholders filled in for this test's account and bucket."""
    text = POLICIES[role].read_text()
    for placeholder, value in {
        "ACCOUNT_ID": ACCOUNT,
        "YOUR_BUCKET": BUCKET,
        "YOUR_TRACKING_SERVER": SERVER.rsplit("/", 1)[1],
    }.items():
        text = text.replace(placeholder, value)
    return json.loads(text)


def without_headbucket(policy: dict[str, Any]) -> dict[str, Any]:
    """The policy minus its statements that allow a request without ``s3:prefix``."""
    statements = [
        s
        for s in policy["Statement"]
        if s.get("Condition", {}).get("Null") != {"s3:prefix": "true"}
    ]
    return {**policy, "Statement": statements}


#: What moto checks instead of an IAM action for the S3 requests these tests send (see the module
#: docstring): ``s3:HeadBucket`` in every version; from 5.2.6 on, the API operation's name.
MOTO_NAMES = {
    "s3:ListBucket": ["s3:HeadBucket", "s3:ListObjects", "s3:ListObjectsV2"],
    "s3:GetObject": ["s3:HeadObject"],
    "s3:PutObject": ["s3:CreateMultipartUpload", "s3:UploadPart", "s3:CompleteMultipartUpload"],
    "s3:DeleteObject": ["s3:DeleteObjects"],
}


def as_moto_reads_it(policy: dict[str, Any]) -> dict[str, Any]:
    """The policy with moto's names for its S3 authorizations added (see the module docstring)."""
    statements = []
    for statement in policy["Statement"]:
        statement = dict(statement)
        actions = _listed(statement["Action"])
        resources = _listed(statement["Resource"])
        aliases = [name for action in actions for name in MOTO_NAMES.get(action, [])]
        if aliases:
            statement["Action"] = [*actions, *aliases]
        if "s3:DeleteObject" in actions:
            buckets = {r.split("/", 1)[0] for r in resources if r.startswith("arn:aws:s3:::")}
            statement["Resource"] = [*resources, *sorted(buckets)]
        statements.append(statement)
    return {**policy, "Statement": statements}


# --- our evaluator -----------------------------------------------------------------------------


def allowed(
    policy: dict[str, Any], action: str, resource: str, context: dict[str, str] | None = None
) -> bool:
    """AWS's decision for one request under one identity-based policy.

    An explicit Deny wins; otherwise any Allow whose Action, Resource and every Condition match;
    otherwise the implicit deny. Actions match case-insensitively, resources case-sensitively,
    both with ``*`` and ``?`` wildcards. Conditions: only the operators our policies use,
    ``StringEquals``, ``StringLike`` (``*`` and ``?``) and ``Null``, on single-valued keys;
    ``context`` holds the request's keys, and a key not in it is absent from the request (a
    String operator on an absent key does not match). Any other operator raises, so a new one
    in a policy cannot pass unevaluated.
    """
    context = context or {}
    decision = False
    for statement in policy["Statement"]:
        assert not {"NotAction", "NotResource", "Principal"} & set(statement), statement
        if (
            _matches(statement["Action"], action, case_sensitive=False)
            and _matches(statement["Resource"], resource, case_sensitive=True)
            and _conditions_hold(statement.get("Condition", {}), context)
        ):
            if statement["Effect"] == "Deny":
                return False
            decision = True
    return decision


def _listed(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _glob(pattern: str, value: str, case_sensitive: bool) -> bool:
    regex = "".join({"*": ".*", "?": "."}.get(c, re.escape(c)) for c in pattern)
    return re.fullmatch(regex, value, 0 if case_sensitive else re.IGNORECASE) is not None


def _matches(patterns: str | list[str], value: str, case_sensitive: bool) -> bool:
    return any(_glob(p, value, case_sensitive) for p in _listed(patterns))


def _conditions_hold(condition: dict[str, dict[str, Any]], context: dict[str, str]) -> bool:
    for operator, keys in condition.items():
        for key, expected in keys.items():
            values = _listed(expected)
            if operator == "Null":  # "true": the key is absent from the request
                holds = (key not in context) == (values == ["true"])
            elif operator == "StringEquals":
                holds = key in context and context[key] in values
            elif operator == "StringLike":
                holds = key in context and any(_glob(v, context[key], True) for v in values)
            else:
                raise NotImplementedError(f"condition operator {operator} is not evaluated here")
            if not holds:
                return False
    return True


# --- S3 requests as AWS authorizes them --------------------------------------------------------

#: Query parameters of a ListObjects(V2) request.
LIST_PARAMETERS = {
    "list-type",
    "prefix",
    "delimiter",
    "encoding-type",
    "max-keys",
    "continuation-token",
    "start-after",
    "fetch-owner",
    "marker",
}


@dataclass(frozen=True)
class Authorization:
    """One thing AWS authorizes for a request: an action on a resource, with its context keys."""

    action: str
    resource: str
    context: tuple[tuple[str, str], ...] = ()


def s3_authorizations(
    method: str, path: str, query: dict[str, list[str]], headers: dict[str, str], body: bytes
) -> list[Authorization]:
    """What AWS authorizes for a path-style S3 request (the S3 user guide's "Actions, resources,
    and condition keys for Amazon S3" and the permissions each operation lists).

    HeadBucket is ``s3:ListBucket`` without ``s3:prefix``; a listing's ``prefix`` parameter,
    when present (even empty), is ``s3:prefix``; DeleteObjects is ``s3:DeleteObject`` on each
    key; the multipart calls are ``s3:PutObject`` but for the abort. A request not listed here
    comes back as an action no policy allows, so the gate denies what it cannot read.
    """
    bucket, _, key = path.lstrip("/").partition("/")
    parameters = set(query) - {"x-id"}  # botocore names the operation in x-id
    bucket_arn = f"arn:aws:s3:::{bucket}"
    object_arn = f"{bucket_arn}/{key}"
    unknown = [Authorization(f"unmapped:{method} {path}?{sorted(parameters)}", "*")]
    if not bucket:
        if method == "GET" and not parameters:
            return [Authorization("s3:ListAllMyBuckets", "*")]
        return unknown
    if not key:
        if method == "HEAD" and not parameters:
            return [Authorization("s3:ListBucket", bucket_arn)]
        if method == "GET" and parameters <= LIST_PARAMETERS:
            prefix = (("s3:prefix", query["prefix"][0]),) if "prefix" in query else ()
            return [Authorization("s3:ListBucket", bucket_arn, prefix)]
        if method == "GET" and parameters == {"location"}:
            return [Authorization("s3:GetBucketLocation", bucket_arn)]
        if method == "PUT" and not parameters:
            return [Authorization("s3:CreateBucket", bucket_arn)]
        if method == "POST" and parameters == {"delete"}:
            keys = [e.text or "" for e in ET.fromstring(body).iter() if e.tag.endswith("Key")]
            return [Authorization("s3:DeleteObject", f"{bucket_arn}/{k}") for k in keys]
        return unknown
    if method in {"GET", "HEAD"} and not parameters:
        return [Authorization("s3:GetObject", object_arn)]
    copies = any(k.lower() == "x-amz-copy-source" for k in headers)  # CopyObject: not read here
    if method == "PUT" and parameters in ({"partNumber", "uploadId"}, set()) and not copies:
        return [Authorization("s3:PutObject", object_arn)]
    if method == "POST" and parameters in ({"uploads"}, {"uploadId"}):
        return [Authorization("s3:PutObject", object_arn)]
    if method == "DELETE" and not parameters:
        return [Authorization("s3:DeleteObject", object_arn)]
    if method == "DELETE" and parameters == {"uploadId"}:
        return [Authorization("s3:AbortMultipartUpload", object_arn)]
    if method == "GET" and parameters == {"uploadId"}:
        return [Authorization("s3:ListMultipartUploadParts", object_arn)]
    return unknown


# --- the gate in front of moto -----------------------------------------------------------------

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "expect"}
#: Headers werkzeug's server writes for every answer itself: moto's would come twice.
SERVED_BY_GATE = {"server", "date"}
ACCESS_DENIED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
)


@dataclass
class Decision:
    role: str | None
    method: str
    path: str
    authorizations: list[Authorization]
    allowed: bool


@dataclass
class Gate:
    """A WSGI app: decides each S3 request with :func:`allowed`, forwards the allowed to moto.

    A request is allowed when every one of its authorizations is. So a DeleteObjects naming any
    key the policy denies is denied whole, where AWS deletes the other keys and reports each
    denied one in a 200 answer; the tests only ask whether a denied key survives.
    """

    upstream: str
    roles: dict[str, str] = field(default_factory=dict)  # access key id -> role
    policies: dict[str, dict[str, Any]] = field(default_factory=dict)  # role -> policy
    decisions: list[Decision] = field(default_factory=list)

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> list[bytes]:
        from werkzeug.wrappers import Request

        request = Request(environ)
        body = request.get_data()
        raw_uri = environ.get("RAW_URI") or environ["REQUEST_URI"]
        path, _, query_string = raw_uri.partition("?")
        query = parse_qs(query_string, keep_blank_values=True)
        headers = dict(request.headers.items())
        credential = re.search(r"Credential=([^/]+)/", headers.get("Authorization", ""))
        role = self.roles.get(credential.group(1)) if credential else None
        asked = s3_authorizations(request.method, unquote(path), query, headers, body)
        policy = self.policies.get(role or "")
        ok = policy is not None and all(
            allowed(policy, a.action, a.resource, dict(a.context)) for a in asked
        )
        self.decisions.append(Decision(role, request.method, unquote(path), asked, ok))
        if not ok:
            start_response("403 Forbidden", [("Content-Type", "application/xml")])
            return [b"" if request.method == "HEAD" else ACCESS_DENIED]
        status, reply_headers, reply = self._forward(request.method, raw_uri, headers, body)
        start_response(status, reply_headers)
        return [b"" if request.method == "HEAD" else reply]

    def _forward(
        self, method: str, raw_uri: str, headers: dict[str, str], body: bytes
    ) -> tuple[str, list[tuple[str, str]], bytes]:
        """The request to moto byte for byte (its signature covers the path and Host)."""
        upstream = urlsplit(self.upstream)
        connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=30)
        try:
            kept = {k: v for k, v in headers.items() if k.lower() not in HOP_BY_HOP}
            connection.request(method, raw_uri, body=body if body else None, headers=kept)
            response = connection.getresponse()
            reply = response.read()
        finally:
            connection.close()
        reply_headers = [
            (k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP | SERVED_BY_GATE
        ]
        length = response.getheader("Content-Length") if method == "HEAD" else str(len(reply))
        if length is not None:
            reply_headers.append(("Content-Length", length))
        return f"{response.status} {response.reason}", reply_headers, reply

    def seen(self, role: str) -> list[Decision]:
        return [d for d in self.decisions if d.role == role]


@contextmanager
def serving(app: Gate) -> Iterator[str]:
    """``app`` on a free 127.0.0.1 port, in a thread; yields its URL."""
    from werkzeug.serving import WSGIRequestHandler, make_server

    class Quiet(WSGIRequestHandler):
        def log_request(self, *args: Any) -> None:
            pass

    server = make_server("127.0.0.1", free_port(), app, threaded=True, request_handler=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


# --- fixtures ----------------------------------------------------------------------------------


@dataclass
class Aws:
    moto: str  # moto itself, IAM enforced
    endpoint: str  # the gate in front of moto, for S3
    keys: dict[str, dict[str, str]]  # role -> aws_access_key_id, aws_secret_access_key
    gate: Gate
    clients: dict[tuple[str, str], Any] = field(default_factory=dict)

    def client(self, role: str, service: str) -> Any:
        """A boto3 client with the role's keys: S3 through the gate (the admin's straight to
        moto), EC2 and IAM straight to moto."""
        import boto3

        if (role, service) not in self.clients:
            endpoint = self.endpoint if service == "s3" and role != ADMIN else self.moto
            self.clients[role, service] = boto3.client(
                service, endpoint_url=endpoint, region_name=REGION, **self.keys[role]
            )
        return self.clients[role, service]

    def pyarrow(self, role: str) -> Any:
        from pyarrow import fs

        keys = self.keys[role]
        return fs.S3FileSystem(
            access_key=keys["aws_access_key_id"],
            secret_key=keys["aws_secret_access_key"],
            endpoint_override=self.endpoint,
            scheme="http",
            region=REGION,
        )


@pytest.fixture(scope="module")
def aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Aws]:
    """moto with the bucket and one IAM user per role, then IAM enforcement on; the gate."""
    import boto3

    policies = {role: load_policy(role) for role in ROLES}
    policies[WITHOUT_HEADBUCKET] = without_headbucket(policies["worker"])
    policies[ADMIN] = EVERYTHING
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with moto_server(log, AWS_EC2_METADATA_DISABLED="true") as url:
        setup = {"aws_access_key_id": "setup", "aws_secret_access_key": "setup"}
        iam = boto3.client("iam", endpoint_url=url, region_name=REGION, **setup)
        s3 = boto3.client("s3", endpoint_url=url, region_name=REGION, **setup)
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="other/secret.txt", Body=b"not the sweeps'")
        s3.put_object(Bucket=BUCKET, Key="sweeps/existing.txt", Body=b"a sweep's")
        gate = Gate(url, policies=policies)
        keys = {}
        for role, policy in policies.items():
            iam.create_user(UserName=role)
            iam.put_user_policy(
                UserName=role,
                PolicyName=role,
                PolicyDocument=json.dumps(as_moto_reads_it(policy)),
            )
            key = iam.create_access_key(UserName=role)["AccessKey"]
            keys[role] = {
                "aws_access_key_id": key["AccessKeyId"],
                "aws_secret_access_key": key["SecretAccessKey"],
            }
            gate.roles[key["AccessKeyId"]] = role
        enforce = urllib.request.Request(
            f"{url}/moto-api/reset-auth",
            # From now on every request is authenticated and authorized (moto's own
            # set_initial_no_auth_action_count does this in server mode).
            data=b"0",
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        urllib.request.urlopen(enforce, timeout=10).close()
        with serving(gate) as gate_url:
            yield Aws(url, gate_url, keys, gate)


def exists(aws: Aws, key: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        aws.client(ADMIN, "s3").head_object(Bucket=BUCKET, Key=key)
    except ClientError:
        return False
    return True


def denied(call: Callable[[], Any]) -> str:
    """The error code a boto3 call fails with (fails the test if the call succeeds)."""
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as error:
        call()
    return error.value.response["Error"]["Code"]


# --- pyarrow (Ray Tune's storage and every checkpoint upload go through it) --------------------


@pytest.mark.parametrize("role", ROLES)
def test_pyarrow_create_dir_under_the_prefix_sends_an_allowed_headbucket(
    aws: Aws, role: str
) -> None:
    aws.pyarrow(role).create_dir(f"{BUCKET}/sweeps/create-{role}/trial-0", recursive=True)

    heads = [d for d in aws.gate.seen(role) if d.method == "HEAD" and d.path == f"/{BUCKET}"]
    assert heads and all(d.allowed for d in heads)
    assert heads[0].authorizations == [Authorization("s3:ListBucket", f"arn:aws:s3:::{BUCKET}")]


def test_without_the_headbucket_statement_pyarrow_create_dir_is_denied(aws: Aws) -> None:
    """apache/arrow#49949: a policy that lists only under a prefix denies HeadBucket."""
    with pytest.raises(OSError, match="ACCESS_DENIED during HeadBucket"):
        aws.pyarrow(WITHOUT_HEADBUCKET).create_dir(f"{BUCKET}/sweeps/no-head", recursive=True)


@pytest.mark.parametrize("role", ROLES)
def test_pyarrow_writes_and_reads_back_a_file_under_the_prefix(aws: Aws, role: str) -> None:
    fs = aws.pyarrow(role)
    path = f"{BUCKET}/sweeps/write-{role}/result.json"

    with fs.open_output_stream(path) as out:
        out.write(b'{"val_rmse": 2.1}')
    with fs.open_input_stream(path) as read:
        assert read.read() == b'{"val_rmse": 2.1}'


@pytest.mark.parametrize("role", ROLES)
def test_pyarrow_get_file_info_lists_a_directory_under_the_prefix(aws: Aws, role: str) -> None:
    from pyarrow import fs as pafs

    fs = aws.pyarrow(role)
    for name in ("a.txt", "sub/b.txt"):
        with fs.open_output_stream(f"{BUCKET}/sweeps/info-{role}/{name}") as out:
            out.write(b"x")

    info = fs.get_file_info(f"{BUCKET}/sweeps/info-{role}")
    found = fs.get_file_info(pafs.FileSelector(f"{BUCKET}/sweeps/info-{role}", recursive=True))

    assert info.type == pafs.FileType.Directory
    assert {f.path.rsplit(f"info-{role}/", 1)[1] for f in found} == {"a.txt", "sub", "sub/b.txt"}


@pytest.mark.parametrize("role", ROLES)
def test_pyarrow_deletes_a_file_and_a_directory_under_the_prefix(aws: Aws, role: str) -> None:
    fs = aws.pyarrow(role)
    folder = f"sweeps/delete-{role}"
    for name in ("a.txt", "b.txt", "c.txt"):
        with fs.open_output_stream(f"{BUCKET}/{folder}/{name}") as out:
            out.write(b"x")

    fs.delete_file(f"{BUCKET}/{folder}/a.txt")
    fs.delete_dir(f"{BUCKET}/{folder}")

    assert not any(exists(aws, f"{folder}/{name}") for name in ("a.txt", "b.txt", "c.txt"))


@pytest.mark.parametrize("role", ROLES)
def test_pyarrow_writing_outside_the_prefix_is_denied(aws: Aws, role: str) -> None:
    fs = aws.pyarrow(role)

    with (
        pytest.raises(OSError, match="ACCESS_DENIED"),
        fs.open_output_stream(f"{BUCKET}/other/{role}.txt") as out,
    ):
        out.write(b"x")

    assert not exists(aws, f"other/{role}.txt")


@pytest.mark.parametrize("role", ROLES)
def test_pyarrow_listing_outside_the_prefix_is_denied(aws: Aws, role: str) -> None:
    from pyarrow import fs as pafs

    with pytest.raises(OSError, match="ACCESS_DENIED"):
        aws.pyarrow(role).get_file_info(pafs.FileSelector(f"{BUCKET}/other", recursive=True))


# --- Ray's storage: what Tune does on the driver (head) and each trial does on a worker ---------


@pytest.mark.parametrize("role", ROLES)
def test_ray_storage_context_checks_storage_and_persists_a_checkpoint(
    aws: Aws, role: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from ray.train import Checkpoint
    from ray.train._internal.storage import StorageContext

    keys = aws.keys[role]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", keys["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", keys["aws_secret_access_key"])
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", aws.endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "model.keras").write_bytes(b"weights")

    # The constructor writes and reads back Tune's validation marker (create_dir first).
    storage = StorageContext(
        storage_path=f"s3://{BUCKET}/sweeps/ray-{role}",
        experiment_dir_name="abalone-sweep",
        trial_dir_name="trial-0000",
    )
    storage.current_checkpoint_index = 0
    persisted = storage.persist_current_checkpoint(Checkpoint.from_directory(str(tmp_path)))

    assert persisted.path.startswith(f"{BUCKET}/sweeps/ray-{role}/abalone-sweep/trial-0000/")
    assert exists(aws, persisted.path.split("/", 1)[1] + "/model.keras")
    assert any(d.method == "HEAD" and d.path == f"/{BUCKET}" for d in aws.gate.seen(role))


# --- boto3 -------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_boto3_head_bucket_is_allowed(aws: Aws, role: str) -> None:
    aws.client(role, "s3").head_bucket(Bucket=BUCKET)


@pytest.mark.parametrize("role", ROLES)
def test_boto3_lists_under_the_prefix(aws: Aws, role: str) -> None:
    listed = aws.client(role, "s3").list_objects_v2(Bucket=BUCKET, Prefix="sweeps/")

    assert "sweeps/existing.txt" in [o["Key"] for o in listed["Contents"]]


@pytest.mark.parametrize("role", ROLES)
def test_boto3_puts_gets_and_deletes_an_object_under_the_prefix(aws: Aws, role: str) -> None:
    s3 = aws.client(role, "s3")
    key = f"sweeps/boto3-{role}.txt"

    s3.put_object(Bucket=BUCKET, Key=key, Body=b"x")
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"x"
    s3.delete_object(Bucket=BUCKET, Key=key)
    assert not exists(aws, key)


@pytest.mark.parametrize("role", ROLES)
def test_boto3_aborts_a_multipart_upload_under_the_prefix(aws: Aws, role: str) -> None:
    s3 = aws.client(role, "s3")
    key = f"sweeps/multipart-{role}.bin"
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]

    s3.abort_multipart_upload(Bucket=BUCKET, Key=key, UploadId=upload)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(
    "request_",
    [
        pytest.param(lambda s3: s3.list_objects_v2(Bucket=BUCKET, Prefix="other/"), id="list"),
        pytest.param(lambda s3: s3.put_object(Bucket=BUCKET, Key="other/x", Body=b"x"), id="put"),
        pytest.param(lambda s3: s3.get_object(Bucket=BUCKET, Key="other/secret.txt"), id="get"),
        pytest.param(
            lambda s3: s3.delete_object(Bucket=BUCKET, Key="other/secret.txt"), id="delete"
        ),
    ],
)
def test_boto3_outside_the_prefix_is_denied(
    aws: Aws, role: str, request_: Callable[[Any], Any]
) -> None:
    assert denied(lambda: request_(aws.client(role, "s3"))) == "AccessDenied"
    assert exists(aws, "other/secret.txt") and not exists(aws, "other/x")


@pytest.mark.parametrize("role", ROLES)
def test_boto3_delete_objects_outside_the_prefix_deletes_nothing(aws: Aws, role: str) -> None:
    from botocore.exceptions import ClientError

    with contextlib.suppress(ClientError):  # the gate denies it whole, see Gate
        aws.client(role, "s3").delete_objects(
            Bucket=BUCKET, Delete={"Objects": [{"Key": "other/secret.txt"}]}
        )

    assert exists(aws, "other/secret.txt")


def test_listing_without_a_prefix_is_allowed_as_headbucket_needs(aws: Aws) -> None:
    """The price of HeadBucket: S3 cannot tell it from a listing without a prefix, so key names
    (not contents) anywhere in the bucket are listable (docker/README.md says so)."""
    listed = aws.client("worker", "s3").list_objects_v2(Bucket=BUCKET)

    assert "other/secret.txt" in [o["Key"] for o in listed["Contents"]]


# --- what only the head may do -----------------------------------------------------------------


def test_worker_cannot_run_instances(aws: Aws) -> None:
    ec2 = aws.client("worker", "ec2")

    def launch() -> Any:
        return ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)

    assert denied(launch) == "AccessDenied"


def test_worker_cannot_terminate_instances(aws: Aws) -> None:
    admin = aws.client(ADMIN, "ec2")
    (instance,) = admin.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)["Instances"]
    ec2 = aws.client("worker", "ec2")

    def terminate() -> Any:
        return ec2.terminate_instances(InstanceIds=[instance["InstanceId"]])

    assert denied(terminate) == "AccessDenied"


def test_worker_cannot_grant_itself_more_through_iam(aws: Aws) -> None:
    iam = aws.client("worker", "iam")

    def grant() -> Any:
        document = json.dumps(EVERYTHING)
        return iam.put_user_policy(UserName="worker", PolicyName="more", PolicyDocument=document)

    assert denied(grant) == "AccessDenied"


def test_head_may_describe_instances_where_a_worker_may_not(aws: Aws) -> None:
    aws.client("head", "ec2").describe_instances()

    assert denied(lambda: aws.client("worker", "ec2").describe_instances()) == "AccessDenied"


@pytest.mark.parametrize("role_arn", [HEAD_ROLE, WORKER_ROLE], ids=["head-role", "worker-role"])
def test_worker_may_pass_no_role(role_arn: str) -> None:
    assert not allowed(load_policy("worker"), "iam:PassRole", role_arn, EC2)


@pytest.mark.parametrize("action", ["sagemaker-mlflow:CreateRun", "sagemaker-mlflow:LogBatch"])
def test_worker_may_not_reach_the_tracking_server(action: str) -> None:
    assert not allowed(load_policy("worker"), action, SERVER)


@pytest.mark.parametrize(
    ("role_arn", "context", "expected"),
    [
        (WORKER_ROLE, EC2, True),
        (HEAD_ROLE, EC2, False),  # a worker launched with the head's role could launch more
        (WORKER_ROLE, {"iam:PassedToService": "lambda.amazonaws.com"}, False),
        (WORKER_ROLE, {}, False),
    ],
    ids=["worker-role-to-ec2", "head-role", "worker-role-to-lambda", "no-service"],
)
def test_head_may_pass_only_the_worker_role_to_ec2(
    role_arn: str, context: dict[str, str], expected: bool
) -> None:
    assert allowed(load_policy("head"), "iam:PassRole", role_arn, context) is expected


@pytest.mark.parametrize(("server", "expected"), [(SERVER, True), (OTHER_SERVER, False)])
def test_head_reaches_only_its_own_tracking_server(server: str, expected: bool) -> None:
    assert allowed(load_policy("head"), "sagemaker-mlflow:CreateRun", server) is expected


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        ({"aws:RequestTag/ray-cluster-name": "sweeps", "ec2:InstanceType": "g5.xlarge"}, True),
        ({"aws:RequestTag/ray-cluster-name": "sweeps", "ec2:InstanceType": "p5.48xlarge"}, False),
        ({"aws:RequestTag/ray-cluster-name": "other", "ec2:InstanceType": "g5.xlarge"}, False),
        ({"ec2:InstanceType": "g5.xlarge"}, False),
    ],
    ids=["tagged-g5", "other-type", "other-cluster", "untagged"],
)
def test_head_launches_only_tagged_workers_of_the_clusters_type(
    context: dict[str, str], expected: bool
) -> None:
    instance = f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/*"

    assert allowed(load_policy("head"), "ec2:RunInstances", instance, context) is expected
