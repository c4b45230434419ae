"""The whole sandbox in one context manager: Route 53 (moto behind a proxy that keeps changes PENDING for
``pending_seconds``), a DNS server answering from what is published (INSYNC), and the two clusters' backends,
all on loopback, all on ports picked at start. With ``clusters=True``, also the two
clusters' Kubernetes APIs (emulated), with ArgoCD's cluster secrets and Applications as GitOps Bridge
leaves them, for ``bluegreen verify``."""

from __future__ import annotations

import shutil
import tempfile
import uuid
import zlib
from pathlib import Path
from typing import Any, Iterable, Sequence

from bluegreen.sandbox.backends import Backend, ClusterBackend
from bluegreen.sandbox.caching_resolver import CachingResolver
from bluegreen.sandbox.dns_server import WeightedDnsServer
from bluegreen.sandbox.health import FakeLoadBalancer, Health
from bluegreen.sandbox.moto_server import FAKE_REGION, MotoServer, fake_aws_environ, sandbox_client
from bluegreen.sandbox.route53_proxy import Route53Proxy
from bluegreen.sandbox.zone import (DEFAULT_BLUE_ID, DEFAULT_GREEN_ID, delete_zone, list_record_sets, seed_zone,
                                    set_weights)

# Route 53 says PENDING for this long after each change (real Route 53: usually under 60 s). Short enough for
# tests, long enough that a controller which does not wait for INSYNC is caught; the demo passes about 2 s.
DEFAULT_PENDING_SECONDS = 0.3

CLUSTER_PATTERN = r"<span>CLUSTER_NAME</span><span>(?P<cluster>[^<]+)</span>"


class Sandbox:
    """``with Sandbox(records=[...], ttl=1) as sb:`` runs everything until the block ends."""

    BLUE_KUBERNETES_VERSION = "1.30"
    GREEN_KUBERNETES_VERSION = "1.31"  # green is the upgrade
    NO_SECRETS_TOKEN = "sandbox-fake-token-without-secrets"  # a fake credential of the emulated clusters only

    def __init__(self, records: Iterable[str] = ("burnham.example.com",), *, zone: str = "example.com",
                 ttl: int = 60, weights: Sequence[int] = (100, 0), blue_id: str = DEFAULT_BLUE_ID,
                 green_id: str = DEFAULT_GREEN_ID, dns_refresh_interval: float = 0.2,
                 clusters: bool = False, pending_seconds: float = DEFAULT_PENDING_SECONDS,
                 alias: bool | Iterable[str] = False, unbound: bool = False) -> None:
        self.records = [r.rstrip(".").lower() for r in records]
        self.zone = zone.rstrip(".").lower()
        self.ttl = ttl
        self.initial_weights = tuple(weights)
        self.blue_id = blue_id
        self.green_id = green_id
        self.moto = MotoServer()
        self.pending_seconds = pending_seconds
        # Which sides' record sets are aliases to their load balancer (EvaluateTargetHealth true), as external-dns
        # writes them for an ALB Ingress; the others carry the backend's address and the TTL.
        sides = ("blue", "green") if alias is True else () if alias is False else tuple(alias)
        unknown = [side for side in sides if side not in ("blue", "green")]
        if unknown:
            raise ValueError(f"alias takes True, False or sides among blue and green, got {unknown}")
        self.alias_sides = sides
        self.health = Health()
        self._load_balancers: dict[str, FakeLoadBalancer] = {}
        self.route53_proxy: Route53Proxy | None = None
        self.backends = ClusterBackend()
        self.dns: WeightedDnsServer | None = None
        self.caching_resolver: CachingResolver | None = None
        self.with_unbound = unbound
        self.unbound = None  # bluegreen.sandbox.unbound.Unbound when started with unbound=True
        self.zone_id: str | None = None
        self._dns_refresh_interval = dns_refresh_interval
        self.with_clusters = clusters
        self.kube = None  # KubeEmulators (blue, green) when started with clusters=True
        self._tmpdir: Path | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------
    def start(self) -> "Sandbox":
        try:
            self.moto.start()
            # Seeded straight into moto: the zone exists, published, before anyone looks.
            for side, backend in (("blue", self.blue), ("green", self.green)):
                self._load_balancers[side] = self.health.add_load_balancer(FakeLoadBalancer(
                    f"k8s-{side}", f"k8s-{side}-{zlib.crc32(side.encode()):010d}.{FAKE_REGION}.elb.amazonaws.com",
                    backend.host))
            self.zone_id = seed_zone(self.moto.endpoint_url, self.zone, self.records, blue_id=self.blue_id,
                                     green_id=self.green_id, blue_ip=self.blue.host, green_ip=self.green.host,
                                     ttl=self.ttl, weights=self.initial_weights,
                                     aliases={side: self._load_balancers[side].alias_target()
                                              for side in self.alias_sides})
            self.route53_proxy = Route53Proxy(self.moto.endpoint_url, pending_seconds=self.pending_seconds).start()
            self.dns = WeightedDnsServer(self.moto.endpoint_url, self.zone_id, source=self.route53_proxy,
                                         refresh_interval=self._dns_refresh_interval, health=self.health).start()
            # What real clients ask: a resolver that caches each answer for its TTL (see caching_resolver).
            self.caching_resolver = CachingResolver(self.dns.address).start()
            if self.with_unbound:
                from bluegreen.sandbox.unbound import Unbound

                # A real unbound too (raises FileNotFoundError naming the apt package when it is missing).
                self.unbound = Unbound(zone=self.zone, upstream=self.dns.address).start()
            self.backends.start()
            if self.with_clusters:
                self._start_clusters()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stops everything it started; nothing keeps running (threads joined, sockets closed, files gone)."""
        if self.kube is not None:
            self.kube.stop()
            self.kube = None
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None
        self.backends.stop()
        if self.unbound is not None:
            self.unbound.stop()
            self.unbound = None
        if self.caching_resolver is not None:
            self.caching_resolver.stop()
            self.caching_resolver = None
        if self.dns is not None:
            self.dns.stop()
            self.dns = None
        if self.route53_proxy is not None:
            self.route53_proxy.stop()
            self.route53_proxy = None
        if self.zone_id is not None and self.moto.port is not None:
            try:
                # moto keeps its zones in process memory, shared by every moto server in the process.
                delete_zone(self.moto.endpoint_url, self.zone_id)
            except Exception:  # noqa: BLE001 - best effort; the server goes next anyway
                pass
        self.moto.stop()

    def __enter__(self) -> "Sandbox":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _start_clusters(self) -> None:
        from bluegreen.sandbox.kube import NO_SECRETS, KubeEmulators, identity, seed_gitops_bridge

        self._tmpdir = Path(tempfile.mkdtemp(prefix="bluegreen-sandbox-"))
        # TLS, so that kubectl sends the kubeconfig's token (client-go sends credentials over TLS only); a second
        # token may not read Secrets, to see the 403 a badly mapped identity gets.
        self.kube = KubeEmulators(names=("blue", "green"), token="sandbox-fake-kubeconfig-token", tls=True,
                                  tokens={self.NO_SECRETS_TOKEN: identity("bluegreen-no-secrets", NO_SECRETS)})
        self.kube.start(self._tmpdir)
        for side, name, version, weight in (
                ("blue", self.blue_id, self.BLUE_KUBERNETES_VERSION, self.initial_weights[0]),
                ("green", self.green_id, self.GREEN_KUBERNETES_VERSION, self.initial_weights[1])):
            seed_gitops_bridge(self.kube[side], name, kubernetes_version=version, weight=weight,
                               region=FAKE_REGION, endpoint=self.kube[side].url)

    # -- addresses ---------------------------------------------------------------------------------------
    @property
    def endpoint_url(self) -> str:
        """Route 53 as clients should reach it: through the proxy that keeps changes PENDING."""
        if self.route53_proxy is None:
            raise RuntimeError("the sandbox is not running")
        return self.route53_proxy.endpoint_url

    @property
    def dns_address(self) -> str:
        """The weighted (authoritative) DNS server: a new weighted pick for every query."""
        return self.dns.address

    @property
    def caching_resolver_address(self) -> str:
        """The caching resolver in front of it, as clients have one: one pick per TTL."""
        return self.caching_resolver.address

    @property
    def unbound_address(self) -> str:
        """The real unbound's address (``Sandbox(unbound=True)``)."""
        if self.unbound is None:
            raise RuntimeError("this sandbox runs without unbound: start it with Sandbox(unbound=True)")
        return self.unbound.address

    @property
    def http_port(self) -> int:
        return self.backends.port

    @property
    def blue(self) -> Backend:
        return self.backends.blue

    @property
    def green(self) -> Backend:
        return self.backends.green

    def url(self, record: str | None = None, path: str = "/") -> str:
        return f"http://{record or self.records[0]}:{self.http_port}{path}"

    def aws_environ(self) -> dict[str, str]:
        """Fake credentials and region for code that builds its own boto3 clients (the CLI, in a test)."""
        return fake_aws_environ()

    # -- acting on it ------------------------------------------------------------------------------------
    def fail_green(self, mode: str = "error", delay: float = 3.0) -> None:
        self.green.set_mode(mode, delay)

    def fail_blue(self, mode: str = "error", delay: float = 3.0) -> None:
        self.blue.set_mode(mode, delay)

    def green_lacks_addon(self, flag: str = "enable_karpenter") -> None:
        """Turn an addon off on green only (its flag leaves green's cluster secret, and its Application goes),
        so that ``bluegreen verify`` finds green not ready."""
        from bluegreen.sandbox.kube import remove_addon

        remove_addon(self._clusters()["green"], self.green_id, flag)

    def _clusters(self):
        if self.kube is None:
            raise RuntimeError("this sandbox runs without clusters: start it with Sandbox(clusters=True)")
        return self.kube

    def load_balancer(self, side: str) -> FakeLoadBalancer:
        """The side's fake load balancer; ``sandbox.load_balancer("green").healthy = False`` makes Route 53
        (the DNS server) skip green's alias record sets that evaluate target health."""
        if side not in self._load_balancers:
            raise KeyError(f"no load balancer for {side!r}: the sides are blue and green")
        return self._load_balancers[side]

    def add_health_check(self, side: str) -> str:
        """Create a Route 53 health check (in moto) and attach it to every record set of ``side``; returns its id.
        Its state is a sandbox switch: :meth:`set_health_check`. The record sets are written straight to moto
        (published at once, like :meth:`set_weights`)."""
        client = sandbox_client(self.moto.endpoint_url)
        try:
            check_id = client.create_health_check(CallerReference=uuid.uuid4().hex, HealthCheckConfig={
                "Type": "HTTP", "IPAddress": getattr(self, side).host, "Port": self.http_port,
                "ResourcePath": "/", "RequestInterval": 30, "FailureThreshold": 3})["HealthCheck"]["Id"]
            set_id = self.blue_id if side == "blue" else self.green_id
            changes = [{"Action": "UPSERT", "ResourceRecordSet": dict(rrset, HealthCheckId=check_id)}
                       for rrset in list_record_sets(client, self.zone_id) if rrset.get("SetIdentifier") == set_id]
            client.change_resource_record_sets(HostedZoneId=self.zone_id, ChangeBatch={"Changes": changes})
        finally:
            client.close()
        self.health.set_check(check_id, True)
        self.route53_proxy.settle(self.zone_id)
        self.dns.refresh()
        return check_id

    def set_health_check(self, check_id: str, healthy: bool) -> None:
        """What Route 53's health checkers conclude for this check, from now on (they would take ~90 s)."""
        self.health.set_check(check_id, healthy)

    def green_rolling_out(self, updated: int = 1, replicas: int = 2) -> None:
        """Put green's workload Deployment mid-rollout (``updated`` of ``replicas`` new pods, the old ones still
        available), so that ``bluegreen verify`` finds green not ready although every replica is available."""
        from bluegreen.sandbox.kube import DEPLOYMENTS, WORKLOAD_NAMESPACE, deployment

        self._clusters()["green"].put(DEPLOYMENTS, WORKLOAD_NAMESPACE, "burnham",
                                      deployment(replicas, updated=updated, generation=2))

    def kubeconfig_without_secrets(self) -> Path:
        """A kubeconfig (contexts ``blue`` and ``green``) whose token may not read Secrets: 403 on them."""
        clusters = self._clusters()
        path = clusters.kubeconfig.with_name("kubeconfig-no-secrets.yaml")
        return clusters.write_kubeconfig(path, token=self.NO_SECRETS_TOKEN)

    @property
    def kubeconfig(self) -> Path:
        """The kubeconfig file (contexts ``blue`` and ``green``) of the emulated clusters."""
        return self._clusters().kubeconfig

    def route53(self) -> Any:
        """A boto3 Route 53 client for the sandbox's moto (with the fake credentials)."""
        return sandbox_client(self.endpoint_url)

    def set_weights(self, blue: int, green: int, *, ttl: int | None = None) -> None:
        """Change the weights directly in moto (behind bluegreen's back), and make the DNS server see it now.

        A shortcut for tests: it skips the PENDING window (a change sent to :attr:`endpoint_url` gets it), and
        changes still PENDING become INSYNC with it."""
        set_weights(self.moto.endpoint_url, self.zone_id, (blue, green), blue_id=self.blue_id, green_id=self.green_id,
                    ttl=ttl)
        self.route53_proxy.settle(self.zone_id)  # anything PENDING before is published with it
        self.dns.refresh()

    def weights(self) -> dict[str, tuple[int, int]]:
        """record name -> (blue weight, green weight), as moto has them."""
        found: dict[str, dict[str, int]] = {}
        client = self.route53()
        try:
            for rrset in list_record_sets(client, self.zone_id):
                if rrset.get("SetIdentifier") in (self.blue_id, self.green_id):
                    found.setdefault(rrset["Name"].rstrip(".").lower(), {})[rrset["SetIdentifier"]] = rrset["Weight"]
        finally:
            client.close()
        return {name: (w.get(self.blue_id, 0), w.get(self.green_id, 0)) for name, w in sorted(found.items())}

    def config_dict(self, *, name: str = "burnham", steps: Sequence[int] = (0, 50, 100), bake: Any = "2s",
                    ttl_margin: Any = "500ms", check_interval: Any = "100ms", probe_interval: Any = "100ms",
                    probe_timeout: Any = "1s", gates: dict[str, Any] | None = None, endpoint_url: str | None = None,
                    route_ttl: int | None = None, green_direct: bool = True, clusters: bool | None = None,
                    via_caching_resolver: bool = False, **route_extra: Any) -> dict[str, Any]:
        """A bluegreen config (the keys of bluegreen/config.py) that drives this sandbox.

        ``endpoint_url`` replaces moto's address, e.g. with a :class:`ThrottlingProxy` in front of it.
        ``clusters`` (default: when the sandbox runs them) adds the ``clusters`` and ``verify`` sections, so
        that ``shift`` runs ``verify`` first. ``via_caching_resolver`` makes the public probe resolve through
        the caching resolver, as a real client would, instead of asking the weighted server directly.
        """
        route: dict[str, Any] = {
            "driver": "route53",
            "hosted_zone": self.zone_id,  # the id: other sandboxes in this process may have a zone of that name
            "records": list(self.records),
            "blue": self.blue_id,
            "green": self.green_id,
        }
        if route_ttl is not None:
            route["ttl"] = route_ttl
        route.update(route_extra)
        probes = [{
            "name": "public",
            "url": self.url(),
            "nameserver": self.caching_resolver_address if via_caching_resolver else self.dns_address,
            "cluster_pattern": CLUSTER_PATTERN,
            "interval": probe_interval,
            "timeout": probe_timeout,
            # The sandbox's TTL is 1 s, so a connection lives a tenth of it, as the 1 s default is a
            # fraction of real TTLs: the probe draws from DNS often enough for a short step to see both sides.
            "max_connection_age": "100ms",
        }]
        if green_direct:
            probes.append({
                "name": "green-direct",
                "url": self.url(),
                "connect_to": f"{self.green.host}:{self.http_port}",
                "cluster_pattern": CLUSTER_PATTERN,
                "interval": probe_interval,
                "timeout": probe_timeout,
            })
        config = {
            "name": name,
            "aws": {"region": FAKE_REGION, "endpoint_url": endpoint_url or self.endpoint_url},
            "route": route,
            "shift": {"steps": list(steps), "bake": bake, "ttl_margin": ttl_margin,
                      "check_interval": check_interval},
            "probes": probes,
            "gates": dict(gates) if gates is not None else {
                "min_success_ratio": 0.95, "max_p95_latency": "1s", "min_samples": 5,
                "max_consecutive_failures": 3,
            },
        }
        if (self.kube is not None) if clusters is None else clusters:
            config.update(self.clusters_config())
        return config

    def clusters_config(self) -> dict[str, Any]:
        """The ``clusters`` and ``verify`` config sections for the emulated clusters (in-cluster ArgoCD)."""
        from bluegreen.sandbox.kube import ARGOCD_NAMESPACE, WORKLOAD_NAMESPACE

        path = str(self.kubeconfig)
        return {
            "clusters": {
                "blue": {"kubeconfig": path, "context": "blue", "name": self.blue_id},
                "green": {"kubeconfig": path, "context": "green", "name": self.green_id},
                "argocd": {"mode": "in-cluster", "namespace": ARGOCD_NAMESPACE},
            },
            "verify": {"workload_namespaces": [WORKLOAD_NAMESPACE]},
        }
