"""Where Ray Tune keeps experiment state and checkpoints: a local folder or ``s3://`` prefix.

Uses pyarrow's filesystems (as Ray Tune does), so the same code serves both and honours the
standard AWS environment (region, credentials chain, ``AWS_ENDPOINT_URL[_S3]``).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from sweeps.errors import PreflightError
from trainable.aws import describe_aws_error, split_s3_uri


def resolve_storage(storage: str, cwd: Path | None = None) -> str:
    """An absolute local path, or the ``s3://`` URI unchanged."""
    if is_remote(storage):
        return storage.rstrip("/")
    path = Path(storage).expanduser()
    if not path.is_absolute():
        path = (cwd or Path.cwd()) / path
    return str(path.resolve())


def is_remote(storage: str) -> bool:
    return "://" in storage and not storage.startswith("file://")


def _filesystem(uri: str):
    import pyarrow.fs

    if is_remote(uri):
        # pyarrow honours the AWS environment, AWS_ENDPOINT_URL[_S3] included.
        return pyarrow.fs.FileSystem.from_uri(uri)
    return pyarrow.fs.LocalFileSystem(), uri


def as_uri(storage: str, fs_path: str) -> str:
    """A filesystem path under ``storage`` as a URI (pyarrow drops the ``s3://`` scheme)."""
    if "://" in fs_path or not is_remote(storage):
        return fs_path
    return f"{storage.split('://', 1)[0]}://{fs_path.lstrip('/')}"


def local_folder(filesystem: Any, path: str, scratch: str) -> str:
    """A local folder with the contents of ``path`` on ``filesystem`` (a pyarrow filesystem,
    e.g. a Tune checkpoint's): the path itself if it is local, else a copy in ``scratch``.

    Not ``Checkpoint.to_directory``: that takes a lock file in a machine-wide
    ``/tmp/_ray_lockfiles``, which another user's Ray may own.
    """
    import pyarrow.fs

    if isinstance(filesystem, pyarrow.fs.LocalFileSystem):
        return path
    Path(scratch).mkdir(parents=True, exist_ok=True)
    pyarrow.fs.copy_files(
        path,
        scratch,
        source_filesystem=filesystem,
        destination_filesystem=pyarrow.fs.LocalFileSystem(),
    )
    return scratch


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *parts])


def write_text(uri: str, text: str) -> None:
    """Write ``text`` to the file at ``uri`` (local path or ``s3://``), creating folders."""
    fs, path = _filesystem(uri)
    fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    with fs.open_output_stream(path) as out:
        out.write(text.encode())


def delete(uri: str) -> None:
    """Delete the file at ``uri`` if it exists."""
    import pyarrow.fs

    fs, path = _filesystem(uri)
    if fs.get_file_info(path).type == pyarrow.fs.FileType.File:
        fs.delete_file(path)


def read_text(uri: str) -> str | None:
    """The text at ``uri``, or None if there is no such file."""
    import pyarrow.fs

    fs, path = _filesystem(uri)
    if fs.get_file_info(path).type != pyarrow.fs.FileType.File:
        return None
    with fs.open_input_stream(path) as src:
        return src.read().decode()


def file_digests(folder: str, prefixes: tuple[str, ...]) -> dict[str, str]:
    """sha256 of each file directly in ``folder`` whose name starts with one of ``prefixes``."""
    import hashlib

    import pyarrow.fs

    fs, path = _filesystem(folder)
    digests = {}
    for info in fs.get_file_info(pyarrow.fs.FileSelector(path, allow_not_found=True)):
        if info.type == pyarrow.fs.FileType.File and info.base_name.startswith(prefixes):
            with fs.open_input_stream(info.path) as src:
                digests[info.base_name] = hashlib.sha256(src.read()).hexdigest()
    return digests


def check_writable(storage: str) -> None:
    """Write and delete a probe object under ``storage``.

    Raises:
        PreflightError: naming the address and the cause.
    """
    probe = join(storage, f".sweep-probe-{uuid.uuid4().hex[:8]}")
    if storage.startswith("s3://"):
        _check_s3_writable(storage, probe)
        return
    try:
        fs, path = _filesystem(probe)
        fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
        with fs.open_output_stream(path) as out:
            out.write(b"probe")
        fs.delete_file(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises OSError subclasses and others
        raise PreflightError(f"storage: cannot write to {storage}: {_cause(exc)}") from None


def _check_s3_writable(storage: str, probe: str) -> None:
    import boto3
    import botocore.exceptions

    bucket, key = split_s3_uri(probe)
    try:
        # A fresh session resolves credentials now; boto3's default one caches its first find.
        s3 = boto3.session.Session().client("s3")
        s3.put_object(Bucket=bucket, Key=key, Body=b"probe")
        s3.delete_object(Bucket=bucket, Key=key)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        cause = describe_aws_error(exc)
        raise PreflightError(f"storage: cannot write to {storage}: {cause}") from None


def _cause(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    lowered = text.lower()
    for needle, cause in (
        ("nosuchbucket", "no such bucket"),
        ("no such bucket", "no such bucket"),
        ("access denied", "access denied"),
        ("accessdenied", "access denied"),
        ("invalidaccesskeyid", "invalid AWS access key"),
        ("signaturedoesnotmatch", "invalid AWS credentials"),
        ("connection refused", "connection refused"),
        ("permission denied", "permission denied"),
        ("read-only file system", "read-only file system"),
    ):
        if needle in lowered:
            return cause
    return text
