"""The two clusters' apps: HTTP servers on 127.0.0.2 (blue) and 127.0.0.3 (green), on one port.

They answer like the EKS Blueprints sample page, which names the cluster that served it, so a probe (or a
person with ``curl | grep CLUSTER_NAME``) can tell where the request went. Each has a switch to break it.

Each also exports what it served on ``GET /metrics`` in the Prometheus text format (version 0.0.4), as an
instrumented app would: ``http_requests_total{cluster, code}`` and the histogram
``http_request_duration_seconds{cluster}``. Scrapes are not counted, as an ALB's metrics exclude health
checks. The counters are monotonic for the server's life (``reset_counts`` leaves them alone), like a real
process's, so ``rate()`` over them is right.
"""

from __future__ import annotations

import bisect
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler

from bluegreen.sandbox.servers import JoiningHTTPServer, bind_pair

MODES = ("ok", "error", "slow")
CLUSTER_HEADER = "X-Cluster-Name"

_PAGE = """<!DOCTYPE html>
<html>
<head><title>{title}</title></head>
<body>
<h1>{title}</h1>
<p><span>CLUSTER_NAME</span><span>{cluster}</span></p>
</body>
</html>
"""


# Prometheus client libraries' default histogram buckets (seconds).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
METRICS_PATH = "/metrics"
# https://prometheus.io/docs/instrumenting/exposition_formats/ (text format 0.0.4)
PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True)
class ServedCounts:
    """A snapshot of what a backend served since it was created (monotonic counters)."""

    by_code: dict[int, int]  # HTTP status -> answers
    buckets: tuple[int, ...]  # answers per latency bucket (not cumulative); the last is above the largest bound
    latency_sum: float

    @property
    def total(self) -> int:
        return sum(self.by_code.values())

    def count_of(self, low: int, high: int) -> int:
        return sum(n for code, n in self.by_code.items() if low <= code <= high)


class Backend:
    """One cluster's app. ``set_mode`` switches between answering (ok), HTTP 500 (error) and late (slow)."""

    def __init__(self, cluster: str, host: str) -> None:
        self.cluster = cluster
        self.host = host
        self.port: int | None = None
        self.mode = "ok"
        self.delay = 3.0
        self._ok_page = _PAGE.format(title="burnham", cluster=cluster).encode()
        self._error_page = _PAGE.format(title="500 Internal Server Error", cluster=cluster).encode()
        self._lock = threading.Lock()
        self._requests = 0
        self._connections = 0
        self._by_code: dict[int, int] = {}
        self._buckets = [0] * (len(LATENCY_BUCKETS) + 1)
        self._latency_sum = 0.0
        self._stopping = threading.Event()
        self._server: JoiningHTTPServer | None = None

    def set_mode(self, mode: str, delay: float = 3.0) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.delay = delay
        self.mode = mode

    @property
    def requests(self) -> int:
        """Requests received since start (or the last ``reset_counts``)."""
        return self._requests

    @property
    def connections(self) -> int:
        """TCP connections accepted: far fewer than requests when clients reuse connections."""
        return self._connections

    def reset_counts(self) -> None:
        with self._lock:
            self._requests = self._connections = 0

    def served(self) -> ServedCounts:
        with self._lock:
            return ServedCounts(dict(self._by_code), tuple(self._buckets), self._latency_sum)

    def prometheus_text(self) -> str:
        """The exported metrics in the Prometheus text format."""
        counts = self.served()
        cluster = _label_value(self.cluster)
        lines = [
            "# HELP http_requests_total HTTP requests answered, by status code.",
            "# TYPE http_requests_total counter",
        ]
        lines += [f'http_requests_total{{cluster="{cluster}",code="{code}"}} {n}'
                  for code, n in sorted(counts.by_code.items())]
        lines += [
            "# HELP http_request_duration_seconds Time from reading the request to sending the answer.",
            "# TYPE http_request_duration_seconds histogram",
        ]
        running = 0
        for bound, n in zip(LATENCY_BUCKETS + (float("inf"),), counts.buckets):
            running += n
            le = "+Inf" if bound == float("inf") else repr(bound)
            lines.append(f'http_request_duration_seconds_bucket{{cluster="{cluster}",le="{le}"}} {running}')
        lines.append(f'http_request_duration_seconds_sum{{cluster="{cluster}"}} {counts.latency_sum!r}')
        lines.append(f'http_request_duration_seconds_count{{cluster="{cluster}"}} {running}')
        return "\n".join(lines) + "\n"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    # -- used by the request handler --------------------------------------------------------------------
    def _count_request(self) -> None:
        with self._lock:
            self._requests += 1

    def _count_answer(self, status: int, seconds: float) -> None:
        with self._lock:
            self._by_code[status] = self._by_code.get(status, 0) + 1
            self._buckets[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
            self._latency_sum += seconds

    def _count_connection(self) -> None:
        with self._lock:
            self._connections += 1

    def _bind(self, port: int) -> JoiningHTTPServer:
        server = JoiningHTTPServer((self.host, port), _BackendHandler)
        server.backend = self
        self._server = server
        self.port = server.server_address[1]
        return server

    def _start(self) -> None:
        self._stopping.clear()
        self._server.start(name=f"sandbox-{self.cluster}")

    def stop(self) -> None:
        self._stopping.set()  # slow answers stop waiting
        if self._server is not None:
            self._server.close()
            self._server = None


class _BackendHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so probes can reuse connections
    # Headers and body go out in separate writes: with Nagle's algorithm on, each kept-alive answer would
    # wait ~40 ms for the client's delayed ACK, capping a probe far below what a real ingress serves.
    disable_nagle_algorithm = True
    timeout = 60  # an idle keep-alive connection frees its thread after a minute

    def setup(self) -> None:
        super().setup()
        self.server.backend._count_connection()

    def do_GET(self) -> None:
        self._answer(with_body=True)

    def do_HEAD(self) -> None:
        self._answer(with_body=False)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self._answer(with_body=True)

    def _answer(self, with_body: bool) -> None:
        backend: Backend = self.server.backend
        if self.path.split("?", 1)[0] == METRICS_PATH:
            self._metrics(backend, with_body)
            return
        started = time.monotonic()
        backend._count_request()
        mode = backend.mode
        if mode == "slow" and backend._stopping.wait(backend.delay):
            self.close_connection = True
            return
        status, page = (500, backend._error_page) if mode == "error" else (200, backend._ok_page)
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(page)))
        self.send_header(CLUSTER_HEADER, backend.cluster)
        self.end_headers()
        if with_body:
            self.wfile.write(page)
        backend._count_answer(status, time.monotonic() - started)

    def _metrics(self, backend: "Backend", with_body: bool) -> None:
        body = backend.prometheus_text().encode()
        self.send_response(200)
        self.send_header("Content-Type", PROMETHEUS_CONTENT_TYPE)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def log_message(self, format, *args) -> None:  # noqa: A002 - the base class's name
        pass  # a probe every few milliseconds would flood the terminal


def _label_value(value: str) -> str:
    # Label values escape backslash, double quote and newline (text exposition format).
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class ClusterBackend:
    """Blue on 127.0.0.2 and green on 127.0.0.3, on the same free port (as two clusters behind one name)."""

    def __init__(self, blue_cluster: str = "eks-blueprint-blue", green_cluster: str = "eks-blueprint-green",
                 blue_host: str = "127.0.0.2", green_host: str = "127.0.0.3") -> None:
        self.blue = Backend(blue_cluster, blue_host)
        self.green = Backend(green_cluster, green_host)
        self.port: int | None = None

    def start(self) -> "ClusterBackend":
        def bind(host: str, port: int) -> JoiningHTTPServer:
            backend = self.blue if host == self.blue.host else self.green
            return backend._bind(port)

        _, _, self.port = bind_pair(bind, self.blue.host, self.green.host)
        self.blue._start()
        self.green._start()
        return self

    def stop(self) -> None:
        self.blue.stop()
        self.green.stop()

    def __enter__(self) -> "ClusterBackend":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
