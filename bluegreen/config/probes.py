"""The ``probes`` section: HTTP probes that stand for the service's clients. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping
from urllib.parse import urlsplit

from bluegreen.config.fields import Fields, parse_host_port
from bluegreen.errors import ConfigError

_PROBE_KEYS = {"name", "url", "method", "expect_status", "body_contains", "cluster_pattern", "cluster_header",
               "resolver", "nameserver", "connect_to", "headers", "interval", "timeout", "verify_tls",
               "max_connection_age", "reuse_connections", "direct_sides"}


@dataclass(frozen=True)
class ProbeConfig:
    name: str
    url: str
    method: str = "GET"
    expect_status: tuple[int, ...] = (200,)
    body_contains: str | None = None
    cluster_pattern: str | None = None
    cluster_header: str | None = None
    # Where names are resolved: None is the system resolver (what the service's clients use); host[:port]
    # asks that server directly (an authoritative Route 53 name server sees a change at once, a resolver
    # in the VPC answers from its cache for up to the TTL).
    resolver: str | None = None
    connect_to: str | None = None  # host:port: dial this instead of what the name resolves to (pins a side)
    headers: Mapping[str, str] = field(default_factory=dict)
    interval: float = 0.5
    timeout: float = 2.0
    verify_tls: bool = True
    # A keep-alive connection stays on the side it first resolved: a connection is reused for at most this
    # long, then closed, and the next request resolves the name again (field notes, "A DNS change moves new
    # connections only").
    max_connection_age: float = 1.0
    reuse_connections: bool = True
    # Also send the request straight to each side's address from the records (a companion `<name>@<side>`),
    # so a broken green shows within a few intervals at any weight. Off for a probe that must only ever
    # reach the service the way its clients do.
    direct_sides: bool = True

    @property
    def pinned(self) -> bool:
        """Dials one fixed address: it sees one side whatever the weights."""
        return self.connect_to is not None

    @property
    def nameserver(self) -> str | None:
        """The resolver's address, or None for the system resolver."""
        return self.resolver


def parse_probes(raw: Any) -> tuple[ProbeConfig, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError("`probes` must be a list of probes", hint="e.g. probes: [{name: public, url: https://...}]")
    probes: list[ProbeConfig] = []
    names: set[str] = set()
    for i, item in enumerate(raw):
        probe = _probe(item, f"probes[{i}]")
        if probe.name in names:
            raise ConfigError(f"`probes[{i}].name`: two probes are named {probe.name!r}; names must be unique")
        names.add(probe.name)
        probes.append(probe)
    return tuple(probes)


def check_url(url: str, where: str) -> None:
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError for a port out of range or not a number
    except ValueError as error:
        raise ConfigError(f"`{where}` is not a valid URL ({error}): {url!r}",
                          hint="e.g. https://burnham.example.com/healthz or http://host:8080/") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or port == 0:
        raise ConfigError(f"`{where}` must be an http:// or https:// URL with a host, got {url!r}",
                          hint="e.g. https://burnham.example.com/healthz")


def _probe(item: Any, where: str) -> ProbeConfig:
    if not isinstance(item, Mapping):
        raise ConfigError(f"`{where}` must be a mapping with at least `name` and `url`")
    fields = Fields(item, where, _PROBE_KEYS)
    name = fields.text("name", required=True)
    url = fields.text("url", required=True)
    check_url(url, f"{where}.url")
    statuses = item.get("expect_status", [200])
    if isinstance(statuses, int) and not isinstance(statuses, bool):
        statuses = [statuses]
    if (not isinstance(statuses, list) or not statuses
            or any(isinstance(s, bool) or not isinstance(s, int) or not 100 <= s <= 599 for s in statuses)):
        raise ConfigError(f"`{where}.expect_status` must be a list of HTTP status codes, got {statuses!r}")
    pattern = fields.text("cluster_pattern")
    if pattern:
        try:
            compiled = re.compile(pattern)
        except re.error as error:
            raise ConfigError(f"`{where}.cluster_pattern` is not a valid regex: {error}") from None
        if "cluster" not in compiled.groupindex and compiled.groups < 1:
            raise ConfigError(f"`{where}.cluster_pattern` must capture the cluster name",
                              hint="use a named group, e.g. <span>(?P<cluster>[^<]+)</span>")
    resolver = _resolver(fields, where)
    connect_to = fields.text("connect_to")
    if connect_to:
        parse_host_port(connect_to, f"{where}.connect_to")
    headers = item.get("headers") or {}
    if not isinstance(headers, Mapping) or not all(isinstance(v, str) for v in headers.values()):
        raise ConfigError(f"`{where}.headers` must map header names to strings")
    method = str(item.get("method", "GET")).upper()
    if method not in ("GET", "HEAD", "POST"):
        raise ConfigError(f"`{where}.method` must be GET, HEAD or POST, got {method!r}")
    return ProbeConfig(
        name=name, url=url, method=method, expect_status=tuple(statuses),
        body_contains=fields.text("body_contains"), cluster_pattern=pattern,
        cluster_header=fields.text("cluster_header"), resolver=resolver, connect_to=connect_to,
        headers=dict(headers),
        interval=fields.duration("interval", 0.5, lo=0.01, hi=3600.0),
        timeout=fields.duration("timeout", 2.0, lo=0.01, hi=300.0),
        verify_tls=fields.boolean("verify_tls", True),
        max_connection_age=fields.duration("max_connection_age", 1.0, hi=3600.0),
        reuse_connections=fields.boolean("reuse_connections", True),
        direct_sides=fields.boolean("direct_sides", True),
    )


def _resolver(fields: Fields, where: str) -> str | None:
    """``resolver: system | host[:port]``; ``nameserver: host[:port]`` is its older spelling."""
    if fields.has("resolver") and fields.has("nameserver"):
        raise ConfigError(f"`{where}` sets both `resolver` and `nameserver`", hint="keep `resolver` only")
    key = "resolver" if fields.has("resolver") else "nameserver"
    value = fields.text(key)
    if value is None or value == "system":
        return None
    parse_host_port(value, f"{where}.{key}", default_port=53)
    return value
