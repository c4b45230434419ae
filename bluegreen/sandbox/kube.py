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
- create fills ``metadata.namespace``, ``uid``, ``resourceVersion`` and ``creationTimestamp`` (and
  ``generation`` 1 for workloads), and turns a Secret's ``stringData`` into base64 ``data`` as the API
  server does;
- the core group's discovery (``/api/v1``) says ``groupVersion: v1`` (kmock says ``/v1``, which kubectl
  rejects), and lists are ``<Kind>List`` objects of the resource's apiVersion;
- bearer tokens are checked (:class:`Identity`): a missing or unknown token gets 401 Unauthorized, a token
  whose identity lacks a permission gets 403 Forbidden with the API server's own message, so the code under
  test meets the errors a real cluster gives.

With ``tls=True`` an emulator serves HTTPS with a self-signed certificate for 127.0.0.1 (its kubeconfig carries
it as ``certificate-authority-data``): kubectl (client-go) sends a kubeconfig's bearer token only over TLS, so
a plain-HTTP emulator cannot check kubectl's token.

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
import datetime
import os
import socket
import ssl
import tempfile
import threading
import uuid
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml
from aiohttp import web
from kmock import KubernetesEmulator, KubernetesError, resource as k8s_resource

SECRETS = "v1/secrets"
SERVICES = "v1/services"
DEPLOYMENTS = "apps/v1/deployments"
STATEFULSETS = "apps/v1/statefulsets"
DAEMONSETS = "apps/v1/daemonsets"
INGRESSES = "networking.k8s.io/v1/ingresses"
APPLICATIONS = "argoproj.io/v1alpha1/applications"

_RESOURCES = {
    SECRETS: {"kind": "Secret", "singular": "secret", "namespaced": True},
    SERVICES: {"kind": "Service", "singular": "service", "namespaced": True},
    DEPLOYMENTS: {"kind": "Deployment", "singular": "deployment", "namespaced": True},
    STATEFULSETS: {"kind": "StatefulSet", "singular": "statefulset", "namespaced": True},
    DAEMONSETS: {"kind": "DaemonSet", "singular": "daemonset", "namespaced": True},
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


# A key of ``tokens`` that admits EKS IAM tokens (``k8s-aws-v1.`` + a presigned STS GetCallerIdentity URL),
# as the EKS authenticator does after checking the URL with STS (aws-iam-authenticator, "How it works").
EKS_TOKENS = "eks-iam-tokens"


def _eks_token_ok(token: str) -> bool:
    """The token is a presigned GetCallerIdentity URL naming a cluster (x-k8s-aws-id signed in). STS itself
    is not called: the emulator trusts the signature, as moto's STS would."""
    import base64
    from urllib.parse import parse_qs, urlsplit

    if not token.startswith("k8s-aws-v1."):
        return False
    encoded = token[len("k8s-aws-v1."):]
    try:
        url = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except ValueError:
        return False
    query = parse_qs(urlsplit(url).query)
    signed = (query.get("X-Amz-SignedHeaders") or [""])[0].split(";")
    return query.get("Action") == ["GetCallerIdentity"] and "x-k8s-aws-id" in signed


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


def field_selector_matches(selector: str | None, obj: dict) -> bool:
    """``metadata.name=x,metadata.namespace!=y``: the fields every resource supports (kubectl rollout status
    lists with ``metadata.name=<name>``)."""
    if not selector:
        return True
    meta = obj.get("metadata") or {}
    for part in selector.split(","):
        match = re.match(r"^\s*(metadata\.name|metadata\.namespace)\s*(==|=|!=)\s*(.*?)\s*$", part)
        if not match:
            raise KubernetesError(status=400, reason="BadRequest",
                                  message=f"field label not supported: {part.split('=')[0].strip('!')}")
        field, op, value = match.groups()
        actual = meta.get(field.split(".", 1)[1]) or ""
        if (actual == value) != (op != "!="):
            return False
    return True


@dataclass(frozen=True)
class Identity:
    """Who a bearer token authenticates as, and what RBAC refuses them.

    ``denied`` holds ``"<verb> <resource>"`` entries (``"list secrets"``, ``"* secrets"`` for every verb);
    everything else is allowed, as for a cluster admin.
    """

    user: str
    denied: frozenset[str] = frozenset()

    def allows(self, verb: str, resource: str) -> bool:
        return f"{verb} {resource}" not in self.denied and f"* {resource}" not in self.denied


def identity(user: str, denied: Iterable[str] = ()) -> Identity:
    return Identity(user, frozenset(denied))


# What the sandbox's restricted token may not do: read Secrets (so ArgoCD's cluster secrets stay out of reach).
NO_SECRETS = frozenset({"get secrets", "list secrets", "watch secrets"})

_ACTION_VERBS = {"LIST": "list", "WATCH": "watch", "FETCH": "get", "CREATE": "create", "UPDATE": "patch",
                 "DELETE": "delete"}


def _status(code: int, reason: str, message: str, details: dict | None = None) -> web.Response:
    """A ``Status`` object, the body every error of the API server carries (apimachinery metav1.Status)."""
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                            "message": message, "reason": reason, "code": code}
    if details is not None:
        body["details"] = details
    return web.json_response(body, status=code)


class ApiServerEmulator(KubernetesEmulator):
    """KubernetesEmulator plus what our code needs from a real API server (see the module docstring)."""

    kubernetes_version = "1.30"
    # bearer token -> Identity; None accepts any request (kmock's behaviour). Set by KubeEmulatorServer.
    tokens: Mapping[str, Identity] | None = None

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        # The official client asks for /version/ (with the slash); kmock serves /version only.
        self.fallback["get /version/"] << self._serve_server_version
        for resource, info in _RESOURCES.items():
            self.resources[resource] = dict(info, verbs={"list", "get", "create", "patch", "delete", "watch"})

    def _refusal(self, request) -> web.Response | None:
        """401 or 403 as the API server answers, or None when the request may go on.

        Like an API server started with ``--anonymous-auth=false``, a request without a valid bearer token is
        401 Unauthorized (body: a Status with message "Unauthorized"). An authenticated request that RBAC
        refuses is 403 Forbidden with the authorizer's message, e.g. ``secrets is forbidden: User "x" cannot
        list resource "secrets" in API group "" in the namespace "argocd"`` (k8s.io/apiserver
        endpoints/handlers/responsewriters: ForbiddenStatusError)."""
        if self.tokens is None:
            return None
        header = next((v for k, v in (request.headers or {}).items() if k.lower() == "authorization"), "") or ""
        scheme, _, token = header.partition(" ")
        token = token.strip()
        who = self.tokens.get(token) if scheme.lower() == "bearer" else None
        if who is None and scheme.lower() == "bearer" and EKS_TOKENS in self.tokens and _eks_token_ok(token):
            who = self.tokens[EKS_TOKENS]
        if who is None:
            return _status(401, "Unauthorized", "Unauthorized")
        if request.resource is None or request.action is None:
            return None  # discovery and /version: allowed to every authenticated user (system:discovery)
        plural = str(request.resource.plural)
        verb = _ACTION_VERBS.get(request.action.name, request.method.lower())
        if request.method.upper() == "PUT":
            verb = "update"
        if who.allows(verb, plural):
            return None
        group = request.resource.group or ""
        subject = f'{plural} "{request.name}"' if request.name else plural
        where = f'in the namespace "{request.namespace}"' if request.namespace else "at the cluster scope"
        message = (f'{subject} is forbidden: User "{who.user}" cannot {verb} resource "{plural}" in API group '
                   f'"{group}" {where}')
        details = {"kind": plural, **({"name": request.name} if request.name else {})}
        return _status(403, "Forbidden", message, details)

    async def _handle(self, request):  # type: ignore[override]
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        if (request.resource is not None and not request.resource.plural and request.method.upper() == "GET"
                and request.url.path.endswith("/") and request.url.path.rstrip("/").count("/") in (2, 3)):
            # The official client asks for /api/v1/ and /apis/apps/v1/ (with the slash): a resource list.
            return web.json_response(await self._serve_version(request))
        if request.resource is not None:
            method = request.method.upper()
            if method == "PATCH":
                content_type = (request.headers.get("Content-Type") or "").split(";")[0].strip()
                if content_type == "application/json-patch+json" or isinstance(request.data, list):
                    raise KubernetesError(status=415, reason="UnsupportedMediaType",
                                          message="this emulator takes merge patches only")
                self._bump_generation(request)
            elif method == "PUT":
                raise KubernetesError(status=405, reason="MethodNotAllowed",
                                      message="this emulator does not replace objects; use a merge patch")
            elif method == "POST" and request.name is None and isinstance(request.data, dict):
                self._complete_new_object(request)
        return await super()._handle(request)

    def _bump_generation(self, request) -> None:
        """A patch that changes a workload's spec raises ``metadata.generation`` by one, in the same write, as
        the API server does ("generation: a sequence number representing a specific generation of the desired
        state. Populated by the system", Kubernetes API conventions, metadata). Without it a controller's
        ``observedGeneration`` would already equal the generation right after a restart or a scale, and
        ``kubectl rollout status`` logic would call an unstarted rollout complete."""
        spec = request.data.get("spec") if isinstance(request.data, dict) else None
        if request.resource.group != "apps" or not isinstance(spec, dict) or request.name is None:
            return
        key = (request.resource, request.namespace, request.name)
        if key not in self.objects or self.objects[key].deleted:
            return
        current = self.objects[key]
        raw = current.raw
        if not _changes(raw.get("spec") or {}, spec):
            return
        generation = int((raw.get("metadata") or {}).get("generation") or 1)
        request.data.setdefault("metadata", {})["generation"] = generation + 1

    @staticmethod
    def _complete_new_object(request) -> None:
        data = request.data
        meta = data.setdefault("metadata", {})
        if request.namespace:
            meta.setdefault("namespace", request.namespace)
        meta.setdefault("uid", str(uuid.uuid4()))
        meta["resourceVersion"] = str(next(_VERSIONS))
        meta.setdefault("creationTimestamp", "2025-01-01T00:00:00Z")
        if request.resource.group == "apps":
            meta.setdefault("generation", 1)  # the API server starts every object with a spec at 1
        if request.resource.plural == "secrets" and "stringData" in data:
            encoded = {k: base64.b64encode(str(v).encode()).decode() for k, v in data.pop("stringData").items()}
            data["data"] = {**(data.get("data") or {}), **encoded}

    async def _serve_server_version(self, request):  # type: ignore[override]
        major, minor = self.kubernetes_version.split(".")
        return {"major": major, "minor": minor, "gitVersion": f"v{self.kubernetes_version}.0-eks",
                "gitCommit": "0" * 40, "gitTreeState": "clean", "buildDate": "2025-01-01T00:00:00Z",
                "goVersion": "go1.22", "compiler": "gc", "platform": "linux/amd64"}

    async def _serve_version(self, request):  # type: ignore[override]
        result = await super()._serve_version(request)
        if request.resource is not None and not request.resource.group:
            # The core group has no name: its groupVersion is "v1" (kmock writes "/v1", which kubectl's
            # discovery cannot parse, so `kubectl get secret` failed against the emulator).
            result["groupVersion"] = str(request.resource.version)
        return result

    async def _serve_list(self, request):  # type: ignore[override]
        result = await super()._serve_list(request)
        selector = request.params.get("labelSelector")
        fields = request.params.get("fieldSelector")
        result["items"] = [item for item in result["items"]
                           if label_selector_matches(selector, (item.get("metadata") or {}).get("labels") or {})
                           and field_selector_matches(fields, item)]
        # As the API server answers: a SecretList of apiVersion v1, a DeploymentList of apps/v1, ...
        resource = request.resource
        info = _RESOURCES.get(f"{resource.group}/{resource.version}".lstrip("/") + f"/{resource.plural}")
        result["kind"] = f"{info['kind']}List" if info else "List"
        result["apiVersion"] = f"{resource.group}/{resource.version}" if resource.group else str(resource.version)
        return result


def _changes(current: Any, patch: Any) -> bool:
    """Would this JSON merge patch (RFC 7386) change ``current``?"""
    if not isinstance(patch, dict):
        return current != patch
    if not isinstance(current, dict):
        return True
    for key, value in patch.items():
        if value is None:
            if key in current:
                return True
        elif key not in current or _changes(current[key], value):
            return True
    return False


_CERTIFICATE: tuple[bytes, bytes] | None = None
_CERTIFICATE_LOCK = threading.Lock()


def loopback_certificate() -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM): one self-signed certificate for 127.0.0.1 and localhost, made once per
    process (an EC key: milliseconds, where RSA takes a noticeable part of a second)."""
    global _CERTIFICATE
    with _CERTIFICATE_LOCK:
        if _CERTIFICATE is None:
            import ipaddress

            from cryptography import x509
            from cryptography.hazmat.primitives import hashes, serialization
            from cryptography.hazmat.primitives.asymmetric import ec
            from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

            key = ec.generate_private_key(ec.SECP256R1())
            name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bluegreen-sandbox-kube")])
            now = datetime.datetime.now(datetime.timezone.utc)
            cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                    .serial_number(x509.random_serial_number())
                    .not_valid_before(now - datetime.timedelta(minutes=5))
                    .not_valid_after(now + datetime.timedelta(days=2))
                    .add_extension(x509.SubjectAlternativeName([
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]), critical=False)
                    .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                    .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, content_commitment=False,
                                                 key_encipherment=False, data_encipherment=False, key_agreement=False,
                                                 crl_sign=False, encipher_only=False, decipher_only=False),
                                   critical=True)
                    .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                    .sign(key, hashes.SHA256()))
            _CERTIFICATE = (cert.public_bytes(serialization.Encoding.PEM),
                            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
        return _CERTIFICATE


def _server_ssl_context() -> ssl.SSLContext:
    cert_pem, key_pem = loopback_certificate()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # load_cert_chain reads files only: write them to a private directory for the moment it takes.
    with tempfile.TemporaryDirectory(prefix="bluegreen-kube-tls-") as directory:
        cert_file, key_file = os.path.join(directory, "tls.crt"), os.path.join(directory, "tls.key")
        with open(cert_file, "wb") as f:
            f.write(cert_pem)
        with open(os.open(key_file, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as f:
            f.write(key_pem)
        context.load_cert_chain(cert_file, key_file)
    return context


class KubeEmulatorServer:
    """One emulated cluster served over HTTP (or HTTPS with ``tls=True``) from a background thread's loop."""

    def __init__(self, name: str, tokens: Mapping[str, Identity] | None = None, *, tls: bool = False) -> None:
        self.name = name
        self.tls = tls
        self.tokens = dict(tokens) if tokens is not None else None  # None: any token or none is accepted
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
        self.emulator.tokens = self.tokens
        await self.emulator.__aenter__()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        # A watch (kubectl rollout status starts one) stays open until the client goes: stop() must not wait
        # aiohttp's default 60 s for it.
        self._runner = web.ServerRunner(web.Server(self.emulator, access_log=None), shutdown_timeout=1.0)
        await self._runner.setup()
        await web.SockSite(self._runner, sock, ssl_context=_server_ssl_context() if self.tls else None).start()
        host, port = sock.getsockname()[:2]
        self.url = f"{'https' if self.tls else 'http'}://{host}:{port}"

    async def _exit(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.emulator is not None:
            await self.emulator.__aexit__(None, None, None)
        # Whatever still runs on this loop (a watch whose client went away) is cancelled, not left pending.
        others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

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
    """Several emulated clusters (e.g. blue, green, hub) and one kubeconfig file with a context each.

    ``token`` is the kubeconfig user's token, a cluster admin. ``tokens`` adds other identities accepted by
    every cluster, e.g. ``{"viewer-token": identity("viewer", NO_SECRETS)}``; any other token (or none) is
    refused with 401.
    """

    def __init__(self, names=("blue", "green", "hub"), *, token: str = "kubeconfig-test-token",
                 tokens: Mapping[str, Identity] | None = None, tls: bool = False) -> None:
        accepted = {token: Identity("kubernetes-admin"), **dict(tokens or {})}
        self.tls = tls
        self.servers = {name: KubeEmulatorServer(name, accepted, tls=tls) for name in names}
        self.kubeconfig: Path | None = None
        self.token = token

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

    def write_kubeconfig(self, path: Path, extra: dict[str, str] | None = None, *, token: str | None = None) -> Path:
        """A kubeconfig with a context per cluster; ``token`` replaces the admin token (e.g. a restricted one,
        or a wrong one to see the 401)."""
        servers = {name: server.url for name, server in self.servers.items()}
        servers.update(extra or {})
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": next(iter(servers)),
            "clusters": [{"name": n, "cluster": self._cluster_entry(url)} for n, url in servers.items()],
            "users": [{"name": "tester", "user": {"token": self.token if token is None else token}}],
            "contexts": [{"name": n, "context": {"cluster": n, "user": "tester"}} for n in servers],
        }
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        return path

    @staticmethod
    def _cluster_entry(url: str) -> dict:
        if not url.startswith("https://"):
            return {"server": url}
        return {"server": url, "certificate-authority-data": base64.b64encode(loopback_certificate()[0]).decode()}

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


_POD_TEMPLATE = {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": []}}


def deployment(replicas: int = 2, available: int | None = None, *, updated: int | None = None,
               old: int | None = None, generation: int = 1, observed_generation: int | None = None) -> dict:
    """A Deployment with its rollout status. By default the rollout is complete; ``updated=1`` (of 2) builds
    one mid-rollout: the new ReplicaSet has 1 pod, ``old`` pods of the previous one (default: the rest) still
    run and keep ``available`` (default: ``replicas``) up. ``observed_generation`` below ``generation`` is a
    spec change the controller has not seen yet."""
    available = replicas if available is None else available
    updated = replicas if updated is None else updated
    old = max(replicas - updated, 0) if old is None else old
    return {"metadata": {"generation": generation},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "x"}}, "template": _POD_TEMPLATE,
                     "strategy": {"type": "RollingUpdate",
                                  "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}},
            "status": {"observedGeneration": generation if observed_generation is None else observed_generation,
                       "replicas": updated + old, "updatedReplicas": updated, "availableReplicas": available,
                       "readyReplicas": available, "unavailableReplicas": max(updated + old - available, 0)}}


def statefulset(replicas: int = 1, ready: int | None = None, *, updated: int | None = None, generation: int = 1,
                observed_generation: int | None = None, revision: str = "x-1",
                update_revision: str | None = None) -> dict:
    """A StatefulSet with its rollout status; ``updated`` below ``replicas`` (and ``update_revision``, default
    ``x-2`` then) builds one mid-rollout."""
    ready = replicas if ready is None else ready
    updated = replicas if updated is None else updated
    if update_revision is None:
        update_revision = revision if updated >= replicas else "x-2"
    return {"metadata": {"generation": generation},
            "spec": {"replicas": replicas, "serviceName": "x", "selector": {"matchLabels": {"app": "x"}},
                     "template": _POD_TEMPLATE,
                     "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}},
            "status": {"observedGeneration": generation if observed_generation is None else observed_generation,
                       "replicas": replicas, "readyReplicas": ready, "availableReplicas": ready,
                       "updatedReplicas": updated, "currentReplicas": replicas - updated if updated < replicas
                       else replicas, "currentRevision": revision, "updateRevision": update_revision}}


def daemonset(desired: int = 3, available: int | None = None, *, updated: int | None = None, generation: int = 1,
              observed_generation: int | None = None) -> dict:
    """A DaemonSet with its rollout status (one pod per node: ``desired`` nodes); ``updated`` below
    ``desired`` builds one mid-rollout."""
    available = desired if available is None else available
    updated = desired if updated is None else updated
    return {"metadata": {"generation": generation},
            "spec": {"selector": {"matchLabels": {"app": "x"}}, "template": _POD_TEMPLATE,
                     "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}}},
            "status": {"observedGeneration": generation if observed_generation is None else observed_generation,
                       "desiredNumberScheduled": desired, "currentNumberScheduled": desired,
                       "updatedNumberScheduled": updated, "numberAvailable": available, "numberReady": available,
                       "numberMisscheduled": 0, "numberUnavailable": max(desired - available, 0)}}


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
