"""Per-side judgement, the traffic gate, hold policies and alias TTLs: the pure core with an injected clock."""

from __future__ import annotations

import itertools

import pytest

from bluegreen.core.clock import FakeClock
from bluegreen.core.engine import Outcome, ShiftEngine
from bluegreen.core.judgement import SideMap, StepWindows, binomial_tail, judge_step
from bluegreen.core.plan import assemble_plan, build_plan
from bluegreen.core.verdict import Gates, Sample
from bluegreen.core.weights import LiveState, RecordState, SideWeights
from bluegreen.errors import ExitCode, exit_code_for
from tests.support.fakes import MemoryRouter

SIDES = SideMap(addresses={"10.0.0.2": "blue", "10.0.0.3": "green"})
ADDRESS = {"blue": "10.0.0.2", "green": "10.0.0.3"}


def sample(side: str, ok: bool = True, *, at: float = 100.0, probe: str = "public", connection: int = 0,
           latency: float = 0.02, cluster: str | None = None) -> Sample:
    return Sample(probe, at, ok, latency, 200 if ok else 500, cluster, None if ok else "HTTP 500",
                  address=ADDRESS[side], connection=connection)


def windows(samples, *, settle_at: float = 0.0, max_draws=None) -> StepWindows:
    w = StepWindows(SIDES, settle_at=settle_at, max_draws=max_draws)
    for s in samples:
        w.add(s)
    return w


def test_a_failing_green_at_10_percent_is_judged_on_its_own_samples():
    # 90 blue successes hide 4 green failures in a whole-probe ratio (95.7% > 0.95 would pass a lax gate);
    # green's own samples fail at once.
    samples = [sample("blue", connection=i) for i in range(90)] + [sample("green", False, connection=100 + i)
                                                                     for i in range(4)]
    verdict = judge_step(windows(samples), Gates(min_success_ratio=0.95), target="green", target_share=0.1)
    assert verdict.outcome.value == "failed"
    assert any("probe public, green: 4 consecutive failures" in r for r in verdict.reasons)


def test_both_sides_failing_is_its_own_verdict():
    samples = [sample(side, False, connection=i) for i, side in enumerate(["blue", "green"] * 5)]
    verdict = judge_step(windows(samples), Gates(), target="green", target_share=0.5)
    assert verdict.outcome.value == "both_failing" and verdict.failed


def test_blue_failing_alone_is_a_warning_not_a_rollback():
    samples = [sample("blue", False, connection=i) for i in range(5)] + [sample("green", connection=9)] * 6
    verdict = judge_step(windows(samples), Gates(min_samples=5), target="green", target_share=0.5)
    assert not verdict.failed and any("source side" in w for w in verdict.warnings)


def test_green_is_compared_with_blue_over_the_same_window():
    samples = ([sample("blue", connection=i) for i in range(20)]
               + [sample("green", i % 5 != 0, connection=100 + i) for i in range(20)])  # 20% errors
    gates = Gates(min_success_ratio=0.5, max_consecutive_failures=10, max_error_ratio_increase=0.05)
    verdict = judge_step(windows(samples), gates, target="green", target_share=0.5)
    assert verdict.failed and any("error ratio is 0.200 above blue's" in r for r in verdict.reasons)


def test_an_observe_only_gate_is_reported_and_never_acted_on():
    samples = [sample("green", False, connection=i) for i in range(6)]
    verdict = judge_step(windows(samples), Gates(observe=frozenset({"consecutive_failures", "success_ratio"}),
                                                 min_samples_per_side=50), target="green", target_share=1.0)
    assert not verdict.failed and verdict.observed


def test_traffic_that_did_not_move_fails_with_a_reason():
    # 50% to green by the weights, but 40 independent draws all answered by blue: Route 53 skips green.
    samples = [sample("blue", connection=i) for i in range(40)]
    verdict = judge_step(windows(samples), Gates(), target="green", target_share=0.5, final=True)
    assert verdict.failed
    assert any("traffic did not move: green received nothing, expected 50%" in r for r in verdict.reasons)


def test_blue_still_answering_at_100_percent_fails():
    samples = [sample("green", connection=i) for i in range(30)] + [sample("blue", connection=100 + i)
                                                                    for i in range(10)]
    verdict = judge_step(windows(samples), Gates(), target="green", target_share=1.0, final=True)
    assert any("blue still receives traffic after the TTL" in r for r in verdict.reasons)


def test_a_coarse_view_does_not_fail_the_traffic_gate_spuriously():
    # Behind a caching resolver, 200 requests may come from only 3 cached answers: 3 draws at 10% seeing no
    # green is likely (73%), so it passes; the same 200 requests on 200 connections would not.
    coarse = [sample("blue", connection=i // 70) for i in range(200)]
    assert not judge_step(windows(coarse), Gates(), target="green", target_share=0.1, final=True).failed
    fine = [sample("blue", connection=i) for i in range(200)]
    assert judge_step(windows(fine), Gates(), target="green", target_share=0.1, final=True).failed
    # ... and the cap of one draw per cached-answer lifetime applies whatever the connection count.
    assert not judge_step(windows(fine, max_draws=3), Gates(), target="green", target_share=0.1,
                          final=True).failed


def test_samples_before_the_ttl_expired_do_not_count_for_the_traffic_gate():
    early = [sample("blue", connection=i, at=1.0) for i in range(40)]
    late = [sample("green", connection=100 + i, at=20.0) for i in range(20)]
    verdict = judge_step(windows(early + late, settle_at=10.0), Gates(), target="green", target_share=1.0,
                         final=True)
    assert not verdict.failed


def test_pinned_samples_say_nothing_about_where_dns_sends_traffic():
    pinned = [Sample("green-direct", 100.0, True, 0.01, 200, None, None, address="10.0.0.3", connection=i,
                     pinned=True) for i in range(40)]
    assert not judge_step(windows(pinned), Gates(), target="green", target_share=0.1, final=True).failed


def test_address_and_body_disagreeing_is_a_warning():
    samples = [sample("green", cluster="eks-blueprint-blue", connection=i) for i in range(3)]
    verdict = judge_step(windows(samples), Gates(), target="green", target_share=1.0)
    assert any("named the other side's cluster" in w for w in verdict.warnings)


def test_cluster_names_fall_back_to_a_whole_word():
    by_name = SideMap()
    assert by_name.by_cluster(Sample("p", 0, True, 0, cluster="eks-blueprint-green")) == "green"
    assert by_name.by_cluster(Sample("p", 0, True, 0, cluster="eks-blueprint-blue")) == "blue"
    assert by_name.by_cluster(Sample("p", 0, True, 0, cluster="blueprint")) is None


def test_binomial_tail_is_exact_at_the_edges():
    assert binomial_tail(10, 1.0, 10) == 1.0 and binomial_tail(10, 1.0, 9) == 0.0
    assert binomial_tail(3, 0.1, 0) == pytest.approx(0.729)
    assert binomial_tail(100, 0.5, 50) > 0.5


# -- the engine's policies --------------------------------------------------------------------------------
class SideProber:
    """One sample per drain from the side the weights pick (deterministically), fresh connection each time."""

    def __init__(self, clock, router, *, green_ok=True, blue_ok=True, names=("public",)):
        self.clock, self.router = clock, router
        self.green_ok, self.blue_ok = green_ok, blue_ok
        self._names = names
        self.counter = itertools.count()

    names = property(lambda self: self._names)

    def start(self):
        pass

    def stop(self):
        pass

    def drain(self):
        i = next(self.counter)
        side = "green" if (i * 37) % 100 < self.router.weights.green else "blue"  # spread over the window
        ok = self.green_ok if side == "green" else self.blue_ok
        return [sample(side, ok, at=self.clock.monotonic(), connection=i)]


def _engine(router, prober, clock, gates):
    events = []
    engine = ShiftEngine(router, prober, clock, gates, on_event=events.append, check_interval=1.0,
                         sides=lambda live: SIDES)
    return engine, events


def test_on_fail_hold_keeps_the_weights_and_exits_3():
    clock = FakeClock()
    router = MemoryRouter(SideWeights(100, 0), ttl=5)
    engine, events = _engine(router, SideProber(clock, router, green_ok=False), clock, Gates(on_fail="hold"))
    plan = build_plan(target="green", steps=[50, 100], start=router.weights, original_ttl=5, cutover_ttl=None,
                      ttl_margin=0, bake=30)
    result = engine.run(plan)
    assert result.outcome is Outcome.HELD and exit_code_for(result.outcome) == ExitCode.GATES_FAILED
    assert router.weights == SideWeights(50, 50) and "held" in [e.kind for e in events]


def test_both_failing_holds_by_default_instead_of_rolling_back():
    clock = FakeClock()
    router = MemoryRouter(SideWeights(100, 0), ttl=5)
    prober = SideProber(clock, router, green_ok=False, blue_ok=False)
    engine, events = _engine(router, prober, clock, Gates())
    plan = build_plan(target="green", steps=[50, 100], start=router.weights, original_ttl=5, cutover_ttl=None,
                      ttl_margin=0, bake=30)
    result = engine.run(plan)
    assert result.outcome is Outcome.HELD and "both sides are failing" in result.reason
    assert router.weights == SideWeights(50, 50)
    assert "both_failing" in [e.kind for e in events]


def test_an_observe_only_engine_completes_and_journals_what_it_saw():
    clock = FakeClock()
    router = MemoryRouter(SideWeights(100, 0), ttl=5)
    gates = Gates(observe=frozenset({"consecutive_failures", "success_ratio", "p95_latency", "compare_to_blue",
                                     "traffic"}))
    engine, events = _engine(router, SideProber(clock, router, green_ok=False), clock, gates)
    plan = build_plan(target="green", steps=[50, 100], start=router.weights, original_ttl=5, cutover_ttl=None,
                      ttl_margin=0, bake=10)
    assert engine.run(plan).outcome is Outcome.COMPLETED
    assert any(e.kind == "gates_observed" and e.data["observe_only"] for e in events)


# -- alias and mixed TTLs -------------------------------------------------------------------------------
def _live(*records) -> LiveState:
    return LiveState(tuple(records))


def test_an_all_alias_group_holds_for_the_alias_ttl_and_never_lowers_a_ttl():
    live = _live(RecordState("app.example.com", "A", SideWeights(100, 0), None, alias=True))
    budget = assemble_plan(live=live, target="green", steps=[10, 100], cutover_ttl=5, alias_ttl=60,
                           ttl_margin=5, bake=0)
    plan = budget.plan
    assert not plan.lowers_ttl and plan.step_ttl() == 60
    assert plan.hold_after(plan.steps[0], changed=True) == 65
    clock = FakeClock()
    router = MemoryRouter(SideWeights(100, 0), ttl=60)
    engine, _ = _engine(router, SideProber(clock, router), clock, Gates(traffic_check=False))
    started = clock.monotonic()
    assert engine.run(plan).outcome is Outcome.COMPLETED
    assert clock.monotonic() - started >= 2 * 65  # two steps of 60 s alias TTL + 5 s margin, not 5 + 5
    assert all(ttl is None for _, ttl in router.writes)


def test_a_mixed_group_restores_each_records_own_ttl():
    live = _live(RecordState("a.example.com", "A", SideWeights(100, 0), 300),
                 RecordState("b.example.com", "A", SideWeights(100, 0), 120),
                 RecordState("c.example.com", "A", SideWeights(100, 0), None, alias=True))
    plan = assemble_plan(live=live, target="green", steps=[10, 100], cutover_ttl=5, alias_ttl=60, ttl_margin=0,
                         bake=0).plan
    assert plan.lowers_ttl and plan.original_ttl == 300 and plan.step_ttl() == 60  # the alias dominates
    assert plan.restore_ttl == {("a.example.com", "A"): 300, ("b.example.com", "A"): 120}
    assert live.mismatches(SideWeights(100, 0), plan.restore_ttl) == []
    assert live.mismatches(SideWeights(100, 0), 300) == ["b.example.com A ttl=120"]


def test_a_rollback_that_fails_says_where_traffic_is_and_what_to_run():
    clock = FakeClock()
    router = MemoryRouter(SideWeights(100, 0), ttl=5)
    router.fail_set_at = 2  # the 10% change goes through; the rollback's change does not (Route 53 down)
    engine, events = _engine(router, SideProber(clock, router, green_ok=False), clock,
                             Gates(max_consecutive_failures=0))
    plan = build_plan(target="green", steps=[10, 100], start=router.weights, original_ttl=5, cutover_ttl=None,
                      ttl_margin=0, bake=30)
    result = engine.run(plan)
    assert result.outcome is Outcome.ROLLBACK_FAILED and exit_code_for(result.outcome) == ExitCode.ERROR
    assert "the rollback FAILED" in result.reason and "traffic is at blue=90 green=10" in result.reason
    assert "`bluegreen rollback --to blue`" in result.reason
    failed = [e for e in events if e.kind == "rollback_failed"]
    assert failed and failed[0].data["weights"] == {"blue": 90, "green": 10}
