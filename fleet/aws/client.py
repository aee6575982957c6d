"""The one place that makes boto3 sessions and clients: boto3's own configuration (profiles,
regions, AWS_ENDPOINT_URL, credentials chain) with the standard retry mode, so throttling is
retried before it is reported; and, when a role is named, its credentials from STS AssumeRole."""

from __future__ import annotations

from typing import Any

from fleet.core.errors import UsageError

EXTRA_HINT = "install the AWS extra: pip install 'fleet-isatap[aws]'"
ROLE_SESSION_NAME = "fleet-inventory"  # how the assumed role's calls show in CloudTrail


def boto3_module() -> Any:
    """boto3, or a UsageError that says how to install it."""
    try:
        import boto3
    except ImportError as exc:
        raise UsageError(f"this needs boto3, which is not installed: {EXTRA_HINT}") from exc
    return boto3


def _config() -> Any:
    from botocore.config import Config

    return Config(retries={"mode": "standard"}, connect_timeout=10, read_timeout=30)


def aws_session(*, profile: str | None = None, role_arn: str | None = None,
                region: str | None = None) -> Any:
    """A boto3 session for `profile` (None: boto3's default chain); with `role_arn`, a session
    holding that role's temporary credentials, got once with sts:AssumeRole by the profile's
    credentials (`region` picks STS's regional endpoint; None: boto3's). botocore's exceptions
    pass through: the caller names what failed."""
    boto3 = boto3_module()
    session = boto3.session.Session(profile_name=profile) if profile else boto3.session.Session()
    if role_arn is None:
        return session
    sts = session.client("sts", region_name=region, config=_config())
    credentials = sts.assume_role(RoleArn=role_arn, RoleSessionName=ROLE_SESSION_NAME)["Credentials"]
    return boto3.session.Session(aws_access_key_id=credentials["AccessKeyId"],
                                 aws_secret_access_key=credentials["SecretAccessKey"],
                                 aws_session_token=credentials["SessionToken"],
                                 region_name=session.region_name)


def ec2_client(region: str | None = None, *, profile: str | None = None, session: Any = None) -> Any:
    """An EC2 client for `region` (None: boto3's configured region), from `session` (see
    aws_session) or else `profile` (None: boto3's default chain). Retries: boto3's standard mode,
    its attempts from AWS_MAX_ATTEMPTS or the config file when set."""
    session = session if session is not None else aws_session(profile=profile)
    return session.client("ec2", region_name=region, config=_config())
