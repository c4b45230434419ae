"""Metric gates, pure logic: parsing (every bad value names its key), presets, substitution, and the runner's
decisions (when to measure, what a measurement says, the verdict per gate). No server: the readings are
handed to the runner as the adapters would."""

from __future__ import annotations

import copy
import json

import pytest

from bluegreen.adapters.metrics import parse_headers
from bluegreen.core.metric_gates import (
    PRESETS,
    GateOutcome,
    MeasurementOutcome,
    MetricGateRunner,
    NoData,
    Provider,
    Reading,
    parse_alarms,
    parse_metric_gates,
)
from bluegreen.errors import ConfigError, ExitCode

ALB = {
    "name": "alb-5xx",
    "provider": "cloudwatch",
    "preset": "alb_5xx_ratio",
    "sides": {
        "blue": {"LoadBalancer": "app/k8s-blue/123", "TargetGroup": "targetgroup/k8s-blue/456"},
        "green": {"LoadBalancer": "app/k8s-green/789", "TargetGroup": "targetgroup/k8s-green/abc"},
    },
    "max": 0.01,
    "compare_to_blue": {"max_increase": 0.005},
    "interval": "30s",
    "window": "1m",
    "failure_limit": 1,
    "no_data": "inconclusive",
}
PROM = {
    "name": "p95",
    "provider": "prometheus",
    "address": "http://prometheus.monitoring:9090/",
    "headers_env": "PROM_HEADERS",
    "query": 'histogram_quantile(0.95, sum(rate(http_request_duration_seconds_bucket{cluster="{{cluster}}"}[1m])) by (le))',
    "max": 0.5,
}


def gates(*items):
    return parse_metric_gates([copy.deepcopy(i) for i in items])


def with_(base: dict, path: str, value) -> dict:
    """A copy of ``base`` with ``a.b.c`` set (or deleted when value is ...)."""
    raw = copy.deepcopy(base)
    *parents, last = path.split(".")
    node = raw
    for key in parents:
        node = node[key]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return raw


# -- parsing ---------------------------------------------------------------------------------------------
def test_the_issue_example_parses_into_typed_specs():
    alb, p95 = gates(ALB, PROM)
    assert (alb.name, alb.provider, alb.preset, alb.max, alb.compare_to_blue.max_increase) == \
        ("alb-5xx", Provider.CLOUDWATCH, "alb_5xx_ratio", 0.01, 0.005)
    assert (alb.interval, alb.window, alb.failure_limit, alb.no_data, alb.observe_only) == \
        (30.0, 60.0, 1, NoData.INCONCLUSIVE, False)
    assert alb.where == "gates.metrics[0]" and p95.where == "gates.metrics[1]"
    assert p95.address == "http://prometheus.monitoring:9090" and p95.headers_env == "PROM_HEADERS"
    # Defaults: measured every 30 s over 1 min; the first failed measurement fails; no data is inconclusive.
    assert (p95.interval, p95.window, p95.failure_limit, p95.no_data, p95.compare_to_blue) == \
        (30.0, 60.0, 0, NoData.INCONCLUSIVE, None)


def test_absent_sections_are_empty():
    assert parse_metric_gates(None) == () and parse_alarms(None) is None


@pytest.mark.parametrize("base, path, value, key, words", [
    (ALB, "max", float("nan"), "gates.metrics[0].max", "finite"),
    (ALB, "max", float("inf"), "gates.metrics[0].max", "finite"),
    (ALB, "max", float("-inf"), "gates.metrics[0].max", "finite"),
    (ALB, "max", "1%", "gates.metrics[0].max", "must be a number"),
    (ALB, "max", True, "gates.metrics[0].max", "must be a number"),
    (ALB, "compare_to_blue.max_increase", float("nan"), "gates.metrics[0].compare_to_blue.max_increase", "finite"),
    (ALB, "compare_to_blue.max_increase", -0.1, "gates.metrics[0].compare_to_blue.max_increase", "0.."),
    (ALB, "compare_to_blue.max_increas", 0.1, "gates.metrics[0].compare_to_blue.max_increas", "unknown key"),
    (ALB, "compare_to_blue", 0.1, "gates.metrics[0].compare_to_blue", "mapping"),
    (ALB, "interval", "0s", "gates.metrics[0].interval", "between 1s and 1h00m"),
    (ALB, "interval", float("inf"), "gates.metrics[0].interval", "finite"),
    (ALB, "interval", float("nan"), "gates.metrics[0].interval", "finite"),
    (ALB, "interval", "soon", "gates.metrics[0].interval", "duration"),
    (ALB, "window", "90s", "gates.metrics[0].window", "whole number of minutes"),
    (ALB, "window", "30s", "gates.metrics[0].window", "whole number of minutes"),
    (ALB, "failure_limit", -1, "gates.metrics[0].failure_limit", "0..1000"),
    (ALB, "failure_limit", 1.5, "gates.metrics[0].failure_limit", "integer"),
    (ALB, "failure_limit", True, "gates.metrics[0].failure_limit", "integer"),
    (ALB, "no_data", "ignore", "gates.metrics[0].no_data", "inconclusive | fail | pass"),
    (ALB, "observe_only", "yes", "gates.metrics[0].observe_only", "true or false"),
    (ALB, "provider", "datadog", "gates.metrics[0].provider", "cloudwatch | prometheus"),
    (ALB, "provider", ..., "gates.metrics[0].provider", "required"),
    (ALB, "name", ..., "gates.metrics[0].name", "required"),
    (ALB, "name", "has space", "gates.metrics[0].name", "letters, digits"),
    (ALB, "preset", "alb_5xx_ration", "gates.metrics[0].preset", "not a known preset"),
    (ALB, "preset", ..., "gates.metrics[0].preset", "required for provider cloudwatch"),
    (ALB, "sides.green", ..., "gates.metrics[0].sides.green", "required"),
    (ALB, "sides.green.TargetGroup", ..., "gates.metrics[0].sides.green.TargetGroup", "required"),
    (ALB, "sides.green.AvailabilityZone", "us-east-1a", "gates.metrics[0].sides.green.AvailabilityZone", "unknown key"),
    (ALB, "sides.green.LoadBalancer", "", "gates.metrics[0].sides.green.LoadBalancer", "non-empty"),
    (ALB, "sides.green.LoadBalancer", "app/{{colour}}/1", "gates.metrics[0].sides.green.LoadBalancer", "placeholder"),
    (ALB, "sides.purple", {}, "gates.metrics[0].sides.purple", "unknown key"),
    (ALB, "query", "up", "gates.metrics[0].query", "for provider prometheus"),
    (ALB, "maxx", 1, "gates.metrics[0].maxx", "unknown key"),
    (PROM, "query", "", "gates.metrics[0].query", "PromQL"),
    (PROM, "query", 'up{cluster="{{clustr}}"}', "gates.metrics[0].query", "unknown placeholder {{clustr}}"),
    (PROM, "address", ..., "gates.metrics[0].address", "required"),
    (PROM, "address", "prometheus:9090", "gates.metrics[0].address", "http://"),
    (PROM, "headers_env", "Bearer abc", "gates.metrics[0].headers_env", "environment variable name"),
    (PROM, "preset", "alb_5xx_ratio", "gates.metrics[0].preset", "for provider cloudwatch"),
    (PROM, "max", ..., "gates.metrics[0]", "judges nothing"),
])
def test_every_bad_value_names_its_exact_key(base, path, value, key, words):
    with pytest.raises(ConfigError) as caught:
        parse_metric_gates([with_(base, path, value)])
    message = str(caught.value)
    assert f"`{key}" in message and words in message, message
    assert caught.value.exit_code is ExitCode.BAD_INPUT


def test_errors_in_later_items_name_their_index_and_typos_get_a_suggestion():
    with pytest.raises(ConfigError, match=r"`gates\.metrics\[1\]\.max` must be a finite number"):
        parse_metric_gates([copy.deepcopy(ALB), with_(PROM, "max", float("nan"))])
    with pytest.raises(ConfigError) as caught:
        parse_metric_gates([with_(ALB, "failure_limt", 2)])
    assert caught.value.hint == "did you mean `gates.metrics[0].failure_limit`?"
    with pytest.raises(ConfigError) as caught:
        parse_metric_gates([with_(ALB, "preset", "alb_5xx_ration")])
    assert caught.value.hint == "did you mean alb_5xx_ratio?"


def test_names_are_unique_and_the_list_is_a_list():
    with pytest.raises(ConfigError, match=r"`gates\.metrics\[1\]\.name` 'alb-5xx' is already used by `gates\.metrics\[0\]`"):
        gates(ALB, ALB)
    with pytest.raises(ConfigError, match=r"`gates\.metrics` must be a list"):
        parse_metric_gates({"name": "x"})
    with pytest.raises(ConfigError, match=r"`gates\.metrics\[0\]` must be a mapping"):
        parse_metric_gates(["alb-5xx"])


def test_a_prometheus_query_may_use_per_side_keys_only_when_every_side_gives_them():
    raw = with_(PROM, "query", 'up{namespace="{{ns}}", cluster="{{cluster}}"}')
    with pytest.raises(ConfigError, match=r"`gates\.metrics\[0\]\.query` uses unknown placeholder \{\{ns\}\}"):
        gates(raw)
    raw["sides"] = {"green": {"ns": "shop-green"}}
    with pytest.raises(ConfigError, match=r"`gates\.metrics\[0\]\.sides\.blue\.ns` is required"):
        gates(raw)
    raw["sides"]["blue"] = {"ns": "shop-blue", "cluster": "eks-old"}
    (spec,) = gates(raw)
    assert spec.query_for("green", "eks-green") == 'up{namespace="shop-green", cluster="eks-green"}'
    assert spec.query_for("blue", "eks-blue") == 'up{namespace="shop-blue", cluster="eks-old"}'


def test_placeholders_are_substituted_per_side():
    (spec,) = gates(with_(PROM, "query", 'rate(x{cluster="{{ cluster }}",side="{{side}}"}[{{window}}])'))
    assert spec.query_for("green", "eks-blueprint-green") == 'rate(x{cluster="eks-blueprint-green",side="green"}[60s])'
    (alb,) = gates(with_(ALB, "sides.green.LoadBalancer", "app/k8s-{{side}}/789"))
    assert alb.dimensions_for("green", "eks-green") == \
        {"LoadBalancer": "app/k8s-green/789", "TargetGroup": "targetgroup/k8s-green/abc"}


def test_presets_use_the_elb_metric_names_and_dimensions():
    assert PRESETS["alb_5xx_ratio"].describe() == "HTTPCode_Target_5XX_Count (Sum) / RequestCount (Sum)"
    assert PRESETS["alb_5xx_ratio"].namespace == "AWS/ApplicationELB"
    assert PRESETS["alb_5xx_ratio"].dimensions == ("LoadBalancer", "TargetGroup")
    assert PRESETS["alb_p95_target_response_time"].describe() == "TargetResponseTime (p95)"
    nlb = PRESETS["nlb_reset_ratio"]
    assert (nlb.namespace, nlb.describe(), nlb.dimensions) == \
        ("AWS/NetworkELB", "TCP_Target_Reset_Count (Sum) / NewFlowCount (Sum)", ("LoadBalancer",))
    # An NLB gate needs only each side's LoadBalancer (TCP_Target_Reset_Count has no TargetGroup dimension).
    raw = {"name": "nlb", "provider": "cloudwatch", "preset": "nlb_reset_ratio", "max": 0.05, "window": "3m",
           "sides": {"blue": {"LoadBalancer": "net/k8s-blue/1"}, "green": {"LoadBalancer": "net/k8s-green/2"}}}
    assert gates(raw)[0].dimensions_for("blue", "x") == {"LoadBalancer": "net/k8s-blue/1"}


def test_alarms_parse_and_refuse_bad_names():
    spec = parse_alarms({"green": ["burnham-green-5xx"], "blue": "burnham-blue-5xx", "interval": "15s"})
    assert spec.alarms == {"green": ("burnham-green-5xx",), "blue": ("burnham-blue-5xx",)} and spec.interval == 15.0
    assert parse_alarms({"green": []}) is None
    for raw, key in [({"green": [""]}, "gates.alarms.green[0]"), ({"green": ["a", "a"]}, "gates.alarms.green[1]"),
                     ({"green": {"a": 1}}, "gates.alarms.green"), ({"purple": ["a"]}, "gates.alarms.purple"),
                     ({"green": ["a"], "interval": float("nan")}, "gates.alarms.interval"),
                     ({"green": ["x" * 256]}, "gates.alarms.green[0]"), (["a"], "gates.alarms")]:
        with pytest.raises(ConfigError) as caught:
            parse_alarms(raw)
        assert f"`{key}" in str(caught.value), (raw, str(caught.value))


# -- the runner ------------------------------------------------------------------------------------------
def test_every_gate_is_due_at_the_start_then_every_interval_after_its_last_measurement():
    alb, p95 = gates(ALB, with_(PROM, "interval", "10s"))
    runner = MetricGateRunner([alb, p95], started_at=100.0)
    assert runner.due(100.0) == (alb, p95) and runner.next_due() == 100.0
    assert runner.sides_to_measure(alb) == ("green", "blue") and runner.sides_to_measure(p95) == ("green",)
    runner.record("alb-5xx", {"green": Reading.of(0.0), "blue": Reading.of(0.0)}, at=101.0)
    runner.record("p95", {"green": Reading.of(0.1)}, at=102.0)
    assert runner.due(111.9) == () and runner.next_due() == 112.0
    assert runner.due(112.0) == (p95,)
    assert runner.due(131.0) == (alb, p95)


def test_failures_count_up_to_the_failure_limit_then_fail_the_gate():
    (alb,) = gates(ALB)  # failure_limit 1: one failed measurement is tolerated, the second fails
    runner = MetricGateRunner([alb], started_at=0.0)
    bad = {"green": Reading.of(0.12), "blue": Reading.of(0.0)}
    assert runner.record("alb-5xx", bad, at=0.0).outcome is MeasurementOutcome.FAILED
    first = runner.verdict()
    assert first.outcome is GateOutcome.PASSING and not first.failed
    assert first.gates[0].reason.endswith("(1 failed, failure_limit 1)")
    runner.record("alb-5xx", bad, at=30.0)
    verdict = runner.verdict()
    assert verdict.failed
    assert verdict.reasons == ("alb-5xx: green 0.12 > max 0.01; green 0.12 > blue 0 + 0.005 "
                               "(2 failed of 2, failure_limit 1)",)
    assert runner.due(1e9) == () and runner.next_due() is None  # a failed gate is not measured again


def test_a_passing_measurement_shows_the_value_and_the_rule():
    (alb,) = gates(ALB)
    runner = MetricGateRunner([alb], started_at=0.0)
    runner.record("alb-5xx", {"green": Reading.of(0.002), "blue": Reading.of(0.001)}, at=0.0)
    gate = runner.verdict().gates[0]
    assert gate.outcome is GateOutcome.PASSING
    assert gate.reason == "alb-5xx: green 0.002 (max 0.01, max increase over the other side 0.005); blue 0.001"


def test_green_worse_than_blue_fails_even_under_max():
    (alb,) = gates(with_(ALB, "max", 0.5))
    runner = MetricGateRunner([alb], started_at=0.0)
    m = runner.record("alb-5xx", {"green": Reading.of(0.2), "blue": Reading.of(0.01)}, at=0.0)
    assert m.outcome is MeasurementOutcome.FAILED and m.reason == "green 0.2 > blue 0.01 + 0.005"


@pytest.mark.parametrize("policy, outcome, gate", [
    ("inconclusive", MeasurementOutcome.INCONCLUSIVE, GateOutcome.INCONCLUSIVE),
    ("fail", MeasurementOutcome.FAILED, GateOutcome.FAILED),
    ("pass", MeasurementOutcome.PASSED, GateOutcome.PASSING),
])
def test_no_data_follows_the_policy(policy, outcome, gate):
    (spec,) = gates(with_(PROM, "no_data", policy))
    runner = MetricGateRunner([spec], started_at=0.0)
    assert runner.record("p95", {"green": Reading.no_data("empty result")}, at=0.0).outcome is outcome
    assert runner.verdict().outcome is gate


def test_a_source_error_is_a_failed_measurement_with_its_reason():
    (spec,) = gates(PROM)
    runner = MetricGateRunner([spec], started_at=0.0)
    runner.record("p95", {"green": Reading.failed("prometheus at http://p:9090 unreachable: ConnectionError "
                                                   "(5 attempts in 20s, retry budget 20s)")}, at=0.0)
    assert runner.verdict().reasons == (
        "p95: green: prometheus at http://p:9090 unreachable: ConnectionError (5 attempts in 20s, retry budget 20s) "
        "(1 failed of 1, failure_limit 0)",)


def test_blue_without_data_leaves_the_max_to_judge_and_blue_errors_fail():
    (alb,) = gates(with_(ALB, "failure_limit", 0))
    runner = MetricGateRunner([alb], started_at=0.0)
    quiet = runner.record("alb-5xx", {"green": Reading.of(0.0), "blue": Reading.no_data()}, at=0.0)
    assert quiet.outcome is MeasurementOutcome.PASSED and quiet.reason.endswith("blue has no data to compare with")
    broken = runner.record("alb-5xx", {"green": Reading.of(0.0), "blue": Reading.failed("Throttling")}, at=30.0)
    assert broken.outcome is MeasurementOutcome.FAILED and broken.reason == "blue (reference): Throttling"
    # With only a comparison and nothing to compare with, the measurement proves nothing.
    (only_compare,) = gates(with_(ALB, "max", ...))
    runner = MetricGateRunner([only_compare], started_at=0.0)
    m = runner.record("alb-5xx", {"green": Reading.of(0.3), "blue": Reading.no_data()}, at=0.0)
    assert m.outcome is MeasurementOutcome.INCONCLUSIVE


def test_observe_only_gates_are_reported_never_counted():
    alb, p95 = gates(with_(ALB, "failure_limit", 0), with_(PROM, "observe_only", True))
    runner = MetricGateRunner([alb, p95], started_at=0.0)
    runner.record("alb-5xx", {"green": Reading.of(0.0), "blue": Reading.of(0.0)}, at=0.0)
    runner.record("p95", {"green": Reading.of(3.0)}, at=0.0)
    verdict = runner.verdict()
    assert verdict.outcome is GateOutcome.PASSING and verdict.reasons == ()
    assert verdict.gates[1].failed and verdict.gates[1].reason.endswith("[observe only]")


def test_the_verdict_is_inconclusive_until_every_gate_was_measured():
    alb, p95 = gates(ALB, PROM)
    runner = MetricGateRunner([alb, p95], started_at=0.0)
    assert runner.verdict().outcome is GateOutcome.INCONCLUSIVE
    assert runner.verdict().gates[0].reason == "alb-5xx: not measured yet"
    assert MetricGateRunner([], started_at=0.0).verdict().outcome is GateOutcome.PASSING


def test_a_shift_towards_blue_judges_blue_against_green():
    (alb,) = gates(with_(ALB, "failure_limit", 0))
    runner = MetricGateRunner([alb], started_at=0.0, target="blue")
    assert runner.sides_to_measure(alb) == ("blue", "green")
    runner.record("alb-5xx", {"blue": Reading.of(0.2), "green": Reading.of(0.0)}, at=0.0)
    assert runner.verdict().reasons[0].startswith("alb-5xx: blue 0.2 > max 0.01; blue 0.2 > green 0 + 0.005")


def test_alarms_of_the_target_fail_and_the_other_sides_are_only_reported():
    spec = parse_alarms({"green": ["g-5xx", "g-latency"], "blue": ["b-5xx"]})
    runner = MetricGateRunner([spec], started_at=0.0)
    assert runner.sides_to_measure(spec) == ("green", "blue")
    calm = runner.record(spec.name, {"green": Reading.of(0), "blue": Reading.of(1, detail="b-5xx")}, at=0.0)
    assert calm.outcome is MeasurementOutcome.PASSED
    assert calm.reason == "green: 2 alarm(s) not in ALARM; blue (reported only) alarm in ALARM: b-5xx"
    runner.record(spec.name, {"green": Reading.of(1, detail="g-latency"), "blue": Reading.of(0)}, at=30.0)
    assert runner.verdict().reasons == (
        "cloudwatch-alarms: green alarm in ALARM: g-latency (1 failed of 2, failure_limit 0)",)
    assert parse_alarms({"blue": ["b"]}).sides_to_measure("green") == ("blue",)


def test_the_verdict_is_plain_data_for_the_journal_and_notifications():
    (alb,) = gates(ALB)
    runner = MetricGateRunner([alb], started_at=0.0)
    runner.record("alb-5xx", {"green": Reading.of(0.5, detail="10/20"), "blue": Reading.no_data("no RequestCount")},
                  at=0.0)
    data = json.loads(json.dumps(runner.verdict().as_dict()))
    assert data["gates"][0]["last"]["readings"]["green"] == {"value": 0.5, "detail": "10/20"}
    assert data["gates"][0]["failures"] == 1 and data["outcome"] == "passing"


# -- headers from the environment (adapter helper, no I/O) ------------------------------------------------
def test_headers_parse_from_json_or_lines_and_errors_never_quote_values():
    assert parse_headers('{"Authorization": "Bearer abc"}') == {"Authorization": "Bearer abc"}
    assert parse_headers("Authorization: Bearer abc\n\nX-Scope-OrgID: team-a\n") == \
        {"Authorization": "Bearer abc", "X-Scope-OrgID": "team-a"}
    for bad in ("Bearer s3cret", '{"Authorization": 5}', '{"s3cret"', "Auth orization: s3cret"):
        with pytest.raises(ValueError) as caught:
            parse_headers(bad)
        assert "s3cret" not in str(caught.value)


def test_measure_due_asks_the_source_for_each_due_gate_and_side_then_records():
    from bluegreen.core.metric_gates import measure_due

    class Source:
        def __init__(self):
            self.calls = []

        def measure(self, spec, side, end):
            self.calls.append((spec.name, side, end))
            return Reading.of(0.5 if side == "green" else 0.0)

    alb, p95 = gates(ALB, PROM)
    runner, source = MetricGateRunner([alb, p95], started_at=0.0), Source()
    first = measure_due(runner, source, now=0.0, wall=1_800_000_000.0)
    assert source.calls == [("alb-5xx", "green", 1_800_000_000.0), ("alb-5xx", "blue", 1_800_000_000.0),
                            ("p95", "green", 1_800_000_000.0)]
    assert [m.outcome for m in first] == [MeasurementOutcome.FAILED, MeasurementOutcome.PASSED]
    assert measure_due(runner, source, now=10.0, wall=1_800_000_010.0) == [] and len(source.calls) == 3
