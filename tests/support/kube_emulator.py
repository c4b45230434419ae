"""kmock's KubernetesEmulator as a real HTTP server on 127.0.0.1, for the official kubernetes client.

The machinery lives in :mod:`bluegreen.sandbox.kube` (the sandbox and ``bluegreen demo`` use it too); this
module re-exports it for the tests and adds their pytest fixtures.
"""

from __future__ import annotations

from typing import Iterator

import pytest

from bluegreen.sandbox.kube import (  # noqa: F401 - re-exported for the tests
    _RESOURCES, _VERSIONS, APPLICATIONS, DEPLOYMENTS, INGRESSES, SECRETS, SERVICES, STATEFULSETS,
    ApiServerEmulator, KubeEmulators, KubeEmulatorServer, application, cluster_secret, deployment,
    label_selector_matches, statefulset,
)


@pytest.fixture(scope="session")
def kube_servers(tmp_path_factory) -> Iterator[KubeEmulators]:
    """Three emulated clusters (blue, green, hub) for the whole session, and a kubeconfig for them."""
    from bluegreen.sandbox.kube import EKS_TOKENS, Identity

    # The kubeconfig's token, and EKS IAM tokens as the EKS authenticator admits them.
    servers = KubeEmulators(tokens={EKS_TOKENS: Identity("eks-iam-user")}).start(tmp_path_factory.mktemp("kube"))
    try:
        yield servers
    finally:
        servers.stop()


@pytest.fixture
def kube(kube_servers) -> KubeEmulators:
    """The emulated clusters, emptied before each test."""
    kube_servers.reset()
    return kube_servers
