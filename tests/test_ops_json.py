"""Every command's ``--output json`` is exactly one JSON document on stdout, and every log line of a run
carries ``run_id`` and ``migration`` (issue 11, "Logs and JSON"). The real CLI, in-process, against a moto
server over HTTP and the emulated clusters."""

from __future__ import annotations

import io
import json
import sys

import pytest
import yaml

from bluegreen.cli import Environment, main
from tests.support.blueprint_clusters import both


def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), Environment(stdout=out, stderr=err, environ={}, install_signal_handlers=False))
    return code, out.getvalue(), err.getvalue()


def config_file(tmp_path, moto_endpoint, zone, record, kube=None, **sections):
    raw = {
        "name": "burnham",
        "aws": {"region": "us-east-1", "endpoint_url": moto_endpoint},
        "route": {"hosted_zone": zone.name, "records": [record], "blue": "eks-blueprint-blue",
                  "green": "eks-blueprint-green"},
        "shift": {"steps": [0, 10, 50, 100], "bake": "0s", "ttl_margin": "0s", "check_interval": "50ms"},
        "state": {"path": str(tmp_path / "state.db")},
        **sections,
    }
    if kube is not None:
        path = str(kube.kubeconfig)
        raw["clusters"] = {"blue": {"kubeconfig": path, "context": "blue", "name": "eks-blueprint-blue"},
                           "green": {"kubeconfig": path, "context": "green", "name": "eks-blueprint-green"}}
        raw["verify"] = {"workload_namespaces": ["team-burnham"]}
    path = tmp_path / "bluegreen.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def one_document(stdout: str):
    """The whole of stdout parses as one JSON document (json.loads refuses trailing text)."""
    return json.loads(stdout)


def test_every_command_prints_exactly_one_json_document(tmp_path, moto_endpoint, zone, kube):
    both(kube)
    app = zone.weighted_pair("app", ttl=0)
    path = str(config_file(tmp_path, moto_endpoint, zone, app, kube=kube,
                           provision={"command": f"{sys.executable} -c \"print('terraform: apply complete')\""}))
    common = ("--config", path, "--output", "json", "--log-format", "json")
    results = {}
    for argv in (["init-state"], ["status"], ["verify"], ["provision", "--dry-run"], ["rollback", "--to", "green"],
                 ["rollback", "--to", "green"], ["rollback", "--to", "blue", "--dry-run"], ["history"]):
        code, out, err = run(*argv, *common)
        assert code in (0, 3), (argv, code, err)
        results[" ".join(argv)] = one_document(out)
    assert results["init-state"]["backend"] == "sqlite"
    assert results["status"]["records"][0]["weights"] == {"blue": 100, "green": 0}
    assert results["verify"]["ready"] is True
    # The first rollback moved traffic (the results dict keeps the second, which found nothing to do).
    again = results["rollback --to green"]
    assert again["before"] == again["weights"] == {"blue": 0, "green": 100} and again["changed"] is False
    assert results["rollback --to blue --dry-run"]["before"] == {"blue": 0, "green": 100}
    runs = results["history"]
    assert isinstance(runs, list) and runs
    code, out, _ = run("history", runs[0]["run_id"], *common)
    assert code == 0 and one_document(out)["run_id"] == runs[0]["run_id"]


def json_lines(stderr: str) -> list[dict]:
    return [json.loads(line) for line in stderr.splitlines() if line.strip()]


def test_every_log_line_of_a_run_carries_run_id_and_migration(tmp_path, moto_endpoint, zone):
    app = zone.weighted_pair("app", ttl=0)
    path = str(config_file(tmp_path, moto_endpoint, zone, app))
    code, out, err = run("shift", "--to", "green", "--config", path, "--output", "json", "--log-format", "json")
    assert code == 0, err
    lines = json_lines(err)
    assert len(lines) >= 4 and any(line["event"] == "weights_changed" for line in lines)
    assert all(line.get("migration") == "burnham" for line in lines), lines
    # Lines from before the lock (the plan, verify) have no run yet; every line from the run has its id.
    in_run = [line for line in lines if line["event"] in ("weights_changed", "step_passed", "shift_completed")]
    assert in_run and {line.get("run_id") for line in in_run} == {json.loads(out)["run_id"]}

    code, out, err = run("rollback", "--to", "blue", "--config", path, "--output", "json", "--log-format", "json")
    assert code == 0, err
    lines = json_lines(err)
    done = [line for line in lines if line["event"] == "rollback_done"]
    assert done and done[0]["migration"] == "burnham" and done[0]["run_id"]


def test_the_run_id_is_unbound_when_the_run_ends(tmp_path, moto_endpoint, zone):
    import structlog

    app = zone.weighted_pair("app", ttl=0)
    path = str(config_file(tmp_path, moto_endpoint, zone, app))
    code, _, err = run("rollback", "--to", "green", "--config", path, "--log-format", "json")
    assert code == 0, err
    assert "run_id" not in structlog.contextvars.get_contextvars()


def test_a_failed_command_logs_its_error_as_one_json_line(tmp_path):
    code, out, err = run("status", "--config", str(tmp_path / "missing.yaml"), "--output", "json",
                         "--log-format", "json")
    assert code == 2 and out == ""
    line, = json_lines(err)
    assert line["event"] == "error" and line["exit_code"] == 2 and "does not exist" in line["message"]


def test_a_refused_run_keeps_no_run_id_and_its_error_line_names_the_migration(tmp_path, moto_endpoint, zone):
    import structlog

    from bluegreen.adapters.state.sqlite import open_state_store
    from bluegreen.config import load_config
    from bluegreen.core.clock import SystemClock
    from bluegreen.core.state import Holder

    app = zone.weighted_pair("app", ttl=0)
    path = config_file(tmp_path, moto_endpoint, zone, app)
    config = load_config(path)
    store = open_state_store(config, SystemClock())
    lease = store.acquire("burnham", Holder.current(SystemClock(), run_id="other", command="shift"), 60)
    try:
        code, out, err = run("shift", "--to", "green", "--config", str(path), "--output", "json",
                             "--log-format", "json")
    finally:
        store.release(lease)
        store.close()
    assert code == 4 and out == ""
    assert "run_id" not in structlog.contextvars.get_contextvars()
    assert json_lines(err)[-1]["event"] == "error" and json_lines(err)[-1]["migration"] == "burnham"
