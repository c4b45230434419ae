"""Builders for the Kubernetes objects the preflight tests plant in the emulator: a well-behaved default
that each test breaks in exactly one way."""

from __future__ import annotations

import base64
import copy
import gzip
import json

DEPLOYMENTS = "apps/v1/deployments"
STATEFULSETS = "apps/v1/statefulsets"
DAEMONSETS = "apps/v1/daemonsets"
REPLICASETS = "apps/v1/replicasets"
JOBS = "batch/v1/jobs"
CRONJOBS = "batch/v1/cronjobs"
PDBS = "policy/v1/poddisruptionbudgets"
PVCS = "v1/persistentvolumeclaims"
NODES = "v1/nodes"
SERVICE_ACCOUNTS = "v1/serviceaccounts"
SECRETS = "v1/secrets"
INGRESSES = "networking.k8s.io/v1/ingresses"
APPLICATIONS = "argoproj.io/v1alpha1/applications"


def container(name="app", image="example.com/app:1.0", probe=True) -> dict:
    out = {"name": name, "image": image}
    if probe:
        out["readinessProbe"] = {"httpGet": {"path": "/healthz", "port": 8080}}
    return out


def pod_template(app: str, containers=None, **spec) -> dict:
    return {"metadata": {"labels": {"app": app}},
            "spec": {"containers": containers or [container()],
                     "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                                                    "whenUnsatisfiable": "ScheduleAnyway",
                                                    "labelSelector": {"matchLabels": {"app": app}}}],
                     **spec}}


def deployment(app="web", replicas=3, **overrides) -> dict:
    obj = {"apiVersion": "apps/v1", "kind": "Deployment",
           "spec": {"replicas": replicas, "minReadySeconds": 10, "selector": {"matchLabels": {"app": app}},
                    "strategy": {"type": "RollingUpdate"}, "template": pod_template(app)}}
    return merge(obj, overrides)


def statefulset(app="queue", replicas=3, **overrides) -> dict:
    obj = {"apiVersion": "apps/v1", "kind": "StatefulSet",
           "spec": {"replicas": replicas, "minReadySeconds": 10, "serviceName": app,
                    "selector": {"matchLabels": {"app": app}}, "template": pod_template(app)}}
    return merge(obj, overrides)


def daemonset(app="agent", containers=None) -> dict:
    return {"apiVersion": "apps/v1", "kind": "DaemonSet",
            "spec": {"selector": {"matchLabels": {"app": app}}, "template": pod_template(app, containers)}}


def pdb(app="web", **spec) -> dict:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "spec": {"selector": {"matchLabels": {"app": app}}, **(spec or {"maxUnavailable": 1})}}


def node(kubelet="v1.30.4-eks-a737599", os_image="Amazon Linux 2023.5.20240805") -> dict:
    return {"apiVersion": "v1", "kind": "Node",
            "status": {"nodeInfo": {"kubeletVersion": kubelet, "osImage": os_image}}}


def helm_release_secret(name: str, namespace: str, manifest: str, version: int = 1) -> dict:
    """A Helm 3 release Secret as Helm writes it: data.release = base64(base64(gzip(json)))."""
    release = {"name": name, "namespace": namespace, "version": version, "manifest": manifest,
               "info": {"status": "deployed"}, "config": {"password": "HELM-VALUES-SECRET-DO-NOT-LEAK"}}
    helm_encoded = base64.b64encode(gzip.compress(json.dumps(release).encode()))
    return {"apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
            "metadata": {"labels": {"owner": "helm", "name": name, "status": "deployed", "version": str(version)}},
            "data": {"release": base64.b64encode(helm_encoded).decode()}}


def merge(base: dict, overrides: dict) -> dict:
    """Deep-merge ``overrides`` (keyword form: spec={...}, metadata={...}) into a copy of ``base``."""
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out
