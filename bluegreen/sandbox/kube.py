"""Emulated Kubernetes API servers for the sandbox: kmock's KubernetesEmulator over HTTP on 127.0.0.1.

The emulator is aiohttp-based; its event loop runs in a background thread, so synchronous code (the
``kubernetes`` client over urllib3, i.e. bluegreen itself) talks plain HTTP to it, through a kubeconfig file
like any cluster. Used by the sandbox (``Sandbox(clusters=True)``, ``bluegreen demo``) and by the tests.

Where kmock falls short of a real API server for our needs, :class:`ApiServerEmulator` extends it:

- ``/version/`` answers (the official client adds the slash), with a settable version;
- list requests honour ``labelSelector`` (``k=v``, ``k==v``, ``k!=v``, ``k``, ``!k``, ``k in (a,b)``,
  ``k notin (a,b)``);
- the resources we use (Secrets, Deployments, StatefulSets, Services, Ingresses and argoproj.io
  Applications) are declared, so listing an empty one answers ``[]`` instead of 404, and discovery works;
- PATCH accepts JSON merge patches (and strategic merge patches, treated as merge patches, which is what
  they are for metadata); JSON patches (a list of operations) get 415 rather than a silent wrong merge;
- create fills ``metadata.namespace``, ``uid``, ``resourceVersion`` and ``creationTimestamp``, and turns
  a Secret's ``stringData`` into base64 ``data`` as the API server does.

Each emulator is served by a plain aiohttp low-level server rather than ``kmock.Server``: kmock's server also
hooks aiohttp's DNS resolution process-wide (a chain that must be unwound last-in-first-out), which nothing
here needs, and which would tie the lifetimes of a sandbox's clusters to those of any other emulator in the
process.

Installed with the ``sandbox`` extra (kmock).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import re
import socket
import threading
import uuid
import zlib
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web
from kmock import KubernetesEmulator, KubernetesError, resource as k8s_resource

SECRETS = "v1/secrets"
SERVICES = "v1/services"
DEPLOYMENTS = "apps/v1/deployments"
STATEFULSETS = "apps/v1/statefulsets"
INGRESSES = "networking.k8s.io/v1/ingresses"
APPLICATIONS = "argoproj.io/v1alpha1/applications"

_RESOURCES = {
    SECRETS: {"kind": "Secret", "singular": "secret", "namespaced": True},
    SERVICES: {"kind": "Service", "singular": "service", "namespaced": True},
    DEPLOYMENTS: {"kind": "Deployment", "singular": "deployment", "namespaced": True},
    STATEFULSETS: {"kind": "StatefulSet", "singular": "statefulset", "namespaced": True},
    INGRESSES: {"kind": "Ingress", "singular": "ingress", "namespaced": True},
    APPLICATIONS: {"kind": "Application", "singular": "application", "namespaced": True,
                   "shortnames": {"app", "apps"}},
}
_VERSIONS = itertools.count(1000)
_REQUIREMENT = re.compile(r"^\s*(?P<key>!?[A-Za-z0-9._/-]+)\s*(?:(?P<op>==|=|!=)\s*(?P<value>[A-Za-z0-9._-]*)|"
                          r"\s+(?P<setop>in|notin)\s*\((?P<values>[^)]*)\))?\s*$")


def _split_selector(selector: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in selector:
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        depth += char == "("
        depth -= char == ")"
        current += char
    if current.strip():
        parts.append(current)
    return parts


def label_selector_matches(selector: str | None, labels: dict[str, str]) -> bool:
    if not selector:
        return True
    for part in _split_selector(selector):
        match = _REQUIREMENT.match(part)
        if not match:
            raise KubernetesError(status=400, reason="BadRequest", message=f"unable to parse requirement: {part!r}")
        key, op, value = match["key"], match["op"], match["value"]
        if key.startswith("!"):
            if key[1:] in labels:
                return False
        elif op in ("=", "=="):
            if labels.get(key) != value:
                return False
        elif op == "!=":
            if labels.get(key) == value:
                return False
        elif match["setop"]:
            values = {v.strip() for v in match["values"].split(",")}
            inside = key in labels and labels[key] in values
            if inside != (match["setop"] == "in"):
                return False
        elif key not in labels:
            return False
    return True


class ApiServerEmulator(KubernetesEmulator):
    """KubernetesEmulator plus what our code needs from a real API server (see the module docstring)."""

    kubernetes_version = "1.30"

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        # The official client asks for /version/ (with the slash); kmock serves /version only.
        self.fallback["get /version/"] << self._serve_server_version
        for resource, info in _RESOURCES.items():
            self.resources[resource] = dict(info, verbs={"list", "get", "create", "patch", "delete", "watch"})

    async def _handle(self, request):  # type: ignore[override]
        if request.resource is not None:
            method = request.method.upper()
            if method == "PATCH":
                content_type = (request.headers.get("Content-Type") or "").split(";")[0].strip()
                if content_type == "application/json-patch+json" or isinstance(request.data, list):
                    raise KubernetesError(status=415, reason="UnsupportedMediaType",
                                          message="this emulator takes merge patches only")
            elif method == "PUT":
                raise KubernetesError(status=405, reason="MethodNotAllowed",
                                      message="this emulator does not replace objects; use a merge patch")
            elif method == "POST" and request.name is None and isinstance(request.data, dict):
                self._complete_new_object(request)
        return await super()._handle(request)

    @staticmethod
    def _complete_new_object(request) -> None:
        data = request.data
        meta = data.setdefault("metadata", {})
        if request.namespace:
            meta.setdefault("namespace", request.namespace)
        meta.setdefault("uid", str(uuid.uuid4()))
        meta["resourceVersion"] = str(next(_VERSIONS))
        meta.setdefault("creationTimestamp", "2025-01-01T00:00:00Z")
        if request.resource.plural == "secrets" and "stringData" in data:
            encoded = {k: base64.b64encode(str(v).encode()).decode() for k, v in data.pop("stringData").items()}
            data["data"] = {**(data.get("data") or {}), **encoded}

    async def _serve_server_version(self, request):  # type: ignore[override]
        major, minor = self.kubernetes_version.split(".")
        return {"major": major, "minor": minor, "gitVersion": f"v{self.kubernetes_version}.0-eks",
                "gitCommit": "0" * 40, "gitTreeState": "clean", "buildDate": "2025-01-01T00:00:00Z",
                "goVersion": "go1.22", "compiler": "gc", "platform": "linux/amd64"}

    async def _serve_list(self, request):  # type: ignore[override]
        result = await super()._serve_list(request)
        selector = request.params.get("labelSelector")
        result["items"] = [item for item in result["items"]
                           if label_selector_matches(selector, (item.get("metadata") or {}).get("labels") or {})]
        result["kind"] = "List"
        result["apiVersion"] = "v1"
        return result


class KubeEmulatorServer:
    """One emulated cluster served over HTTP from a background thread's event loop."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=f"kube-{name}", daemon=True)
        self.emulator: ApiServerEmulator | None = None
        self._runner: web.ServerRunner | None = None
        self.url = ""

    def start(self) -> "KubeEmulatorServer":
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._enter(), self.loop).result(timeout=10)
        return self

    async def _enter(self) -> None:
        self.emulator = ApiServerEmulator()
        await self.emulator.__aenter__()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._runner = web.ServerRunner(web.Server(self.emulator, access_log=None))
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()
        host, port = sock.getsockname()[:2]
        self.url = f"http://{host}:{port}"

    async def _exit(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.emulator is not None:
            await self.emulator.__aexit__(None, None, None)

    def stop(self) -> None:
        """Closes the listening socket, stops the loop and joins its thread; safe to call twice."""
        if self.thread.is_alive():
            try:
                asyncio.run_coroutine_threadsafe(self._exit(), self.loop).result(timeout=10)
            finally:
                self.loop.call_soon_threadsafe(self.loop.stop)
                self.thread.join(timeout=10)
        if not self.thread.is_alive() and not self.loop.is_closed():
            self.loop.close()

    # -- seeding and reading state (thread-safe: run on the server's loop) ---------------------------
    def _call(self, fn) -> Any:
        async def run():
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout=10)

    def put(self, resource: str, namespace: str | None, name: str, obj: dict) -> None:
        body = dict(obj)
        meta = dict(body.get("metadata") or {})
        meta.update(name=name, **({"namespace": namespace} if namespace else {}))
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("resourceVersion", str(next(_VERSIONS)))
        body["metadata"] = meta
        kind = _RESOURCES.get(resource, {}).get("kind")
        if kind:
            body.setdefault("kind", kind)
            body.setdefault("apiVersion", resource.rsplit("/", 1)[0])

        def store():
            key = (k8s_resource(resource), namespace, name)
            if key in self.emulator.objects and not self.emulator.objects[key].deleted:
                self.emulator.objects[key].patch(body)
            else:
                self.emulator.objects[key] = body

        self._call(store)

    def get(self, resource: str, namespace: str | None, name: str) -> dict | None:
        def read():
            key = (k8s_resource(resource), namespace, name)
            if key not in self.emulator.objects or self.emulator.objects[key].deleted:
                return None
            return self.emulator.objects[key].raw

        return self._call(read)

    def names(self, resource: str, namespace: str | None = None) -> list[str]:
        def read():
            return sorted(name for (res, ns, name), obj in self.emulator.objects.items()
                          if str(res.plural) == resource.rsplit("/", 1)[-1] and (namespace is None or ns == namespace)
                          and not obj.deleted)

        return self._call(read)

    def delete(self, resource: str, namespace: str | None, name: str) -> None:
        """Delete an object as the API server would (it is no longer listed); a missing one is no error."""

        def remove():
            key = (k8s_resource(resource), namespace, name)
            if key in self.emulator.objects and not self.emulator.objects[key].deleted:
                self.emulator.objects[key].delete()

        self._call(remove)

    def set_kubernetes_version(self, version: str) -> None:
        """What ``/version`` answers from now on, e.g. ``1.31``."""
        self._call(lambda: setattr(self.emulator, "kubernetes_version", version))

    def reset(self) -> None:
        """Forget every object (the declared resources stay)."""

        def clear():
            for key in list(self.emulator.objects.keys()):
                del self.emulator.objects[key]

        self._call(clear)

    def requests(self) -> list:
        return self._call(lambda: list(self.emulator))  # a kmock handler iterates over the requests it saw


class KubeEmulators:
    """Several emulated clusters (e.g. blue, green, hub) and one kubeconfig file with a context each."""

    def __init__(self, names=("blue", "green", "hub"), *, token: str = "kubeconfig-test-token") -> None:
        self.servers = {name: KubeEmulatorServer(name) for name in names}
        self.kubeconfig: Path | None = None
        self.token = token  # the kubeconfig user's token; the emulators accept any

    def start(self, directory: Path) -> "KubeEmulators":
        try:
            for server in self.servers.values():
                server.start()
        except BaseException:
            self.stop()
            raise
        self.kubeconfig = directory / "kubeconfig.yaml"
        self.write_kubeconfig(self.kubeconfig)
        return self

    def __getitem__(self, name: str) -> KubeEmulatorServer:
        return self.servers[name]

    def write_kubeconfig(self, path: Path, extra: dict[str, str] | None = None) -> Path:
        servers = {name: server.url for name, server in self.servers.items()}
        servers.update(extra or {})
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": next(iter(servers)),
            "clusters": [{"name": n, "cluster": {"server": url}} for n, url in servers.items()],
            "users": [{"name": "tester", "user": {"token": self.token}}],
            "contexts": [{"name": n, "context": {"cluster": n, "user": "tester"}} for n in servers],
        }
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        return path

    def reset(self) -> None:
        for server in self.servers.values():
            server.reset()

    def stop(self) -> None:
        for server in reversed(list(self.servers.values())):
            server.stop()


# -- builders for the objects the sandbox and the tests seed ---------------------------------------------
def cluster_secret(cluster_name: str, *, labels: dict | None = None, annotations: dict | None = None,
                   data: dict | None = None) -> dict:
    return {
        "type": "Opaque",
        "metadata": {"labels": {"argocd.argoproj.io/secret-type": "cluster", **(labels or {})},
                     "annotations": dict(annotations or {})},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in (data or {}).items()},
    }


def application(dest_name: str | None = None, *, sync: str = "Synced", health: str = "Healthy",
                server: str | None = "https://kubernetes.default.svc", namespace: str = "default") -> dict:
    dest = {"namespace": namespace}
    if server:
        dest["server"] = server
    if dest_name:
        dest["name"] = dest_name
    return {"spec": {"project": "default", "destination": dest,
                     "source": {"repoURL": "https://github.com/aws-samples/eks-blueprints-workloads"}},
            "status": {"sync": {"status": sync}, "health": {"status": health}}}


def deployment(replicas: int = 2, available: int | None = None) -> dict:
    available = replicas if available is None else available
    return {"spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "x"}},
                     "template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": []}}},
            "status": {"replicas": replicas, "availableReplicas": available, "readyReplicas": available}}


def statefulset(replicas: int = 1, ready: int | None = None) -> dict:
    ready = replicas if ready is None else ready
    return {"spec": {"replicas": replicas, "serviceName": "x", "selector": {"matchLabels": {"app": "x"}},
                     "template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": []}}},
            "status": {"replicas": replicas, "readyReplicas": ready, "availableReplicas": ready}}


# -- a GitOps Bridge layout (EKS Blueprints, one ArgoCD per cluster), as the sandbox seeds it ------------
ARGOCD_NAMESPACE = "argocd"
WORKLOAD_NAMESPACE = "team-burnham"
# What the seeded cluster secrets' ``data`` holds: clearly fake, and it must never leave the Secret (the
# tests look for it in every output and log).
FAKE_CLUSTER_CREDENTIAL = "SANDBOX-FAKE-bearer-token-NOT-A-REAL-CREDENTIAL"
# The addon flags (labels ``enable_<addon>: "true"``) and, for each, the Application its ApplicationSet makes.
ADDONS = {
    "enable_argocd": "addons-argocd",
    "enable_aws_load_balancer_controller": "addons-aws-load-balancer-controller",
    "enable_external_dns": "addons-external-dns",
    "enable_karpenter": "addons-karpenter",
    "enable_metrics_server": "addons-metrics-server",
}
IN_CLUSTER = "https://kubernetes.default.svc"
_ACCOUNT = "123456789012"


def gitops_bridge_secret(cluster_name: str, *, kubernetes_version: str, weight: int, region: str,
                         endpoint: str) -> dict:
    """The ArgoCD cluster secret GitOps Bridge writes for an EKS Blueprints cluster: addon flags and
    metadata in labels and annotations, and (fake) credentials in ``data``."""
    labels = {"cluster_name": cluster_name, "environment": "eks-blueprint",
              "kubernetes_version": kubernetes_version, **{flag: "true" for flag in ADDONS}}
    annotations = {
        "aws_cluster_name": cluster_name, "aws_region": region, "aws_account_id": _ACCOUNT,
        "aws_vpc_id": f"vpc-0{zlib.crc32(cluster_name.encode()):08x}", "cluster_endpoint": endpoint,
        "aws_load_balancer_controller_iam_role_arn": f"arn:aws:iam::{_ACCOUNT}:role/{cluster_name}-alb-controller",
        "addons_repo_url": "https://github.com/aws-samples/eks-blueprints-add-ons",
        "addons_repo_basepath": "argocd/", "addons_repo_path": "bootstrap/control-plane/addons",
        "addons_repo_revision": "main",
        "gitops_workloads_url": "https://github.com/aws-samples/eks-blueprints-workloads",
        "gitops_workloads_path": "envs/dev", "gitops_workloads_revision": "main",
        "external_dns_policy": "sync", "ingress_type": "alb", "route53_weight": str(weight),
    }
    data = {"name": cluster_name, "server": IN_CLUSTER,
            "config": json.dumps({"bearerToken": FAKE_CLUSTER_CREDENTIAL, "tlsClientConfig": {"insecure": False}})}
    return cluster_secret(cluster_name, labels=labels, annotations=annotations, data=data)


def seed_gitops_bridge(server: KubeEmulatorServer, cluster_name: str, *, kubernetes_version: str, weight: int,
                       region: str, endpoint: str, workload: str = "burnham") -> None:
    """One cluster as EKS Blueprints leaves it: its cluster secret and Applications (Synced, Healthy) in
    namespace ``argocd``, and the workload's Deployment available in ``team-<workload>``."""
    server.set_kubernetes_version(kubernetes_version)
    server.put(SECRETS, ARGOCD_NAMESPACE, cluster_name,
               gitops_bridge_secret(cluster_name, kubernetes_version=kubernetes_version, weight=weight,
                                    region=region, endpoint=endpoint))
    apps = {"bootstrap-addons": ARGOCD_NAMESPACE, "bootstrap-workloads": ARGOCD_NAMESPACE,
            **{name: name.removeprefix("addons-") for name in ADDONS.values()},
            f"{workload}-{cluster_name}": f"team-{workload}"}
    for name, namespace in apps.items():
        server.put(APPLICATIONS, ARGOCD_NAMESPACE, name, application(server=IN_CLUSTER, namespace=namespace))
    server.put(DEPLOYMENTS, f"team-{workload}", workload, deployment(replicas=2))


def remove_addon(server: KubeEmulatorServer, cluster_name: str, flag: str) -> None:
    """Turn an addon off as Terraform would: the flag leaves the cluster secret, and the ApplicationSet
    no longer makes its Application."""
    if flag not in ADDONS:
        raise ValueError(f"unknown addon flag {flag!r}; one of {', '.join(ADDONS)}")
    server.put(SECRETS, ARGOCD_NAMESPACE, cluster_name, {"metadata": {"labels": {flag: None}}})
    server.delete(APPLICATIONS, ARGOCD_NAMESPACE, ADDONS[flag])
