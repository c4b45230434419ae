"""Scheduled cutovers: the ``--not-before`` / ``--not-after`` window (the ``--max-steps`` budget is
``bluegreen.core.plan.limit_steps``). Pure:
the time comes from an injected clock (``clock.wall()``) and the time zone is a parameter.

Time forms accepted by ``--not-before`` and ``--not-after``:

* an ISO 8601 date and time **with** an offset: ``2025-06-01T22:00:00+02:00``, ``2025-06-01T20:00Z``,
  ``2025-06-01 22:00+02:00``. A one-off window. A time without an offset is refused (which zone would
  a pod in UTC and a laptop in Seoul agree on?).
* ``HH:MM`` (24-hour, ``HH:MM:SS`` also accepted): a time of day in the local time zone of the process
  (``TZ``; a pod is usually UTC), checked every day, for a CronJob that runs nightly. When both bounds are
  ``HH:MM`` and ``--not-after`` is earlier than ``--not-before`` (``22:00`` .. ``04:00``), the window
  spans midnight.

Outside the window a run does nothing and exits 0 (the scheduler just tries again later). The bounds are
inclusive: a run at exactly ``--not-before`` or ``--not-after`` is inside.

``--max-steps N`` lets one run advance at most N steps of the plan, for cutovers spread over days
("10% tonight, 50% tomorrow night"); the next ``--resume`` run picks up where it stopped. Leading steps
that would not change the live weights (the ``0%`` a plan starts with) only bake and do not count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, time as dtime, timedelta, timezone, tzinfo

from bluegreen.core.clock import Clock
from bluegreen.errors import ConfigError

_DAILY = re.compile(r"^(?P<h>\d{1,2}):(?P<m>\d{2})(?::(?P<s>\d{2}))?$")


@dataclass(frozen=True)
class TimeBound:
    text: str
    at: datetime | None = None  # absolute, timezone-aware
    daily: dtime | None = None  # time of day, local

    @property
    def is_daily(self) -> bool:
        return self.daily is not None


def parse_time_bound(text: str, flag: str = "--not-before") -> TimeBound:
    """Parse one bound. Raises ConfigError (exit 2) saying which forms are accepted."""
    raw = str(text).strip()
    forms = "use an ISO 8601 time with an offset (2025-06-01T22:00+02:00, or Z for UTC) or HH:MM local time"
    daily = _DAILY.match(raw)
    if daily:
        hour, minute, second = int(daily["h"]), int(daily["m"]), int(daily["s"] or 0)
        if hour > 23 or minute > 59 or second > 59:
            raise ConfigError(f"{flag} {raw!r} is not a time of day (00:00..23:59)")
        return TimeBound(text=raw, daily=dtime(hour, minute, second))
    candidate = raw.replace(" ", "T", 1) if "T" not in raw.upper() else raw
    candidate = re.sub(r"[zZ]$", "+00:00", candidate)
    try:
        at = datetime.fromisoformat(candidate)
    except ValueError:
        raise ConfigError(f"{flag} {raw!r} is not a time bluegreen understands", hint=forms) from None
    if at.tzinfo is None or "T" not in candidate.upper():
        raise ConfigError(f"{flag} {raw!r} has no time zone offset", hint=forms)
    return TimeBound(text=raw, at=at)


@dataclass(frozen=True)
class WindowCheck:
    inside: bool
    reason: str
    opens_in: float | None = None  # seconds until the window opens, when before it and known


def _human(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes = rest // 60
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m" if minutes else f"{seconds}s"


def check_window(
    not_before: str | TimeBound | None,
    not_after: str | TimeBound | None,
    clock: Clock,
    tz: tzinfo | None = None,
) -> WindowCheck:
    """Is now inside the window? ``tz`` is the local zone for HH:MM bounds (None: the process's zone)."""
    nb = parse_time_bound(not_before, "--not-before") if isinstance(not_before, str) else not_before
    na = parse_time_bound(not_after, "--not-after") if isinstance(not_after, str) else not_after
    if nb is None and na is None:
        return WindowCheck(True, "no time window set")
    now_utc = datetime.fromtimestamp(clock.wall(), tz=timezone.utc)
    now_local = now_utc.astimezone(tz) if tz is not None else now_utc.astimezone()
    zone = now_local.tzname() or "local"

    if nb is not None and na is not None and not nb.is_daily and not na.is_daily:
        assert nb.at is not None and na.at is not None
        if na.at < nb.at:
            raise ConfigError(f"--not-after {na.text} is before --not-before {nb.text}: the window is empty")

    # Two daily bounds make one daily window, possibly across midnight.
    if nb is not None and na is not None and nb.is_daily and na.is_daily:
        assert nb.daily is not None and na.daily is not None
        t = now_local.time().replace(microsecond=0)
        if nb.daily <= na.daily:
            inside = nb.daily <= t <= na.daily
        else:
            inside = t >= nb.daily or t <= na.daily
        label = f"{nb.text}..{na.text} {zone}"
        if inside:
            return WindowCheck(True, f"inside the daily window {label}")
        opens = _next_daily(now_local, nb.daily)
        wait = (opens - now_local).total_seconds()
        return WindowCheck(False, f"outside the daily window {label}: it opens at {nb.text} (in {_human(wait)})",
                           opens_in=wait)

    if nb is not None:
        if nb.is_daily:
            assert nb.daily is not None
            start = datetime.combine(now_local.date(), nb.daily, tzinfo=now_local.tzinfo)
            if now_local < start:
                wait = (start - now_local).total_seconds()
                return WindowCheck(False, f"too early: --not-before {nb.text} {zone} (in {_human(wait)})",
                                   opens_in=wait)
        else:
            assert nb.at is not None
            if now_utc < nb.at:
                wait = (nb.at - now_utc).total_seconds()
                return WindowCheck(False, f"too early: --not-before {nb.text} (in {_human(wait)})", opens_in=wait)
    if na is not None:
        if na.is_daily:
            assert na.daily is not None
            end = datetime.combine(now_local.date(), na.daily, tzinfo=now_local.tzinfo)
            if now_local > end:
                return WindowCheck(False, f"too late: --not-after {na.text} {zone} has passed today")
        else:
            assert na.at is not None
            if now_utc > na.at:
                return WindowCheck(False, f"too late: --not-after {na.text} has passed")
    bounds = " ".join(x for x in (nb and f"--not-before {nb.text}", na and f"--not-after {na.text}") if x)
    return WindowCheck(True, f"inside the window ({bounds})")


def _next_daily(now: datetime, at: dtime) -> datetime:
    candidate = datetime.combine(now.date(), at, tzinfo=now.tzinfo)
    return candidate if candidate > now else candidate + timedelta(days=1)


# -- --max-steps --------------------------------------------------------------------------------------
