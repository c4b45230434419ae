"""The --not-before/--not-after window and --max-steps, with an injected clock."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from bluegreen.core.clock import FakeClock
from bluegreen.core.plan import build_plan
from bluegreen.core.weights import SideWeights
from bluegreen.errors import ConfigError, ExitCode
from bluegreen.core.plan import PlanError, limit_steps
from bluegreen.core.schedule import check_window, parse_time_bound

SEOUL = timezone(timedelta(hours=9), "KST")


def clock_at(iso: str) -> FakeClock:
    return FakeClock(wall_start=datetime.fromisoformat(iso).timestamp())


def test_parse_forms() -> None:
    assert parse_time_bound("22:00").daily.hour == 22
    assert parse_time_bound("7:05:30").daily.second == 30
    assert parse_time_bound("2025-06-01T22:00:00+02:00").at.utcoffset() == timedelta(hours=2)
    assert parse_time_bound("2025-06-01T20:00Z").at == datetime(2025, 6, 1, 20, tzinfo=timezone.utc)
    assert parse_time_bound("2025-06-01 22:00+09:00").at.hour == 22
    for bad in ("2025-06-01T22:00", "2025-06-01", "25:00", "12:60", "tonight", "22h"):
        with pytest.raises(ConfigError) as caught:
            parse_time_bound(bad, "--not-after")
        assert caught.value.exit_code == ExitCode.BAD_INPUT and "--not-after" in str(caught.value)
    with pytest.raises(ConfigError, match="offset"):
        parse_time_bound("2025-06-01T22:00")


def test_absolute_window() -> None:
    nb, na = "2025-06-01T22:00+02:00", "2025-06-02T04:00+02:00"
    early = check_window(nb, na, clock_at("2025-06-01T19:30:00+00:00"))
    assert not early.inside and early.opens_in == 30 * 60 and "too early" in early.reason and "30m" in early.reason
    assert check_window(nb, na, clock_at("2025-06-01T20:00:00+00:00")).inside  # bounds are inclusive
    assert check_window(nb, na, clock_at("2025-06-02T02:00:00+00:00")).inside
    late = check_window(nb, na, clock_at("2025-06-02T02:00:01+00:00"))
    assert not late.inside and "too late" in late.reason
    assert check_window(None, None, clock_at("2025-06-01T00:00:00+00:00")).inside
    assert check_window(nb, None, clock_at("2030-01-01T00:00:00+00:00")).inside
    with pytest.raises(ConfigError, match="empty"):
        check_window(na, nb, clock_at("2025-06-01T00:00:00+00:00"))


def test_daily_window_in_the_given_zone() -> None:
    # 13:30 UTC is 22:30 in Seoul: inside 22:00..23:30 KST, outside it in UTC.
    clock = clock_at("2025-06-01T13:30:00+00:00")
    assert check_window("22:00", "23:30", clock, tz=SEOUL).inside
    outside = check_window("22:00", "23:30", clock, tz=timezone.utc)
    assert not outside.inside and outside.opens_in == 8.5 * 3600 and "opens at 22:00" in outside.reason


def test_daily_window_across_midnight() -> None:
    for at, inside in [("21:59", False), ("22:00", True), ("23:59", True), ("00:00", True), ("04:00", True),
                       ("04:01", False), ("12:00", False)]:
        clock = clock_at(f"2025-06-01T{at}:00+00:00")
        result = check_window("22:00", "04:00", clock, tz=timezone.utc)
        assert result.inside is inside, (at, result)
    before = check_window("22:00", "04:00", clock_at("2025-06-01T12:00:00+00:00"), tz=timezone.utc)
    assert before.opens_in == 10 * 3600


def test_single_daily_bounds_and_mixed_forms() -> None:
    clock = clock_at("2025-06-01T10:00:00+00:00")
    assert not check_window("11:00", None, clock, tz=timezone.utc).inside
    assert check_window("09:00", None, clock, tz=timezone.utc).inside
    assert check_window(None, "11:00", clock, tz=timezone.utc).inside
    assert not check_window(None, "09:00", clock, tz=timezone.utc).inside
    # An absolute start date with a daily end time: both must hold.
    assert check_window("2025-06-01T09:00Z", "11:00", clock, tz=timezone.utc).inside
    assert not check_window("2025-06-02T09:00Z", "11:00", clock, tz=timezone.utc).inside


def _plan(start: SideWeights, resume: bool = True):
    return build_plan(target="green", steps=[0, 10, 50, 100], start=start, original_ttl=60, cutover_ttl=None,
                      ttl_margin=5, bake=30, resume=resume)


def test_max_steps_walks_one_step_per_run() -> None:
    live = SideWeights(100, 0)
    walked = [live.green]
    for _ in range(4):
        budget = limit_steps(_plan(live), 1)
        if not budget.plan.steps:
            break
        assert len(budget.plan.steps) == 1
        live = budget.plan.steps[-1].weights  # what the run leaves behind
        walked.append(live.green)
    assert walked == [0, 10, 50, 100]
    assert limit_steps(_plan(live), 1).plan.steps == ()


def test_max_steps_reports_deferred_and_keeps_the_rest_of_the_plan() -> None:
    plan = _plan(SideWeights(100, 0))
    budget = limit_steps(plan, 2)
    assert [s.percent for s in budget.plan.steps] == [10, 50]
    assert budget.deferred == (100,) and budget.trimmed
    assert budget.plan.start == plan.start and budget.plan.skipped == plan.skipped == (0,)
    assert limit_steps(plan, 5).plan is plan and not limit_steps(plan, 5).trimmed
    assert limit_steps(plan, None).plan is plan


def test_max_steps_does_not_count_a_leading_step_that_changes_nothing() -> None:
    plan = _plan(SideWeights(100, 0), resume=False)
    budget = limit_steps(plan, 1)
    assert [s.percent for s in budget.plan.steps] == [0, 10]
    assert budget.deferred == (50, 100)


@pytest.mark.parametrize("bad", [0, -1, True, 1.5])
def test_max_steps_must_be_positive(bad) -> None:
    with pytest.raises(PlanError):
        limit_steps(_plan(SideWeights(100, 0)), bad)
