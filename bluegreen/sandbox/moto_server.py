"""moto's threaded server on loopback, on a free port, and the boto3 clients the sandbox itself uses.

The fake credentials are handed to the sandbox's own clients explicitly; the process environment is left
alone, so a real profile can never leak into (or be confused with) the sandbox.
"""

from __future__ import annotations

from typing import Any

FAKE_REGION = "us-east-1"
# moto accepts any key; these only exist so botocore can sign. Never printed.
_FAKE_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def fake_aws_environ() -> dict[str, str]:
    """Environment variables for a process (or the CLI in-process) that should reach the sandbox's moto."""
    return {
        "AWS_ACCESS_KEY_ID": _FAKE_CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": _FAKE_CREDENTIALS["aws_secret_access_key"],
        "AWS_DEFAULT_REGION": FAKE_REGION,
    }


def sandbox_client(endpoint_url: str, service: str = "route53") -> Any:
    import boto3
    from botocore.config import Config as BotoConfig

    return boto3.session.Session().client(
        service,
        endpoint_url=endpoint_url,
        region_name=FAKE_REGION,
        config=BotoConfig(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5, read_timeout=10),
        **_FAKE_CREDENTIALS,
    )


class MotoServer:
    """moto on 127.0.0.1 with a port the kernel picks (never a fixed one)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self._server = None
        self.port: int | None = None

    @property
    def endpoint_url(self) -> str:
        if self.port is None:
            raise RuntimeError("the moto server is not running")
        return f"http://{self.host}:{self.port}"

    def start(self) -> "MotoServer":
        import logging

        from moto.server import ThreadedMotoServer

        # werkzeug (under moto) logs every request at INFO to stderr unless told otherwise; a DNS refresh
        # every 200 ms would bury the user's output. Someone who configured that logger keeps their choice.
        werkzeug_log = logging.getLogger("werkzeug")
        if werkzeug_log.level == logging.NOTSET:
            werkzeug_log.setLevel(logging.WARNING)
        server = ThreadedMotoServer(ip_address=self.host, port=0, verbose=False)
        server.start()
        self._server = server
        self.port = server.get_host_and_port()[1]
        return self

    def stop(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            server.stop()  # werkzeug closes the listening socket when its loop ends
        self.port = None

    def __enter__(self) -> "MotoServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
