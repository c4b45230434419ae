"""Publishes ALB-shaped CloudWatch metrics for the sandbox's two backends, as each cluster's ALB would.

A real Application Load Balancer publishes, per (LoadBalancer, TargetGroup), in namespace AWS/ApplicationELB:
RequestCount, HTTPCode_Target_5XX_Count (only when nonzero) and TargetResponseTime, every 60 seconds while
requests flow (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-cloudwatch-metrics.html).
This publisher reads the backends' monotonic counters, and every ``interval`` PutMetricData's the
difference since its last publication to the (moto) CloudWatch endpoint, so a GetMetricData gate sees
green's errors in seconds instead of minutes.

TargetResponseTime goes out as Values/Counts: each latency-histogram bucket that gained answers is sent
as its upper bound with its count (so percentiles are approximate, never optimistic). The +Inf bucket is
sent as twice the largest bound.
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from typing import Any, Mapping

from bluegreen.core.clock import Clock, SystemClock
from bluegreen.sandbox.backends import LATENCY_BUCKETS, Backend, ClusterBackend, ServedCounts

NAMESPACE = "AWS/ApplicationELB"

# Dimension values shaped like the last part of the ARNs (the format the ELB docs give).
DEFAULT_DIMENSIONS: dict[str, dict[str, str]] = {
    "blue": {"LoadBalancer": "app/k8s-blue/50dc6c495c0c9188", "TargetGroup": "targetgroup/k8s-blue/73e2d6bc24d8a067"},
    "green": {"LoadBalancer": "app/k8s-green/8e5a0c3f1b2d4e67",
              "TargetGroup": "targetgroup/k8s-green/9f1e2d3c4b5a6978"},
}

_BUCKET_VALUES = LATENCY_BUCKETS + (LATENCY_BUCKETS[-1] * 2,)


def _delta(now: ServedCounts, before: ServedCounts | None) -> ServedCounts:
    if before is None:
        return now
    codes = {code: n - before.by_code.get(code, 0) for code, n in now.by_code.items()}
    return ServedCounts({c: n for c, n in codes.items() if n > 0},
                        tuple(a - b for a, b in zip(now.buckets, before.buckets)),
                        now.latency_sum - before.latency_sum)


def metric_data(delta: ServedCounts, dimensions: Mapping[str, str], at: datetime) -> list[dict[str, Any]]:
    """The PutMetricData entries for one side's answers in one period (empty when nothing was served:
    ELB reports only while requests flow)."""
    if delta.total <= 0:
        return []
    dims = [{"Name": name, "Value": value} for name, value in dimensions.items()]
    entries: list[dict[str, Any]] = [
        {"MetricName": "RequestCount", "Dimensions": dims, "Timestamp": at, "Value": float(delta.total),
         "Unit": "Count"},
    ]
    for name, (low, high) in (("HTTPCode_Target_2XX_Count", (200, 299)), ("HTTPCode_Target_4XX_Count", (400, 499)),
                              ("HTTPCode_Target_5XX_Count", (500, 599))):
        count = delta.count_of(low, high)
        if count:  # "Reporting criteria: There is a nonzero value"
            entries.append({"MetricName": name, "Dimensions": dims, "Timestamp": at, "Value": float(count),
                            "Unit": "Count"})
    values = [(v, n) for v, n in zip(_BUCKET_VALUES, delta.buckets) if n > 0]
    if values:
        entries.append({"MetricName": "TargetResponseTime", "Dimensions": dims, "Timestamp": at,
                        "Values": [v for v, _ in values], "Counts": [float(n) for _, n in values],
                        "Unit": "Seconds"})
    return entries


class CloudWatchPublisher:
    """``CloudWatchPublisher(client, backends).start()``; ``publish_once()`` for tests that drive it."""

    def __init__(self, client: Any, backends: ClusterBackend | Mapping[str, Backend], *,
                 dimensions: Mapping[str, Mapping[str, str]] | None = None, interval: float = 1.0,
                 clock: Clock | None = None) -> None:
        self.client = client
        if isinstance(backends, ClusterBackend):
            backends = {"blue": backends.blue, "green": backends.green}
        self.backends = dict(backends)
        self.dimensions = {side: dict((dimensions or DEFAULT_DIMENSIONS)[side]) for side in self.backends}
        self.interval = interval
        self.clock = clock or SystemClock()
        self._last: dict[str, ServedCounts | None] = {side: None for side in self.backends}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.published = 0  # PutMetricData calls made
        self.last_error: str | None = None

    def publish_once(self) -> int:
        """Publish what each side served since the last call. Returns the number of metric entries sent."""
        at = datetime.fromtimestamp(self.clock.wall(), tz=timezone.utc)
        sent = 0
        for side, backend in self.backends.items():
            now = backend.served()
            entries = metric_data(_delta(now, self._last[side]), self.dimensions[side], at)
            if entries:
                self.client.put_metric_data(Namespace=NAMESPACE, MetricData=entries)
                self.published += 1
                sent += len(entries)
            self._last[side] = now
        return sent

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.publish_once()
            except Exception as error:  # noqa: BLE001 - keep publishing; the tests read last_error
                self.last_error = f"{type(error).__name__}: {error}"

    def start(self) -> "CloudWatchPublisher":
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="sandbox-cloudwatch-publisher", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> "CloudWatchPublisher":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
