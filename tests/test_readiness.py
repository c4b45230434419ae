"""The readiness verdict, pure: metadata key by key, applications by name, workloads by replicas."""

from __future__ import annotations

import pytest

from bluegreen.core.readiness import (
    AppStatus, ClusterMetadata, WorkloadStatus, app_key, assess, compare_metadata, is_ignored, show_value,
)

BLUE_LABELS = {"argocd.argoproj.io/secret-type": "cluster", "cluster_name": "eks-blueprint-blue",
               "environment": "eks-blueprint", "kubernetes_version": "1.30", "enable_karpenter": "true",
               "enable_external_dns": "true"}
BLUE_ANNOTATIONS = {"aws_cluster_name": "eks-blueprint-blue", "cluster_endpoint": "https://blue.example",
                    "aws_region": "ap-northeast-2", "gitops_workloads_revision": "main",
                    "gitops_workloads_url": "git@github.com:aws-samples/eks-blueprints-workloads",
                    "route53_weight": "100", "argocd_password": "$2a$10$hash", "aws_vpc_id": "vpc-1"}


def green_of(labels=None, annotations=None):
    lab = {**BLUE_LABELS, "cluster_name": "eks-blueprint-green", "kubernetes_version": "1.31", **(labels or {})}
    ann = {**BLUE_ANNOTATIONS, "aws_cluster_name": "eks-blueprint-green", "cluster_endpoint": "https://green.example",
           "route53_weight": "0", "argocd_password": "$2a$10$other", "aws_vpc_id": "vpc-2", **(annotations or {})}
    return ClusterMetadata({k: v for k, v in lab.items() if v is not None},
                           {k: v for k, v in ann.items() if v is not None})


BLUE = ClusterMetadata(BLUE_LABELS, BLUE_ANNOTATIONS)
APPS_BLUE = [AppStatus("burnham-eks-blueprint-blue", "Synced", "Healthy"), AppStatus("addons", "Synced", "Healthy")]
APPS_GREEN = [AppStatus("burnham-eks-blueprint-green", "Synced", "Healthy"), AppStatus("addons", "Synced", "Healthy")]
NAMES_BLUE, NAMES_GREEN = ["eks-blueprint-blue", "blue"], ["eks-blueprint-green", "green"]


def run(tgt_meta=None, tgt_apps=APPS_GREEN, ref_apps=APPS_BLUE, workloads=(), namespaces=(), **kw):
    return assess("blue", "green", ref_meta=BLUE, tgt_meta=tgt_meta or green_of(), ref_apps=ref_apps,
                  tgt_apps=tgt_apps, ref_names=NAMES_BLUE, tgt_names=NAMES_GREEN, workloads=workloads,
                  workload_namespaces=namespaces, **kw)


def test_identical_metadata_except_what_must_differ_is_ready():
    report = run(workloads=[WorkloadStatus("Deployment", "team-burnham", "burnham", 2, 2)], namespaces=["team-burnham"])
    assert report.ready, report.reasons
    assert report.reasons == ()
    assert report.as_dict()["ready"] is True
    assert "green is ready" in report.text()


def test_missing_addon_flag_is_reported_in_the_issue_format():
    report = run(green_of(labels={"enable_karpenter": None}))
    assert not report.ready
    assert report.reasons == ("label enable_karpenter: blue=true green=<missing>",)


def test_different_workloads_revision():
    report = run(green_of(annotations={"gitops_workloads_revision": "v2"}))
    assert report.reasons == ("annotation gitops_workloads_revision: blue=main green=v2",)


def test_extra_key_on_green_is_a_difference_too():
    report = run(green_of(labels={"enable_velero": "true"}))
    assert report.reasons == ("label enable_velero: blue=<missing> green=true",)


def test_config_extends_the_ignore_list_with_patterns():
    report = run(green_of(annotations={"team_owner": "x", "gitops_workloads_revision": "v2"}),
                 extra_ignore=["team_*", "gitops_workloads_revision"])
    assert report.ready, report.reasons


@pytest.mark.parametrize("key", ["cluster_name", "aws_cluster_name", "cluster_endpoint", "kubernetes_version",
                                 "route53_weight", "argocd_password", "aws_vpc_id", "karpenter_iam_role_arn",
                                 "kubectl.kubernetes.io/last-applied-configuration"])
def test_keys_that_differ_by_nature_are_ignored_by_default(key):
    from bluegreen.core.readiness import DEFAULT_IGNORED_KEYS

    assert is_ignored(key, DEFAULT_IGNORED_KEYS)
    assert not is_ignored("enable_karpenter", DEFAULT_IGNORED_KEYS)


def test_sensitive_values_are_never_shown_in_reasons():
    reasons = compare_metadata("blue", ClusterMetadata({}, {"git_private_ssh_key": "AAAA-secret"}), "green",
                               ClusterMetadata({}, {"git_private_ssh_key": "BBBB"}), ignore=())
    assert reasons[0].detail == "annotation git_private_ssh_key: blue=<redacted> green=<redacted>"
    assert show_value("x", "y" * 200).endswith("...")


@pytest.mark.parametrize("sync,health,reason", [
    ("Synced", "Degraded", "application burnham-eks-blueprint-green on green: health=Degraded"),
    ("OutOfSync", "Healthy", "application burnham-eks-blueprint-green on green: sync=OutOfSync"),
    (None, None, "application burnham-eks-blueprint-green on green: sync=Unknown, health=Unknown"),
])
def test_every_green_application_must_be_synced_and_healthy(sync, health, reason):
    apps = [AppStatus("burnham-eks-blueprint-green", sync, health), AppStatus("addons", "Synced", "Healthy")]
    assert run(tgt_apps=apps).reasons == (reason,)


def test_application_present_on_blue_only():
    report = run(tgt_apps=[AppStatus("addons", "Synced", "Healthy")])
    assert report.reasons == ("application burnham-eks-blueprint-blue: on blue but not on green",)


def test_application_present_on_green_only():
    report = run(ref_apps=[AppStatus("addons", "Synced", "Healthy")])
    assert report.reasons == ("application burnham-eks-blueprint-green on green: not on blue",)


def test_application_names_compare_without_their_cluster_suffix():
    assert app_key("burnham-eks-blueprint-blue", NAMES_BLUE) == app_key("burnham-eks-blueprint-green", NAMES_GREEN)
    assert app_key("eks-blueprint-blue-addons", NAMES_BLUE) == "addons"
    assert app_key("ecsdemo-blue", NAMES_BLUE) == "ecsdemo"
    assert app_key("addons", NAMES_BLUE) == "addons"


def test_ignored_applications():
    report = run(tgt_apps=[AppStatus("addons", "Synced", "Healthy")], ignore_applications=["burnham-*"])
    assert report.ready


def test_unavailable_deployment_and_statefulset():
    report = run(workloads=[WorkloadStatus("Deployment", "team-burnham", "burnham", 3, 1),
                            WorkloadStatus("StatefulSet", "team-burnham", "db", 1, 1)],
                 namespaces=["team-burnham", "team-riker"])
    assert report.reasons == (
        "Deployment team-burnham/burnham on green: 1/3 replicas available",
        "namespace team-riker on green: no Deployment or StatefulSet found",
    )


def test_report_dict_and_table_carry_every_reason():
    report = run(green_of(labels={"enable_karpenter": None}),
                 tgt_apps=[AppStatus("burnham-eks-blueprint-green", "OutOfSync", "Degraded")])
    data = report.as_dict()
    assert data["ready"] is False and len(data["reasons"]) == 3
    assert data["summary"]["application"] == {"checked": 2, "failed": 2}
    text = report.text()
    for reason in data["reasons"]:
        assert reason in text
    assert "FAIL" in text
