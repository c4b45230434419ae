"""Weight routers for Route 53 records that external-dns owns: the weight is changed at its source.

external-dns puts back, on its next sync (every minute by default), any weight written into Route 53
behind its back. So for records it owns, bluegreen writes the weight where external-dns reads it:

- ``route.driver: external-dns``: the ``<prefix>/aws-weight`` annotation of the Ingress or Service objects
  named in ``route.objects``, in each side's cluster. ``<prefix>/set-identifier`` on each object must be
  the side's SetIdentifier (``route.blue`` / ``route.green``): bluegreen refuses otherwise.
- ``route.driver: argocd``: the weight annotation (``route53_weight``) of each side's ArgoCD cluster
  secret, which the ApplicationSets render into that Ingress annotation (the EKS Blueprints pattern).

Reading and verifying go through Route 53 with :class:`~bluegreen.adapters.route53.Route53Router`, so the
records are validated exactly as with the ``route53`` driver. ``verify`` polls Route 53 until the new
weights appear, bounded by ``route.sync_timeout``; external-dns's own change id is unknown to us, so the
proof is the read-back, not INSYNC.

Only the weight annotation is ever logged: other annotation values may be sensitive (the pattern keeps a
password hash on the cluster secret), and a secret's ``data`` is never read (see ``argocd``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import structlog

from bluegreen.config import Config, RouteConfig, _duration, check_keys
from bluegreen.core.clock import Clock, SystemClock
from bluegreen.core.durations import format_duration
from bluegreen.core.ports import WeightRouter
from bluegreen.core.weights import SIDES, LiveState, SideWeights
from bluegreen.errors import BlueGreenError, ConfigError, PreflightError, RouterError

log = structlog.get_logger("bluegreen.router")

DEFAULT_PREFIX = "external-dns.alpha.kubernetes.io"
NEW_PREFIX = "external-dns.kubernetes.io"  # the default from external-dns v0.22.0
DEFAULT_WEIGHT_ANNOTATION = "route53_weight"
DEFAULT_SYNC_TIMEOUT = 180.0  # external-dns syncs every minute by default; allow two misses
DEFAULT_POLL_INTERVAL = 5.0  # one Route 53 read per record per poll, well inside the rate limit
KINDS = ("ingress", "service")

# Which of the driver keys (RouteConfig.extra) each driver reads; any other is refused, naming the key.
DRIVER_KEYS: Mapping[str, frozenset[str]] = {
    "route53": frozenset(),
    "external-dns": frozenset({"annotation_prefix", "objects", "namespace", "sync_timeout"}),
    "argocd": frozenset({"weight_annotation", "namespace", "secrets", "sync_timeout"}),
}

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")
_K8S_NAME = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$")
_ANNOTATION_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$")


# -- config ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ObjectRef:
    """An Ingress or Service whose annotations external-dns turns into one side's weighted record."""

    side: str
    kind: str  # ingress | service
    namespace: str
    name: str

    def describe(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


def check_driver_keys(route: RouteConfig) -> None:
    allowed = DRIVER_KEYS[route.driver]
    for key in sorted(route.extra):
        if key not in allowed:
            users = [d for d, keys in DRIVER_KEYS.items() if key in keys]
            raise ConfigError(f"`route.{key}` is not used with route.driver: {route.driver}",
                              hint=f"it belongs to route.driver: {' or '.join(users)}; remove it or change the driver")


def sync_timeout(route: RouteConfig) -> float:
    value = _duration(route.extra, "sync_timeout", "route", DEFAULT_SYNC_TIMEOUT)
    if value <= 0:
        raise ConfigError("`route.sync_timeout` must be greater than zero",
                          hint="external-dns syncs every minute by default; e.g. sync_timeout: 3m")
    return value


def annotation_prefix(route: RouteConfig) -> str:
    raw = route.extra.get("annotation_prefix", DEFAULT_PREFIX)
    prefix = raw.strip().rstrip("/") if isinstance(raw, str) else ""
    if not prefix or not _DNS_SUBDOMAIN.match(prefix) or len(prefix) > 253:
        raise ConfigError(
            f"`route.annotation_prefix` must be a DNS subdomain such as {DEFAULT_PREFIX}, got {raw!r}",
            hint=f"external-dns before v0.22 reads {DEFAULT_PREFIX}/...; v0.22+ reads {NEW_PREFIX}/... "
                 "(or what its --annotation-prefix says)")
    return prefix


def _namespace(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _K8S_NAME.match(value.strip()) or len(value.strip()) > 63:
        raise ConfigError(f"`{where}` must be a Kubernetes namespace name, got {value!r}")
    return value.strip()


def parse_objects(route: RouteConfig) -> dict[str, tuple[ObjectRef, ...]]:
    """``route.objects``: a list (the same objects in both clusters) or ``{blue: [...], green: [...]}``.
    Each item is ``{kind: ingress|service, namespace: NS, name: NAME}`` (kind defaults to ingress,
    namespace to ``route.namespace``) or the string ``KIND/NAMESPACE/NAME``."""
    raw = route.extra.get("objects")
    example = "objects: {blue: [{kind: ingress, namespace: team-burnham, name: burnham}], green: [...]}"
    if raw is None:
        raise ConfigError("`route.objects` is required with route.driver: external-dns",
                          hint=f"name the Ingress or Service of each side that external-dns reads, e.g. {example}")
    default_ns = route.extra.get("namespace")
    if default_ns is not None:
        default_ns = _namespace(default_ns, "route.namespace")
    if isinstance(raw, list):
        per_side = {side: (raw, "route.objects") for side in SIDES}
    elif isinstance(raw, Mapping):
        check_keys(raw, set(SIDES), "route.objects")
        per_side = {side: (raw.get(side), f"route.objects.{side}") for side in SIDES}
    else:
        raise ConfigError(f"`route.objects` must be a list or a mapping with blue and green, got {type(raw).__name__}",
                          hint=f"e.g. {example}")
    result: dict[str, tuple[ObjectRef, ...]] = {}
    for side, (items, where) in per_side.items():
        if not isinstance(items, list) or not items:
            raise ConfigError(f"`{where}` must be a non-empty list of Ingress or Service objects",
                              hint=f"e.g. {example}")
        refs: list[ObjectRef] = []
        for i, item in enumerate(items):
            ref = _object_ref(item, side, f"{where}[{i}]", default_ns)
            if ref in refs:
                raise ConfigError(f"`{where}[{i}]`: {ref.describe()} is listed twice")
            refs.append(ref)
        result[side] = tuple(refs)
    return result


def _object_ref(item: Any, side: str, where: str, default_ns: str | None) -> ObjectRef:
    if isinstance(item, str):
        parts = item.strip().split("/")
        if len(parts) != 3:
            raise ConfigError(f"`{where}` must be KIND/NAMESPACE/NAME (e.g. ingress/team-burnham/burnham), "
                              f"got {item!r}")
        item = {"kind": parts[0], "namespace": parts[1], "name": parts[2]}
    elif not isinstance(item, Mapping):
        raise ConfigError(f"`{where}` must be a mapping with kind, namespace and name, got {item!r}")
    check_keys(item, {"kind", "namespace", "name"}, where)
    kind = str(item.get("kind", "ingress")).strip().lower()
    if kind not in KINDS:
        raise ConfigError(f"`{where}.kind` must be ingress or service, got {item.get('kind')!r}",
                          hint="external-dns reads weights from Ingress and Service annotations")
    name = item.get("name")
    if not isinstance(name, str) or not _K8S_NAME.match(name.strip()):
        raise ConfigError(f"`{where}.name` must be a Kubernetes object name, got {name!r}")
    namespace = item.get("namespace", default_ns)
    if namespace is None:
        raise ConfigError(f"`{where}.namespace` is missing", hint="set it on the object, or `route.namespace` for all")
    return ObjectRef(side=side, kind=kind, namespace=_namespace(namespace, f"{where}.namespace"), name=name.strip())


def weight_annotation(route: RouteConfig) -> str:
    raw = route.extra.get("weight_annotation", DEFAULT_WEIGHT_ANNOTATION)
    key = raw.strip() if isinstance(raw, str) else ""
    prefix, _, name = key.rpartition("/")
    if not key or not _ANNOTATION_NAME.match(name) or (prefix and not _DNS_SUBDOMAIN.match(prefix)):
        raise ConfigError(f"`route.weight_annotation` must be an annotation key such as {DEFAULT_WEIGHT_ANNOTATION}, "
                          f"got {raw!r}")
    return key


def secret_names(route: RouteConfig) -> dict[str, str]:
    """``route.secrets: {blue: NAME, green: NAME}``: the ArgoCD cluster secrets by name (optional)."""
    raw = route.extra.get("secrets")
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"`route.secrets` must map blue and green to ArgoCD cluster secret names, got {raw!r}",
                          hint="e.g. secrets: {blue: eks-blueprint-blue, green: eks-blueprint-green}")
    check_keys(raw, set(SIDES), "route.secrets")
    names = {}
    for side, name in raw.items():
        if not isinstance(name, str) or not _K8S_NAME.match(name.strip()):
            raise ConfigError(f"`route.secrets.{side}` must be a Secret name, got {name!r}")
        names[side] = name.strip()
    return names


# -- the write order -------------------------------------------------------------------------------
def write_order(live: LiveState, weights: SideWeights) -> tuple[str, str]:
    """The side that gains weight is written first. Pure.

    Each side's weight reaches Route 53 on its own (one external-dns per cluster, each syncing on its own
    schedule), so between the two writes Route 53 may hold the new weight of the first side and the old
    weight of the second. Writing the gaining side first keeps that mix from ever being all-zero (which
    Route 53 answers as a 50/50 split): the gaining side's new weight is above zero; and when neither side
    gains, the second side's old weight is at least its new one, so the sum stays at least the new sum."""

    def gain(side: str) -> int:
        old = max((r.weights.of(side) for r in live.records), default=0)
        return weights.of(side) - old

    first = max(SIDES, key=gain)  # ties: blue first (max keeps the first)
    return first, ("green" if first == "blue" else "blue")


# -- the routers -----------------------------------------------------------------------------------
class _Write:
    """One annotation to write: where, what it holds now, and how to write it."""

    def __init__(self, side: str, where: str, current: str | None,
                 apply: Callable[[str, Mapping[str, str]], str]) -> None:
        self.side = side
        self.where = where  # cluster/kind/namespace/name, for messages and change ids
        self.current = current
        self.apply = apply  # (weight, other annotations) -> the resourceVersion after the write


class _SourceRouter:
    """Read and verify through Route 53; write at the source (subclasses say where)."""

    driver = ""
    source = ""  # what holds the weight, for messages

    def __init__(self, config: Config, *, clock: Clock | None = None, route53: Any = None,
                 connect: Callable[[Any, str], Any] | None = None,
                 poll_interval: float = DEFAULT_POLL_INTERVAL) -> None:
        from bluegreen.clusters_config import parse_clusters

        self.config = config
        self.route = config.route
        check_driver_keys(self.route)
        self.sync_timeout = sync_timeout(self.route)
        self.clusters_config = parse_clusters(config)
        self.clock = clock or SystemClock()
        if route53 is None:
            from bluegreen.adapters.route53 import Route53Router

            route53 = Route53Router(self.route, config.aws, clock=self.clock)
        self.route53 = route53
        self.poll_interval = poll_interval
        self._connect = connect
        self._clusters: Any = None

    # -- clusters ------------------------------------------------------------------------------------
    @property
    def clusters(self):
        if self._clusters is None:
            from bluegreen.adapters.kube import Clusters

            self._clusters = Clusters(self.config, self.clusters_config, connector=self._connect)
        return self._clusters

    def close(self) -> None:
        if self._clusters is not None:
            self._clusters.close()

    # -- read -----------------------------------------------------------------------------------------
    def read(self) -> LiveState:
        return self.route53.read()

    def external_dns_owners(self) -> dict[str, str]:
        return self.route53.external_dns_owners()

    # -- set ------------------------------------------------------------------------------------------
    def preflight(self) -> None:
        """Check every object the driver writes (exists, identifies the right side). Writes nothing."""
        self._writes()

    def _writes(self) -> list[_Write]:
        raise NotImplementedError

    def _check_ttl(self, ttl: int | None) -> None:
        pass

    def _ttl_annotations(self, ttl: int | None) -> dict[str, str]:
        return {}

    def set(self, weights: SideWeights, *, ttl: int | None = None) -> list[str]:
        if weights.all_zero:
            # Route 53 answers an all-zero group as an equal split: half the traffic to the side meant to be off.
            raise RouterError(f"refusing to write an all-zero weight group ({weights})")
        self._check_ttl(ttl)
        writes = self._writes()  # every object checked before anything is written
        order = write_order(self.route53.read(), weights)
        extra = self._ttl_annotations(ttl)
        changes: list[str] = []
        for side in order:
            for write in (w for w in writes if w.side == side):
                value = str(weights.of(side))
                if write.current == value and not extra:
                    continue
                try:
                    version = write.apply(value, extra)
                except BlueGreenError as error:
                    done = ", ".join(c.split("@")[0].removeprefix("annotation:") for c in changes) or "nothing"
                    raise RouterError(f"writing the {side} weight on {write.where} failed (already written: {done}): "
                                      f"{error.message}", hint=error.hint) from error
                change_id = f"annotation:{write.where}@{version}"
                changes.append(change_id)
                log.info("weight_annotation_written", driver=self.driver, side=side, object=write.where,
                         key=self._weight_key(), weight=value, ttl=ttl, change_id=change_id)
        return changes

    def _weight_key(self) -> str:
        raise NotImplementedError

    # -- verify ---------------------------------------------------------------------------------------
    def verify(self, weights: SideWeights, changes: Sequence[str], *, ttl: int | None = None) -> None:
        started = self.clock.monotonic()
        deadline = started + self.sync_timeout
        polls = 0
        while True:
            polls += 1
            try:
                wrong = self._mismatches(self.route53.read(), weights, ttl)
            except PreflightError as error:
                # Each cluster's external-dns syncs its own record on its own schedule, so while a TTL change
                # travels the group's TTLs may disagree for a moment: not synced yet, not a failure.
                wrong = [error.message]
            if not wrong:
                log.info("weights_synced", driver=self.driver, weights=str(weights), ttl=ttl, polls=polls,
                         seconds=round(self.clock.monotonic() - started, 3))
                return
            remaining = deadline - self.clock.monotonic()
            if remaining <= 0:
                raise self._not_synced(weights, wrong)
            log.debug("waiting_for_sync", driver=self.driver, weights=str(weights), remaining=round(remaining, 1))
            self.clock.sleep(min(self.poll_interval, remaining))

    def _mismatches(self, live: LiveState, weights: SideWeights, ttl: int | None) -> list[str]:
        wrong = [f"{r.name} {r.type} {r.weights}" for r in live.records if r.weights != weights]
        if ttl is not None:
            # Alias records have no TTL of their own (the target's applies), so only sets with one are checked.
            wrong += [f"{p.name} {p.type} ttl={s['TTL']}" for p in getattr(self.route53, "_pairs", [])
                      for s in p.sets() if "TTL" in s and s["TTL"] != ttl]
        return wrong

    def _not_synced(self, weights: SideWeights, wrong: list[str]) -> RouterError:
        reverted = self._reverted(weights)
        message = (f"the {self.source} was written ({weights}) but external-dns did not sync it into Route 53 "
                   f"within {format_duration(self.sync_timeout)} (route.sync_timeout): Route 53 still shows "
                   f"{', '.join(wrong[:5])}")
        if reverted:
            message += f"; meanwhile the annotation was changed back on {', '.join(reverted)}"
        return RouterError(message, hint=self._sync_hint(bool(reverted)))

    def _reverted(self, weights: SideWeights) -> list[str]:
        """Objects whose weight annotation no longer holds what we wrote (a diagnosis: errors are ignored)."""
        try:
            return [w.where for w in self._writes() if w.current != str(weights.of(w.side))]
        except BlueGreenError:
            return []

    def _sync_hint(self, reverted: bool) -> str:
        raise NotImplementedError


class ExternalDnsRouter(_SourceRouter):
    """Weights on the ``<prefix>/aws-weight`` annotation of Ingress or Service objects (``route.objects``)."""

    driver = "external-dns"

    def __init__(self, config: Config, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.prefix = annotation_prefix(self.route)
        self.objects = parse_objects(self.route)
        self.source = f"{self.prefix}/aws-weight annotation"

    def _weight_key(self) -> str:
        return f"{self.prefix}/aws-weight"

    def _ttl_annotations(self, ttl: int | None) -> dict[str, str]:
        return {} if ttl is None else {f"{self.prefix}/ttl": str(ttl)}

    def _writes(self) -> list[_Write]:
        from bluegreen.adapters import argocd

        writes, problems = [], []
        ident_key = f"{self.prefix}/set-identifier"
        for side in SIDES:
            spec = self.clusters_config.side(side)
            kube = self.clusters.kube(side)
            for ref in self.objects[side]:
                meta = argocd.read_object_meta(kube, ref.kind, ref.namespace, ref.name)
                where = f"{spec.name}/{ref.kind}/{ref.namespace}/{ref.name}"
                found = meta.annotations.get(ident_key)
                expected = self.route.identifier(side)
                if found != expected:
                    problems.append(self._identifier_problem(side, where, found, expected, meta.annotations))
                    continue
                writes.append(_Write(side, where, meta.annotations.get(self._weight_key()), self._writer(kube, ref)))
        if problems:
            raise PreflightError(
                "refusing to write weights: " + "; ".join(problems),
                hint=f"each object in route.objects.<side> must carry {ident_key} equal to route.<side> (the "
                     f"record's SetIdentifier), or external-dns writes a different record than the one bluegreen "
                     f"reads; external-dns v0.22+ reads {NEW_PREFIX}/... (set route.annotation_prefix)")
        return writes

    def _writer(self, kube: Any, ref: ObjectRef) -> Callable[[str, Mapping[str, str]], str]:
        def apply(value: str, extra: Mapping[str, str]) -> str:
            from bluegreen.adapters import argocd

            # One merge patch: the weight and the TTL change together.
            meta = argocd.patch_object_meta(kube, ref.kind, ref.namespace, ref.name,
                                            {self._weight_key(): value, **extra})
            return meta.resource_version

        return apply

    def _identifier_problem(self, side: str, where: str, found: str | None, expected: str,
                            annotations: Mapping[str, str]) -> str:
        if found is not None:
            return f"{where} has {self.prefix}/set-identifier={found!r}, but route.{side} is {expected!r}"
        others = sorted({k.rsplit("/", 1)[0] for k in annotations if k.endswith("/set-identifier")})
        if others:
            return (f"{where} has no {self.prefix}/set-identifier but has {others[0]}/set-identifier: "
                    f"set route.annotation_prefix: {others[0]}")
        return f"{where} has no {self.prefix}/set-identifier annotation (external-dns makes no weighted record of it)"

    def _sync_hint(self, reverted: bool) -> str:
        if reverted:
            return ("something rewrites the annotation, e.g. ArgoCD self-heal on an Ingress it manages: ignore the "
                    "annotation there (ignoreDifferences) or use route.driver: argocd")
        return ("check that external-dns runs in both clusters and owns these records (its logs; --interval, "
                "--policy, --domain-filter, --txt-owner-id); raise route.sync_timeout if it syncs slowly. "
                "bluegreen rolls the annotations back")


class ArgoCdRouter(_SourceRouter):
    """Weights on an annotation (``route53_weight``) of each side's ArgoCD cluster secret."""

    driver = "argocd"

    def __init__(self, config: Config, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        if self.route.ttl is not None:
            raise ConfigError("`route.ttl` cannot be used with route.driver: argocd",
                              hint="the record's TTL is rendered by the ApplicationSet (the ttl annotation of the "
                                   "Ingress); set it there, and remove route.ttl")
        self.key = weight_annotation(self.route)
        self.names = secret_names(self.route)
        for side, name in self.names.items():
            configured = self.clusters_config.side(side).argocd_secret
            if configured and configured != name:
                raise ConfigError(f"`route.secrets.{side}` ({name}) and `clusters.{side}.argocd_secret` "
                                  f"({configured}) name different secrets", hint="keep one of them")
        namespace = self.route.extra.get("namespace")
        self.namespace = (_namespace(namespace, "route.namespace") if namespace is not None
                          else self.clusters_config.argocd.namespace)
        self.source = f"{self.key} annotation of the ArgoCD cluster secrets"

    def _weight_key(self) -> str:
        return self.key

    def _check_ttl(self, ttl: int | None) -> None:
        if ttl is not None:
            raise RouterError("the argocd driver cannot change the TTL",
                              hint="the TTL is rendered by the ApplicationSet; remove route.ttl")

    def _where(self, side: str) -> str:
        if self.clusters_config.argocd.mode == "hub":
            return "hub"
        return self.clusters_config.side(side).name

    def _writes(self) -> list[_Write]:
        from dataclasses import replace

        from bluegreen.adapters import argocd
        from bluegreen.adapters.argocd import pick_cluster_secret

        writes, problems, seen = [], [], {}
        for side in SIDES:
            spec = self.clusters_config.side(side)
            kube = self.clusters.argocd_kube(side)
            name = self.names.get(side) or spec.argocd_secret
            if name:
                secret = argocd.read_cluster_secret(kube, self.namespace, name)
                found = [name] if secret else []
            else:
                secrets = argocd.list_cluster_secrets(kube, self.namespace)
                secret = pick_cluster_secret(secrets, replace(spec, argocd_secret=None),
                                             self.clusters_config.argocd.mode)
                found = [s.name for s in secrets]
            if secret is None:
                want = f"named {name!r}" if name else f"for cluster {spec.name!r}"
                problems.append(f"no ArgoCD cluster secret {want} in {self._where(side)} namespace {self.namespace} "
                                f"(found: {', '.join(found) or 'none'}); set route.secrets.{side} or "
                                f"clusters.{side}.name")
                continue
            where = f"{self._where(side)}/secret/{secret.namespace}/{secret.name}"
            if where in seen:
                problems.append(f"blue and green both resolve to {where}; set route.secrets")
                continue
            seen[where] = side
            if self.key not in secret.annotations:
                problems.append(f"{where} has no {self.key} annotation, so no ApplicationSet renders it; "
                                f"set route.weight_annotation to the key they read")
                continue
            writes.append(_Write(side, where, secret.annotations.get(self.key), self._writer(kube, secret)))
        if problems:
            raise PreflightError("refusing to write weights: " + "; ".join(problems),
                                 hint="see clusters.argocd (mode, namespace) and route.secrets in the README")
        return writes

    def _writer(self, kube: Any, secret: Any) -> Callable[[str, Mapping[str, str]], str]:
        def apply(value: str, extra: Mapping[str, str]) -> str:
            from bluegreen.adapters import argocd

            return argocd.set_cluster_secret_annotation(kube, secret, self.key, value).resource_version

        return apply

    def _sync_hint(self, reverted: bool) -> str:
        if reverted:
            return ("something rewrites the cluster secret's annotation (a terraform apply of the GitOps Bridge "
                    "with its own route53_weight?): change the weight in one place only")
        return ("check the chain: the ApplicationSet renders the annotation into the Ingress's aws-weight, the "
                "Applications synced, external-dns runs and owns the records (its logs); raise route.sync_timeout "
                "if it is slow. bluegreen rolls the annotations back")


def build_router(config: Config, *, clock: Clock | None = None) -> WeightRouter:
    """The weight router for ``route.driver``. The route53 driver never imports kubernetes."""
    driver = config.route.driver
    if driver == "route53":
        check_driver_keys(config.route)
        from bluegreen.adapters.route53 import Route53Router

        return Route53Router(config.route, config.aws, clock=clock)
    if driver == "external-dns":
        return ExternalDnsRouter(config, clock=clock)
    if driver == "argocd":
        return ArgoCdRouter(config, clock=clock)
    raise ConfigError(f"`route.driver` must be route53, external-dns or argocd, got {driver!r}")
