"""The run timeline (bluegreen/core/timeline.py): events from the real engine and from the journal folded into
one view, in both the old (text weights, per-probe shares) and the new (objects, per-side data) shapes."""

from __future__ import annotations

import pytest

from bluegreen.errors import exit_code_for
from bluegreen.adapters.state.sqlite import SqliteStateStore
from bluegreen.core.clock import FakeClock
from bluegreen.core.state import Holder
from bluegreen.core.timeline import (
    AGGREGATE, fold, from_run_record, gate_checks, parse_weights, side_of_cluster, step_percent,
)
from bluegreen.runs import JournalSink
from tests.support.runs import GATES, engine_run, new_form_events, plan_dict


# -- parsers -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("raw,expected", [
    ("blue=90 green=10", {"blue": 90, "green": 10}),
    ({"blue": 90, "green": 10}, {"blue": 90, "green": 10}),
    ({"green": 100, "blue": 0, "extra": "ignored"}, {"blue": 0, "green": 100}),
    ("blue: 0, green: 255", {"blue": 0, "green": 255}),
])
def test_weights_parse_from_text_and_objects(raw, expected):
    assert parse_weights(raw) == expected


@pytest.mark.parametrize("raw", [None, "None", "lock taken over", {"blue": 90}, {"blue": "x", "green": 1},
                                 {"blue": True, "green": 1}, 42, ["blue", 1]])
def test_weights_that_say_nothing_are_none(raw):
    assert parse_weights(raw) is None


def test_cluster_names_map_to_sides_by_map_then_by_name():
    assert side_of_cluster("eks-blueprint-green") == "green"
    assert side_of_cluster("blue") == "blue"
    assert side_of_cluster("bluegreen-shared") is None  # one token, neither side
    assert side_of_cluster("blue-green") is None  # says both
    assert side_of_cluster("prod-a", {"prod-a": "green"}) == "green"
    assert step_percent("50%") == 50 and step_percent("lower-ttl") is None


# -- a run from the real engine (whatever shape it emits) ------------------------------------------------
def test_rollback_at_50_percent_is_folded_into_steps_verdicts_and_the_rollback_moment():
    events, result, _ = engine_run(fail_green_from=50)
    assert result.outcome.value == "rolled_back"
    view = fold(events)
    assert view.target == "green" and view.steps == (0, 10, 50, 100)
    assert view.outcome == "rolled_back" and view.finished
    assert [(s.label, s.verdict) for s in view.spans] == [
        ("0%", "passed"), ("10%", "passed"), ("50%", "failed"), ("rollback", "done")]
    failed = view.spans[2]
    assert failed.reasons and "success ratio" in failed.reasons[0]
    gates_failed_at = next(at for at, kind, _ in events if kind == "gates_failed")
    assert view.rollback_at == gates_failed_at and "success ratio" in view.rollback_reason
    assert view.position() == (3, 4)
    # weights as percent of answers, one point per change, back on blue at the rollback
    assert [v for _, v in view.weights["green"]] == [0.0, 10.0, 50.0, 0.0]
    assert view.weights["green"][-1][0] == view.rollback_at
    assert view.current_weights == {"blue": 100, "green": 0}
    assert view.change_ids == [c for s in result.steps for c in s.change_ids] + ["C3"]
    assert view.step_time_left(view.rollback_at + 100) == 0.0 and view.run_time_left(0) == 0.0


def test_completed_run_has_observed_share_following_the_weights():
    events, result, _ = engine_run()
    assert result.outcome.value == "completed"
    view = fold(events)
    assert view.outcome == "completed" and view.position() == (4, 4)
    assert all(s.verdict == "passed" for s in view.spans)
    starts = {s.label: s.started_at for s in view.spans}

    def mean_share(side, lo, hi):
        values = [v for at, v in view.share[side] if lo < at <= hi]
        assert values, (side, lo, hi)
        return sum(values) / len(values)

    at_10 = mean_share("green", starts["10%"] + 20, starts["50%"])
    at_50 = mean_share("green", starts["50%"] + 20, starts["100%"])
    at_100 = mean_share("green", starts["100%"] + 20, view.finished_at)
    assert at_10 < 25 < at_50 < 75 < at_100  # the observed share climbs with the weights
    assert AGGREGATE in view.p95_ms and len(view.p95_ms[AGGREGATE]) == 4  # one per step_passed
    assert view.finished_at == events[-1][0]


def test_time_left_counts_down_in_the_step_and_estimates_the_rest_of_the_run():
    events, _, plan = engine_run()
    step_50 = next(i for i, e in enumerate(events) if e[1] == "step_started" and e[2]["step"] == "50%")
    first_hold = next(i for i in range(step_50, len(events)) if events[i][1] == "hold")
    view = fold(events[: first_hold + 1])
    at, _, hold = events[first_hold]
    assert not view.finished and view.position() == (3, 4)
    assert view.step_time_left(at) == hold["remaining_seconds"]
    assert view.step_time_left(at + 10) == hold["remaining_seconds"] - 10
    assert view.step_time_left(at + 10_000) == 0.0
    # one step (100%) to go after this one, taking as long as the last step that moved weights (10%: 95s)
    assert view.typical_step_seconds() == pytest.approx(95.0)
    assert view.run_time_left(at + 10) == pytest.approx(hold["remaining_seconds"] - 10 + 95.0)
    # before any hold, the plan's estimate
    early = fold(events[:1])
    assert early.run_time_left(events[0][0] + 15) == pytest.approx(plan.estimated_seconds() - 15)
    assert early.step_time_left(events[0][0]) is None


# -- the new shape ---------------------------------------------------------------------------------------
def test_new_shape_gives_per_side_series_and_position_and_ignores_unknown_keys():
    events = new_form_events()
    view = fold(events)
    t0 = events[0][0]
    assert view.outcome == "completed" and view.steps_total == 3 and view.position() == (3, 3)
    assert view.error_ratio["green"] == [(t0 + 34, 0.0), (t0 + 74, 0.02), (t0 + 120, 0.0)]
    assert view.p95_ms["blue"][-1] == (t0 + 120, 20.0)
    assert view.share["green"][-1] == (t0 + 120, 97.0)
    assert [v for _, v in view.weights["green"]] == [0.0, 50.0, 100.0]
    assert view.change_ids == ["C1", "C2"]
    assert view.insync_seconds == pytest.approx(2.0)


def test_gates_show_the_worst_value_against_each_threshold():
    events = new_form_events()
    mid = fold(events[:8])  # the second hold of the 50% step
    checks = {c.name: c for c in gate_checks(mid, GATES)}
    assert checks["success ratio"].value == pytest.approx(0.98) and checks["success ratio"].ok
    assert checks["p95 latency"].value == 95.0 and checks["p95 latency"].threshold == 800.0
    assert checks["samples"].value == 78 and checks["samples"].ok
    assert checks["consecutive failures"].value is None and checks["consecutive failures"].state == "unknown"
    early = {c.name: c for c in gate_checks(fold(events[:7]), GATES)}  # 7 samples of 10 needed: not a failure
    assert early["samples"].ok is False and early["samples"].state == "waiting"
    failing = fold(events[:8])
    failing.latest["green"] = failing.latest["green"].__class__(samples=38, error_ratio=0.2, p95_ms=900.0)
    checks = {c.name: c for c in gate_checks(failing, GATES)}
    assert checks["success ratio"].ok is False and checks["p95 latency"].ok is False
    assert gate_checks(mid) == []  # no thresholds known: nothing to show
    assert [c.name for c in gate_checks(fold(events[:8], plan={"gates": {"min_samples": 5}}))] == ["samples"]


def test_bad_events_are_ignored_not_fatal():
    view = fold([(1.0, "shift_started", {"steps": "nope", "start": 7}), (2.0, "hold", None),
                 (3.0, "weights_changed", {"new": "junk", "change_ids": None}), (4.0, "mystery", {"x": 1}),
                 (5.0, "hold", {"share": {"p": "x"}, "sides": [1, 2], "remaining_seconds": "soon"})])
    assert view.steps == () and view.position() is None and not view.finished
    assert view.bounds() == (1.0, 5.0)


# -- a journaled run, through the real SQLite store -----------------------------------------------------
def test_run_record_from_the_journal_gives_the_same_view(tmp_path):
    events, result, plan = engine_run(fail_green_from=50)
    clock = FakeClock(wall_start=events[0][0])
    store = SqliteStateStore(tmp_path / "state.db", clock)
    holder = Holder(host="ops-box", pid=42, started_at=clock.wall(), run_id="R1", command="shift")
    store.start_run("checkout", "shift", plan_dict(plan, config_digest="sha256:abc"), run_id="R1", holder=holder)
    sink = JournalSink(store, "R1")
    from bluegreen.core.ports import Event

    for at, kind, data in events:  # the journal stamps with its clock: move it to each event's time
        clock.advance(at - clock.wall())
        sink(Event(kind, data))
    store.finish("R1", result.outcome.value, int(exit_code_for(result.outcome)), result.reason)
    record = store.get_run("R1")
    store.close()
    view = from_run_record(record)
    assert view.run_id == "R1" and view.migration == "checkout" and view.holder["host"] == "ops-box"
    assert "token" not in view.holder
    assert view.plan["config_digest"] == "sha256:abc"
    assert view.outcome == "rolled_back" and view.exit_code == 3
    assert [(s.label, s.verdict) for s in view.spans][2] == ("50%", "failed")
    assert [v for _, v in view.weights["green"]] == [0.0, 10.0, 50.0, 0.0]
    # the journal keeps no hold events: the observed share comes from each step's summary
    assert view.share["green"] and view.share["green"][-1][1] > 0


def test_record_outcome_wins_over_what_the_events_imply():
    events, _, _ = engine_run(fail_green_from=50)

    class Record:  # an interrupted run with on_interrupt: rollback journals rolled_back, the CLI interrupted
        run_id, name, command, plan, holder = "R2", "m", "shift", {}, {"token": "t", "pid": 1}
        started_at, finished_at = events[0][0], events[-1][0] + 1
        outcome, exit_code, reason = "interrupted", 1, "interrupted by a signal"

    record = Record()
    record.events = [type("E", (), {"at": a, "kind": k, "data": d})() for a, k, d in events]
    view = from_run_record(record)
    assert view.outcome == "interrupted" and view.exit_code == 1 and view.finished_at == events[-1][0] + 1
    assert view.holder == {"pid": 1}


def test_without_history_a_day_long_run_keeps_one_point_per_series():
    events, _, _ = engine_run()
    view = fold(events, keep_history=False)
    full = fold(events)
    assert all(len(points) == 1 for points in view.share.values())
    assert all(len(points) == 1 for points in view.weights.values())
    assert view.current_weights == full.current_weights == {"blue": 0, "green": 100}
    assert view.share["green"][-1] == full.share["green"][-1] and view.outcome == full.outcome
