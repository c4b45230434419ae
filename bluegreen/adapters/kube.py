"""Kubernetes API clients for the blue, green and hub clusters: the official ``kubernetes`` client, built
from EKS (DescribeCluster + an IAM token, as ``aws eks get-token`` makes it) or from a kubeconfig context.

The client is configured, never patched: the token goes in through ``Configuration.api_key`` and is
renewed by ``Configuration.refresh_api_key_hook`` before it expires. Tokens are never logged and never
appear in a repr or an error message. Failures to reach a cluster become :class:`ClusterAccessError`
naming the cluster.
"""

from __future__ import annotations

import base64
import contextlib
import re
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import structlog

from bluegreen.config.clusters import ClusterAccess, ClustersConfig
from bluegreen.config import AwsConfig, Config
from bluegreen.errors import BlueGreenError, ConfigError, ExitCode, shorten

log = structlog.get_logger("bluegreen.clusters")

TOKEN_PREFIX = "k8s-aws-v1."
CLUSTER_ID_HEADER = "x-k8s-aws-id"
TOKEN_LIFETIME = 15 * 60.0  # EKS accepts a token for 15 minutes
TOKEN_REFRESH_AFTER = 12 * 60.0  # renew well before: a long list call must not outlive its token
PRESIGN_EXPIRES = 60  # what aws eks get-token asks for; EKS itself enforces the 15 minutes


class ClusterAccessError(BlueGreenError):
    """A cluster could not be reached or refused us. The message names the cluster; never a token."""

    exit_code = ExitCode.ERROR


# -- EKS tokens --------------------------------------------------------------------------------------
def presigned_caller_identity_url(sts_client: Any, cluster_name: str) -> str:
    """An STS GetCallerIdentity URL, presigned with the ``x-k8s-aws-id`` header (the cluster name) among
    the signed headers: the body of an EKS bearer token."""

    def add_cluster_header(request: Any, **_: Any) -> None:
        request.headers[CLUSTER_ID_HEADER] = cluster_name

    events = sts_client.meta.events
    handler_id = f"bluegreen-k8s-aws-id-{id(add_cluster_header)}"
    events.register_first("before-sign.sts.GetCallerIdentity", add_cluster_header, unique_id=handler_id)
    try:
        return sts_client.generate_presigned_url(
            "get_caller_identity", Params={}, ExpiresIn=PRESIGN_EXPIRES, HttpMethod="GET")
    finally:
        events.unregister("before-sign.sts.GetCallerIdentity", unique_id=handler_id)


def make_eks_token(sts_client: Any, cluster_name: str) -> str:
    url = presigned_caller_identity_url(sts_client, cluster_name)
    return TOKEN_PREFIX + base64.urlsafe_b64encode(url.encode("utf-8")).decode("ascii").rstrip("=")


class EksTokenSource:
    """Makes a token for one cluster and renews it before it expires. Thread-safe; repr shows no token."""

    def __init__(self, cluster_name: str, sts_factory: Callable[[], Any],
                 monotonic: Callable[[], float] = time.monotonic, refresh_after: float = TOKEN_REFRESH_AFTER) -> None:
        self.cluster_name = cluster_name
        self._sts_factory = sts_factory
        self._monotonic = monotonic
        self._refresh_after = refresh_after
        self._token: str | None = None
        self._made_at = 0.0
        self._lock = threading.Lock()
        self.renewals = 0

    def __repr__(self) -> str:
        return f"EksTokenSource(cluster={self.cluster_name!r}, token=<hidden>)"

    def token(self) -> str:
        with self._lock:
            now = self._monotonic()
            if self._token is None or now - self._made_at >= self._refresh_after:
                self._token = make_eks_token(self._sts_factory(), self.cluster_name)
                self._made_at = now
                self.renewals += 1
                log.debug("eks_token_made", cluster=self.cluster_name, renewals=self.renewals,
                          valid_seconds=int(TOKEN_LIFETIME))
            return self._token

    def hook(self, configuration: Any) -> None:
        """For ``Configuration.refresh_api_key_hook``: called by the client before every request."""
        configuration.api_key["authorization"] = self.token()


def token_configuration(host: str, token_source: EksTokenSource, ca_pem: str | None = None):
    """A client ``Configuration`` for an API server that takes EKS bearer tokens."""
    from kubernetes import client as k8s

    configuration = k8s.Configuration(host=host)
    configuration.api_key_prefix["authorization"] = "Bearer"
    # The client only asks the hook when a key is present, so the first token is made now.
    token_source.hook(configuration)
    configuration.refresh_api_key_hook = token_source.hook
    if ca_pem:
        configuration.ca_cert_data = ca_pem  # in memory: no temporary file to clean up
    configuration.retries = 1
    return configuration


# -- clusters ----------------------------------------------------------------------------------------
@dataclass
class Kube:
    """One cluster's API client with a label that every error message carries."""

    api_client: Any
    label: str
    eks_endpoint: str | None = None

    def __repr__(self) -> str:
        return f"Kube({self.label!r})"

    @property
    def core(self):
        from kubernetes import client as k8s

        return k8s.CoreV1Api(self.api_client)

    @property
    def apps(self):
        from kubernetes import client as k8s

        return k8s.AppsV1Api(self.api_client)

    @property
    def networking(self):
        from kubernetes import client as k8s

        return k8s.NetworkingV1Api(self.api_client)

    @property
    def custom(self):
        from kubernetes import client as k8s

        return k8s.CustomObjectsApi(self.api_client)

    def server_version(self) -> str:
        """The cluster's Kubernetes minor version, e.g. ``1.31`` (EKS reports minors as ``31+``)."""
        from kubernetes import client as k8s

        with self.guard("reading the server version"):
            info = k8s.VersionApi(self.api_client).get_code()
        return f"{info.major}.{str(info.minor).rstrip('+')}"

    @contextlib.contextmanager
    def guard(self, what: str) -> Iterator[None]:
        """Turn client and network errors into ClusterAccessError naming the cluster (and no secrets)."""
        import urllib3
        from kubernetes.client.exceptions import ApiException, OpenApiException

        try:
            yield
        except BlueGreenError:
            raise
        except ApiException as error:
            reason = _api_reason(error)
            hint = None
            if error.status == 401:
                reason = "Unauthorized: the cluster rejected the token (wrong, expired, or for another cluster)"
                hint = ("renew the credentials (aws eks update-kubeconfig, or the kubeconfig's token) and check "
                        "that your identity is mapped in the cluster (EKS access entries or aws-auth)")
            elif error.status == 403:
                missing = _missing_permission(error)
                if missing:
                    reason = f"Forbidden: missing permission {missing}"
                    hint = f"grant {missing} to this identity (an RBAC Role and RoleBinding, or an EKS access policy)"
                else:
                    hint = "check that your identity is mapped in the cluster (EKS access entries or aws-auth)"
            raise ClusterAccessError(f"{what} on the {self.label} failed: HTTP {error.status} {reason}",
                                     hint=hint) from None
        except OpenApiException as error:
            raise ClusterAccessError(f"{what} on the {self.label} failed: {type(error).__name__}") from None
        except (OSError, urllib3.exceptions.HTTPError) as error:  # the cluster cannot be reached
            raise ClusterAccessError(
                f"cannot reach the {self.label} ({what}): {_network_reason(error)}",
                hint="check the endpoint, your network path to it (VPN, private endpoint) and its certificate",
            ) from None
        except ValueError as error:  # an answer the client could not read (pydantic validation, JSON)
            raise ClusterAccessError(f"{what} on the {self.label}: unexpected answer ({type(error).__name__})",
                                     hint="is this a Kubernetes API server of a supported version?") from None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.api_client.close()


def _api_reason(error: Any) -> str:
    import json

    message = ""
    body = getattr(error, "body", None)
    if body:
        with contextlib.suppress(Exception):
            message = json.loads(body).get("message", "")
    return shorten(f"{error.reason or ''} {message}".strip(), 200)


# The API server's Forbidden message (k8s.io/apiserver ForbiddenStatusError), e.g.
# secrets is forbidden: User "x" cannot list resource "secrets" in API group "" in the namespace "argocd"
_FORBIDDEN = re.compile(r'cannot (?P<verb>[\w-]+) resource "(?P<resource>[^"]*)" in API group "(?P<group>[^"]*)"'
                        r'(?: in the namespace "(?P<namespace>[^"]*)"| at the cluster scope)?')


def _missing_permission(error: Any) -> str | None:
    """``list secrets in namespace argocd`` from a 403's Status message, or None if it does not say."""
    import json

    message = ""
    with contextlib.suppress(Exception):
        message = json.loads(getattr(error, "body", None) or "{}").get("message", "")
    match = _FORBIDDEN.search(message or "")
    if not match:
        return None
    resource = match["resource"] + (f".{match['group']}" if match["group"] else "")
    where = f"in namespace {match['namespace']}" if match["namespace"] else "cluster-wide"
    return f"{match['verb']} {resource} {where}"


def _network_reason(error: Exception) -> str:
    # urllib3's MaxRetryError carries the URL and the cause; neither holds a header value.
    cause = getattr(error, "reason", None) or error
    return shorten(f"{type(cause).__name__}: {cause}", 200)


def connect(access: ClusterAccess, aws: AwsConfig, *, label: str,
            eks_client: Any = None, sts_factory: Callable[[], Any] | None = None,
            monotonic: Callable[[], float] = time.monotonic) -> Kube:
    """A client for one cluster. With a kubeconfig it is used as is; with only ``eks``, the endpoint and CA
    come from DescribeCluster and the token from STS."""
    if access.kubeconfig or access.context or access.current_context:
        return Kube(_from_kubeconfig(access, label), label)
    return _from_eks(access, aws, label=label, eks_client=eks_client, sts_factory=sts_factory, monotonic=monotonic)


def default_kubeconfig() -> str:
    """The kubeconfig used when none is named: $KUBECONFIG (its first file) or ~/.kube/config, as kubectl
    picks it."""
    import os

    return os.path.expanduser((os.environ.get("KUBECONFIG") or "").split(os.pathsep)[0] or "~/.kube/config")


def resolve_current_context(clusters: ClustersConfig) -> ClustersConfig:
    """``clusters`` with an omitted side pinned to the current context of the default kubeconfig (the side
    then reads ``{kubeconfig: PATH, context: CURRENT}`` and is named after the context). Refused with a
    ConfigError naming ``clusters.<side>`` when that is ambiguous: no kubeconfig or no current context, or
    a current context that the other side already names. Unchanged when no side was omitted."""
    import os
    from dataclasses import replace

    omitted = [spec for spec in (clusters.blue, clusters.green) if spec.access.current_context]
    if not omitted:
        return clusters
    if len(omitted) == 2:  # parse_clusters refuses this; a hand-made ClustersConfig might not
        raise ConfigError("`clusters.blue` and `clusters.green` are both missing: at most one side may use "
                          "the kubeconfig's current context", hint="name one side's context or EKS cluster")
    spec = omitted[0]
    other = clusters.other(spec.side)
    where = f"clusters.{spec.side}"
    path = default_kubeconfig()
    fix = f"set `{where}: {{context: NAME}}` or `{where}: {{eks: NAME}}`"
    current = _current_context(path, where, fix)
    if current in (other.access.context, other.name):
        raise ConfigError(f"`{where}` is omitted, so it would use the current context {current!r} of {path}, "
                          f"but `clusters.{other.side}` already names {current!r}: both sides would be one cluster",
                          hint=f"switch the current context (kubectl config use-context NAME), or {fix}")
    log.debug("current_context_used", side=spec.side, context=current, kubeconfig=path)
    resolved = replace(spec, access=ClusterAccess(kubeconfig=path, context=current), name=current)
    return replace(clusters, **{spec.side: resolved})


def _current_context(path: str, where: str, fix: str) -> str:
    """The ``current-context`` of the kubeconfig at ``path`` (kubectl's default), or a ConfigError."""
    import os

    import yaml

    if not os.path.exists(path):
        raise ConfigError(f"`{where}` is omitted, so the kubeconfig's current context is used, but the "
                          f"kubeconfig {path} does not exist", hint=f"set KUBECONFIG, or {fix}")
    try:
        with open(path, encoding="utf-8") as stream:
            document = yaml.safe_load(stream)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise ConfigError(f"`{where}` is omitted, but the kubeconfig {path} cannot be read: "
                          f"{shorten(str(error), 200)}", hint=fix) from None
    current = document.get("current-context") if isinstance(document, dict) else None
    if not isinstance(current, str) or not current:
        raise ConfigError(f"`{where}` is omitted, but the kubeconfig {path} has no current context",
                          hint=f"kubectl config use-context NAME, or {fix}")
    return current


def _from_kubeconfig(access: ClusterAccess, label: str):
    import os

    from kubernetes import client as k8s
    from kubernetes import config as k8s_config
    from kubernetes.config.config_exception import ConfigException

    path = os.path.expanduser(access.kubeconfig) if access.kubeconfig else default_kubeconfig()
    if not os.path.exists(path):
        raise ConfigError(f"the kubeconfig of the {label} does not exist: {path}",
                          hint="fix `clusters.<side>.kubeconfig`, or set KUBECONFIG")
    configuration = k8s.Configuration()
    try:
        k8s_config.load_kube_config(config_file=path, context=access.context,
                                    client_configuration=configuration, persist_config=False)
    except ConfigException as error:
        raise ConfigError(f"cannot use context {access.context!r} of {path} for the {label}: "
                          f"{shorten(str(error), 200)}",
                          hint="check `clusters.<side>.context` (kubectl config get-contexts)") from None
    configuration.retries = 1
    return k8s.ApiClient(configuration)


def _from_eks(access: ClusterAccess, aws: AwsConfig, *, label: str, eks_client: Any,
              sts_factory: Callable[[], Any] | None, monotonic: Callable[[], float]) -> Kube:
    from dataclasses import replace

    from kubernetes import client as k8s

    from bluegreen.adapters import aws as aws_clients

    name = access.eks or ""
    aws_for = replace(aws, region=access.region or aws.region)
    eks = eks_client or aws_clients.client(aws_for, "eks")
    description = describe_cluster_for_access(eks, name, label)
    endpoint = description.get("endpoint")
    ca_data = (description.get("certificateAuthority") or {}).get("data")
    if description.get("status") != "ACTIVE" or not endpoint:
        raise ClusterAccessError(f"the {label} is {description.get('status', 'not ready')}, not ACTIVE: "
                                 "its API cannot be used yet",
                                 hint="wait for it (bluegreen provision waits for you)")
    ca_pem = None
    if ca_data:
        try:
            ca_pem = base64.b64decode(ca_data).decode("ascii")
        except (ValueError, UnicodeDecodeError):
            ca_pem = None  # an emulator's placeholder: let TLS verification speak for itself
    source = EksTokenSource(name, sts_factory or (lambda: aws_clients.client(aws_for, "sts")), monotonic=monotonic)
    configuration = token_configuration(endpoint, source, ca_pem if ca_pem and "BEGIN" in ca_pem else None)
    return Kube(k8s.ApiClient(configuration), label, eks_endpoint=endpoint)


def describe_cluster_for_access(eks: Any, name: str, label: str) -> dict:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return eks.describe_cluster(name=name)["cluster"]
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code == "ResourceNotFoundException":
            raise ClusterAccessError(f"the {label} does not exist in EKS",
                                     hint="check `clusters.<side>.eks` and `aws.region`") from None
        raise ClusterAccessError(f"cannot describe the {label} in EKS: {code} "
                                 f"{shorten(error.response.get('Error', {}).get('Message', ''), 200)}") from None
    except BotoCoreError as error:
        raise ClusterAccessError(f"cannot reach EKS for the {label}: {shorten(str(error), 200)}") from None


Connector = Callable[[ClusterAccess, str], Kube]


class Clusters:
    """Opens (once) and closes the API clients of blue, green and the ArgoCD hub."""

    def __init__(self, config: Config, clusters: ClustersConfig, connector: Connector | None = None) -> None:
        self.config = config
        self.spec = resolve_current_context(clusters)
        self._connect = connector or (lambda access, label: connect(access, config.aws, label=label))
        self._open: dict[str, Kube] = {}

    def kube(self, side: str) -> Kube:
        if side not in self._open:
            if side == "hub":
                hub = self.spec.argocd.hub
                assert hub is not None
                self._open[side] = self._connect(hub, f"ArgoCD hub cluster ({hub.describe()})")
            else:
                spec = self.spec.side(side)
                self._open[side] = self._connect(spec.access, spec.label())
        return self._open[side]

    def argocd_kube(self, side: str) -> Kube:
        """Where the ArgoCD objects describing ``side`` live: the hub, or the cluster itself."""
        return self.kube("hub" if self.spec.argocd.mode == "hub" else side)

    @property
    def namespace(self) -> str:
        return self.spec.argocd.namespace

    def close(self) -> None:
        for kube in self._open.values():
            kube.close()
        self._open.clear()

    def __enter__(self) -> "Clusters":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
