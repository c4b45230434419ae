"""The shift engine: walks a :class:`ShiftPlan` through a :class:`WeightRouter` while probes run, and rolls
back when the gates fail. Time comes from an injected :class:`Clock`; every effect goes through a port, so
this module does no I/O of its own.

The order of acts in one step, and why:
1. Re-read the live weights. If they are not what we last wrote, someone else (``bluegreen rollback``, a
   person, another tool) moved traffic: stop without touching anything (exit 5). Never fight a human.
2. Set the weights, then verify them (INSYNC, then read back). Setting and verifying are separate acts.
3. Hold: clients may cache the answer they had for up to the TTL in force before the change, so wait that
   TTL + margin, then bake. Probes run throughout and the verdict is taken every ``check_interval``.
"""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass, field
from typing import Callable

from bluegreen.core.clock import Clock
from bluegreen.core.events import EventKind as K
from bluegreen.core.plan import ShiftPlan, Step
from bluegreen.core.ports import Event, EventSink, Prober, TtlSpec, WeightRouter
from bluegreen.core.judgement import SideMap, StepWindows, judge_step
from bluegreen.core.verdict import Gates, SampleWindow, Summary, Verdict, VerdictOutcome
from bluegreen.core.weights import LiveState, SideWeights
from bluegreen.errors import BlueGreenError, WeightsChangedExternally, shorten


class Outcome(str, enum.Enum):
    """How a run ended. ``bluegreen.errors.exit_code_for`` maps each to its exit code."""

    COMPLETED = "completed"
    ROLLED_BACK = "rolled_back"
    HELD = "held"  # a gate failed and policy said hold (or both sides fail): weights kept, not advancing
    ROLLBACK_FAILED = "rollback_failed"  # the gates failed and undoing the change failed too
    CONFLICT = "conflict"  # the weights were changed by someone else; we stopped
    INTERRUPTED = "interrupted"  # a signal stopped the run; traffic is on a known weight
    NOTHING_TO_DO = "nothing_to_do"


class OnInterrupt(str, enum.Enum):
    ROLLBACK = "rollback"  # undo: all traffic back on the source side
    HOLD = "hold"  # keep the last verified weights


@dataclass
class StepReport:
    percent: int | None  # None for the TTL-lowering phase
    weights: SideWeights
    changed: bool
    change_ids: list[str] = field(default_factory=list)
    hold_seconds: float = 0.0
    probes: dict[str, Summary] = field(default_factory=dict)
    sides: dict[str, dict] = field(default_factory=dict)  # per side, over every probe that follows DNS
    metric_gates: dict = field(default_factory=dict)  # the metric gates' verdict (metric_gates.as_dict())
    verdict: str = ""
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "percent": self.percent,
            "weights": self.weights.as_dict(),
            "changed": self.changed,
            "change_ids": list(self.change_ids),
            "hold_seconds": round(self.hold_seconds, 3),
            "probes": {name: s.as_dict() for name, s in self.probes.items()},
            "sides": self.sides,
            "metric_gates": self.metric_gates,
            "verdict": self.verdict,
            "warnings": list(self.warnings),
        }


@dataclass
class ShiftResult:
    outcome: Outcome
    final_weights: SideWeights | None
    steps: list[StepReport] = field(default_factory=list)
    reason: str | None = None
    duration: float = 0.0

    def as_dict(self) -> dict:
        final = self.final_weights
        return {
            "outcome": self.outcome.value,
            "reason": self.reason,
            "final_weights": None if final is None else final.as_dict(),
            "duration_seconds": round(self.duration, 3),
            "steps": [s.as_dict() for s in self.steps],
        }


class _GatesFailed(Exception):
    def __init__(self, verdict: Verdict) -> None:
        super().__init__("; ".join(verdict.reasons))
        self.verdict = verdict


class _Conflict(Exception):
    def __init__(self, expected: SideWeights, found: SideWeights | None) -> None:
        found_text = "records that disagree with each other" if found is None else str(found)
        super().__init__(f"live weights are {found_text}, but this run last wrote {expected}")
        self.expected = expected
        self.found = found


class _InterruptRequested(Exception):
    pass


class _Held(Exception):
    """A gate failed and policy says hold (``gates.on_fail: hold``, or both sides failing with
    ``gates.on_both_failing: hold``): keep the weights, stop advancing."""

    def __init__(self, verdict: Verdict) -> None:
        super().__init__("; ".join(verdict.reasons))
        self.verdict = verdict


class _LockLost(Exception):
    """Someone took the migration's lock over (``bluegreen rollback`` does): never write again."""


class ShiftEngine:
    def __init__(
        self,
        router: WeightRouter,
        prober: Prober,
        clock: Clock,
        gates: Gates,
        *,
        on_event: EventSink | None = None,
        check_interval: float = 0.25,
        progress_interval: float = 1.0,
        stop: threading.Event | None = None,
        on_interrupt: OnInterrupt = OnInterrupt.ROLLBACK,
        lock_lost: threading.Event | None = None,
        check_lock: Callable[[], None] | None = None,
        sides: Callable[[LiveState], SideMap] | None = None,
        metric_source=None,
    ) -> None:
        self.router = router
        self.prober = prober
        self.clock = clock
        self.gates = gates
        self.emit: EventSink = on_event or (lambda event: None)
        self.check_interval = check_interval
        self.progress_interval = progress_interval
        self.stop = stop or threading.Event()
        self.on_interrupt = on_interrupt
        self.lock_lost = lock_lost or threading.Event()
        # Asks the lock store whether the lock is still ours (sets ``lock_lost`` when not): called once per
        # check interval, so an on-call `rollback` that takes the lock over stops this run within one.
        self.check_lock = check_lock or (lambda: None)
        # What tells the sides apart (their addresses, their cluster names), from the state read at each step.
        self.sides = sides or (lambda live: SideMap())
        # Reads metric and alarm gates (bluegreen.core.metric_gates.MetricSource); None: no metric gates.
        self.metric_source = metric_source if gates.metrics else None
        self._side_map = SideMap()

    # -- the run -----------------------------------------------------------------------------------
    def run(self, plan: ShiftPlan, *, live: LiveState | None = None) -> ShiftResult:
        """``live``: the state the caller read just now under the lock (the plan was made from it), so the
        first step does not read again; None reads it."""
        started = self.clock.monotonic()
        self._live: LiveState | None = live
        result = ShiftResult(outcome=Outcome.COMPLETED, final_weights=plan.start)
        if not plan.steps:
            result.outcome = Outcome.NOTHING_TO_DO
            result.reason = f"the live weights ({plan.start}) already completed the plan"
            self.emit(Event(K.NOTHING_TO_DO, {"weights": plan.start.as_dict(), "skipped": list(plan.skipped)}))
            return result
        self._last_written = plan.start
        self._unverified_from: SideWeights | None = None
        self.emit(Event(K.SHIFT_STARTED, {
            "target": plan.target, "steps": [s.percent for s in plan.steps], "start": plan.start.as_dict(),
            "skipped": list(plan.skipped), "estimated_seconds": round(plan.estimated_seconds(), 1),
        }))
        self.prober.start()
        try:
            if plan.lowers_ttl:
                self._lower_ttl(plan, result)
            for step in plan.steps:
                self._run_step(plan, step, result)
            self._restore_ttl(plan, result)
            result.final_weights = self._last_written
            self.emit(Event(K.SHIFT_COMPLETED, {"weights": self._last_written.as_dict(), "target": plan.target}))
        except _GatesFailed as failed:
            self._roll_back(plan, result, reason="; ".join(failed.verdict.reasons))
        except _Held as held:
            result.outcome = Outcome.HELD
            result.final_weights = self._last_written
            why = ("both sides are failing, so rolling back would not help" if held.verdict.outcome.value ==
                   "both_failing" else "gates.on_fail: hold")
            result.reason = (f"holding at {self._last_written} ({why}): {'; '.join(held.verdict.reasons)}. "
                             f"Decide: `bluegreen rollback --to {plan.source}`, or `bluegreen shift --to "
                             f"{plan.target} --resume` once it is fixed")
            self.emit(Event(K.HELD, {"weights": self._last_written.as_dict(), "reasons": list(held.verdict.reasons),
                                     "both_failing": held.verdict.outcome.value == "both_failing"}))
        except _Conflict as conflict:
            self._conflict(result, conflict.found, f"stopped without touching the records: {conflict}. Someone "
                           "ran `bluegreen rollback` or edited the records; check `bluegreen status`.",
                           found=None if conflict.found is None else conflict.found.as_dict())
        except _LockLost:
            self._conflict(result, None, "stopped without touching the records: another run took the "
                           "migration's lock over (an on-call `bluegreen rollback`); check `bluegreen status`",
                           found="lock taken over")
        except _InterruptRequested:
            self._interrupted(plan, result)
        except WeightsChangedExternally as error:
            self._conflict(result, None, f"stopped without touching the records: {error}. Check `bluegreen status`.",
                           found=shorten(str(error)))
        except BlueGreenError as error:
            self._roll_back(plan, result, reason=f"error while shifting: {shorten(str(error))}")
        finally:
            self.prober.stop()
            result.duration = self.clock.monotonic() - started
        return result

    def _conflict(self, result: ShiftResult, final: SideWeights | None, reason: str, *, found) -> None:
        result.outcome = Outcome.CONFLICT
        result.final_weights = final
        result.reason = reason
        self.emit(Event(K.CONFLICT, {"expected": self._last_written.as_dict(), "found": found}))

    # -- acts --------------------------------------------------------------------------------------
    def _read(self) -> LiveState:
        """The live state: the one the caller handed over (once), else a fresh read. The side map is
        refreshed from it (alias targets may resolve to new addresses)."""
        if self._live is not None:
            live, self._live = self._live, None
        else:
            live = self.router.read()
        self._side_map = self.sides(live)
        return live

    def _ensure_unchanged(self) -> LiveState:
        live = self._read()
        if live.weights() != self._last_written:
            raise _Conflict(self._last_written, live.weights())
        return live

    def _ensure_own_or_unchanged(self) -> LiveState:
        """Before a rollback: the live weights are what we last wrote, or, when that write was not verified,
        each side still at its old or its new weight. Asynchronous routers (external-dns, ArgoCD) may not
        have synced a change at all, or one cluster's side but not the other's: that is our own change in
        flight, not someone else's."""
        self._live = None  # never trust a state read before the failure
        state = self.router.read()
        if state.weights() == self._last_written:
            return state
        before = self._unverified_from
        if before is not None and state.records and all(
                r.weights.of(side) in (before.of(side), self._last_written.of(side))
                for r in state.records for side in ("blue", "green")):
            return state
        raise _Conflict(self._last_written, state.weights())

    def _apply(self, weights: SideWeights, *, live: LiveState, ttl: TtlSpec, label: str,
               urgent: bool = False) -> list[str]:
        if self.lock_lost.is_set():
            raise _LockLost()
        before = self._last_written
        began = self.clock.monotonic()
        changes = list(self.router.set(weights, live=live, ttl=ttl, urgent=urgent))
        # From here the records may hold the new weights even if verification fails: remember them so a
        # rollback or a later conflict check compares against what we asked for.
        self._last_written = weights
        self._unverified_from = before
        submitted = self.clock.monotonic()
        # The read-back is not kept for the next step: someone may change the weights during the hold, so
        # every step reads them again (as Flagger does every tick).
        self.router.verify(weights, changes, ttl=ttl)
        self._unverified_from = None
        self.emit(Event(K.WEIGHTS_CHANGED, {
            "step": label, "old": before.as_dict(), "new": weights.as_dict(),
            "ttl": ttl if not isinstance(ttl, dict) else "per record", "change_ids": changes,
            "submit_seconds": round(submitted - began, 3),
            "insync_seconds": round(self.clock.monotonic() - submitted, 3),
        }))
        return changes

    def _lower_ttl(self, plan: ShiftPlan, result: ShiftResult) -> None:
        live = self._ensure_unchanged()
        report = StepReport(percent=None, weights=plan.start, changed=True)
        result.steps.append(report)
        report.change_ids = self._apply(plan.start, live=live, ttl=plan.cutover_ttl, label="lower-ttl")
        # Lowering the TTL only helps once the old TTL has expired from every cache.
        report.hold_seconds = float(plan.original_ttl or 0) + plan.ttl_margin
        self._hold(plan, report, "lower-ttl", report.hold_seconds)

    def _run_step(self, plan: ShiftPlan, step: Step, result: ShiftResult) -> None:
        self._check_stop()
        live = self._ensure_unchanged()
        self._check_stop()  # a signal that came during the read: do not start a new change
        changed = step.weights != live.weights()
        report = StepReport(percent=step.percent, weights=step.weights, changed=changed)
        result.steps.append(report)
        self.emit(Event(K.STEP_STARTED, {
            "step": f"{step.percent}%", "index": step.index, "steps_total": plan.steps[-1].index + 1,
            "weights": step.weights.as_dict(), "changed": changed,
        }))
        if changed:
            # ttl=None keeps the TTL the records have now (the lowered one, during a cutover).
            report.change_ids = self._apply(step.weights, live=live, ttl=None, label=f"{step.percent}%")
        report.hold_seconds = plan.hold_after(step, changed=changed)
        self._hold(plan, report, f"{step.percent}%", report.hold_seconds)
        self.emit(Event(K.STEP_PASSED, {
            "step": f"{step.percent}%", "weights": step.weights.as_dict(),
            "probes": {name: s.as_dict() for name, s in report.probes.items()},
        }))

    def _restore_ttl(self, plan: ShiftPlan, result: ShiftResult) -> None:
        if not plan.lowers_ttl:
            return
        live = self._ensure_unchanged()
        self._apply(self._last_written, live=live, ttl=plan.restore_ttl, label="restore-ttl")

    def _hold(self, plan: ShiftPlan, report: StepReport, label: str, seconds: float) -> None:
        """Wait ``seconds`` while probes run; judge each side every check interval, and at the end whether
        traffic moved. A failed verdict raises _GatesFailed (roll back) or _Held (keep the weights)."""
        start = self.clock.monotonic()
        deadline = start + seconds
        # Answers cached before the change may be served until the TTL in force has expired.
        settle_at = start + min(seconds, plan.step_ttl() + plan.ttl_margin)
        max_draws = 1 + int(max(0.0, deadline - settle_at) / max(1, plan.step_ttl())) if plan.step_ttl() else None
        windows = StepWindows(self._side_map, settle_at=settle_at, max_draws=max_draws)
        for name in self.prober.names:
            windows.probes.setdefault(name, SampleWindow())
        share = report.weights.share(plan.target)
        next_progress = start
        seen: set[str] = set()
        metrics = None
        if self.metric_source is not None:
            from bluegreen.core.metric_gates import MetricGateRunner

            # One runner per hold: the counts restart when the traffic split changes.
            metrics = MetricGateRunner(self.gates.metrics, started_at=start, target=plan.target)
        while True:
            self._check_stop()
            for sample in self.prober.drain():
                windows.add(sample)
            now = self.clock.monotonic()
            remaining = deadline - now
            verdict = judge_step(windows, self.gates, target=plan.target, target_share=share,
                                 final=remaining <= 0)
            if metrics is not None:
                verdict = self._with_metrics(verdict, metrics, report, now)
            report.probes = windows.summaries()
            report.sides = windows.per_side()
            report.verdict = verdict.outcome.value
            for note in verdict.observed + verdict.warnings:
                if note not in seen:
                    seen.add(note)
                    self.emit(Event(K.GATES_OBSERVED, {"step": label, "reason": note,
                                                       "observe_only": note in verdict.observed}))
                    if note in verdict.warnings:
                        report.warnings.append(note)
            if verdict.failed:
                both = verdict.outcome.value == "both_failing"
                self.emit(Event(K.BOTH_FAILING if both else K.GATES_FAILED,
                                {"step": label, "reasons": list(verdict.reasons), "sides": report.sides,
                                 "metric_gates": report.metric_gates}))
                policy = self.gates.on_both_failing if both else self.gates.on_fail
                raise (_Held if policy == "hold" else _GatesFailed)(verdict)
            if now >= next_progress or remaining <= 0:
                self.emit(Event(K.HOLD, {
                    "step": label, "remaining_seconds": round(max(remaining, 0.0), 1),
                    "verdict": verdict.outcome.value, "weights": report.weights.as_dict(),
                    "sides": report.sides,
                    "share": {name: s.cluster_share() for name, s in report.probes.items()},
                    "samples": sum(s.samples for s in report.probes.values()),
                }))
                next_progress = now + self.progress_interval
            if remaining <= 0:
                return
            self.clock.sleep(min(self.check_interval, remaining))

    def _with_metrics(self, verdict: Verdict, runner, report: StepReport, now: float) -> Verdict:
        """Measure the metric gates that are due and fold their verdict into the probes'."""
        from dataclasses import replace

        from bluegreen.core.metric_gates import measure_due

        measure_due(runner, self.metric_source, now=now, wall=self.clock.wall())
        gates = runner.verdict()
        report.metric_gates = gates.as_dict()
        if gates.failed and not verdict.failed:
            return replace(verdict, outcome=VerdictOutcome.FAILED, reasons=verdict.reasons + gates.reasons)
        if gates.failed:
            return replace(verdict, reasons=verdict.reasons + gates.reasons)
        return verdict

    def _check_stop(self) -> None:
        self.check_lock()
        if self.lock_lost.is_set():
            raise _LockLost()
        if self.stop.is_set():
            raise _InterruptRequested()

    def _roll_back(self, plan: ShiftPlan, result: ShiftResult, *, reason: str) -> None:
        """Traffic first: one change puts every record back on the source side (and restores the TTL: the
        source is the safe side to cache for long). Then the outcome and the event."""
        target = plan.rollback_weights
        self.emit(Event(K.ROLLBACK_STARTED, {"reason": reason, "to": target.as_dict()}))
        try:
            if self.lock_lost.is_set():
                raise _Conflict(self._last_written, None)
            live = self._ensure_own_or_unchanged()
        except _Conflict as conflict:
            self._conflict(result, conflict.found, f"{reason}; rollback skipped because someone else changed "
                           f"the weights: {conflict}", found=None if conflict.found is None else conflict.found.as_dict())
            return
        except BlueGreenError as error:
            self._rollback_failed(plan, result, reason, error)
            return
        try:
            changes = self._apply(target, live=live, ttl=plan.restore_ttl, label="rollback", urgent=True)
        except _LockLost:
            result.outcome = Outcome.CONFLICT
            result.reason = f"{reason}; rollback skipped because another run took the lock over"
            return
        except BlueGreenError as error:
            self._rollback_failed(plan, result, reason, error)
            return
        result.outcome = Outcome.ROLLED_BACK
        result.final_weights = target
        result.reason = reason
        self.emit(Event(K.ROLLED_BACK, {"reason": reason, "weights": target.as_dict(), "change_ids": changes}))

    def _rollback_failed(self, plan: ShiftPlan, result: ShiftResult, reason: str, error: BlueGreenError) -> None:
        """The rollback itself failed (Route 53 unreachable...): say where traffic is and what to run."""
        at = self._last_written if self._unverified_from is None else None
        where = (f"traffic is at {at}" if at is not None else
                 f"traffic is at {self._unverified_from} or {self._last_written} (the last change was not "
                 "confirmed)")
        result.outcome = Outcome.ROLLBACK_FAILED
        result.final_weights = at
        result.reason = (f"the rollback FAILED after: {reason}. {where}. When Route 53 answers again, run "
                         f"`bluegreen rollback --to {plan.source}`. Cause: {shorten(str(error))}")
        self.emit(Event(K.ROLLBACK_FAILED, {
            "reason": reason, "error": shorten(str(error)), "to": plan.rollback_weights.as_dict(),
            "weights": None if at is None else at.as_dict(),
            "weights_possible": [w.as_dict() for w in (self._unverified_from, self._last_written) if w is not None],
        }))

    def _interrupted(self, plan: ShiftPlan, result: ShiftResult) -> None:
        if self.on_interrupt is OnInterrupt.ROLLBACK:
            self._roll_back(plan, result, reason="interrupted by a signal (shift.on_interrupt: rollback)")
            if result.outcome is Outcome.ROLLED_BACK:
                result.outcome = Outcome.INTERRUPTED
            return
        result.outcome = Outcome.INTERRUPTED
        result.final_weights = self._last_written
        result.reason = f"interrupted by a signal; holding at {self._last_written} (shift.on_interrupt: hold)"
        self.emit(Event(K.INTERRUPTED, {"weights": self._last_written.as_dict(), "policy": "hold"}))
        if plan.lowers_ttl:
            try:
                live = self._ensure_unchanged()
                self._apply(self._last_written, live=live, ttl=plan.restore_ttl, label="restore-ttl", urgent=True)
            except (BlueGreenError, _Conflict, _LockLost):
                pass  # the weights are what matter; a low TTL left behind is safe
