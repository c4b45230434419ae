"""``bluegreen preflight`` (and ``shift --preflight``): read one cluster through the adapters
(:func:`bluegreen.adapters.inventory.collect_inventory`) and let the pure checks of
:mod:`bluegreen.preflight` decide.

Imported only when a command needs it (it imports kubernetes and boto3 through the adapters).
"""

from __future__ import annotations

import datetime as dt

import structlog

from bluegreen.adapters.kube import Clusters, Connector, resolve_current_context
from bluegreen.config import Config
from bluegreen.preflight import PreflightReport, Severity, run_preflight
from bluegreen.preflight.tables import minor_of, minor_str, parse_target

log = structlog.get_logger("bluegreen.clusters")


def run_cluster_preflight(config: Config, cluster: str = "green", *, version: str | None = None,
                          connect: Connector | None = None, today: dt.date | None = None) -> PreflightReport:
    """Preflight of ``cluster`` (blue or green) for Kubernetes ``version`` (default: the cluster's own).

    The EKS, EC2 and IAM part runs when ``clusters.<side>.eks`` names the cluster; with a kubeconfig context
    only, the Kubernetes checks run alone. Raises ConfigError (exit 2) on a bad ``version`` and
    ClusterAccessError (exit 1) when the cluster or AWS cannot be reached."""
    spec = resolve_current_context(config.require_clusters())
    side, peer = spec.side(cluster), spec.other(cluster)
    if version is not None:
        parse_target(version)  # a typo is refused before any cluster is contacted
    eks = iam = ec2 = None
    if side.access.eks:
        from bluegreen.adapters import aws

        eks, iam, ec2 = (aws.client(config.aws, name) for name in ("eks", "iam", "ec2"))
    with Clusters(config, spec, connect) as clusters:
        kube = clusters.kube(cluster)
        hub = spec.argocd.mode == "hub"
        destinations = [n for n in (side.name, side.destination) if n] if hub else None
        from bluegreen.adapters.inventory import collect_inventory

        inventory = collect_inventory(
            kube, eks=eks, iam=iam, ec2=ec2, cluster_name=side.access.eks or side.name,
            target_version=version, peer_cluster_name=peer.access.eks,
            argocd=clusters.argocd_kube(cluster) if hub else None, argocd_destinations=destinations)
    target = version or minor_str(minor_of(inventory.server_version))
    report = run_preflight(inventory, target_version=target, settings=config.preflight.settings,
                           today=today or dt.datetime.now(dt.timezone.utc).date())
    log.info("preflight_done", cluster=cluster, target_version=report.target_version,
             errors=report.count(Severity.ERROR), warnings=report.count(Severity.WARNING), ignored=report.ignored)
    return report
