"""The ``route`` section: which records, which SetIdentifier is which side, and the weight driver's own keys
(external-dns objects, ArgoCD secrets), all checked at load. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from bluegreen.config.fields import Fields, check_keys, normalize_record_name
from bluegreen.core.weights import SIDES
from bluegreen.errors import ConfigError

ROUTE_DRIVERS = ("route53", "external-dns", "argocd")
DEFAULT_PREFIX = "external-dns.alpha.kubernetes.io"
NEW_PREFIX = "external-dns.kubernetes.io"  # the default from external-dns v0.22.0
DEFAULT_WEIGHT_ANNOTATION = "route53_weight"
DEFAULT_SYNC_TIMEOUT = 180.0  # external-dns syncs every minute by default; allow two misses
KINDS = ("ingress", "service")

_COMMON_KEYS = {"driver", "hosted_zone", "records", "blue", "green", "ttl", "alias_ttl", "insync_timeout",
                "retry_timeout", "txt_prefix", "txt_suffix"}
# Which driver keys each driver reads; any other is refused, naming the key and the driver it belongs to.
DRIVER_KEYS: Mapping[str, frozenset[str]] = {
    "route53": frozenset(),
    "external-dns": frozenset({"annotation_prefix", "objects", "namespace", "sync_timeout"}),
    "argocd": frozenset({"weight_annotation", "namespace", "secrets", "sync_timeout"}),
}
_ALL_DRIVER_KEYS = frozenset().union(*DRIVER_KEYS.values())
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")
_K8S_NAME = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$")
_ANNOTATION_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$")
_TXT_AFFIX = re.compile(r"^[A-Za-z0-9_.%{}-]*$")


@dataclass(frozen=True)
class RecordRef:
    name: str  # fully qualified, lower case, IDNA, no trailing dot
    zone: str | None = None  # zone name or id; None: route.hosted_zone


@dataclass(frozen=True)
class ObjectRef:
    """An Ingress or Service whose annotations external-dns turns into one side's weighted record."""

    side: str
    kind: str  # ingress | service
    namespace: str
    name: str

    def describe(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


@dataclass(frozen=True)
class ExternalDnsSettings:
    prefix: str
    objects: Mapping[str, tuple[ObjectRef, ...]]  # side -> objects
    sync_timeout: float


@dataclass(frozen=True)
class ArgoCdSettings:
    weight_annotation: str
    namespace: str | None  # None: clusters.argocd.namespace
    secrets: Mapping[str, str]  # side -> secret name (optional)
    sync_timeout: float


@dataclass(frozen=True)
class RouteConfig:
    driver: str
    hosted_zone: str | None
    records: tuple[RecordRef, ...]
    blue: str
    green: str
    ttl: int | None = None
    alias_ttl: int = 60  # an alias record's answers are cached for the target's TTL (60 s for ELB)
    insync_timeout: float = 300.0
    retry_timeout: float = 60.0
    # external-dns's --txt-prefix / --txt-suffix (may hold %{record_type}), to find its ownership records.
    txt_prefix: str = ""
    txt_suffix: str = ""
    external_dns: ExternalDnsSettings | None = None
    argocd: ArgoCdSettings | None = None

    def identifier(self, side: str) -> str:
        return self.blue if side == "blue" else self.green


def parse_route(raw: Any) -> RouteConfig:
    fields = Fields(raw, "route", _COMMON_KEYS | _ALL_DRIVER_KEYS, required=True)
    driver = fields.choice("driver", ROUTE_DRIVERS, "route53")
    for key in sorted(k for k in fields.raw if k in _ALL_DRIVER_KEYS and k not in DRIVER_KEYS[driver]):
        users = [d for d, keys in DRIVER_KEYS.items() if key in keys]
        raise ConfigError(f"`route.{key}` is not used with route.driver: {driver}",
                          hint=f"it belongs to route.driver: {' or '.join(users)}; remove it or change the driver")
    zone = fields.text("hosted_zone")
    records = _records(fields.raw.get("records"), zone)
    blue = fields.text("blue", required=True, hint="the SetIdentifier of blue's weighted record")
    green = fields.text("green", required=True, hint="the SetIdentifier of green's weighted record")
    if blue == green:
        raise ConfigError(f"`route.blue` and `route.green` are both {blue!r}: they must name different "
                          "SetIdentifiers")
    ttl = fields.integer("ttl", lo=0, hi=2147483647)
    if driver == "argocd" and ttl is not None:
        raise ConfigError("`route.ttl` cannot be used with route.driver: argocd",
                          hint="the record's TTL is rendered by the ApplicationSet (the ttl annotation of the "
                               "Ingress); set it there, and remove route.ttl")
    txt = {key: _txt_affix(fields, key) for key in ("txt_prefix", "txt_suffix")}
    return RouteConfig(
        driver=driver, hosted_zone=zone, records=records, blue=blue, green=green, ttl=ttl,
        alias_ttl=fields.integer("alias_ttl", lo=0, hi=86400, default=60),
        insync_timeout=fields.duration("insync_timeout", 300.0, above_zero=True),
        retry_timeout=fields.duration("retry_timeout", 60.0, above_zero=True, hi=3600.0),
        txt_prefix=txt["txt_prefix"], txt_suffix=txt["txt_suffix"],
        external_dns=_external_dns(fields) if driver == "external-dns" else None,
        argocd=_argocd(fields) if driver == "argocd" else None,
    )


def _txt_affix(fields: Fields, key: str) -> str:
    value = fields.get(key, "")
    if not isinstance(value, str) or not _TXT_AFFIX.match(value):
        raise ConfigError(f"`route.{key}` must be external-dns's --{key.replace('_', '-')} value (letters, digits, "
                          f"-, _, . and %{{record_type}}), got {value!r}")
    return value


def _records(raw: Any, zone: str | None) -> tuple[RecordRef, ...]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError("`route.records` must be a non-empty list of record names",
                          hint="e.g. records: [burnham.example.com]")
    records: list[RecordRef] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        where = f"route.records[{i}]"
        if isinstance(item, str):
            ref = RecordRef(normalize_record_name(item, where))
        elif isinstance(item, Mapping):
            fields = Fields(item, where, {"name", "zone"})
            ref = RecordRef(normalize_record_name(fields.text("name", required=True), where), fields.text("zone"))
        else:
            raise ConfigError(f"`{where}` must be a record name or a mapping with `name` (and `zone`)")
        if ref.zone is None and zone is None:
            raise ConfigError(f"`{where}` has no zone", hint="set `route.hosted_zone` or `zone:` on the record")
        if ref.name in seen:
            raise ConfigError(f"`{where}`: record {ref.name} is listed twice")
        seen.add(ref.name)
        records.append(ref)
    return tuple(records)


def _sync_timeout(fields: Fields) -> float:
    return fields.duration("sync_timeout", DEFAULT_SYNC_TIMEOUT, above_zero=True)


def _namespace(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _K8S_NAME.match(value.strip()) or len(value.strip()) > 63:
        raise ConfigError(f"`{where}` must be a Kubernetes namespace name, got {value!r}")
    return value.strip()


def _external_dns(fields: Fields) -> ExternalDnsSettings:
    raw_prefix = fields.get("annotation_prefix", DEFAULT_PREFIX)
    prefix = raw_prefix.strip().rstrip("/") if isinstance(raw_prefix, str) else ""
    if not prefix or not _DNS_SUBDOMAIN.match(prefix) or len(prefix) > 253:
        raise ConfigError(
            f"`route.annotation_prefix` must be a DNS subdomain such as {DEFAULT_PREFIX}, got {raw_prefix!r}",
            hint=f"external-dns before v0.22 reads {DEFAULT_PREFIX}/...; v0.22+ reads {NEW_PREFIX}/... "
                 "(or what its --annotation-prefix says)")
    return ExternalDnsSettings(prefix=prefix, objects=_objects(fields), sync_timeout=_sync_timeout(fields))


def _objects(fields: Fields) -> dict[str, tuple[ObjectRef, ...]]:
    """``route.objects``: a list (the same objects in both clusters) or ``{blue: [...], green: [...]}``.
    Each item is ``{kind: ingress|service, namespace: NS, name: NAME}`` (kind defaults to ingress,
    namespace to ``route.namespace``) or the string ``KIND/NAMESPACE/NAME``."""
    raw = fields.get("objects")
    example = "objects: {blue: [{kind: ingress, namespace: team-burnham, name: burnham}], green: [...]}"
    if raw is None:
        raise ConfigError("`route.objects` is required with route.driver: external-dns",
                          hint=f"name the Ingress or Service of each side that external-dns reads, e.g. {example}")
    default_ns = fields.get("namespace")
    if default_ns is not None:
        default_ns = _namespace(default_ns, "route.namespace")
    if isinstance(raw, list):
        per_side = {side: (raw, "route.objects") for side in SIDES}
    elif isinstance(raw, Mapping):
        check_keys(raw, SIDES, "route.objects")
        per_side = {side: (raw.get(side), f"route.objects.{side}") for side in SIDES}
    else:
        raise ConfigError(f"`route.objects` must be a list or a mapping with blue and green, got "
                          f"{type(raw).__name__}", hint=f"e.g. {example}")
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


def _argocd(fields: Fields) -> ArgoCdSettings:
    raw_key = fields.get("weight_annotation", DEFAULT_WEIGHT_ANNOTATION)
    key = raw_key.strip() if isinstance(raw_key, str) else ""
    prefix, _, name = key.rpartition("/")
    if not key or not _ANNOTATION_NAME.match(name) or (prefix and not _DNS_SUBDOMAIN.match(prefix)):
        raise ConfigError(f"`route.weight_annotation` must be an annotation key such as "
                          f"{DEFAULT_WEIGHT_ANNOTATION}, got {raw_key!r}")
    secrets: dict[str, str] = {}
    raw_secrets = fields.get("secrets")
    if raw_secrets is not None:
        if not isinstance(raw_secrets, Mapping):
            raise ConfigError(f"`route.secrets` must map blue and green to ArgoCD cluster secret names, got "
                              f"{raw_secrets!r}", hint="e.g. secrets: {blue: eks-blueprint-blue, green: eks-blueprint-green}")
        check_keys(raw_secrets, SIDES, "route.secrets")
        for side, secret in raw_secrets.items():
            if not isinstance(secret, str) or not _K8S_NAME.match(secret.strip()):
                raise ConfigError(f"`route.secrets.{side}` must be a Secret name, got {secret!r}")
            secrets[side] = secret.strip()
    namespace = fields.get("namespace")
    return ArgoCdSettings(weight_annotation=key,
                          namespace=None if namespace is None else _namespace(namespace, "route.namespace"),
                          secrets=secrets, sync_timeout=_sync_timeout(fields))
