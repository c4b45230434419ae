"""Unattended operation through the real CLI: the lock, the journal, --resume, --max-steps, time windows,
and signals, with real processes against a moto server."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from tests.support.cli import process_env, run, write_config

BLUE = {"eks-blueprint-blue": 100, "eks-blueprint-green": 0}


def _spawn(path, *argv):
    return subprocess.Popen([sys.executable, "-m", "bluegreen", *argv, "--config", str(path), "--log-format", "json"],
                            env=process_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(predicate, proc=None, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        assert proc is None or proc.poll() is None, proc.communicate()
        time.sleep(0.05)


def test_a_second_shift_exits_4_naming_the_holder(tmp_path, moto_endpoint, zone):
    app = zone.weighted_pair("app", ttl=0)
    path = write_config(tmp_path, moto_endpoint, zone, [app], shift__bake="2s")
    first = _spawn(path, "shift", "--to", "green", "--steps", "10,100")
    try:
        _wait_for(lambda: zone.weights(app)["eks-blueprint-green"] == 10, first)
        second = subprocess.run([sys.executable, "-m", "bluegreen", "shift", "--to", "green", "--config", str(path)],
                                env=process_env(), capture_output=True, text=True, timeout=30)
        assert second.returncode == 4, second.stderr
        assert f"pid {first.pid}" in second.stderr and "burnham" in second.stderr
        out, err = first.communicate(timeout=30)
        assert first.returncode == 0, err
    finally:
        first.kill()
    assert zone.weights(app) == {"eks-blueprint-blue": 0, "eks-blueprint-green": 100}


def test_max_steps_1_run_four_times_walks_the_plan_and_history_shows_it(tmp_path, moto_endpoint, zone):
    app = zone.weighted_pair("app", ttl=0)
    path = write_config(tmp_path, moto_endpoint, zone, [app])
    seen = []
    for _ in range(4):
        code, out, err = run("shift", "--to", "green", "--resume", "--max-steps", "1", "--config", str(path),
                             "--output", "json")
        assert code == 0, err
        seen.append(zone.weights(app)["eks-blueprint-green"])
    assert seen == [10, 50, 100, 100]
    assert json.loads(out)["outcome"] == "nothing_to_do"
    code, out, _ = run("history", "--config", str(path), "--output", "json")
    runs = json.loads(out)
    assert code == 0 and len(runs) == 4 and {r["outcome"] for r in runs} == {"completed", "nothing_to_do"}
    code, out, _ = run("history", runs[-1]["run_id"], "--config", str(path), "--output", "json")
    kinds = [e["kind"] for e in json.loads(out)["events"]]
    assert "weights_changed" in kinds and "step_passed" in kinds
    code, _, err = run("history", "no-such-run", "--config", str(path))
    assert code == 2 and "no run" in err


def test_rollback_defaults_to_the_side_that_held_traffic_before_the_last_shift(tmp_path, moto_endpoint, zone):
    app = zone.weighted_pair("app", blue=0, green=100, ttl=0)  # green is the old side in this migration
    path = write_config(tmp_path, moto_endpoint, zone, [app])
    code, _, err = run("shift", "--to", "blue", "--steps", "50,100", "--config", str(path))
    assert code == 0, err
    code, out, _ = run("rollback", "--config", str(path))
    assert code == 0 and "all traffic on green" in out
    assert zone.weights(app) == {"eks-blueprint-blue": 0, "eks-blueprint-green": 100}


def test_outside_the_window_nothing_happens(tmp_path, moto_endpoint, zone):
    app = zone.weighted_pair("app", ttl=0)
    path = write_config(tmp_path, moto_endpoint, zone, [app])
    before = zone.dump()
    code, out, _ = run("shift", "--to", "green", "--not-after", "2001-01-01T00:00:00+00:00", "--config", str(path))
    assert code == 0 and "outside the time window" in out and zone.dump() == before


def test_kill_9_then_resume_continues_where_it_stopped(tmp_path, moto_endpoint, zone):
    app = zone.weighted_pair("app", ttl=0)
    path = write_config(tmp_path, moto_endpoint, zone, [app], shift__bake="30s", state={"lease": "3s"})
    shift = _spawn(path, "shift", "--to", "green", "--steps", "10,50,100")
    _wait_for(lambda: zone.weights(app)["eks-blueprint-green"] == 10, shift)
    shift.kill()  # SIGKILL: no clean-up at all
    shift.wait()
    code, out, _ = run("history", "--config", str(path))
    assert "unfinished" in out or "running" in out
    time.sleep(3.5)  # the dead run's lease expires
    path = write_config(tmp_path, moto_endpoint, zone, [app], state={"lease": "3s"})  # bake 0 from here on
    code, out, err = run("shift", "--to", "green", "--steps", "0,10,50,100", "--resume", "--config", str(path),
                         "--output", "json")
    assert code == 0, err
    result = json.loads(out)
    assert [s["percent"] for s in result["steps"]] == [50, 100]
    assert zone.weights(app)["eks-blueprint-green"] == 100


@pytest.mark.parametrize("policy,expected_green", [("rollback", 0), ("hold", 10)])
def test_sigterm_during_a_step_leaves_a_known_weight_and_releases_the_lock(tmp_path, moto_endpoint, zone,
                                                                            policy, expected_green):
    app = zone.weighted_pair("app", ttl=0)
    path = write_config(tmp_path, moto_endpoint, zone, [app], shift__bake="30s", shift__on_interrupt=policy)
    shift = _spawn(path, "shift", "--to", "green", "--steps", "10,50,100")
    _wait_for(lambda: zone.weights(app)["eks-blueprint-green"] == 10, shift)
    shift.send_signal(signal.SIGTERM)
    out, err = shift.communicate(timeout=30)
    assert shift.returncode == 1, err
    assert "interrupted" in out
    assert zone.weights(app)["eks-blueprint-green"] == expected_green
    # The lock was released: a new run starts at once (a dry run does not lock, so take a real one).
    path = write_config(tmp_path, moto_endpoint, zone, [app])
    code, _, err = run("rollback", "--to", "blue", "--config", str(path))
    code2, _, err2 = run("shift", "--to", "green", "--steps", "100", "--config", str(path))
    assert code == 0 and code2 == 0, (err, err2)
