"""Small AWS helpers shared by data loading and the driver's storage checks."""

from __future__ import annotations

_CLIENT_ERROR_CAUSES = {
    "NoSuchBucket": "no such bucket",
    "NoSuchKey": "no such object",
    "404": "not found",
    "NotFound": "not found",
    "AccessDenied": "access denied",
    "403": "access denied",
    "Forbidden": "access denied",
    "InvalidAccessKeyId": "invalid AWS access key (check the credentials)",
    "SignatureDoesNotMatch": "invalid AWS secret key (check the credentials)",
    "ExpiredToken": "the AWS session token has expired",
}


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key/path`` -> (``bucket``, ``key/path``)."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def describe_aws_error(exc: Exception) -> str:
    """A short cause for a boto3/botocore error, never including credentials."""
    import botocore.exceptions

    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        return "no AWS credentials found (set AWS_PROFILE or AWS_ACCESS_KEY_ID, or use a role)"
    if isinstance(exc, botocore.exceptions.EndpointConnectionError):
        return f"cannot connect to {exc.kwargs.get('endpoint_url', 'the endpoint')}"
    if isinstance(exc, botocore.exceptions.ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        return _CLIENT_ERROR_CAUSES.get(code, code or "error")
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
