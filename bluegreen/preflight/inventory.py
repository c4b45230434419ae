"""What a preflight looks at, as plain data. Pure: no I/O.

The adapter (:mod:`bluegreen.adapters.inventory`) fills it from a cluster and the AWS APIs; tests build it
by hand or through the same adapter against the emulators. Kubernetes objects are dicts exactly as the API
returns them (camelCase keys); AWS objects are dicts exactly as boto3 returns them. No Secret is kept: Helm
release records are reduced to the API versions their manifests use (:class:`ManifestRef`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ManifestRef:
    """One object of a manifest that something applies to the cluster, as that something wrote it."""

    api_version: str
    kind: str
    namespace: str
    name: str
    where: str  # "last-applied" | "helm" | "argocd"
    origin: str = ""  # e.g. "Helm release team-burnham/burnham (revision 3)", "Application argocd/burnham"


@dataclass
class EksInventory:
    """What the EKS, EC2 and IAM APIs say about one cluster (each a boto3 response dict)."""

    cluster: dict[str, Any]  # DescribeCluster["cluster"]
    nodegroups: list[dict[str, Any]] = field(default_factory=list)  # DescribeNodegroup["nodegroup"] each
    launch_templates: dict[str, dict[str, Any]] = field(default_factory=dict)  # by id: DescribeLaunchTemplates row
    addons: list[dict[str, Any]] = field(default_factory=list)  # DescribeAddon["addon"] each
    # add-on name -> versions DescribeAddonVersions lists as compatible with the target; None: not asked
    compatible_addon_versions: dict[str, list[str]] | None = None
    insights: list[dict[str, Any]] | None = None  # DescribeInsight["insight"] each; None: not read
    subnets: list[dict[str, Any]] = field(default_factory=list)  # DescribeSubnets["Subnets"]
    node_subnet_ids: list[str] = field(default_factory=list)  # the node groups' subnets
    # role ARN -> GetRole["Role"] (with AssumeRolePolicyDocument); None when the role does not exist
    iam_roles: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    pod_identity_associations: list[dict[str, Any]] | None = None  # this cluster's (namespace, serviceAccount)
    peer_cluster_name: str = ""
    peer_pod_identity_associations: list[dict[str, Any]] | None = None  # the other side's, when known

    @property
    def name(self) -> str:
        return str(self.cluster.get("name", ""))

    @property
    def version(self) -> str:
        return str(self.cluster.get("version", ""))

    @property
    def oidc_issuer(self) -> str:
        return str(((self.cluster.get("identity") or {}).get("oidc") or {}).get("issuer") or "")


@dataclass
class Inventory:
    cluster: str  # a label for the report: the EKS name or the kubeconfig context
    server_version: str  # the API server's minor version, e.g. "1.30"
    deployments: list[dict] = field(default_factory=list)
    statefulsets: list[dict] = field(default_factory=list)
    daemonsets: list[dict] = field(default_factory=list)
    replicasets: list[dict] = field(default_factory=list)  # only those no Deployment owns
    jobs: list[dict] = field(default_factory=list)  # only those no CronJob owns
    cronjobs: list[dict] = field(default_factory=list)
    pdbs: list[dict] = field(default_factory=list)
    pvcs: list[dict] = field(default_factory=list)
    nodes: list[dict] = field(default_factory=list)
    service_accounts: list[dict] = field(default_factory=list)
    manifests: list[ManifestRef] = field(default_factory=list)
    helm_unreadable: list[str] = field(default_factory=list)  # "namespace/secret-name" of undecodable records
    unread: list[str] = field(default_factory=list)  # "what could not be read: why" (permissions, ...)
    eks: EksInventory | None = None

    def workloads(self) -> list[dict]:
        """Every pod-owning object the workload checks look at."""
        return [*self.deployments, *self.statefulsets, *self.daemonsets, *self.replicasets, *self.jobs,
                *self.cronjobs]
