"""The pure core: weights, steps, plans, verdicts and the engine, with an injected clock."""

from __future__ import annotations

import pytest

from bluegreen.core.clock import FakeClock
from bluegreen.core.durations import parse_duration
from bluegreen.core.engine import OnInterrupt, Outcome, ShiftEngine
from bluegreen.core.verdict import Gates, Sample, SampleWindow, judge, percentile
from bluegreen.core.plan import PlanError, build_plan, parse_steps
from bluegreen.core.weights import SideWeights
from bluegreen.errors import exit_code_for
from bluegreen.errors import ExitCode
from tests.support.fakes import MemoryRouter, ScriptedProber


# -- weights, steps, durations ------------------------------------------------------------------------
def test_percent_weights_always_sum_to_100_and_never_all_zero():
    for pct in range(101):
        w = SideWeights.for_percent("green", pct)
        assert w.total == 100 and not w.all_zero and w.green == pct


def test_all_zero_group_is_an_equal_split_like_route53():
    assert SideWeights(0, 0).all_zero
    assert SideWeights(0, 0).share("green") == 0.5


@pytest.mark.parametrize("raw,expected", [("0,10,50,100", (0, 10, 50, 100)), ([5, 100], (5, 100)), ("100", (100,))])
def test_parse_steps_accepts(raw, expected):
    assert parse_steps(raw) == expected


@pytest.mark.parametrize("raw,fragment", [
    ("0,50,10", "strictly increasing"), ("0,10,10", "strictly increasing"), ("0,101", "outside 0..100"),
    ("-5,10", "not an integer"), ("a,b", "not an integer"), ("", "empty"), ([1.5], "not an integer"),
    ([True], "not an integer"),
])
def test_parse_steps_refuses(raw, fragment):
    with pytest.raises(PlanError, match=fragment):
        parse_steps(raw)


@pytest.mark.parametrize("text,seconds", [("500ms", 0.5), ("30s", 30), ("5m", 300), ("1h", 3600), ("1m30s", 90), (2, 2.0)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["5 minutes", "m5", "", "1x", -1, True])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        parse_duration(text)


# -- verdicts -------------------------------------------------------------------------------------------
def _samples(n, ok=True, latency=0.01, probe="p"):
    return [Sample(probe, float(i), ok, latency, 200 if ok else 500) for i in range(n)]


def test_verdict_inconclusive_until_min_samples_then_passing():
    gates = Gates(min_samples=20)
    window = SampleWindow()
    window.extend(_samples(19))
    assert judge({"p": window.summary()}, gates).outcome.value == "inconclusive"
    window.extend(_samples(1))
    assert judge({"p": window.summary()}, gates).outcome.value == "passing"


def test_consecutive_failures_fail_before_min_samples():
    window = SampleWindow()
    window.extend(_samples(4, ok=False))
    verdict = judge({"p": window.summary()}, Gates(max_consecutive_failures=3, min_samples=20))
    assert verdict.failed and "4 consecutive failures" in verdict.reasons[0]


def test_success_ratio_and_p95_gates():
    gates = Gates(min_success_ratio=0.95, max_p95_latency=0.5, min_samples=20, max_consecutive_failures=10)
    window = SampleWindow()
    for i in range(100):
        window.add(Sample("p", i, ok=i % 10 != 0, latency=0.01))
    verdict = judge({"p": window.summary()}, gates)
    assert verdict.failed and "success ratio 0.900" in verdict.reasons[0]
    slow = SampleWindow()
    slow.extend(_samples(90, latency=0.01) + _samples(10, latency=1.0))
    verdict = judge({"p": slow.summary()}, gates)
    assert verdict.failed and "p95 latency 1000ms" in verdict.reasons[0]


def test_window_memory_is_bounded():
    window = SampleWindow(capacity=100)
    window.extend(_samples(10_000))
    assert window.samples == 10_000 and len(window._latencies) == 100


def test_percentile_nearest_rank():
    assert percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.95) == 10
    assert percentile([5], 0.95) == 5
    assert percentile([], 0.95) is None


# -- plans ----------------------------------------------------------------------------------------------
def test_plan_holds_ttl_plus_margin_plus_bake_and_estimates():
    plan = build_plan(target="green", steps=[0, 10, 50, 100], start=SideWeights(100, 0), original_ttl=300,
                      cutover_ttl=None, ttl_margin=5, bake=30)
    # 0% changes nothing: bake only. The three others wait the TTL, the margin and the bake.
    assert [plan.hold_after(s, changed=s.percent != 0) for s in plan.steps] == [30, 335, 335, 335]
    assert plan.estimated_seconds() == 30 + 3 * 335


def test_plan_with_lowered_ttl_waits_old_ttl_once():
    plan = build_plan(target="green", steps=[10, 100], start=SideWeights(100, 0), original_ttl=300,
                      cutover_ttl=60, ttl_margin=5, bake=30)
    assert plan.lowers_ttl
    assert plan.estimated_seconds() == (300 + 5) + 2 * (60 + 5 + 30)


def test_resume_drops_steps_already_done():
    plan = build_plan(target="green", steps=[0, 10, 50, 100], start=SideWeights(90, 10), original_ttl=60,
                      cutover_ttl=None, ttl_margin=0, bake=0, resume=True)
    assert [s.percent for s in plan.steps] == [50, 100] and plan.skipped == (0, 10)


# -- engine ---------------------------------------------------------------------------------------------
def _engine(router, clock, prober=None, gates=Gates(min_samples=5), **kw):
    events = []
    prober = prober or ScriptedProber(clock, router)
    engine = ShiftEngine(router, prober, clock, gates, on_event=events.append, check_interval=1.0, **kw)
    return engine, events


def test_five_minute_pause_is_asserted_without_waiting():
    clock = FakeClock()
    router = MemoryRouter(SideWeights(100, 0), ttl=300)
    engine, events = _engine(router, clock)
    plan = build_plan(target="green", steps=[100], start=router.weights, original_ttl=300, cutover_ttl=None,
                      ttl_margin=0, bake=0)
    result = engine.run(plan)
    assert result.outcome is Outcome.COMPLETED and exit_code_for(result.outcome) == ExitCode.OK
    assert sum(clock.sleeps) == pytest.approx(300)  # the TTL, held in full, with no real waiting
    assert router.writes == [(SideWeights(0, 100), None)]


def test_full_shift_walks_every_step_in_order():
    clock = FakeClock()
    router = MemoryRouter(SideWeights(100, 0), ttl=60)
    engine, events = _engine(router, clock)
    plan = build_plan(target="green", steps=[0, 10, 50, 100], start=router.weights, original_ttl=60,
                      cutover_ttl=None, ttl_margin=5, bake=30)
    result = engine.run(plan)
    assert result.outcome is Outcome.COMPLETED
    assert [w for w, _ in router.writes] == [SideWeights(90, 10), SideWeights(50, 50), SideWeights(0, 100)]
    assert sum(clock.sleeps) == pytest.approx(30 + 3 * 95)
    kinds = [e.kind for e in events if e.kind != "hold"]
    assert kinds[0] == "shift_started" and kinds[-1] == "shift_completed"
    assert kinds.count("weights_changed") == 3


def test_failing_green_at_10_percent_rolls_back_to_blue():
    clock = FakeClock()
    router = MemoryRouter(SideWeights(100, 0), ttl=60)
    prober = ScriptedProber(clock, router, outcome=lambda now, w: (w.green == 0, 0.01, "x"))
    engine, events = _engine(router, clock, prober)
    plan = build_plan(target="green", steps=[0, 10, 50, 100], start=router.weights, original_ttl=60,
                      cutover_ttl=None, ttl_margin=5, bake=30)
    result = engine.run(plan)
    assert result.outcome is Outcome.ROLLED_BACK and exit_code_for(result.outcome) == ExitCode.GATES_FAILED
    assert router.weights == SideWeights(100, 0)
    assert [w for w, _ in router.writes] == [SideWeights(90, 10), SideWeights(100, 0)]
    assert "consecutive failures" in result.reason
    # Detected within max_consecutive_failures + 1 checks of the change, not after the whole hold.
    assert sum(clock.sleeps) < 30 + 10


def test_weights_changed_by_someone_else_stops_without_touching():
    clock = FakeClock()
    router = MemoryRouter(SideWeights(100, 0), ttl=10)

    def on_sleep(c):  # an on-call engineer runs `bluegreen rollback` during the 10% hold
        if router.weights == SideWeights(90, 10) and c.monotonic() > 1005:
            router.weights = SideWeights(100, 0)

    clock.on_sleep = on_sleep
    engine, _ = _engine(router, clock)
    plan = build_plan(target="green", steps=[10, 50, 100], start=router.weights, original_ttl=10,
                      cutover_ttl=None, ttl_margin=0, bake=0)
    result = engine.run(plan)
    assert result.outcome is Outcome.CONFLICT and exit_code_for(result.outcome) == ExitCode.CONFLICT
    assert [w for w, _ in router.writes] == [SideWeights(90, 10)]  # nothing written after the conflict
    assert router.weights == SideWeights(100, 0)


def test_lowered_ttl_is_set_first_waited_once_and_restored():
    clock = FakeClock()
    router = MemoryRouter(SideWeights(100, 0), ttl=300)
    engine, _ = _engine(router, clock)
    plan = build_plan(target="green", steps=[50, 100], start=router.weights, original_ttl=300, cutover_ttl=30,
                      ttl_margin=5, bake=0)
    result = engine.run(plan)
    assert result.outcome is Outcome.COMPLETED
    assert router.writes == [(SideWeights(100, 0), 30), (SideWeights(50, 50), None), (SideWeights(0, 100), None),
                             (SideWeights(0, 100), 300)]
    assert sum(clock.sleeps) == pytest.approx(305 + 2 * 35)


def test_rollback_restores_ttl_in_the_same_change():
    clock = FakeClock()
    router = MemoryRouter(SideWeights(100, 0), ttl=300)
    prober = ScriptedProber(clock, router, outcome=lambda now, w: (w.green < 50, 0.01, "x"))
    engine, _ = _engine(router, clock, prober)
    plan = build_plan(target="green", steps=[10, 50, 100], start=router.weights, original_ttl=300, cutover_ttl=30,
                      ttl_margin=5, bake=0)
    result = engine.run(plan)
    assert result.outcome is Outcome.ROLLED_BACK
    assert router.writes[-1] == (SideWeights(100, 0), 300) and router.ttl == 300


def test_error_while_shifting_rolls_back():
    clock = FakeClock()
    router = MemoryRouter(SideWeights(100, 0))
    router.fail_set_at = 2
    engine, _ = _engine(router, clock)
    plan = build_plan(target="green", steps=[10, 50, 100], start=router.weights, original_ttl=60,
                      cutover_ttl=None, ttl_margin=0, bake=0)
    result = engine.run(plan)
    assert result.outcome is Outcome.ROLLED_BACK and "injected failure" in result.reason
    assert router.weights == SideWeights(100, 0)


@pytest.mark.parametrize("policy,final", [(OnInterrupt.ROLLBACK, SideWeights(100, 0)),
                                          (OnInterrupt.HOLD, SideWeights(90, 10))])
def test_interrupt_leaves_a_known_weight(policy, final):
    import threading

    clock = FakeClock()
    router = MemoryRouter(SideWeights(100, 0))
    stop = threading.Event()
    clock.on_sleep = lambda c: stop.set() if router.weights == SideWeights(90, 10) else None
    engine, _ = _engine(router, clock, stop=stop, on_interrupt=policy)
    plan = build_plan(target="green", steps=[10, 50, 100], start=router.weights, original_ttl=60,
                      cutover_ttl=None, ttl_margin=0, bake=0)
    result = engine.run(plan)
    assert result.outcome is Outcome.INTERRUPTED
    assert router.weights == final and result.final_weights == final


def test_nothing_to_do_when_resume_finds_the_plan_complete():
    clock = FakeClock()
    router = MemoryRouter(SideWeights(0, 100))
    engine, _ = _engine(router, clock)
    plan = build_plan(target="green", steps=[0, 10, 50, 100], start=router.weights, original_ttl=60,
                      cutover_ttl=None, ttl_margin=0, bake=0, resume=True)
    result = engine.run(plan)
    assert result.outcome is Outcome.NOTHING_TO_DO and exit_code_for(result.outcome) == 0 and router.writes == []


@pytest.mark.parametrize("policy", list(OnInterrupt))
def test_lost_lock_stops_without_writing_again(policy):
    import threading

    clock = FakeClock()
    router = MemoryRouter(SideWeights(100, 0))
    lost, stop = threading.Event(), threading.Event()

    def takeover(c):  # `bluegreen rollback` takes the lock and writes blue 100 during the 10% hold
        if router.weights == SideWeights(90, 10):
            router.weights = SideWeights(100, 0)
            lost.set()
            stop.set()

    clock.on_sleep = takeover
    engine, _ = _engine(router, clock, stop=stop, lock_lost=lost, on_interrupt=policy)
    plan = build_plan(target="green", steps=[10, 50, 100], start=router.weights, original_ttl=300, cutover_ttl=30,
                      ttl_margin=0, bake=0)

    result = engine.run(plan)
    assert result.outcome is Outcome.CONFLICT and exit_code_for(result.outcome) == ExitCode.CONFLICT
    assert router.writes[-1][0] == SideWeights(90, 10)  # nothing written after the takeover
    assert router.weights == SideWeights(100, 0)


def test_a_fresh_start_read_is_not_repeated_but_later_steps_reread():
    clock = FakeClock()
    router = MemoryRouter(SideWeights(100, 0))
    reads = []
    original = router.read
    router.read = lambda: reads.append(1) or original()
    engine, _ = _engine(router, clock)
    plan = build_plan(target="green", steps=[10, 100], start=router.weights, original_ttl=0, cutover_ttl=None,
                      ttl_margin=0, bake=0)
    assert engine.run(plan, live=original()).outcome is Outcome.COMPLETED
    assert len(reads) == 1  # before the second step only


def test_a_readback_showing_someone_elses_weights_is_a_conflict_not_a_rollback():
    from bluegreen.errors import WeightsChangedExternally

    clock = FakeClock()
    router = MemoryRouter(SideWeights(100, 0))

    def verify(weights, changes, *, ttl=None):  # an on-call rollback lands between set and read-back
        router.weights = SideWeights(100, 0)
        raise WeightsChangedExternally("read-back after INSYNC does not show blue=90 green=10")

    router.verify = verify
    engine, _ = _engine(router, clock)
    plan = build_plan(target="green", steps=[10, 100], start=router.weights, original_ttl=0, cutover_ttl=None,
                      ttl_margin=0, bake=0)
    result = engine.run(plan)
    assert result.outcome is Outcome.CONFLICT and exit_code_for(result.outcome) == ExitCode.CONFLICT
    assert [w for w, _ in router.writes] == [SideWeights(90, 10)]  # no rollback write on top of theirs


@pytest.mark.parametrize("phase", ["before-set", "in-set", "in-verify", "in-hold"])
@pytest.mark.parametrize("policy", list(OnInterrupt))
def test_a_signal_at_any_phase_of_a_step_leaves_a_known_weight(phase, policy):
    import threading

    clock = FakeClock()
    router = MemoryRouter(SideWeights(100, 0))
    stop = threading.Event()
    real_set, real_verify = router.set, router.verify

    real_read = router.read

    def read():
        if phase == "before-set" and router.weights == SideWeights(90, 10):
            stop.set()  # arrives while the live weights are re-read before the 50% step
        return real_read()

    def set_(weights, *, live=None, ttl=None, urgent=False):
        changes = real_set(weights, ttl=ttl)
        if phase == "in-set" and weights == SideWeights(50, 50):
            stop.set()  # arrives while the change is in flight
        return changes

    def verify(weights, changes, *, ttl=None):
        if phase == "in-verify" and weights == SideWeights(50, 50):
            stop.set()  # arrives while waiting for INSYNC
        return real_verify(weights, changes, ttl=ttl)

    router.read, router.set, router.verify = read, set_, verify
    if phase == "in-hold":
        clock.on_sleep = lambda c: stop.set() if router.weights == SideWeights(50, 50) else None
    engine, _ = _engine(router, clock, stop=stop, on_interrupt=policy)
    plan = build_plan(target="green", steps=[10, 50, 100], start=router.weights, original_ttl=60,
                      cutover_ttl=None, ttl_margin=0, bake=5)
    result = engine.run(plan)
    assert result.outcome is Outcome.INTERRUPTED
    # The records hold exactly the weights the run reports, and they are one of the plan's known weights.
    assert router.weights == result.final_weights
    expected = SideWeights(100, 0) if policy is OnInterrupt.ROLLBACK else (
        SideWeights(90, 10) if phase == "before-set" else SideWeights(50, 50))
    assert router.weights == expected
