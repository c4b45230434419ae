"""The embedded state backend: locks and the run journal in one SQLite file.

The default path is under the user's state directory: ``$XDG_STATE_HOME/bluegreen/state.db``, or
``~/.local/state/bluegreen/state.db`` (``state.path`` in config overrides it). The file is in WAL mode, so
``bluegreen history`` reads while a shift writes. Every lock operation runs in a ``BEGIN IMMEDIATE``
transaction: it takes SQLite's write lock before reading the lock row, so two processes deciding at the
same time are serialised and the second one sees the first one's row. Lease expiry uses the injected
clock's wall time (processes on one machine share it).

``open_state_store`` builds the configured backend (this one, or DynamoDB, imported only when used).

Schema (version 1)::

    locks(name PK, token, holder JSON, acquired_at, expires_at)
    runs(run_id PK, name, command, plan JSON, holder JSON, started_at, finished_at, outcome, exit_code,
         reason)                                  -- index (name, started_at)
    events(run_id, seq, at, kind, data JSON)      -- PK (run_id, seq)
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from pathlib import Path
from contextlib import contextmanager
from typing import Any, Iterator, Mapping

from bluegreen.core.clock import Clock
from bluegreen.core.state import (
    DEFAULT_LEASE_SECONDS, Holder, JournalEvent, Lease, RunRecord, StateError, StateStore,
    check_lease_seconds, lock_held_error, lock_lost_error, new_run_id,
)

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS locks (
    name TEXT PRIMARY KEY,
    token TEXT NOT NULL,
    holder TEXT NOT NULL,
    acquired_at REAL NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    command TEXT NOT NULL,
    plan TEXT NOT NULL,
    holder TEXT NOT NULL,
    started_at REAL NOT NULL,
    finished_at REAL,
    outcome TEXT,
    exit_code INTEGER,
    reason TEXT
);
CREATE INDEX IF NOT EXISTS runs_by_name ON runs (name, started_at);
CREATE TABLE IF NOT EXISTS events (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
"""


def default_state_path(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_STATE_HOME") or ""
    root = Path(base) if base.strip() and Path(base).is_absolute() else Path.home() / ".local" / "state"
    return root / "bluegreen" / "state.db"


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


class SqliteStateStore(StateStore):
    def __init__(self, path: str | os.PathLike[str], clock: Clock, *, busy_timeout: float = 15.0) -> None:
        self.path = Path(path).expanduser()
        self.clock = clock
        self._mutex = threading.RLock()  # one connection, shared by the run and its lease keeper
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._db = sqlite3.connect(str(self.path), timeout=busy_timeout, isolation_level=None,
                                       check_same_thread=False)
            self._db.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            with self._tx():
                for statement in filter(None, (s.strip() for s in _SCHEMA.split(";"))):
                    self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except (sqlite3.Error, OSError) as error:
            raise StateError(f"cannot open the state file {self.path}: {error}",
                             hint="set `state.path` to a writable file") from error

    def __repr__(self) -> str:
        return f"SqliteStateStore({str(self.path)!r})"

    # -- plumbing ------------------------------------------------------------------------------------
    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction that holds SQLite's write lock from its first statement."""
        self._mutex.acquire()
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")
        except sqlite3.Error as error:
            raise StateError(f"state file {self.path}: {error}") from error
        finally:
            self._mutex.release()

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._mutex:
            try:
                yield self._db
            except sqlite3.Error as error:
                raise StateError(f"state file {self.path}: {error}") from error

    def _lock_row(self, db: sqlite3.Connection, name: str) -> tuple[Holder, float] | None:
        row = db.execute("SELECT holder, expires_at FROM locks WHERE name = ?", (name,)).fetchone()
        return None if row is None else (Holder.from_dict(json.loads(row[0])), float(row[1]))

    def _write_lock(self, db: sqlite3.Connection, name: str, holder: Holder, now: float, lease: float) -> None:
        db.execute(
            "INSERT INTO locks (name, token, holder, acquired_at, expires_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(name) DO UPDATE SET token = excluded.token, holder = excluded.holder, "
            "acquired_at = excluded.acquired_at, expires_at = excluded.expires_at",
            (name, holder.token, _dumps(holder.as_dict()), now, now + lease),
        )

    # -- lock ----------------------------------------------------------------------------------------
    def acquire(self, name: str, holder: Holder, lease_seconds: float = DEFAULT_LEASE_SECONDS) -> Lease:
        lease_seconds = check_lease_seconds(lease_seconds)
        with self._tx() as db:
            now = self.clock.wall()
            current = self._lock_row(db, name)
            if current is not None:
                other, expires_at = current
                if other.token != holder.token and expires_at > now:
                    raise lock_held_error(name, other, expires_at, now)
            self._write_lock(db, name, holder, now, lease_seconds)
        return Lease(name=name, holder=holder, lease_seconds=lease_seconds, expires_at=now + lease_seconds)

    def renew(self, lease: Lease) -> Lease:
        with self._tx() as db:
            now = self.clock.wall()
            updated = db.execute("UPDATE locks SET expires_at = ? WHERE name = ? AND token = ?",
                                 (now + lease.lease_seconds, lease.name, lease.holder.token)).rowcount
            if updated != 1:
                current = self._lock_row(db, lease.name)
                raise lock_lost_error(lease.name, current[0] if current else None)
        return lease.renewed(now)

    def release(self, lease: Lease) -> bool:
        with self._tx() as db:
            deleted = db.execute("DELETE FROM locks WHERE name = ? AND token = ?",
                                 (lease.name, lease.holder.token)).rowcount
        return deleted == 1

    def take_over(self, name: str, holder: Holder, lease_seconds: float = DEFAULT_LEASE_SECONDS) -> Lease:
        lease_seconds = check_lease_seconds(lease_seconds)
        with self._tx() as db:
            now = self.clock.wall()
            current = self._lock_row(db, name)
            previous = None
            if current is not None and current[1] > now and current[0].token != holder.token:
                previous = current[0]
            self._write_lock(db, name, holder, now, lease_seconds)
        return Lease(name=name, holder=holder, lease_seconds=lease_seconds, expires_at=now + lease_seconds,
                     previous=previous)

    def current_holder(self, name: str) -> tuple[Holder, float] | None:
        with self._read() as db:
            current = self._lock_row(db, name)
        if current is None or current[1] <= self.clock.wall():
            return None
        return current

    # -- journal -------------------------------------------------------------------------------------
    def start_run(self, name: str, command: str, plan: Mapping[str, Any], *, run_id: str | None = None,
                  holder: Holder | None = None) -> str:
        run_id = run_id or new_run_id(self.clock)
        holder_dict = {k: v for k, v in (holder.as_dict() if holder else {}).items() if k != "token"}
        with self._tx() as db:
            db.execute(
                "INSERT INTO runs (run_id, name, command, plan, holder, started_at) VALUES (?, ?, ?, ?, ?, ?)",
                (run_id, name, command, _dumps(dict(plan)), _dumps(holder_dict), self.clock.wall()),
            )
        return run_id

    def append(self, run_id: str, kind: str, data: Mapping[str, Any]) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO events (run_id, seq, at, kind, data) VALUES "
                "(?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE run_id = ?), ?, ?, ?)",
                (run_id, run_id, self.clock.wall(), kind, _dumps(dict(data))),
            )

    def finish(self, run_id: str, outcome: str, exit_code: int, reason: str | None = None) -> None:
        with self._tx() as db:
            db.execute("UPDATE runs SET finished_at = ?, outcome = ?, exit_code = ?, reason = ? WHERE run_id = ?",
                       (self.clock.wall(), outcome, int(exit_code), reason, run_id))

    _RUN_COLUMNS = "run_id, name, command, plan, holder, started_at, finished_at, outcome, exit_code, reason"

    @staticmethod
    def _run(row: tuple, events: tuple[JournalEvent, ...] = ()) -> RunRecord:
        return RunRecord(
            run_id=row[0], name=row[1], command=row[2], plan=json.loads(row[3]), holder=json.loads(row[4]),
            started_at=float(row[5]), finished_at=None if row[6] is None else float(row[6]), outcome=row[7],
            exit_code=row[8], reason=row[9], events=events,
        )

    def list_runs(self, name: str, limit: int = 20) -> list[RunRecord]:
        with self._read() as db:
            rows = db.execute(
                f"SELECT {self._RUN_COLUMNS} FROM runs WHERE name = ? ORDER BY started_at DESC, run_id DESC LIMIT ?",
                (name, max(0, int(limit))),
            ).fetchall()
        return [self._run(row) for row in rows]

    def get_run(self, run_id: str) -> RunRecord | None:
        return self.events_since(run_id, 0)

    def events_since(self, run_id: str, seq: int) -> RunRecord | None:
        # One read transaction: the summary and the new events agree (an outcome is never seen without the
        # events journaled before it). The primary key (run_id, seq) serves the range.
        with self._read() as db:
            row = db.execute(f"SELECT {self._RUN_COLUMNS} FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if row is None:
                return None
            events = db.execute("SELECT seq, at, kind, data FROM events WHERE run_id = ? AND seq > ? ORDER BY seq",
                                (run_id, int(seq))).fetchall()
        return self._run(row, tuple(JournalEvent(seq=e[0], at=float(e[1]), kind=e[2], data=json.loads(e[3]))
                                    for e in events))

    def last_run(self, name: str, command: str | None = "shift") -> RunRecord | None:
        query = f"SELECT {self._RUN_COLUMNS} FROM runs WHERE name = ?"
        args: tuple = (name,)
        if command is not None:
            query += " AND command = ?"
            args += (command,)
        with self._read() as db:
            row = db.execute(query + " ORDER BY started_at DESC, run_id DESC LIMIT 1", args).fetchone()
        return None if row is None else self._run(row)

    def close(self) -> None:
        with self._mutex:
            self._db.close()


def open_state_store(config: Any, clock: Clock, state: Any = None) -> StateStore:
    """Build the backend named in ``config.state`` (a :class:`bluegreen.config.Config`)."""
    state = state or config.state
    if state.backend == "dynamodb":
        from bluegreen.adapters.state.dynamodb import DynamoStateStore

        return DynamoStateStore.from_config(config, clock, state)
    return SqliteStateStore(sqlite_path(config, state), clock)


def sqlite_path(config: Any, state: Any) -> Path:
    """``state.path`` (``~`` expanded; relative to the config file's folder), or the default path."""
    if not state.path:
        return default_state_path()
    path = Path(state.path).expanduser()
    config_file = getattr(config, "path", None)
    if not path.is_absolute() and config_file is not None:
        path = Path(config_file).parent / path
    return path


def init_state_store(config: Any, clock: Clock) -> str:
    """``bluegreen init-state``: create the configured backend's storage if missing. Idempotent."""
    state = config.state
    if state.backend == "dynamodb":
        from bluegreen.adapters.state.dynamodb import init_state

        return init_state(config)
    path = sqlite_path(config, state)
    existed = path.exists()
    SqliteStateStore(path, clock).close()
    return f"state file {path} {'already exists; schema checked' if existed else 'created'}"
