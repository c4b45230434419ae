"""``bluegreen verify``: is the target cluster ready for traffic? Reads both clusters' ArgoCD metadata,
Applications and workloads through the adapters, and lets :mod:`bluegreen.core.readiness` decide.

Imported only when clusters are configured (it imports kubernetes through the adapters).
"""

from __future__ import annotations

from typing import Callable

import structlog

from bluegreen.adapters import argocd
from bluegreen.adapters.kube import Kube, connect as kube_connect
from bluegreen.clusters_config import ClusterAccess, ClustersConfig, ClusterSpec, parse_clusters, parse_verify
from bluegreen.config import Config
from bluegreen.core.readiness import AppStatus, Check, ClusterMetadata, ReadinessReport, WorkloadStatus, assess

log = structlog.get_logger("bluegreen.clusters")

Connector = Callable[[ClusterAccess, str], Kube]


class Clusters:
    """Opens (once) and closes the API clients of blue, green and the ArgoCD hub."""

    def __init__(self, config: Config, clusters: ClustersConfig, connect: Connector | None = None) -> None:
        self.config = config
        self.spec = clusters
        self._connect = connect or (lambda access, label: kube_connect(access, config.aws, label=label))
        self._open: dict[str, Kube] = {}

    def kube(self, side: str) -> Kube:
        if side not in self._open:
            if side == "hub":
                hub = self.spec.argocd.hub
                assert hub is not None
                self._open[side] = self._connect(hub, f"ArgoCD hub cluster ({hub.describe()})")
            else:
                spec = self.spec.side(side)
                self._open[side] = self._connect(spec.access, spec.label())
        return self._open[side]

    def argocd_kube(self, side: str) -> Kube:
        """Where the ArgoCD objects describing ``side`` live: the hub, or the cluster itself."""
        return self.kube("hub" if self.spec.argocd.mode == "hub" else side)

    @property
    def namespace(self) -> str:
        return self.spec.argocd.namespace

    def close(self) -> None:
        for kube in self._open.values():
            kube.close()
        self._open.clear()

    def __enter__(self) -> "Clusters":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def pick_cluster_secret(secrets: list[argocd.ClusterSecret], spec: ClusterSpec,
                        mode: str) -> argocd.ClusterSecret | None:
    if spec.argocd_secret:
        return next((s for s in secrets if s.name == spec.argocd_secret), None)
    named = [s for s in secrets if spec.name in (s.cluster_name(), s.name)]
    if len(named) == 1:
        return named[0]
    if mode == "in-cluster" and len(secrets) == 1:
        return secrets[0]
    return None


def find_cluster_secret(clusters: Clusters, side: str) -> tuple[argocd.ClusterSecret | None, list[str]]:
    """The cluster secret of ``side`` and the names of every cluster secret seen (for messages)."""
    spec = clusters.spec.side(side)
    secrets = argocd.list_cluster_secrets(clusters.argocd_kube(side), clusters.namespace)
    return pick_cluster_secret(secrets, spec, clusters.spec.argocd.mode), [s.name for s in secrets]


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
    spec = parse_clusters(config)
    options = parse_verify(config)
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
            workloads=[WorkloadStatus(w.kind, w.namespace, w.name, w.desired, w.available) for w in workloads],
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

    spec = parse_clusters(config)
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
                entry["route53_weight"] = secret.annotations.get("route53_weight") if secret else None
            except BlueGreenError as error:
                entry["error"] = error.message
            result[side] = entry
    return result
