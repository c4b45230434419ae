"""Self-managed add-ons found by their container images, against the shipped compatibility table
(``data/addons.yaml``). Pure: no I/O.

An add-on EKS manages (``eks_addon`` in the table, present in DescribeAddon) is left to the managed add-on
check; kube-proxy's skew has its own check (BG-EKS-003).
"""

from __future__ import annotations

from bluegreen.preflight.findings import Finding, Severity, finding
from bluegreen.preflight.inventory import Inventory
from bluegreen.preflight.k8s_checks import containers, ref
from bluegreen.preflight.tables import addon_rules, minor_str, semver_of, semver_str, split_image

Version = tuple[int, int]


def check_self_managed_addons(inventory: Inventory, target: Version) -> list[Finding]:
    managed = {a.get("addonName") for a in (inventory.eks.addons if inventory.eks else [])}
    out: list[Finding] = []
    for obj in [*inventory.deployments, *inventory.daemonsets]:
        for container in containers(obj):
            repository, tag = split_image(container.get("image", ""))
            for rule in addon_rules():
                if not rule.matches_image(repository) or rule.rule == "skew":
                    continue
                if rule.eks_addon and rule.eks_addon in managed:
                    continue
                out += _check_one(rule, ref(obj), container.get("image", ""), tag, target)
    return out


def _check_one(rule, obj: str, image: str, tag: str, target: Version) -> list[Finding]:
    version = semver_of(tag)
    if version is None:
        return [finding("BG-ADD-003", obj, f"{rule.name}: no version in the image tag of {image}",
                        "its compatibility with the target could not be checked",
                        f"check it by hand against {rule.source}")]
    severity = Severity(rule.severity)
    if rule.rule == "match_minor" and version[:2] != target:
        return [finding("BG-ADD-001", obj,
                        f"{rule.name} {semver_str(version)} is built for Kubernetes {minor_str(version[:2])}, "
                        f"the target is {minor_str(target)}",
                        "cluster-autoscaler uses the scheduler code of its own Kubernetes minor: on another "
                        "version it can misjudge where pods fit and scale wrongly",
                        f"deploy cluster-autoscaler {minor_str(target)}.x with the upgrade ({rule.source})",
                        severity=severity)]
    if rule.rule == "minimum":
        minimum = rule.minimum_for(target)
        if minimum is not None and version < minimum:
            return [finding("BG-ADD-002", obj,
                            f"{rule.name} {semver_str(version)} is older than {semver_str(minimum)}, the minimum "
                            f"known for Kubernetes {minor_str(target)}",
                            f"{rule.name} may fail on the target version (removed APIs, changed behaviour)",
                            f"upgrade {rule.name} to {semver_str(minimum)} or later before the cluster "
                            f"({rule.source})", severity=severity)]
    return []
