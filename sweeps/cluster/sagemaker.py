"""SageMaker managed MLflow: what its ARN names, and whether versions reach the Model Registry.

Registering a model version against a SageMaker MLflow server is a plain MLflow registry call;
the server copies the version into SageMaker Model Registry only when automatic model
registration is switched on for it. This module asks SageMaker which is the case.
"""

from __future__ import annotations

from dataclasses import dataclass

from sweeps.config.spec import ARN_PATTERN


@dataclass(frozen=True)
class MlflowArn:
    """The parts of ``arn:aws:sagemaker:REGION:ACCOUNT:KIND/NAME``."""

    arn: str
    region: str
    account: str
    kind: str  # "mlflow-tracking-server" or "mlflow-app"
    name: str


def parse_arn(uri: str) -> MlflowArn | None:
    """The ARN's parts, or None if ``uri`` is not a SageMaker MLflow ARN."""
    if not ARN_PATTERN.match(uri):
        return None
    _, _, _, region, account, resource = uri.split(":", 5)
    kind, _, name = resource.partition("/")
    return MlflowArn(uri, region, account, kind, name)


def model_registry_note(uri: str) -> str | None:
    """A sentence on whether registered versions also land in SageMaker Model Registry.

    None for tracking URIs that are not SageMaker ARNs. Never raises: if SageMaker cannot be
    asked (permissions, network), the sentence says so.
    """
    arn = parse_arn(uri)
    if arn is None:
        return None
    try:
        enabled = _automatic_registration(arn)
    except Exception as exc:  # noqa: BLE001 - informational only
        from trainable.aws import describe_aws_error

        return (
            "could not check whether SageMaker copies versions into its Model Registry "
            f"({describe_aws_error(exc)}); it does when automatic model registration is on"
        )
    if enabled:
        return (
            f"automatic model registration is on for {arn.name}: "
            "SageMaker Model Registry gets this version too"
        )
    return (
        f"automatic model registration is off for {arn.name}: the version is in MLflow only "
        "(AutomaticModelRegistration=True copies versions to SageMaker Model Registry)"
    )


def _automatic_registration(arn: MlflowArn) -> bool:
    import boto3
    from botocore.config import Config

    client = boto3.session.Session().client(
        "sagemaker",
        region_name=arn.region,
        config=Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 1}),
    )
    if arn.kind == "mlflow-tracking-server":
        server = client.describe_mlflow_tracking_server(TrackingServerName=arn.name)
        return bool(server.get("AutomaticModelRegistration"))
    app = client.describe_mlflow_app(Arn=arn.arn)
    return app.get("ModelRegistrationMode") == "AutoModelRegistrationEnabled"
