"""Checks over what EKS, EC2 and IAM say (boto3 response dicts) and over Nodes. Pure: no I/O.

Version skew follows the Kubernetes version skew policy (https://kubernetes.io/releases/version-skew-policy/):
kubelet must not be newer than kube-apiserver and may be up to three minor versions older (two before
kubelet 1.25); kube-proxy likewise, and within three minors of the kubelet beside it. EKS upgrades the
control plane one minor version at a time (EKS User Guide, "Update existing cluster to new Kubernetes
version").
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import urllib.parse
from collections import defaultdict
from typing import Any, Iterable

from bluegreen.preflight.findings import Finding, Severity, finding, object_ref
from bluegreen.preflight.inventory import EksInventory, Inventory
from bluegreen.preflight.settings import PreflightSettings
from bluegreen.preflight.tables import eks_calendar, minor_of, minor_str, semver_of, split_image

Version = tuple[int, int]
IRSA_ANNOTATION = "eks.amazonaws.com/role-arn"
_INSIGHT_SEVERITY = {"ERROR": Severity.ERROR, "WARNING": Severity.WARNING, "UNKNOWN": Severity.INFO}


def max_skew(component: Version) -> int:
    """How many minors a kubelet or kube-proxy of this version may trail the API server."""
    return 3 if component >= (1, 25) else 2


def check_version_step(current: Version, target: Version) -> list[Finding]:
    if target[0] == current[0] and target[1] - current[1] > 1:
        return [finding("BG-EKS-001", "Cluster", f"the control plane runs {minor_str(current)}, the target is "
                        f"{minor_str(target)}",
                        "EKS upgrades the control plane one minor version at a time",
                        f"upgrade to {current[0]}.{current[1] + 1} first, then on; or build the target as a new "
                        "(green) cluster and move traffic with bluegreen")]
    return []


# -- nodes and kube-proxy --------------------------------------------------------------------------------
def kubelet_versions(nodes: Iterable[dict]) -> dict[Version, list[str]]:
    found: dict[Version, list[str]] = defaultdict(list)
    for node in nodes:
        raw = ((node.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion")
        try:
            found[minor_of(raw)].append((node.get("metadata") or {}).get("name", "?"))
        except (ValueError, TypeError):
            continue
    return dict(found)


def _nodes_ref(names: list[str]) -> str:
    names = sorted(names)
    return f"Node/{names[0]}" + (f" (+{len(names) - 1} more)" if len(names) > 1 else "")


def check_kubelet_skew(nodes: Iterable[dict], target: Version) -> list[Finding]:
    out = []
    for version, names in sorted(kubelet_versions(nodes).items()):
        behind = target[1] - version[1] if version[0] == target[0] else 99
        where = f"{len(names)} node(s) run kubelet {minor_str(version)}"
        if behind < 0:
            out.append(finding("BG-EKS-002", _nodes_ref(names), f"{where}, newer than the target {minor_str(target)}",
                               "a kubelet must never be newer than the API server",
                               "target at least the nodes' version, or replace the nodes"))
        elif behind > max_skew(version):
            out.append(finding("BG-EKS-002", _nodes_ref(names),
                               f"{where}: {behind} minors behind the target {minor_str(target)} "
                               f"(at most {max_skew(version)} allowed)",
                               "the control plane does not support kubelets that old: the nodes can fail to "
                               "register or to run pods after the upgrade",
                               "upgrade these nodes (or their node group) before upgrading the control plane"))
        elif behind == max_skew(version):
            out.append(finding("BG-EKS-002", _nodes_ref(names),
                               f"{where}: {behind} minors behind the target {minor_str(target)}, the most the "
                               "skew policy allows",
                               "this upgrade works, but the next control plane upgrade will not until these nodes "
                               "are upgraded", "upgrade the nodes right after the control plane",
                               severity=Severity.WARNING))
    return out


def kube_proxy_version(inventory: Inventory) -> tuple[Version | None, str]:
    """kube-proxy's minor from the kube-system/kube-proxy DaemonSet image, else from the managed add-on."""
    for ds in inventory.daemonsets:
        m = ds.get("metadata") or {}
        if m.get("namespace") == "kube-system" and m.get("name") == "kube-proxy":
            for container in ((ds.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or []:
                version = semver_of(split_image(container.get("image", ""))[1])
                if version:
                    return version[:2], "DaemonSet/kube-system/kube-proxy"
    for addon in (inventory.eks.addons if inventory.eks else []):
        if addon.get("addonName") == "kube-proxy":
            version = semver_of(addon.get("addonVersion", ""))
            if version:
                return version[:2], "Addon/kube-proxy"
    return None, ""


def check_kube_proxy_skew(inventory: Inventory, target: Version) -> list[Finding]:
    version, obj = kube_proxy_version(inventory)
    if version is None:
        return []
    problems = []
    if version > target:
        problems.append(f"newer than the target API server {minor_str(target)}")
    elif target[1] - version[1] > max_skew(version):
        problems.append(f"{target[1] - version[1]} minors behind the target {minor_str(target)} "
                        f"(at most {max_skew(version)})")
    for kubelet, names in sorted(kubelet_versions(inventory.nodes).items()):
        if abs(kubelet[1] - version[1]) > max_skew(min(kubelet, version)):
            problems.append(f"{abs(kubelet[1] - version[1])} minors from kubelet {minor_str(kubelet)} "
                            f"on {len(names)} node(s)")
    if not problems:
        return []
    return [finding("BG-EKS-003", obj, f"kube-proxy {minor_str(version)} is " + "; ".join(problems),
                    "kube-proxy programs the Service rules on every node: outside the supported skew, Services "
                    "can stop routing",
                    f"update kube-proxy to {minor_str(target)} (the EKS add-on, or the image tag) together with "
                    "the nodes")]


# -- managed add-ons and node groups ---------------------------------------------------------------------
def check_managed_addons(eks: EksInventory, target: Version) -> list[Finding]:
    out = []
    for addon in eks.addons:
        name, version = addon.get("addonName", "?"), addon.get("addonVersion", "?")
        obj = f"Addon/{name}"
        if eks.compatible_addon_versions is not None:
            compatible = eks.compatible_addon_versions.get(name, [])
            if version not in compatible:
                newest = f" (newest for {minor_str(target)}: {compatible[0]})" if compatible else ""
                out.append(finding("BG-EKS-004", obj,
                                   f"{name} {version} is not listed as compatible with {minor_str(target)}{newest}",
                                   "an add-on EKS does not support on the target version may fail after the upgrade "
                                   "(CNI, DNS and kube-proxy failures take the whole cluster down)",
                                   f"update the add-on to a version DescribeAddonVersions lists for "
                                   f"{minor_str(target)} (aws eks update-addon)"))
        issues = (addon.get("health") or {}).get("issues") or []
        status = addon.get("status", "")
        if issues or status in ("DEGRADED", "CREATE_FAILED", "UPDATE_FAILED"):
            detail = "; ".join(f"{i.get('code', '?')}: {i.get('message', '')}".strip() for i in issues) or status
            out.append(finding("BG-EKS-005", obj, f"{name} is {status or 'unhealthy'}: {detail}",
                               "an add-on update during the upgrade starts from a broken state and may not finish",
                               "fix the issues shown (aws eks describe-addon) before upgrading"))
    return out


def check_nodegroups(eks: EksInventory, target: Version) -> list[Finding]:
    out = []
    al2_last = eks_calendar().al2_last_version
    for group in eks.nodegroups:
        name = group.get("nodegroupName", "?")
        obj = f"Nodegroup/{name}"
        issues = (group.get("health") or {}).get("issues") or []
        if issues or group.get("status") == "DEGRADED":
            detail = "; ".join(f"{i.get('code', '?')}: {i.get('message', '')}".strip() for i in issues)
            out.append(finding("BG-EKS-006", obj, f"{group.get('status', '?')}: {detail or 'degraded'}",
                               "a node group update (new AMI, new version) fails or stalls while it is unhealthy",
                               "fix the health issues (aws eks describe-nodegroup) first"))
        template = group.get("launchTemplate") or {}
        known = eks.launch_templates.get(template.get("id", "")) if template else None
        if known and str(template.get("version", "")).isdigit():
            latest = int(known.get("LatestVersionNumber") or 0)
            if int(template["version"]) < latest:
                out.append(finding("BG-EKS-007", obj,
                                   f"uses launch template {template.get('name') or template.get('id')} version "
                                   f"{template['version']}, latest is {latest}",
                                   "the pending change rolls out together with the version upgrade: two changes "
                                   "in one node replacement are harder to diagnose and roll back",
                                   "update the node group to the latest template version first, or on purpose "
                                   "pin the old version in your infrastructure code"))
        ami = str(group.get("amiType", ""))
        if ami.startswith("AL2_") and target > al2_last:
            out.append(finding("BG-EKS-008", obj,
                               f"amiType {ami}: EKS publishes no Amazon Linux 2 AMI for {minor_str(target)} "
                               f"(the last is {minor_str(al2_last)})",
                               "the node group cannot be upgraded to the target version",
                               "move the node group to AL2023 (or Bottlerocket) before upgrading"))
    return out


def check_node_os(nodes: Iterable[dict], target: Version) -> list[Finding]:
    """Self-managed nodes on Amazon Linux 2 (what a managed node group's amiType says, read from the Node)."""
    al2_last = eks_calendar().al2_last_version
    if target <= al2_last:
        return []
    names = [(n.get("metadata") or {}).get("name", "?") for n in nodes
             if ((n.get("status") or {}).get("nodeInfo") or {}).get("osImage", "").strip() == "Amazon Linux 2"]
    if not names:
        return []
    return [finding("BG-EKS-008", _nodes_ref(names), f"{len(names)} node(s) run Amazon Linux 2",
                    f"EKS publishes no Amazon Linux 2 AMI for {minor_str(target)}: these nodes cannot be "
                    "replaced with the target version",
                    "move these nodes to AL2023 (or Bottlerocket)")]


# -- Upgrade Insights ------------------------------------------------------------------------------------
def check_insights(eks: EksInventory) -> list[Finding]:
    out = []
    for insight in eks.insights or []:
        status = (insight.get("insightStatus") or {}).get("status", "UNKNOWN")
        if status == "PASSING":
            continue
        reason = (insight.get("insightStatus") or {}).get("reason", "")
        resources = insight.get("resources") or []
        uris = [r.get("kubernetesResourceUri") or r.get("arn") or "" for r in resources]
        uris = [u for u in uris if u]
        shown = f"; resources: {', '.join(uris[:5])}{' ...' if len(uris) > 5 else ''}" if uris else ""
        out.append(finding("BG-EKS-009", f"Insight/{insight.get('name', insight.get('id', '?'))}",
                           f"EKS Upgrade Insight status {status}: {reason or insight.get('description', '')}{shown}",
                           insight.get("description") or "EKS found something that breaks or risks the upgrade",
                           insight.get("recommendation") or "see the insight in the EKS console (Upgrade insights)",
                           severity=_INSIGHT_SEVERITY.get(status, Severity.INFO)))
    return out


# -- subnets -----------------------------------------------------------------------------------------------
def check_subnets(eks: EksInventory, settings: PreflightSettings) -> list[Finding]:
    out = []
    control_plane = set((eks.cluster.get("resourcesVpcConfig") or {}).get("subnetIds") or [])
    nodes = set(eks.node_subnet_ids)
    for subnet in eks.subnets:
        subnet_id = subnet.get("SubnetId", "?")
        free = int(subnet.get("AvailableIpAddressCount", 0))
        if subnet_id in control_plane and free < settings.min_free_ips_control_plane:
            out.append(finding("BG-EKS-010", f"Subnet/{subnet_id}",
                               f"{free} free IP address(es) in a control plane subnet "
                               f"(preflight.min_free_ips_control_plane: {settings.min_free_ips_control_plane})",
                               "EKS needs up to five free addresses in the cluster's subnets to create new control "
                               "plane network interfaces during an upgrade; without them the upgrade fails",
                               "free addresses in the subnet, or add subnets to the cluster (update-cluster-config)",
                               severity=Severity.ERROR))
        elif subnet_id in nodes and free < settings.min_free_ips_nodes:
            out.append(finding("BG-EKS-010", f"Subnet/{subnet_id}",
                               f"{free} free IP address(es) in a node subnet "
                               f"(preflight.min_free_ips_nodes: {settings.min_free_ips_nodes})",
                               "a rolling node update starts new nodes (and their pods' addresses) before it stops "
                               "old ones",
                               "free addresses, add a subnet or a secondary CIDR, or lower the update's maxUnavailable"))
    return out


# -- support dates -------------------------------------------------------------------------------------------
def check_support(current: Version, target: Version, today: dt.date | None) -> list[Finding]:
    calendar = eks_calendar()
    out = []
    for label, version in (("current", current), ("target", target)):
        if label == "target" and version == current:
            continue
        row = calendar.get(version)
        if row is None:
            out.append(finding("BG-EKS-011", "Cluster", f"{label} version {minor_str(version)} is not in the shipped "
                               "EKS calendar", "its support dates are unknown to this bluegreen",
                               f"see {calendar.source}"))
            continue
        state = ""
        if today is not None:
            if today >= row.end_of_extended:
                state = " (past the end of extended support: EKS will upgrade it by itself)"
            elif today >= row.end_of_standard:
                state = " (in extended support now)"
        out.append(finding(
            "BG-EKS-011", "Cluster",
            f"{label} version {minor_str(version)}: standard support until {row.end_of_standard.isoformat()}, "
            f"extended support until {row.end_of_extended.isoformat()}{state}",
            f"extended support costs ${calendar.extended_usd_per_hour:.2f} per cluster-hour instead of "
            f"${calendar.standard_usd_per_hour:.2f} (about ${(calendar.extended_usd_per_hour - calendar.standard_usd_per_hour) * 730:.0f} more a month)",
            f"plan the next upgrade before {row.end_of_standard.isoformat()} ({calendar.pricing_source})"))
    return out


# -- IRSA and Pod Identity (blue/green specific) --------------------------------------------------------------
def _policy_document(role: dict) -> dict:
    document = role.get("AssumeRolePolicyDocument") or {}
    if isinstance(document, str):  # the IAM API returns it URL-encoded; boto3 usually decodes it already
        document = json.loads(urllib.parse.unquote(document))
    return document


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value] if value is not None else []


def trusts_provider(role: dict, issuer: str, namespace: str, service_account: str) -> bool:
    """Does the trust policy let this cluster's OIDC provider assume the role for this service account?"""
    provider = issuer.removeprefix("https://").rstrip("/")
    subject = f"system:serviceaccount:{namespace}:{service_account}"
    for statement in _as_list(_policy_document(role).get("Statement")):
        if statement.get("Effect") != "Allow":
            continue
        if "sts:AssumeRoleWithWebIdentity" not in _as_list(statement.get("Action")) and \
                "sts:*" not in _as_list(statement.get("Action")):
            continue
        federated = _as_list((statement.get("Principal") or {}).get("Federated"))
        if not any(str(arn).endswith(f":oidc-provider/{provider}") for arn in federated):
            continue
        conditions = statement.get("Condition") or {}
        subjects = []
        for operator, pairs in conditions.items():
            for key, values in (pairs or {}).items():
                if key == f"{provider}:sub":
                    subjects += [(operator, v) for v in _as_list(values)]
        if not subjects:
            return True
        for operator, value in subjects:
            if operator.startswith("StringLike") and fnmatch.fnmatchcase(subject, value):
                return True
            if operator.startswith("StringEquals") and subject == value:
                return True
    return False


def check_irsa(inventory: Inventory) -> list[Finding]:
    eks = inventory.eks
    if eks is None or not eks.oidc_issuer:
        return []
    out = []
    for sa in inventory.service_accounts:
        m = sa.get("metadata") or {}
        arn = (m.get("annotations") or {}).get(IRSA_ANNOTATION)
        if not arn or arn not in eks.iam_roles:
            continue
        obj = object_ref("ServiceAccount", m.get("namespace"), m.get("name", ""))
        role = eks.iam_roles[arn]
        if role is None:
            out.append(finding("BG-EKS-012", obj, f"annotated with role {arn}, which does not exist",
                               "pods of this service account get no AWS credentials on this cluster",
                               "create the role, or fix the eks.amazonaws.com/role-arn annotation"))
        elif not trusts_provider(role, eks.oidc_issuer, m.get("namespace", ""), m.get("name", "")):
            out.append(finding("BG-EKS-012", obj,
                               f"role {arn} does not trust this cluster's OIDC provider "
                               f"({eks.oidc_issuer.removeprefix('https://')}) for this service account",
                               "the role was made for the other cluster: it works there and fails here with "
                               "AccessDenied on AssumeRoleWithWebIdentity, right when traffic arrives",
                               "add a statement for this cluster's OIDC provider (and its :sub condition) to the "
                               "role's trust policy; register the provider in IAM if it is not"))
    return out


def check_pod_identity(eks: EksInventory) -> list[Finding]:
    if eks.peer_pod_identity_associations is None or eks.pod_identity_associations is None:
        return []
    here = {(a.get("namespace"), a.get("serviceAccount")) for a in eks.pod_identity_associations}
    out = []
    for association in eks.peer_pod_identity_associations:
        key = (association.get("namespace"), association.get("serviceAccount"))
        if key in here:
            continue
        role = association.get("roleArn", "")
        out.append(finding("BG-EKS-013", object_ref("ServiceAccount", key[0], key[1] or ""),
                           f"{eks.peer_cluster_name or 'the peer cluster'} has a Pod Identity association for it"
                           + (f" (role {role})" if role else "") + "; this cluster has none",
                           "pods of this service account get no AWS credentials here",
                           f"aws eks create-pod-identity-association --cluster-name {eks.name} --namespace {key[0]} "
                           f"--service-account {key[1]} --role-arn <role>"))
    return out
