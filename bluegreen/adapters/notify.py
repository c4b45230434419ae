"""Notifications: a Slack-compatible incoming webhook and a generic JSON webhook.

Config (every key optional; no section, no notifications)::

    notifications:
      slack_webhook_env: BLUEGREEN_SLACK_WEBHOOK   # NAME of the env var holding the Slack webhook URL
      webhook_env: BLUEGREEN_WEBHOOK               # NAME of the env var holding a generic JSON webhook URL
      events: [shift_started, step_passed, rolled_back, shift_completed, conflict, interrupted, run_failed]
      timeout: 3s                                  # per request

The URLs carry their own credentials (a Slack webhook URL *is* the token), so they come only from the
environment and never appear in config, logs, errors, journals or reprs: a failed delivery is logged with
the variable's name, the event and an error class or HTTP status, nothing else.

Messages are sent from one background thread, with a short timeout, through a bounded queue: the engine's
``on_event`` only enqueues, so a slow or dead webhook never delays a step or a rollback. ``close`` waits a
bounded time for the queue to drain when the command ends. Uses only the standard library (urllib).
"""

from __future__ import annotations

import json
import os
import queue
import re
import socket
import threading
import time
from typing import Any, Callable, Iterable, Mapping

from bluegreen.core.events import DEFAULT_NOTIFIED
from bluegreen.core.ports import Event

DEFAULT_TIMEOUT = 3.0


class _Secret:
    """Holds a URL; its repr and str never show it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "'***'"

    __str__ = __repr__


class WebhookTarget:
    """One webhook: ``kind`` is ``slack`` (``{"text": ...}``) or ``json`` (the full event)."""

    def __init__(self, kind: str, env_name: str, url: str) -> None:
        if kind not in ("slack", "json"):
            raise ValueError(f"unknown webhook kind {kind!r}")
        self.kind = kind
        self.env_name = env_name
        self._url = _Secret(url)

    @property
    def label(self) -> str:
        return f"{self.kind} webhook (${self.env_name})"

    def __repr__(self) -> str:
        return f"WebhookTarget({self.kind!r}, url from ${self.env_name})"


def _log():
    import structlog

    return structlog.get_logger("bluegreen.notify")


def describe_failure(error: BaseException) -> str:
    """What went wrong, without anything from the URL (host, path, query)."""
    import urllib.error

    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code}"
    if isinstance(error, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(error, urllib.error.URLError):
        reason = error.reason
        if isinstance(reason, (socket.timeout, TimeoutError)):
            return "timed out"
        if isinstance(reason, socket.gaierror):
            return "name resolution failed"
        if isinstance(reason, ConnectionRefusedError):
            return "connection refused"
        return f"connection failed ({type(reason).__name__})"
    return type(error).__name__


def post_json(url: str, body: bytes, timeout: float) -> int:
    """POST ``body`` as JSON; returns the HTTP status. Raises urllib errors (see describe_failure)."""
    import urllib.request

    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "bluegreen"})
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - https/http from config
        response.read(1024)
        return int(response.status)


_STOP = object()


class Notifier:
    """An EventSink that sends the selected events to the webhooks, from a background thread."""

    def __init__(
        self,
        targets: Iterable[WebhookTarget],
        *,
        migration: str,
        events: Iterable[str] = tuple(e.value for e in DEFAULT_NOTIFIED),
        run_id: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_queue: int = 200,
        post: Callable[[str, bytes, float], int] = post_json,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.targets = tuple(targets)
        self.migration = migration
        self.events = frozenset(events)
        self.run_id = run_id
        self.timeout = timeout
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self._post = post
        self._wall = wall
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._host = socket.gethostname()

    @classmethod
    def from_config(cls, config: Any, *, environ: Mapping[str, str] | None = None, run_id: str | None = None,
                    **kwargs: Any) -> "Notifier | None":
        """None when no webhook is configured or none of the named variables is set (that is logged)."""
        settings = config.notifications
        if not settings.enabled:
            return None
        environ = os.environ if environ is None else environ
        targets = []
        for kind, env_name in (("slack", settings.slack_webhook_env), ("json", settings.webhook_env)):
            if not env_name:
                continue
            url = (environ.get(env_name) or "").strip()
            if not url:
                _log().warning("notifications_disabled", target=kind, reason=f"${env_name} is not set or empty")
                continue
            if not re.match(r"^https?://", url, re.IGNORECASE):
                _log().warning("notifications_disabled", target=kind,
                               reason=f"${env_name} does not hold an http(s) URL")
                continue
            targets.append(WebhookTarget(kind, env_name, url))
        if not targets:
            return None
        return cls(targets, migration=config.name, events=settings.events, run_id=run_id,
                   timeout=settings.timeout, **kwargs)

    def __repr__(self) -> str:
        return f"Notifier({', '.join(t.label for t in self.targets)}, events={sorted(self.events)})"

    # -- EventSink -----------------------------------------------------------------------------------
    def __call__(self, event: Event) -> None:
        if event.kind in self.events:
            self.notify(event.kind, event.data)

    def notify(self, kind: str, data: Mapping[str, Any] | None = None) -> None:
        """Queue one message. Never blocks and never raises."""
        try:
            self._ensure_thread()
            self._queue.put_nowait((kind, dict(data or {}), self._wall()))
        except queue.Full:
            self.dropped += 1
            _log().warning("notification_dropped", notification=kind, reason="queue full (webhook too slow)")
        except Exception as error:  # noqa: BLE001 - notifications must never break a run
            _log().warning("notification_dropped", notification=kind, reason=type(error).__name__)

    def close(self, timeout: float = 5.0) -> None:
        """Wait up to ``timeout`` seconds for queued messages, then stop the thread."""
        thread = self._thread
        if thread is None:
            return
        deadline = time.monotonic() + timeout
        try:
            self._queue.put(_STOP, timeout=max(0.0, timeout))
        except queue.Full:
            pass
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            left = self._queue.qsize()
            _log().warning("notifications_unsent", count=left, reason=f"webhook still busy after {timeout:g}s")

    # -- sending -------------------------------------------------------------------------------------
    def _ensure_thread(self) -> None:
        if self._thread is not None:
            return
        with self._start_lock:
            if self._thread is None:
                thread = threading.Thread(target=self._worker, name="bluegreen-notify", daemon=True)
                thread.start()
                self._thread = thread

    def _worker(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            kind, data, at = item
            for target in self.targets:
                try:
                    self._send(target, kind, data, at)
                except Exception:  # noqa: BLE001 - the sender thread must outlive any one message
                    self.failed += 1

    def _send(self, target: WebhookTarget, kind: str, data: dict, at: float) -> None:
        try:
            body = json.dumps(self.payload(target.kind, kind, data, at), default=str).encode("utf-8")
            status = self._post(target._url.reveal(), body, self.timeout)
            if status >= 300:
                raise _Status(status)
            self.sent += 1
            _log().debug("notification_sent", target=target.label, notification=kind)
        except Exception as error:  # noqa: BLE001 - log the class only: messages may hold the URL
            self.failed += 1
            reason = f"HTTP {error.status}" if isinstance(error, _Status) else describe_failure(error)
            _log().warning("notification_failed", target=target.label, notification=kind, reason=reason)

    def payload(self, target_kind: str, kind: str, data: Mapping[str, Any], at: float) -> dict:
        from bluegreen.core.redact import scrub

        text = f"bluegreen `{self.migration}`: {summarize(kind, data)}"
        if target_kind == "slack":
            return {"text": text}
        from datetime import datetime, timezone

        return {
            "source": "bluegreen", "migration": self.migration, "event": kind, "run_id": self.run_id,
            "host": self._host, "at": datetime.fromtimestamp(at, tz=timezone.utc).isoformat(timespec="seconds"),
            "text": text, "data": scrub(dict(data)),
        }


class _Status(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


def summarize(kind: str, data: Mapping[str, Any]) -> str:
    """One line a person reads in a chat channel."""
    from bluegreen.core.redact import scrub_text

    def get(key: str) -> str:
        return scrub_text(str(data.get(key, "?")))

    if kind == "shift_started":
        steps = ", ".join(f"{s}%" for s in data.get("steps", []))
        minutes = float(data.get("estimated_seconds") or 0) / 60
        return f"shift to {get('target')} started from {get('start')}: steps {steps} (about {minutes:.0f} min)"
    if kind == "step_started":
        return f"step {get('step')} started: {get('weights')}"
    if kind == "weights_changed":
        return f"weights changed ({get('step')}): {get('old')} -> {get('new')}"
    if kind == "step_passed":
        return f"step {get('step')} passed at {get('weights')}"
    if kind == "gates_failed":
        return f"gates failed at {get('step')}: " + "; ".join(scrub_text(str(r)) for r in data.get("reasons", []))
    if kind == "rollback_started":
        return f":warning: rolling back to {get('to')}: {get('reason')}"
    if kind == "rolled_back":
        return f":rewind: rolled back to {get('weights')}: {get('reason')}"
    if kind == "conflict":
        return f":octagonal_sign: stopped: the weights were changed by someone else (found {get('found')})"
    if kind == "interrupted":
        return f":pause_button: interrupted; holding at {get('weights')}"
    if kind == "shift_completed":
        return f":white_check_mark: shift to {get('target')} completed: {get('weights')}"
    if kind == "nothing_to_do":
        return f"nothing to do: weights already at {get('weights')}"
    if kind == "run_failed":
        return f":x: run failed: {get('reason')}"
    if kind == "lock_lost":
        return f":octagonal_sign: lock taken over by {get('holder')}; this run stopped"
    return scrub_text(kind)
