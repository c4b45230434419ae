"""Shared fixtures: a moto server over HTTP (never a patched client) and hosted zones seeded in it."""

from __future__ import annotations

import pytest

from tests.support.kube_emulator import kube, kube_servers  # noqa: F401 - fixtures, registered for every test
from tests.support.moto_fixtures import FAKE_CREDENTIALS, Zone  # noqa: F401 - FAKE_CREDENTIALS for tests/nodes
from tests.support.sandbox_fixtures import module_sandbox, sandbox, shared_sandbox  # noqa: F401 - fixtures


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


@pytest.fixture
def zone(moto_endpoint) -> Zone:
    return Zone(moto_endpoint)
