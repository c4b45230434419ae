"""Metric gates through the real CLI: a real Prometheus scraping the sandbox's backends, and CloudWatch
alarms in moto. A failing metric gate rolls the shift back; a gate that cannot be evaluated refuses it."""

from __future__ import annotations

import io
import json

import pytest
import yaml

from bluegreen.cli import Environment, main
from bluegreen.sandbox.prometheus import INSTALL_HINT, PrometheusServer, prometheus_binary

pytestmark = pytest.mark.sandbox

ERROR_RATIO = ('(sum(rate(http_requests_total{cluster="{{cluster}}",code=~"5.."}[{{window}}])) or vector(0))'
               ' / sum(rate(http_requests_total{cluster="{{cluster}}"}[{{window}}]))')


def _shift(tmp_path, config, *, on_event=None, extra=()):
    config = dict(config)
    config["state"] = {"path": str(tmp_path / "state.db")}
    path = tmp_path / "bluegreen.yaml"
    path.write_text(yaml.safe_dump(config))
    out, err = io.StringIO(), io.StringIO()
    code = main(["shift", "--to", "green", "--config", str(path), "--output", "json", "--log-format", "json",
                 *extra],
                Environment(stdout=out, stderr=err, on_event=on_event, install_signal_handlers=False))
    return code, (json.loads(out.getvalue()) if out.getvalue().strip() else {}), err.getvalue()


def _config(sb, gates):
    config = sb.config_dict(steps=[10, 100], bake="8s", ttl_margin="200ms", green_direct=True)
    config["gates"] = {"min_samples": 20, "max_consecutive_failures": 1000, "min_success_ratio": 0.0,
                       "max_error_ratio_increase": 1.0, "traffic": {"enabled": False}, **gates}
    return config  # the probes would never fail: only the metric gate can


@pytest.fixture(scope="module")
def prometheus_sandbox():
    if prometheus_binary() is None:
        pytest.skip(f"prometheus is not installed: {INSTALL_HINT}")
    from bluegreen.sandbox import Sandbox

    with Sandbox(records=("burnham.example.com",), ttl=1) as sb:
        targets = [f"{sb.blue.host}:{sb.http_port}", f"{sb.green.host}:{sb.http_port}"]
        with PrometheusServer(targets, scrape_interval=1.0) as prometheus:
            _warm_up(sb, prometheus)
            yield sb, prometheus


def _warm_up(sb, prometheus) -> None:
    """Blue serves traffic before the shift, as in production: the gate's preflight needs blue's series."""
    import time

    import requests

    deadline = time.monotonic() + 30
    query = ERROR_RATIO.replace("{{cluster}}", sb.blue_id).replace("{{window}}", "3s")
    while time.monotonic() < deadline:
        for _ in range(5):
            requests.get(f"http://{sb.blue.host}:{sb.http_port}/", timeout=1)
        answer = requests.get(f"{prometheus.url}/api/v1/query", params={"query": query}, timeout=2).json()
        if answer.get("data", {}).get("result"):
            return
        time.sleep(0.3)
    pytest.fail("Prometheus never had blue's series")


def test_a_prometheus_gate_rolls_back_a_green_answering_500(prometheus_sandbox, tmp_path):
    sb, prometheus = prometheus_sandbox
    sb.set_weights(100, 0)
    sb.green.set_mode("ok")

    def on_event(event):
        if event.kind == "weights_changed" and event.data.get("step") == "10%":
            sb.fail_green("error")

    gate = {"name": "green-5xx", "provider": "prometheus", "address": prometheus.url, "query": ERROR_RATIO,
            "max": 0.05, "interval": "1s", "window": "3s", "no_data": "inconclusive"}
    try:
        code, result, err = _shift(tmp_path, _config(sb, {"metrics": [gate]}), on_event=on_event)
    finally:
        sb.green.set_mode("ok")
    assert code == 3, err
    assert "green-5xx" in result["reason"]
    assert set(sb.weights().values()) == {(100, 0)}
    assert result["steps"][-1]["metric_gates"]["gates"][0]["name"] == "green-5xx"


def test_a_query_error_refuses_before_any_change(prometheus_sandbox, tmp_path):
    sb, prometheus = prometheus_sandbox
    sb.set_weights(100, 0)
    gate = {"name": "broken", "provider": "prometheus", "address": prometheus.url,
            "query": 'sum(rate(http_requests_total{cluster="{{cluster}}"}[{{window}}]', "max": 1}
    before = sb.route53().list_resource_record_sets(HostedZoneId=sb.zone_id)["ResourceRecordSets"]
    code, _, err = _shift(tmp_path, _config(sb, {"metrics": [gate]}))
    assert code == 2 and "metric gate `broken`" in err
    after = sb.route53().list_resource_record_sets(HostedZoneId=sb.zone_id)["ResourceRecordSets"]
    assert after == before


def test_a_cloudwatch_alarm_in_alarm_fails_the_step(tmp_path):
    from bluegreen.sandbox import Sandbox

    with Sandbox(records=("burnham.example.com",), ttl=1) as sb:
        from bluegreen.sandbox.moto_server import sandbox_client

        cloudwatch = sandbox_client(sb.moto.endpoint_url, "cloudwatch")
        cloudwatch.put_metric_alarm(AlarmName="burnham-green-5xx", MetricName="HTTPCode_Target_5XX_Count",
                                    Namespace="AWS/ApplicationELB", Statistic="Sum", Period=60,
                                    EvaluationPeriods=1, Threshold=5, ComparisonOperator="GreaterThanThreshold")

        def on_event(event):
            if event.kind == "weights_changed" and event.data.get("step") == "10%":
                cloudwatch.set_alarm_state(AlarmName="burnham-green-5xx", StateValue="ALARM",
                                           StateReason="5xx above 5")

        config = _config(sb, {"alarms": {"green": ["burnham-green-5xx"], "interval": "1s"}})
        code, planned, err = _shift(tmp_path, config, extra=("--dry-run",))
        assert code == 0 and planned["metric_gates"] == [
            "cloudwatch-alarms: CloudWatch alarms green: burnham-green-5xx, every 1s"]
        code, result, err = _shift(tmp_path, config, on_event=on_event)
        assert code == 3, err
        assert "burnham-green-5xx" in result["reason"]
        assert set(sb.weights().values()) == {(100, 0)}
