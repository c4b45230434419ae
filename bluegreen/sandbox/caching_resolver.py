"""A caching DNS resolver in front of the sandbox's weighted DNS server, as real clients have one.

Clients rarely ask Route 53's name servers themselves: they ask a recursive resolver (the VPC resolver, the
company's, their ISP's), which caches each answer for its TTL. RFC 1035 §7.4 ("Using the cache"): a resolver
keeps a record until its TTL runs out, and the TTL it hands out from the cache is decremented by the time the
record has spent there; RFC 2181 §5.2 and §8: the records of an RRset share one TTL, a count of seconds. So
behind a resolver, a weighted record is picked *once per TTL*, not once per query: every client of that resolver
gets the same address until the TTL runs out, whatever the weights say meanwhile. A probe that asks the
authoritative server directly sees the weights query by query; a real client does not.

This resolver forwards each question it has no live answer for to one upstream (the WeightedDnsServer), caches
the answer per (name, type) for the lowest TTL in it, and answers from the cache with the remaining TTL,
rounded down to whole seconds. Answers with TTL 0 are not cached (RFC 1035 §3.2.1: "zero values are
interpreted to mean that the RR can only be used for the transaction in progress"). Negative answers
(NXDOMAIN, NODATA) are not cached: RFC 2308 takes their TTL from the SOA in the authority section, which the
sandbox's server does not send. The clock is injectable (``monotonic``) so tests move time without sleeping.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from dnslib import QTYPE, RCODE, DNSRecord

from bluegreen.sandbox.dns_server import bind_dns

log = logging.getLogger("bluegreen.sandbox.resolver")


@dataclass(frozen=True)
class _Entry:
    answers: tuple  # dnslib RRs as the upstream sent them (their original TTLs)
    stored: float  # on the resolver's clock
    ttl: int  # the lowest TTL among the answers: how long the entry lives

    def remaining(self, now: float) -> int:
        return self.ttl - math.floor(now - self.stored)


class _CachingResolverCore:
    def __init__(self, upstream_host: str, upstream_port: int, monotonic: Callable[[], float],
                 timeout: float) -> None:
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.monotonic = monotonic
        self.timeout = timeout
        self.cache: dict[tuple[str, int], _Entry] = {}
        self.lock = threading.Lock()
        self.fetch_lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.upstream_errors = 0

    def resolve(self, request: DNSRecord, handler: Any) -> DNSRecord:
        reply = request.reply()  # copies id and question; sets QR, RD as asked, RA
        reply.header.ra = 1
        key = (str(request.q.qname).rstrip(".").lower(), request.q.qtype)
        now = self.monotonic()
        entry = self._cached(key, now)
        if entry is None:
            # One question upstream at a time: two clients missing together must not cache two different
            # picks of a weighted record (resolvers coalesce identical outstanding queries too).
            with self.fetch_lock:
                now = self.monotonic()
                entry = self._cached(key, now)
                if entry is None:
                    try:
                        upstream = self._ask_upstream(request)
                    except Exception as error:  # noqa: BLE001 - any upstream failure is a SERVFAIL
                        self.upstream_errors += 1
                        log.debug("upstream %s:%s failed: %s", self.upstream_host, self.upstream_port,
                                  type(error).__name__)
                        reply.header.rcode = RCODE.SERVFAIL
                        return reply
                    self.misses += 1
                    if upstream.header.rcode != RCODE.NOERROR or not upstream.rr:
                        reply.header.rcode = upstream.header.rcode
                        return reply  # negative answers are passed on, not cached (see the module docstring)
                    entry = _Entry(tuple(upstream.rr), now, min(rr.ttl for rr in upstream.rr))
                    if entry.ttl > 0:
                        with self.lock:
                            self.cache[key] = entry
        remaining = max(entry.remaining(now), 0)
        for rr in entry.answers:
            # RFC 1035 §7.4: hand out the TTL that is left, not the one the record arrived with.
            reply.add_answer(type(rr)(rr.rname, rr.rtype, rr.rclass, min(rr.ttl, remaining), rr.rdata))
        return reply

    def _cached(self, key: tuple[str, int], now: float) -> _Entry | None:
        with self.lock:
            entry = self.cache.get(key)
            if entry is not None and entry.remaining(now) <= 0:
                del self.cache[key]  # expired: RFC 1035 §7.4, a record is not used past its TTL
                entry = None
            if entry is not None:
                self.hits += 1
            return entry

    def _ask_upstream(self, request: DNSRecord) -> DNSRecord:
        question = DNSRecord.question(str(request.q.qname), QTYPE.get(request.q.qtype))
        raw = question.send(self.upstream_host, self.upstream_port, timeout=self.timeout)
        answer = DNSRecord.parse(raw)
        if answer.header.tc:  # too big for UDP: ask again over TCP, as resolvers do
            answer = DNSRecord.parse(question.send(self.upstream_host, self.upstream_port, tcp=True,
                                                   timeout=self.timeout))
        return answer


class CachingResolver:
    """A caching forwarder on 127.0.0.1 (UDP and TCP, one free port) in front of ``upstream`` ("host:port")."""

    def __init__(self, upstream: str, *, host: str = "127.0.0.1", monotonic: Callable[[], float] = time.monotonic,
                 timeout: float = 2.0, port: int = 0) -> None:
        upstream_host, _, upstream_port = upstream.rpartition(":")
        if not upstream_host or not upstream_port.isdigit():
            raise ValueError(f"upstream must be host:port, got {upstream!r}")
        self.host = host
        self._port = port
        self.port: int | None = None
        self._core = _CachingResolverCore(upstream_host, int(upstream_port), monotonic, timeout)
        self._servers: list[Any] = []
        self._threads: list[threading.Thread] = []

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def hits(self) -> int:
        return self._core.hits

    @property
    def misses(self) -> int:
        return self._core.misses

    def flush(self) -> None:
        """Forget every cached answer (what ``unbound-control flush_zone`` would do)."""
        with self._core.lock:
            self._core.cache.clear()

    def start(self) -> "CachingResolver":
        udp, tcp, self.port = bind_dns(self._core, self.host, self._port)
        self._servers = [udp, tcp]
        for server, label in ((udp, "udp"), (tcp, "tcp")):
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                      name=f"sandbox-resolver-{label}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
        for thread in self._threads:
            thread.join()
        for server in self._servers:
            server.server_close()
        self._servers, self._threads = [], []

    def __enter__(self) -> "CachingResolver":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
