"""Locks and the run journal: the storage interface, the lease rules, and the keeper that renews a lease.
Pure: no external calls or any I/O here (the backends are ``bluegreen.adapters.state.sqlite`` and
``bluegreen.adapters.state.dynamodb``); the keeper only starts a thread that calls its store.

Lease rules, the same for every backend:

* A lock is named after the migration (``config.name``). It is held by one :class:`Holder` (host, pid,
  start time, run id, and a random ``token`` that tells two holders apart even when a restarted pod has
  the same host name and pid 1 again).
* ``acquire`` succeeds when the lock is free, expired, or already held by the same token (a re-acquire).
  Otherwise it raises :class:`~bluegreen.errors.LockHeld` (exit 4) naming the holder.
* The holder renews the lease every ``lease_seconds / 3`` (:class:`LeaseKeeper`). A run that dies stops
  renewing, and the lock can be taken by anyone once the lease has expired.
* ``take_over`` (``bluegreen rollback``) never waits: it replaces whoever holds the lock. The old holder
  learns it at its next renewal (:class:`LockLost`, exit 5) and stops without touching the records.
* ``release`` deletes the lock only if the caller still holds it.

Expiry is judged on wall-clock time (``clock.wall()``), because the holders may be different processes
or machines. A DynamoDB-backed lock therefore assumes the machines' clocks agree to well under a lease
(NTP does that); the default lease of 60 s leaves room for a few seconds of skew.

Journal: a run has an id (sortable by start time), the migration name, the command, the plan as a dict
(``origin_side`` in it says which side held all traffic before the shift began), the holder, events in
order, and at the end an outcome, exit code and reason. A run with no outcome is *unfinished*: it is
still running or it died (kill -9); :attr:`RunRecord.status` tells which when given the current lock.
"""

from __future__ import annotations

import abc
import os
import secrets
import socket
import threading
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Callable, Mapping, Sequence

from bluegreen.core.clock import Clock
from bluegreen.errors import BlueGreenError, ConfigError, ExitCode, LockHeld

DEFAULT_LEASE_SECONDS = 60.0
MIN_LEASE_SECONDS = 3.0
BACKENDS = ("sqlite", "dynamodb")


class LockLost(BlueGreenError):
    """Someone (``bluegreen rollback``) took the lock over while this run held it. Exit 5: the run stops
    without touching the records, like any other conflict."""

    exit_code = ExitCode.CONFLICT


class StateError(BlueGreenError):
    """The state backend (SQLite file, DynamoDB table) failed in a way retries could not fix."""

    exit_code = ExitCode.ERROR


# -- holders and leases --------------------------------------------------------------------------------
def format_wall(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def new_run_id(clock: Clock) -> str:
    """A run id that sorts by start time: ``20250601T220000Z-1a2b3c``."""
    stamp = datetime.fromtimestamp(clock.wall(), tz=timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class Holder:
    """Who holds (or wants) a lock."""

    host: str
    pid: int
    started_at: float  # wall-clock seconds when the holding process started its run
    run_id: str | None = None
    command: str | None = None
    token: str = field(default_factory=lambda: secrets.token_hex(8))

    @classmethod
    def current(cls, clock: Clock, *, run_id: str | None = None, command: str | None = None) -> "Holder":
        return cls(host=socket.gethostname(), pid=os.getpid(), started_at=clock.wall(), run_id=run_id,
                   command=command)

    def describe(self) -> str:
        what = f"`bluegreen {self.command}`" if self.command else "a bluegreen run"
        run = f", run {self.run_id}" if self.run_id else ""
        return f"{what} (pid {self.pid} on {self.host}, started {format_wall(self.started_at)}{run})"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> "Holder":
        return cls(host=str(raw.get("host", "?")), pid=int(raw.get("pid", 0)),
                   started_at=float(raw.get("started_at", 0.0)), run_id=raw.get("run_id"),
                   command=raw.get("command"), token=str(raw.get("token", "")))


@dataclass(frozen=True)
class Lease:
    name: str
    holder: Holder
    lease_seconds: float
    expires_at: float  # wall clock
    previous: Holder | None = None  # whom take_over displaced (None: the lock was free or expired)

    def renewed(self, now: float) -> "Lease":
        return replace(self, expires_at=now + self.lease_seconds, previous=None)


def check_lease_seconds(lease_seconds: float) -> float:
    if lease_seconds < MIN_LEASE_SECONDS:
        raise ConfigError(f"a lease must last at least {MIN_LEASE_SECONDS:g}s, got {lease_seconds:g}s")
    return float(lease_seconds)


def lock_held_error(name: str, current: Holder, expires_at: float, now: float) -> LockHeld:
    return LockHeld(
        f"migration {name!r} is locked by {current.describe()}; its lease runs until "
        f"{format_wall(expires_at)} (in {max(0, round(expires_at - now))}s) and is renewed while it runs",
        hint="wait for it to finish, see `bluegreen history`, or run `bluegreen rollback` (it takes the lock "
             "over and the running shift stops)",
    )


def lock_lost_error(name: str, current: Holder | None) -> LockLost:
    who = current.describe() if current else "nobody (the lock was released or expired and removed)"
    return LockLost(
        f"lost the lock on migration {name!r}: it is now held by {who}; stopping without touching the records",
        hint="`bluegreen rollback` takes the lock over on purpose; check `bluegreen status` and `bluegreen history`",
    )


# -- journal records -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class JournalEvent:
    seq: int
    at: float  # wall clock
    kind: str
    data: Mapping[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "at": format_wall(self.at), "kind": self.kind, "data": dict(self.data)}


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    name: str
    command: str
    plan: Mapping[str, Any]
    holder: Mapping[str, Any]
    started_at: float
    finished_at: float | None = None
    outcome: str | None = None
    exit_code: int | None = None
    reason: str | None = None
    events: tuple[JournalEvent, ...] = ()

    @property
    def finished(self) -> bool:
        return self.outcome is not None

    def status(self, lock_holder: Holder | None = None) -> str:
        """``outcome`` when finished; ``running`` when the current lock belongs to this run; else
        ``unfinished`` (the process died: the lease expired or will)."""
        if self.outcome is not None:
            return self.outcome
        if lock_holder is not None and lock_holder.run_id == self.run_id:
            return "running"
        return "unfinished"

    @property
    def origin_side(self) -> str | None:
        side = self.plan.get("origin_side") if isinstance(self.plan, Mapping) else None
        return side if side in ("blue", "green") else None

    def as_dict(self, *, with_events: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "run_id": self.run_id, "name": self.name, "command": self.command,
            "started_at": format_wall(self.started_at),
            "finished_at": None if self.finished_at is None else format_wall(self.finished_at),
            "outcome": self.outcome, "exit_code": self.exit_code, "reason": self.reason,
            "holder": {k: v for k, v in dict(self.holder).items() if k != "token"},
            "plan": dict(self.plan),
        }
        if with_events:
            out["events"] = [e.as_dict() for e in self.events]
        return out


# -- the interface -------------------------------------------------------------------------------------
class StateStore(abc.ABC):
    """Lock and journal storage. Implementations must be safe to call from two threads (the lease keeper
    renews while the run appends events) and from several processes at once."""

    # lock ------------------------------------------------------------------------------------------
    @abc.abstractmethod
    def acquire(self, name: str, holder: Holder, lease_seconds: float = DEFAULT_LEASE_SECONDS) -> Lease:
        """Take the lock if it is free, expired, or ours (same token). Else raise LockHeld (exit 4)."""

    @abc.abstractmethod
    def renew(self, lease: Lease) -> Lease:
        """Extend the lease from now. Raise LockLost (exit 5) if someone else holds the lock now."""

    @abc.abstractmethod
    def release(self, lease: Lease) -> bool:
        """Delete the lock if we still hold it. Returns whether it did. Never raises for a lost lock."""

    @abc.abstractmethod
    def take_over(self, name: str, holder: Holder, lease_seconds: float = DEFAULT_LEASE_SECONDS) -> Lease:
        """Take the lock whoever holds it. ``Lease.previous`` names the displaced holder, if any."""

    @abc.abstractmethod
    def current_holder(self, name: str) -> tuple[Holder, float] | None:
        """The holder of an unexpired lock and when it expires, or None."""

    # journal ---------------------------------------------------------------------------------------
    @abc.abstractmethod
    def start_run(self, name: str, command: str, plan: Mapping[str, Any], *, run_id: str | None = None,
                  holder: Holder | None = None) -> str:
        """Record the start of a run; returns its id (``run_id`` when given)."""

    @abc.abstractmethod
    def append(self, run_id: str, kind: str, data: Mapping[str, Any]) -> None:
        """Add one event to a run, after the ones already there."""

    @abc.abstractmethod
    def finish(self, run_id: str, outcome: str, exit_code: int, reason: str | None = None) -> None:
        """Record how a run ended."""

    @abc.abstractmethod
    def list_runs(self, name: str, limit: int = 20) -> list[RunRecord]:
        """The newest runs of a migration first, without their events."""

    @abc.abstractmethod
    def get_run(self, run_id: str) -> RunRecord | None:
        """One run with its events in order, or None."""

    @abc.abstractmethod
    def events_since(self, run_id: str, seq: int) -> RunRecord | None:
        """One run with only its events after sequence number ``seq`` (all of them for 0), in order; or None.

        For a follower (``bluegreen watch``): each poll reads what is new and the run's outcome, in one read
        whose size does not grow with the run's journal."""

    def last_run(self, name: str, command: str | None = "shift") -> RunRecord | None:
        """The newest run of ``command`` (any command when None), without events."""
        scanned = 0
        batch = 50
        while True:
            runs = self.list_runs(name, limit=scanned + batch)
            for run in runs[scanned:]:
                if command is None or run.command == command:
                    return run
            if len(runs) < scanned + batch:
                return None
            scanned += batch

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections. Optional."""


def last_origin_side(store: StateStore, name: str) -> str | None:
    """The side that held all traffic before the last shift began (for ``bluegreen rollback`` with no
    ``--to``), or None when no shift was journaled."""
    run = store.last_run(name, "shift")
    return run.origin_side if run else None


def origin_side_for(start_blue: int, start_green: int, target: str, previous: RunRecord | None) -> str:
    """What to store as ``plan["origin_side"]`` when a shift starts from weights ``start``.

    From all-on-one-side, that side. From a split (a ``--resume`` after an earlier run), the origin of the
    previous shift when it moved towards the same target; otherwise the side we move away from."""
    if start_green == 0 and start_blue > 0:
        return "blue"
    if start_blue == 0 and start_green > 0:
        return "green"
    if previous is not None and previous.origin_side and previous.plan.get("target") == target:
        return previous.origin_side
    return "green" if target == "blue" else "blue"


# -- the lease keeper ----------------------------------------------------------------------------------
class LeaseKeeper:
    """Renews a lease every ``lease_seconds / 3`` on a daemon thread until :meth:`stop`.

    When the lock has been taken over (``renew`` raises LockLost), or renewals kept failing until the
    lease expired, it sets ``lost`` (pass the engine's stop event, or watch it) and stops renewing;
    ``lost_error`` then holds the error to report. ``tick`` does one renewal and can be called directly by
    tests with a fake clock. ``wait`` is how the thread waits between renewals (default: an Event wait
    that :meth:`stop` cuts short).
    """

    def __init__(
        self,
        store: StateStore,
        lease: Lease,
        *,
        clock: Clock,
        lost: threading.Event | None = None,
        on_lost: Callable[[BlueGreenError], None] | None = None,
        on_error: Callable[[Exception], None] | None = None,
        wait: Callable[[float], None] | None = None,
    ) -> None:
        self.store = store
        self.lease = lease
        self.clock = clock
        self.lost = lost or threading.Event()
        self.lost_error: BlueGreenError | None = None
        self.on_lost = on_lost
        self.on_error = on_error
        self.renewals = 0
        self._halt = threading.Event()
        self._wait = wait
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def interval(self) -> float:
        return self.lease.lease_seconds / 3.0

    def tick(self) -> bool:
        """Renew once. Returns False once the lock is lost (and sets ``lost``)."""
        if self.lost.is_set() and self.lost_error is not None:
            return False
        try:
            renewed = self.store.renew(self.lease)
        except LockLost as error:
            self._mark_lost(error)
            return False
        except Exception as error:  # a network blip: try again at the next tick, while the lease lasts
            if self.on_error is not None:
                self.on_error(error)
            if self.clock.wall() >= self.lease.expires_at:
                self._mark_lost(StateError(
                    f"could not renew the lock on {self.lease.name!r} before its lease expired "
                    f"({type(error).__name__}); stopping, since another run may take it now"))
                return False
            return True
        with self._lock:
            self.lease = renewed
            self.renewals += 1
        return True

    def _mark_lost(self, error: BlueGreenError) -> None:
        self.lost_error = error
        self.lost.set()
        if self.on_lost is not None:
            self.on_lost(error)

    def _run(self) -> None:
        while not self._halt.is_set():
            if self._wait is not None:
                self._wait(self.interval)
                if self._halt.is_set():
                    return
            elif self._halt.wait(self.interval):
                return
            if not self.tick():
                return

    def start(self) -> "LeaseKeeper":
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"lease-{self.lease.name}", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._halt.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def __enter__(self) -> "LeaseKeeper":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


__all__: Sequence[str] = (
    "BACKENDS", "DEFAULT_LEASE_SECONDS", "Holder", "JournalEvent", "Lease", "LeaseKeeper", "LockLost",
    "RunRecord", "StateError", "StateStore", "format_wall", "last_origin_side",
    "lock_held_error", "lock_lost_error", "new_run_id", "origin_side_for",
)
