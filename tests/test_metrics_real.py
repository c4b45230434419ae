"""Metric gates against real servers: the real Prometheus (Debian's package) scraping the sandbox's backends,
and CloudWatch through the moto server fed by the sandbox's ALB-shaped publisher.

Prometheus tests skip, with the reason printed, when /usr/bin/prometheus is missing (CI installs it).
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import datetime, timezone

import pytest
import requests

from bluegreen.core.clock import FakeClock
from bluegreen.core.metric_gates import (
    GateOutcome,
    MeasurementOutcome,
    MetricGateRunner,
    parse_alarms,
    parse_metric_gate,
)
from bluegreen.adapters.metrics import MetricQueryError, MetricSources
from bluegreen.errors import ExitCode
from bluegreen.sandbox.backends import ClusterBackend
from bluegreen.sandbox.cloudwatch_publisher import CloudWatchPublisher
from bluegreen.sandbox.moto_server import sandbox_client
from bluegreen.sandbox.prometheus import INSTALL_HINT, PrometheusServer, prometheus_binary

CLUSTERS = {"blue": "eks-blueprint-blue", "green": "eks-blueprint-green"}
ERROR_RATIO = ('(sum(rate(http_requests_total{cluster="{{cluster}}",code=~"5.."}[{{window}}])) or vector(0))'
               ' / sum(rate(http_requests_total{cluster="{{cluster}}"}[{{window}}]))')
P95 = 'histogram_quantile(0.95, sum(rate(http_request_duration_seconds_bucket{cluster="{{cluster}}"}[{{window}}])) by (le))'


class Traffic:
    """Requests to both backends in the background, as real users would send, until stopped."""

    def __init__(self, backends: ClusterBackend, pause: float = 0.02) -> None:
        self.backends = backends
        self.pause = pause
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(b.url,), daemon=True)
                         for b in (backends.blue, backends.green)]

    def _run(self, url: str) -> None:
        with requests.Session() as session:
            while not self._stop.is_set():
                try:
                    session.get(url, timeout=5)
                except requests.RequestException:
                    pass
                self._stop.wait(self.pause)

    def __enter__(self) -> "Traffic":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()


def scrape_targets(pair: ClusterBackend) -> list[str]:
    return [f"{pair.blue.host}:{pair.port}", f"{pair.green.host}:{pair.port}"]


@pytest.fixture(scope="module")
def prometheus_stack():
    """One pair of backends and one Prometheus for the module: Prometheus 2.42 applies new scrape targets
    only every 5 s after start, so a server per test would cost 5 s each."""
    if prometheus_binary() is None:
        pytest.skip(f"prometheus not installed: {INSTALL_HINT}")
    with ClusterBackend() as pair, PrometheusServer(scrape_targets(pair), scrape_interval=1.0) as server:
        yield pair, server


@pytest.fixture
def backends(prometheus_stack):
    pair = prometheus_stack[0]
    yield pair
    pair.blue.set_mode("ok")
    pair.green.set_mode("ok")


@pytest.fixture
def prometheus(prometheus_stack):
    return prometheus_stack[1]


@pytest.fixture
def own_backends():
    with ClusterBackend() as pair:
        yield pair


def prom_gate(prometheus, query: str, **extra):
    raw = {"name": extra.pop("name", "prom-gate"), "provider": "prometheus", "address": prometheus.url,
           "query": query, "interval": "1s", "window": "5s", **extra}
    return parse_metric_gate(raw, "gates.metrics[0]")


def wait_for(predicate, timeout: float = 20.0, pause: float = 0.25):
    """Poll real servers until ``predicate()`` returns something truthy (the scrapes take a few seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(pause)


def measure_all(sources: MetricSources, runner: MetricGateRunner, spec, now: float):
    readings = {side: sources.measure(spec, side, time.time()) for side in runner.sides_to_measure(spec)}
    return runner.record(spec.name, readings, at=now)


# -- Prometheus ------------------------------------------------------------------------------------------
def test_backends_export_prometheus_text_and_do_not_count_scrapes(own_backends):
    backends = own_backends
    requests.get(backends.green.url, timeout=5)
    before = backends.green.requests
    text = requests.get(backends.green.url + "metrics", timeout=5).text
    assert 'http_requests_total{cluster="eks-blueprint-green",code="200"} 1' in text
    assert 'http_request_duration_seconds_bucket{cluster="eks-blueprint-green",le="+Inf"} 1' in text
    assert backends.green.requests == before  # a scrape is not traffic


def test_prometheus_healthy_green_passes_the_gate(backends, prometheus):
    spec = prom_gate(prometheus, ERROR_RATIO, max=0.01, compare_to_blue={"max_increase": 0.005})
    sources = MetricSources(clusters=CLUSTERS, retry_budget=5)
    with Traffic(backends):
        # An earlier test may have broken green: its 500s leave the 5 s window within seconds.
        reading = wait_for(lambda: (r := sources.measure(spec, "green", time.time())).value == 0.0 and r)
        assert reading and reading.value == 0.0
        assert wait_for(lambda: sources.measure(spec, "blue", time.time()).has_value)
        sources.preflight_check(spec)  # blue has data: no error
        runner = MetricGateRunner([spec], started_at=0.0)
        measurement = measure_all(sources, runner, spec, 0.0)
    assert measurement.outcome is MeasurementOutcome.PASSED, measurement.reason
    assert runner.verdict().outcome is GateOutcome.PASSING


def test_prometheus_green_answering_500_fails_the_gate(backends, prometheus):
    spec = prom_gate(prometheus, ERROR_RATIO, name="green-5xx", max=0.01, compare_to_blue={"max_increase": 0.005})
    sources = MetricSources(clusters=CLUSTERS, retry_budget=5)
    backends.green.set_mode("error")
    with Traffic(backends):
        reading = wait_for(lambda: (r := sources.measure(spec, "green", time.time())).has_value and r.value > 0.5 and r)
        assert reading, "Prometheus never saw green's 500s"
        assert wait_for(lambda: sources.measure(spec, "blue", time.time()).value == 0.0)
        runner = MetricGateRunner([spec], started_at=0.0)
        measure_all(sources, runner, spec, 0.0)
    verdict = runner.verdict()
    assert verdict.failed
    (reason,) = verdict.reasons
    assert reason.startswith("green-5xx: green ") and "> max 0.01" in reason and "> blue 0 + 0.005" in reason
    assert "(1 failed of 1, failure_limit 0)" in reason


def test_prometheus_slow_green_fails_a_p95_latency_gate(backends, prometheus):
    spec = prom_gate(prometheus, P95, name="p95", max=0.2)
    sources = MetricSources(clusters=CLUSTERS, retry_budget=5)
    backends.green.set_mode("slow", delay=0.3)
    with Traffic(backends):
        # The window may still hold fast answers from before the switch: wait until it is all slow.
        reading = wait_for(lambda: (r := sources.measure(spec, "green", time.time())).has_value and r.value > 0.2 and r)
        blue = sources.measure(spec, "blue", time.time())
    assert reading and reading.value > 0.2  # the 0.25..0.5 bucket: histogram_quantile interpolates in it
    assert blue.has_value and blue.value < 0.2


def test_prometheus_detection_is_bounded_by_interval_plus_scrape(backends, prometheus):
    """What the benchmark measures: from green breaking to the gate failing, through the real Prometheus.
    Bound: interval (2 s) + scrape interval (1 s) + one query; with a 5 s rate window the error ratio
    passes 0.01 on the first scrape that sees a 500."""
    from bluegreen.core.clock import SystemClock
    from bluegreen.core.metric_gates import measure_due

    spec = prom_gate(prometheus, ERROR_RATIO, name="detect", max=0.01, interval="2s")
    clock = SystemClock()
    sources = MetricSources(clusters=CLUSTERS, clock=clock, retry_budget=2)
    with Traffic(backends):
        assert wait_for(lambda: sources.measure(spec, "green", time.time()).value == 0.0)
        runner = MetricGateRunner([spec], started_at=clock.monotonic())
        measure_due(runner, sources, now=clock.monotonic(), wall=clock.wall())
        backends.green.set_mode("error")
        broken_at = clock.monotonic()
        while not runner.verdict().failed and clock.monotonic() - broken_at < 15:
            measure_due(runner, sources, now=clock.monotonic(), wall=clock.wall())
            clock.sleep(0.1)
        detected = clock.monotonic() - broken_at
    print(f"metric gate detection through Prometheus: {detected:.2f}s (interval 2s, scrape 1s)")
    assert runner.verdict().failed
    assert detected <= spec.interval + 1.0 + 1.5, detected  # interval + scrape + slack for the shared CI box


def test_prometheus_query_error_at_preflight_is_a_typed_error_naming_the_gate(backends, prometheus):
    spec = prom_gate(prometheus, 'sum(rate(http_requests_total{cluster="{{cluster}}"}[{{window}}]', name="broken",
                     max=1)
    sources = MetricSources(clusters=CLUSTERS, retry_budget=5)
    with pytest.raises(MetricQueryError) as caught:
        sources.preflight_check(spec)
    assert caught.value.exit_code is ExitCode.BAD_INPUT
    assert caught.value.gate == "broken"
    assert "metric gate `broken` (gates.metrics[0])" in str(caught.value) and "bad_data" in str(caught.value)
    assert sources.attempts == 1  # a parse error is not retried
    # During a hold the same error is a failed measurement, not an exception.
    reading = sources.measure(spec, "green", time.time())
    assert reading.error and reading.error.startswith("query error: prometheus rejected the query (bad_data)")


def test_prometheus_preflight_refuses_a_query_without_data_for_blue(backends, prometheus):
    spec = prom_gate(prometheus, 'sum(http_requests_total{cluster="typo-{{cluster}}"})', name="typo", max=1)
    with pytest.raises(MetricQueryError, match=r"metric gate `typo` .*returns no data for blue"):
        MetricSources(clusters=CLUSTERS, retry_budget=5).preflight_check(spec)


def test_prometheus_query_returning_several_series_is_refused(backends, prometheus):
    spec = prom_gate(prometheus, "http_requests_total", name="many", max=1)
    sources = MetricSources(clusters=CLUSTERS, retry_budget=5)
    with Traffic(backends):
        wait_for(lambda: len(prometheus.wait_for_samples("http_requests_total")) >= 2)
        with pytest.raises(MetricQueryError, match=r"returns [2-9] series .* needs one number"):
            sources.preflight_check(spec)


@pytest.mark.parametrize("policy, outcome", [("inconclusive", MeasurementOutcome.INCONCLUSIVE),
                                             ("fail", MeasurementOutcome.FAILED),
                                             ("pass", MeasurementOutcome.PASSED)])
def test_prometheus_empty_result_follows_no_data(backends, prometheus, policy, outcome):
    spec = prom_gate(prometheus, 'sum(rate(http_requests_total{cluster="{{cluster}}",code="503"}[{{window}}]))',
                     name="no-503", max=0, no_data=policy)
    sources = MetricSources(clusters=CLUSTERS, retry_budget=5)
    assert prometheus.wait_for_samples("up")  # Prometheus is up and scraping: the result is just empty
    reading = sources.measure(spec, "green", time.time())
    assert reading.error is None and reading.value is None and reading.detail == "empty result"
    runner = MetricGateRunner([spec], started_at=0.0)
    assert runner.record(spec.name, {"green": reading}, at=0.0).outcome is outcome


def test_prometheus_stopped_mid_hold_is_a_failed_measurement_after_the_retry_budget(backends):
    prometheus = PrometheusServer(scrape_targets(backends)).start()  # its own: this test stops it
    spec = prom_gate(prometheus, ERROR_RATIO, name="error-ratio", max=0.01)
    clock = FakeClock()  # the retries' backoff sleeps on this clock: the 8 s budget passes at once
    sources = MetricSources(clusters=CLUSTERS, clock=clock, retry_budget=8.0)
    runner = MetricGateRunner([spec], started_at=clock.monotonic())
    with Traffic(backends):
        try:
            assert wait_for(lambda: sources.measure(spec, "green", time.time()).value == 0.0)
            first = measure_all(sources, runner, spec, clock.monotonic())
        finally:
            prometheus.stop()
        assert first.outcome is MeasurementOutcome.PASSED
        clock.advance(spec.interval)
        assert runner.due(clock.monotonic()) == (spec,)
        before = clock.monotonic()
        second = measure_all(sources, runner, spec, clock.monotonic())
    assert second.outcome is MeasurementOutcome.FAILED
    error = second.readings["green"].error
    assert error.startswith(f"prometheus at http://127.0.0.1:") and "unreachable: ConnectionError" in error
    assert "retry budget 8s" in error
    assert 8.0 <= clock.monotonic() - before < 9.0 and len(clock.sleeps) >= 3  # backed off, then gave up
    assert runner.verdict().failed


def test_prometheus_headers_come_from_the_environment_and_never_show(backends, prometheus):
    spec = prom_gate(prometheus, ERROR_RATIO, name="auth", max=0.01, headers_env="PROM_HEADERS")
    good = MetricSources(clusters=CLUSTERS, retry_budget=2,
                         environ={"PROM_HEADERS": "Authorization: Bearer s3cret-token\nX-Scope-OrgID: team-a"})
    with Traffic(backends):
        assert wait_for(lambda: good.measure(spec, "green", time.time()).has_value)
    missing = MetricSources(clusters=CLUSTERS, retry_budget=2, environ={}).measure(spec, "green", time.time())
    assert missing.error == "query error: environment variable PROM_HEADERS (headers_env) is not set"
    broken = MetricSources(clusters=CLUSTERS, retry_budget=2, environ={"PROM_HEADERS": "Bearer s3cret-token"})
    with pytest.raises(MetricQueryError) as caught:
        broken.preflight_check(spec)
    assert "PROM_HEADERS" in str(caught.value) and "s3cret" not in str(caught.value)
    assert "s3cret" not in (broken.measure(spec, "green", time.time()).error or "")


def test_prometheus_server_stops_cleanly(backends):
    server = PrometheusServer([f"{backends.blue.host}:{backends.port}"]).start()
    process, workdir, url = server._process, server._workdir, server.url
    assert requests.get(f"{url}/-/ready", timeout=5).status_code == 200
    server.stop()
    assert process.poll() is not None and not workdir.exists() and not server.running
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/-/ready", timeout=2)


# -- CloudWatch through moto -----------------------------------------------------------------------------
@pytest.fixture
def cloudwatch(moto_endpoint):
    return sandbox_client(moto_endpoint, "cloudwatch")


def alb_dimensions() -> dict[str, dict[str, str]]:
    # Unique per test: the moto server is shared by the whole session.
    tag = uuid.uuid4().hex[:16]
    return {side: {"LoadBalancer": f"app/k8s-{side}/{tag}", "TargetGroup": f"targetgroup/k8s-{side}/{tag}"}
            for side in ("blue", "green")}


def alb_gate(dims, preset="alb_5xx_ratio", **extra):
    raw = {"name": extra.pop("name", "alb-5xx"), "provider": "cloudwatch", "preset": preset, "sides": dims,
           "window": "1m", "interval": "30s", **extra}
    return parse_metric_gate(raw, "gates.metrics[0]")


def serve(backend, count: int) -> None:
    with requests.Session() as session:
        for _ in range(count):
            session.get(backend.url, timeout=5)


def test_cloudwatch_sees_green_errors_published_by_the_sandbox(own_backends, cloudwatch):
    backends = own_backends
    dims = alb_dimensions()
    publisher = CloudWatchPublisher(cloudwatch, backends, dimensions=dims)
    serve(backends.blue, 20)
    backends.green.set_mode("error")
    serve(backends.green, 10)
    backends.green.set_mode("ok")
    serve(backends.green, 10)
    assert publisher.publish_once() > 0
    spec = alb_gate(dims, max=0.01, compare_to_blue={"max_increase": 0.005})
    sources = MetricSources(clusters=CLUSTERS, cloudwatch=cloudwatch, retry_budget=5)
    sources.preflight_check(spec)  # RequestCount exists for blue's dimensions
    end = time.time() + 1
    green, blue = sources.measure(spec, "green", end), sources.measure(spec, "blue", end)
    assert (green.value, green.detail) == (0.5, "10/20")
    assert (blue.value, blue.detail) == (0.0, "0/20")  # no 5xx data point at all means 0 (ELB reports nonzero only)
    runner = MetricGateRunner([spec], started_at=0.0)
    runner.record(spec.name, {"green": green, "blue": blue}, at=0.0)
    assert runner.verdict().reasons == (
        "alb-5xx: green 0.5 > max 0.01; green 0.5 > blue 0 + 0.005 (1 failed of 1, failure_limit 0)",)


def test_cloudwatch_healthy_green_passes_and_an_idle_side_has_no_data(own_backends, cloudwatch):
    backends = own_backends
    dims = alb_dimensions()
    publisher = CloudWatchPublisher(cloudwatch, {"green": backends.green}, dimensions=dims)
    serve(backends.green, 15)
    publisher.publish_once()
    spec = alb_gate(dims, max=0.01)
    sources = MetricSources(clusters=CLUSTERS, cloudwatch=cloudwatch, retry_budget=5)
    end = time.time() + 1
    assert sources.measure(spec, "green", end).value == 0.0
    idle = sources.measure(spec, "blue", end)
    assert idle.error is None and idle.value is None and "RequestCount" in idle.detail
    with pytest.raises(MetricQueryError, match=r"no RequestCount in AWS/ApplicationELB for blue's LoadBalancer="):
        sources.preflight_check(spec)  # blue never had traffic under these dimensions


def test_cloudwatch_alarm_in_alarm_state_fails(cloudwatch):
    green_alarm, blue_alarm = f"burnham-green-5xx-{uuid.uuid4().hex[:8]}", f"burnham-blue-5xx-{uuid.uuid4().hex[:8]}"
    for name in (green_alarm, blue_alarm):
        cloudwatch.put_metric_alarm(
            AlarmName=name, Namespace="AWS/ApplicationELB", MetricName="HTTPCode_Target_5XX_Count", Statistic="Sum",
            Period=60, EvaluationPeriods=1, Threshold=5, ComparisonOperator="GreaterThanThreshold")
    spec = parse_alarms({"green": [green_alarm], "blue": [blue_alarm], "interval": "10s"})
    sources = MetricSources(clusters=CLUSTERS, cloudwatch=cloudwatch, retry_budget=5)
    sources.preflight_check(spec)
    runner = MetricGateRunner([spec], started_at=0.0)
    assert measure_all(sources, runner, spec, 0.0).outcome is MeasurementOutcome.PASSED
    cloudwatch.set_alarm_state(AlarmName=blue_alarm, StateValue="ALARM", StateReason="test")
    blue_only = measure_all(sources, runner, spec, 10.0)
    assert blue_only.outcome is MeasurementOutcome.PASSED and f"blue (reported only) alarm in ALARM: {blue_alarm}" \
        in blue_only.reason
    cloudwatch.set_alarm_state(AlarmName=green_alarm, StateValue="ALARM", StateReason="5xx above 5")
    measure_all(sources, runner, spec, 20.0)
    assert runner.verdict().failed
    assert runner.verdict().reasons[0].startswith(f"cloudwatch-alarms: green alarm in ALARM: {green_alarm}")


def test_cloudwatch_alarm_that_does_not_exist_fails_preflight(cloudwatch):
    spec = parse_alarms({"green": ["no-such-alarm-" + uuid.uuid4().hex[:6]]})
    with pytest.raises(MetricQueryError, match=r"metric gate `cloudwatch-alarms` \(gates.alarms\): alarm not found"):
        MetricSources(clusters=CLUSTERS, cloudwatch=cloudwatch, retry_budget=5).preflight_check(spec)


def test_cloudwatch_unreachable_is_a_failed_measurement_after_the_budget():
    with __import__("socket").socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    client = sandbox_client(f"http://127.0.0.1:{port}", "cloudwatch")  # nothing listens there
    clock = FakeClock()
    sources = MetricSources(clusters=CLUSTERS, cloudwatch=client, clock=clock, retry_budget=6.0)
    reading = sources.measure(alb_gate(alb_dimensions(), max=0.01), "green", time.time())
    assert reading.error.startswith("CloudWatch get_metric_data unreachable: EndpointConnectionError")
    assert "retry budget 6s" in reading.error and clock.monotonic() - 1000.0 >= 6.0


def test_cloudwatch_nlb_reset_ratio_reads_each_sides_load_balancer(cloudwatch):
    tag = uuid.uuid4().hex[:16]
    lbs = {"blue": f"net/k8s-blue/{tag}", "green": f"net/k8s-green/{tag}"}
    now = time.time()
    at = datetime.fromtimestamp(now - 5, tz=timezone.utc)
    for side, (resets, flows) in {"blue": (0, 400), "green": (30, 200)}.items():
        dims = [{"Name": "LoadBalancer", "Value": lbs[side]}]
        cloudwatch.put_metric_data(Namespace="AWS/NetworkELB", MetricData=[
            {"MetricName": "TCP_Target_Reset_Count", "Dimensions": dims, "Timestamp": at, "Value": resets},
            {"MetricName": "NewFlowCount", "Dimensions": dims, "Timestamp": at, "Value": flows}])
    spec = parse_metric_gate({"name": "nlb", "provider": "cloudwatch", "preset": "nlb_reset_ratio", "max": 0.05,
                              "sides": {side: {"LoadBalancer": lb} for side, lb in lbs.items()}}, "gates.metrics[2]")
    sources = MetricSources(clusters=CLUSTERS, cloudwatch=cloudwatch, retry_budget=5)
    sources.preflight_check(spec)
    assert sources.measure(spec, "green", now + 1).value == 0.15
    assert sources.measure(spec, "blue", now + 1).value == 0.0


def test_cloudwatch_p95_takes_the_worst_data_point_of_the_window():
    # moto cannot compute percentile statistics (GetMetricData with Stat "p95" answers HTTP 500), so this
    # one call is stubbed with botocore's Stubber; the request shape is still checked against the API model.
    import boto3
    from botocore.stub import ANY, Stubber

    client = boto3.client("cloudwatch", region_name="us-east-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing")
    dims = alb_dimensions()
    spec = alb_gate(dims, preset="alb_p95_target_response_time", name="p95", max=0.5, window="2m")
    with Stubber(client) as stub:
        stub.add_response("get_metric_data", {"MetricDataResults": [
            {"Id": "n", "Label": "TargetResponseTime", "Values": [0.31, 0.74], "StatusCode": "Complete"}]},
            {"MetricDataQueries": [{"Id": "n", "ReturnData": True, "MetricStat": {
                "Metric": {"Namespace": "AWS/ApplicationELB", "MetricName": "TargetResponseTime",
                           "Dimensions": [{"Name": "LoadBalancer", "Value": dims["green"]["LoadBalancer"]},
                                          {"Name": "TargetGroup", "Value": dims["green"]["TargetGroup"]}]},
                "Period": 120, "Stat": "p95"}}], "StartTime": ANY, "EndTime": ANY})
        reading = MetricSources(clusters=CLUSTERS, cloudwatch=client, retry_budget=1).measure(spec, "green", time.time())
    assert reading.value == 0.74


def test_an_interrupt_ends_the_retries_at_once():
    from bluegreen.core.clock import SystemClock

    with __import__("socket").socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    stop = threading.Event()
    stop.set()  # as the CLI's signal handler does
    spec = parse_metric_gate({"name": "p", "provider": "prometheus", "address": f"http://127.0.0.1:{port}",
                              "query": "up", "max": 1}, "gates.metrics[0]")
    sources = MetricSources(clusters=CLUSTERS, clock=SystemClock(stop=stop), retry_budget=30)
    started = time.monotonic()
    reading = sources.measure(spec, "green", time.time())
    assert reading.error.startswith(f"prometheus at http://127.0.0.1:{port} unreachable: ConnectionError (1 attempt in")
    assert time.monotonic() - started < 5 and sources.attempts == 1
