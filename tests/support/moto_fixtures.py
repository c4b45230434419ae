"""AWS settings for tests that talk to moto over real HTTP (the ``moto_endpoint`` fixture is in conftest)."""

from __future__ import annotations

import pytest

from bluegreen.sandbox.moto_server import fake_aws_environ


def fake_aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials moto accepts, and nothing from the developer's own AWS set-up."""
    for key, value in fake_aws_environ().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(key, raising=False)
