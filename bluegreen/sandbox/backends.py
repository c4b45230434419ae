"""The two clusters' apps: HTTP servers on 127.0.0.2 (blue) and 127.0.0.3 (green), on one port.

They answer like the EKS Blueprints sample page, which names the cluster that served it, so a probe (or a
person with ``curl | grep CLUSTER_NAME``) can tell where the request went. Each has a switch to break it.
"""

from __future__ import annotations

import threading
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

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    # -- used by the request handler --------------------------------------------------------------------
    def _count_request(self) -> None:
        with self._lock:
            self._requests += 1

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

    def log_message(self, format, *args) -> None:  # noqa: A002 - the base class's name
        pass  # a probe every few milliseconds would flood the terminal


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
