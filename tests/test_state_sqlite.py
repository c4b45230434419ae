"""The SQLite state backend: lock rules in one process, the journal, config, and the journal sink."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from types import SimpleNamespace

import pytest

from bluegreen.adapters.state.sqlite import (
    SqliteStateStore, default_state_path, init_state_store, open_state_store, sqlite_path,
)
from bluegreen.core.clock import FakeClock
from bluegreen.core.engine import Outcome, ShiftEngine
from bluegreen.core.ports import Event, NoProbes
from bluegreen.core.state import (
    Holder, LockLost, last_origin_side, new_run_id, origin_side_for,
)
from bluegreen.core.verdict import Gates
from bluegreen.core.plan import build_plan
from bluegreen.core.weights import LiveState, RecordState, SideWeights
from bluegreen.config.sections import parse_state as parse_state_config
from bluegreen.errors import ConfigError, ExitCode, LockHeld, exit_code_for
from bluegreen.core.redact import scrub
from bluegreen.render import run_text as render_run, runs_text as render_runs
from bluegreen.runs import JournalSink
from tests.support.journal_contract import check_events_since


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> SqliteStateStore:
    s = SqliteStateStore(tmp_path / "state" / "state.db", clock)
    yield s
    s.close()


# -- lock ----------------------------------------------------------------------------------------------
def test_lock_held_names_host_pid_start_and_run(store: SqliteStateStore, clock: FakeClock) -> None:
    first = Holder(host="pod-7", pid=1, started_at=clock.wall(), run_id="r-1", command="shift")
    store.acquire("burnham", first, 60)
    with pytest.raises(LockHeld) as caught:
        store.acquire("burnham", Holder(host="laptop", pid=42, started_at=clock.wall()), 60)
    message = str(caught.value)
    assert caught.value.exit_code == ExitCode.LOCKED
    for part in ("pid 1 on pod-7", "run r-1", "`bluegreen shift`", "started 2027-01-15 08:00:00 UTC"):
        assert part in message
    assert "rollback" in (caught.value.hint or "")


def test_same_holder_may_reacquire_and_locks_are_per_migration(store: SqliteStateStore, clock: FakeClock) -> None:
    holder = Holder.current(clock)
    store.acquire("a", holder, 30)
    store.acquire("a", holder, 30)
    store.acquire("b", Holder.current(clock), 30)


def test_expired_lease_may_be_taken_by_anyone(store: SqliteStateStore, clock: FakeClock) -> None:
    old = store.acquire("m", Holder.current(clock, run_id="old"), 30)
    clock.advance(29)
    with pytest.raises(LockHeld):
        store.acquire("m", Holder.current(clock), 30)
    clock.advance(2)
    assert store.current_holder("m") is None
    new = store.acquire("m", Holder.current(clock, run_id="new"), 30)
    with pytest.raises(LockLost) as caught:
        store.renew(old)
    assert caught.value.exit_code == ExitCode.CONFLICT and "run new" in str(caught.value)
    assert store.release(old) is False
    assert store.release(new) is True
    assert store.current_holder("m") is None


def test_renew_extends_and_take_over_reports_the_previous_holder(store: SqliteStateStore, clock: FakeClock) -> None:
    lease = store.acquire("m", Holder.current(clock, run_id="shift-1"), 30)
    clock.advance(20)
    lease = store.renew(lease)
    assert lease.expires_at == clock.wall() + 30
    taken = store.take_over("m", Holder.current(clock, run_id="rb", command="rollback"), 30)
    assert taken.previous is not None and taken.previous.run_id == "shift-1"
    assert store.current_holder("m")[0].command == "rollback"
    assert store.take_over("free", Holder.current(clock), 30).previous is None


def test_too_short_lease_is_refused(store: SqliteStateStore, clock: FakeClock) -> None:
    with pytest.raises(ConfigError):
        store.acquire("m", Holder.current(clock), 0.5)


def test_file_is_wal_and_private(store: SqliteStateStore) -> None:
    db = sqlite3.connect(store.path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert (store.path.parent.stat().st_mode & 0o777) == 0o700


# -- journal -------------------------------------------------------------------------------------------
def test_journal_round_trip(store: SqliteStateStore, clock: FakeClock) -> None:
    holder = Holder.current(clock, command="shift")
    run_id = store.start_run("burnham", "shift", {"target": "green", "origin_side": "blue", "steps": [0, 10]},
                             holder=holder)
    store.append(run_id, "weights_changed", {"old": "blue=100 green=0", "new": "blue=90 green=10",
                                             "change_ids": ["C1"]})
    clock.advance(5)
    store.append(run_id, "step_passed", {"step": "10%", "probes": {"web": {"samples": 12}}})
    assert store.get_run(run_id).status() == "unfinished"
    store.finish(run_id, "completed", 0, None)
    run = store.get_run(run_id)
    assert run.name == "burnham" and run.command == "shift" and run.outcome == "completed" and run.exit_code == 0
    assert [e.seq for e in run.events] == [1, 2]
    assert [e.kind for e in run.events] == ["weights_changed", "step_passed"]
    assert run.events[0].data["change_ids"] == ["C1"]
    assert run.events[1].at - run.events[0].at == 5
    assert run.plan["origin_side"] == "blue" and run.origin_side == "blue"
    assert "token" not in run.holder and run.holder["pid"] == holder.pid
    assert run.as_dict()["events"][1]["data"]["probes"]["web"]["samples"] == 12
    assert store.get_run("nope") is None


def test_list_runs_newest_first_and_last_run_by_command(store: SqliteStateStore, clock: FakeClock) -> None:
    ids = []
    for command in ("shift", "rollback", "shift", "rollback"):
        ids.append(store.start_run("m", command, {"target": "green", "origin_side": "blue"},
                                   run_id=new_run_id(clock)))
        clock.advance(60)
    store.start_run("other", "shift", {"origin_side": "green"})
    runs = store.list_runs("m", limit=3)
    assert [r.run_id for r in runs] == ids[::-1][:3]
    assert store.last_run("m").run_id == ids[2]
    assert store.last_run("m", "rollback").run_id == ids[3]
    assert store.last_run("m", None).run_id == ids[3]
    assert store.last_run("nothing") is None
    assert last_origin_side(store, "m") == "blue"
    assert last_origin_side(store, "other") == "green"
    assert ids == sorted(ids)  # run ids sort by start time


def test_origin_side_for_start_weights() -> None:
    assert origin_side_for(100, 0, "green", None) == "blue"
    assert origin_side_for(0, 100, "blue", None) == "green"
    previous = SimpleNamespace(origin_side="blue", plan={"target": "green"})
    assert origin_side_for(50, 50, "green", previous) == "blue"  # a resumed shift keeps its origin
    assert origin_side_for(50, 50, "green", None) == "blue"
    assert origin_side_for(50, 50, "blue", previous) == "green"


# -- config and factory --------------------------------------------------------------------------------
def test_default_path_follows_xdg(tmp_path: Path) -> None:
    assert default_state_path({"XDG_STATE_HOME": str(tmp_path)}) == tmp_path / "bluegreen" / "state.db"
    assert default_state_path({}) == Path.home() / ".local" / "state" / "bluegreen" / "state.db"
    assert default_state_path({"XDG_STATE_HOME": "relative"}).parts[-4:] == (".local", "state", "bluegreen", "state.db")


def test_state_config_parsing() -> None:
    assert parse_state_config(None).backend == "sqlite"
    cfg = parse_state_config({"backend": "dynamodb", "table": "bg", "lease": "90s"})
    assert (cfg.backend, cfg.table, cfg.lease_seconds) == ("dynamodb", "bg", 90.0)
    with pytest.raises(ConfigError, match="state.tabel"):
        parse_state_config({"tabel": "x"})
    with pytest.raises(ConfigError, match="state.table"):
        parse_state_config({"backend": "dynamodb"})
    with pytest.raises(ConfigError, match="backend"):
        parse_state_config({"backend": "redis"})
    with pytest.raises(ConfigError, match="lease"):
        parse_state_config({"lease": "1s"})
    with pytest.raises(ConfigError):
        parse_state_config({"table": "x"})


def test_open_and_init_state_store(tmp_path: Path, clock: FakeClock) -> None:
    config = SimpleNamespace(name="m", state=parse_state_config({"path": "state/bg.db"}), path=tmp_path / "bluegreen.yaml")
    assert sqlite_path(config, config.state) == tmp_path / "state" / "bg.db"
    message = init_state_store(config, clock)
    assert "created" in message and str(tmp_path / "state" / "bg.db") in message
    assert "already exists" in init_state_store(config, clock)
    store = open_state_store(config, clock)
    assert isinstance(store, SqliteStateStore) and store.path == tmp_path / "state" / "bg.db"


# -- journal sink, with the real engine ----------------------------------------------------------------
class FakeRouter:
    def __init__(self) -> None:
        self.weights = SideWeights(100, 0)

    def read(self) -> LiveState:
        return LiveState((RecordState("app.example.com", "A", self.weights, 60),))

    def set(self, weights, *, live=None, ttl=None, urgent=False):
        self.weights = weights
        return [f"C{weights.green}"]

    def verify(self, weights, changes, *, ttl=None) -> LiveState:
        return self.read()


def test_journal_sink_records_a_shift_without_hold_noise(store: SqliteStateStore, clock: FakeClock) -> None:
    router = FakeRouter()
    plan = build_plan(target="green", steps=[0, 50, 100], start=router.weights, original_ttl=60, cutover_ttl=None,
                      ttl_margin=1, bake=3)
    run_id = store.start_run("m", "shift", {"target": "green", "origin_side": "blue"})
    sink = JournalSink(store, run_id)
    engine = ShiftEngine(router, NoProbes(), clock, Gates(min_samples=1), on_event=sink, progress_interval=1.0)
    result = engine.run(plan)
    assert result.outcome is Outcome.COMPLETED
    store.finish(run_id, result.outcome.value, int(exit_code_for(result.outcome)), result.reason)
    run = store.get_run(run_id)
    kinds = [e.kind for e in run.events]
    assert kinds.count("hold") <= 3 * 2  # bounded: at most one per 5 s of hold and each step's last
    assert kinds[0] == "shift_started" and kinds[-1] == "shift_completed"
    assert kinds.count("step_passed") == 3 and kinds.count("weights_changed") == 2
    changed = [e.data for e in run.events if e.kind == "weights_changed"]
    assert changed[0]["old"] == {"blue": 100, "green": 0} and changed[0]["new"] == {"blue": 50, "green": 50}
    assert changed[1]["change_ids"] == ["C100"]
    text = render_run(run)
    assert "50%: blue=100 green=0 -> blue=50 green=50 (changes C50)" in text
    assert "status    completed (exit 0)" in text
    table = render_runs(store.list_runs("m"))
    assert run_id in table and "completed" in table


def test_journal_sink_masks_secrets_and_survives_store_failures(store: SqliteStateStore) -> None:
    run_id = store.start_run("m", "shift", {})
    sink = JournalSink(store, run_id)
    sink(Event("preflight", {
        "authorization": "Bearer abc", "headers": {"X-Api": "k"}, "argocd_password": "$2a$bcrypt",
        "url": "https://user:pw@example.com/path?token=abc", "note": "sent to https://hooks.slack.com/services/T/B/X",
        "nested": [{"webhook_url": "https://x"}], "weights": "blue=1 green=2",
    }))
    data = store.get_run(run_id).events[0].data
    dumped = repr(data)
    secrets = ("Bearer abc", "'k'", "$2a$bcrypt", "user:pw", "token=abc", "hooks.slack.com/services", "https://x")
    for secret in secrets:
        assert secret not in dumped
    assert data["weights"] == "blue=1 green=2"
    assert data["url"] == "https://***@example.com/path?***"
    assert scrub({"a": (1, None, True)}) == {"a": [1, None, True]}
    errors = []
    broken = JournalSink(store, run_id, on_error=errors.append)
    store.close()
    broken(Event("step_passed", {}))
    assert broken.failures == 1 and errors


def test_events_since_reads_only_the_new_events(store: SqliteStateStore, clock: FakeClock) -> None:
    check_events_since(store, clock)
