"""Logging set-up (structlog) and the event sink that turns engine events into log lines.

Console on a TTY, JSON otherwise. Logs go to stderr; command results go to stdout. Values that look like
secrets are masked as a last line of defence: the code never logs them on purpose.
"""

from __future__ import annotations

import sys
from typing import IO, Any

from bluegreen.core.durations import format_duration
from bluegreen.core.redact import scrub
from bluegreen.core.ports import Event

def _redact(_logger: Any, _name: str, event_dict: dict) -> dict:
    event = event_dict.pop("event", None)
    masked = scrub(event_dict)
    if event is not None:
        masked["event"] = event
    return masked


def configure(fmt: str | None, stream: IO[str] | None = None, level: str = "info") -> str:
    """Configure structlog once per process. Returns the format chosen (console or json)."""
    import logging

    import structlog

    stream = stream or sys.stderr
    if fmt is None:
        fmt = "console" if getattr(stream, "isatty", lambda: False)() else "json"
    renderer = (structlog.processors.JSONRenderer() if fmt == "json"
                else structlog.dev.ConsoleRenderer(colors=getattr(stream, "isatty", lambda: False)()))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper(), logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    return fmt


class LogSink:
    """Logs every engine event. ``hold`` events (one a second) become a countdown line on a TTY, and one
    line every ``hold_log_every`` seconds otherwise, so JSON logs of a day-long cutover stay readable."""

    # What the console leaves out (the JSON logs and the journal keep it): per-probe and per-side numbers
    # that the live panel and the step summary show better than a wrapped dict.
    BULKY = ("probes", "sides", "metric_gates")

    def __init__(self, stream: IO[str], *, tty: bool, hold_log_every: float = 10.0, compact: bool = False) -> None:
        import structlog

        self.log = structlog.get_logger("bluegreen")
        self.stream = stream
        self.tty = tty
        self.compact = compact  # console format: no bulky dicts in the lines
        self.hold_log_every = hold_log_every
        self._last_hold: dict[str, float] = {}
        self._progress_shown = False

    def __call__(self, event: Event) -> None:
        if event.kind == "hold":
            self._hold(event.data)
            return
        self._clear_progress()
        from bluegreen.core.events import WARNING_EVENTS

        level = "warning" if str(event.kind) in WARNING_EVENTS else "info"
        data = {k: v for k, v in event.data.items() if not (self.compact and k in self.BULKY)}
        getattr(self.log, level)(str(event.kind), **data)

    def _hold(self, data: dict) -> None:
        remaining = float(data.get("remaining_seconds", 0))
        if self.tty:
            share = " ".join(f"{probe}[{', '.join(f'{c} {p:.0f}%' for c, p in s.items())}]"
                             for probe, s in data.get("share", {}).items() if s)
            line = (f"\r  step {data.get('step')}: {format_duration(remaining)} left, {data.get('samples', 0)} "
                    f"samples, {data.get('verdict')} {share}")
            self.stream.write(line[:160].ljust(100))
            self.stream.flush()
            self._progress_shown = True
            return
        step = str(data.get("step"))
        last = self._last_hold.get(step)
        if last is None or last - remaining >= self.hold_log_every or remaining <= 0:
            self._last_hold[step] = remaining
            self.log.info("hold", **data)

    def _clear_progress(self) -> None:
        if self._progress_shown:
            self.stream.write("\n")
            self._progress_shown = False
