"""The live panel a shift (and ``bluegreen watch``) draws on a terminal.

It is an :data:`~bluegreen.core.ports.EventSink`: give it every engine event and it folds them into a
:class:`~bluegreen.core.timeline.RunView` and redraws in place: the step (k/N), each side's weight next to
the share of answers it really gives, every gate with its value and threshold, the time left in the step
and in the run, and at the end the outcome in colour.

Why rich: it redraws in place (``rich.live.Live`` moves the cursor back over its own last frame, so no
stale characters are left, whatever the line lengths), lays tables out to the terminal's width (80
columns included) instead of letting the terminal wrap them, and honours ``NO_COLOR`` and ``FORCE_COLOR``
(https://no-color.org, https://force-color.org) itself.

Modes: ``live`` redraws in place; ``plain`` prints one line per step, verdict and outcome (no cursor
movement: for pipes and CI logs that want a readable trace); ``off`` only keeps the view up to date.
``auto`` (the default) is ``live`` when the stream is a terminal (``isatty``, and ``TERM`` not ``dumb``;
``TTY_COMPATIBLE=1`` says so too) and ``off`` otherwise, where the JSON logs already tell the story.
``FORCE_COLOR`` forces colour, not cursor movement: a CI log with FORCE_COLOR set gets no redraw codes.

While the panel is live, anything else written to the same terminal would be drawn over: send log lines
through :attr:`LivePanel.log_stream`, which prints them above the panel.
"""

from __future__ import annotations

import os
import threading
from typing import IO, Any, Mapping

from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from bluegreen.core.clock import Clock, SystemClock
from bluegreen.core.ports import Event
from bluegreen.core.timeline import AGGREGATE, SIDES, GateCheck, RunView, gate_checks

MODES = ("auto", "live", "plain", "off")

OUTCOME_STYLES = {
    "completed": ("COMPLETED", "bold green"),
    "nothing_to_do": ("NOTHING TO DO", "bold green"),
    "rolled_back": ("ROLLED BACK", "bold red"),
    "failed": ("FAILED", "bold red"),
    "conflict": ("STOPPED: CONFLICT", "bold yellow"),
    "interrupted": ("INTERRUPTED", "bold yellow"),
}
SIDE_STYLES = {"blue": "bold blue", "green": "bold green"}


# -- formatting ----------------------------------------------------------------------------------------
def format_seconds(seconds: float | None) -> str:
    """``1h02m``, ``4m10s``, ``45s``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    total = int(round(max(0.0, seconds)))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def _percent(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}%"


def _gate_value(check: GateCheck) -> str:
    if check.value is None:
        return "-"
    if check.name == "success ratio":
        return f"{check.value:.3f}"
    if check.unit == "ms":
        return f"{check.value:.0f} ms"
    return f"{check.value:.0f}"


def _gate_threshold(check: GateCheck, unicode: bool) -> str:
    op = ("≥" if check.at_least else "≤") if unicode else (">=" if check.at_least else "<=")
    if check.name == "success ratio":
        return f"{op} {check.threshold:g}"
    if check.unit == "ms":
        return f"{op} {check.threshold:.0f} ms"
    return f"{op} {check.threshold:.0f}"


def _phase(view: RunView) -> str:
    if view.finished:
        return "finished"
    if view.rollback_at is not None:
        return "rolling back"
    current = view.current
    if current is None:
        return "starting"
    if current.label == "lower-ttl":
        return "lowering the TTL"
    if view.remaining_seconds is None:
        return "changing weights" if current.changed else "starting the step"
    return "holding"


# -- the picture ---------------------------------------------------------------------------------------
def render_view(view: RunView, now: float, *, gates: Any = None, unicode: bool = True,
                title: str | None = None) -> RenderableType:
    """The panel for ``view`` at wall time ``now``. Pure apart from building rich objects."""
    parts: list[RenderableType] = []
    heading = Text(no_wrap=True, overflow="ellipsis")
    heading.append(title or f"bluegreen {view.command or 'shift'}", style="bold")
    if view.target:
        heading.append(f" {'→' if unicode else '->'} ")
        heading.append(view.target, style=SIDE_STYLES.get(view.target, ""))
    if view.migration:
        heading.append(f"  migration {view.migration}", style="dim")
    if view.run_id:
        heading.append(f"  run {view.run_id}", style="dim")
    parts.append(heading)

    where = Text(no_wrap=True, overflow="ellipsis")
    position = view.position()
    current = view.current
    step = next((s for s in reversed(view.spans) if not s.is_phase), None)  # the rollback is not a step
    if position is not None:
        where.append(f"step {position[0]}/{position[1]}", style="bold")
        if step is not None and (current is step or current is not None and current.label == "rollback"):
            where.append(f"  {step.percent}% on {view.target or 'target'}")
    elif current is not None:
        where.append(current.label, style="bold")
    else:
        where.append("waiting for the first step", style="dim")
    where.append(f"  {_phase(view)}")
    if view.verdict and not view.finished:
        style = {"passing": "green", "failed": "red"}.get(view.verdict, "yellow")
        where.append("  verdict ")
        where.append(view.verdict, style=style)
    parts.append(where)

    parts.append(_sides_table(view))
    checks = gate_checks(view, gates)
    if checks and not (view.finished and all(c.value is None for c in checks)):
        parts.append(_gates_table(checks, unicode))

    timing = Text(no_wrap=True, overflow="ellipsis")
    if view.finished:
        timing.append(f"took {format_seconds(view.elapsed(now))}")
    else:
        run_left = view.run_time_left(now)
        timing.append(f"step: {format_seconds(view.step_time_left(now))} left")
        timing.append(f"  run: {'~' if run_left else ''}{format_seconds(run_left)} left")
        timing.append(f"  elapsed {format_seconds(view.elapsed(now))}", style="dim")
    parts.append(timing)

    if view.rollback_at is not None and not view.finished:
        parts.append(Text(f"rolling back: {view.rollback_reason or ''}", style="bold red"))
    if view.finished:
        parts.append(outcome_banner(view))
    return Group(*parts)


def _sides_table(view: RunView) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 2, 0, 0))
    table.add_column("side")
    table.add_column("weight", justify="right")
    table.add_column("observed", justify="right")
    table.add_column("errors", justify="right")
    table.add_column("p95", justify="right")
    weights = view.current_weights or {}
    total = sum(weights.values()) if weights else 0
    for side in SIDES:
        metrics = view.latest.get(side)
        observed = _observed_share(view, side)
        weight = (weights[side] * 100.0 / total if total else 50.0) if weights else None
        errors = None if metrics is None or metrics.error_ratio is None else metrics.error_ratio * 100
        p95 = None if metrics is None or metrics.p95_ms is None else f"{metrics.p95_ms:.0f} ms"
        table.add_row(Text(side, style=SIDE_STYLES[side]), _percent(weight), _percent(observed, 1),
                      _percent(errors, 1), p95 or "-")
    everything = view.latest.get(AGGREGATE)
    if (everything is not None and not any(view.latest.get(s) for s in SIDES)
            and (everything.error_ratio is not None or everything.p95_ms is not None)):
        errors = None if everything.error_ratio is None else everything.error_ratio * 100
        p95 = "-" if everything.p95_ms is None else f"{everything.p95_ms:.0f} ms"
        table.add_row(Text("all probes", style="dim"), "", "", _percent(errors, 1), p95)
    return table


def _observed_share(view: RunView, side: str) -> float | None:
    """The last share of answers seen from ``side`` in the current step (old-form events have shares but
    no per-side metrics)."""
    series = view.share.get(side)
    current = view.current
    if not series or current is None:
        return None
    at, value = series[-1]
    return value if at >= current.started_at else None


def _gates_table(checks: list[GateCheck], unicode: bool) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 2, 0, 0))
    table.add_column("gate")
    table.add_column("value", justify="right")
    table.add_column("threshold", justify="right")
    table.add_column("")
    for check in checks:
        state = check.state
        if state == "ok":
            mark = Text("✓" if unicode else "ok", style="green")
        elif state == "failed":
            mark = Text("✗" if unicode else "FAIL", style="bold red")
        else:  # unknown, or waiting for enough samples: the verdict is inconclusive, not failed
            mark = Text("…" if unicode else "...", style="yellow" if state == "waiting" else "dim")
        table.add_row(check.name, _gate_value(check), _gate_threshold(check, unicode), mark)
    return table


def outcome_banner(view: RunView) -> Panel:
    label, style = OUTCOME_STYLES.get(view.outcome or "", ((view.outcome or "finished").upper(), "bold"))
    text = Text(label, style=style)
    weights = view.current_weights
    if weights:
        text.append(f"  blue {weights['blue']} / green {weights['green']}")
    if view.exit_code is not None:
        text.append(f"  exit {view.exit_code}", style="dim")
    if view.reason:
        text.append("\n")
        text.append(view.reason)
    return Panel(text, border_style=style.replace("bold ", ""), box=box.HEAVY if style.endswith("red") else box.ROUNDED,
                 expand=False)


# -- the sink ------------------------------------------------------------------------------------------
def _stream_is_terminal(stream: Any, environ: Mapping[str, str]) -> bool:
    if environ.get("TTY_COMPATIBLE") == "1":
        return True
    if environ.get("TTY_COMPATIBLE") == "0" or environ.get("TERM", "").lower() in ("dumb", "unknown"):
        return False
    try:
        return bool(getattr(stream, "isatty", lambda: False)())
    except ValueError:  # closed
        return False


class LivePanel:
    """An EventSink that draws a run. Use as a context manager (or call :meth:`close`) so the last frame,
    with the outcome, stays on screen and the cursor ends below it.

    ``console``: a rich Console to draw on (tests pass one with a fixed width and ``record=True``); else
    one is made on ``stream`` (default: stderr), which honours NO_COLOR and FORCE_COLOR.
    ``gates``: a :class:`~bluegreen.core.verdict.Gates` (or a mapping with its keys) for the gate rows.
    ``view``: an existing view to continue (``watch`` starts from the journal so far).
    """

    def __init__(self, stream: IO[str] | None = None, *, console: Console | None = None, mode: str = "auto",
                 clock: Clock | None = None, gates: Any = None, view: RunView | None = None,
                 title: str | None = None, environ: Mapping[str, str] | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"panel mode must be one of {', '.join(MODES)}, got {mode!r}")
        environ = os.environ if environ is None else environ
        self.console = console or Console(file=stream, stderr=stream is None, highlight=False, soft_wrap=False)
        if mode == "auto":
            mode = "live" if _stream_is_terminal(self.console.file, environ) else "off"
        self.mode = mode
        self.clock = clock or SystemClock()
        self.gates = gates
        self.view = view or RunView(keep_history=False)  # memory stays bounded however long the run
        self.title = title
        self.unicode = self.console.encoding.lower().startswith("utf")
        self._live: Live | None = None
        self._lock = threading.RLock()
        self.log_stream = _AbovePanel(self)

    # -- EventSink -------------------------------------------------------------------------------------
    def __call__(self, event: Event) -> None:
        self.feed(self.clock.wall(), event.kind, event.data)

    def feed(self, at: float, kind: str, data: Mapping[str, Any]) -> None:
        """One event at wall time ``at`` (``watch`` feeds journal events with their own times)."""
        with self._lock:
            self.view.apply(at, kind, data)
            if self.mode == "plain":
                self._plain_line(kind, data)
            elif self.mode == "live":
                self.refresh()

    def render(self, now: float | None = None) -> RenderableType:
        return render_view(self.view, self.clock.wall() if now is None else now, gates=self.gates,
                           unicode=self.unicode, title=self.title)

    def refresh(self) -> None:
        """Redraw now (``watch`` calls it between journal polls so the countdown moves)."""
        if self.mode != "live":
            return
        with self._lock:
            if self._live is None:
                self._live = Live(self.render(), console=self.console, auto_refresh=False, transient=False,
                                  redirect_stdout=False, redirect_stderr=False)
                self._live.start()
            self._live.update(self.render(), refresh=True)

    def close(self) -> None:
        """Draw the last frame and leave it on screen; in plain mode print the outcome line."""
        with self._lock:
            if self._live is not None:
                self._live.update(self.render(), refresh=True)
                self._live.stop()
                self._live = None

    def __enter__(self) -> "LivePanel":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plain lines -----------------------------------------------------------------------------------
    def _plain_line(self, kind: str, data: Mapping[str, Any]) -> None:
        view = self.view
        position = view.position()
        where = f"step {position[0]}/{position[1]} " if position else ""
        if kind == "step_started":
            self.console.print(Text(f"{where}{data.get('step')}: started", style="bold"))
        elif kind == "step_passed":
            self.console.print(Text(f"{where}{data.get('step')}: passed", style="green"))
        elif kind == "gates_failed":
            reasons = "; ".join(str(r) for r in data.get("reasons") or [])
            self.console.print(Text(f"{where}{data.get('step')}: gates failed: {reasons}", style="bold red"))
        elif kind == "rollback_started":
            self.console.print(Text(f"rolling back: {data.get('reason')}", style="red"))
        if view.finished and kind in ("shift_completed", "rolled_back", "conflict", "interrupted",
                                      "nothing_to_do", "run_failed"):
            self.console.print(outcome_banner(view))


class _AbovePanel:
    """A text stream for log lines while the panel is live: each complete line is printed above it."""

    def __init__(self, panel: LivePanel) -> None:
        self.panel = panel
        self._buffer = ""

    def write(self, text: str) -> int:
        self._buffer += text
        while "\n" in self._buffer:
            line, self._buffer = self._buffer.split("\n", 1)
            with self.panel._lock:
                self.panel.console.print(Text.from_ansi(line), soft_wrap=True)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return self.panel.mode == "live"


__all__ = ("LivePanel", "MODES", "format_seconds", "outcome_banner", "render_view")
