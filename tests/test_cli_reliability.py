"""The reliability holes found by driving the installed CLI with hostile configs and signals: each refusal
says what was wrong, exits with its code and changes nothing; the emergency exit always works."""

from __future__ import annotations

import io
import json
import threading

import pytest
import yaml

from bluegreen.cli import Environment, main

BLUE, GREEN = "eks-blueprint-blue", "eks-blueprint-green"


def write_config(tmp_path, endpoint, zone, records, **sections):
    config = {
        "name": "burnham",
        "aws": {"region": "us-east-1", "endpoint_url": endpoint},
        "route": {"hosted_zone": zone.name, "records": list(records), "blue": BLUE, "green": GREEN},
        "shift": {"steps": [0, 10, 50, 100], "bake": "0s", "ttl_margin": "0s", "check_interval": "50ms"},
        "state": {"path": str(tmp_path / "state.db")},
    }
    for section, value in sections.items():
        if isinstance(value, dict) and isinstance(config.get(section), dict):
            config[section] = {**config[section], **value}
        else:
            config[section] = value
    path = tmp_path / "bluegreen.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    return path


def run(*argv, stop: threading.Event | None = None, environ=None):
    out, err = io.StringIO(), io.StringIO()
    env = Environment(stdout=out, stderr=err, environ=environ or {}, install_signal_handlers=False)
    if stop is not None:
        env.stop = stop
    code = main(list(argv), env)
    return code, out.getvalue(), err.getvalue()


BROKEN_NOTIFICATIONS = {"webhook_env": "BG_HOOK", "events": ["rolledback"]}


def test_rollback_rolls_back_whatever_is_wrong_in_a_section_it_does_not_use(tmp_path, moto_endpoint, zone):
    app = zone.weighted_pair("app", 50, 50)
    path = write_config(tmp_path, moto_endpoint, zone, [app], notifications=BROKEN_NOTIFICATIONS)
    code, out, err = run("rollback", "--to", "blue", "--config", str(path), "--log-format", "json")
    assert code == 0, err
    assert zone.weights(app) == {BLUE: 100, GREEN: 0}
    assert "config_problem_ignored" in err and "notifications" in err


def test_shift_and_its_dry_run_refuse_the_same_config_before_anything(tmp_path, moto_endpoint, zone):
    app = zone.weighted_pair("app")
    path = write_config(tmp_path, moto_endpoint, zone, [app], notifications=BROKEN_NOTIFICATIONS)
    before = zone.dump()
    for extra in ((), ("--dry-run",)):
        code, _, err = run("shift", "--to", "green", "--config", str(path), *extra)
        assert code == 2 and "notifications.events" in err and "did you mean 'rolled_back'" in err
    assert zone.dump() == before
    code, out, _ = run("history", "--config", str(path), "--output", "json")
    assert code == 0 and json.loads(out) == []  # refused before the lock: no run journaled


@pytest.mark.parametrize("steps", ["", ",", " "])
def test_empty_steps_are_refused(tmp_path, moto_endpoint, zone, steps):
    app = zone.weighted_pair("app")
    path = write_config(tmp_path, moto_endpoint, zone, [app])
    before = zone.dump()
    code, _, err = run("shift", "--to", "green", "--steps", steps, "--config", str(path))
    assert code == 2 and "--steps" in err and zone.dump() == before


@pytest.mark.parametrize("section,value,key", [
    ("probes", [{"name": "p", "url": "http://app.example.com:99999/"}], "probes[0].url"),
    ("probes", [{"name": "p", "url": "http://app.example.com:abc/"}], "probes[0].url"),
    ("shift", {"bake": float("nan")}, "shift.bake"),
    ("gates", {"max_p95_latency": float("nan")}, "gates.max_p95_latency"),
    ("state", {"lease": float("nan")}, "state.lease"),
])
def test_bad_values_exit_2_naming_the_key_with_the_zone_untouched(tmp_path, moto_endpoint, zone, section, value,
                                                                   key):
    app = zone.weighted_pair("app")
    path = write_config(tmp_path, moto_endpoint, zone, [app], **{section: value})
    before = zone.dump()
    code, _, err = run("shift", "--to", "green", "--config", str(path))
    assert code == 2 and f"`{key}" in err, err
    assert zone.dump() == before


def test_an_internationalized_record_name_is_looked_up_in_idna(tmp_path, moto_endpoint, zone):
    zone.weighted_pair("xn--bcher-kva")
    path = write_config(tmp_path, moto_endpoint, zone, [f"bücher.{zone.name}"])
    code, out, err = run("status", "--config", str(path), "--output", "json")
    assert code == 0, err
    assert json.loads(out)["records"][0]["name"] == f"xn--bcher-kva.{zone.name}"


def test_a_signal_before_the_engine_starts_releases_the_lock_and_journals_it(tmp_path, moto_endpoint, zone):
    app = zone.weighted_pair("app")
    path = write_config(tmp_path, moto_endpoint, zone, [app])
    stop = threading.Event()
    stop.set()  # SIGTERM arrived while the plan was being made under the lock
    code, _, err = run("shift", "--to", "green", "--config", str(path), stop=stop)
    assert code == 1 and "nothing was changed" in err
    assert zone.weights(app) == {BLUE: 100, GREEN: 0}
    code, out, _ = run("history", "--config", str(path), "--output", "json")
    runs = json.loads(out)
    assert runs[0]["outcome"] == "interrupted" and runs[0]["exit_code"] == 1
    code, _, err = run("shift", "--to", "green", "--steps", "0", "--config", str(path))
    assert code == 0, err  # the lock was released: the next run takes it at once


def test_a_rollback_whose_weights_already_match_writes_nothing(tmp_path, moto_endpoint, zone):
    app = zone.weighted_pair("app")
    path = write_config(tmp_path, moto_endpoint, zone, [app])
    code, out, _ = run("rollback", "--to", "blue", "--config", str(path), "--output", "json")
    result = json.loads(out)
    assert code == 0 and result["changed"] is False and "nothing written" in result["message"]


def test_no_region_anywhere_is_exit_2_with_the_fix(tmp_path, moto_endpoint, zone, monkeypatch):
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)
    from bluegreen.adapters import aws

    aws._sessions.clear()
    app = zone.weighted_pair("app")
    path = write_config(tmp_path, moto_endpoint, zone, [app],
                        aws={"endpoint_url": moto_endpoint, "region": None},
                        state={"backend": "dynamodb", "table": "bg-state", "path": None})
    code, _, err = run("history", "--config", str(path))
    assert code == 2 and "no AWS region" in err and "AWS_REGION" in err
    aws._sessions.clear()


def test_no_credentials_is_exit_2_with_the_fix(tmp_path, moto_endpoint, zone, monkeypatch):
    app = zone.weighted_pair("app")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    from bluegreen.adapters import aws

    aws._sessions.clear()
    path = write_config(tmp_path, moto_endpoint, zone, [app])
    code, _, err = run("status", "--config", str(path))
    assert code == 2 and "no AWS credentials found" in err and "aws sso login" in err
    aws._sessions.clear()
