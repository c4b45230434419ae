"""Preflight tests: one emulated cluster (kmock over HTTP) read through the official kubernetes client."""

from __future__ import annotations

import pytest

from bluegreen.adapters.kube import Kube
from bluegreen.sandbox.kube import KubeEmulators


@pytest.fixture(scope="session")
def preflight_servers(tmp_path_factory):
    servers = KubeEmulators(("green",)).start(tmp_path_factory.mktemp("preflight-kube"))
    try:
        yield servers
    finally:
        servers.stop()


@pytest.fixture
def green(preflight_servers):
    """The emulated green cluster, emptied, at Kubernetes 1.30."""
    preflight_servers.reset()
    server = preflight_servers["green"]
    server.set_kubernetes_version("1.30")
    return server


@pytest.fixture
def green_kube(preflight_servers, green):
    """A Kube client for green, built from the kubeconfig like any real cluster's."""
    from kubernetes import config as k8s_config

    api_client = k8s_config.new_client_from_config(config_file=str(preflight_servers.kubeconfig),
                                                   context="green", persist_config=False)
    kube = Kube(api_client, "green cluster (eks-blueprint-green)")
    yield kube
    kube.close()
