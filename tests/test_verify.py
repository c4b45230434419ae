"""`verify` end to end: the official kubernetes client over HTTP to emulated clusters (kmock), no patching."""

from __future__ import annotations

import io
import json
import socket

import pytest

from bluegreen.adapters import argocd
from bluegreen.adapters.kube import ClusterAccessError, connect
from bluegreen.config.clusters import ClusterAccess
from bluegreen.config import AwsConfig, parse_config
from bluegreen.errors import ConfigError, ExitCode
from bluegreen.clusters.verify import cluster_summaries, run_verify
from tests.support.blueprint_clusters import FAKE_B64, FAKE_CREDENTIAL, both, make_config, seed
from tests.support.kube_emulator import INGRESSES, SECRETS, SERVICES, cluster_secret


# -- readiness cases ---------------------------------------------------------------------------------
def test_identical_metadata_passes(kube):
    both(kube)
    report = run_verify(make_config(kube))
    assert report.ready, report.reasons
    data = report.as_dict()
    assert data["summary"]["application"] == {"checked": 2, "failed": 0}
    assert data["summary"]["workload"] == {"checked": 2, "failed": 0}


def test_missing_addon_flag_fails(kube):
    both(kube, labels={"enable_karpenter": None})
    report = run_verify(make_config(kube))
    assert not report.ready
    assert report.reasons == ("label enable_karpenter: blue=true green=<missing>",)


def test_different_workloads_revision_fails(kube):
    both(kube, annotations={"gitops_workloads_revision": "feature-x"})
    assert run_verify(make_config(kube)).reasons == (
        "annotation gitops_workloads_revision: blue=main green=feature-x",)


@pytest.mark.parametrize("sync,health,reason", [
    ("Synced", "Degraded", "health=Degraded"), ("OutOfSync", "Healthy", "sync=OutOfSync")])
def test_degraded_or_out_of_sync_application_fails(kube, sync, health, reason):
    both(kube, apps={"burnham-eks-blueprint-green": (sync, health), "addons": ("Synced", "Healthy")})
    assert run_verify(make_config(kube)).reasons == (
        f"application burnham-eks-blueprint-green on green: {reason}",)


def test_application_on_blue_only_fails(kube):
    both(kube, apps={"addons": ("Synced", "Healthy")})
    assert run_verify(make_config(kube)).reasons == (
        "application burnham-eks-blueprint-blue: on blue but not on green",)


def test_unavailable_deployment_fails(kube):
    both(kube, deployments={"burnham": (3, 1)})
    assert run_verify(make_config(kube)).reasons == (
        "Deployment team-burnham/burnham on green: rolling out: 1 of 3 updated replicas available",)


def test_verify_blue_against_green(kube):
    both(kube, labels={"enable_velero": "true"})
    report = run_verify(make_config(kube), cluster="blue")
    assert report.target == "blue"
    assert report.reasons == ("label enable_velero: green=true blue=<missing>",)


def test_config_extends_ignored_keys(kube):
    both(kube, annotations={"gitops_workloads_revision": "feature-x"})
    config = make_config(kube, verify={"workload_namespaces": ["team-burnham"],
                                       "ignore_keys": ["gitops_workloads_revision"]})
    assert run_verify(config).ready


def test_hub_mode_reads_both_secrets_and_filters_applications_by_destination(kube):
    seed(kube, "blue", where="hub", dest_by_name=True)
    seed(kube, "green", where="hub", dest_by_name=True, apps={"burnham-eks-blueprint-green": ("Synced", "Degraded")})
    report = run_verify(make_config(kube, mode="hub"))
    assert sorted(report.reasons) == [
        "application addons: on blue but not on green",
        "application burnham-eks-blueprint-green on green: health=Degraded",
    ]


def test_missing_cluster_secret_is_a_reason_naming_what_was_found(kube):
    seed(kube, "blue")
    kube["green"].put(SECRETS, "argocd", "something-else", cluster_secret("x", labels={"cluster_name": "other"}))
    kube["green"].put(SECRETS, "argocd", "another", cluster_secret("y", labels={"cluster_name": "other2"}))
    report = run_verify(make_config(kube))
    assert any("no ArgoCD cluster secret for cluster 'eks-blueprint-green'" in r and "another, something-else" in r
               for r in report.reasons), report.reasons


# -- errors ------------------------------------------------------------------------------------------
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_cluster_gives_a_clear_error_naming_it(kube, tmp_path):
    seed(kube, "blue")
    kubeconfig = kube.write_kubeconfig(tmp_path / "kc.yaml", extra={"dead": f"http://127.0.0.1:{closed_port()}"})
    config = make_config(kube, green={"kubeconfig": str(kubeconfig), "context": "dead", "name": "eks-blueprint-green"})
    with pytest.raises(ClusterAccessError) as caught:
        run_verify(config)
    message = str(caught.value)
    assert "green cluster 'eks-blueprint-green'" in message and "cannot reach" in message
    assert caught.value.exit_code == ExitCode.ERROR
    assert "kubeconfig-test-token" not in message


def test_unknown_kubeconfig_context_is_a_config_error(kube):
    config = make_config(kube, green={"kubeconfig": str(kube.kubeconfig), "context": "nope", "name": "g"})
    with pytest.raises(ConfigError) as caught:
        run_verify(config)
    assert "'nope'" in str(caught.value) and caught.value.exit_code == ExitCode.BAD_INPUT


@pytest.mark.parametrize("clusters,fragment", [
    (None, "`clusters` is missing"),
    ({}, "`clusters.blue` and `clusters.green` are both missing"),
    ({"blue": {"eks": "a"}, "green": {"kubeconfig": "/x"}}, "`clusters.green.context` is required"),
    ({"blue": {"eks": "a"}, "green": {"eks": "b", "region": float("nan")}}, "`clusters.green.region` must be"),
    ({"blue": {"eks": "a"}, "green": {}}, "says nothing about how to reach"),
    ({"blue": {"eks": "a"}, "green": {"eks": "b", "contxt": "c"}}, "unknown key `clusters.green.contxt`"),
    ({"blue": {"eks": "a"}, "green": {"eks": "a"}}, "both name the cluster 'a'"),
    ({"blue": {"eks": "a"}, "green": {"eks": "b"}, "argocd": {"mode": "hub"}}, "`clusters.argocd.hub` is required"),
    ({"blue": {"eks": "a"}, "green": {"eks": "b"}, "argocd": {"mode": "central"}}, "must be in-cluster or hub"),
])
def test_bad_clusters_config(clusters, fragment):
    raw = {"name": "burnham", "route": {"hosted_zone": "example.com", "records": ["a.example.com"],
                                        "blue": "b", "green": "g"}}
    if clusters is not None:
        raw["clusters"] = clusters
    with pytest.raises(ConfigError) as caught:
        parse_config(raw).require_clusters()
    assert fragment in str(caught.value)
    assert caught.value.exit_code == ExitCode.BAD_INPUT


def test_verify_and_provision_sections():
    raw = {"name": "burnham", "route": {"hosted_zone": "example.com", "records": ["a.example.com"],
                                        "blue": "b", "green": "g"},
           "verify": {"ignore_keys": ["x_*"], "workload_namespaces": ["team-a"]},
           "provision": {"command": "terraform -chdir='eks green' apply -auto-approve", "wait_timeout": "20m"}}
    config = parse_config(raw)
    assert config.verify.ignore_keys == ("x_*",)
    prov = config.provision
    assert prov.command == ("terraform", "-chdir=eks green", "apply", "-auto-approve")
    assert prov.wait_timeout == 1200
    with pytest.raises(ConfigError, match="verify.workload_namespaces"):
        parse_config({**raw, "verify": {"workload_namespaces": "team-a"}})
    with pytest.raises(ConfigError, match="did you mean `provision.command`"):
        parse_config({**raw, "provision": {"comand": "x"}})


# -- secrets never leak ------------------------------------------------------------------------------
def test_secret_data_never_appears_in_any_output_or_log(kube, capsys, caplog):
    from bluegreen import logs

    both(kube, labels={"enable_karpenter": None}, annotations={"gitops_workloads_revision": "x"})
    stream = io.StringIO()
    logs.configure("json", stream, level="debug")
    try:
        config = make_config(kube)
        report = run_verify(config)
        summaries = cluster_summaries(config)
        clusters_secret = argocd.list_cluster_secrets(
            connect(ClusterAccess(kubeconfig=str(kube.kubeconfig), context="green"), AwsConfig(), label="green"),
            "argocd")
    finally:
        logs.configure("console", io.StringIO())
    assert not report.ready
    outputs = [json.dumps(report.as_dict()), report.text(), repr(report), stream.getvalue(),
               json.dumps(summaries), repr(clusters_secret), capsys.readouterr().out, capsys.readouterr().err,
               caplog.text]
    for text in outputs:
        assert FAKE_CREDENTIAL not in text
        assert FAKE_B64 not in text
        assert "argocd_password" not in text or "hash" not in text
    assert "verify_done" in stream.getvalue()
    # the last-applied annotation (which holds the data) is dropped on read
    assert all("kubectl.kubernetes.io/last-applied-configuration" not in s.annotations for s in clusters_secret)


def test_cluster_summaries_for_status(kube):
    both(kube, apps={"burnham-eks-blueprint-green": ("Synced", "Degraded"), "addons": ("Synced", "Healthy")})
    summary = cluster_summaries(make_config(kube))
    assert "error" not in summary["green"], summary
    assert summary["green"]["applications"] == 2 and summary["green"]["healthy"] == 1
    assert summary["blue"]["argocd_weight"] == "100" and summary["green"]["argocd_weight"] == "0"
    assert summary["blue"]["kubernetes_version"]


# -- helpers for the weight drivers --------------------------------------------------------------------
def test_annotation_helpers_on_secret_ingress_and_service(kube):
    seed(kube, "green")
    kube["green"].put(INGRESSES, "team-burnham", "burnham-ingress", {
        "metadata": {"annotations": {"external-dns.alpha.kubernetes.io/aws-weight": "0"}}, "spec": {}})
    kube["green"].put(SERVICES, "team-burnham", "burnham", {"metadata": {"annotations": {}}, "spec": {}})
    client = connect(ClusterAccess(kubeconfig=str(kube.kubeconfig), context="green"), AwsConfig(), label="green")
    secret = argocd.list_cluster_secrets(client, "argocd")[0]
    updated = argocd.set_cluster_secret_annotation(client, secret, "route53_weight", "10")
    assert updated.annotations["route53_weight"] == "10"
    assert kube["green"].get(SECRETS, "argocd", secret.name)["data"]  # data untouched by the patch
    key = "external-dns.alpha.kubernetes.io/aws-weight"
    assert argocd.get_object_annotations(client, "ingress", "team-burnham", "burnham-ingress") == {key: "0"}
    assert argocd.patch_object_annotations(client, "Ingress", "team-burnham", "burnham-ingress", {key: "50"})[key] == "50"
    assert argocd.patch_object_annotations(client, "service", "team-burnham", "burnham", {key: "5"}) == {key: "5"}
    assert argocd.patch_object_annotations(client, "service", "team-burnham", "burnham", {key: None}) == {}
    with pytest.raises(ClusterAccessError, match="green"):
        argocd.get_object_annotations(client, "ingress", "team-burnham", "missing")
