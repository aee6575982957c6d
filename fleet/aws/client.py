"""The one place that makes boto3 clients: boto3's own configuration (profiles, regions,
AWS_ENDPOINT_URL, credentials chain) with the standard retry mode, so throttling is retried
before it is reported."""

from __future__ import annotations

from typing import Any

from fleet.core.errors import UsageError

EXTRA_HINT = "install the AWS extra: pip install 'fleet-isatap[aws]'"


def boto3_module() -> Any:
    """boto3, or a UsageError that says how to install it."""
    try:
        import boto3
    except ImportError as exc:
        raise UsageError(f"this needs boto3, which is not installed: {EXTRA_HINT}") from exc
    return boto3


def ec2_client(region: str | None = None, *, profile: str | None = None) -> Any:
    """An EC2 client for `region` (None: boto3's configured region) and `profile` (None: boto3's
    default chain). Retries: boto3's standard mode, its attempts from AWS_MAX_ATTEMPTS or the
    config file when set."""
    boto3 = boto3_module()
    from botocore.config import Config

    session = boto3.session.Session(profile_name=profile) if profile else boto3.session.Session()
    return session.client("ec2", region_name=region,
                          config=Config(retries={"mode": "standard"}, connect_timeout=10, read_timeout=30))
