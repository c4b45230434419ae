"""Trustworthy verdicts against real parts: the weighted DNS server, a caching resolver in front of it (and a
real unbound where installed), Route 53 changes that stay PENDING, aliases to load balancers with health,
the real CLI. Each scenario is one a real resolver or Route 53 made the old verdict get wrong."""

from __future__ import annotations

import io
import json
import shutil

import pytest
import yaml

from bluegreen.cli import Environment, main

pytestmark = pytest.mark.sandbox

RECORDS = ("burnham.example.com",)


def _shift(sb, tmp_path, config, *, on_event=None, argv=("shift", "--to", "green")):
    path = tmp_path / "bluegreen.yaml"
    config = dict(config)
    config["state"] = {"path": str(tmp_path / "state.db")}
    path.write_text(yaml.safe_dump(config))
    out, err = io.StringIO(), io.StringIO()
    env = Environment(stdout=out, stderr=err, on_event=on_event, install_signal_handlers=False)
    code = main([*argv, "--config", str(path), "--output", "json", "--log-format", "json"], env)
    return code, (json.loads(out.getvalue()) if out.getvalue().strip() else {}), err.getvalue()


def _break_green_at(sb, percent: str):
    def on_event(event):
        if event.kind == "step_started" and event.data.get("step") == percent:
            sb.fail_green("error")
    return on_event


def _public_only(sb, **overrides):
    config = sb.config_dict(steps=[10, 100], bake="3s", ttl_margin="200ms", green_direct=False, **overrides)
    config["gates"] = {"min_samples": 20, "max_consecutive_failures": 3}
    return config


def test_a_broken_green_at_10_percent_behind_the_caching_resolver_is_caught_at_10(tmp_path):
    from bluegreen.sandbox import Sandbox

    with Sandbox(records=RECORDS, ttl=1) as sb:
        config = _public_only(sb, via_caching_resolver=True)
        code, result, err = _shift(sb, tmp_path, config, on_event=_break_green_at(sb, "10%"))
        assert code == 3, err
        assert result["outcome"] == "rolled_back" and result["steps"][-1]["percent"] == 10
        assert "public@green" in result["reason"] and "green" in result["reason"]
        assert set(sb.weights().values()) == {(100, 0)}


def test_the_same_through_a_real_unbound(tmp_path):
    if shutil.which("unbound") is None:
        pytest.skip("unbound is not installed: apt-get install unbound (CI installs it)")
    from bluegreen.sandbox import Sandbox

    with Sandbox(records=RECORDS, ttl=1, unbound=True) as sb:
        config = _public_only(sb)
        config["probes"][0]["resolver"] = sb.unbound_address
        config["probes"][0].pop("nameserver", None)
        code, result, err = _shift(sb, tmp_path, config, on_event=_break_green_at(sb, "10%"))
        assert code == 3, err
        assert result["steps"][-1]["percent"] == 10
        assert set(sb.weights().values()) == {(100, 0)}


def test_a_dead_green_never_completes(tmp_path):
    """The old verdict: a keep-alive probe stayed on blue and a shift completed onto a dead green."""
    from bluegreen.sandbox import Sandbox

    with Sandbox(records=RECORDS, ttl=1) as sb:
        sb.green.stop()  # nothing listens on green's address any more
        config = _public_only(sb, via_caching_resolver=True)
        config["probes"][0]["direct_sides"] = False  # the public probe alone, as a client sees it
        config["shift"]["steps"] = [100]
        code, result, err = _shift(sb, tmp_path, config)
        assert code == 3, err
        assert result["outcome"] == "rolled_back" and set(sb.weights().values()) == {(100, 0)}


def test_green_unhealthy_behind_its_alias_fails_the_step_because_traffic_did_not_move(tmp_path):
    from bluegreen.sandbox import Sandbox

    with Sandbox(records=RECORDS, ttl=1, alias=True) as sb:
        sb.load_balancer("green").healthy = False  # Route 53 skips green: 50% still sends nothing there
        config = sb.config_dict(steps=[50, 100], bake="4s", ttl_margin="200ms", green_direct=False,
                                alias_ttl=1)
        config["probes"][0].update(max_connection_age="100ms")
        code, result, err = _shift(sb, tmp_path, config)
        assert code == 3, err
        # At 50% five DNS draws (one per alias TTL) seeing no green is still plausible (3%); at 100% it is not.
        assert "traffic did not move: green received nothing, expected" in result["reason"]
        assert set(sb.weights().values()) == {(100, 0)}


def test_a_weight_written_back_during_the_hold_is_named(tmp_path):
    from bluegreen.sandbox import Sandbox

    with Sandbox(records=RECORDS, ttl=1) as sb:
        def on_event(event):
            if event.kind == "weights_changed" and event.data.get("step") == "10%":
                sb.set_weights(100, 0)  # terraform apply / external-dns puts the old weight back
        config = sb.config_dict(steps=[10, 100], bake="2s", ttl_margin="200ms")
        code, result, err = _shift(sb, tmp_path, config, on_event=on_event)
        assert code == 5, err
        assert "live weights are blue=100 green=0, but this run last wrote blue=90 green=10" in result["reason"]


def test_pending_changes_are_waited_for(tmp_path):
    from bluegreen.sandbox import Sandbox

    with Sandbox(records=RECORDS, ttl=1, pending_seconds=0.5) as sb:
        config = sb.config_dict(steps=[100], bake="500ms", ttl_margin="100ms")
        events = []
        code, result, err = _shift(sb, tmp_path, config, on_event=events.append)
        assert code == 0, err
        changed = [e.data for e in events if e.kind == "weights_changed"]
        assert changed and changed[0]["insync_seconds"] >= 0.4  # PENDING, then INSYNC, as Route 53 does


def test_verify_refuses_a_deployment_mid_rollout(tmp_path):
    from bluegreen.sandbox import Sandbox

    with Sandbox(records=RECORDS, ttl=1, clusters=True) as sb:
        code, _, err = _shift(sb, tmp_path, sb.config_dict(), argv=("verify", "--cluster", "green"))
        assert code == 0, err
        sb.green_rolling_out(updated=1, replicas=2)
        path = tmp_path / "bluegreen.yaml"
        out, err_io = io.StringIO(), io.StringIO()
        code = main(["verify", "--cluster", "green", "--config", str(path), "--output", "json"],
                    Environment(stdout=out, stderr=err_io, install_signal_handlers=False))
        assert code == 3
        assert "rolling out: 1 of 2 updated" in out.getvalue()


def test_a_probe_on_the_system_resolver_and_a_dead_green_rolls_back(tmp_path):
    """The default probe (no `resolver`: the system's) behind a caching resolver: the bug was a keep-alive
    connection that never resolved again, so the shift completed onto a dead green. The probe runs in a
    process of its own whose /etc/resolv.conf names a caching resolver in front of the sandbox's DNS
    (a private mount namespace: nothing on the machine changes)."""
    import os
    import subprocess
    import sys

    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare to give the shift its own /etc/resolv.conf")
    from bluegreen.sandbox import Sandbox
    from bluegreen.sandbox.caching_resolver import CachingResolver

    with Sandbox(records=RECORDS, ttl=1) as sb:
        try:
            resolver = CachingResolver(sb.dns_address, host="127.0.0.54", port=53).start()
        except OSError as error:
            pytest.skip(f"cannot listen on 127.0.0.54:53 for the stand-in system resolver: {error}")
        try:
            sb.green.stop()  # nothing answers on green's address
            config = sb.config_dict(steps=[100], bake="3s", ttl_margin="200ms", green_direct=False)
            probe = config["probes"][0]
            probe.pop("nameserver", None)  # the system resolver, as the service's clients use
            probe["direct_sides"] = False  # only what DNS gives it
            config["state"] = {"path": str(tmp_path / "state.db")}
            path = tmp_path / "bluegreen.yaml"
            path.write_text(yaml.safe_dump(config))
            resolv = tmp_path / "resolv.conf"
            resolv.write_text("nameserver 127.0.0.54\noptions timeout:1 attempts:2\n")
            script = (f"mount --bind {resolv} /etc/resolv.conf && exec {sys.executable} -m bluegreen shift "
                      f"--to green --config {path} --output json --log-format json")
            env = dict(os.environ, **sb.aws_environ())
            proc = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True,
                                  env=env, timeout=120)
        finally:
            resolver.stop()
        assert proc.returncode == 3, proc.stderr[-2000:]
        result = json.loads(proc.stdout)
        assert result["outcome"] == "rolled_back" and "connection refused" in result["reason"]
        assert set(sb.weights().values()) == {(100, 0)}
