"""`bluegreen watch` follows a real shift, running in another thread against moto, through the SQLite
journal alone, and exits with the run's exit code."""

from __future__ import annotations

import io
import json
import threading
import time

from bluegreen.cli import Environment, main
from tests.support.cli import run, write_config


def _config(tmp_path, moto_endpoint, zone, app, **overrides):
    overrides.setdefault("state", {"path": str(tmp_path / "state.db")})
    return write_config(tmp_path, moto_endpoint, zone, [app], **overrides)


class ShiftThread(threading.Thread):
    """`bluegreen shift` in-process, in a thread of its own, with its own streams."""

    def __init__(self, *argv: str) -> None:
        super().__init__(daemon=True)
        self.argv = argv
        self.env = Environment(stdout=io.StringIO(), stderr=io.StringIO(), environ={}, install_signal_handlers=False)
        self.code: int | None = None

    def run(self) -> None:
        self.code = main(list(self.argv), self.env)


def _wait_for_running_run(path, timeout=20.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code, out, _ = run("history", "--config", str(path), "--output", "json")
        runs = json.loads(out) if code == 0 else []
        if runs and runs[0]["outcome"] is None:
            return runs[0]["run_id"]
        time.sleep(0.1)
    raise AssertionError("the shift never showed up as running in the journal")


def test_watch_follows_a_running_shift_to_its_end(tmp_path, moto_endpoint, zone):
    app = zone.weighted_pair("app", ttl=0)
    path = _config(tmp_path, moto_endpoint, zone, app, shift__bake="2s", shift__steps=[0, 50, 100])
    shift = ShiftThread("shift", "--to", "green", "--config", str(path), "--log-format", "json")
    shift.start()
    run_id = _wait_for_running_run(path)
    started = time.monotonic()
    code, out, err = run("watch", "--config", str(path), "--interval", "0.5")  # the latest run: this one
    shift.join(30)
    assert shift.code == 0, shift.env.stderr.getvalue()
    assert code == 0, err
    assert time.monotonic() - started >= 2  # it followed the run (at least one bake), not a finished record
    # Off a terminal: plain lines, one per step, and the outcome.
    assert "step 2/3 50%: started" in out and "step 3/3 100%: passed" in out, out
    assert "COMPLETED" in out and "\x1b[" not in out
    code, out, _ = run("watch", run_id, "--config", str(path), "--output", "json")  # a finished run: at once
    data = json.loads(out)
    assert code == 0 and data["run_id"] == run_id and data["outcome"] == "completed"


def test_watch_exits_with_the_runs_code_when_a_rollback_stops_it(tmp_path, moto_endpoint, zone):
    app = zone.weighted_pair("app", ttl=0)
    path = _config(tmp_path, moto_endpoint, zone, app, shift__bake="3s", shift__steps=[0, 50, 100])
    shift = ShiftThread("shift", "--to", "green", "--config", str(path))
    shift.start()
    run_id = _wait_for_running_run(path)
    result: dict = {}
    watcher = threading.Thread(target=lambda: result.update(zip(("code", "out", "err"), run(
        "watch", run_id, "--config", str(path), "--interval", "0.5"))), daemon=True)
    watcher.start()
    time.sleep(1.0)
    code, _, err = run("rollback", "--config", str(path))  # on-call takes the lock over: the shift stops (5)
    assert code == 0, err
    shift.join(30)
    watcher.join(30)
    assert shift.code == 5
    assert result["code"] == 5, result.get("err")
    assert "STOPPED: CONFLICT" in result["out"]


def test_watch_gives_up_on_a_run_whose_process_died(tmp_path, moto_endpoint, zone):
    from bluegreen.adapters.state.sqlite import SqliteStateStore
    from bluegreen.core.clock import SystemClock

    app = zone.weighted_pair("app", ttl=0)
    path = _config(tmp_path, moto_endpoint, zone, app, state={"path": str(tmp_path / "state.db"), "lease": "3s"})
    store = SqliteStateStore(tmp_path / "state.db", SystemClock())
    run_id = store.start_run("burnham", "shift", {"target": "green", "steps": [50, 100]})  # no lock: as if killed
    store.close()
    started = time.monotonic()
    code, out, err = run("watch", "--config", str(path), "--interval", "0.5", "--log-format", "json")
    assert code == 1 and '"run_unfinished"' in err and run_id in err
    assert 3 <= time.monotonic() - started < 10  # waited one lease for the lock to show up, then gave up


def test_watch_without_runs_or_with_a_bad_interval_exits_2(tmp_path, moto_endpoint, zone):
    path = _config(tmp_path, moto_endpoint, zone, zone.weighted_pair("app"))
    code, _, err = run("watch", "--config", str(path))
    assert code == 2 and "holds no run yet" in err
    code, _, _ = run("watch", "--config", str(path), "--interval", "0.01")
    assert code == 2


def test_each_poll_reads_only_the_events_since_the_last_one(tmp_path, moto_endpoint, zone, monkeypatch):
    """The watcher reads the whole journal once (when it picks the run), then only what is new: every event
    reaches it exactly once, in order, however long the run. The store's reads are wrapped to count them
    (they still run against the real SQLite journal)."""
    from bluegreen.adapters.state.sqlite import SqliteStateStore
    from bluegreen.core.clock import SystemClock

    watcher = threading.current_thread()
    reads: list[tuple[int, list[int]]] = []  # (after, seqs returned) for each read of the watcher
    real_events_since = SqliteStateStore.events_since  # get_run reads through it too (after 0)

    def events_since(self, run_id, seq):
        record = real_events_since(self, run_id, seq)
        if threading.current_thread() is watcher:
            reads.append((seq, [e.seq for e in record.events]))
        return record

    monkeypatch.setattr(SqliteStateStore, "events_since", events_since)
    app = zone.weighted_pair("app", ttl=0)
    path = _config(tmp_path, moto_endpoint, zone, app, shift__bake="1s", shift__steps=[0, 50, 100])
    shift = ShiftThread("shift", "--to", "green", "--config", str(path))
    shift.start()
    run_id = _wait_for_running_run(path)
    reads.clear()
    code, out, err = run("watch", run_id, "--config", str(path), "--interval", "0.5")
    shift.join(30)
    assert shift.code == 0 and code == 0, err
    assert "COMPLETED" in out
    watched = list(reads)  # the watcher's reads only (the check below reads the journal again)
    assert watched[0][0] == 0 and len(watched) >= 3, watched  # the pick reads it all, then it followed the run
    reader = SqliteStateStore(tmp_path / "state.db", SystemClock())
    journal = reader.get_run(run_id).events
    reader.close()
    delivered = [seq for _, seqs in watched for seq in seqs]
    assert delivered == [e.seq for e in journal]  # each event once, in order, none missed
    assert all(all(seq > after for seq in seqs) for after, seqs in watched[1:])
    assert all(after > 0 for after, _ in watched[2:])  # past the start, never the whole journal again
