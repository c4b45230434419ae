"""A real caching resolver, unbound, on loopback, forwarding the sandbox's zone to the weighted DNS server.

The sandbox's own :class:`~bluegreen.sandbox.caching_resolver.CachingResolver` models what a recursive resolver
does with TTLs; unbound is one that nobody on this project wrote, the kind real clients sit behind (many
distributions' local resolver; the VPC resolver behaves alike). Where the ``unbound`` binary is installed
(Debian: ``apt-get install unbound``) tests run the key scenarios through it too.

The configuration (unbound.conf(5)) keeps it a private, foreground, unprivileged process:

- ``interface: 127.0.0.1`` and a ``port`` picked free beforehand (unbound does not take port 0);
- ``do-not-query-localhost: no``: by default unbound refuses to send queries to 127.0.0.0/8, where the
  weighted server listens;
- a ``forward-zone`` for the sandbox's zone pointing at the weighted server (``forward-addr: 127.0.0.1@PORT``);
- ``module-config: "iterator"``: no DNSSEC validator, so no trust anchor to fetch or keep;
- ``chroot: ""``, ``username: ""``, ``do-daemonize: no``, ``remote-control: control-enable: no``, a pid file and
  working directory in a private temporary directory removed at stop.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

UNBOUND_INSTALL_HINT = "apt-get install unbound"


def unbound_binary() -> str | None:
    """The unbound executable, or None when it is not installed (it lives in /usr/sbin on Debian)."""
    return shutil.which("unbound") or next((p for p in ("/usr/sbin/unbound", "/usr/local/sbin/unbound")
                                            if Path(p).is_file()), None)


def free_port(host: str = "127.0.0.1") -> int:
    """A port free for both UDP and TCP at this moment (unbound needs a number; it may still be taken before
    unbound binds it, which :meth:`Unbound.start` retries)."""
    for _ in range(20):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((host, 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((host, port))
                except OSError:
                    continue
                return port
    raise OSError(f"no port free for both UDP and TCP on {host}")


def unbound_config(*, port: int, zone: str, upstream: str, directory: Path, host: str = "127.0.0.1",
                   cache_max_ttl: int = 86400) -> str:
    """unbound.conf text: a caching forwarder on ``host@port`` sending ``zone`` to ``upstream`` ("host:port")."""
    upstream_host, _, upstream_port = upstream.rpartition(":")
    return f"""server:
    interface: {host}
    port: {port}
    do-ip4: yes
    do-ip6: no
    do-udp: yes
    do-tcp: yes
    access-control: 127.0.0.0/8 allow
    do-not-query-localhost: no
    chroot: ""
    username: ""
    directory: "{directory}"
    pidfile: "{directory / 'unbound.pid'}"
    do-daemonize: no
    use-syslog: no
    logfile: ""
    verbosity: 0
    num-threads: 1
    so-reuseport: no
    module-config: "iterator"
    qname-minimisation: no
    prefetch: no
    serve-expired: no
    cache-min-ttl: 0
    cache-max-ttl: {cache_max_ttl}
    domain-insecure: "{zone}"

remote-control:
    control-enable: no

forward-zone:
    name: "{zone}."
    forward-addr: {upstream_host}@{upstream_port}
"""


class Unbound:
    """``with Unbound(zone="example.com", upstream=sandbox.dns_address) as resolver:`` runs unbound in the
    foreground of a child process until the block ends; ``resolver.address`` is "127.0.0.1:PORT"."""

    def __init__(self, *, zone: str, upstream: str, host: str = "127.0.0.1", binary: str | None = None,
                 start_timeout: float = 5.0) -> None:
        self.zone = zone.rstrip(".").lower()
        self.upstream = upstream
        self.host = host
        self.binary = binary or unbound_binary()
        self.start_timeout = start_timeout
        self.port: int | None = None
        self._process: subprocess.Popen | None = None
        self._directory: Path | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> "Unbound":
        if self.binary is None:
            raise FileNotFoundError(f"unbound is not installed: {UNBOUND_INSTALL_HINT}")
        self._directory = Path(tempfile.mkdtemp(prefix="bluegreen-unbound-"))
        last_error = ""
        try:
            for _ in range(3):  # the free port may be taken between picking it and unbound binding it
                self.port = free_port(self.host)
                config = self._directory / "unbound.conf"
                config.write_text(unbound_config(port=self.port, zone=self.zone, upstream=self.upstream,
                                                 directory=self._directory, host=self.host), encoding="utf-8")
                self._process = subprocess.Popen([self.binary, "-d", "-c", str(config)], stdin=subprocess.DEVNULL,
                                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                if self._wait_until_answering():
                    return self
                last_error = self._stop_process()
            raise RuntimeError(f"unbound did not start: {last_error.strip()[-500:]}")
        except BaseException:
            self.stop()
            raise

    def _wait_until_answering(self) -> bool:
        import dns.exception
        import dns.message
        import dns.query

        deadline = time.monotonic() + self.start_timeout
        # The zone apex (moto creates its SOA and NS): any answer, even a negative one, means unbound is up.
        query = dns.message.make_query(f"{self.zone}.", "SOA")
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            try:
                dns.query.udp(query, self.host, port=self.port, timeout=0.2)
                return True
            except (dns.exception.Timeout, OSError):
                time.sleep(0.05)
        return False

    def _stop_process(self) -> str:
        """Stop unbound (SIGTERM, then SIGKILL after 5 s); returns what it wrote to stderr."""
        process, self._process = self._process, None
        if process is None:
            return ""
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        errors = process.stderr.read().decode("utf-8", "replace") if process.stderr else ""
        if process.stderr:
            process.stderr.close()
        return errors

    def stop(self) -> None:
        self._stop_process()
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None

    def __enter__(self) -> "Unbound":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
