"""Faults the real Route 53 produces and moto does not: a proxy in front of moto that throttles on demand.

``ThrottlingProxy`` answers the first N requests (of one operation, or of all) with a Route 53 error
(``Throttling``, ``PriorRequestNotComplete``, or a 5xx), then forwards everything to moto. It counts the
calls per operation on the way, which is also how a benchmark counts API calls per step.
"""

from __future__ import annotations

import http.client
import re
import threading
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from bluegreen.sandbox.servers import JoiningHTTPServer

# Route 53 is a REST API: the operation is the method plus the path (2013-04-01 is its only API version).
_ROUTE53_OPERATIONS = [
    ("POST", r"/2013-04-01/hostedzone/[^/]+/rrset/?", "ChangeResourceRecordSets"),
    ("GET", r"/2013-04-01/hostedzone/[^/]+/rrset/?", "ListResourceRecordSets"),
    ("GET", r"/2013-04-01/change/[^/]+", "GetChange"),
    ("GET", r"/2013-04-01/hostedzone/?", "ListHostedZones"),
    ("POST", r"/2013-04-01/hostedzone/?", "CreateHostedZone"),
    ("GET", r"/2013-04-01/hostedzone/[^/]+", "GetHostedZone"),
    ("DELETE", r"/2013-04-01/hostedzone/[^/]+", "DeleteHostedZone"),
    ("GET", r"/2013-04-01/hostedzonesbyname/?", "ListHostedZonesByName"),
    ("GET", r"/2013-04-01/hostedzonecount/?", "GetHostedZoneCount"),
    ("GET", r"/2013-04-01/healthcheck/?", "ListHealthChecks"),
    ("GET", r"/2013-04-01/healthcheck/[^/]+", "GetHealthCheck"),
    ("GET", r"/2013-04-01/tags/[^/]+/[^/]+", "ListTagsForResource"),
    ("POST", r"/2013-04-01/tags/[^/]+/[^/]+", "ChangeTagsForResource"),
]
_COMPILED = [(method, re.compile(pattern), name) for method, pattern, name in _ROUTE53_OPERATIONS]

_MESSAGES = {
    "Throttling": "Rate exceeded",
    "PriorRequestNotComplete": "The request was rejected because Route 53 was still processing a prior request.",
    "InternalError": "An internal error occurred.",
    "ServiceUnavailable": "The service is unavailable. Try again later.",
}
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
               "te", "trailer", "transfer-encoding", "upgrade", "host", "content-length"}


def operation_of(method: str, path: str, headers=None, body: bytes = b"") -> str:
    """The AWS operation a request calls: Route 53's REST paths, else X-Amz-Target (JSON APIs), else the
    form's Action (query APIs such as STS), else ``METHOD /first/segment``."""
    route = urlsplit(path).path
    for wanted, pattern, name in _COMPILED:
        if method == wanted and pattern.fullmatch(route):
            return name
    target = headers.get("X-Amz-Target") if headers is not None else None
    if target:
        return target.rpartition(".")[2]
    if body and b"Action=" in body:
        action = parse_qs(body.decode("utf-8", "replace")).get("Action")
        if action:
            return action[0]
    query_action = parse_qs(urlsplit(path).query).get("Action")
    if query_action:
        return query_action[0]
    return f"{method} /{route.strip('/').split('/')[0]}"


def error_body(code: str, message: str | None = None, *, status: int = 400) -> bytes:
    kind = "Sender" if status < 500 else "Receiver"
    text = message or _MESSAGES.get(code, code)
    return (
        '<?xml version="1.0"?>\n'
        '<ErrorResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/">'
        f"<Error><Type>{kind}</Type><Code>{code}</Code><Message>{text}</Message></Error>"
        f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    ).encode()


class ThrottlingProxy:
    """An HTTP proxy on 127.0.0.1 (free port) in front of ``upstream_url``, failing the first N calls."""

    def __init__(self, upstream_url: str, fail_first: int = 0, *, code: str = "Throttling", status: int = 400,
                 operation: str | None = None, message: str | None = None, host: str = "127.0.0.1") -> None:
        upstream = urlsplit(upstream_url)
        if upstream.scheme != "http" or not upstream.hostname:
            raise ValueError(f"the upstream must be an http:// URL, got {upstream_url!r}")
        self.upstream_host = upstream.hostname
        self.upstream_port = upstream.port or 80
        self.host = host
        self.port: int | None = None
        self.calls: Counter[str] = Counter()  # every call received, failed or forwarded
        self.failures: Counter[str] = Counter()  # calls answered with the injected error
        self._lock = threading.Lock()
        self._upstream = threading.local()  # one keep-alive connection to moto per handler thread
        self._upstream_connections: list[http.client.HTTPConnection] = []  # all of them, to close at stop
        self._server: JoiningHTTPServer | None = None
        self.fail_next(fail_first, code=code, status=status, operation=operation, message=message)

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def fail_next(self, count: int, *, code: str = "Throttling", status: int = 400, operation: str | None = None,
                  message: str | None = None) -> None:
        """Answer the next ``count`` calls (of ``operation``, or of any) with this error; replaces any plan."""
        with self._lock:
            self._remaining = count
            self._code, self._status, self._operation, self._message = code, status, operation, message

    @property
    def remaining_failures(self) -> int:
        return self._remaining

    def reset_counts(self) -> None:
        with self._lock:
            self.calls.clear()
            self.failures.clear()

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self.calls)

    def start(self) -> "ThrottlingProxy":
        server = JoiningHTTPServer((self.host, 0), _ProxyHandler)
        server.proxy = self
        self._server = server
        self.port = server.server_address[1]
        server.start(name="sandbox-throttling-proxy")
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        with self._lock:
            connections, self._upstream_connections = self._upstream_connections, []
        for connection in connections:
            connection.close()

    def __enter__(self) -> "ThrottlingProxy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- used by the handler -------------------------------------------------------------------------------
    def _decide(self, operation: str) -> tuple[int, bytes] | None:
        """Count the call; return the error to answer with, or None to forward it."""
        with self._lock:
            self.calls[operation] += 1
            if self._remaining > 0 and self._operation in (None, operation):
                self._remaining -= 1
                self.failures[operation] += 1
                return self._status, error_body(self._code, self._message, status=self._status)
        return None

    def _exchange(self, operation: str, method: str, path: str, headers: dict[str, str], body: bytes):
        """Answer one call that was not failed on purpose: here, by forwarding it. Subclasses (the Route 53
        proxy that keeps changes PENDING) answer some operations themselves."""
        return self._forward(method, path, headers, body)

    def _forward(self, method: str, path: str, headers: dict[str, str], body: bytes):
        for attempt in (1, 2):
            connection = getattr(self._upstream, "connection", None)
            if connection is None:
                connection = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=30)
                self._upstream.connection = connection
                with self._lock:
                    self._upstream_connections.append(connection)
            try:
                connection.request(method, path, body=body or None, headers=headers)
                response = connection.getresponse()
                return response.status, response.getheaders(), response.read()
            except (http.client.HTTPException, OSError):
                # A kept-alive connection the server closed meanwhile: retry once on a fresh one.
                connection.close()
                self._upstream.connection = None
                with self._lock:
                    self._upstream_connections.remove(connection)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60

    def _handle(self) -> None:
        proxy: ThrottlingProxy = self.server.proxy
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        operation = operation_of(self.command, self.path, self.headers, body)
        failure = proxy._decide(operation)
        if failure is not None:
            status, payload = failure
            self._send(status, [("Content-Type", "text/xml"), ("x-amzn-RequestId", str(uuid.uuid4()))], payload)
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        headers["Host"] = f"{proxy.upstream_host}:{proxy.upstream_port}"
        try:
            status, upstream_headers, payload = proxy._exchange(operation, self.command, self.path, headers, body)
        except (http.client.HTTPException, OSError):
            self._send(502, [("Content-Type", "text/plain")], b"moto is not answering\n")
            return
        kept = [(k, v) for k, v in upstream_headers if k.lower() not in _HOP_BY_HOP]
        self._send(status, kept, payload)

    def _send(self, status: int, headers, payload: bytes) -> None:
        self.send_response_only(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _handle

    def log_message(self, format, *args) -> None:  # noqa: A002 - the base class's name
        pass
