"""Every Kubernetes-object finding, planted in the emulator and read through the official client; plus a
clean cluster that has none."""

from __future__ import annotations

import json

import pytest

from bluegreen.adapters.inventory import collect_inventory
from bluegreen.preflight import PreflightSettings, run_preflight
from tests.support.preflight_objects import (
    APPLICATIONS, CRONJOBS, DAEMONSETS, DEPLOYMENTS, INGRESSES, JOBS, NODES, PDBS, PVCS, REPLICASETS, SECRETS,
    STATEFULSETS, container, daemonset, deployment, helm_release_secret, node, pdb, statefulset,
)

NS = "team-burnham"


def plant_clean(server) -> None:
    """A cluster that passes: 3-replica Deployment and StatefulSet with PDBs, probes, spread, RollingUpdate."""
    server.put(DEPLOYMENTS, NS, "web", deployment("web"))
    server.put(PDBS, NS, "web", pdb("web"))
    server.put(STATEFULSETS, NS, "queue", statefulset("queue"))
    server.put(PDBS, NS, "queue", pdb("queue", minAvailable=2))
    server.put(DAEMONSETS, "kube-system", "agent", daemonset("agent"))
    server.put(NODES, None, "ip-10-0-1-10", node("v1.30.4-eks-a737599"))


def preflight(kube, target="1.31", **settings):
    inventory = collect_inventory(kube)
    return run_preflight(inventory, target_version=target, settings=PreflightSettings(**settings))


def codes(report) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for f in report.findings:
        out.setdefault(f.code, []).append(f.object)
    return out


def test_clean_cluster_has_no_findings(green, green_kube):
    plant_clean(green)
    report = preflight(green_kube)
    assert report.findings == (), report.text()
    assert not report.has_errors
    assert report.current_version == "1.30" and report.target_version == "1.31"


def test_removed_api_in_last_applied_annotation(green, green_kube):
    plant_clean(green)
    applied = {"apiVersion": "extensions/v1beta1", "kind": "Ingress", "metadata": {"name": "web", "namespace": NS}}
    green.put(INGRESSES, NS, "web", {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {
        "annotations": {"kubectl.kubernetes.io/last-applied-configuration": json.dumps(applied)}}})
    report = preflight(green_kube)
    (item,) = report.findings
    assert (item.code, item.object, item.severity.value) == ("BG-K8S-001", f"Ingress/{NS}/web", "error")
    assert "last-applied-configuration" in item.what and "networking.k8s.io/v1" in item.fix
    assert report.has_errors


def test_deprecated_but_not_yet_removed_api_is_a_warning(green, green_kube):
    plant_clean(green)
    applied = {"apiVersion": "flowcontrol.apiserver.k8s.io/v1beta3", "kind": "FlowSchema",
               "metadata": {"name": "custom"}}
    green.put("flowcontrol.apiserver.k8s.io/v1/flowschemas", None, "custom", {"metadata": {
        "annotations": {"kubectl.kubernetes.io/last-applied-configuration": json.dumps(applied)}}})
    assert codes(preflight(green_kube, "1.31")) == {"BG-K8S-002": ["FlowSchema/custom"]}
    green.set_kubernetes_version("1.31")
    assert codes(preflight(green_kube, "1.32")) == {"BG-K8S-001": ["FlowSchema/custom"]}


def test_removed_api_in_a_helm_release_record_without_keeping_the_secret(green, green_kube, caplog):
    plant_clean(green)
    manifest = ("---\napiVersion: policy/v1beta1\nkind: PodDisruptionBudget\nmetadata:\n  name: cache\n"
                "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: cache\n")
    green.put(SECRETS, NS, "sh.helm.release.v1.cache.v2", helm_release_secret("cache", NS, manifest, version=2))
    inventory = collect_inventory(green_kube)
    assert "HELM-VALUES-SECRET-DO-NOT-LEAK" not in repr(inventory)  # only apiVersion/kind/name are kept
    report = run_preflight(inventory, target_version="1.31", settings=PreflightSettings())
    (item,) = report.findings
    assert (item.code, item.object) == ("BG-K8S-001", f"PodDisruptionBudget/{NS}/cache")
    assert item.source == f"Helm release {NS}/cache (revision 2)"
    text = report.text() + json.dumps(report.as_dict()) + caplog.text
    assert "HELM-VALUES-SECRET-DO-NOT-LEAK" not in text


def test_undecodable_helm_record_is_reported_not_echoed(green, green_kube):
    plant_clean(green)
    broken = helm_release_secret("x", NS, "")
    broken["data"]["release"] = "bm90LWJhc2U2NC1nemlwLUpTT04tU0VDUkVU"  # base64 of junk
    green.put(SECRETS, NS, "sh.helm.release.v1.x.v1", broken)
    report = preflight(green_kube)
    assert codes(report) == {"BG-K8S-014": [f"Secret/{NS}/sh.helm.release.v1.x.v1"]}
    assert "SECRET" not in report.findings[0].what


def test_removed_api_in_argocd_application_resources(green, green_kube):
    plant_clean(green)
    green.put(APPLICATIONS, "argocd", "burnham", {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "spec": {"destination": {"server": "https://kubernetes.default.svc", "namespace": NS}},
        "status": {"resources": [
            {"group": "batch", "version": "v1beta1", "kind": "CronJob", "namespace": NS, "name": "report"},
            {"group": "", "version": "v1", "kind": "Service", "namespace": NS, "name": "web"}]}})
    report = preflight(green_kube)
    (item,) = report.findings
    assert (item.code, item.object, item.source) == ("BG-K8S-001", f"CronJob/{NS}/report",
                                                     "ArgoCD Application argocd/burnham")


def test_fewer_replicas_than_configured(green, green_kube):
    plant_clean(green)
    green.put(DEPLOYMENTS, NS, "web", deployment("web", replicas=2))
    assert codes(preflight(green_kube)) == {}
    assert codes(preflight(green_kube, min_replicas=3)) == {"BG-K8S-003": [f"Deployment/{NS}/web"]}


def test_single_replica_deployment(green, green_kube):
    plant_clean(green)
    green.put(DEPLOYMENTS, NS, "web", deployment("web", replicas=1))
    assert codes(preflight(green_kube)) == {"BG-K8S-003": [f"Deployment/{NS}/web"]}


def test_min_ready_seconds_missing(green, green_kube):
    plant_clean(green)
    obj = deployment("web")
    obj["spec"]["minReadySeconds"] = None  # put merge-patches the planted object: null removes the key
    green.put(DEPLOYMENTS, NS, "web", obj)
    report = preflight(green_kube)
    assert codes(report) == {"BG-K8S-004": [f"Deployment/{NS}/web"]}
    assert report.findings[0].severity.value == "info" and not report.has_errors


def test_no_pdb(green, green_kube):
    plant_clean(green)
    green.delete(PDBS, NS, "web")
    assert codes(preflight(green_kube)) == {"BG-K8S-005": [f"Deployment/{NS}/web"]}


@pytest.mark.parametrize("spec", [{"maxUnavailable": 0}, {"maxUnavailable": "0%"}, {"minAvailable": 3},
                                  {"minAvailable": "100%"}])
def test_pdb_that_allows_no_disruption(green, green_kube, spec):
    plant_clean(green)
    green.put(PDBS, NS, "web", pdb("web", **spec))
    report = preflight(green_kube)
    assert codes(report) == {"BG-K8S-006": [f"PodDisruptionBudget/{NS}/web"]}
    assert report.has_errors


def test_no_topology_spread_or_anti_affinity(green, green_kube):
    plant_clean(green)
    obj = deployment("web")
    obj["spec"]["template"]["spec"]["topologySpreadConstraints"] = None  # merge patch: null removes it
    green.put(DEPLOYMENTS, NS, "web", obj)
    assert codes(preflight(green_kube)) == {"BG-K8S-007": [f"Deployment/{NS}/web"]}
    obj["spec"]["template"]["spec"]["affinity"] = {"podAntiAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "podAffinityTerm": {
            "topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "web"}}}}]}}
    green.put(DEPLOYMENTS, NS, "web2", {**obj, "metadata": {}})
    assert f"Deployment/{NS}/web2" not in codes(preflight(green_kube)).get("BG-K8S-007", [])


def test_container_without_readiness_probe(green, green_kube):
    plant_clean(green)
    obj = deployment("web")
    obj["spec"]["template"]["spec"]["containers"] = [container("app"), container("sidecar", probe=False)]
    green.put(DEPLOYMENTS, NS, "web", obj)
    report = preflight(green_kube)
    assert codes(report) == {"BG-K8S-008": [f"Deployment/{NS}/web"]}
    assert "sidecar" in report.findings[0].what and "app," not in report.findings[0].what


def test_termination_grace_period_zero(green, green_kube):
    plant_clean(green)
    green.put(DEPLOYMENTS, NS, "web", deployment("web", spec={"template": {"spec": {
        "terminationGracePeriodSeconds": 0}}}))
    assert codes(preflight(green_kube)) == {"BG-K8S-009": [f"Deployment/{NS}/web"]}


@pytest.mark.parametrize("path", ["/var/run/docker.sock", "/run/dockershim.sock"])
def test_docker_socket_mount_in_a_cronjob(green, green_kube, path):
    plant_clean(green)
    green.put(CRONJOBS, NS, "backup", {"apiVersion": "batch/v1", "kind": "CronJob", "spec": {
        "schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": {"spec": {
            "containers": [container(probe=False)],
            "volumes": [{"name": "sock", "hostPath": {"path": path}}]}}}}}})
    report = preflight(green_kube)
    assert codes(report) == {"BG-K8S-010": [f"CronJob/{NS}/backup"]}
    assert report.has_errors and path in report.findings[0].what


def test_docker_socket_in_a_job_and_a_daemonset(green, green_kube):
    plant_clean(green)
    volumes = [{"name": "sock", "hostPath": {"path": "/var/run/docker.sock"}}]
    green.put(JOBS, NS, "once", {"apiVersion": "batch/v1", "kind": "Job", "spec": {"template": {"spec": {
        "containers": [container(probe=False)], "volumes": volumes}}}})
    ds = daemonset("agent")
    ds["spec"]["template"]["spec"]["volumes"] = volumes
    green.put(DAEMONSETS, "kube-system", "agent", ds)
    assert codes(preflight(green_kube)) == {"BG-K8S-010": ["DaemonSet/kube-system/agent", f"Job/{NS}/once"]}


def test_recreate_strategy(green, green_kube):
    plant_clean(green)
    green.put(DEPLOYMENTS, NS, "web", deployment("web", spec={"strategy": {"type": "Recreate"}}))
    assert codes(preflight(green_kube)) == {"BG-K8S-011": [f"Deployment/{NS}/web"]}


def test_on_delete_statefulset(green, green_kube):
    plant_clean(green)
    green.put(STATEFULSETS, NS, "queue", statefulset("queue", spec={"updateStrategy": {"type": "OnDelete"}}))
    assert codes(preflight(green_kube)) == {"BG-K8S-011": [f"StatefulSet/{NS}/queue"]}


def rwo_deployment(strategy: str) -> dict:
    obj = deployment("grafana", replicas=2, spec={"strategy": {"type": strategy}})
    obj["spec"]["template"]["spec"]["volumes"] = [{"name": "data", "persistentVolumeClaim": {"claimName": "grafana"}}]
    return obj


def test_deployment_with_read_write_once_volume_hangs(green, green_kube):
    plant_clean(green)
    green.put(PVCS, NS, "grafana", {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                                    "spec": {"accessModes": ["ReadWriteOnce"]}})
    green.put(PDBS, NS, "grafana", pdb("grafana"))
    green.put(DEPLOYMENTS, NS, "grafana", rwo_deployment("RollingUpdate"))
    report = preflight(green_kube)
    assert codes(report) == {"BG-K8S-012": [f"Deployment/{NS}/grafana"]}
    assert "Recreate" in report.findings[0].fix and "scale it to 0" in report.findings[0].fix
    # seed 000's advice, taken: Recreate is right here, and no BG-K8S-011 either
    green.put(DEPLOYMENTS, NS, "grafana", rwo_deployment("Recreate"))
    assert codes(preflight(green_kube)) == {}


def test_read_write_many_volume_is_fine(green, green_kube):
    plant_clean(green)
    green.put(PVCS, NS, "grafana", {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                                    "spec": {"accessModes": ["ReadWriteMany"]}})
    green.put(PDBS, NS, "grafana", pdb("grafana"))
    green.put(DEPLOYMENTS, NS, "grafana", rwo_deployment("RollingUpdate"))
    assert codes(preflight(green_kube)) == {}


def test_statefulset_single_writer(green, green_kube):
    plant_clean(green)
    green.put(STATEFULSETS, NS, "queue", statefulset("queue", replicas=1))
    green.delete(PDBS, NS, "queue")
    report = preflight(green_kube)
    assert codes(report) == {"BG-K8S-003": [f"StatefulSet/{NS}/queue"], "BG-K8S-013": [f"StatefulSet/{NS}/queue"]}


def test_statefulset_of_a_single_primary_database_is_info(green, green_kube):
    plant_clean(green)
    obj = statefulset("queue")
    obj["spec"]["template"]["spec"]["containers"] = [container("db", "docker.io/bitnami/postgresql:16.2.0")]
    green.put(STATEFULSETS, NS, "queue", obj)
    report = preflight(green_kube)
    assert codes(report) == {"BG-K8S-013": [f"StatefulSet/{NS}/queue"]}
    assert report.findings[0].severity.value == "info"


def test_ignore_patterns_silence_and_count(green, green_kube):
    plant_clean(green)
    green.put(DEPLOYMENTS, NS, "web", deployment("web", replicas=1))
    green.put(DEPLOYMENTS, "team-riker", "api", deployment("api", replicas=1))
    report = preflight(green_kube, ignore=("BG-K8S-003/Deployment/team-riker/*",))
    assert codes(report) == {"BG-K8S-003": [f"Deployment/{NS}/web"]} and report.ignored >= 1
    assert "ignored by preflight.ignore" in report.text()
    report = preflight(green_kube, ignore=("bg-k8s-003",))
    assert "BG-K8S-003" not in codes(report)


def test_skip_namespaces(green, green_kube):
    plant_clean(green)
    green.put(DEPLOYMENTS, "sandbox", "toy", deployment("toy", replicas=1))
    assert codes(preflight(green_kube)) == {"BG-K8S-003": ["Deployment/sandbox/toy"]}
    assert codes(preflight(green_kube, skip_namespaces=("sandbox",))) == {}


def test_replicaset_owned_by_a_deployment_is_not_checked_twice(green, green_kube):
    plant_clean(green)
    owned = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"ownerReferences": [
        {"kind": "Deployment", "name": "web", "apiVersion": "apps/v1", "uid": "x"}]},
        "spec": {"template": {"spec": {"terminationGracePeriodSeconds": 0, "containers": [container()]}}}}
    green.put(REPLICASETS, NS, "web-abc", owned)
    bare = {**owned, "metadata": {}}
    green.put(REPLICASETS, NS, "bare", bare)
    assert codes(preflight(green_kube)) == {"BG-K8S-009": [f"ReplicaSet/{NS}/bare"]}


def test_target_older_than_the_cluster_is_bad_input(green, green_kube):
    from bluegreen.errors import ConfigError

    plant_clean(green)
    with pytest.raises(ConfigError, match="cannot be downgraded"):
        preflight(green_kube, "1.29")
    with pytest.raises(ConfigError, match="like 1.31"):
        preflight(green_kube, "latest")


def addon_deployment(name: str, image: str) -> dict:
    obj = deployment(name)
    obj["spec"]["template"]["spec"]["containers"] = [container(name, image)]
    return obj


def plant_addon(green, name: str, image: str) -> None:
    green.put(DEPLOYMENTS, "kube-system", name, addon_deployment(name, image))
    green.put(PDBS, "kube-system", name, pdb(name))


def test_cluster_autoscaler_minor_must_match_the_target(green, green_kube):
    plant_clean(green)
    plant_addon(green, "cluster-autoscaler", "registry.k8s.io/autoscaling/cluster-autoscaler:v1.30.2")
    report = preflight(green_kube, "1.31")
    assert codes(report) == {"BG-ADD-001": ["Deployment/kube-system/cluster-autoscaler"]}
    assert report.has_errors
    plant_addon(green, "cluster-autoscaler", "registry.k8s.io/autoscaling/cluster-autoscaler:v1.31.0")
    assert codes(preflight(green_kube, "1.31")) == {}


def test_self_managed_addon_below_the_known_minimum(green, green_kube):
    plant_clean(green)
    plant_addon(green, "karpenter", "public.ecr.aws/karpenter/controller:0.37.5@sha256:abc")
    assert codes(preflight(green_kube, "1.30")) == {}  # 0.37 is the minimum for 1.30
    report = preflight(green_kube, "1.31")  # 1.31 needs 1.0.5
    assert codes(report) == {"BG-ADD-002": ["Deployment/kube-system/karpenter"]}
    assert "1.0.5" in report.findings[0].what


def test_addon_image_without_a_version(green, green_kube):
    plant_clean(green)
    plant_addon(green, "metrics-server", "registry.k8s.io/metrics-server/metrics-server:latest")
    assert codes(preflight(green_kube)) == {"BG-ADD-003": ["Deployment/kube-system/metrics-server"]}


def test_lookalike_image_is_not_an_addon(green, green_kube):
    plant_clean(green)
    plant_addon(green, "exporter", "example.com/my-coredns-exporter:0.1.0")
    assert codes(preflight(green_kube)) == {}


def test_unreachable_cluster_is_an_access_error():
    import socket

    from kubernetes import client as k8s

    from bluegreen.adapters.kube import ClusterAccessError, Kube

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    configuration = k8s.Configuration(host=f"http://127.0.0.1:{port}")
    configuration.retries = 0
    kube = Kube(k8s.ApiClient(configuration), "green cluster")
    with pytest.raises(ClusterAccessError, match="cannot reach the green cluster"):
        collect_inventory(kube)
    kube.close()
