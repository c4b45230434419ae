"""Shared fixtures: a moto server over HTTP (never a patched client) and hosted zones seeded in it."""

from __future__ import annotations

import itertools
import uuid

import pytest

FAKE_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@pytest.fixture(scope="session")
def moto_endpoint():
    """One moto server for the session (tests keep apart by using zones and tables of their own)."""
    from bluegreen.sandbox.moto_server import MotoServer

    with MotoServer() as server:
        yield server.endpoint_url


@pytest.fixture(autouse=True)
def _aws_env(monkeypatch, tmp_path):
    # boto3 in the code under test finds these through its normal credential chain.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


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


@pytest.fixture
def zone(moto_endpoint) -> Zone:
    return Zone(moto_endpoint)
