"""Webhook notifications against a real HTTP server on 127.0.0.1; the URL never shows in logs."""

from __future__ import annotations

import io
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Iterator

import pytest

from bluegreen import logs
from bluegreen.adapters.notify import Notifier, WebhookTarget
from bluegreen.config.sections import NotifyConfig, parse_notifications
from bluegreen.core.ports import Event
from bluegreen.errors import ConfigError

SECRET_PATH = "/services/T0SECRET/B0SECRET/xoxbSECRETTOKEN123"


class Hooks:
    def __init__(self) -> None:
        self.received: list[tuple[str, dict]] = []
        self.release_slow = threading.Event()
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                hooks.received.append((self.path, body))
                if self.path.startswith("/slow"):
                    hooks.release_slow.wait(3)
                status = 500 if self.path.startswith("/fail") else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, kind: str) -> str:
        return f"{self.base}/{kind}{SECRET_PATH}?token=querySECRET"


@pytest.fixture
def hooks() -> Iterator[Hooks]:
    server = Hooks()
    yield server
    server.release_slow.set()
    server.server.shutdown()


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    logs.configure("json", stream, level="debug")
    yield stream
    logs.configure("json", io.StringIO())


def _config(section: dict) -> SimpleNamespace:
    return SimpleNamespace(name="burnham", notifications=parse_notifications(section))


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _assert_no_secret(text: str, *urls: str) -> None:
    for secret in ("SECRET", "querySECRET", SECRET_PATH, *urls):
        assert secret not in text


def test_success_and_failure_logs_never_show_the_url(hooks: Hooks, log_stream: io.StringIO) -> None:
    ok_url, fail_url = hooks.url("ok"), hooks.url("fail")
    refused_url = f"http://127.0.0.1:{_closed_port()}{SECRET_PATH}"
    notifier = Notifier.from_config(
        _config({"slack_webhook_env": "BG_SLACK", "webhook_env": "BG_HOOK", "timeout": "2s"}),
        environ={"BG_SLACK": ok_url, "BG_HOOK": fail_url}, run_id="r-1")
    assert notifier is not None
    notifier(Event("shift_started", {"target": "green", "steps": [10, 50, 100], "start": "blue=100 green=0",
                                     "estimated_seconds": 600}))
    notifier(Event("hold", {"remaining_seconds": 3}))  # never notified
    notifier(Event("rolled_back", {"reason": "gates failed", "weights": "blue=100 green=0", "token": "abc"}))
    refused = Notifier([WebhookTarget("json", "BG_OTHER", refused_url)], migration="burnham", timeout=1)
    refused.notify("run_failed", {"reason": "boom"})
    notifier.close(5)
    refused.close(5)
    assert (notifier.sent, notifier.failed) == (2, 2)
    assert refused.failed == 1
    output = log_stream.getvalue()
    lines = [json.loads(line) for line in output.splitlines()]
    failures = [line for line in lines if line["event"] == "notification_failed"]
    assert {f["reason"] for f in failures} == {"HTTP 500", "connection refused"}
    assert {f["target"] for f in failures} == {"json webhook ($BG_HOOK)", "json webhook ($BG_OTHER)"}
    assert any(line["event"] == "notification_sent" for line in lines)
    _assert_no_secret(output, ok_url, fail_url, refused_url, "127.0.0.1")
    _assert_no_secret(repr(notifier) + repr(notifier.targets) + str(notifier.targets[0].__dict__), ok_url)
    # What the servers received.
    slack = [body for path, body in hooks.received if path.startswith("/ok")]
    generic = [body for path, body in hooks.received if path.startswith("/fail")]
    assert [set(b) for b in slack] == [{"text"}, {"text"}]
    assert "shift to green started from blue=100 green=0: steps 10%, 50%, 100%" in slack[0]["text"]
    assert "rolled back" in slack[1]["text"]
    assert generic[1]["event"] == "rolled_back" and generic[1]["migration"] == "burnham"
    assert generic[1]["run_id"] == "r-1" and generic[1]["data"]["token"] == "***"


def test_a_slow_webhook_never_delays_the_caller(hooks: Hooks, log_stream: io.StringIO) -> None:
    notifier = Notifier([WebhookTarget("slack", "BG_SLACK", hooks.url("slow"))], migration="m", timeout=0.3)
    began = time.monotonic()
    for _ in range(20):
        notifier(Event("rollback_started", {"reason": "gates failed", "to": "blue=100 green=0"}))
    assert time.monotonic() - began < 0.1
    began = time.monotonic()
    notifier.close(1.0)
    assert time.monotonic() - began < 1.5  # bounded, even with 20 messages queued for a stuck webhook
    output = log_stream.getvalue()
    assert "timed out" in output and "notifications_unsent" in output
    _assert_no_secret(output, hooks.url("slow"))


def test_full_queue_drops_instead_of_blocking(hooks: Hooks, log_stream: io.StringIO) -> None:
    notifier = Notifier([WebhookTarget("slack", "BG_SLACK", hooks.url("slow"))], migration="m", timeout=0.5,
                        max_queue=2)
    for _ in range(6):
        notifier.notify("run_failed", {"reason": "x"})
    assert notifier.dropped >= 3
    hooks.release_slow.set()
    notifier.close(3)


def test_from_config_without_urls(log_stream: io.StringIO) -> None:
    assert Notifier.from_config(SimpleNamespace(name="m", notifications=NotifyConfig())) is None
    config = _config({"slack_webhook_env": "BG_SLACK", "webhook_env": "BG_HOOK"})
    assert Notifier.from_config(config, environ={}) is None
    assert Notifier.from_config(config, environ={"BG_SLACK": "ftp://SECRET"}) is None
    output = log_stream.getvalue()
    assert "$BG_SLACK is not set" in output or "$BG_SLACK" in output
    _assert_no_secret(output)


def test_config_parsing() -> None:
    settings = parse_notifications({"slack_webhook_env": "BLUEGREEN_SLACK_WEBHOOK", "events": ["shift_completed"],
                                    "timeout": "2s"})
    assert settings.events == ("shift_completed",) and settings.timeout == 2.0 and settings.enabled
    assert parse_notifications(None).enabled is False
    assert parse_notifications({"webhook_env": "X"}).events == NotifyConfig.events
    pasted = "https://hooks.slack.com/services/T0SECRET/B0SECRET/xoxbSECRETTOKEN123"
    with pytest.raises(ConfigError) as caught:
        parse_notifications({"slack_webhook_env": pasted})
    assert "SECRET" not in str(caught.value) and "NAME of an environment variable" in str(caught.value)
    with pytest.raises(ConfigError, match="rolled_back"):
        parse_notifications({"webhook_env": "X", "events": ["rolledback"]})
    with pytest.raises(ConfigError, match="hold"):
        parse_notifications({"webhook_env": "X", "events": ["hold"]})
    with pytest.raises(ConfigError, match="notifications.slack_webhook_env"):
        parse_notifications({"slack_webhook": "X"})
    with pytest.raises(ConfigError, match="timeout"):
        parse_notifications({"webhook_env": "X", "timeout": "5m"})


def test_only_selected_events_are_sent() -> None:
    sent: list[tuple[str, dict]] = []
    def post(url: str, body: bytes, timeout: float) -> int:
        sent.append(json.loads(body))
        return 204

    notifier = Notifier([WebhookTarget("json", "X", "http://example.invalid/SECRET")], migration="m",
                        events=["shift_completed"], post=post)
    notifier(Event("step_started", {"step": "10%"}))
    notifier(Event("shift_completed", {"target": "green", "weights": "blue=0 green=100"}))
    notifier.close(2)
    assert [b["event"] for b in sent] == ["shift_completed"]
    assert sent[0]["text"] == "bluegreen `m`: :white_check_mark: shift to green completed: blue=0 green=100"
