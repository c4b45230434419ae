"""Configuration: load the YAML file, check every key and type, and turn it into frozen dataclasses.

Every problem is a :class:`ConfigError` that names the key and says how to fix it (exit 2). Nothing here
talks to AWS or Kubernetes: a bad config is refused before any client is built.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from bluegreen.core.durations import parse_duration
from bluegreen.core.verdict import Gates
from bluegreen.core.weights import PlanError, parse_steps
from bluegreen.errors import ConfigError

DEFAULT_CONFIG = "bluegreen.yaml"
CONFIG_ENV = "BLUEGREEN_CONFIG"
ROUTE_DRIVERS = ("route53", "external-dns", "argocd")
_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class AwsConfig:
    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    # Route 53 allows 5 requests/s per account; we pace ourselves below it, with a small burst.
    route53_requests_per_second: float = 4.0


@dataclass(frozen=True)
class RecordRef:
    name: str  # fully qualified, lower case, no trailing dot
    zone: str | None = None  # zone name or id; None: route.hosted_zone


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
    extra: Mapping[str, Any] = field(default_factory=dict)  # driver-specific keys (external-dns, argocd)

    def identifier(self, side: str) -> str:
        return self.blue if side == "blue" else self.green


@dataclass(frozen=True)
class ShiftConfig:
    steps: tuple[int, ...] = (0, 10, 50, 100)
    bake: float = 30.0
    ttl_margin: float = 5.0
    check_interval: float = 0.25
    on_interrupt: str = "rollback"


@dataclass(frozen=True)
class ProbeConfig:
    name: str
    url: str
    method: str = "GET"
    expect_status: tuple[int, ...] = (200,)
    body_contains: str | None = None
    cluster_pattern: str | None = None
    cluster_header: str | None = None
    nameserver: str | None = None  # host[:port]
    connect_to: str | None = None  # host:port
    headers: Mapping[str, str] = field(default_factory=dict)
    interval: float = 0.5
    timeout: float = 2.0
    verify_tls: bool = True


@dataclass(frozen=True)
class Config:
    name: str
    aws: AwsConfig
    route: RouteConfig
    shift: ShiftConfig
    probes: tuple[ProbeConfig, ...]
    gates: Gates
    path: Path | None = None
    # Sections owned by other parts of bluegreen (clusters, verify, provision, state, notifications):
    # checked by the modules that use them, kept here as written.
    sections: Mapping[str, Any] = field(default_factory=dict)


TOP_LEVEL_KEYS = {
    "name", "aws", "route", "shift", "probes", "gates",
    "clusters", "verify", "provision", "state", "notifications",
}


def config_path(explicit: str | None) -> Path:
    return Path(explicit or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)


def load_config(path: Path) -> Config:
    import yaml

    if not path.exists():
        raise ConfigError(
            f"config file {path} does not exist",
            hint=f"pass --config FILE, set ${CONFIG_ENV}, or copy config/bluegreen.example.yaml to ./{DEFAULT_CONFIG}",
        )
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {error}") from error
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror}") from error
    config = parse_config(raw)
    return _with_path(config, path)


def _with_path(config: Config, path: Path) -> Config:
    from dataclasses import replace

    return replace(config, path=path)


# -- parsing helpers ---------------------------------------------------------------------------------
def _section(raw: Any, key: str, required: bool = False) -> Mapping[str, Any]:
    if raw is None:
        if required:
            raise ConfigError(f"`{key}` is missing", hint=f"add a `{key}:` section (see config/bluegreen.example.yaml)")
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"`{key}` must be a mapping, got {type(raw).__name__}")
    return raw


def check_keys(section: Mapping[str, Any], allowed: set[str], where: str) -> None:
    for key in section:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), sorted(allowed), n=1)
            hint = f"did you mean `{where}.{close[0]}`?" if close else f"known keys: {', '.join(sorted(allowed))}"
            prefix = f"{where}." if where else ""
            raise ConfigError(f"unknown key `{prefix}{key}`", hint=hint)


def _str(section: Mapping[str, Any], key: str, where: str, *, required: bool = False, default=None):
    value = section.get(key, default)
    if value is None:
        if required:
            raise ConfigError(f"`{where}.{key}` is required")
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"`{where}.{key}` must be a non-empty string, got {value!r}")
    return value.strip()


def _duration(section: Mapping[str, Any], key: str, where: str, default: float) -> float:
    if key not in section or section[key] is None:
        return default
    try:
        return parse_duration(section[key], key=f"{where}.{key}")
    except ValueError as error:
        raise ConfigError(str(error), hint="durations look like 500ms, 30s, 5m or 1h") from None


def _int(section: Mapping[str, Any], key: str, where: str, *, lo: int, hi: int, default=None):
    value = section.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ConfigError(f"`{where}.{key}` must be an integer {lo}..{hi}, got {value!r}")
    return value


def _number(section: Mapping[str, Any], key: str, where: str, *, lo: float, hi: float, default: float) -> float:
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise ConfigError(f"`{where}.{key}` must be a number {lo}..{hi}, got {value!r}")
    return float(value)


def normalize_record_name(name: str) -> str:
    return name.strip().rstrip(".").lower()


def parse_host_port(value: str, where: str, default_port: int | None = None) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = value, ""
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not port:
        if default_port is None:
            raise ConfigError(f"`{where}` must be host:port, got {value!r}")
        return host, default_port
    if not port.isdigit() or not 0 < int(port) < 65536 or not host:
        raise ConfigError(f"`{where}` must be host:port with a port 1..65535, got {value!r}")
    return host, int(port)


# -- sections ----------------------------------------------------------------------------------------
def parse_config(raw: Any) -> Config:
    if raw is None:
        raise ConfigError("the config file is empty", hint="start from config/bluegreen.example.yaml")
    if not isinstance(raw, Mapping):
        raise ConfigError("the config file must hold a mapping at the top level")
    check_keys(raw, TOP_LEVEL_KEYS, "")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ConfigError(
            f"`name` must be a lower-case DNS-style name (a-z, 0-9, -), got {name!r}",
            hint="name the migration, e.g. `name: burnham`; it appears in logs, locks and journals",
        )
    return Config(
        name=name,
        aws=_parse_aws(_section(raw.get("aws"), "aws")),
        route=_parse_route(_section(raw.get("route"), "route", required=True)),
        shift=_parse_shift(_section(raw.get("shift"), "shift")),
        probes=_parse_probes(raw.get("probes")),
        gates=_parse_gates(_section(raw.get("gates"), "gates")),
        sections={k: raw[k] for k in ("clusters", "verify", "provision", "state", "notifications") if k in raw},
    )


def _parse_aws(section: Mapping[str, Any]) -> AwsConfig:
    check_keys(section, {"region", "profile", "endpoint_url", "route53_requests_per_second"}, "aws")
    endpoint = _str(section, "endpoint_url", "aws")
    if endpoint and not re.match(r"^https?://", endpoint):
        raise ConfigError(f"`aws.endpoint_url` must start with http:// or https://, got {endpoint!r}")
    return AwsConfig(
        region=_str(section, "region", "aws"),
        profile=_str(section, "profile", "aws"),
        endpoint_url=endpoint,
        route53_requests_per_second=_number(section, "route53_requests_per_second", "aws", lo=0.1, hi=5.0, default=4.0),
    )


_ROUTE_KEYS = {"driver", "hosted_zone", "records", "blue", "green", "ttl", "alias_ttl", "insync_timeout",
               "retry_timeout"}
_DRIVER_KEYS = {"annotation_prefix", "objects", "weight_annotation", "namespace", "sync_timeout", "secrets"}


def _parse_route(section: Mapping[str, Any]) -> RouteConfig:
    check_keys(section, _ROUTE_KEYS | _DRIVER_KEYS, "route")
    driver = section.get("driver", "route53")
    if driver not in ROUTE_DRIVERS:
        raise ConfigError(f"`route.driver` must be one of {', '.join(ROUTE_DRIVERS)}, got {driver!r}")
    zone = _str(section, "hosted_zone", "route")
    raw_records = section.get("records")
    if not isinstance(raw_records, list) or not raw_records:
        raise ConfigError(
            "`route.records` must be a non-empty list of record names",
            hint="e.g. records: [burnham.example.com]",
        )
    records: list[RecordRef] = []
    seen: set[str] = set()
    for i, item in enumerate(raw_records):
        where = f"route.records[{i}]"
        if isinstance(item, str):
            ref = RecordRef(normalize_record_name(item))
        elif isinstance(item, Mapping):
            check_keys(item, {"name", "zone"}, where)
            ref = RecordRef(normalize_record_name(_str(item, "name", where, required=True)), _str(item, "zone", where))
        else:
            raise ConfigError(f"`{where}` must be a record name or a mapping with `name` (and `zone`)")
        if not ref.name or " " in ref.name:
            raise ConfigError(f"`{where}` is not a valid record name: {item!r}")
        if ref.zone is None and zone is None:
            raise ConfigError(f"`{where}` has no zone", hint="set `route.hosted_zone` or `zone:` on the record")
        if ref.name in seen:
            raise ConfigError(f"`{where}`: record {ref.name} is listed twice")
        seen.add(ref.name)
        records.append(ref)
    blue = _str(section, "blue", "route", required=True)
    green = _str(section, "green", "route", required=True)
    if blue == green:
        raise ConfigError(f"`route.blue` and `route.green` are both {blue!r}: they must name different SetIdentifiers")
    return RouteConfig(
        driver=driver,
        hosted_zone=zone,
        records=tuple(records),
        blue=blue,
        green=green,
        ttl=_int(section, "ttl", "route", lo=0, hi=2147483647),
        alias_ttl=_int(section, "alias_ttl", "route", lo=0, hi=86400, default=60),
        insync_timeout=_duration(section, "insync_timeout", "route", 300.0),
        retry_timeout=_duration(section, "retry_timeout", "route", 60.0),
        extra={k: section[k] for k in _DRIVER_KEYS if k in section},
    )


def _parse_shift(section: Mapping[str, Any]) -> ShiftConfig:
    check_keys(section, {"steps", "bake", "ttl_margin", "check_interval", "on_interrupt"}, "shift")
    steps = ShiftConfig.steps
    if "steps" in section:
        try:
            steps = parse_steps(section["steps"])
        except PlanError as error:
            raise ConfigError(f"`shift.steps`: {error}") from None
    on_interrupt = section.get("on_interrupt", "rollback")
    if on_interrupt not in ("rollback", "hold"):
        raise ConfigError(f"`shift.on_interrupt` must be rollback or hold, got {on_interrupt!r}")
    return ShiftConfig(
        steps=steps,
        bake=_duration(section, "bake", "shift", 30.0),
        ttl_margin=_duration(section, "ttl_margin", "shift", 5.0),
        check_interval=_duration(section, "check_interval", "shift", 0.25) or 0.25,
        on_interrupt=on_interrupt,
    )


_PROBE_KEYS = {"name", "url", "method", "expect_status", "body_contains", "cluster_pattern", "cluster_header",
               "nameserver", "connect_to", "headers", "interval", "timeout", "verify_tls"}


def _parse_probes(raw: Any) -> tuple[ProbeConfig, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError("`probes` must be a list of probes")
    probes: list[ProbeConfig] = []
    names: set[str] = set()
    for i, item in enumerate(raw):
        where = f"probes[{i}]"
        if not isinstance(item, Mapping):
            raise ConfigError(f"`{where}` must be a mapping with at least `name` and `url`")
        check_keys(item, _PROBE_KEYS, where)
        name = _str(item, "name", where, required=True)
        if name in names:
            raise ConfigError(f"`{where}.name`: two probes are named {name!r}; names must be unique")
        names.add(name)
        url = _str(item, "url", where, required=True)
        if not re.match(r"^https?://[^/\s]+", url):
            raise ConfigError(f"`{where}.url` must be an http:// or https:// URL, got {url!r}")
        statuses = item.get("expect_status", [200])
        if isinstance(statuses, int) and not isinstance(statuses, bool):
            statuses = [statuses]
        if (not isinstance(statuses, list) or not statuses
                or any(isinstance(s, bool) or not isinstance(s, int) or not 100 <= s <= 599 for s in statuses)):
            raise ConfigError(f"`{where}.expect_status` must be a list of HTTP status codes, got {statuses!r}")
        pattern = _str(item, "cluster_pattern", where)
        if pattern:
            try:
                compiled = re.compile(pattern)
            except re.error as error:
                raise ConfigError(f"`{where}.cluster_pattern` is not a valid regex: {error}") from None
            if "cluster" not in compiled.groupindex and compiled.groups < 1:
                raise ConfigError(
                    f"`{where}.cluster_pattern` must capture the cluster name",
                    hint="use a named group, e.g. <span>(?P<cluster>[^<]+)</span>",
                )
        nameserver = _str(item, "nameserver", where)
        if nameserver:
            parse_host_port(nameserver, f"{where}.nameserver", default_port=53)
        connect_to = _str(item, "connect_to", where)
        if connect_to:
            parse_host_port(connect_to, f"{where}.connect_to")
        headers = item.get("headers") or {}
        if not isinstance(headers, Mapping) or not all(isinstance(v, str) for v in headers.values()):
            raise ConfigError(f"`{where}.headers` must map header names to strings")
        method = str(item.get("method", "GET")).upper()
        if method not in ("GET", "HEAD", "POST"):
            raise ConfigError(f"`{where}.method` must be GET, HEAD or POST, got {method!r}")
        interval = _duration(item, "interval", where, 0.5)
        timeout = _duration(item, "timeout", where, 2.0)
        if interval <= 0 or timeout <= 0:
            raise ConfigError(f"`{where}`: interval and timeout must be greater than zero")
        verify_tls = item.get("verify_tls", True)
        if not isinstance(verify_tls, bool):
            raise ConfigError(f"`{where}.verify_tls` must be true or false")
        probes.append(ProbeConfig(
            name=name, url=url, method=method, expect_status=tuple(statuses),
            body_contains=_str(item, "body_contains", where), cluster_pattern=pattern,
            cluster_header=_str(item, "cluster_header", where), nameserver=nameserver, connect_to=connect_to,
            headers=dict(headers), interval=interval, timeout=timeout, verify_tls=verify_tls,
        ))
    return tuple(probes)


def _parse_gates(section: Mapping[str, Any]) -> Gates:
    check_keys(section, {"min_success_ratio", "max_p95_latency", "min_samples", "max_consecutive_failures"}, "gates")
    return Gates(
        min_success_ratio=_number(section, "min_success_ratio", "gates", lo=0.0, hi=1.0, default=0.99),
        max_p95_latency=_duration(section, "max_p95_latency", "gates", 2.0),
        min_samples=_int(section, "min_samples", "gates", lo=1, hi=1_000_000, default=20),
        max_consecutive_failures=_int(section, "max_consecutive_failures", "gates", lo=0, hi=1_000_000, default=3),
    )
