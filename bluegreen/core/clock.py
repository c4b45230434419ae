"""Time as a dependency. The engine never calls ``time`` directly, so tests inject :class:`FakeClock`
and assert a five-minute pause without waiting five minutes. Pure (the real clock is the one exception,
and it only reads the system clock)."""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def wall(self) -> float:
        """Seconds since the epoch, for messages such as 'every client is on blue by 12:04:31'."""
        ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def __init__(self, stop: threading.Event | None = None) -> None:
        # An interrupt sets ``stop`` and every pending sleep returns at once.
        self.stop = stop

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        if self.stop is not None:
            self.stop.wait(seconds)
        else:
            time.sleep(seconds)


class FakeClock:
    """A clock that moves only when someone sleeps. Records every sleep for assertions."""

    def __init__(self, start: float = 1_000.0, wall_start: float = 1_800_000_000.0) -> None:
        self._now = start
        self._wall_offset = wall_start - start
        self.sleeps: list[float] = []
        self.on_sleep = None  # optional callback(clock) run after each sleep, to inject events

    def monotonic(self) -> float:
        return self._now

    def wall(self) -> float:
        return self._now + self._wall_offset

    def sleep(self, seconds: float) -> None:
        seconds = max(0.0, seconds)
        self.sleeps.append(seconds)
        self._now += seconds
        if self.on_sleep is not None:
            self.on_sleep(self)

    def advance(self, seconds: float) -> None:
        self._now += seconds
