"""The preflight entry point: every check over one :class:`Inventory`, for one target version. Pure."""

from __future__ import annotations

import dataclasses
import datetime as dt

from bluegreen.errors import ConfigError
from bluegreen.preflight import addon_checks, eks_checks, k8s_checks
from bluegreen.preflight.findings import Finding, PreflightReport, build_report, finding
from bluegreen.preflight.inventory import Inventory
from bluegreen.preflight.settings import PreflightSettings
from bluegreen.preflight.tables import minor_of, minor_str, parse_target


def run_preflight(inventory: Inventory, *, target_version: str, settings: PreflightSettings,
                  today: dt.date | None = None) -> PreflightReport:
    """Check ``inventory`` for an upgrade to (or traffic on) ``target_version`` (``"1.31"``).

    ``today`` (from the injected clock) only adds "in extended support now" to the support-date findings.
    Raises :class:`ConfigError` for a target that is not a version or is older than the cluster.
    """
    target = parse_target(target_version)
    try:
        current = minor_of(inventory.server_version)
    except ValueError:
        raise ConfigError(f"the cluster reports an unreadable version {inventory.server_version!r}") from None
    if target < current:
        raise ConfigError(f"--version {minor_str(target)} is older than the cluster's {minor_str(current)}: "
                          "Kubernetes cannot be downgraded",
                          hint=f"pass --version {minor_str(current)} or newer")

    findings: list[Finding] = []
    findings += k8s_checks.check_api_versions(inventory.manifests, target)
    findings += k8s_checks.check_helm_records(inventory.helm_unreadable)
    findings += k8s_checks.check_workloads(inventory, target, settings)
    findings += addon_checks.check_self_managed_addons(inventory, target)
    findings += eks_checks.check_version_step(current, target)
    findings += eks_checks.check_kubelet_skew(inventory.nodes, target)
    findings += eks_checks.check_node_os(inventory.nodes, target)
    findings += eks_checks.check_kube_proxy_skew(inventory, target)
    findings += eks_checks.check_irsa(inventory)
    checked = ["workloads", "API versions", "self-managed add-ons", "nodes"]
    eks = inventory.eks
    if eks is not None:
        findings += eks_checks.check_managed_addons(eks, target)
        findings += eks_checks.check_nodegroups(eks, target)
        findings += eks_checks.check_insights(eks)
        findings += eks_checks.check_subnets(eks, settings)
        findings += eks_checks.check_pod_identity(eks)
        findings += eks_checks.check_support(current, target, today)
        checked += ["EKS add-ons", "node groups", "subnets", "IRSA", "support dates"]
        if eks.insights is not None:
            checked.append("Upgrade Insights")
        if eks.peer_pod_identity_associations is not None:
            checked.append("Pod Identity")
    findings += [finding("BG-PRE-001", "Cluster", f"not read: {what}",
                                    "the checks that need it did not run", "grant read access (see the README) "
                                    "and re-run preflight") for what in inventory.unread]
    if settings.severity:
        findings = [dataclasses.replace(f, severity=settings.severity.get(f.code, f.severity)) for f in findings]
    return build_report(inventory.cluster, minor_str(current), minor_str(target), findings,
                        ignore=settings.ignore, checked=checked)
