"""boto3 sessions and clients built from the ``aws`` config section, shared by every AWS adapter.

The region follows the SDK's own chain when ``aws.region`` is unset (``AWS_REGION``, ``AWS_DEFAULT_REGION``,
the profile's ``region``): under IRSA the pod's ``AWS_REGION`` is what it must use. Where a region is needed
and none is found, that is a ConfigError with the fix, never a silent default. Credential problems (no
credentials, an unknown profile, an expired SSO token) are ConfigErrors too (exit 2), with the fix.
``endpoint_url`` points every client at a local emulator (the sandbox's moto server). botocore's own
retries are kept small: bluegreen retries with its own bounded, jittered policy where it matters.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from bluegreen.config import AwsConfig
from bluegreen.errors import ConfigError

_sessions: dict[tuple, Any] = {}

# Route 53 and IAM are global: their endpoints answer whatever region the client names.
GLOBAL_SERVICES = frozenset({"route53", "iam"})


def session(aws: AwsConfig):
    import boto3
    from botocore.exceptions import ProfileNotFound

    key = (aws.profile, aws.region)
    if key not in _sessions:
        try:
            _sessions[key] = boto3.session.Session(profile_name=aws.profile, region_name=aws.region)
        except ProfileNotFound:
            raise ConfigError(f"the AWS profile {aws.profile!r} does not exist",
                              hint="fix `aws.profile` or AWS_PROFILE (`aws configure list-profiles` lists them)") \
                from None
    return _sessions[key]


def resolve_region(aws: AwsConfig, *, service: str = "") -> str:
    """``aws.region``, else the SDK's chain; a global service falls back to us-east-1 (its home)."""
    region = aws.region or session(aws).region_name
    if region:
        return region
    if service in GLOBAL_SERVICES:
        return "us-east-1"
    raise ConfigError(f"no AWS region for {service or 'this command'}: `aws.region` is unset and the SDK found "
                      "none (AWS_REGION, AWS_DEFAULT_REGION, the profile's region)",
                      hint="set `aws.region` in the config, or export AWS_REGION")


def client(aws: AwsConfig, service: str, *, total_attempts: int = 3, timeout: float = 10.0):
    from botocore.config import Config as BotoConfig

    boto_config = BotoConfig(
        retries={"total_max_attempts": total_attempts, "mode": "standard"},
        connect_timeout=timeout,
        read_timeout=timeout,
        user_agent_extra="bluegreen",
    )
    region = resolve_region(aws, service=service)
    return session(replace(aws, region=aws.region)).client(service, region_name=region,
                                                           endpoint_url=aws.endpoint_url, config=boto_config)


_EXPIRED = {"ExpiredToken", "ExpiredTokenException", "RequestExpired", "InvalidClientTokenId",
            "UnrecognizedClientException", "InvalidSignatureException", "SignatureDoesNotMatch"}


def credentials_error(error: BaseException) -> ConfigError | None:
    """A ConfigError with the fix when ``error`` is a credentials problem, else None. Never repeats a key."""
    from botocore.exceptions import (ClientError, NoCredentialsError, NoRegionError, PartialCredentialsError,
                                     ProfileNotFound, SSOError, TokenRetrievalError, UnauthorizedSSOTokenError)

    if isinstance(error, (NoCredentialsError, PartialCredentialsError)):
        return ConfigError("no AWS credentials found",
                           hint="set AWS_PROFILE (or `aws.profile`), run `aws sso login`, or run where an IAM role "
                                "is attached (IRSA, an instance profile)")
    if isinstance(error, (SSOError, TokenRetrievalError, UnauthorizedSSOTokenError)):
        return ConfigError("the AWS SSO session has expired or is not logged in",
                           hint="run `aws sso login` (with --profile NAME for the profile bluegreen uses)")
    if isinstance(error, ProfileNotFound):
        return ConfigError(f"AWS profile not found: {error}", hint="fix `aws.profile` or AWS_PROFILE")
    if isinstance(error, NoRegionError):
        return ConfigError("no AWS region", hint="set `aws.region` in the config, or export AWS_REGION")
    if isinstance(error, ClientError) and error.response.get("Error", {}).get("Code") in _EXPIRED:
        code = error.response["Error"]["Code"]
        return ConfigError(f"AWS rejected the credentials ({code})",
                           hint="refresh them: `aws sso login`, or new keys for the profile; check the clock")
    return None
