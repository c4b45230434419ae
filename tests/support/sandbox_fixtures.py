"""Sandbox fixtures: the real servers (moto over HTTP, the weighted DNS server, the two backends).

Registered for every test module by tests/conftest.py (test modules never import them).
``sandbox`` is a fresh sandbox per test; ``module_sandbox`` is shared by a module (start-up is ~0.5 s), and
``shared_sandbox`` hands the module's sandbox to one test after putting it back to 100/0 with both backends
healthy, so tests that share it do not see each other's changes.
"""

from __future__ import annotations

import pytest

SANDBOX_RECORDS = ("burnham.example.com", "api.example.com")
SANDBOX_TTL = 1


def reset_sandbox(sb) -> None:
    sb.blue.set_mode("ok")
    sb.green.set_mode("ok")
    if any(weights != (100, 0) for weights in sb.weights().values()):
        sb.set_weights(100, 0, ttl=SANDBOX_TTL)
    sb.blue.reset_counts()
    sb.green.reset_counts()


@pytest.fixture
def sandbox():
    from bluegreen.sandbox import Sandbox

    with Sandbox(records=SANDBOX_RECORDS, ttl=SANDBOX_TTL) as sb:
        yield sb


@pytest.fixture(scope="module")
def module_sandbox():
    from bluegreen.sandbox import Sandbox

    with Sandbox(records=SANDBOX_RECORDS, ttl=SANDBOX_TTL) as sb:
        yield sb


@pytest.fixture
def shared_sandbox(module_sandbox):
    reset_sandbox(module_sandbox)
    yield module_sandbox
