"""Engine events into the run journal, and the text views ``bluegreen history`` prints.

:class:`JournalSink` is an :data:`~bluegreen.core.ports.EventSink`. It keeps what explains a run later
(start and plan, every weight change with old/new and change ids, one probe summary per step, verdicts,
rollback reasons, conflicts, the outcome) and drops the once-a-second ``hold`` progress events: the
``step_passed`` event carries the step's probe summary instead. Values under secret-looking keys, URL
credentials and query strings are masked before anything is stored. A journal write that fails is logged
and never stops the shift (the lock, not the journal, is what keeps runs apart).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping

from bluegreen.core.ports import Event
from bluegreen.core.redact import scrub
from bluegreen.core.state import RunRecord, StateStore, format_wall

DROPPED_KINDS = frozenset({"hold"})


class JournalSink:
    """Writes engine events of one run to a :class:`StateStore`."""

    def __init__(self, store: StateStore, run_id: str, *, on_error: Callable[[Exception], None] | None = None,
                 dropped: Iterable[str] = DROPPED_KINDS) -> None:
        self.store = store
        self.run_id = run_id
        self.on_error = on_error
        self.dropped = frozenset(dropped)
        self.failures = 0

    def __call__(self, event: Event) -> None:
        if event.kind in self.dropped:
            return
        self.record(event.kind, event.data)

    def record(self, kind: str, data: Mapping[str, Any]) -> None:
        """Journal something the CLI knows and the engine does not (lock taken over, preflight, result)."""
        try:
            self.store.append(self.run_id, kind, scrub(dict(data)))
        except Exception as error:  # never let bookkeeping stop or fail a shift
            self.failures += 1
            if self.on_error is not None:
                self.on_error(error)
            else:
                import structlog

                structlog.get_logger("bluegreen.journal").warning(
                    "journal_write_failed", run_id=self.run_id, kind=kind, error=type(error).__name__)


# -- history views -------------------------------------------------------------------------------------
def _short_time(seconds: float | None) -> str:
    return "-" if seconds is None else format_wall(seconds).replace(" UTC", "")


def render_runs(runs: list[RunRecord], *, lock_holder: Any = None) -> str:
    """The table ``bluegreen history`` prints (newest first)."""
    if not runs:
        return "no runs journaled for this migration yet\n"
    rows = [("RUN", "COMMAND", "STARTED (UTC)", "DURATION", "STATUS", "EXIT", "TARGET", "REASON")]
    for run in runs:
        duration = "-" if run.finished_at is None else f"{run.finished_at - run.started_at:.0f}s"
        reason = (run.reason or "")[:60]
        rows.append((run.run_id, run.command, _short_time(run.started_at), duration, run.status(lock_holder),
                     "-" if run.exit_code is None else str(run.exit_code), str(run.plan.get("target", "-")),
                     reason))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])) + "  " + row[-1] for row in rows]
    return "\n".join(line.rstrip() for line in lines) + "\n"


def _describe_event(kind: str, data: Mapping[str, Any]) -> str:
    if kind == "weights_changed":
        changes = ", ".join(data.get("change_ids") or []) or "-"
        return f"{data.get('step')}: {data.get('old')} -> {data.get('new')} (changes {changes})"
    if kind == "step_passed":
        probes = data.get("probes") or {}
        parts = []
        for name, summary in probes.items():
            if isinstance(summary, Mapping):
                keys = ("samples", "success_ratio", "p95_latency_ms", "cluster_share_percent")
                brief = ", ".join(f"{k}={summary[k]}" for k in keys if k in summary)
                parts.append(f"{name}[{brief}]" if brief else name)
        return f"{data.get('step')} passed at {data.get('weights')}" + (f"; {'; '.join(parts)}" if parts else "")
    if kind in ("gates_failed",):
        return f"{data.get('step')}: " + "; ".join(str(r) for r in data.get("reasons") or [])
    if kind in ("rollback_started", "rolled_back"):
        return f"{data.get('reason')} -> {data.get('to') or data.get('weights')}"
    text = ", ".join(f"{k}={v}" for k, v in data.items())
    return text[:200]


def render_run(run: RunRecord, *, lock_holder: Any = None) -> str:
    """One run in full, for ``bluegreen history RUN_ID``."""
    holder = run.holder or {}
    lines = [
        f"run       {run.run_id}",
        f"command   bluegreen {run.command} (migration {run.name})",
        f"by        pid {holder.get('pid', '?')} on {holder.get('host', '?')}",
        f"started   {format_wall(run.started_at)}",
        f"finished  {'-' if run.finished_at is None else format_wall(run.finished_at)}",
        f"status    {run.status(lock_holder)}" + ("" if run.exit_code is None else f" (exit {run.exit_code})"),
    ]
    if run.reason:
        lines.append(f"reason    {run.reason}")
    plan = dict(run.plan)
    if plan:
        lines.append("plan      " + ", ".join(f"{k}={v}" for k, v in plan.items()))
    if run.events:
        lines.append("events")
        for event in run.events:
            lines.append(f"  {_short_time(event.at)[11:]}  {event.kind:<16} {_describe_event(event.kind, event.data)}")
    return "\n".join(lines) + "\n"
