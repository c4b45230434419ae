"""End to end against the embedded sandbox, in real (short) time: the real CLI, moto over HTTP, the
weighted DNS server and the two backends on 127.0.0.2 / 127.0.0.3."""

from __future__ import annotations

import io
import json

import pytest
import yaml

from bluegreen.cli import Environment, main

pytestmark = pytest.mark.sandbox


def _run(sandbox, tmp_path, *argv, config=None, on_event=None):
    path = tmp_path / "bluegreen.yaml"
    path.write_text(yaml.safe_dump(config or sandbox.config_dict()))
    out, err = io.StringIO(), io.StringIO()
    env = Environment(stdout=out, stderr=err, on_event=on_event, install_signal_handlers=False)
    code = main([*argv, "--config", str(path), "--output", "json", "--log-format", "json"], env)
    return code, out.getvalue(), err.getvalue()


def test_full_shift_ends_on_green_with_observed_share_following_the_weights(shared_sandbox, tmp_path):
    config = shared_sandbox.config_dict(steps=[0, 50, 100], bake="2s", ttl_margin="300ms")
    code, out, err = _run(shared_sandbox, tmp_path, "shift", "--to", "green", config=config)
    assert code == 0, err
    result = json.loads(out)
    assert result["outcome"] == "completed"
    assert set(shared_sandbox.weights().values()) == {(0, 100)}
    share = [s["probes"]["public"]["cluster_share_percent"] for s in result["steps"]]
    assert share[0] == {"eks-blueprint-blue": 100.0}  # 0%: every answer from blue
    assert 20 <= share[1].get("eks-blueprint-green", 0) <= 80  # 50%: both clusters answer
    # 100%: green, but for answers cached during the first TTL after the change (the TTL is 1 s)
    assert share[2].get("eks-blueprint-green", 0) >= 60
    assert all(s["probes"]["green-direct"]["cluster_share_percent"] == {"eks-blueprint-green": 100.0}
               for s in result["steps"])
    assert shared_sandbox.green.requests > 0 and shared_sandbox.blue.requests > 0


def test_green_failing_at_10_percent_rolls_back_to_blue_and_exits_3(shared_sandbox, tmp_path):
    def break_green(event):
        if event.kind == "step_started" and event.data["step"] == "10%":
            shared_sandbox.fail_green("error")

    config = shared_sandbox.config_dict(steps=[0, 10, 50, 100], bake="3s", ttl_margin="300ms")
    code, out, err = _run(shared_sandbox, tmp_path, "shift", "--to", "green", config=config, on_event=break_green)
    assert code == 3, err
    result = json.loads(out)
    assert result["outcome"] == "rolled_back" and "green-direct" in result["reason"]
    assert [s["percent"] for s in result["steps"]] == [0, 10]  # never went past 10%
    assert set(shared_sandbox.weights().values()) == {(100, 0)}
    assert "rolled_back" in err


def test_slow_green_fails_the_latency_gate(shared_sandbox, tmp_path):
    shared_sandbox.fail_green("slow", delay=0.6)
    config = shared_sandbox.config_dict(steps=[10, 100], bake="3s", ttl_margin="0s",
                                        gates={"max_p95_latency": "300ms", "min_samples": 5,
                                               "max_consecutive_failures": 3, "min_success_ratio": 0.9})
    code, out, err = _run(shared_sandbox, tmp_path, "shift", "--to", "green", config=config)
    assert code == 3, err
    assert "p95 latency" in json.loads(out)["reason"]
    assert set(shared_sandbox.weights().values()) == {(100, 0)}


def test_throttling_in_front_of_moto_is_retried(shared_sandbox, tmp_path):
    from bluegreen.sandbox.faults import ThrottlingProxy

    with ThrottlingProxy(shared_sandbox.endpoint_url, fail_first=3) as proxy:
        config = shared_sandbox.config_dict(steps=[50, 100], bake="0s", ttl_margin="0s",
                                            endpoint_url=proxy.endpoint_url)
        config["probes"] = []
        code, out, err = _run(shared_sandbox, tmp_path, "shift", "--to", "green", config=config)
        proxy.fail_next(2, code="PriorRequestNotComplete", operation="ChangeResourceRecordSets")
        code2, out2, err2 = _run(shared_sandbox, tmp_path, "rollback", config=config)
        assert sum(proxy.failures.values()) == 5 and proxy.failures["ChangeResourceRecordSets"] == 2
    assert code == 0, err
    assert err.count("route53_retry") >= 3 and "Throttling" in err
    assert code2 == 0, err2
    assert "PriorRequestNotComplete" in err2
    assert set(shared_sandbox.weights().values()) == {(100, 0)}


def test_demo_shows_the_automatic_rollback(tmp_path):
    out, err = io.StringIO(), io.StringIO()
    code = main(["demo", "--fail-green"], Environment(stdout=out, stderr=err, install_signal_handlers=False))
    assert code == 3, err.getvalue()
    text = out.getvalue()
    assert "$ bluegreen shift --to green" in text and "outcome: rolled_back" in text
    assert "traffic went back to blue by itself" in text


def test_demo_runs_the_whole_cutover(tmp_path):
    out, err = io.StringIO(), io.StringIO()
    code = main(["demo"], Environment(stdout=out, stderr=err, install_signal_handlers=False))
    assert code == 0, err.getvalue()
    text = out.getvalue()
    assert "outcome: completed" in text
    assert "sandbox stopped; nothing is left running." in text
    assert text.rstrip().splitlines()[-1].startswith("the run's report: ")  # its path, the last line
    final_status = text.split("$ bluegreen status")[-1]
    assert final_status.count("0% / 100%") == 2  # both demo records all on green
