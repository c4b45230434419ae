"""The sandbox behaves like the world it stands for: Kubernetes API errors and discovery as kubectl meets
them, Route 53 changes that stay PENDING, caching resolvers (ours and a real unbound), alias records and
health as Route 53 evaluates them. Real servers on loopback throughout."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from bluegreen.sandbox.kube import (
    ARGOCD_NAMESPACE, DAEMONSETS, DEPLOYMENTS, NO_SECRETS, SECRETS, STATEFULSETS, KubeEmulators, cluster_secret,
    daemonset, deployment, identity, statefulset,
)

KUBECTL = shutil.which("kubectl")
ADMIN_TOKEN = "realism-admin-token"
NO_SECRETS_TOKEN = "realism-no-secrets-token"


def need_kubectl() -> str:
    if KUBECTL is None:
        pytest.skip("kubectl not installed: install kubectl (https://kubernetes.io/docs/tasks/tools/) to run this test")
    return KUBECTL


# -- Kubernetes API emulator -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def clusters(tmp_path_factory):
    kube = KubeEmulators(names=("blue",), token=ADMIN_TOKEN, tls=True,
                         tokens={NO_SECRETS_TOKEN: identity("system:serviceaccount:bluegreen:runner", NO_SECRETS)})
    kube.start(tmp_path_factory.mktemp("realism-kube"))
    try:
        blue = kube["blue"]
        blue.put(SECRETS, ARGOCD_NAMESPACE, "eks-blueprint-blue", cluster_secret("eks-blueprint-blue",
                                                                                data={"config": "{}"}))
        blue.put(SECRETS, ARGOCD_NAMESPACE, "repo-creds", {"metadata": {"labels": {"x": "y"}}})
        blue.put(DEPLOYMENTS, "team-burnham", "burnham", deployment(2, updated=1, generation=2))
        blue.put(DEPLOYMENTS, "team-burnham", "done", deployment(2))
        blue.put(STATEFULSETS, "team-burnham", "db", statefulset(3, updated=1))
        blue.put(DAEMONSETS, "kube-system", "agent", daemonset(3, updated=2))
        yield kube
    finally:
        kube.stop()


def kubeconfig(clusters, tmp_path: Path, token: str | None) -> Path:
    return clusters.write_kubeconfig(tmp_path / "kubeconfig.yaml", token=token)


def kubectl(config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([need_kubectl(), "--kubeconfig", str(config), *args], capture_output=True, text=True,
                          timeout=30)


def api_client(clusters, tmp_path: Path, token: str | None):
    from kubernetes import client as k8s
    from kubernetes import config as k8s_config

    configuration = k8s.Configuration()
    k8s_config.load_kube_config(config_file=str(kubeconfig(clusters, tmp_path, token)), context="blue",
                                client_configuration=configuration, persist_config=False)
    configuration.retries = 0
    return k8s.ApiClient(configuration)


SEED_COMMAND = ("get", "secret", "-n", "argocd", "-l", "argocd.argoproj.io/secret-type=cluster", "-o", "json")


def test_the_seeds_kubectl_command_lists_the_cluster_secrets(clusters, tmp_path):
    result = kubectl(kubeconfig(clusters, tmp_path, None), *SEED_COMMAND)
    assert result.returncode == 0, result.stderr
    listing = json.loads(result.stdout)
    assert [item["metadata"]["name"] for item in listing["items"]] == ["eks-blueprint-blue"]


def test_core_group_discovery_says_v1(clusters, tmp_path):
    from kubernetes import client as k8s

    with api_client(clusters, tmp_path, ADMIN_TOKEN) as client:
        assert k8s.CoreV1Api(client).get_api_resources().group_version == "v1"
        assert k8s.AppsV1Api(client).get_api_resources().group_version == "apps/v1"
        listing = k8s.CoreV1Api(client).list_namespaced_secret("argocd")
        assert (listing.kind, listing.api_version) == ("SecretList", "v1")


@pytest.mark.parametrize("token", ["not-the-token", ""])
def test_a_wrong_or_missing_token_is_401_with_a_status(clusters, tmp_path, token):
    from kubernetes import client as k8s
    from kubernetes.client.exceptions import ApiException

    with api_client(clusters, tmp_path, token) as client:
        if not token:
            client.configuration.api_key.clear()  # no Authorization header at all
        with pytest.raises(ApiException) as raised:
            k8s.CoreV1Api(client).list_namespaced_secret("argocd")
    assert raised.value.status == 401
    assert json.loads(raised.value.body) == {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                             "status": "Failure", "message": "Unauthorized",
                                             "reason": "Unauthorized", "code": 401}


def test_kubectl_with_a_wrong_token_is_told_it_is_unauthorized(clusters, tmp_path):
    result = kubectl(kubeconfig(clusters, tmp_path, "not-the-token"), *SEED_COMMAND)
    assert result.returncode != 0 and "Unauthorized" in result.stderr


def test_a_token_without_secrets_is_forbidden_with_the_api_servers_message(clusters, tmp_path):
    from kubernetes import client as k8s
    from kubernetes.client.exceptions import ApiException

    with api_client(clusters, tmp_path, NO_SECRETS_TOKEN) as client:
        assert k8s.AppsV1Api(client).list_namespaced_deployment("team-burnham").items  # other reads still work
        with pytest.raises(ApiException) as raised:
            k8s.CoreV1Api(client).list_namespaced_secret("argocd")
    body = json.loads(raised.value.body)
    assert raised.value.status == 403 and body["reason"] == "Forbidden"
    assert body["message"] == ('secrets is forbidden: User "system:serviceaccount:bluegreen:runner" cannot list '
                               'resource "secrets" in API group "" in the namespace "argocd"')
    result = kubectl(kubeconfig(clusters, tmp_path, NO_SECRETS_TOKEN), *SEED_COMMAND)
    assert result.returncode != 0 and "cannot list resource \"secrets\"" in result.stderr


def test_bluegreen_names_the_missing_permission_and_the_rejected_token(clusters, tmp_path):
    from bluegreen.adapters.kube import ClusterAccessError, Kube

    for token, expected, hint in (
            (NO_SECRETS_TOKEN, "HTTP 403 Forbidden: missing permission list secrets in namespace argocd",
             "grant list secrets in namespace argocd"),
            ("not-the-token", "HTTP 401 Unauthorized: the cluster rejected the token", "renew the credentials")):
        kube = Kube(api_client(clusters, tmp_path, token), "blue cluster")
        with pytest.raises(ClusterAccessError) as raised, kube.guard("listing ArgoCD cluster secrets"):
            kube.core.list_namespaced_secret("argocd")
        kube.close()
        assert expected in raised.value.message and hint in (raised.value.hint or "")
        assert token not in raised.value.message + (raised.value.hint or "")


def test_workload_helpers_carry_rollout_status_that_kubectl_and_bluegreen_agree_on(clusters, tmp_path):
    from kubernetes import client as k8s

    from bluegreen.core.readiness import rollout_problem, workload_from_object

    with api_client(clusters, tmp_path, ADMIN_TOKEN) as client:
        apps = k8s.AppsV1Api(client)
        read = {
            ("Deployment", "burnham"): apps.read_namespaced_deployment("burnham", "team-burnham"),
            ("Deployment", "done"): apps.read_namespaced_deployment("done", "team-burnham"),
            ("StatefulSet", "db"): apps.read_namespaced_stateful_set("db", "team-burnham"),
            ("DaemonSet", "agent"): apps.read_namespaced_daemon_set("agent", "kube-system"),
        }
        problems = {key: rollout_problem(workload_from_object(key[0], client.sanitize_for_serialization(obj)))
                    for key, obj in read.items()}
    mid = read[("Deployment", "burnham")]
    assert (mid.metadata.generation, mid.status.observed_generation, mid.status.updated_replicas,
            mid.status.available_replicas) == (2, 2, 1, 2)
    assert problems == {("Deployment", "burnham"): "rolling out: 1 of 2 updated",
                        ("Deployment", "done"): None,
                        ("StatefulSet", "db"): "rolling out: 1 of 3 updated",
                        ("DaemonSet", "agent"): "rolling out: 2 of 3 updated"}
    if KUBECTL is None:
        return  # the kubectl cross-check needs kubectl; the assertions above stand without it
    config = kubeconfig(clusters, tmp_path, None)
    for kind, namespace, name, expected in (
            ("deployment", "team-burnham", "burnham", "1 out of 2 new replicas have been updated"),
            ("deployment", "team-burnham", "done", "successfully rolled out"),
            ("daemonset", "kube-system", "agent", "2 out of 3 new pods have been updated")):
        result = kubectl(config, "rollout", "status", f"{kind}/{name}", "-n", namespace, "--watch=false")
        assert expected in result.stdout, result.stdout + result.stderr
