"""Probe samples, their bounded summary, and the gate verdict over them. Pure.

A scheduled cutover can run for a day, so samples are never kept forever: a :class:`SampleWindow` keeps
running counters plus the latest ``capacity`` latencies (for the p95), whatever the number of samples.
"""

from __future__ import annotations

import enum
import math
from collections import Counter, deque
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Sample:
    probe: str
    at: float  # monotonic seconds when the answer (or the failure) arrived
    ok: bool
    latency: float  # seconds
    status: int | None = None  # HTTP status, None when no answer
    cluster: str | None = None  # which cluster answered, when the probe can tell (body pattern or header)
    error: str | None = None  # why it failed, short
    address: str | None = None  # the address the probe dialled (what the name resolved to)
    connection: int = 0  # which connection carried it: samples on one connection are one DNS draw
    pinned: bool = False  # dialled a fixed address (connect_to): says nothing about where DNS sends traffic


@dataclass(frozen=True)
class Gates:
    min_success_ratio: float = 0.99
    max_p95_latency: float = 2.0
    min_samples: int = 20
    max_consecutive_failures: int = 3
    on_fail: str = "rollback"  # rollback | hold: what a failed gate does
    on_both_failing: str = "hold"  # hold | rollback: when blue fails as much as green, rolling back won't help
    observe: frozenset = frozenset()  # gates that are judged, logged and journaled, but never acted on
    max_error_ratio_increase: float = 0.05  # green's error ratio may exceed blue's by this much
    max_p95_increase: float = 1.0  # seconds green's p95 may exceed blue's
    min_samples_per_side: int = 5  # before green is compared with blue
    traffic_check: bool = True  # the observed share of each side must follow the weights
    traffic_tolerance_floor: float = 0.05  # the tolerance never goes below this share
    traffic_min_samples: int = 10  # attributed samples a probe needs before its share is judged
    # Metric and alarm gates (bluegreen.core.metric_gates specs): measured during each hold.
    metrics: tuple = ()


class VerdictOutcome(str, enum.Enum):
    """What the gates say about a hold so far (the run's own ending is ``engine.Outcome``)."""

    PASSING = "passing"
    INCONCLUSIVE = "inconclusive"  # fewer than min_samples and no hard failure yet
    FAILED = "failed"
    BOTH_FAILING = "both_failing"  # the source side fails as much as the target: rolling back won't help


@dataclass(frozen=True)
class Verdict:
    outcome: VerdictOutcome
    reasons: tuple[str, ...] = ()
    observed: tuple[str, ...] = ()  # failures of observe-only gates: logged and journaled, never acted on
    warnings: tuple[str, ...] = ()  # e.g. the body says one cluster while the address says the other

    @property
    def failed(self) -> bool:
        return self.outcome in (VerdictOutcome.FAILED, VerdictOutcome.BOTH_FAILING)


@dataclass(frozen=True)
class Summary:
    """What a window of samples says, in numbers."""

    samples: int
    successes: int
    consecutive_failures: int
    p95_latency: float | None
    clusters: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    last_error: str | None = None

    @property
    def success_ratio(self) -> float | None:
        return self.successes / self.samples if self.samples else None

    def cluster_share(self) -> dict[str, float]:
        answered = sum(self.clusters.values())
        if not answered:
            return {}
        return {name: round(count / answered * 100, 1) for name, count in sorted(self.clusters.items())}

    def as_dict(self) -> dict:
        return {
            "samples": self.samples,
            "successes": self.successes,
            "success_ratio": None if self.success_ratio is None else round(self.success_ratio, 4),
            "p95_latency_ms": None if self.p95_latency is None else round(self.p95_latency * 1000, 1),
            "consecutive_failures": self.consecutive_failures,
            "clusters": dict(self.clusters),
            "cluster_share_percent": self.cluster_share(),
            "statuses": dict(self.statuses),
            "last_error": self.last_error,
        }


def percentile(values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile (the value at or below which ``fraction`` of values fall)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


class SampleWindow:
    """Counters over every sample added, plus the latest ``capacity`` latencies. Memory is bounded."""

    def __init__(self, capacity: int = 4096) -> None:
        self.capacity = capacity
        self._latencies: deque[float] = deque(maxlen=capacity)
        self.samples = 0
        self.successes = 0
        self.consecutive_failures = 0
        self.clusters: Counter[str] = Counter()
        self.statuses: Counter[str] = Counter()
        self.last_error: str | None = None
        self.first_failure_at: float | None = None

    def add(self, sample: Sample) -> None:
        self.samples += 1
        self._latencies.append(sample.latency)
        self.statuses[str(sample.status) if sample.status is not None else "error"] += 1
        if sample.cluster:
            self.clusters[sample.cluster] += 1
        if sample.ok:
            self.successes += 1
            self.consecutive_failures = 0
        else:
            self.consecutive_failures += 1
            self.last_error = sample.error or (f"HTTP {sample.status}" if sample.status else "failed")
            if self.first_failure_at is None:
                self.first_failure_at = sample.at

    def extend(self, samples) -> None:
        for sample in samples:
            self.add(sample)

    def summary(self) -> Summary:
        return Summary(
            samples=self.samples,
            successes=self.successes,
            consecutive_failures=self.consecutive_failures,
            p95_latency=percentile(list(self._latencies), 0.95),
            clusters=dict(self.clusters),
            statuses=dict(self.statuses),
            last_error=self.last_error,
        )


def judge(summaries: dict[str, Summary], gates: Gates) -> Verdict:
    """The gate verdict over every probe's summary.

    Consecutive failures fail at once: a run of errors is a strong signal, and waiting for ``min_samples``
    would delay a rollback by ``min_samples x interval``. Ratio and latency need ``min_samples`` first, so a
    single slow answer at the start of a step cannot fail it.
    """
    reasons: list[str] = []
    inconclusive = False
    for probe, summary in sorted(summaries.items()):
        if summary.consecutive_failures > gates.max_consecutive_failures:
            reasons.append(
                f"probe {probe}: {summary.consecutive_failures} consecutive failures "
                f"(max {gates.max_consecutive_failures}); last: {summary.last_error}"
            )
        if summary.samples < gates.min_samples:
            inconclusive = True
            continue
        ratio = summary.success_ratio or 0.0
        if ratio < gates.min_success_ratio:
            reasons.append(
                f"probe {probe}: success ratio {ratio:.3f} < {gates.min_success_ratio} "
                f"over {summary.samples} samples; last: {summary.last_error}"
            )
        if summary.p95_latency is not None and summary.p95_latency > gates.max_p95_latency:
            reasons.append(
                f"probe {probe}: p95 latency {summary.p95_latency * 1000:.0f}ms > "
                f"{gates.max_p95_latency * 1000:.0f}ms over {summary.samples} samples"
            )
    if reasons:
        return Verdict(VerdictOutcome.FAILED, tuple(reasons))
    if inconclusive:
        return Verdict(VerdictOutcome.INCONCLUSIVE)
    return Verdict(VerdictOutcome.PASSING)
