"""A run that changes weights: signals handled from its first moment, the migration's lock (renewed while it
lives, checked once per check interval), the journal and the notifications. Used by ``shift`` and
``rollback``; the only place that knows how those four fit together.

The guarantees, whatever happens and wherever it happens:
- SIGTERM and SIGINT are caught from before the lock is taken: a signal sets the stop event, and the command
  (or the engine) ends at the next check with the weights on a known value.
- The lock is released on the way out; a process killed with -9 stops renewing it, so it expires.
- The journal holds a run with an outcome: a failure, a refusal or a signal between taking the lock and the
  start of the engine is journaled too.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Mapping

import structlog

from bluegreen.config import Config
from bluegreen.core.clock import SystemClock
from bluegreen.core.events import EventKind
from bluegreen.core.ports import Event
from bluegreen.core.redact import scrub
from bluegreen.core.state import Holder, LeaseKeeper, StateStore, new_run_id
from bluegreen.environment import Environment, SignalsCaught  # noqa: F401 - re-exported
from bluegreen.errors import BlueGreenError, ExitCode, shorten

log = structlog.get_logger("bluegreen")


class Interrupted(BlueGreenError):
    """A signal came before the engine started: nothing was changed."""

    exit_code = ExitCode.ERROR


class JournalSink:
    """Writes the events of one run to a :class:`StateStore`. Keeps what explains a run later and drops
    nothing but ``hold`` progress beyond one per ``hold_every`` seconds per step (so ``watch`` can follow a
    hold from the journal, and a day-long run's journal stays bounded). Values under secret-looking keys, URL
    credentials and query strings are masked before anything is stored. A journal write that fails is logged
    and never stops the shift (the lock, not the journal, keeps runs apart)."""

    def __init__(self, store: StateStore, run_id: str, *, hold_every: float = 5.0,
                 monotonic: Callable[[], float] | None = None,
                 on_error: Callable[[Exception], None] | None = None) -> None:
        import time

        self.store = store
        self.run_id = run_id
        self.hold_every = hold_every
        self.monotonic = monotonic or time.monotonic
        self.failures = 0
        self.on_error = on_error
        self._last_hold: float | None = None

    def __call__(self, event: Event) -> None:
        if event.kind == EventKind.HOLD:
            now = self.monotonic()
            final = float(event.data.get("remaining_seconds", 1)) <= 0
            if not final and self._last_hold is not None and now - self._last_hold < self.hold_every:
                return
            self._last_hold = now
        self.record(str(event.kind), event.data)

    def record(self, kind: str, data: Mapping[str, Any]) -> None:
        try:
            self.store.append(self.run_id, kind, scrub(dict(data)))
        except Exception as error:  # noqa: BLE001 - never let bookkeeping stop or fail a shift
            self.failures += 1
            if self.on_error is not None:
                self.on_error(error)
            else:
                log.warning("journal_write_failed", run_id=self.run_id, kind=kind, error=type(error).__name__)


class LockedRun:
    """``with LockedRun(config, env, "shift") as run:`` holds the lock for the block. ``take_over``
    (rollback) never waits for the lock: it takes it, and the displaced run stops within one check."""

    def __init__(self, config: Config, env: Environment, command: str, *, take_over: bool = False,
                 store: StateStore | None = None, notifier: Any = None) -> None:
        from bluegreen.adapters.state.sqlite import open_state_store

        self.config = config
        self.env = env
        self.command = command
        self.clock = SystemClock()
        self.store = store or open_state_store(config, self.clock)
        self.run_id = new_run_id(self.clock)
        self.holder = Holder.current(self.clock, run_id=self.run_id, command=command)
        self.take_over = take_over
        self.lease = None
        self.keeper: LeaseKeeper | None = None
        self.journal: JournalSink | None = None
        self.notifier = notifier
        self.started = False
        self.finished = False
        self.lock_lost = threading.Event()
        self._next_lock_check = 0.0

    # -- lock -----------------------------------------------------------------------------------------
    def __enter__(self) -> "LockedRun":
        # Every log line of the run carries its id and the migration (structlog's merge_contextvars is the
        # first processor in bluegreen.logs.configure); unbound in __exit__.
        structlog.contextvars.bind_contextvars(run_id=self.run_id, migration=self.config.name)
        try:
            if self.take_over:
                self.lease = self.store.take_over(self.config.name, self.holder, self.config.state.lease_seconds)
                if self.lease.previous is not None:
                    log.warning("lock_taken_over", previous=self.lease.previous.describe())
            else:
                self.lease = self.store.acquire(self.config.name, self.holder, self.config.state.lease_seconds)
        except BaseException:  # no lock, no run: __exit__ will not be called
            structlog.contextvars.unbind_contextvars("run_id")
            raise

        def lost(error: BaseException) -> None:
            self.record(EventKind.LOCK_LOST, {"holder": str(error)})
            self.env.stop.set()

        self.keeper = LeaseKeeper(self.store, self.lease, clock=self.clock, lost=self.lock_lost, on_lost=lost)
        self.keeper.start()
        return self

    def check_lock(self, every: float = 0.25) -> None:
        """At most every ``every`` seconds, ask the store who holds the lock; when it is not us any more
        (an on-call `rollback` took it over), set ``lock_lost`` so the engine stops without writing."""
        now = self.clock.monotonic()
        if self.lock_lost.is_set() or now < self._next_lock_check:
            return
        self._next_lock_check = now + every
        try:
            current = self.store.current_holder(self.config.name)
        except BlueGreenError:
            return  # the keeper's renewals judge a store that does not answer
        if current is None or current[0].token != self.holder.token:
            who = current[0].describe() if current else "nobody (the lock was released)"
            self.record(EventKind.LOCK_LOST, {"holder": who})
            self.lock_lost.set()

    def check_stop(self) -> None:
        """Before the engine starts: a signal that came meanwhile ends the run here, nothing changed."""
        if self.env.stop.is_set():
            raise Interrupted("interrupted by a signal before any weight was changed; nothing was changed")

    # -- journal --------------------------------------------------------------------------------------
    def start(self, plan: Mapping[str, Any]) -> None:
        self.store.start_run(self.config.name, self.command, dict(plan), run_id=self.run_id, holder=self.holder)
        self.journal = JournalSink(self.store, self.run_id)
        self.started = True

    def __call__(self, event: Event) -> None:
        """The run's EventSink: journal and notifications."""
        if self.journal is not None:
            self.journal(event)
        if self.notifier is not None:
            self.notifier(event)

    def record(self, kind: EventKind | str, data: Mapping[str, Any]) -> None:
        if self.journal is not None:
            self.journal.record(str(kind), data)
        if self.notifier is not None:
            self.notifier.notify(str(kind), data)

    def finish(self, outcome: str, exit_code: int, reason: str | None) -> None:
        if self.started and not self.finished:
            self.store.finish(self.run_id, outcome, int(exit_code), reason)
        self.finished = True

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc is not None and not self.finished:
                code = getattr(exc, "exit_code", ExitCode.ERROR)
                outcome = "interrupted" if isinstance(exc, Interrupted) else "failed"
                if not self.started:  # failed before the plan was journaled: journal the attempt
                    self.start({"command": self.command})
                self.record(EventKind.RUN_FAILED, {"reason": shorten(str(exc))})
                self.finish(outcome, int(code), shorten(str(exc)))
        finally:
            if self.keeper is not None:
                self.keeper.stop()
            if self.lease is not None:
                self.store.release(self.lease)
            if self.notifier is not None:
                self.notifier.close(5.0)
            self.store.close()
            structlog.contextvars.unbind_contextvars("run_id")
