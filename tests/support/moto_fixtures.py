"""A moto server on 127.0.0.1 (random port) for tests that talk to AWS over real HTTP.

Uses the sandbox's :class:`bluegreen.sandbox.moto_server.MotoServer`, so tests and the sandbox start
moto the same way.
"""

from __future__ import annotations

from typing import Iterator

import pytest

from bluegreen.sandbox.moto_server import MotoServer, fake_aws_environ


def fake_aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials moto accepts, and nothing from the developer's own AWS set-up."""
    for key, value in fake_aws_environ().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(key, raising=False)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    with MotoServer() as server:
        yield server.endpoint_url
