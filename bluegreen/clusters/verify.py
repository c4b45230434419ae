"""``bluegreen verify``: is the target cluster ready for traffic? Reads both clusters' ArgoCD metadata,
Applications and workloads through the adapters, and lets :mod:`bluegreen.core.readiness` decide.

Imported only when clusters are configured (it imports kubernetes through the adapters).
"""

from __future__ import annotations

import structlog

from bluegreen.adapters import argocd
from bluegreen.adapters.argocd import find_cluster_secret
from bluegreen.adapters.kube import Clusters, Connector, resolve_current_context
from bluegreen.config.clusters import ClusterSpec
from bluegreen.config import Config
from bluegreen.core.readiness import AppStatus, Check, ClusterMetadata, ReadinessReport, WorkloadStatus, assess

log = structlog.get_logger("bluegreen.clusters")

def _secret_check(side: str, spec: ClusterSpec, secret, seen: list[str], namespace: str) -> Check:
    if secret is not None:
        return Check("cluster", f"{side} ArgoCD cluster secret", True, f"{namespace}/{secret.name}")
    found = ", ".join(seen) or "none"
    want = f"named {spec.argocd_secret!r}" if spec.argocd_secret else f"for cluster {spec.name!r}"
    return Check("cluster", f"{side} ArgoCD cluster secret", False,
                 f"no ArgoCD cluster secret {want} in namespace {namespace} (found: {found}); "
                 f"set clusters.{side}.argocd_secret or clusters.{side}.name")


def _applications(clusters: Clusters, side: str, secret) -> list[argocd.Application]:
    apps = argocd.list_applications(clusters.argocd_kube(side), clusters.namespace)
    if clusters.spec.argocd.mode != "hub":
        return apps
    spec = clusters.spec.side(side)
    names = {n for n in (spec.name, spec.destination, secret.name if secret else None) if n}
    servers = {s for s in (spec.destination, secret.annotations.get("cluster_endpoint") if secret else None,
                           clusters.kube(side).eks_endpoint if side in clusters._open else None) if s}
    return [a for a in apps if a.destination_name in names or a.destination_server in servers]


def _name_tokens(spec: ClusterSpec, secret) -> list[str]:
    tokens = [spec.name, spec.side]
    if secret is not None:
        tokens += [t for t in (secret.cluster_name(), secret.name) if t]
    if spec.access.eks:
        tokens.append(spec.access.eks)
    return tokens


def run_verify(config: Config, cluster: str = "green", *, connect: Connector | None = None) -> ReadinessReport:
    """Compare ``cluster`` (the target) with the other side. Raises ConfigError (exit 2) on a bad config and
    ClusterAccessError (exit 1) when a cluster cannot be reached; returns the report otherwise."""
    spec = resolve_current_context(config.require_clusters())
    options = config.verify
    target_spec, ref_spec = spec.side(cluster), spec.other(cluster)
    target, reference = target_spec.side, ref_spec.side
    with Clusters(config, spec, connect) as clusters:
        ref_secret, ref_seen = find_cluster_secret(clusters, reference)
        tgt_secret, tgt_seen = find_cluster_secret(clusters, target)
        checks = [_secret_check(reference, ref_spec, ref_secret, ref_seen, clusters.namespace),
                  _secret_check(target, target_spec, tgt_secret, tgt_seen, clusters.namespace)]
        both = ref_secret is not None and tgt_secret is not None
        ref_apps = _applications(clusters, reference, ref_secret)
        tgt_apps = _applications(clusters, target, tgt_secret)
        workloads = argocd.list_workloads(clusters.kube(target), options.workload_namespaces)
        report = assess(
            reference, target,
            ref_meta=ClusterMetadata(ref_secret.labels, ref_secret.annotations) if both else ClusterMetadata(),
            tgt_meta=ClusterMetadata(tgt_secret.labels, tgt_secret.annotations) if both else ClusterMetadata(),
            ref_apps=[AppStatus(a.name, a.sync, a.health) for a in ref_apps],
            tgt_apps=[AppStatus(a.name, a.sync, a.health) for a in tgt_apps],
            ref_names=_name_tokens(ref_spec, ref_secret), tgt_names=_name_tokens(target_spec, tgt_secret),
            workloads=workloads,
            workload_namespaces=options.workload_namespaces,
            extra_ignore=options.ignore_keys, ignore_applications=options.ignore_applications,
            extra_checks=checks,
        )
    log.info("verify_done", target=target, reference=reference, ready=report.ready, reasons=len(report.reasons))
    return report


def cluster_summaries(config: Config, *, connect: Connector | None = None) -> dict[str, dict]:
    """For ``bluegreen status``: each cluster's Kubernetes version and its ArgoCD health summary. A cluster
    that cannot be reached is reported as such instead of failing the whole status."""
    from bluegreen.errors import BlueGreenError

    spec = resolve_current_context(config.require_clusters())
    result: dict[str, dict] = {}
    with Clusters(config, spec, connect) as clusters:
        for side in ("blue", "green"):
            entry: dict = {"name": spec.side(side).name}
            try:
                entry["kubernetes_version"] = clusters.kube(side).server_version()
                secret, _ = find_cluster_secret(clusters, side)
                apps = _applications(clusters, side, secret)
                entry["applications"] = len(apps)
                entry["synced"] = sum(a.sync == "Synced" for a in apps)
                entry["healthy"] = sum(a.health == "Healthy" for a in apps)
                # The weight ArgoCD's cluster secret asks for (GitOps Bridge): only what ArgoCD says, not
                # necessarily what Route 53 holds; `status` compares the two.
                entry["argocd_weight"] = secret.annotations.get("route53_weight") if secret else None
            except BlueGreenError as error:
                entry["error"] = error.message
            result[side] = entry
    return result
