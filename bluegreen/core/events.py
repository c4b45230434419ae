"""Every event bluegreen logs, journals and notifies, in one enum (kopf's ``Reason``, Argo's condition
reasons): a name used anywhere else is a typo the type checker and the config loader catch. Pure."""

from __future__ import annotations

import enum


class EventKind(str, enum.Enum):
    # The shift engine
    SHIFT_STARTED = "shift_started"
    STEP_STARTED = "step_started"
    WEIGHTS_CHANGED = "weights_changed"
    HOLD = "hold"  # progress during a hold, at a bounded rate: never notified
    STEP_PASSED = "step_passed"
    GATES_FAILED = "gates_failed"
    GATES_OBSERVED = "gates_observed"  # an observe-only gate would have failed: logged and journaled only
    BOTH_FAILING = "both_failing"  # blue fails as much as green: rolling back would not help
    HELD = "held"  # the run stopped advancing and kept the weights (gates.on_fail / on_both_failing: hold)
    ROLLBACK_STARTED = "rollback_started"
    ROLLED_BACK = "rolled_back"
    ROLLBACK_FAILED = "rollback_failed"
    CONFLICT = "conflict"
    INTERRUPTED = "interrupted"
    SHIFT_COMPLETED = "shift_completed"
    NOTHING_TO_DO = "nothing_to_do"
    # The run around the engine (runs.py)
    RUN_FAILED = "run_failed"
    LOCK_LOST = "lock_lost"

    def __str__(self) -> str:
        return self.value


# Events that mean something went wrong or needs a human: logged as warnings.
WARNING_EVENTS = frozenset(kind.value for kind in (
    EventKind.GATES_FAILED, EventKind.BOTH_FAILING, EventKind.HELD, EventKind.ROLLBACK_STARTED,
    EventKind.ROLLED_BACK, EventKind.ROLLBACK_FAILED, EventKind.CONFLICT, EventKind.INTERRUPTED,
    EventKind.RUN_FAILED, EventKind.LOCK_LOST))
# What notifications send when `notifications.events` is not set.
DEFAULT_NOTIFIED = (EventKind.SHIFT_STARTED, EventKind.STEP_PASSED, EventKind.ROLLBACK_STARTED,
                    EventKind.ROLLED_BACK, EventKind.ROLLBACK_FAILED, EventKind.SHIFT_COMPLETED,
                    EventKind.BOTH_FAILING, EventKind.HELD, EventKind.CONFLICT, EventKind.INTERRUPTED,
                    EventKind.RUN_FAILED, EventKind.LOCK_LOST)
NEVER_NOTIFIED = frozenset({EventKind.HOLD})
