"""AWS settings and hosted zones for tests that talk to moto over real HTTP (the ``moto_endpoint`` and ``zone``
fixtures are in conftest)."""

from __future__ import annotations

import itertools
import uuid

import pytest

from bluegreen.sandbox.moto_server import fake_aws_environ

FAKE_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def fake_aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials moto accepts, and nothing from the developer's own AWS set-up."""
    for key, value in fake_aws_environ().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(key, raising=False)


_zone_counter = itertools.count(1)


class Zone:
    """A hosted zone in the moto server, with helpers to seed weighted pairs and to dump it byte for byte."""

    def __init__(self, endpoint: str) -> None:
        import boto3

        self.client = boto3.client("route53", endpoint_url=endpoint, region_name="us-east-1", **FAKE_CREDENTIALS)
        self.name = f"z{next(_zone_counter)}-{uuid.uuid4().hex[:6]}.example.com"
        answer = self.client.create_hosted_zone(Name=self.name, CallerReference=uuid.uuid4().hex)
        self.id = answer["HostedZone"]["Id"].rsplit("/", 1)[-1]

    def fqdn(self, label: str) -> str:
        return f"{label}.{self.name}"

    def upsert(self, *rrsets: dict) -> None:
        self.client.change_resource_record_sets(
            HostedZoneId=self.id, ChangeBatch={"Changes": [{"Action": "UPSERT", "ResourceRecordSet": r} for r in rrsets]})

    def weighted_pair(self, label: str, blue: int = 100, green: int = 0, ttl: int = 60, rtype: str = "A",
                      blue_value: str = "127.0.0.2", green_value: str = "127.0.0.3",
                      blue_id: str = "eks-blueprint-blue", green_id: str = "eks-blueprint-green") -> str:
        name = self.fqdn(label)
        self.upsert(
            {"Name": name, "Type": rtype, "SetIdentifier": blue_id, "Weight": blue, "TTL": ttl,
             "ResourceRecords": [{"Value": blue_value}]},
            {"Name": name, "Type": rtype, "SetIdentifier": green_id, "Weight": green, "TTL": ttl,
             "ResourceRecords": [{"Value": green_value}]},
        )
        return name

    def dump(self) -> list[dict]:
        pages = self.client.get_paginator("list_resource_record_sets").paginate(HostedZoneId=self.id)
        return [r for page in pages for r in page["ResourceRecordSets"]]

    def weights(self, name: str) -> dict[str, int]:
        return {r["SetIdentifier"]: r["Weight"] for r in self.dump()
                if r["Name"].rstrip(".") == name and "SetIdentifier" in r}
