"""Every config mistake is refused at load, naming the key (exit 2), before any client exists. No server."""

from __future__ import annotations

import math

import pytest

from bluegreen.config import parse_config
from bluegreen.errors import ConfigError, ExitCode

BASE = {"name": "burnham", "route": {"hosted_zone": "example.com", "records": ["app.example.com"],
                                     "blue": "eks-blueprint-blue", "green": "eks-blueprint-green"}}


def with_(section: str, value) -> dict:
    raw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in BASE.items()}
    if section == "route":
        raw["route"] = {**raw["route"], **value}
    else:
        raw[section] = value
    return raw


NAN, INF = float("nan"), float("inf")
PROBE = {"name": "public", "url": "http://app.example.com/"}


@pytest.mark.parametrize("section,value,key", [
    # Non-finite numbers: a NaN bake holds forever, a NaN threshold never fails, a NaN interval crashes.
    ("shift", {"bake": NAN}, "shift.bake"),
    ("shift", {"bake": INF}, "shift.bake"),
    ("shift", {"ttl_margin": -1}, "shift.ttl_margin"),
    ("shift", {"check_interval": NAN}, "shift.check_interval"),
    ("gates", {"max_p95_latency": NAN}, "gates.max_p95_latency"),
    ("gates", {"min_success_ratio": NAN}, "gates.min_success_ratio"),
    ("gates", {"min_success_ratio": 1.5}, "gates.min_success_ratio"),
    ("gates", {"max_error_ratio_increase": INF}, "gates.max_error_ratio_increase"),
    ("gates", {"on_fail": "ignore"}, "gates.on_fail"),
    ("gates", {"observe": ["latency"]}, "gates.observe"),
    ("probes", [{**PROBE, "interval": NAN}], "probes[0].interval"),
    ("probes", [{**PROBE, "timeout": INF}], "probes[0].timeout"),
    ("probes", [{**PROBE, "max_connection_age": "forever"}], "probes[0].max_connection_age"),
    ("state", {"lease": NAN}, "state.lease"),
    ("state", {"lease": "1s"}, "state.lease"),
    ("aws", {"route53_requests_per_second": NAN}, "aws.route53_requests_per_second"),
    ("aws", {"route53_requests_per_second": 50}, "aws.route53_requests_per_second"),
    ("route", {"insync_timeout": INF}, "route.insync_timeout"),
    ("route", {"retry_timeout": 0}, "route.retry_timeout"),
    ("notifications", {"timeout": NAN}, "notifications.timeout"),
    # Probe URLs that only failed when the probe first ran.
    ("probes", [{**PROBE, "url": "http://app.example.com:99999/"}], "probes[0].url"),
    ("probes", [{**PROBE, "url": "http://app.example.com:abc/"}], "probes[0].url"),
    ("probes", [{**PROBE, "url": "ftp://app.example.com/"}], "probes[0].url"),
    ("probes", [{**PROBE, "resolver": "10.0.0.2:70000"}], "probes[0].resolver"),
    ("probes", [{**PROBE, "resolver": "10.0.0.2", "nameserver": "10.0.0.3"}], "probes[0]"),
    # Record names Route 53 refuses.
    ("route", {"records": ["bad name.example.com"]}, "route.records[0]"),
    ("route", {"records": ["a*b.example.com"]}, "route.records[0]"),
    ("route", {"records": ["x" * 64 + ".example.com"]}, "route.records[0]"),
    ("route", {"txt_prefix": "bad prefix"}, "route.txt_prefix"),
    ("aws", {"region": "mars"}, "aws.region"),
])
def test_bad_value_is_refused_naming_the_key(section, value, key):
    with pytest.raises(ConfigError) as caught:
        parse_config(with_(section, value))
    assert f"`{key}" in str(caught.value), str(caught.value)
    assert caught.value.exit_code == ExitCode.BAD_INPUT


def test_every_problem_is_listed_at_once():
    raw = with_("shift", {"bake": NAN})
    raw["gates"] = {"max_p95_latency": NAN}
    with pytest.raises(ConfigError) as caught:
        parse_config(raw)
    assert "2 problems" in str(caught.value)
    assert "shift.bake" in str(caught.value) and "gates.max_p95_latency" in str(caught.value)


def test_a_mistake_in_a_section_the_command_does_not_use_is_a_warning():
    raw = with_("notifications", {"webhook_env": "X", "events": ["rolledback"]})
    config = parse_config(raw, needs=("aws", "route", "state"))
    assert len(config.warnings) == 1 and "notifications" in config.warnings[0]
    with pytest.raises(ConfigError, match="rolled_back"):
        parse_config(raw)  # a command that uses everything (shift, --dry-run) refuses


def test_record_names_in_idna_and_route53_escapes():
    raw = with_("route", {"hosted_zone": "example.com", "records": ["Bücher.example.com.", "\\052.example.com"]})
    names = [r.name for r in parse_config(raw).route.records]
    assert names == ["xn--bcher-kva.example.com", "*.example.com"]


def test_defaults_are_finite_and_documented_limits_hold():
    config = parse_config(BASE)
    assert config.aws.route53_requests_per_second == 8.0  # below Route 53's 10/s account limit
    assert all(math.isfinite(v) for v in (config.shift.bake, config.gates.max_p95_latency, config.state.lease_seconds))
    assert config.gates.on_fail == "rollback" and config.gates.on_both_failing == "hold"
    assert config.probes == () and config.clusters is None


def test_context_alone_uses_the_default_kubeconfig():
    raw = dict(BASE, clusters={"blue": {"context": "blue"}, "green": {"context": "green"}})
    clusters = parse_config(raw).require_clusters()
    assert clusters.green.access.kubeconfig is None and clusters.green.access.context == "green"
    assert "$KUBECONFIG" in clusters.green.access.describe()


def test_this_file_runs_without_moto_or_any_sdk():
    """Config checks need no server: this module passes in a process where moto, boto3, botocore and the
    kubernetes client cannot be imported at all."""
    import subprocess
    import sys

    blocked = ("moto", "boto3", "botocore", "kubernetes")
    script = (f"import sys; sys.modules.update(dict.fromkeys({blocked!r})); import pytest; "
              f"sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', '-k', 'not without_moto', {__file__!r}]))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "skipped" not in done.stdout
