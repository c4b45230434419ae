"""HTTP probes as a :class:`~bluegreen.core.ports.Prober`: what an engineer does with ``curl`` in a loop, measured.

How a probe behaves, and why:
- Every probe fires on a fixed schedule (one request per ``interval``) into a thread pool, so a slow answer
  does not lower the request rate: up to ``ceil(timeout / interval) + 1`` requests of a probe are in flight.
  When that many are still waiting, the tick is skipped (and counted) instead of queueing without limit.
- A probe follows DNS changes as a well-behaved client does: it resolves the URL's host (through the system
  resolver, or the DNS server in ``resolver``), keeps a connection to that address for at most
  ``max_connection_age`` (or none at all with ``reuse_connections: false``), then closes it and resolves
  again. A keep-alive client that never re-resolves stays on the side it first saw whatever the weights
  (field notes: "A DNS change moves new connections only"); measured against unbound, such a probe reported
  100% blue through a whole shift to a dead green. Each sample records the address it dialled and which
  connection carried it, so the engine can tell the sides apart and count independent DNS draws.
- With ``connect_to`` (like ``curl --connect-to``) the probe dials that address instead, keeping the URL's
  Host header and TLS server name, e.g. to reach the green cluster before it takes any public traffic.
- Both are done in a requests ``HTTPAdapter`` that swaps the address of the connection pool: nothing global
  (no patched ``socket.getaddrinfo``), so other threads and libraries resolve as usual.
- Samples go into a bounded buffer that :meth:`HttpProber.drain` empties: a day-long run keeps at most
  ``buffer_size`` samples waiting, and counts what it had to drop.
- Request headers (which may carry tokens) and URLs (whose query may too) never appear in errors or logs.
"""

from __future__ import annotations

import collections
import heapq
import math
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.cookiejar import DefaultCookiePolicy
from typing import Any, Sequence
from dataclasses import replace
from urllib.parse import urlsplit

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import requests
from requests.adapters import HTTPAdapter

from bluegreen.config import ProbeConfig
from bluegreen.config.fields import parse_host_port
from bluegreen.core.clock import Clock, SystemClock
from bluegreen.core.verdict import Sample

DEFAULT_BUFFER_SIZE = 100_000
MAX_IN_FLIGHT_PER_PROBE = 64  # a 1 ms interval with a 2 s timeout would otherwise ask for 2,001 threads
USER_AGENT = "bluegreen-probe/0.1"


class ProbeError(Exception):
    """A failure before any HTTP answer (DNS); its message is already short and free of secrets."""


# -- DNS -------------------------------------------------------------------------------------------------
class SystemResolver:
    """The system resolver (getaddrinfo: /etc/hosts, resolv.conf, the VPC or company resolver and its cache):
    what the service's own clients use, so the probe sees what they see, caches included."""

    def resolve(self, name: str, timeout: float) -> str:
        import socket

        try:
            infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
        except socket.gaierror as error:
            raise ProbeError(f"dns: cannot resolve {name} ({error.strerror})") from None
        if not infos:
            raise ProbeError(f"dns: no address for {name}")
        return infos[0][4][0]


class DnsResolver:
    """Resolves A records through one DNS server (not the system resolver): UDP, then TCP if truncated."""

    def __init__(self, nameserver: str) -> None:
        host, self.port = parse_host_port(nameserver, "nameserver", default_port=53)
        # dnspython wants an address; a name for the server itself is resolved once, by the system.
        if not _is_ip(host):
            import socket

            host = socket.getaddrinfo(host, self.port, type=socket.SOCK_DGRAM)[0][4][0]
        self.address = host

    def resolve(self, name: str, timeout: float) -> str:
        """The first A value the server answers for ``name`` (what curl would connect to)."""
        deadline = time.monotonic() + timeout
        query = dns.message.make_query(name, dns.rdatatype.A)
        try:
            answer = dns.query.udp(query, self.address, timeout=timeout, port=self.port, ignore_unexpected=True)
            if answer.flags & dns.flags.TC:
                answer = dns.query.tcp(query, self.address, timeout=max(0.001, deadline - time.monotonic()),
                                       port=self.port)
        except dns.exception.Timeout:
            raise ProbeError(f"dns timeout resolving {name}") from None
        except (OSError, dns.exception.DNSException) as error:
            raise ProbeError(f"dns error resolving {name}: {type(error).__name__}") from None
        rcode = answer.rcode()
        if rcode == dns.rcode.NXDOMAIN:
            raise ProbeError(f"dns: {name} does not exist (NXDOMAIN)")
        if rcode != dns.rcode.NOERROR:
            raise ProbeError(f"dns: {dns.rcode.to_text(rcode)} for {name}")
        for rrset in answer.answer:
            if rrset.rdtype == dns.rdatatype.A and len(rrset):
                return rrset[0].address
        raise ProbeError(f"dns: no A record for {name}")


def _is_ip(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


# -- dialing a chosen address ------------------------------------------------------------------------------
class DialAdapter(HTTPAdapter):
    """Sends a request to the address in ``request.dial_to`` (host, port) when set.

    The connection pool is keyed by that address, so connections are reused per resolved IP, while the TLS
    server name (SNI) and the certificate check use the URL's host name, as ``curl --connect-to`` does. The
    Host header is set by the prober on the request itself.
    """

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        dial_to = getattr(request, "dial_to", None)
        if dial_to is not None:
            if host_params["scheme"] == "https":
                pool_kwargs["server_hostname"] = host_params["host"]
                if verify is not False:
                    pool_kwargs["assert_hostname"] = host_params["host"]
            host_params["host"], host_params["port"] = dial_to
        return host_params, pool_kwargs


# -- one probe -------------------------------------------------------------------------------------------
class ProbeRunner:
    """Everything one probe needs per request, prepared once: the session, the request, the compiled pattern."""

    def __init__(self, probe: ProbeConfig, *, clock: Clock | None = None, pool_size: int = 1) -> None:
        self.probe = probe
        self.name = probe.name
        self.clock = clock or SystemClock()
        self.timeout = probe.timeout
        self.expect_status = frozenset(probe.expect_status)
        self.body_contains = probe.body_contains
        self.cluster_header = probe.cluster_header
        self.pattern = re.compile(probe.cluster_pattern) if probe.cluster_pattern else None
        self.pattern_group: str | int = "cluster" if self.pattern and "cluster" in self.pattern.groupindex else 1
        # Only HEAD has no body worth reading; every other method may need it for the pattern or contains.
        self.read_body = probe.method != "HEAD" and (self.pattern is not None or self.body_contains is not None)

        url = urlsplit(probe.url)
        self.host = url.hostname or ""
        self.port = url.port or (443 if url.scheme == "https" else 80)
        self.connect_to = parse_host_port(probe.connect_to, "connect_to") if probe.connect_to else None
        self.resolver: Any = None
        if self.connect_to is None and not _is_ip(self.host):
            self.resolver = DnsResolver(probe.resolver) if probe.resolver else SystemResolver()
        self.max_age = probe.max_connection_age if probe.reuse_connections else 0.0
        self._dial_lock = threading.Lock()
        self._address: str | None = None
        self._resolved_at = 0.0
        self.connection = 0  # counts fresh resolutions (new connections)

        self.session = requests.Session()
        # Like curl: no proxies, .netrc or CA bundle from the environment (and no per-request lookups of
        # them), and no cookies carried from one request to the next (a sticky-session cookie would pin us).
        self.session.trust_env = False
        self.session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        adapter = DialAdapter(pool_connections=8, pool_maxsize=max(1, pool_size))
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        headers = {"User-Agent": USER_AGENT, "Accept": "*/*", "Accept-Encoding": "identity"}
        headers.update(probe.headers)
        if self.resolver or self.connect_to:
            # The pool dials an address; the server must still see the name it serves.
            headers.setdefault("Host", url.netloc.rpartition("@")[2])
        if not probe.reuse_connections:
            headers["Connection"] = "close"
        self.template = self.session.prepare_request(requests.Request(probe.method, probe.url, headers=headers))

    def run_once(self) -> Sample:
        started = time.perf_counter()
        status: int | None = None
        cluster: str | None = None
        error: str | None = None
        ok = False
        address: str | None = self.connect_to[0] if self.connect_to else (self.host if self.resolver is None else None)
        connection = self.connection
        try:
            request = self.template.copy()
            if self.resolver is not None:
                address, connection = self._dial_address()
                request.dial_to = (address, self.port)
            elif self.connect_to is not None:
                request.dial_to = self.connect_to
            remaining = max(0.001, self.timeout - (time.perf_counter() - started))
            response = self.session.send(request, timeout=remaining, allow_redirects=False,
                                         verify=self.probe.verify_tls)
            status = response.status_code
            body = response.content.decode("utf-8", "replace") if self.read_body else ""
            if self.cluster_header:
                cluster = response.headers.get(self.cluster_header)
            if self.pattern is not None:
                match = self.pattern.search(body)
                if match:
                    cluster = match.group(self.pattern_group)
            ok = status in self.expect_status and (self.body_contains is None or self.body_contains in body)
            if not ok:
                error = (f"HTTP {status}" if status not in self.expect_status
                         else "body does not contain the expected text")
        except ProbeError as failure:
            error = str(failure)
        except requests.RequestException as failure:
            error = describe_failure(failure)
        latency = time.perf_counter() - started
        if ok and latency > self.timeout:
            # Each socket operation has the timeout; the whole answer must fit in it too (curl --max-time).
            ok, error = False, f"timeout: answered after {latency:.2f}s"
        return Sample(probe=self.name, at=self.clock.monotonic(), ok=ok, latency=latency, status=status,
                      cluster=cluster or None, error=error, address=address, connection=connection,
                      pinned=self.connect_to is not None)

    def _dial_address(self) -> tuple[str, int]:
        """The address to dial and the connection's number: the current one while it is younger than
        ``max_connection_age``; else the name is resolved again and the old connections are closed, so the
        next request dials afresh (as a client whose connection ended would)."""
        with self._dial_lock:
            now = time.monotonic()
            if self._address is None or now - self._resolved_at >= self.max_age:
                address = self.resolver.resolve(self.host, self.timeout)
                if self._address is not None:
                    for adapter in self.session.adapters.values():
                        adapter.poolmanager.clear()  # idle keep-alive connections closed
                self._address, self._resolved_at = address, now
                self.connection += 1
            return self._address, self.connection

    def close(self) -> None:
        self.session.close()


def describe_failure(error: BaseException) -> str:
    """A short reason, free of URLs and headers (urllib3 messages include the URL with its query)."""
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return "timeout: no connection"
    if isinstance(error, requests.exceptions.ReadTimeout):
        return "timeout: no answer"
    if isinstance(error, requests.exceptions.SSLError):
        return "tls error"
    if isinstance(error, requests.exceptions.ConnectionError):
        for cause in _causes(error):
            if isinstance(cause, ConnectionRefusedError):
                return "connection refused"
            if isinstance(cause, ConnectionResetError):
                return "connection reset"
            if isinstance(cause, TimeoutError):
                return "timeout: no connection"
            if type(cause).__name__ in ("RemoteDisconnected", "IncompleteRead"):
                return "connection closed by the server"
            if isinstance(cause, OSError) and cause.errno is not None:
                return f"connection error: {cause.strerror or cause.errno}"
        return "connection error"
    return f"request error: {type(error).__name__}"


def _causes(error: BaseException):
    """The chain below a requests error: urllib3 keeps the socket error in ``reason`` or in ``args``."""
    seen: set[int] = set()
    todo: list[Any] = [error]
    while todo and len(seen) < 16:
        item = todo.pop(0)
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        todo.extend([getattr(item, "reason", None), item.__cause__, item.__context__, *item.args])


def probe_once(probe: ProbeConfig) -> Sample:
    """One request, as the prober would send it; for tests, benchmarks and the ``check`` command."""
    runner = ProbeRunner(probe)
    try:
        return runner.run_once()
    finally:
        runner.close()


def in_flight_limit(probe: ProbeConfig) -> int:
    return max(1, min(MAX_IN_FLIGHT_PER_PROBE, math.ceil(probe.timeout / probe.interval) + 1))


# -- the buffer ------------------------------------------------------------------------------------------
class SampleBuffer:
    """Thread-safe and bounded: when nobody drains for a long time the oldest samples go, and are counted."""

    def __init__(self, capacity: int = DEFAULT_BUFFER_SIZE) -> None:
        self._samples: collections.deque[Sample] = collections.deque(maxlen=capacity)
        self._lock = threading.Lock()
        self.dropped = 0

    def add(self, sample: Sample) -> None:
        with self._lock:
            if len(self._samples) == self._samples.maxlen:
                self.dropped += 1
            self._samples.append(sample)

    def drain(self) -> list[Sample]:
        with self._lock:
            samples = list(self._samples)
            self._samples.clear()
        return samples

    def __len__(self) -> int:
        return len(self._samples)


# -- the prober ------------------------------------------------------------------------------------------
class HttpProber:
    """Runs every probe on its schedule between :meth:`start` and :meth:`stop`.

    Each probe that follows DNS also gets one companion per side (``<probe>@green``), which sends the same
    request straight to that side's address from the records (:meth:`set_side_addresses`, refreshed every
    step): at a 10% step a public probe sees green in about one answer in ten, so a green that fails every
    request would take many seconds to show; its companion shows it within ``max_consecutive_failures``
    intervals, whatever the weight. Companions are pinned: they never count for the traffic gate.
    """

    def __init__(self, probes: Sequence[ProbeConfig], *, clock: Clock | None = None,
                 buffer_size: int = DEFAULT_BUFFER_SIZE) -> None:
        self._probes: list[ProbeConfig] = list(probes)
        self._configured = len(self._probes)
        self._clock = clock or SystemClock()
        self._buffer = SampleBuffer(buffer_size)
        self._limits = [in_flight_limit(p) for p in self._probes]
        self._runners: list[ProbeRunner] = []
        self._in_flight = [0] * len(self._probes)
        self._counts_lock = threading.Lock()
        self._sent = [0] * len(self._probes)
        self._skipped = [0] * len(self._probes)
        self._retired: set[int] = set()
        self._added: list[int] = []
        self._companions: dict[tuple[str, str], tuple[int, str]] = {}  # (probe, side) -> (index, address)
        self._stop = threading.Event()
        self._scheduler: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None

    @property
    def names(self) -> Sequence[str]:
        return tuple(p.name for p in self._probes[: self._configured])

    def start(self) -> None:
        if self._scheduler is not None:
            raise RuntimeError("the prober was already started")
        if not self._probes:
            self._scheduler = threading.Thread(target=lambda: None)  # nothing to run; keep stop() simple
            return
        self._runners = [ProbeRunner(p, clock=self._clock, pool_size=limit)
                         for p, limit in zip(self._probes, self._limits)]
        # Room for one companion per side of every probe that follows DNS.
        workers = sum(self._limits) * 3
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bluegreen-probe")
        self._scheduler = threading.Thread(target=self._schedule, name="bluegreen-probe-scheduler", daemon=True)
        self._scheduler.start()

    def set_side_addresses(self, addresses: dict[str, str]) -> None:
        """``{side: address}``: (re)point each DNS-following probe's companion for that side."""
        if not self._runners:
            return
        with self._counts_lock:
            for base in list(self._probes[: self._configured]):
                if base.connect_to is not None or not base.direct_sides:
                    continue
                port = urlsplit(base.url).port or (443 if base.url.startswith("https") else 80)
                for side, address in addresses.items():
                    current = self._companions.get((base.name, side))
                    if current is not None and current[1] == address:
                        continue
                    if current is not None:
                        self._retired.add(current[0])
                    host = f"[{address}]" if ":" in address else address
                    companion = replace(base, name=f"{base.name}@{side}", connect_to=f"{host}:{port}")
                    limit = in_flight_limit(companion)
                    self._probes.append(companion)
                    self._limits.append(limit)
                    self._runners.append(ProbeRunner(companion, clock=self._clock, pool_size=limit))
                    self._in_flight.append(0)
                    self._sent.append(0)
                    self._skipped.append(0)
                    index = len(self._probes) - 1
                    self._companions[(base.name, side)] = (index, address)
                    self._added.append(index)

    def drain(self) -> list[Sample]:
        return self._buffer.drain()

    def stop(self) -> None:
        """Stops firing, waits for requests in flight (each bounded by its timeout), closes connections."""
        self._stop.set()
        if self._scheduler is not None and self._scheduler.ident is not None:
            self._scheduler.join()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        for runner in self._runners:
            runner.close()

    def stats(self) -> dict[str, Any]:
        """Requests sent and ticks skipped per probe (too many in flight), and samples dropped (buffer full)."""
        with self._counts_lock:
            names = [p.name for p in self._probes]
            return {
                "sent": dict(zip(names, self._sent)),
                "skipped": dict(zip(names, self._skipped)),
                "dropped": self._buffer.dropped,
                "buffered": len(self._buffer),
            }

    def _schedule(self) -> None:
        now = time.monotonic()
        # (when, index): every probe fires at once, then every ``interval`` after its previous tick.
        due = [(now, index) for index in range(len(self._probes))]
        heapq.heapify(due)
        while not self._stop.is_set():
            with self._counts_lock:
                added, self._added = self._added, []
            for index in added:
                heapq.heappush(due, (time.monotonic(), index))
            if not due:
                self._stop.wait(0.05)
                continue
            when, index = due[0]
            if index in self._retired:
                heapq.heappop(due)
                continue
            wait = when - time.monotonic()
            if wait > 0:
                self._stop.wait(min(wait, 0.05))
                continue
            self._fire(index)
            interval = self._probes[index].interval
            following = when + interval
            now = time.monotonic()
            if following < now - interval:
                # We fell behind (a paused process, a busy CPU): do not burst to catch up.
                following = now + interval
            heapq.heapreplace(due, (following, index))

    def _fire(self, index: int) -> None:
        with self._counts_lock:
            if self._in_flight[index] >= self._limits[index]:
                self._skipped[index] += 1
                return
            self._in_flight[index] += 1
        try:
            self._pool.submit(self._run, index)
        except RuntimeError:  # the pool shut down between the stop flag and this submit
            with self._counts_lock:
                self._in_flight[index] -= 1

    def _run(self, index: int) -> None:
        # Counted when it starts: a tick queued when stop() cancels the pool was never sent.
        with self._counts_lock:
            self._sent[index] += 1
        try:
            sample = self._runners[index].run_once()
        except Exception as error:  # noqa: BLE001 - a probe bug must become a failed sample, not a dead thread
            sample = Sample(probe=self._probes[index].name, at=self._clock.monotonic(), ok=False, latency=0.0,
                            error=f"probe error: {type(error).__name__}")
        finally:
            with self._counts_lock:
                self._in_flight[index] -= 1
        self._buffer.add(sample)


# -- telling the sides apart ------------------------------------------------------------------------------
class SideAddressBook:
    """Builds the engine's :class:`~bluegreen.core.judgement.SideMap` from the live records at each step: the
    A/AAAA values of each side's record set, and for alias and CNAME sets the addresses their targets resolve
    to now (through every resolver the probes use), plus the cluster names that mean each side."""

    def __init__(self, probes: Sequence[ProbeConfig], cluster_names: dict[str, str], *,
                 prober: "HttpProber | None" = None) -> None:
        self.prober = prober  # its side companions follow the first address of each side
        # Alias and CNAME targets are resolved as the probes resolve names: through each resolver a probe
        # names, and the system resolver only when a probe uses it.
        self.resolvers: list[Any] = []
        for probe in probes:
            if probe.connect_to is not None:
                continue
            if probe.resolver:
                self.resolvers.append(DnsResolver(probe.resolver))
            elif not any(isinstance(r, SystemResolver) for r in self.resolvers):
                self.resolvers.append(SystemResolver())
        self.cluster_names = dict(cluster_names)

    def __call__(self, live) -> Any:
        from bluegreen.core.judgement import SideMap

        addresses: dict[str, str] = {}
        for record in live.records:
            for side in ("blue", "green"):
                for value in record.values_of(side):
                    if _is_ip(value):
                        addresses[value] = side
                    else:  # an alias target or a CNAME: what it resolves to now
                        for resolver in self.resolvers:
                            try:
                                addresses[resolver.resolve(value, 1.0)] = side
                            except ProbeError:
                                continue
        if self.prober is not None:
            first = {}
            for address, side in addresses.items():
                first.setdefault(side, address)
            self.prober.set_side_addresses(first)
        return SideMap(addresses=addresses, clusters=self.cluster_names)
