"""`verify` end to end: the official kubernetes client over HTTP to emulated clusters (kmock), no patching."""

from __future__ import annotations

import base64
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
from tests.support.kube_emulator import (  # noqa: F401  (fixtures)
    APPLICATIONS, DEPLOYMENTS, INGRESSES, SECRETS, SERVICES, STATEFULSETS, application, cluster_secret, deployment,
    kube, kube_servers, statefulset,
)

# A recognisable fake credential: it must never leave the Secret.
FAKE_CREDENTIAL = "FAKE-bearer-eyJhbGciOi-DO-NOT-LEAK-7f3a9c"
FAKE_B64 = base64.b64encode(json.dumps({"bearerToken": FAKE_CREDENTIAL}).encode()).decode()

LABELS = {"environment": "eks-blueprint", "enable_karpenter": "true", "enable_external_dns": "true",
          "enable_aws_load_balancer_controller": "true"}
ANNOTATIONS = {"aws_region": "ap-northeast-2", "aws_account_id": "123456789012",
               "addons_repo_url": "https://github.com/aws-samples/eks-blueprints-add-ons",
               "gitops_workloads_url": "git@github.com:aws-samples/eks-blueprints-workloads",
               "gitops_workloads_path": "envs/dev", "gitops_workloads_revision": "main",
               "external_dns_policy": "sync", "ingress_type": "alb"}


def secret_for(side: str, *, labels=None, annotations=None, weight="100"):
    name = f"eks-blueprint-{side}"
    lab = {**LABELS, "cluster_name": name, "kubernetes_version": "1.30" if side == "blue" else "1.31",
           **(labels or {})}
    ann = {**ANNOTATIONS, "aws_cluster_name": name, "cluster_endpoint": f"https://{side}.eks.example",
           "route53_weight": weight, "argocd_password": f"$2a$10${side}hash", **(annotations or {}),
           # kubectl apply keeps a full copy of the Secret, data included, in this annotation:
           "kubectl.kubernetes.io/last-applied-configuration": json.dumps({"data": {"config": FAKE_B64}})}
    obj = cluster_secret(name, labels={k: v for k, v in lab.items() if v is not None},
                         annotations={k: v for k, v in ann.items() if v is not None},
                         data={"name": name, "server": "https://kubernetes.default.svc",
                               "config": json.dumps({"bearerToken": FAKE_CREDENTIAL})})
    return name, obj


def seed(kube, side: str, *, where: str | None = None, labels=None, annotations=None, apps=None,
         deployments=None, dest_by_name=False):
    server = kube[where or side]
    name, obj = secret_for(side, labels=labels, annotations=annotations, weight="100" if side == "blue" else "0")
    server.put(SECRETS, "argocd", name, obj)
    # another kind of ArgoCD secret (a repository) in the same namespace: the label selector leaves it out
    server.put(SECRETS, "argocd", "repo-private", {
        "metadata": {"labels": {"argocd.argoproj.io/secret-type": "repository"}},
        "data": {"sshPrivateKey": base64.b64encode(FAKE_CREDENTIAL.encode()).decode()}})
    for app_name, status in (apps if apps is not None else {
            f"burnham-eks-blueprint-{side}": ("Synced", "Healthy"), "addons": ("Synced", "Healthy")}).items():
        dest = application(name if dest_by_name else None, sync=status[0], health=status[1],
                           server=None if dest_by_name else "https://kubernetes.default.svc")
        server.put(APPLICATIONS, "argocd", app_name if where != "hub" else f"{app_name}", dest)
    for dep, (desired, available) in (deployments if deployments is not None else {"burnham": (2, 2)}).items():
        kube[side].put(DEPLOYMENTS, "team-burnham", dep, deployment(desired, available))
    kube[side].put(STATEFULSETS, "team-burnham", "cache", statefulset(1))


def make_config(kube, *, mode="in-cluster", verify=None, provision=None, green=None, blue=None, aws=None):
    path = str(kube.kubeconfig)
    clusters = {
        "blue": blue or {"kubeconfig": path, "context": "blue", "name": "eks-blueprint-blue"},
        "green": green or {"kubeconfig": path, "context": "green", "name": "eks-blueprint-green"},
    }
    if mode == "hub":
        clusters["argocd"] = {"mode": "hub", "hub": {"kubeconfig": path, "context": "hub"}}
    raw = {"name": "burnham", "aws": aws or {"region": "us-east-1"},
           "route": {"hosted_zone": "example.com", "records": ["burnham.example.com"],
                     "blue": "eks-blueprint-blue", "green": "eks-blueprint-green"},
           "clusters": clusters,
           "verify": verify if verify is not None else {"workload_namespaces": ["team-burnham"]}}
    if provision:
        raw["provision"] = provision
    return parse_config(raw)


def both(kube, **green_kw):
    seed(kube, "blue")
    seed(kube, "green", **green_kw)


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
    ({"blue": {"eks": "a"}}, "`clusters.green` is missing"),
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
