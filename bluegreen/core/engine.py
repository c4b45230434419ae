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
from bluegreen.core.clock import Clock
from bluegreen.core.ports import Event, EventSink, Prober, WeightRouter
from bluegreen.core.verdict import Gates, SampleWindow, Summary, Verdict, judge
from bluegreen.core.weights import ShiftPlan, SideWeights, Step
from bluegreen.errors import BlueGreenError, ExitCode, WeightsChangedExternally, shorten


class Outcome(str, enum.Enum):
    COMPLETED = "completed"
    ROLLED_BACK = "rolled_back"
    CONFLICT = "conflict"  # the weights were changed by someone else; we stopped
    INTERRUPTED = "interrupted"  # a signal stopped the run; traffic is on a known weight
    NOTHING_TO_DO = "nothing_to_do"

    @property
    def exit_code(self) -> ExitCode:
        return {
            Outcome.COMPLETED: ExitCode.OK,
            Outcome.NOTHING_TO_DO: ExitCode.OK,
            Outcome.ROLLED_BACK: ExitCode.ROLLED_BACK,
            Outcome.CONFLICT: ExitCode.CONFLICT,
            Outcome.INTERRUPTED: ExitCode.ERROR,
        }[self]


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
    verdict: str = ""

    def as_dict(self) -> dict:
        return {
            "percent": self.percent,
            "weights": {"blue": self.weights.blue, "green": self.weights.green},
            "changed": self.changed,
            "change_ids": list(self.change_ids),
            "hold_seconds": round(self.hold_seconds, 3),
            "probes": {name: s.as_dict() for name, s in self.probes.items()},
            "verdict": self.verdict,
        }


@dataclass
class ShiftResult:
    outcome: Outcome
    final_weights: SideWeights | None
    steps: list[StepReport] = field(default_factory=list)
    reason: str | None = None
    duration: float = 0.0

    @property
    def exit_code(self) -> ExitCode:
        return self.outcome.exit_code

    def as_dict(self) -> dict:
        final = self.final_weights
        return {
            "outcome": self.outcome.value,
            "exit_code": int(self.exit_code),
            "reason": self.reason,
            "final_weights": None if final is None else {"blue": final.blue, "green": final.green},
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

    # -- the run -----------------------------------------------------------------------------------
    def run(self, plan: ShiftPlan, *, start_is_fresh: bool = False) -> ShiftResult:
        """``start_is_fresh``: the caller read ``plan.start`` from the live records just now (under the lock),
        so the first step need not read them again; that read would cost a Route 53 call within the same
        second as the pre-flight ones, and the rate pacing would make the first change wait."""
        started = self.clock.monotonic()
        self._fresh_read = start_is_fresh
        result = ShiftResult(outcome=Outcome.COMPLETED, final_weights=plan.start)
        if not plan.steps:
            result.outcome = Outcome.NOTHING_TO_DO
            result.reason = f"the live weights ({plan.start}) already completed the plan"
            self.emit(Event("nothing_to_do", {"weights": str(plan.start), "skipped": list(plan.skipped)}))
            return result
        self._last_written = plan.start
        self._unverified_from: SideWeights | None = None
        self._ttl_in_force = plan.original_ttl
        self.emit(Event("shift_started", {
            "target": plan.target, "steps": [s.percent for s in plan.steps], "start": str(plan.start),
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
            self.emit(Event("shift_completed", {"weights": str(self._last_written), "target": plan.target}))
        except _GatesFailed as failed:
            self._roll_back(plan, result, reason="; ".join(failed.verdict.reasons))
        except _Conflict as conflict:
            result.outcome = Outcome.CONFLICT
            result.final_weights = conflict.found
            result.reason = (
                f"stopped without touching the records: {conflict}. Someone ran `bluegreen rollback` or "
                "edited the records; check `bluegreen status`."
            )
            self.emit(Event("conflict", {"expected": str(conflict.expected), "found": str(conflict.found)}))
        except _LockLost:
            result.outcome = Outcome.CONFLICT
            result.final_weights = None
            result.reason = ("stopped without touching the records: another run took the migration's lock over "
                             "(an on-call `bluegreen rollback`); check `bluegreen status`")
            self.emit(Event("conflict", {"expected": str(self._last_written), "found": "lock taken over"}))
        except _InterruptRequested:
            self._interrupted(plan, result)
        except WeightsChangedExternally as error:
            result.outcome = Outcome.CONFLICT
            result.final_weights = None
            result.reason = f"stopped without touching the records: {error}. Check `bluegreen status`."
            self.emit(Event("conflict", {"expected": str(self._last_written), "found": shorten(str(error))}))
        except BlueGreenError as error:
            self._roll_back(plan, result, reason=f"error while shifting: {shorten(str(error))}")
        finally:
            self.prober.stop()
            result.duration = self.clock.monotonic() - started
        return result

    # -- acts --------------------------------------------------------------------------------------
    def _ensure_unchanged(self) -> SideWeights:
        if self._fresh_read:
            self._fresh_read = False
            return self._last_written
        live = self.router.read().weights()
        if live != self._last_written:
            raise _Conflict(self._last_written, live)
        return live

    def _ensure_own_or_unchanged(self) -> None:
        """Before a rollback: the live weights are what we last wrote, or, when that write was not verified,
        each side still at its old or its new weight. Asynchronous routers (external-dns, ArgoCD) may not
        have synced a change at all, or one cluster's side but not the other's: that is our own change in
        flight, not someone else's."""
        state = self.router.read()
        if state.weights() == self._last_written:
            return
        before = self._unverified_from
        if before is not None and state.records and all(
                r.weights.of(side) in (before.of(side), self._last_written.of(side))
                for r in state.records for side in ("blue", "green")):
            return
        raise _Conflict(self._last_written, state.weights())

    def _apply(self, weights: SideWeights, *, ttl: int | None, label: str) -> list[str]:
        if self.lock_lost.is_set():
            raise _LockLost()
        before = self._last_written
        began = self.clock.monotonic()
        changes = list(self.router.set(weights, ttl=ttl))
        # From here the records may hold the new weights even if verification fails: remember them so a
        # rollback or a later conflict check compares against what we asked for.
        self._last_written = weights
        self._unverified_from = before
        submitted = self.clock.monotonic()
        self.router.verify(weights, changes, ttl=ttl)
        self._unverified_from = None
        self.emit(Event("weights_changed", {
            "step": label, "old": str(before), "new": str(weights), "ttl": ttl, "change_ids": changes,
            "submit_seconds": round(submitted - began, 3),
            "insync_seconds": round(self.clock.monotonic() - submitted, 3),
        }))
        return changes

    def _lower_ttl(self, plan: ShiftPlan, result: ShiftResult) -> None:
        self._ensure_unchanged()
        report = StepReport(percent=None, weights=plan.start, changed=True)
        result.steps.append(report)
        report.change_ids = self._apply(plan.start, ttl=plan.cutover_ttl, label="lower-ttl")
        old_ttl = self._ttl_in_force
        self._ttl_in_force = plan.cutover_ttl
        # Lowering the TTL only helps once the old TTL has expired from every cache.
        report.hold_seconds = float(old_ttl or 0) + plan.ttl_margin
        self._hold(report, "lower-ttl", report.hold_seconds)

    def _run_step(self, plan: ShiftPlan, step: Step, result: ShiftResult) -> None:
        self._check_stop()
        live = self._ensure_unchanged()
        self._check_stop()  # a signal that came during the read: do not start a new change
        changed = step.weights != live
        report = StepReport(percent=step.percent, weights=step.weights, changed=changed)
        result.steps.append(report)
        self.emit(Event("step_started", {
            "step": f"{step.percent}%", "index": step.index, "weights": str(step.weights), "changed": changed,
        }))
        if changed:
            # ttl=None keeps the TTL the records have now (the lowered one, during a cutover).
            report.change_ids = self._apply(step.weights, ttl=None, label=f"{step.percent}%")
        report.hold_seconds = plan.hold_after(step, changed=changed)
        self._hold(report, f"{step.percent}%", report.hold_seconds)
        self.emit(Event("step_passed", {
            "step": f"{step.percent}%", "weights": str(step.weights),
            "probes": {name: s.as_dict() for name, s in report.probes.items()},
        }))

    def _restore_ttl(self, plan: ShiftPlan, result: ShiftResult) -> None:
        if not plan.lowers_ttl:
            return
        self._ensure_unchanged()
        self._apply(self._last_written, ttl=plan.original_ttl, label="restore-ttl")
        self._ttl_in_force = plan.original_ttl

    def _hold(self, report: StepReport, label: str, seconds: float) -> None:
        """Wait ``seconds`` while probes run; raise _GatesFailed as soon as the verdict fails."""
        windows = {name: SampleWindow() for name in self.prober.names}
        deadline = self.clock.monotonic() + seconds
        next_progress = self.clock.monotonic()
        while True:
            self._check_stop()
            for sample in self.prober.drain():
                windows.setdefault(sample.probe, SampleWindow()).add(sample)
            report.probes = {name: w.summary() for name, w in windows.items()}
            verdict = judge(report.probes, self.gates)
            report.verdict = verdict.outcome.value
            if verdict.failed:
                self.emit(Event("gates_failed", {"step": label, "reasons": list(verdict.reasons)}))
                raise _GatesFailed(verdict)
            now = self.clock.monotonic()
            remaining = deadline - now
            if now >= next_progress or remaining <= 0:
                self.emit(Event("hold", {
                    "step": label, "remaining_seconds": round(max(remaining, 0.0), 1),
                    "verdict": verdict.outcome.value,
                    "share": {name: s.cluster_share() for name, s in report.probes.items()},
                    "samples": sum(s.samples for s in report.probes.values()),
                }))
                next_progress = now + self.progress_interval
            if remaining <= 0:
                return
            self.clock.sleep(min(self.check_interval, remaining))

    def _check_stop(self) -> None:
        if self.lock_lost.is_set():
            raise _LockLost()
        if self.stop.is_set():
            raise _InterruptRequested()

    def _roll_back(self, plan: ShiftPlan, result: ShiftResult, *, reason: str) -> None:
        target = plan.rollback_weights
        self.emit(Event("rollback_started", {"reason": reason, "to": str(target)}))
        try:
            if self.lock_lost.is_set():
                raise _Conflict(self._last_written, None)
            self._ensure_own_or_unchanged()
        except _Conflict as conflict:
            result.outcome = Outcome.CONFLICT
            result.final_weights = conflict.found
            result.reason = f"{reason}; rollback skipped because someone else changed the weights: {conflict}"
            self.emit(Event("conflict", {"expected": str(conflict.expected), "found": str(conflict.found)}))
            return
        # One change puts traffic back and restores the TTL: blue is the safe side to cache for long.
        ttl = plan.original_ttl if plan.lowers_ttl else None
        try:
            changes = self._apply(target, ttl=ttl, label="rollback")
        except _LockLost:
            result.outcome = Outcome.CONFLICT
            result.reason = f"{reason}; rollback skipped because another run took the lock over"
            return
        except BlueGreenError as error:
            raise BlueGreenError(
                f"rollback failed after: {reason}. Traffic may still be at {self._last_written}: "
                f"run `bluegreen rollback --to {plan.source}` now. Cause: {shorten(str(error))}"
            ) from error
        result.outcome = Outcome.ROLLED_BACK
        result.final_weights = target
        result.reason = reason
        self.emit(Event("rolled_back", {"reason": reason, "weights": str(target), "change_ids": changes}))

    def _interrupted(self, plan: ShiftPlan, result: ShiftResult) -> None:
        if self.on_interrupt is OnInterrupt.ROLLBACK:
            self._roll_back(plan, result, reason="interrupted by a signal (shift.on_interrupt: rollback)")
            if result.outcome is Outcome.ROLLED_BACK:
                result.outcome = Outcome.INTERRUPTED
            return
        result.outcome = Outcome.INTERRUPTED
        result.final_weights = self._last_written
        result.reason = f"interrupted by a signal; holding at {self._last_written} (shift.on_interrupt: hold)"
        self.emit(Event("interrupted", {"weights": str(self._last_written), "policy": "hold"}))
        if plan.lowers_ttl:
            try:
                self._ensure_unchanged()
                self._apply(self._last_written, ttl=plan.original_ttl, label="restore-ttl")
            except (BlueGreenError, _Conflict, _LockLost):
                pass  # the weights are what matter; a low TTL left behind is safe

