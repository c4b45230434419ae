"""The shipped tables, the code registry, the report, the settings, and the checks that need no cluster."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from bluegreen.errors import ConfigError
from bluegreen.preflight import CODES, EksInventory, Inventory, PreflightSettings, codes_table_markdown, \
    parse_preflight_settings, run_preflight
from bluegreen.preflight.eks_checks import check_insights, check_kube_proxy_skew, check_node_os, \
    check_nodegroups, check_version_step, trusts_provider
from bluegreen.preflight.findings import Severity, build_report, finding, is_ignored
from bluegreen.preflight.tables import addon_rules, eks_calendar, minor_of, removal_table, split_image


# -- tables ----------------------------------------------------------------------------------------------
def test_removal_table_is_sorted_and_unique():
    rows = removal_table().rows
    keys = [(r.removed, r.api_version, r.kind) for r in rows]
    assert keys == sorted(keys)
    assert len({(r.api_version, r.kind) for r in rows}) == len(rows)
    for row in rows:
        assert row.deprecated < row.removed, row
        assert (1, 16) <= row.removed <= removal_table().covers, row
        assert row.replacement != row.api_version


def test_removal_table_covers_every_version_eks_offers():
    calendar = eks_calendar()
    assert removal_table().covers >= calendar.newest
    assert removal_table().rows[0].removed == (1, 16)  # the table starts at 1.16, as promised
    # every minor from the oldest EKS version to the newest is in the calendar: no gap
    minors = [v.version[1] for v in calendar.versions]
    assert minors == list(range(minors[0], minors[-1] + 1))


def test_eks_calendar_is_sorted_and_follows_the_14_plus_12_month_rule():
    versions = eks_calendar().versions
    assert [v.version for v in versions] == sorted(v.version for v in versions)
    for v in versions:
        assert v.eks_release < v.end_of_standard < v.end_of_extended
        assert 13 <= (v.end_of_standard - v.eks_release).days / 30.44 <= 15, v
        assert (v.end_of_extended - v.end_of_standard).days in (365, 366), v


def test_addon_table_rows_are_well_formed():
    rules = {r.name: r for r in addon_rules()}
    assert set(rules) >= {"cluster-autoscaler", "aws-load-balancer-controller", "metrics-server", "karpenter",
                          "coredns", "kube-proxy", "vpc-cni"}
    for rule in rules.values():
        assert rule.rule in ("match_minor", "minimum", "skew") and rule.source.startswith("https://")
        assert rule.severity in ("error", "warning")
        if rule.rule == "minimum":
            assert rule.minimum and all(v is not None for _, v in rule.minimum)
            floors = [v for _, v in rule.minimum]
            assert floors == sorted(floors), rule.name  # a newer Kubernetes never lowers the minimum
    assert rules["karpenter"].minimum_for((1, 36)) == (1, 9, 0)  # newest row applies beyond the table
    assert rules["aws-load-balancer-controller"].minimum_for((1, 15)) is None


@pytest.mark.parametrize("image,expected", [
    ("registry:5000/a/b:v1.2.3", ("registry:5000/a/b", "v1.2.3")),
    ("registry:5000/a/b", ("registry:5000/a/b", "")),
    ("a/b:1.0@sha256:ff", ("a/b", "1.0")),
])
def test_split_image(image, expected):
    assert split_image(image) == expected


def test_minor_of():
    assert minor_of("v1.31.2-eks-1234") == (1, 31) and minor_of("1.31+") == (1, 31)
    with pytest.raises(ValueError):
        minor_of("one.thirty")


# -- registry and report ------------------------------------------------------------------------------------
def test_codes_are_stable_and_all_in_the_readme_table():
    table = codes_table_markdown()
    for code, info in CODES.items():
        assert re.fullmatch(r"BG-(K8S|EKS|ADD|PRE)-\d{3}", code)
        assert f"| `{code}` | {info.severity.value} |" in table


def sample_report(ignore=()):
    items = [finding("BG-K8S-006", "PodDisruptionBudget/a/web", "maxUnavailable is 0", "blocks drains", "allow 1"),
             finding("BG-K8S-003", "Deployment/team-x/api", "1 replica", "outage", "scale"),
             finding("BG-EKS-011", "Cluster", "dates", "cost", "plan")]
    return build_report("green", "1.30", "1.31", items, ignore=ignore)


def test_text_report_groups_by_severity():
    text = sample_report().text()
    assert text.index("ERROR (1)") < text.index("WARNING (1)") < text.index("INFO (1)")
    assert "why: blocks drains" in text and "fix: allow 1" in text
    assert text.rstrip().endswith("1 error, 1 warning, 1 info: preflight FAILED (error-level findings)")


def test_json_report():
    data = json.loads(json.dumps(sample_report(ignore=("BG-K8S-006",)).as_dict()))
    assert data["passed"] is True and data["ignored"] == 1
    assert data["counts"] == {"error": 0, "warning": 1, "info": 1}
    assert data["findings"][0] == {"code": "BG-K8S-003", "severity": "warning", "object": "Deployment/team-x/api",
                                   "what": "1 replica", "why": "outage", "fix": "scale"}


@pytest.mark.parametrize("pattern,ignored", [
    ("BG-K8S-003", True), ("bg-k8s-003", True), ("BG-K8S-*", True), ("BG-K8S-003/Deployment/team-*/*", True),
    ("BG-K8S-003/Deployment/other/*", False), ("BG-K8S-004", False), ("BG-K8S-003/StatefulSet/*", False),
])
def test_ignore_patterns(pattern, ignored):
    item = finding("BG-K8S-003", "Deployment/team-x/api", "w", "w", "f")
    assert is_ignored(item, [pattern]) is ignored


# -- settings ------------------------------------------------------------------------------------------------
def test_settings_defaults_and_overrides():
    assert parse_preflight_settings(None) == PreflightSettings()
    settings = parse_preflight_settings({"ignore": ["BG-K8S-003/Deployment/kube-system/*"], "min_replicas": 3,
                                         "severity": {"BG-K8S-012": "error"}})
    assert settings.min_replicas == 3 and settings.severity == {"BG-K8S-012": Severity.ERROR}


def test_settings_report_every_bad_key_at_once():
    with pytest.raises(ConfigError) as caught:
        parse_preflight_settings({"ignore": ["BG-NOPE-001", "PDB"], "min_replicas": 0, "colour": "red",
                                  "severity": {"BG-K8S-003": "fatal"}})
    message = str(caught.value)
    for part in ("BG-NOPE-001", "'PDB'", "preflight.min_replicas", "preflight.colour", "fatal"):
        assert part in message


def test_severity_override_changes_the_gate():
    inventory = Inventory("c", "1.30", deployments=[{"kind": "Deployment", "metadata": {"namespace": "a", "name": "x"},
                                                     "spec": {"replicas": 1, "template": {"spec": {"containers": [
                                                         {"name": "c", "readinessProbe": {}}]}}}}])
    assert not run_preflight(inventory, target_version="1.30", settings=PreflightSettings()).has_errors
    strict = PreflightSettings(severity={"BG-K8S-003": Severity.ERROR})
    assert run_preflight(inventory, target_version="1.30", settings=strict).has_errors


# -- EKS checks over plain dicts ---------------------------------------------------------------------------
def test_one_minor_at_a_time():
    assert check_version_step((1, 30), (1, 31)) == []
    (item,) = check_version_step((1, 29), (1, 31))
    assert item.code == "BG-EKS-001" and "1.30 first" in item.fix


def test_insight_statuses_map_to_severities():
    eks = EksInventory(cluster={}, insights=[
        {"name": "a", "insightStatus": {"status": "PASSING"}},
        {"name": "b", "insightStatus": {"status": "WARNING", "reason": "r"}},
        {"name": "c", "insightStatus": {"status": "UNKNOWN"}}])
    assert [(f.object, f.severity.value) for f in check_insights(eks)] == [("Insight/b", "warning"),
                                                                           ("Insight/c", "info")]


def test_node_group_health_issues():
    # moto always reports a healthy node group, so the DescribeNodegroup shape is written out here.
    eks = EksInventory(cluster={}, nodegroups=[{"nodegroupName": "ng", "status": "DEGRADED", "amiType": "AL2023_x86_64_STANDARD",
                                                "health": {"issues": [{"code": "AsgInstanceLaunchFailures",
                                                                       "message": "no capacity"}]}}])
    (item,) = check_nodegroups(eks, (1, 31))
    assert (item.code, item.object) == ("BG-EKS-006", "Nodegroup/ng") and "AsgInstanceLaunchFailures" in item.what


def test_self_managed_amazon_linux_2_nodes():
    nodes = [{"metadata": {"name": "n1"}, "status": {"nodeInfo": {"osImage": "Amazon Linux 2"}}}]
    assert check_node_os(nodes, (1, 32)) == []
    assert [f.code for f in check_node_os(nodes, (1, 33))] == ["BG-EKS-008"]


def test_kube_proxy_skew_from_the_managed_addon():
    inventory = Inventory("c", "1.30", eks=EksInventory(cluster={}, addons=[
        {"addonName": "kube-proxy", "addonVersion": "v1.32.0-eksbuild.2"}]))
    (item,) = check_kube_proxy_skew(inventory, (1, 31))
    assert item.object == "Addon/kube-proxy" and "newer than the target" in item.what


def test_trust_policy_conditions():
    issuer = "https://oidc.eks.us-east-1.amazonaws.com/id/ABC"
    role = {"AssumeRolePolicyDocument": {"Statement": [{
        "Effect": "Allow", "Action": ["sts:AssumeRoleWithWebIdentity"],
        "Principal": {"Federated": "arn:aws:iam::1:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABC"},
        "Condition": {"StringLike": {"oidc.eks.us-east-1.amazonaws.com/id/ABC:sub": "system:serviceaccount:team-*:*"}}}]}}
    assert trusts_provider(role, issuer, "team-a", "web")
    assert not trusts_provider(role, issuer, "kube-system", "web")
    assert not trusts_provider(role, "https://oidc.eks.us-east-1.amazonaws.com/id/OTHER", "team-a", "web")


def test_support_dates_say_when_extended_support_has_started():
    inventory = Inventory("c", "1.29", eks=EksInventory(cluster={"name": "c"}))
    report = run_preflight(inventory, target_version="1.30", settings=PreflightSettings(), today=dt.date(2026, 1, 1))
    whats = [f.what for f in report.findings if f.code == "BG-EKS-011"]
    assert any(w.startswith("current version 1.29") and "in extended support now" in w for w in whats)
