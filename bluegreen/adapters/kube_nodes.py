"""Kubernetes calls for in-place node upgrades, through the official client: read nodes, workloads, pods,
claims and disruption budgets (as the API's JSON, camelCase dicts); cordon (``spec.unschedulable``, what
``kubectl cordon`` writes), restart (the pod-template annotation ``kubectl rollout restart`` writes) and scale
with JSON merge patches. A kind the server does not serve (404) reads as empty. Errors become
ClusterAccessError naming the cluster (``Kube.guard``)."""

from __future__ import annotations

import json
from typing import Any, Callable

from bluegreen.adapters.kube import Kube
from bluegreen.core.nodes import RESTARTED_AT

MERGE_PATCH = "application/merge-patch+json"


def _json(response: Any) -> dict:
    try:
        return json.loads(response.data)
    finally:
        response.release_conn()


class KubeNodes:
    def __init__(self, kube: Kube) -> None:
        self.kube = kube

    def _list(self, what: str, call: Callable[..., Any]) -> list[dict]:
        from kubernetes.client.exceptions import ApiException

        with self.kube.guard(f"listing {what}"):
            try:
                return list(_json(call(_preload_content=False)).get("items") or [])
            except ApiException as error:
                if error.status == 404:
                    return []
                raise

    # -- reads ----------------------------------------------------------------------------------------
    def nodes(self) -> list[dict]:
        return self._list("nodes", self.kube.core.list_node)

    def pods(self) -> list[dict]:
        return self._list("pods", self.kube.core.list_pod_for_all_namespaces)

    def pvcs(self) -> list[dict]:
        return self._list("persistentvolumeclaims", self.kube.core.list_persistent_volume_claim_for_all_namespaces)

    def budgets(self) -> list[dict]:
        from kubernetes import client as k8s

        return self._list("poddisruptionbudgets",
                          k8s.PolicyV1Api(self.kube.api_client).list_pod_disruption_budget_for_all_namespaces)

    def workloads(self) -> list[tuple[str, dict]]:
        return ([("Deployment", d) for d in self._list("deployments", self.kube.apps.list_deployment_for_all_namespaces)]
                + [("StatefulSet", s) for s in
                   self._list("statefulsets", self.kube.apps.list_stateful_set_for_all_namespaces)])

    def workload(self, kind: str, namespace: str, name: str) -> dict:
        with self.kube.guard(f"reading {kind} {namespace}/{name}"):
            read = (self.kube.apps.read_namespaced_deployment if kind == "Deployment"
                    else self.kube.apps.read_namespaced_stateful_set)
            return _json(read(name, namespace, _preload_content=False))

    # -- writes ---------------------------------------------------------------------------------------
    def set_unschedulable(self, node: str, unschedulable: bool) -> None:
        with self.kube.guard(f"{'cordoning' if unschedulable else 'uncordoning'} node {node}"):
            _json(self.kube.core.patch_node(node, {"spec": {"unschedulable": unschedulable or None}},
                                            _content_type=MERGE_PATCH, _preload_content=False))

    def _patch(self, kind: str, namespace: str, name: str, body: dict) -> dict:
        patch = (self.kube.apps.patch_namespaced_deployment if kind == "Deployment"
                 else self.kube.apps.patch_namespaced_stateful_set)
        with self.kube.guard(f"patching {kind} {namespace}/{name}"):
            return _json(patch(name, namespace, body, _content_type=MERGE_PATCH, _preload_content=False))

    def restart(self, kind: str, namespace: str, name: str, at: str) -> int:
        """``kubectl rollout restart``; returns the generation the patch produced."""
        body = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: at}}}}}
        return int((self._patch(kind, namespace, name, body).get("metadata") or {}).get("generation") or 0)

    def scale(self, kind: str, namespace: str, name: str, replicas: int) -> int:
        """``spec.replicas`` (what ``kubectl scale`` changes through the scale subresource); returns the
        generation the patch produced."""
        body = {"spec": {"replicas": int(replicas)}}
        return int((self._patch(kind, namespace, name, body).get("metadata") or {}).get("generation") or 0)
