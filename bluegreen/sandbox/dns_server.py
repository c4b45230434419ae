"""A DNS server that answers from the moto hosted zone the way Route 53 answers weighted records.

For a weighted group (same name and type) each answer is one record set, picked at random in proportion
to its weight; a group whose weights are all zero is answered as an equal split, as Route 53 does. The
answer carries that record set's values and TTL. Health is evaluated as Route 53 does (see ``_Group.pick``):
record sets with a failing health check, and alias record sets with ``EvaluateTargetHealth`` whose load
balancer is unhealthy, are skipped (:mod:`bluegreen.sandbox.health`). An alias to a load balancer answers with
the load balancer's address and TTL. Other records are answered as they are; names the zone does not hold
get NXDOMAIN.

The zone is read from moto by a background thread every ``refresh_interval`` (and on ``refresh()``), so a
query costs a dictionary lookup and a random pick, not an API call. With ``source`` (the sandbox's
:class:`~bluegreen.sandbox.route53_proxy.Route53Proxy`), the zone is read as *published*: a change is served
only once it is INSYNC, and the server refreshes the moment it turns INSYNC.
"""

from __future__ import annotations

import logging
import random
import socketserver
import threading
from dataclasses import dataclass
from typing import Any, Callable, Protocol

from dnslib import QTYPE, RCODE, RR, A, DNSHeader, DNSRecord
from dnslib.server import DNSHandler, DNSServer

from bluegreen.sandbox.health import Health, normalize_dns_name
from bluegreen.sandbox.moto_server import sandbox_client
from bluegreen.sandbox.zone import list_record_sets

log = logging.getLogger("bluegreen.sandbox.dns")


@dataclass(frozen=True)
class _RecordSet:
    set_id: str | None
    weight: int | None
    ttl: int
    answers: tuple  # dnslib RRs, built once per refresh (empty for an alias: resolved at query time)
    alias_target: str | None = None  # AliasTarget.DNSName, normalised
    evaluate_target_health: bool = False
    health_check_id: str | None = None


@dataclass(frozen=True)
class _Group:
    """Every record set of one name and type; ``weighted`` is False for a plain (non-weighted) record."""

    sets: tuple[_RecordSet, ...]
    weighted: bool

    def pick(self, rng: random.Random, healthy: Callable[[_RecordSet], bool]) -> _RecordSet:
        """One record set, chosen as Route 53 chooses among weighted records when health is known (Route 53
        Developer Guide, "How Amazon Route 53 chooses records when health checking is configured"):
        unhealthy sets are skipped; sets of weight 0 are answered only when every non-zero set is unhealthy;
        when no set is healthy, all of them are treated as healthy. With every weight 0, the candidates are
        answered equally often ("all zero" is an equal split, not "off")."""
        if not self.weighted or len(self.sets) == 1:
            return self.sets[0]
        candidates = [s for s in self.sets if healthy(s)] or list(self.sets)
        nonzero = [s for s in candidates if s.weight]
        if nonzero:
            return rng.choices(nonzero, weights=[s.weight for s in nonzero])[0]
        return rng.choice(candidates)


class _Resolver:
    def __init__(self, health: Health) -> None:
        # ((name, type) -> group, every name): replaced whole on refresh, so a query sees one version.
        self.snapshot: tuple[dict[tuple[str, str], _Group], frozenset[str]] = ({}, frozenset())
        self.health = health
        self.queries = 0
        self._rng = random.Random()

    def healthy(self, record_set: _RecordSet) -> bool:
        if record_set.health_check_id and not self.health.check_healthy(record_set.health_check_id):
            return False
        if record_set.alias_target and record_set.evaluate_target_health:
            target = self.health.load_balancer(record_set.alias_target)
            if target is not None and not target.healthy:
                return False
        return True

    def answers(self, name: str, qtype: str, record_set: _RecordSet, groups, depth: int = 0) -> list:
        if record_set.alias_target is None:
            return list(record_set.answers)
        # An alias answers with its target's records, under the alias's own name, with the target's TTL.
        target = self.health.load_balancer(record_set.alias_target)
        if target is not None:
            if qtype != "A":
                return []  # the fake load balancers have IPv4 addresses only
            return [RR(f"{name}.", QTYPE.A, ttl=target.ttl, rdata=A(target.address))]
        group = groups.get((record_set.alias_target, qtype))
        if group is None or depth > 4:
            log.debug("alias %s points at %s, which the sandbox does not know", name, record_set.alias_target)
            return []
        chosen = group.pick(self._rng, self.healthy)
        return [RR(f"{name}.", rr.rtype, rclass=rr.rclass, ttl=rr.ttl, rdata=rr.rdata)
                for rr in self.answers(record_set.alias_target, qtype, chosen, groups, depth + 1)]

    def resolve(self, request, handler):
        self.queries += 1
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        qtype = QTYPE.get(request.q.qtype)
        groups, names = self.snapshot
        if name not in names:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        # Follow CNAMEs inside the zone, as an authoritative server does for its own names.
        for _ in range(8):
            group = groups.get((name, qtype))
            if group is not None:
                for rr in self.answers(name, qtype, group.pick(self._rng, self.healthy), groups):
                    reply.add_answer(rr)
                break
            alias = groups.get((name, "CNAME"))
            if alias is None or qtype == "CNAME":
                break
            chosen = alias.pick(self._rng, self.healthy)
            for rr in chosen.answers:
                reply.add_answer(rr)
            name = str(chosen.answers[0].rdata.label).rstrip(".").lower() if chosen.answers else ""
            if name not in names:
                break
        return reply


def build_groups(record_sets: list[dict]) -> dict[tuple[str, str], _Group]:
    """The zone listing, turned into ready-to-send answers per (name, type)."""
    collected: dict[tuple[str, str], list[_RecordSet]] = {}
    for rrset in record_sets:
        name = rrset["Name"].rstrip(".").lower()
        rtype = rrset["Type"]
        common = dict(set_id=rrset.get("SetIdentifier"), weight=rrset.get("Weight"),
                      health_check_id=rrset.get("HealthCheckId"))
        if "AliasTarget" in rrset:
            target = rrset["AliasTarget"]
            # Alias records have no TTL of their own: the target's applies (resolved at query time).
            collected.setdefault((name, rtype), []).append(_RecordSet(
                ttl=0, answers=(), alias_target=normalize_dns_name(target.get("DNSName", "")),
                evaluate_target_health=bool(target.get("EvaluateTargetHealth")), **common))
            continue
        if not rrset.get("ResourceRecords"):
            continue
        ttl = int(rrset.get("TTL", 300))
        answers = []
        for value in rrset["ResourceRecords"]:
            try:
                answers.extend(RR.fromZone(f"{name}. {ttl} IN {rtype} {value['Value']}"))
            except Exception:  # noqa: BLE001 - a record dnslib cannot encode is left out, not fatal
                log.debug("cannot encode %s %s record", name, rtype)
        collected.setdefault((name, rtype), []).append(_RecordSet(ttl=ttl, answers=tuple(answers), **common))
    return {key: _Group(tuple(sets), all(s.weight is not None for s in sets)) for key, sets in collected.items()}


class _QuietLogger:
    """dnslib logs every query to stdout by default; the sandbox answers thousands per second."""

    def __getattr__(self, name: str):
        return lambda *args, **kwargs: None


class _Handler(DNSHandler):
    udplen = 512  # the classic UDP limit without EDNS: bigger answers are truncated, clients retry over TCP

    def get_reply(self, data: bytes) -> bytes:
        request = DNSRecord.parse(data)
        reply = self.server.resolver.resolve(request, self)
        packed = reply.pack()
        if self.protocol == "udp" and len(packed) > self.udplen:
            # dnslib's own truncate() drops the question too, and resolvers (dnspython) reject an answer
            # that does not repeat the question: keep it, drop the records, set TC.
            truncated = DNSRecord(DNSHeader(id=reply.header.id, bitmap=reply.header.bitmap), q=reply.q)
            truncated.header.tc = 1
            packed = truncated.pack()
        return packed


class _UdpServer(socketserver.UDPServer):
    # One thread answers every UDP query: answers come from memory, and a thread per query would cost more.
    allow_reuse_address = False


class _TcpServer(socketserver.ThreadingTCPServer):
    daemon_threads = False
    block_on_close = True  # server_close() joins the handler threads
    allow_reuse_address = True

    def get_request(self):
        connection, address = super().get_request()
        connection.settimeout(5.0)  # a client that connects and says nothing must not hold a thread forever
        return connection, address


def bind_dns(resolver: Any, host: str, port: int = 0):
    """(udp server, tcp server, port): a dnslib resolver on one port (``port``, or a free one), UDP and TCP,
    not yet serving. A fixed port is for a resolver that must sit where /etc/resolv.conf can name it (53)."""
    last_error: OSError | None = None
    for _ in range(20 if port == 0 else 1):
        udp = DNSServer(resolver, address=host, port=port, logger=_QuietLogger(), handler=_Handler,
                        server=_UdpServer).server
        bound = udp.server_address[1]
        try:
            tcp = DNSServer(resolver, address=host, port=bound, tcp=True, logger=_QuietLogger(),
                            handler=_Handler, server=_TcpServer).server
        except OSError as error:
            last_error = error
            udp.server_close()
            continue
        return udp, tcp, bound
    raise OSError(f"no port free for both UDP and TCP on {host}: {last_error}")


class ZoneSource(Protocol):
    """Where the DNS server reads the zone when not straight from moto (see Route53Proxy)."""

    monotonic: Callable[[], float]

    def published_listing(self, zone_id: str) -> list[dict]: ...

    def next_change_at(self, zone_id: str) -> float | None: ...

    def subscribe(self, zone_id: str, callback: Callable[[], None]) -> None: ...

    def unsubscribe(self, zone_id: str, callback: Callable[[], None]) -> None: ...


class WeightedDnsServer:
    """UDP and TCP on 127.0.0.1, on one free port."""

    def __init__(self, endpoint_url: str, zone_id: str, *, host: str = "127.0.0.1",
                 refresh_interval: float = 0.2, source: ZoneSource | None = None,
                 health: Health | None = None) -> None:
        self.endpoint_url = endpoint_url
        self.zone_id = zone_id
        self.host = host
        self.refresh_interval = refresh_interval
        self.source = source
        self.port: int | None = None
        self.health = health if health is not None else Health()
        self._resolver = _Resolver(self.health)
        self._client: Any = None
        self._servers: list[Any] = []
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._refresh_lock = threading.Lock()
        self._last_listing: Any = None
        self.refresh_errors = 0

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def queries(self) -> int:
        return self._resolver.queries

    def start(self) -> "WeightedDnsServer":
        if self.source is None:
            self._client = sandbox_client(self.endpoint_url)
        else:
            self.source.subscribe(self.zone_id, self.refresh)
        self.refresh()
        udp, tcp = self._bind()
        self._servers = [udp, tcp]
        self._stop.clear()
        for server, label in ((udp, "udp"), (tcp, "tcp")):
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                      name=f"sandbox-dns-{label}", daemon=True)
            thread.start()
            self._threads.append(thread)
        refresher = threading.Thread(target=self._refresh_loop, name="sandbox-dns-refresh", daemon=True)
        refresher.start()
        self._threads.append(refresher)
        return self

    def _bind(self):
        udp, tcp, self.port = bind_dns(self._resolver, self.host)
        return udp, tcp

    def refresh(self) -> None:
        """Read the zone from moto now (the background thread does it every ``refresh_interval``)."""
        with self._refresh_lock:
            if self.source is not None:
                listing = self.source.published_listing(self.zone_id)
            else:
                listing = list_record_sets(self._client, self.zone_id)
            if listing == self._last_listing:
                return
            groups = build_groups(listing)
            self._resolver.snapshot = (groups, frozenset(name for name, _ in groups))
            self._last_listing = listing

    def _next_wait(self) -> float:
        """Until the next refresh: the interval, or less when a PENDING change turns INSYNC sooner."""
        if self.source is None:
            return self.refresh_interval
        try:
            due = self.source.next_change_at(self.zone_id)
        except Exception:  # noqa: BLE001 - the loop's refresh reports errors; here, just wait the interval
            return self.refresh_interval
        if due is None:
            return self.refresh_interval
        return min(self.refresh_interval, max(0.0, due - self.source.monotonic()) + 0.001)

    def _refresh_loop(self) -> None:
        while not self._stop.wait(self._next_wait()):
            try:
                self.refresh()
            except Exception as error:  # noqa: BLE001 - keep answering from the last snapshot
                self.refresh_errors += 1
                log.debug("zone refresh failed: %s", type(error).__name__)

    def stop(self) -> None:
        if self.source is not None:
            self.source.unsubscribe(self.zone_id, self.refresh)
        self._stop.set()
        for server in self._servers:
            server.shutdown()
        for thread in self._threads:
            thread.join()
        for server in self._servers:
            server.server_close()
        self._servers, self._threads = [], []
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> "WeightedDnsServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
