"""ArgoCD as seen through the Kubernetes API: cluster secrets (labels and annotations only), Applications,
and the readiness of Deployments and StatefulSets. Also the annotation writes the weight drivers need.

A cluster secret's ``data`` holds the cluster's credentials. Responses are read raw and ``data`` and
``stringData`` (and kubectl's last-applied copy of them) are dropped right after the JSON is parsed, before
anything else sees the object: no model, log line, report or journal ever holds them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping

import structlog

from bluegreen.adapters.kube import Clusters, Kube
from bluegreen.config.clusters import ClusterSpec

log = structlog.get_logger("bluegreen.clusters")

SECRET_TYPE_LABEL = "argocd.argoproj.io/secret-type"
CLUSTER_SELECTOR = f"{SECRET_TYPE_LABEL}=cluster"
APP_GROUP, APP_VERSION, APP_PLURAL = "argoproj.io", "v1alpha1", "applications"
MERGE_PATCH = "application/merge-patch+json"
# kubectl apply keeps a full copy of the object, data included, in this annotation.
_DROPPED_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)


@dataclass(frozen=True)
class ClusterSecret:
    name: str
    namespace: str
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    resource_version: str = ""

    def __repr__(self) -> str:
        # Annotation values may be sensitive (the pattern puts a password hash there): keys only.
        return (f"ClusterSecret({self.namespace}/{self.name}, labels={sorted(self.labels)}, "
                f"annotations={sorted(self.annotations)})")

    def cluster_name(self) -> str | None:
        return self.labels.get("cluster_name") or self.annotations.get("aws_cluster_name")


@dataclass(frozen=True)
class Application:
    name: str
    namespace: str
    sync: str | None
    health: str | None
    destination_server: str | None = None
    destination_name: str | None = None
    destination_namespace: str | None = None


def _scrub_secret(raw: dict) -> ClusterSecret:
    raw.pop("data", None)
    raw.pop("stringData", None)
    meta = raw.get("metadata") or {}
    annotations = {k: str(v) for k, v in (meta.get("annotations") or {}).items() if k not in _DROPPED_ANNOTATIONS}
    return ClusterSecret(name=meta.get("name", ""), namespace=meta.get("namespace", ""),
                         labels={k: str(v) for k, v in (meta.get("labels") or {}).items()}, annotations=annotations,
                         resource_version=str(meta.get("resourceVersion") or ""))


def _raw_json(response: Any) -> Any:
    try:
        return json.loads(response.data)
    finally:
        response.release_conn()


# -- cluster secrets ---------------------------------------------------------------------------------
def list_cluster_secrets(kube: Kube, namespace: str) -> list[ClusterSecret]:
    with kube.guard(f"listing ArgoCD cluster secrets in namespace {namespace}"):
        response = kube.core.list_namespaced_secret(namespace, label_selector=CLUSTER_SELECTOR,
                                                    _preload_content=False)
        items = _raw_json(response).get("items") or []
    secrets = [_scrub_secret(item) for item in items]
    del items
    log.debug("argocd_cluster_secrets_read", cluster=kube.label, namespace=namespace, count=len(secrets))
    return sorted(secrets, key=lambda s: s.name)


def read_cluster_secret(kube: Kube, namespace: str, name: str) -> ClusterSecret | None:
    from kubernetes.client.exceptions import ApiException

    with kube.guard(f"reading secret {namespace}/{name}"):
        try:
            response = kube.core.read_namespaced_secret(name, namespace, _preload_content=False)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        raw = _raw_json(response)
    return _scrub_secret(raw)


def create_cluster_secret(kube: Kube, namespace: str, name: str, *, labels: Mapping[str, str],
                          annotations: Mapping[str, str], string_data: Mapping[str, str]) -> ClusterSecret:
    """Create an ArgoCD cluster secret. ``string_data`` (name, server, config) is sent, never logged or kept."""
    body = {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": name, "namespace": namespace,
                     "labels": {**labels, SECRET_TYPE_LABEL: "cluster"}, "annotations": dict(annotations)},
        "stringData": dict(string_data),
    }
    with kube.guard(f"creating ArgoCD cluster secret {namespace}/{name}"):
        response = kube.core.create_namespaced_secret(namespace, body, _preload_content=False)
        raw = _raw_json(response)
    del body
    log.info("argocd_cluster_secret_created", cluster=kube.label, namespace=namespace, secret=name)
    return _scrub_secret(raw)


def set_cluster_secret_annotation(kube: Kube, secret: ClusterSecret, key: str, value: str | None) -> ClusterSecret:
    """A JSON merge patch of one annotation (``None`` removes it). Returns the secret as it is now."""
    patch = {"metadata": {"annotations": {key: value}}}
    with kube.guard(f"annotating secret {secret.namespace}/{secret.name}"):
        response = kube.core.patch_namespaced_secret(secret.name, secret.namespace, patch,
                                                     _content_type=MERGE_PATCH, _preload_content=False)
        raw = _raw_json(response)
    log.info("argocd_cluster_secret_annotated", cluster=kube.label, secret=f"{secret.namespace}/{secret.name}",
             key=key)
    return _scrub_secret(raw)


# -- applications ------------------------------------------------------------------------------------
def list_applications(kube: Kube, namespace: str) -> list[Application]:
    with kube.guard(f"listing ArgoCD Applications in namespace {namespace}"):
        result = kube.custom.list_namespaced_custom_object(APP_GROUP, APP_VERSION, namespace, APP_PLURAL)
    apps = []
    for item in result.get("items") or []:
        meta, spec, status = item.get("metadata") or {}, item.get("spec") or {}, item.get("status") or {}
        dest = spec.get("destination") or {}
        apps.append(Application(
            name=meta.get("name", ""), namespace=meta.get("namespace", namespace),
            sync=(status.get("sync") or {}).get("status"), health=(status.get("health") or {}).get("status"),
            destination_server=dest.get("server"), destination_name=dest.get("name"),
            destination_namespace=dest.get("namespace"),
        ))
    return sorted(apps, key=lambda a: a.name)


# -- workloads ---------------------------------------------------------------------------------------
def list_workloads(kube: Kube, namespaces: list[str] | tuple[str, ...]) -> list:
    """Every Deployment, StatefulSet and DaemonSet of the namespaces, with its rollout status as
    ``kubectl rollout status`` reads it (generation, observedGeneration, updated/available replicas)."""
    from bluegreen.core.readiness import workload_from_object

    workloads = []
    for ns in namespaces:
        with kube.guard(f"listing Deployments, StatefulSets and DaemonSets in namespace {ns}"):
            found = (("Deployment", kube.apps.list_namespaced_deployment(ns).items or []),
                     ("StatefulSet", kube.apps.list_namespaced_stateful_set(ns).items or []),
                     ("DaemonSet", kube.apps.list_namespaced_daemon_set(ns).items or []))
        for kind, items in found:
            for obj in items:
                raw = kube.api_client.sanitize_for_serialization(obj)
                raw.setdefault("metadata", {}).setdefault("namespace", ns)
                workloads.append(workload_from_object(kind, raw))
    return workloads


# -- annotations on Ingress / Service (external-dns weights) -----------------------------------------
_KINDS = ("ingress", "service")


def _check_kind(kind: str) -> str:
    kind = kind.lower()
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
    return kind


@dataclass(frozen=True)
class ObjectMeta:
    """What the weight drivers need of an Ingress or Service: its annotations and resourceVersion."""

    annotations: Mapping[str, str]
    resource_version: str = ""

    def __repr__(self) -> str:
        return f"ObjectMeta(annotations={sorted(self.annotations)}, resource_version={self.resource_version!r})"


def _meta_of(obj: Any) -> ObjectMeta:
    return ObjectMeta(dict(obj.metadata.annotations or {}), str(obj.metadata.resource_version or ""))


def read_object_meta(kube: Kube, kind: str, namespace: str, name: str) -> ObjectMeta:
    kind = _check_kind(kind)
    with kube.guard(f"reading {kind} {namespace}/{name}"):
        obj = (kube.networking.read_namespaced_ingress(name, namespace) if kind == "ingress"
               else kube.core.read_namespaced_service(name, namespace))
    return _meta_of(obj)


def patch_object_meta(kube: Kube, kind: str, namespace: str, name: str,
                      annotations: Mapping[str, str | None]) -> ObjectMeta:
    """Merge-patch annotations (``None`` removes one). Returns the object's metadata as it is now."""
    kind = _check_kind(kind)
    patch = {"metadata": {"annotations": dict(annotations)}}
    with kube.guard(f"annotating {kind} {namespace}/{name}"):
        if kind == "ingress":
            obj = kube.networking.patch_namespaced_ingress(name, namespace, patch, _content_type=MERGE_PATCH)
        else:
            obj = kube.core.patch_namespaced_service(name, namespace, patch, _content_type=MERGE_PATCH)
    log.info("annotations_patched", cluster=kube.label, object=f"{kind} {namespace}/{name}",
             keys=sorted(annotations))
    return _meta_of(obj)


def get_object_annotations(kube: Kube, kind: str, namespace: str, name: str) -> dict[str, str]:
    return dict(read_object_meta(kube, kind, namespace, name).annotations)


def patch_object_annotations(kube: Kube, kind: str, namespace: str, name: str,
                             annotations: Mapping[str, str | None]) -> dict[str, str]:
    """Merge-patch annotations (``None`` removes one). Returns the annotations as they are now."""
    return dict(patch_object_meta(kube, kind, namespace, name, annotations).annotations)


def pick_cluster_secret(secrets: list[ClusterSecret], spec: ClusterSpec,
                        mode: str) -> ClusterSecret | None:
    if spec.argocd_secret:
        return next((s for s in secrets if s.name == spec.argocd_secret), None)
    named = [s for s in secrets if spec.name in (s.cluster_name(), s.name)]
    if len(named) == 1:
        return named[0]
    if mode == "in-cluster" and len(secrets) == 1:
        return secrets[0]
    return None


def find_cluster_secret(clusters: Clusters, side: str) -> tuple[ClusterSecret | None, list[str]]:
    """The cluster secret of ``side`` and the names of every cluster secret seen (for messages)."""
    spec = clusters.spec.side(side)
    secrets = list_cluster_secrets(clusters.argocd_kube(side), clusters.namespace)
    return pick_cluster_secret(secrets, spec, clusters.spec.argocd.mode), [s.name for s in secrets]
