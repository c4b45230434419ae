"""kmock's KubernetesEmulator as a real HTTP server on 127.0.0.1, for the official kubernetes client.

The emulator is aiohttp-based; its event loop runs in a background thread, so synchronous code under test
(the ``kubernetes`` client over urllib3) talks plain HTTP to it, through a kubeconfig file like any cluster.

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
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import re
import threading
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

import yaml
from kmock import KubernetesEmulator, KubernetesError, Server, resource as k8s_resource

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
        self._server: Server | None = None
        self.url = ""

    def start(self) -> "KubeEmulatorServer":
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._enter(), self.loop).result(timeout=10)
        return self

    async def _enter(self) -> None:
        self.emulator = ApiServerEmulator()
        await self.emulator.__aenter__()
        self._server = Server(self.emulator)
        await self._server.__aenter__()
        self.url = f"http://{self._server.host}:{self._server.port}"

    async def _exit(self) -> None:
        if self._server is not None:
            await self._server.__aexit__(None, None, None)
        if self.emulator is not None:
            await self.emulator.__aexit__(None, None, None)

    def stop(self) -> None:
        if self.thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._exit(), self.loop).result(timeout=10)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=10)

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

    def __init__(self, names=("blue", "green", "hub")) -> None:
        self.servers = {name: KubeEmulatorServer(name) for name in names}
        self.kubeconfig: Path | None = None

    def start(self, directory: Path) -> "KubeEmulators":
        for server in self.servers.values():
            server.start()
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
            "users": [{"name": "tester", "user": {"token": "kubeconfig-test-token"}}],
            "contexts": [{"name": n, "context": {"cluster": n, "user": "tester"}} for n in servers],
        }
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        return path

    def reset(self) -> None:
        for server in self.servers.values():
            server.reset()

    def stop(self) -> None:
        # Each kmock server chains a hook into aiohttp's resolver: unwind them in reverse order.
        for server in reversed(list(self.servers.values())):
            server.stop()


@pytest.fixture(scope="session")
def kube_servers(tmp_path_factory) -> Iterator[KubeEmulators]:
    """Three emulated clusters (blue, green, hub) for the whole session, and a kubeconfig for them."""
    servers = KubeEmulators().start(tmp_path_factory.mktemp("kube"))
    try:
        yield servers
    finally:
        servers.stop()


@pytest.fixture
def kube(kube_servers) -> KubeEmulators:
    """The emulated clusters, emptied before each test."""
    kube_servers.reset()
    return kube_servers


# -- builders for the objects the tests seed -----------------------------------------------------------
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
