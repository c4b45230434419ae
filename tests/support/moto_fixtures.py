"""A moto server on 127.0.0.1 (random port) for tests that talk to AWS over real HTTP."""

from __future__ import annotations

import contextlib
from typing import Iterator

import pytest


class _MotoServer:
    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.endpoint_url = ""

    def start(self) -> "_MotoServer":
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        return self

    def reset(self) -> None:
        import requests

        requests.post(f"{self.endpoint_url}/moto-api/reset", timeout=5)

    def stop(self) -> None:
        self._server.stop()


@contextlib.contextmanager
def moto_server() -> Iterator[_MotoServer]:
    server = _MotoServer().start()
    try:
        yield server
    finally:
        server.stop()


def fake_aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials moto accepts, and nothing from the developer's own AWS set-up."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    with moto_server() as server:
        yield server.endpoint_url
