"""A real Prometheus server for the sandbox and the tests: Debian's ``prometheus`` package (/usr/bin/prometheus),
on loopback, with a generated config that scrapes the sandbox's backends, and its own temporary storage.

Install it with ``apt-get install -y --no-install-recommends prometheus``. The package's systemd unit is not
used: this module starts the binary itself, in the foreground, and stops it (SIGTERM, then SIGKILL) with
nothing left behind.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Sequence

DEFAULT_BINARY = "/usr/bin/prometheus"
INSTALL_HINT = "apt-get install -y --no-install-recommends prometheus"


def prometheus_binary() -> str | None:
    """The binary's path, or None when it is not installed."""
    explicit = os.environ.get("BLUEGREEN_PROMETHEUS")
    for candidate in (explicit, DEFAULT_BINARY, shutil.which("prometheus")):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def _free_port(host: str) -> int:
    # Prometheus cannot report the port it got for ":0", so the kernel picks one here and Prometheus binds
    # it right after; start() retries with another port in the rare case someone took it in between.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def scrape_config(targets: Sequence[str], scrape_interval: float, job: str = "sandbox-backends") -> str:
    """The prometheus.yml text (YAML is a superset of JSON, so JSON lists are fine in it)."""
    import json

    interval = f"{max(1, int(scrape_interval))}s"
    return (
        "global:\n"
        f"  scrape_interval: {interval}\n"
        f"  evaluation_interval: {interval}\n"
        "scrape_configs:\n"
        f"  - job_name: {json.dumps(job)}\n"
        f"    scrape_interval: {interval}\n"
        f"    scrape_timeout: {interval}\n"
        "    metrics_path: /metrics\n"
        f"    static_configs:\n      - targets: {json.dumps(list(targets))}\n"
    )


class PrometheusServer:
    """``with PrometheusServer(["127.0.0.2:8080", "127.0.0.3:8080"]) as prom: prom.url``"""

    def __init__(self, targets: Sequence[str], *, scrape_interval: float = 1.0, host: str = "127.0.0.1",
                 binary: str | None = None, start_timeout: float = 30.0) -> None:
        self.targets = list(targets)
        self.scrape_interval = scrape_interval
        self.host = host
        self.binary = binary or prometheus_binary()
        self.start_timeout = start_timeout
        self.port: int | None = None
        self._process: subprocess.Popen | None = None
        self._workdir: Path | None = None
        self._log = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("prometheus is not running")
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> "PrometheusServer":
        if self.binary is None:
            raise FileNotFoundError(f"prometheus is not installed: {INSTALL_HINT}")
        self._workdir = Path(tempfile.mkdtemp(prefix="bluegreen-prometheus-"))
        config = self._workdir / "prometheus.yml"
        config.write_text(scrape_config(self.targets, self.scrape_interval))
        last_error = ""
        for _ in range(5):
            port = _free_port(self.host)
            if self._launch(config, port):
                return self
            last_error = self._log_tail()
        self.stop()
        raise RuntimeError(f"prometheus did not start: {last_error}")

    def _launch(self, config: Path, port: int) -> bool:
        storage = self._workdir / f"data-{port}"
        log_path = self._workdir / "prometheus.log"
        self._log = open(log_path, "ab")
        self._process = subprocess.Popen(
            [self.binary, f"--config.file={config}", f"--storage.tsdb.path={storage}",
             f"--web.listen-address={self.host}:{port}", "--log.level=warn",
             # Keep the test server small and quiet: no retention to speak of, no web console files needed.
             "--storage.tsdb.retention.time=1h"],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log, start_new_session=True)
        self.port = port
        deadline = time.monotonic() + self.start_timeout
        import requests

        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._reap()
                return False  # e.g. the port was taken in between: try another
            try:
                if requests.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    return True
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self._reap()
        return False

    def _log_tail(self) -> str:
        try:
            text = (self._workdir / "prometheus.log").read_text(errors="replace")
        except OSError:
            return ""
        return " ".join(text.split())[-500:]

    def _reap(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None
        self.port = None

    def stop(self) -> None:
        """SIGTERM (Prometheus shuts down cleanly on it), SIGKILL after 10 s; the storage dir is removed."""
        self._reap()
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def wait_for_samples(self, query: str, timeout: float = 20.0) -> list:
        """Poll an instant query until it returns a non-empty result (the first scrapes take a moment)."""
        import requests

        deadline = time.monotonic() + timeout
        while True:
            answer = requests.get(f"{self.url}/api/v1/query", params={"query": query}, timeout=5).json()
            result = answer.get("data", {}).get("result") or []
            if result or time.monotonic() >= deadline:
                return result
            time.sleep(0.2)

    def __enter__(self) -> "PrometheusServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
