"""Small pieces shared by the sandbox's servers: binding without reverse DNS, and stopping for real."""

from __future__ import annotations

import socket
import socketserver
import threading
from http.server import ThreadingHTTPServer


class JoiningHTTPServer(ThreadingHTTPServer):
    """A threaded HTTP server whose ``close()`` leaves nothing behind.

    Handler threads are tracked and joined (not daemons), and idle keep-alive connections are shut down so
    those threads see the end of their connection instead of waiting for the client.
    """

    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True

    def __init__(self, address, handler) -> None:
        self._live: set[socket.socket] = set()
        self._live_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        super().__init__(address, handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind asks for the FQDN of the address: a reverse DNS lookup that can stall start-up.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def process_request(self, request, client_address) -> None:
        with self._live_lock:
            self._live.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request) -> None:
        with self._live_lock:
            self._live.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address) -> None:
        import sys

        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return  # a client that hung up (a probe that timed out) is business as usual here
        super().handle_error(request, client_address)

    def start(self, name: str) -> None:
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, name=name,
                                        daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._thread is not None:
            self.shutdown()
            self._thread.join()
            self._thread = None
        with self._live_lock:
            live = list(self._live)
        for connection in live:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by the client
        self.server_close()  # joins the handler threads


def bind_pair(make, first_host: str, second_host: str, attempts: int = 20):
    """Two servers on the same free port, on two addresses: pick a port on the first, retry if the second
    address has it taken."""
    last_error: OSError | None = None
    for _ in range(attempts):
        first = make(first_host, 0)
        port = first.server_address[1]
        try:
            second = make(second_host, port)
        except OSError as error:
            last_error = error
            first.server_close()
            continue
        return first, second, port
    raise OSError(f"no port free on both {first_host} and {second_host}: {last_error}")
