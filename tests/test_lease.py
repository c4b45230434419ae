"""Lock and lease rules across real processes (SQLite backend) and the LeaseKeeper."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from bluegreen.adapters.state.sqlite import SqliteStateStore
from bluegreen.core.clock import FakeClock, SystemClock
from bluegreen.core.state import Holder, LeaseKeeper, LockLost, StateError
from bluegreen.errors import ExitCode, LockHeld

REPO = Path(__file__).resolve().parents[1]

# A child process: wait for the go file, try to take the lock, report, then hold it (renewing) until told
# to stop or until it loses it.
CHILD = textwrap.dedent("""
    import json, os, sys, threading, time
    from pathlib import Path
    from bluegreen.adapters.state.sqlite import SqliteStateStore
    from bluegreen.core.clock import SystemClock
    from bluegreen.core.state import Holder, LeaseKeeper
    from bluegreen.errors import LockHeld

    db, go, stop, run_id, lease_s, mode = sys.argv[1:7]
    clock = SystemClock()
    store = SqliteStateStore(db, clock)
    holder = Holder.current(clock, run_id=run_id, command="shift")
    while not Path(go).exists():
        time.sleep(0.005)
    try:
        lease = store.acquire("burnham", holder, float(lease_s))
    except LockHeld as error:
        print(json.dumps({"run_id": run_id, "pid": os.getpid(), "acquired": False, "error": str(error),
                          "exit": int(error.exit_code)}), flush=True)
        sys.exit(int(error.exit_code))
    print(json.dumps({"run_id": run_id, "pid": os.getpid(), "acquired": True}), flush=True)
    if mode == "die":
        os._exit(9)  # like kill -9: no release
    keeper = LeaseKeeper(store, lease, clock=clock).start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not Path(stop).exists() and not keeper.lost.is_set():
        keeper.lost.wait(0.02)
    keeper.stop()
    if keeper.lost.is_set():
        print(json.dumps({"lost": True, "error": str(keeper.lost_error), "exit": int(keeper.lost_error.exit_code)}),
              flush=True)
        sys.exit(int(keeper.lost_error.exit_code))
    store.release(lease)
    print(json.dumps({"released": True, "renewals": keeper.renewals}), flush=True)
""")


def _spawn(tmp_path: Path, run_id: str, *, lease: float = 3.0, mode: str = "hold") -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path / "state.db"), str(tmp_path / "go"), str(tmp_path / "stop"),
         run_id, str(lease), mode],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=str(REPO),
    )


def _first_line(proc: subprocess.Popen) -> dict:
    line = proc.stdout.readline()
    assert line, proc.stderr.read()
    return json.loads(line)


def test_two_processes_race_one_gets_lock_held_naming_the_holder(tmp_path: Path) -> None:
    SqliteStateStore(tmp_path / "state.db", SystemClock()).close()  # schema first, so both race on the lock
    procs = [_spawn(tmp_path, "run-a"), _spawn(tmp_path, "run-b")]
    time.sleep(0.8)  # both children are importing and polling
    (tmp_path / "go").touch()
    first = [_first_line(p) for p in procs]
    winners = [r for r in first if r["acquired"]]
    losers = [r for r in first if not r["acquired"]]
    assert len(winners) == 1 and len(losers) == 1, first
    winner, loser = winners[0], losers[0]
    assert loser["exit"] == ExitCode.LOCKED == 4
    assert f"pid {winner['pid']}" in loser["error"]
    assert winner["run_id"] in loser["error"]
    assert f"on {socket.gethostname()}," in loser["error"]
    assert "started" in loser["error"] and "UTC" in loser["error"]
    loser_proc = next(p for p in procs if p.pid == loser["pid"])
    assert loser_proc.wait(10) == 4
    (tmp_path / "stop").touch()
    winner_proc = next(p for p in procs if p.pid == winner["pid"])
    assert winner_proc.wait(10) == 0
    assert json.loads(winner_proc.stdout.readline())["released"] is True
    assert SqliteStateStore(tmp_path / "state.db", SystemClock()).current_holder("burnham") is None


def test_take_over_wins_and_the_old_holders_keeper_notices(tmp_path: Path) -> None:
    proc = _spawn(tmp_path, "run-shift", lease=3.0)
    (tmp_path / "go").touch()
    assert _first_line(proc)["acquired"] is True
    clock = SystemClock()
    store = SqliteStateStore(tmp_path / "state.db", clock)
    with pytest.raises(LockHeld):
        store.acquire("burnham", Holder.current(clock, command="shift"), 30)
    rollback = Holder.current(clock, run_id="run-rollback", command="rollback")
    lease = store.take_over("burnham", rollback, 30)
    assert lease.previous is not None and lease.previous.run_id == "run-shift"
    assert lease.previous.pid == proc.pid
    # The shift renews every lease/3 = 1 s: it notices within about a second and exits 5.
    assert proc.wait(10) == ExitCode.CONFLICT == 5
    lost = json.loads(proc.stdout.readline())
    assert lost["lost"] is True and "run-rollback" in lost["error"] and "rollback" in lost["error"]
    holder, _ = store.current_holder("burnham")
    assert holder.run_id == "run-rollback"
    assert store.release(lease) is True


def test_a_dead_holders_lease_expires_and_can_be_acquired(tmp_path: Path) -> None:
    proc = _spawn(tmp_path, "run-dead", lease=3.0, mode="die")
    (tmp_path / "go").touch()
    assert _first_line(proc)["acquired"] is True
    assert proc.wait(10) == 9

    class Later(SystemClock):
        def wall(self) -> float:
            return time.time() + 4.0  # past the dead holder's 3 s lease, without waiting for it

    store = SqliteStateStore(tmp_path / "state.db", SystemClock())
    with pytest.raises(LockHeld, match="run-dead"):
        store.acquire("burnham", Holder.current(SystemClock()), 30)
    later = SqliteStateStore(tmp_path / "state.db", Later())
    lease = later.acquire("burnham", Holder.current(Later(), run_id="run-next"), 30)
    assert lease.previous is None
    assert later.current_holder("burnham")[0].run_id == "run-next"


# -- LeaseKeeper with an injected clock ----------------------------------------------------------------
def test_keeper_tick_renews_from_the_clock(tmp_path: Path) -> None:
    clock = FakeClock()
    store = SqliteStateStore(tmp_path / "s.db", clock)
    lease = store.acquire("m", Holder.current(clock), 30)
    keeper = LeaseKeeper(store, lease, clock=clock)
    assert keeper.interval == 10
    clock.advance(25)
    assert keeper.tick() is True
    assert keeper.lease.expires_at == clock.wall() + 30
    clock.advance(25)  # 50 s after acquire: expired without the renewal, alive with it
    with pytest.raises(LockHeld):
        store.acquire("m", Holder.current(clock), 30)


def test_keeper_sets_lost_on_take_over_and_calls_back(tmp_path: Path) -> None:
    clock = FakeClock()
    store = SqliteStateStore(tmp_path / "s.db", clock)
    lease = store.acquire("m", Holder.current(clock, run_id="a"), 30)
    stop = threading.Event()
    seen = []
    keeper = LeaseKeeper(store, lease, clock=clock, lost=stop, on_lost=seen.append)
    store.take_over("m", Holder.current(clock, run_id="b", command="rollback"), 30)
    assert keeper.tick() is False
    assert stop.is_set()
    assert isinstance(keeper.lost_error, LockLost) and keeper.lost_error.exit_code == 5
    assert "run b" in str(keeper.lost_error)
    assert seen == [keeper.lost_error]
    assert store.release(lease) is False  # release never frees someone else's lock


def test_keeper_survives_transient_errors_until_the_lease_expires(tmp_path: Path) -> None:
    clock = FakeClock()
    store = SqliteStateStore(tmp_path / "s.db", clock)
    lease = store.acquire("m", Holder.current(clock), 30)

    class Flaky:
        def __init__(self) -> None:
            self.fail = True

        def renew(self, lease):
            if self.fail:
                raise OSError("network down")
            return store.renew(lease)

    flaky = Flaky()
    errors: list[Exception] = []
    keeper = LeaseKeeper(flaky, lease, clock=clock, on_error=errors.append)  # type: ignore[arg-type]
    clock.advance(10)
    assert keeper.tick() is True and not keeper.lost.is_set()
    flaky.fail = False
    assert keeper.tick() is True and keeper.renewals == 1
    flaky.fail = True
    clock.advance(31)
    assert keeper.tick() is False
    assert keeper.lost.is_set() and isinstance(keeper.lost_error, StateError)
    assert len(errors) == 2


def test_keeper_thread_renews_every_third_of_the_lease(tmp_path: Path) -> None:
    clock = SystemClock()
    store = SqliteStateStore(tmp_path / "s.db", clock)
    lease = store.acquire("m", Holder.current(clock), 3.0)
    waits: list[float] = []
    with LeaseKeeper(store, lease, clock=clock, wait=lambda s: (waits.append(s), time.sleep(0.01))) as keeper:
        deadline = time.monotonic() + 5
        while keeper.renewals < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert keeper.renewals >= 3
    assert set(waits) == {1.0}
    assert not keeper.lost.is_set()
