"""Emulated EKS Blueprints clusters for the verify, provision, router and CLI tests: the ArgoCD cluster Secrets
the blueprint writes (labels, annotations, a bearer token that must never leak), its Applications and
workloads, and a config that points at the emulated clusters."""

from __future__ import annotations

import base64
import json

from bluegreen.config import parse_config
from tests.support.kube_emulator import (
    APPLICATIONS, DEPLOYMENTS, SECRETS, STATEFULSETS, application, cluster_secret, deployment, statefulset,
)

# A recognisable fake credential: it must never leave the Secret.
FAKE_CREDENTIAL = "FAKE-bearer-eyJhbGciOi-DO-NOT-LEAK-7f3a9c"
FAKE_B64 = base64.b64encode(json.dumps({"bearerToken": FAKE_CREDENTIAL}).encode()).decode()

LABELS = {"environment": "eks-blueprint", "enable_karpenter": "true", "enable_external_dns": "true",
          "enable_aws_load_balancer_controller": "true"}
ANNOTATIONS = {"aws_region": "ap-northeast-2", "aws_account_id": "123456789012",
               "addons_repo_url": "https://github.com/aws-samples/eks-blueprints-add-ons",
               "gitops_workloads_url": "git@github.com:aws-samples/eks-blueprints-workloads",
               "gitops_workloads_path": "envs/dev", "gitops_workloads_revision": "main",
               "external_dns_policy": "sync", "ingress_type": "alb"}


def secret_for(side: str, *, labels=None, annotations=None, weight="100"):
    name = f"eks-blueprint-{side}"
    lab = {**LABELS, "cluster_name": name, "kubernetes_version": "1.30" if side == "blue" else "1.31",
           **(labels or {})}
    ann = {**ANNOTATIONS, "aws_cluster_name": name, "cluster_endpoint": f"https://{side}.eks.example",
           "route53_weight": weight, "argocd_password": f"$2a$10${side}hash", **(annotations or {}),
           # kubectl apply keeps a full copy of the Secret, data included, in this annotation:
           "kubectl.kubernetes.io/last-applied-configuration": json.dumps({"data": {"config": FAKE_B64}})}
    obj = cluster_secret(name, labels={k: v for k, v in lab.items() if v is not None},
                         annotations={k: v for k, v in ann.items() if v is not None},
                         data={"name": name, "server": "https://kubernetes.default.svc",
                               "config": json.dumps({"bearerToken": FAKE_CREDENTIAL})})
    return name, obj


def seed(kube, side: str, *, where: str | None = None, labels=None, annotations=None, apps=None,
         deployments=None, dest_by_name=False):
    server = kube[where or side]
    name, obj = secret_for(side, labels=labels, annotations=annotations, weight="100" if side == "blue" else "0")
    server.put(SECRETS, "argocd", name, obj)
    # another kind of ArgoCD secret (a repository) in the same namespace: the label selector leaves it out
    server.put(SECRETS, "argocd", "repo-private", {
        "metadata": {"labels": {"argocd.argoproj.io/secret-type": "repository"}},
        "data": {"sshPrivateKey": base64.b64encode(FAKE_CREDENTIAL.encode()).decode()}})
    for app_name, status in (apps if apps is not None else {
            f"burnham-eks-blueprint-{side}": ("Synced", "Healthy"), "addons": ("Synced", "Healthy")}).items():
        dest = application(name if dest_by_name else None, sync=status[0], health=status[1],
                           server=None if dest_by_name else "https://kubernetes.default.svc")
        server.put(APPLICATIONS, "argocd", app_name if where != "hub" else f"{app_name}", dest)
    for dep, (desired, available) in (deployments if deployments is not None else {"burnham": (2, 2)}).items():
        kube[side].put(DEPLOYMENTS, "team-burnham", dep, deployment(desired, available))
    kube[side].put(STATEFULSETS, "team-burnham", "cache", statefulset(1))


def make_config(kube, *, mode="in-cluster", verify=None, provision=None, green=None, blue=None, aws=None):
    path = str(kube.kubeconfig)
    clusters = {
        "blue": blue or {"kubeconfig": path, "context": "blue", "name": "eks-blueprint-blue"},
        "green": green or {"kubeconfig": path, "context": "green", "name": "eks-blueprint-green"},
    }
    if mode == "hub":
        clusters["argocd"] = {"mode": "hub", "hub": {"kubeconfig": path, "context": "hub"}}
    raw = {"name": "burnham", "aws": aws or {"region": "us-east-1"},
           "route": {"hosted_zone": "example.com", "records": ["burnham.example.com"],
                     "blue": "eks-blueprint-blue", "green": "eks-blueprint-green"},
           "clusters": clusters,
           "verify": verify if verify is not None else {"workload_namespaces": ["team-burnham"]}}
    if provision:
        raw["provision"] = provision
    return parse_config(raw)


def both(kube, **green_kw):
    seed(kube, "blue")
    seed(kube, "green", **green_kw)
