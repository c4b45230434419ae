"""A run's events folded into one view of it: the plan, where the run stands, and every series worth a chart.
Pure: no external calls or any I/O; time is always passed in.

The same :class:`RunView` feeds the live panel (``bluegreen.output.panel``), the HTML/PNG report
(``bluegreen.output.report``) and ``bluegreen watch``, so all three say the same thing about a run.

Events come as ``(wall_time, kind, data)``: from the engine (the caller stamps them with its clock) or from
the journal (:class:`~bluegreen.core.state.JournalEvent` has ``at``, ``kind`` and ``data``). The parsers
accept both shapes the engine has used:

* weights as text (``"blue=90 green=10"``) or as an object (``{"blue": 90, "green": 10}``);
* ``hold`` events with per-probe shares only (``share: {probe: {cluster: percent}}``, clusters told apart
  by a ``cluster_sides`` map or by the word ``blue``/``green`` in their name), or with per-side data
  (``sides: {blue: {samples, error_ratio, p95_latency_ms, share_percent}, ...}``, plus ``step_index`` and
  ``steps_total``);

and ignore keys they do not know, so an engine that says more does not break an older reader.

Series are lists of ``(wall_time, value)`` per side (``blue``, ``green``). Weights are kept as the percent
of answers they ask Route 53 for (weight / sum of weights), so they compare directly with the observed share. Error ratio and p95 latency are
per side when the events carry per-side data; from per-probe summaries (``step_passed``) they go under the
key ``all`` (every probe together: the error ratio over all samples, the worst p95).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

SIDES = ("blue", "green")
AGGREGATE = "all"  # series key for values measured over every probe, not per side

_WEIGHT_TEXT = re.compile(r"\b(blue|green)\s*[=:]\s*(\d+)")
_PERCENT_LABEL = re.compile(r"^\s*(\d{1,3})\s*%\s*$")

# Outcome of a run, by the event that ends it.
_ENDING_KINDS = {
    "shift_completed": "completed",
    "rolled_back": "rolled_back",
    "conflict": "conflict",
    "interrupted": "interrupted",
    "nothing_to_do": "nothing_to_do",
    "run_failed": "failed",
}
# Phases that are not steps of the plan (no k/N, not used to estimate the next steps' holds).
_PHASES = ("lower-ttl", "restore-ttl", "rollback")

Point = tuple[float, float]


# -- tolerant parsers ----------------------------------------------------------------------------------
def parse_weights(value: Any) -> dict[str, int] | None:
    """``{"blue": 90, "green": 10}`` from the text form, the object form or a SideWeights; None otherwise
    (e.g. ``"None"`` or ``"lock taken over"`` in a conflict event)."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        found = {side: _int(value.get(side)) for side in SIDES}
    elif isinstance(value, str):
        found = {side: None for side in SIDES}
        for side, number in _WEIGHT_TEXT.findall(value):
            found[side] = int(number)
    elif hasattr(value, "blue") and hasattr(value, "green"):
        found = {side: _int(getattr(value, side)) for side in SIDES}
    else:
        return None
    if any(v is None for v in found.values()):
        return None
    return {side: int(found[side]) for side in SIDES}  # type: ignore[arg-type]


def percent_of(weights: Mapping[str, int], side: str) -> float:
    """The share of answers Route 53 gives ``side``: weight / sum; an all-zero group answers 50/50."""
    total = sum(weights.get(s, 0) for s in SIDES)
    return 50.0 if total == 0 else weights.get(side, 0) / total * 100.0


def side_of_cluster(cluster: str, cluster_sides: Mapping[str, str] | None = None) -> str | None:
    """Which side a cluster name (as probes report it) belongs to: the explicit map first, then the name
    itself (``blue``, ``eks-blueprint-green``). None when the name says neither or both."""
    if cluster_sides and cluster in cluster_sides:
        side = cluster_sides[cluster]
        return side if side in SIDES else None
    tokens = set(re.split(r"[^a-z0-9]+", str(cluster).lower()))
    hits = [side for side in SIDES if side in tokens]
    return hits[0] if len(hits) == 1 else None


def step_percent(label: Any) -> int | None:
    """``"50%"`` -> 50; phases such as ``"lower-ttl"`` -> None."""
    if isinstance(label, bool):
        return None
    if isinstance(label, int):
        return label
    match = _PERCENT_LABEL.match(str(label)) if label is not None else None
    return int(match.group(1)) if match else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return None


def _first(data: Mapping[str, Any], *keys: str) -> float | None:
    for key in keys:
        if key in data:
            value = _num(data[key])
            if value is not None:
                return value
    return None


# -- what the view holds -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Metrics:
    """What the probes measured, for one side or for every probe together. None: not measured."""

    samples: float | None = None
    error_ratio: float | None = None  # 0..1
    p95_ms: float | None = None
    share_percent: float | None = None  # observed share of answers from this side
    consecutive_failures: float | None = None

    @classmethod
    def from_side(cls, raw: Mapping[str, Any]) -> "Metrics":
        samples = _first(raw, "samples", "count")
        error = _first(raw, "error_ratio", "errors_ratio")
        if error is None:
            success = _first(raw, "success_ratio")
            if success is not None:
                error = 1.0 - success
        if error is None:
            errors = _first(raw, "errors", "failures")
            if errors is not None and samples:
                error = errors / samples
        return cls(
            samples=samples,
            error_ratio=error,
            p95_ms=_first(raw, "p95_latency_ms", "p95_ms", "latency_p95_ms"),
            share_percent=_first(raw, "share_percent", "observed_share_percent", "observed_percent", "share"),
            consecutive_failures=_first(raw, "consecutive_failures"),
        )


@dataclass
class StepSpan:
    """One step (or phase) of the run, from its start to its verdict."""

    label: str  # "50%", or a phase: "lower-ttl", "rollback"
    started_at: float
    percent: int | None = None
    index: int | None = None  # 0-based position in the whole plan (skipped steps count)
    weights: dict[str, int] | None = None
    changed: bool | None = None
    ended_at: float | None = None
    verdict: str | None = None  # "passed", "failed", "stopped"; "done" for a phase; None while it runs
    reasons: tuple[str, ...] = ()
    hold_seconds: float | None = None  # the longest remaining time seen: the step's full hold
    change_ids: tuple[str, ...] = ()
    summary: "Metrics | None" = None  # every probe together over the whole step (from its step_passed)

    @property
    def is_phase(self) -> bool:
        return self.percent is None


@dataclass
class RunView:
    """Everything known about a run at some moment. Build one with :func:`fold` or :func:`from_run_record`,
    or feed it live with :meth:`apply`."""

    run_id: str | None = None
    migration: str | None = None
    command: str | None = None
    holder: dict[str, Any] = field(default_factory=dict)
    plan: dict[str, Any] = field(default_factory=dict)
    cluster_sides: dict[str, str] = field(default_factory=dict)
    # False: keep only the latest point of each series. The live panel needs no history, and a day-long
    # shift emits a hold event every second.
    keep_history: bool = True

    target: str | None = None
    steps: tuple[int, ...] = ()  # the percentages this run walks (skipped ones excluded)
    skipped: tuple[int, ...] = ()
    start_weights: dict[str, int] | None = None
    estimated_seconds: float | None = None
    started_at: float | None = None
    last_event_at: float | None = None

    spans: list[StepSpan] = field(default_factory=list)
    step_index: int | None = None  # 0-based in the whole plan
    steps_total: int | None = None
    weights: dict[str, list[Point]] = field(default_factory=lambda: {s: [] for s in SIDES})
    share: dict[str, list[Point]] = field(default_factory=lambda: {s: [] for s in SIDES})
    error_ratio: dict[str, list[Point]] = field(default_factory=dict)
    p95_ms: dict[str, list[Point]] = field(default_factory=dict)
    latest: dict[str, Metrics] = field(default_factory=dict)  # current step's metrics, per side or "all"
    latest_probes: dict[str, Metrics] = field(default_factory=dict)  # current step's, per probe
    verdict: str | None = None  # the gates' verdict at the last hold: passing, inconclusive, failed
    remaining_seconds: float | None = None  # at remaining_at, in the current step
    remaining_at: float | None = None
    insync_seconds: float | None = None  # how long the last change took to be in effect
    change_ids: list[str] = field(default_factory=list)

    rollback_at: float | None = None
    rollback_reason: str | None = None
    outcome: str | None = None
    exit_code: int | None = None
    reason: str | None = None
    finished_at: float | None = None
    notes: list[tuple[float, str]] = field(default_factory=list)  # lock lost, run failed: shown as they are

    # -- reading ---------------------------------------------------------------------------------------
    @property
    def source(self) -> str | None:
        if self.target not in SIDES:
            return None
        return "green" if self.target == "blue" else "blue"

    @property
    def finished(self) -> bool:
        return self.outcome is not None

    @property
    def current(self) -> StepSpan | None:
        return self.spans[-1] if self.spans else None

    @property
    def current_weights(self) -> dict[str, int] | None:
        points = {side: self.weights[side] for side in SIDES}
        if not all(points.values()):
            return self.start_weights
        return {side: int(points[side][-1][1]) for side in SIDES}

    def position(self) -> tuple[int, int] | None:
        """``(k, N)`` for "step k/N", 1-based; None before the first step (or during a phase before it)."""
        if self.step_index is None or not self.steps_total:
            return None
        return self.step_index + 1, self.steps_total

    def elapsed(self, now: float) -> float:
        if self.started_at is None:
            return 0.0
        end = self.finished_at if self.finished_at is not None else now
        return max(0.0, end - self.started_at)

    def step_time_left(self, now: float) -> float | None:
        """Seconds left in the current step's hold; None when unknown (no hold seen yet in this step)."""
        if self.finished:
            return 0.0
        if self.remaining_seconds is None or self.remaining_at is None:
            return None
        return max(0.0, self.remaining_seconds - max(0.0, now - self.remaining_at))

    def typical_step_seconds(self) -> float | None:
        """How long a step that moves weights takes: its hold plus the time a change takes to be in effect.
        From the last such step seen; before one is seen, the plan's estimate spread over its steps."""
        for span in reversed(self.spans):
            if not span.is_phase and span.changed is not False and span.hold_seconds is not None:
                return span.hold_seconds + (self.insync_seconds or 0.0)
        if self.estimated_seconds is not None and self.steps:
            return self.estimated_seconds / len(self.steps)
        return None

    def run_time_left(self, now: float) -> float | None:
        """An estimate of the seconds until the run ends (if every gate passes); None when unknown."""
        if self.finished:
            return 0.0
        if self.started_at is None:
            return None
        step_left = self.step_time_left(now)
        typical = self.typical_step_seconds()
        current = self.current
        if current is None or step_left is None or typical is None:
            if self.estimated_seconds is None:
                return None
            return max(0.0, self.started_at + self.estimated_seconds - now)
        if current.is_phase:
            future = len(self.steps)
        else:
            future = sum(1 for p in self.steps if current.percent is not None and p > current.percent)
        return step_left + future * typical

    def bounds(self) -> tuple[float, float] | None:
        """First and last moment the view knows of (for a chart's x axis)."""
        if self.started_at is None and self.last_event_at is None:
            return None
        start = self.started_at if self.started_at is not None else self.last_event_at
        end = max(t for t in (self.finished_at, self.last_event_at, start) if t is not None)
        return float(start), float(end)  # type: ignore[arg-type]

    # -- folding ---------------------------------------------------------------------------------------
    def apply(self, at: float, kind: str, data: Mapping[str, Any] | None) -> "RunView":
        """Fold one event in. Unknown kinds and keys are ignored. Returns self."""
        data = data if isinstance(data, Mapping) else {}
        at = float(at)
        if self.started_at is None:
            self.started_at = at
        self.last_event_at = at if self.last_event_at is None else max(self.last_event_at, at)
        handler = getattr(self, f"_on_{kind}", None)
        if handler is not None:
            handler(at, data)
        if kind in _ENDING_KINDS:
            self._end(at, _ENDING_KINDS[kind], data.get("reason"))
        return self

    def use_plan(self, plan: Mapping[str, Any]) -> None:
        """The plan as journaled at the start of the run (``RunRecord.plan``)."""
        self.plan = dict(plan)
        if plan.get("target") in SIDES:
            self.target = plan["target"]
        steps = _percent_list(plan.get("steps"))
        if steps:
            self.steps = steps
        self.skipped = _percent_list(plan.get("skipped")) or self.skipped
        self.start_weights = parse_weights(plan.get("start")) or self.start_weights
        if self.steps_total is None and self.steps:
            self.steps_total = len(self.skipped) + len(self.steps)
        sides = plan.get("cluster_sides")
        if isinstance(sides, Mapping):
            self.cluster_sides.update({str(k): str(v) for k, v in sides.items()})

    def _on_shift_started(self, at: float, data: Mapping[str, Any]) -> None:
        self.started_at = min(self.started_at or at, at)
        self.use_plan({**self.plan, **{k: v for k, v in data.items() if k in ("target", "steps", "skipped", "start")}})
        self.steps_total = len(self.skipped) + len(self.steps) if self.steps else self.steps_total
        estimate = _num(data.get("estimated_seconds"))
        if estimate is not None:
            self.estimated_seconds = estimate
        if self.start_weights:
            self._weight_point(at, self.start_weights)

    def _on_step_started(self, at: float, data: Mapping[str, Any]) -> None:
        self._close_open_span(at, "passed")
        label = str(data.get("step", "?"))
        index = _int(data.get("index", data.get("step_index")))
        span = StepSpan(label=label, started_at=at, percent=step_percent(label), index=index,
                        weights=parse_weights(data.get("weights")),
                        changed=data.get("changed") if isinstance(data.get("changed"), bool) else None)
        self.spans.append(span)
        if index is not None:
            self.step_index = index
        total = _int(data.get("steps_total"))
        if total:
            self.steps_total = total
        self._new_step_metrics()

    def _on_weights_changed(self, at: float, data: Mapping[str, Any]) -> None:
        label = str(data.get("step", ""))
        current = self.current
        if label in _PHASES and label != "restore-ttl" and (current is None or current.label != label):
            # a phase with no step_started of its own (the TTL lowering, the rollback's change)
            self._close_open_span(at, "passed")
            self.spans.append(StepSpan(label=label, started_at=at, changed=True))
            current = self.current
            if label != "rollback":  # after a rollback, the failed step's values are the ones worth showing
                self._new_step_metrics()
        old, new = parse_weights(data.get("old")), parse_weights(data.get("new"))
        if old is not None and not any(self.weights[s] for s in SIDES):
            self._weight_point(at, old)
        if new is not None:
            self._weight_point(at, new)
        ids = [str(c) for c in data.get("change_ids") or [] if c]
        self._add_changes(ids)
        if current is not None and label == current.label:
            current.change_ids = current.change_ids + tuple(ids)
        insync = _num(data.get("insync_seconds"))
        if insync is not None and label not in _PHASES:
            self.insync_seconds = insync + (_num(data.get("submit_seconds")) or 0.0)

    def _on_hold(self, at: float, data: Mapping[str, Any]) -> None:
        current = self.current
        index = _int(data.get("step_index"))
        if index is not None:
            self.step_index = index
        total = _int(data.get("steps_total"))
        if total:
            self.steps_total = total
        remaining = _num(data.get("remaining_seconds"))
        if remaining is not None:
            self.remaining_seconds, self.remaining_at = remaining, at
            if current is not None and (current.hold_seconds is None or remaining > current.hold_seconds):
                current.hold_seconds = remaining
        if isinstance(data.get("verdict"), str):
            self.verdict = data["verdict"]
        weights = parse_weights(data.get("weights"))
        if weights is not None:
            self._weight_point(at, weights)
        if not self._measurements(at, data, step_end=False) and isinstance(data.get("share"), Mapping):
            for side, percent in self._share_from_probes(data["share"]).items():
                self._add(self.share, side, at, percent)
            samples = _num(data.get("samples"))
            if samples is not None and not self.latest_probes:
                # old-form progress: only the sample count over every probe is known
                self.latest[AGGREGATE] = Metrics(samples=samples)

    def _measurements(self, at: float, data: Mapping[str, Any], *, step_end: bool) -> bool:
        """Per-side data (``sides``) and per-probe summaries (``probes``) of hold, step_passed and
        gates_failed events. Returns whether there were any."""
        found = False
        sides = data.get("sides", data.get("per_side"))
        if isinstance(sides, Mapping):
            for side in SIDES:
                if isinstance(sides.get(side), Mapping):
                    self._metrics_point(at, side, Metrics.from_side(sides[side]))
                    found = True
        probes = data.get("probes")
        if isinstance(probes, Mapping) and probes:
            self._probe_summaries(at, probes, points=step_end)
            found = True
        return found

    def _on_step_passed(self, at: float, data: Mapping[str, Any]) -> None:
        self._measurements(at, data, step_end=True)
        current = self.current
        if current is not None and current.verdict is None:
            current.verdict, current.ended_at = "passed", at
        self.verdict = "passing"
        self.remaining_seconds, self.remaining_at = 0.0, at

    def _on_gates_failed(self, at: float, data: Mapping[str, Any]) -> None:
        current = self.current
        self._measurements(at, data, step_end=True)
        reasons = tuple(str(r) for r in data.get("reasons") or [])
        if current is not None and current.verdict is None:
            current.verdict, current.ended_at, current.reasons = "failed", at, reasons
        self.verdict = "failed"

    def _on_rollback_started(self, at: float, data: Mapping[str, Any]) -> None:
        self._close_open_span(at, "stopped")
        self.rollback_at = at
        self.rollback_reason = str(data.get("reason")) if data.get("reason") is not None else None
        self.remaining_seconds, self.remaining_at = None, None

    def _on_rolled_back(self, at: float, data: Mapping[str, Any]) -> None:
        if self.rollback_at is None:  # `bluegreen rollback` journals only the result
            self.rollback_at = at
            self.rollback_reason = str(data.get("reason")) if data.get("reason") is not None else None
        weights = parse_weights(data.get("weights"))
        if weights is not None:
            self._weight_point(at, weights)
        self._add_changes([str(c) for c in data.get("change_ids") or [] if c])
        current = self.current
        if current is not None and current.label == "rollback" and current.verdict is None:
            current.verdict, current.ended_at = "done", at

    def _on_shift_completed(self, at: float, data: Mapping[str, Any]) -> None:
        self._close_open_span(at, "passed")
        weights = parse_weights(data.get("weights"))
        if weights is not None:
            self._weight_point(at, weights)

    def _on_nothing_to_do(self, at: float, data: Mapping[str, Any]) -> None:
        weights = parse_weights(data.get("weights"))
        if weights is not None:
            self.start_weights = weights
            self._weight_point(at, weights)

    def _on_conflict(self, at: float, data: Mapping[str, Any]) -> None:
        self._close_open_span(at, "stopped")
        found = parse_weights(data.get("found"))
        self.notes.append((at, f"conflict: expected {data.get('expected')}, found {data.get('found')}"))
        if found is not None:
            self._weight_point(at, found)

    def _on_interrupted(self, at: float, data: Mapping[str, Any]) -> None:
        self._close_open_span(at, "stopped")

    def _on_lock_lost(self, at: float, data: Mapping[str, Any]) -> None:
        self.notes.append((at, "lock lost: " + str(data.get("holder", ""))))

    def _on_run_failed(self, at: float, data: Mapping[str, Any]) -> None:
        self._close_open_span(at, "stopped")
        self.notes.append((at, "run failed: " + str(data.get("reason", ""))))

    # -- helpers ---------------------------------------------------------------------------------------
    def _end(self, at: float, outcome: str, reason: Any) -> None:
        if outcome == "rolled_back" and self.outcome == "interrupted":
            return
        self.outcome = outcome
        if reason is not None and self.reason is None:
            self.reason = str(reason)
        self.finished_at = at
        self.remaining_seconds, self.remaining_at = 0.0, at

    def _close_open_span(self, at: float, verdict: str) -> None:
        current = self.current
        if current is not None and current.verdict is None:
            # a phase (TTL lowering, the rollback's change) has no gates of its own: it is done, not passed
            current.verdict = "done" if current.is_phase and verdict == "passed" else verdict
            current.ended_at = at
        elif current is not None and current.ended_at is None:
            current.ended_at = at

    def _new_step_metrics(self) -> None:
        self.latest = {}
        self.latest_probes = {}
        self.verdict = None
        self.remaining_seconds, self.remaining_at = None, None

    def _add(self, series: dict[str, list[Point]], key: str, at: float, value: float) -> None:
        points = series.setdefault(key, [])
        if not self.keep_history:
            points.clear()
        points.append((at, float(value)))

    def _add_changes(self, ids: Iterable[str]) -> None:
        for change in ids:
            if change not in self.change_ids:
                self.change_ids.append(change)

    def _weight_point(self, at: float, weights: Mapping[str, int]) -> None:
        for side in SIDES:
            series = self.weights[side]
            value = float(percent_of(weights, side))
            if series and series[-1][0] == at:
                series[-1] = (at, value)
            elif not series or series[-1][1] != value:
                if not self.keep_history:
                    series.clear()
                series.append((at, value))

    def _metrics_point(self, at: float, key: str, metrics: Metrics) -> None:
        self.latest[key] = metrics
        if metrics.share_percent is not None:
            self._add(self.share, key, at, metrics.share_percent)
        if metrics.error_ratio is not None:
            self._add(self.error_ratio, key, at, metrics.error_ratio)
        if metrics.p95_ms is not None:
            self._add(self.p95_ms, key, at, metrics.p95_ms)

    def _share_from_probes(self, share: Mapping[str, Any]) -> dict[str, float]:
        """Old-form shares ``{probe: {cluster: percent}}``: per side, the mean over probes that saw any."""
        per_side: dict[str, list[float]] = {side: [] for side in SIDES}
        for clusters in share.values():
            if not isinstance(clusters, Mapping) or not clusters:
                continue
            sums = {side: 0.0 for side in SIDES}
            known = False
            for cluster, percent in clusters.items():
                side = side_of_cluster(str(cluster), self.cluster_sides)
                value = _num(percent)
                if side is not None and value is not None:
                    sums[side] += value
                    known = True
            if known:
                for side in SIDES:
                    per_side[side].append(sums[side])
        return {side: sum(v) / len(v) for side, v in per_side.items() if v}

    def _probe_summaries(self, at: float, probes: Mapping[str, Any], *, points: bool) -> None:
        """Per-probe summaries (``step_passed``): kept per probe for the gates, and summed up under
        ``all`` (error ratio over every sample, the worst p95) plus the observed share per side."""
        total = successes = 0.0
        worst_p95: float | None = None
        worst_run: float | None = None
        share_sums = {side: 0.0 for side in SIDES}
        share_weight = 0.0
        for name, raw in probes.items():
            if not isinstance(raw, Mapping):
                continue
            metrics = Metrics.from_side(raw)
            self.latest_probes[str(name)] = metrics
            samples = metrics.samples or 0.0
            ok = _first(raw, "successes")
            if ok is None and metrics.error_ratio is not None:
                ok = samples * (1.0 - metrics.error_ratio)
            if samples and ok is not None:
                total += samples
                successes += ok
            if metrics.p95_ms is not None:
                worst_p95 = metrics.p95_ms if worst_p95 is None else max(worst_p95, metrics.p95_ms)
            if metrics.consecutive_failures is not None:
                worst_run = max(worst_run or 0.0, metrics.consecutive_failures)
            shares = raw.get("cluster_share_percent")
            if isinstance(shares, Mapping) and shares:
                by_side = self._share_from_probes({name: shares})
                if by_side:
                    weight = samples or 1.0
                    share_weight += weight
                    for side in SIDES:
                        share_sums[side] += by_side.get(side, 0.0) * weight
        aggregate = Metrics(samples=total or None, error_ratio=(1.0 - successes / total) if total else None,
                            p95_ms=worst_p95, consecutive_failures=worst_run)
        self.latest[AGGREGATE] = aggregate
        if not points:
            return
        if self.current is not None:
            self.current.summary = aggregate
        if aggregate.error_ratio is not None:
            self._add(self.error_ratio, AGGREGATE, at, aggregate.error_ratio)
        if aggregate.p95_ms is not None:
            self._add(self.p95_ms, AGGREGATE, at, aggregate.p95_ms)
        if share_weight and not any(self.latest.get(side) for side in SIDES):
            for side in SIDES:
                self._add(self.share, side, at, share_sums[side] / share_weight)




def _percent_list(raw: Any) -> tuple[int, ...]:
    if not isinstance(raw, (list, tuple)):
        return ()
    out = []
    for item in raw:
        value = _int(item.get("percent")) if isinstance(item, Mapping) else _int(item)
        if value is None:
            value = step_percent(item) if isinstance(item, str) else None
        if value is not None:
            out.append(value)
    return tuple(out)


# -- building views ------------------------------------------------------------------------------------
def _triple(event: Any) -> tuple[float, str, Mapping[str, Any]]:
    if isinstance(event, (tuple, list)) and len(event) == 3:
        at, kind, data = event
        return float(at), str(kind), data if isinstance(data, Mapping) else {}
    return float(event.at), str(event.kind), event.data if isinstance(event.data, Mapping) else {}


def fold(events: Iterable[Any], *, plan: Mapping[str, Any] | None = None,
         cluster_sides: Mapping[str, str] | None = None, **facts: Any) -> RunView:
    """A :class:`RunView` of ``(wall_time, kind, data)`` triples (or objects with ``at``, ``kind``,
    ``data`` such as JournalEvent). ``facts`` sets run_id, migration, command or holder."""
    view = RunView(cluster_sides=dict(cluster_sides or {}))
    for key, value in facts.items():
        if not hasattr(view, key):
            raise TypeError(f"unknown run fact {key!r}")
        setattr(view, key, value)
    if plan:
        view.use_plan(plan)
    for event in sorted((_triple(e) for e in events), key=lambda e: e[0]):
        view.apply(*event)
    return view


def from_run_record(run: Any, *, cluster_sides: Mapping[str, str] | None = None) -> RunView:
    """A view of a journaled run (:class:`~bluegreen.core.state.RunRecord`). The record's own outcome, exit
    code, reason and finish time win over what the events imply (the CLI writes them last)."""
    view = fold(run.events, plan=run.plan, cluster_sides=cluster_sides, run_id=run.run_id, migration=run.name,
                command=run.command, holder={k: v for k, v in dict(run.holder or {}).items() if k != "token"})
    view.started_at = min(run.started_at, view.started_at) if view.started_at is not None else run.started_at
    if run.outcome is not None:
        view.outcome = run.outcome
        view.exit_code = run.exit_code
        view.reason = run.reason or view.reason
        if run.finished_at is not None:
            view.finished_at = run.finished_at
            view.last_event_at = max(view.last_event_at or run.finished_at, run.finished_at)
    return view


# -- gates ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GateCheck:
    """One gate as the panel shows it: the worst value over probes (or sides) against its threshold."""

    name: str
    value: float | None
    threshold: float
    at_least: bool  # True: value must be >= threshold; False: <=
    unit: str = ""
    blocking: bool = True  # False: not meeting it means "not yet" (too few samples), not a failure

    @property
    def ok(self) -> bool | None:
        if self.value is None:
            return None
        return self.value >= self.threshold if self.at_least else self.value <= self.threshold

    @property
    def state(self) -> str:
        """``ok``, ``failed``, ``waiting`` (too few samples: the verdict is inconclusive) or ``unknown``."""
        ok = self.ok
        if ok is None:
            return "unknown"
        if ok:
            return "ok"
        return "failed" if self.blocking else "waiting"


def gate_thresholds(gates: Any) -> dict[str, float]:
    """Thresholds from a :class:`~bluegreen.core.verdict.Gates`, a mapping with the same keys, or a mapping
    with ``max_p95_latency_ms``. The p95 comes out in milliseconds."""
    if gates is None:
        return {}
    get = gates.get if isinstance(gates, Mapping) else (lambda key, default=None: getattr(gates, key, default))
    out: dict[str, float] = {}
    ratio = _num(get("min_success_ratio", None))
    if ratio is not None:
        out["min_success_ratio"] = ratio
    p95_ms = _num(get("max_p95_latency_ms", None))
    if p95_ms is None:
        p95 = _num(get("max_p95_latency", None))
        p95_ms = None if p95 is None else p95 * 1000.0
    if p95_ms is not None:
        out["max_p95_latency_ms"] = p95_ms
    for key in ("min_samples", "max_consecutive_failures"):
        value = _num(get(key, None))
        if value is not None:
            out[key] = value
    return out


def gate_checks(view: RunView, gates: Any = None) -> list[GateCheck]:
    """Every gate with the current step's worst value. ``gates`` defaults to ``plan["gates"]``. Per-probe
    values are used when known (the verdict judges per probe), else per-side ones."""
    thresholds = gate_thresholds(gates if gates is not None else view.plan.get("gates"))
    if not thresholds:
        return []
    sources = list(view.latest_probes.values()) or [m for k, m in view.latest.items() if k in SIDES]
    if not sources and AGGREGATE in view.latest:
        sources = [view.latest[AGGREGATE]]
    measured = [m for m in sources if m.samples]

    def worst(values: list[float], high_is_bad: bool) -> float | None:
        return (max(values) if high_is_bad else min(values)) if values else None

    checks: list[GateCheck] = []
    if "min_success_ratio" in thresholds:
        ratios = [1.0 - m.error_ratio for m in measured if m.error_ratio is not None]
        checks.append(GateCheck("success ratio", worst(ratios, False), thresholds["min_success_ratio"], True))
    if "max_p95_latency_ms" in thresholds:
        p95s = [m.p95_ms for m in measured if m.p95_ms is not None]
        checks.append(GateCheck("p95 latency", worst(p95s, True), thresholds["max_p95_latency_ms"], False, "ms"))
    if "min_samples" in thresholds:
        counts = [m.samples for m in sources if m.samples is not None]
        if view.latest_probes:
            value = worst(counts, False)  # each probe needs its own samples
        else:
            value = sum(counts) if counts else None  # per side: the window is the sum of both
        checks.append(GateCheck("samples", value, thresholds["min_samples"], True, blocking=False))
    if "max_consecutive_failures" in thresholds:
        runs = [m.consecutive_failures for m in sources if m.consecutive_failures is not None]
        checks.append(GateCheck("consecutive failures", worst(runs, True), thresholds["max_consecutive_failures"],
                                False))
    return checks


__all__ = (
    "AGGREGATE", "GateCheck", "Metrics", "RunView", "SIDES", "StepSpan", "fold", "from_run_record",
    "gate_checks", "gate_thresholds", "parse_weights", "percent_of", "side_of_cluster", "step_percent",
)
