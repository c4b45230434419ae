"""boto3 sessions and clients built from the ``aws`` config section, shared by every AWS adapter.

``endpoint_url`` points every client at a local emulator (the sandbox's moto server). botocore's own
retries are kept small: bluegreen retries with its own bounded, jittered policy where it matters.
"""

from __future__ import annotations

from typing import Any

from bluegreen.config import AwsConfig

_sessions: dict[tuple, Any] = {}


def session(aws: AwsConfig):
    import boto3

    key = (aws.profile, aws.region)
    if key not in _sessions:
        _sessions[key] = boto3.session.Session(profile_name=aws.profile, region_name=aws.region or "us-east-1")
    return _sessions[key]


def client(aws: AwsConfig, service: str, *, total_attempts: int = 3, timeout: float = 10.0):
    from botocore.config import Config as BotoConfig

    boto_config = BotoConfig(
        retries={"total_max_attempts": total_attempts, "mode": "standard"},
        connect_timeout=timeout,
        read_timeout=timeout,
        user_agent_extra="bluegreen",
    )
    return session(aws).client(service, endpoint_url=aws.endpoint_url, config=boto_config)
