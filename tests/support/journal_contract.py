"""What every state store's journal read must do, checked the same way on SQLite and DynamoDB."""

from __future__ import annotations

from bluegreen.core.clock import FakeClock
from bluegreen.core.state import Holder, StateStore


def check_events_since(store: StateStore, clock: FakeClock) -> str:
    """``events_since`` returns the run's summary with only the events after ``seq``, in order, and sees the
    outcome as soon as it is written. Returns the run id (finished, 12 events) for backend-specific checks."""
    run_id = store.start_run("burnham", "shift", {"target": "green"}, holder=Holder.current(clock, command="shift"))
    assert store.events_since(run_id, 0).events == ()
    for i in range(1, 11):
        clock.advance(1)
        store.append(run_id, "hold", {"i": i})
    everything = store.events_since(run_id, 0)
    assert [e.seq for e in everything.events] == list(range(1, 11)) and everything.events == store.get_run(run_id).events
    newer = store.events_since(run_id, 7)
    assert [(e.seq, e.data["i"]) for e in newer.events] == [(8, 8), (9, 9), (10, 10)]
    assert newer.run_id == run_id and newer.plan == {"target": "green"} and not newer.finished
    assert store.events_since(run_id, 10).events == ()
    store.append(run_id, "weights_changed", {"i": 11})
    store.append(run_id, "shift_completed", {"i": 12})
    store.finish(run_id, "completed", 0)
    last = store.events_since(run_id, 10)
    assert [e.kind for e in last.events] == ["weights_changed", "shift_completed"]
    assert (last.outcome, last.exit_code, last.finished) == ("completed", 0, True)
    assert store.events_since(run_id, 12).events == () and store.events_since(run_id, 12).finished
    assert store.events_since("missing", 0) is None
    return run_id
