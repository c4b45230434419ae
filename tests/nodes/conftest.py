"""`bluegreen nodes` tests: one emulated cluster (kmock over HTTP, the official client), EKS through moto over
HTTP, and the test-support NodeController (scheduler, Deployment/StatefulSet/PDB controllers, node groups'
nodes) as a thread. The CLI runs in-process."""

from __future__ import annotations

import io
import uuid

import boto3
import pytest
import yaml

from bluegreen.environment import Environment
from bluegreen.sandbox.kube import KubeEmulators
from tests.conftest import FAKE_CREDENTIALS
from tests.support.node_controller import NodeController

NS = "shop"


@pytest.fixture(scope="session")
def node_servers(tmp_path_factory):
    servers = KubeEmulators(("prod",)).start(tmp_path_factory.mktemp("nodes-kube"))
    try:
        yield servers
    finally:
        servers.stop()


class Cluster:
    """One EKS cluster in moto with two managed node groups at 1.30 and its Kubernetes API (the emulator),
    control plane at 1.31; the controller thread keeps it moving."""

    def __init__(self, servers, endpoint: str, tmp_path) -> None:
        self.server = servers["prod"]
        self.server.reset()
        self.server.set_kubernetes_version("1.31")
        self.name = f"prod-{uuid.uuid4().hex[:6]}"
        self.eks = boto3.client("eks", endpoint_url=endpoint, region_name="us-east-1", **FAKE_CREDENTIALS)
        self.eks.create_cluster(name=self.name, version="1.31", roleArn="arn:aws:iam::123456789012:role/eks",
                                resourcesVpcConfig={"subnetIds": ["subnet-a", "subnet-b"]})
        for group, size in (("general", 2), ("system", 1)):
            self.eks.create_nodegroup(
                clusterName=self.name, nodegroupName=group, version="1.30", releaseVersion="1.30.4-20240917",
                nodeRole="arn:aws:iam::123456789012:role/nodes", subnets=["subnet-a", "subnet-b"],
                scalingConfig={"minSize": size, "maxSize": size + 2, "desiredSize": size},
                instanceTypes=["m6i.large"], labels={"pool": group}, taints=[])
        self.config_path = tmp_path / "bluegreen.yaml"
        self.raw = {
            "name": "shop",
            "aws": {"region": "us-east-1", "endpoint_url": endpoint},
            "route": {"hosted_zone": "example.com", "records": ["app.example.com"], "blue": "blue", "green": "green"},
            "state": {"path": str(tmp_path / "state.db")},
            "clusters": {"blue": {"kubeconfig": str(servers.kubeconfig), "context": "prod", "eks": self.name,
                                  "name": "prod"},
                         "green": {"kubeconfig": str(servers.kubeconfig), "context": "prod", "name": "other"}},
            "nodes": {"poll_interval": "50ms", "workload_timeout": "8s", "ready_timeout": "10s", "parallel": 2},
        }
        self.write_config()
        self.controller = NodeController(self.server, self.eks, self.name)

    def write_config(self, **sections) -> None:
        for key, value in sections.items():
            if isinstance(value, dict) and isinstance(self.raw.get(key), dict):
                self.raw[key] = {**self.raw[key], **value}
            else:
                self.raw[key] = value
        self.config_path.write_text(yaml.safe_dump(self.raw))

    def groups(self) -> dict[str, str]:
        names = self.eks.list_nodegroups(clusterName=self.name)["nodegroups"]
        return {n: self.eks.describe_nodegroup(clusterName=self.name, nodegroupName=n)["nodegroup"]["version"]
                for n in names}

    def nodes(self) -> dict[str, bool]:
        """node -> cordoned"""
        return {n["metadata"]["name"]: bool((n.get("spec") or {}).get("unschedulable"))
                for n in self.controller.snapshot().get("nodes", [])}

    def placement(self) -> dict[str, str]:
        return self.controller.pods_on()

    def put(self, resource: str, name: str, obj: dict, namespace: str = NS) -> None:
        self.server.put(resource, namespace, name, obj)


@pytest.fixture
def cluster(node_servers, moto_endpoint, tmp_path):
    c = Cluster(node_servers, moto_endpoint, tmp_path)
    c.controller.start()
    try:
        yield c
    finally:
        c.controller.stop()
    assert not c.controller.errors, c.controller.errors


def run_cli(*argv: str, env: Environment | None = None) -> tuple[int, str, str]:
    from bluegreen.cli import main

    env = env or Environment(stdout=io.StringIO(), stderr=io.StringIO(), install_signal_handlers=False)
    code = main(list(argv) + ["--log-format", "json"], env)
    return code, env.stdout.getvalue(), env.stderr.getvalue()


# -- objects -------------------------------------------------------------------------------------------------
def deployment(app: str, replicas: int = 2, claims=(), annotations=None) -> dict:
    template = {"metadata": {"labels": {"app": app}, **({"annotations": annotations} if annotations else {})},
                "spec": {"containers": [{"name": "app", "image": f"example.com/{app}:1",
                                         "readinessProbe": {"httpGet": {"path": "/", "port": 8080}}}],
                         "volumes": [{"name": c, "persistentVolumeClaim": {"claimName": c}} for c in claims]}}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"generation": 1},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": app}},
                     "strategy": {"type": "RollingUpdate"}, "template": template}}


def statefulset(app: str, replicas: int = 3) -> dict:
    obj = deployment(app, replicas)
    obj["kind"] = "StatefulSet"
    obj["spec"].pop("strategy")
    obj["spec"].update(serviceName=app, updateStrategy={"type": "RollingUpdate"})
    return obj


def pvc(mode: str = "ReadWriteOnce") -> dict:
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "spec": {"accessModes": [mode]}}


def pdb(app: str, **spec) -> dict:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "spec": {"selector": {"matchLabels": {"app": app}}, **spec}}
