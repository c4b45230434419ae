"""Read what a preflight needs from one cluster (official kubernetes client) and from EKS, EC2 and IAM
(boto3 clients passed in), into a plain :class:`~bluegreen.preflight.inventory.Inventory`.

Everything is read, nothing is written. Objects are kept as the API returns them (dicts), except:

- Secrets: only Helm release records are read (label ``owner=helm``, type ``helm.sh/release.v1``), and of
  each only the ``release`` payload is decoded, in memory, to reach its ``manifest``; what is kept is the
  apiVersion, kind, namespace and name of each manifest document. Nothing else of a Secret is kept, logged or
  passed on.
- the ``kubectl.kubernetes.io/last-applied-configuration`` annotation is parsed for its apiVersion and kind,
  then dropped from the stored object.

A resource the server does not serve (404: a CRD that is not installed, an API group that is gone) reads as
empty. One the caller may not read (401/403), or an AWS call refused (AccessDenied, or an operation the
endpoint does not offer), is recorded in ``Inventory.unread`` and the rest goes on: preflight reports it
(BG-PRE-001) instead of failing whole. A cluster or AWS endpoint that cannot be reached at all raises
:class:`~bluegreen.adapters.kube.ClusterAccessError` (exit 1).
"""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any, Callable, Iterable

import structlog
import yaml

from bluegreen.adapters.kube import ClusterAccessError, Kube
from bluegreen.errors import shorten
from bluegreen.preflight.eks_checks import IRSA_ANNOTATION
from bluegreen.preflight.inventory import EksInventory, Inventory, ManifestRef
from bluegreen.preflight.tables import minor_of, minor_str

log = structlog.get_logger("bluegreen.preflight")

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
HELM_SELECTOR = "owner=helm,status=deployed"  # Helm 3 labels its release Secrets so
HELM_SECRET_TYPE = "helm.sh/release.v1"
GZIP_MAGIC = b"\x1f\x8b"

# Where the kinds of the removal table are served today: their objects' last-applied annotation tells which
# apiVersion the manifest that created them used. (group, version, plural, kind)
_APPLIED_KINDS: tuple[tuple[str, str, str, str], ...] = (
    ("networking.k8s.io", "v1", "ingresses", "Ingress"),
    ("networking.k8s.io", "v1", "ingressclasses", "IngressClass"),
    ("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy"),
    ("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler"),
    ("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole"),
    ("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding"),
    ("rbac.authorization.k8s.io", "v1", "roles", "Role"),
    ("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
    ("admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations", "MutatingWebhookConfiguration"),
    ("admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations", "ValidatingWebhookConfiguration"),
    ("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition"),
    ("apiregistration.k8s.io", "v1", "apiservices", "APIService"),
    ("scheduling.k8s.io", "v1", "priorityclasses", "PriorityClass"),
    ("storage.k8s.io", "v1", "storageclasses", "StorageClass"),
    ("storage.k8s.io", "v1", "csidrivers", "CSIDriver"),
    ("storage.k8s.io", "v1", "csistoragecapacities", "CSIStorageCapacity"),
    ("node.k8s.io", "v1", "runtimeclasses", "RuntimeClass"),
    ("flowcontrol.apiserver.k8s.io", "v1", "flowschemas", "FlowSchema"),
    ("flowcontrol.apiserver.k8s.io", "v1", "prioritylevelconfigurations", "PriorityLevelConfiguration"),
)


class _Reader:
    """List calls with the 404 / 403 policy of the module docstring."""

    def __init__(self, kube: Kube, unread: list[str]) -> None:
        self.kube = kube
        self.unread = unread

    def _items(self, what: str, call: Callable[[], Any]) -> list[dict]:
        from kubernetes.client.exceptions import ApiException

        with self.kube.guard(f"listing {what}"):
            try:
                answer = call()
            except ApiException as error:
                if error.status == 404:
                    return []
                if error.status in (401, 403):
                    self.unread.append(f"{what} (HTTP {error.status} on the {self.kube.label})")
                    return []
                raise
            if hasattr(answer, "data") and hasattr(answer, "release_conn"):  # _preload_content=False
                response = answer
                try:
                    answer = json.loads(response.data)
                finally:
                    response.release_conn()
        return list((answer or {}).get("items") or [])

    def group(self, group: str, version: str, plural: str, kind: str) -> list[dict]:
        # CustomObjectsApi builds /apis/{group}/{version}/{plural}: it lists built-in groups as well, as dicts.
        items = self._items(f"{plural}.{group}", lambda: self.kube.custom.list_cluster_custom_object(
            group, version, plural))
        for item in items:  # list items carry no kind of their own
            item.setdefault("kind", kind)
            item.setdefault("apiVersion", f"{group}/{version}")
        return items

    def core(self, plural: str, kind: str, call: Callable[..., Any], **kwargs: Any) -> list[dict]:
        items = self._items(plural, lambda: call(_preload_content=False, **kwargs))
        for item in items:
            item.setdefault("kind", kind)
            item.setdefault("apiVersion", "v1")
        return items


def _owned_by(obj: dict, kind: str) -> bool:
    return any(o.get("kind") == kind for o in (obj.get("metadata") or {}).get("ownerReferences") or [])


def last_applied_ref(obj: dict) -> ManifestRef | None:
    """The apiVersion/kind the object's last ``kubectl apply`` used; the annotation is removed from ``obj``."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    raw = annotations.pop(LAST_APPLIED, None)
    if not raw:
        return None
    try:
        applied = json.loads(raw)
    except ValueError:
        return None
    meta = obj.get("metadata") or {}
    return ManifestRef(str(applied.get("apiVersion", "")), str(applied.get("kind", "")),
                       meta.get("namespace") or "", meta.get("name", ""), "last-applied")


# -- Helm -----------------------------------------------------------------------------------------------
def decode_helm_release(payload_b64: str) -> dict:
    """A Helm 3 release record: the Secret's ``data.release`` is base64 (Kubernetes) of base64 (Helm) of gzip
    of JSON. Returns the release JSON; raises ValueError when it is none of that."""
    try:
        inner = base64.b64decode(payload_b64, validate=False)
        raw = base64.b64decode(inner, validate=False)
    except (ValueError, TypeError) as error:
        raise ValueError("not base64") from error
    if raw[:2] == GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except OSError as error:
            raise ValueError("bad gzip") from error
    release = json.loads(raw)
    if not isinstance(release, dict):
        raise ValueError("not a release object")
    return release


def manifest_refs(manifest: str, default_namespace: str, origin: str, where: str = "helm") -> list[ManifestRef]:
    refs = []
    for doc in yaml.safe_load_all(manifest or ""):
        if not isinstance(doc, dict) or not doc.get("kind"):
            continue
        meta = doc.get("metadata") or {}
        refs.append(ManifestRef(str(doc.get("apiVersion", "")), str(doc["kind"]),
                                str(meta.get("namespace") or default_namespace), str(meta.get("name", "")),
                                where, origin))
    return refs


def read_helm_releases(reader: _Reader) -> tuple[list[ManifestRef], list[str]]:
    kube = reader.kube
    items = reader.core("secrets", "Secret", kube.core.list_secret_for_all_namespaces, label_selector=HELM_SELECTOR)
    refs: list[ManifestRef] = []
    unreadable: list[str] = []
    while items:
        secret = items.pop()  # each Secret leaves memory as soon as its manifest is read
        meta = secret.get("metadata") or {}
        label = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
        if secret.get("type") != HELM_SECRET_TYPE:
            continue
        payload = (secret.get("data") or {}).get("release")
        secret.clear()
        try:
            release = decode_helm_release(payload or "")
            namespace = str(release.get("namespace") or meta.get("namespace") or "")
            origin = f"Helm release {namespace}/{release.get('name', '?')} (revision {release.get('version', '?')})"
            refs += manifest_refs(str(release.get("manifest") or ""), namespace, origin)
        except (ValueError, yaml.YAMLError):
            unreadable.append(label)  # the record's content is never echoed, not even in part
        finally:
            payload = release = None  # noqa: F841 - drop the decoded record at once
    return refs, unreadable


def read_argocd_resources(reader: _Reader, destinations: Iterable[str] | None) -> list[ManifestRef]:
    apps = reader.group("argoproj.io", "v1alpha1", "applications", "Application")
    wanted = set(destinations) if destinations is not None else None
    refs = []
    for app in apps:
        dest = (app.get("spec") or {}).get("destination") or {}
        if wanted is not None and not ({dest.get("server"), dest.get("name")} & wanted):
            continue
        meta = app.get("metadata") or {}
        origin = f"ArgoCD Application {meta.get('namespace', '')}/{meta.get('name', '')}"
        for res in (app.get("status") or {}).get("resources") or []:
            group, version = res.get("group") or "", res.get("version") or ""
            api_version = f"{group}/{version}" if group else version
            refs.append(ManifestRef(api_version, str(res.get("kind", "")), str(res.get("namespace") or ""),
                                    str(res.get("name", "")), "argocd", origin))
    return refs


# -- the whole inventory ------------------------------------------------------------------------------------
def collect_inventory(kube: Kube, *, eks: Any = None, iam: Any = None, ec2: Any = None,
                      cluster_name: str | None = None, target_version: str | None = None,
                      peer_cluster_name: str | None = None, argocd: Kube | None = None,
                      argocd_destinations: Iterable[str] | None = None, read_insights: bool = True) -> Inventory:
    """Everything :func:`bluegreen.preflight.run_preflight` checks, for one cluster.

    ``eks``/``iam``/``ec2`` are boto3 clients (None skips that part); ``cluster_name`` is the EKS name (needed
    for the EKS part); ``target_version`` picks the add-on versions and Upgrade Insights to read (default:
    the cluster's own version); ``peer_cluster_name`` is the other side, whose Pod Identity associations this
    cluster should have too. ``argocd`` is where the Applications deploying to this cluster live (default:
    the cluster itself), ``argocd_destinations`` the destination servers/names that mean this cluster (None:
    every Application there).
    """
    unread: list[str] = []
    reader = _Reader(kube, unread)
    server_version = kube.server_version()
    inventory = Inventory(cluster=cluster_name or kube.label, server_version=server_version, unread=unread)

    inventory.deployments = reader.group("apps", "v1", "deployments", "Deployment")
    inventory.statefulsets = reader.group("apps", "v1", "statefulsets", "StatefulSet")
    inventory.daemonsets = reader.group("apps", "v1", "daemonsets", "DaemonSet")
    inventory.replicasets = [rs for rs in reader.group("apps", "v1", "replicasets", "ReplicaSet")
                             if not _owned_by(rs, "Deployment")]
    inventory.jobs = [job for job in reader.group("batch", "v1", "jobs", "Job") if not _owned_by(job, "CronJob")]
    inventory.cronjobs = reader.group("batch", "v1", "cronjobs", "CronJob")
    inventory.pdbs = reader.group("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget")
    inventory.pvcs = reader.core("persistentvolumeclaims", "PersistentVolumeClaim",
                                 kube.core.list_persistent_volume_claim_for_all_namespaces)
    inventory.nodes = reader.core("nodes", "Node", kube.core.list_node)
    inventory.service_accounts = reader.core("serviceaccounts", "ServiceAccount",
                                             kube.core.list_service_account_for_all_namespaces)

    manifests: list[ManifestRef] = []
    applied_objects = [*inventory.workloads(), *inventory.pdbs]
    for group, version, plural, kind in _APPLIED_KINDS:
        applied_objects += reader.group(group, version, plural, kind)
    for obj in applied_objects:
        found = last_applied_ref(obj)
        if found:
            manifests.append(found)
    helm_refs, inventory.helm_unreadable = read_helm_releases(reader)
    manifests += helm_refs
    argocd_reader = _Reader(argocd, unread) if argocd is not None else reader
    manifests += read_argocd_resources(argocd_reader, argocd_destinations)
    inventory.manifests = manifests

    if eks is not None and cluster_name:
        target = target_version or server_version
        inventory.eks = collect_eks(eks, cluster_name, target=target, iam=iam, ec2=ec2, unread=unread,
                                    service_accounts=inventory.service_accounts,
                                    peer_cluster_name=peer_cluster_name, read_insights=read_insights)
    log.info("preflight_inventory_read", cluster=inventory.cluster, version=server_version,
             workloads=len(inventory.workloads()), manifests=len(manifests), unread=len(unread))
    return inventory


# -- AWS ---------------------------------------------------------------------------------------------------
class _Aws:
    """boto3 calls with the policy of the module docstring."""

    def __init__(self, cluster_name: str, unread: list[str]) -> None:
        self.cluster_name = cluster_name
        self.unread = unread

    def call(self, what: str, fn: Callable[..., dict], **kwargs: Any) -> dict | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(**kwargs)
        except ClientError as error:
            err = error.response.get("Error", {})
            self.unread.append(f"{what} ({err.get('Code', 'error')}: {shorten(err.get('Message', ''), 120)})")
            return None
        except BotoCoreError as error:
            raise ClusterAccessError(f"cannot reach AWS for {self.cluster_name} ({what}): "
                                     f"{shorten(str(error), 200)}") from None

    def pages(self, what: str, fn: Callable[..., dict], key: str, **kwargs: Any) -> list | None:
        items: list = []
        token: dict = {}
        while True:
            page = self.call(what, fn, **kwargs, **token)
            if page is None:
                return None
            items += page.get(key) or []
            if not page.get("nextToken"):
                return items
            token = {"nextToken": page["nextToken"]}


def collect_eks(eks: Any, cluster_name: str, *, target: str, iam: Any = None, ec2: Any = None,
                unread: list[str] | None = None, service_accounts: Iterable[dict] = (),
                peer_cluster_name: str | None = None, read_insights: bool = True) -> EksInventory:
    unread = unread if unread is not None else []
    aws = _Aws(cluster_name, unread)
    described = aws.call(f"EKS DescribeCluster {cluster_name}", eks.describe_cluster, name=cluster_name)
    if described is None:
        raise ClusterAccessError(f"cannot describe EKS cluster {cluster_name}: {unread[-1]}",
                                 hint="check the cluster name, the region and your IAM permissions")
    inventory = EksInventory(cluster=described["cluster"])
    target = minor_str(minor_of(target))

    names = aws.pages("EKS ListNodegroups", eks.list_nodegroups, "nodegroups", clusterName=cluster_name) or []
    for name in names:
        answer = aws.call(f"EKS DescribeNodegroup {name}", eks.describe_nodegroup, clusterName=cluster_name,
                          nodegroupName=name)
        if answer:
            inventory.nodegroups.append(answer["nodegroup"])
    for group in inventory.nodegroups:
        inventory.node_subnet_ids += [s for s in group.get("subnets") or [] if s not in inventory.node_subnet_ids]

    addon_names = aws.pages("EKS ListAddons", eks.list_addons, "addons", clusterName=cluster_name)
    if addon_names is not None:
        compatible: dict[str, list[str]] = {}
        for name in addon_names:
            answer = aws.call(f"EKS DescribeAddon {name}", eks.describe_addon, clusterName=cluster_name, addonName=name)
            if answer:
                inventory.addons.append(answer["addon"])
            versions = aws.call(f"EKS DescribeAddonVersions {name} {target}", eks.describe_addon_versions,
                                addonName=name, kubernetesVersion=target)
            if versions is None:
                continue
            compatible[name] = [v["addonVersion"] for info in versions.get("addons") or []
                                for v in info.get("addonVersions") or []
                                if any(c.get("clusterVersion") == target for c in v.get("compatibilities") or [])]
        inventory.compatible_addon_versions = compatible

    if read_insights:
        summaries = aws.pages("EKS ListInsights", eks.list_insights, "insights", clusterName=cluster_name,
                              filter={"kubernetesVersions": [target]})
        if summaries is not None:
            inventory.insights = []
            for summary in summaries:
                answer = aws.call(f"EKS DescribeInsight {summary.get('id')}", eks.describe_insight,
                                  clusterName=cluster_name, id=summary["id"])
                inventory.insights.append(answer["insight"] if answer else summary)

    inventory.pod_identity_associations = aws.pages(
        "EKS ListPodIdentityAssociations", eks.list_pod_identity_associations, "associations",
        clusterName=cluster_name)
    if peer_cluster_name:
        inventory.peer_cluster_name = peer_cluster_name
        inventory.peer_pod_identity_associations = aws.pages(
            f"EKS ListPodIdentityAssociations {peer_cluster_name}", eks.list_pod_identity_associations,
            "associations", clusterName=peer_cluster_name)

    if ec2 is not None:
        template_ids = sorted({(g.get("launchTemplate") or {}).get("id") for g in inventory.nodegroups} - {None})
        if template_ids:
            answer = aws.call("EC2 DescribeLaunchTemplates", ec2.describe_launch_templates,
                              LaunchTemplateIds=template_ids)
            for template in (answer or {}).get("LaunchTemplates") or []:
                inventory.launch_templates[template["LaunchTemplateId"]] = template
        subnet_ids = sorted({*((inventory.cluster.get("resourcesVpcConfig") or {}).get("subnetIds") or []),
                             *inventory.node_subnet_ids})
        if subnet_ids:
            answer = aws.call("EC2 DescribeSubnets", ec2.describe_subnets, SubnetIds=subnet_ids)
            inventory.subnets = list((answer or {}).get("Subnets") or [])

    if iam is not None:
        arns = sorted({((sa.get("metadata") or {}).get("annotations") or {}).get(IRSA_ANNOTATION)
                       for sa in service_accounts} - {None, ""})
        for arn in arns:
            inventory.iam_roles.update(_read_role(iam, arn, aws))
    return inventory


def _read_role(iam: Any, arn: str, aws: _Aws) -> dict[str, dict | None]:
    """GetRole for the role an IRSA annotation names: its trust policy, or None when it does not exist."""
    from botocore.exceptions import BotoCoreError, ClientError

    name = arn.rsplit("/", 1)[-1]
    try:
        return {arn: iam.get_role(RoleName=name)["Role"]}
    except ClientError as error:
        err = error.response.get("Error", {})
        if err.get("Code") == "NoSuchEntity":
            return {arn: None}
        aws.unread.append(f"IAM GetRole {name} ({err.get('Code', 'error')}: {shorten(err.get('Message', ''), 120)})")
        return {}
    except BotoCoreError as error:
        raise ClusterAccessError(f"cannot reach IAM ({name}): {shorten(str(error), 200)}") from None
