"""Realistic runs for the timeline, panel and report tests.

``engine_run`` drives the real :class:`ShiftEngine` (in-memory router, scripted probes, fake clock) and
stamps each event with the fake wall clock, so the tests read whatever the engine really emits, in
whichever shape it emits it. ``new_form_events`` is a hand-written run in the shape the engine moves to
(weights as objects, per-side data in ``hold``), so both shapes stay covered.
"""

from __future__ import annotations

from bluegreen.core.clock import FakeClock
from bluegreen.core.engine import ShiftEngine
from bluegreen.core.verdict import Gates
from bluegreen.core.plan import build_plan
from bluegreen.core.weights import SideWeights
from tests.support.fakes import MemoryRouter, ScriptedProber

GATES = Gates(min_success_ratio=0.95, max_p95_latency=0.8, min_samples=10, max_consecutive_failures=3)
STEPS = (0, 10, 50, 100)


def _traffic(fail_green_from: int | None):
    """Answers split between the clusters as the weights say (one in a hundred at a time), with green
    slower and, from ``fail_green_from`` percent, failing one answer in five."""
    count = [0]

    def outcome(now, weights: SideWeights):
        count[0] += 1
        green = (count[0] * 37) % 100 < weights.green
        cluster = "eks-blueprint-green" if green else "eks-blueprint-blue"
        if not green:
            return True, 0.020 + (count[0] % 5) * 0.004, cluster
        failing = fail_green_from is not None and weights.green >= fail_green_from and count[0] % 5 == 0
        return not failing, 0.060 + (count[0] % 7) * 0.02, cluster

    return outcome


def engine_run(*, fail_green_from: int | None = None, steps=STEPS, wall_start: float = 1_800_000_000.0):
    """Run a shift blue -> green through ``steps`` and return ``(events, result, plan)`` where events are
    ``(wall_time, kind, data)``. With ``fail_green_from=50`` the gates fail at 50% and the run rolls back."""
    clock = FakeClock(wall_start=wall_start)
    router = MemoryRouter(SideWeights(100, 0), ttl=60)
    prober = ScriptedProber(clock, router, outcome=_traffic(fail_green_from), names=("public",))
    events: list[tuple[float, str, dict]] = []
    engine = ShiftEngine(router, prober, clock, GATES, check_interval=1.0, progress_interval=5.0,
                         on_event=lambda e: events.append((clock.wall(), e.kind, dict(e.data))))
    plan = build_plan(target="green", steps=steps, start=router.weights, original_ttl=60, cutover_ttl=None,
                      ttl_margin=5, bake=30)
    result = engine.run(plan)
    return events, result, plan


def plan_dict(plan, **extra) -> dict:
    """The plan as ``bluegreen shift`` journals it with ``start_run``."""
    return {"target": plan.target, "origin_side": "blue", "start": str(plan.start), "ttl": plan.original_ttl,
            "steps": [s.percent for s in plan.steps], "skipped": list(plan.skipped), **extra}


def new_form_events(t0: float = 1_800_000_000.0) -> list[tuple[float, str, dict]]:
    """A completed 0,50,100 shift in the engine's new shape, with keys this reader does not know."""
    def side(samples, error, p95, share):
        return {"samples": samples, "error_ratio": error, "p95_latency_ms": p95, "share_percent": share,
                "future_key": {"nested": True}}

    return [
        (t0, "shift_started", {"target": "green", "steps": [0, 50, 100], "start": {"blue": 100, "green": 0},
                               "skipped": [], "estimated_seconds": 200.0, "plan_version": 2}),
        (t0 + 1, "step_started", {"step": "0%", "index": 0, "weights": {"blue": 100, "green": 0},
                                  "changed": False, "steps_total": 3}),
        (t0 + 2, "hold", {"step": "0%", "step_index": 0, "steps_total": 3, "remaining_seconds": 30.0,
                          "verdict": "inconclusive", "weights": {"blue": 100, "green": 0},
                          "sides": {"blue": side(5, 0.0, 21.0, 100.0), "green": side(0, None, None, 0.0)}}),
        (t0 + 31, "step_passed", {"step": "0%", "weights": {"blue": 100, "green": 0}}),
        (t0 + 31, "step_started", {"step": "50%", "index": 1, "weights": {"blue": 50, "green": 50},
                                   "changed": True}),
        (t0 + 33, "weights_changed", {"step": "50%", "old": {"blue": 100, "green": 0},
                                      "new": {"blue": 50, "green": 50}, "ttl": None, "change_ids": ["C1"],
                                      "submit_seconds": 0.2, "insync_seconds": 1.8}),
        (t0 + 34, "hold", {"step": "50%", "step_index": 1, "steps_total": 3, "remaining_seconds": 80.0,
                           "verdict": "inconclusive",
                           "sides": {"blue": side(4, 0.0, 22.0, 60.0), "green": side(3, 0.0, 70.0, 40.0)}}),
        (t0 + 74, "hold", {"step": "50%", "step_index": 1, "steps_total": 3, "remaining_seconds": 40.0,
                           "verdict": "passing",
                           "sides": {"blue": side(40, 0.0, 24.0, 51.0), "green": side(38, 0.02, 95.0, 49.0)}}),
        (t0 + 114, "step_passed", {"step": "50%", "weights": {"blue": 50, "green": 50}}),
        (t0 + 114, "step_started", {"step": "100%", "index": 2, "weights": {"blue": 0, "green": 100},
                                    "changed": True}),
        (t0 + 116, "weights_changed", {"step": "100%", "old": {"blue": 50, "green": 50},
                                       "new": {"blue": 0, "green": 100}, "ttl": None, "change_ids": ["C2"],
                                       "submit_seconds": 0.2, "insync_seconds": 1.8}),
        (t0 + 120, "hold", {"step": "100%", "step_index": 2, "steps_total": 3, "remaining_seconds": 76.0,
                            "verdict": "passing",
                            "sides": {"blue": side(12, 0.0, 20.0, 3.0), "green": side(60, 0.0, 80.0, 97.0)}}),
        (t0 + 196, "step_passed", {"step": "100%", "weights": {"blue": 0, "green": 100}}),
        (t0 + 196, "shift_completed", {"weights": {"blue": 0, "green": 100}, "target": "green"}),
    ]
