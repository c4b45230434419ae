"""`bluegreen init`: a starter config from the weighted pairs in Route 53 (a moto server over HTTP)."""

from __future__ import annotations

import io
import json

import pytest

from bluegreen.cli import Environment, main
from bluegreen.config import load_config
from bluegreen.config.starter import FoundPair, assign_sides, weighted_pair
from bluegreen.errors import ConfigError


def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), Environment(stdout=out, stderr=err, environ={}, install_signal_handlers=False))
    return code, out.getvalue(), err.getvalue()


def init(tmp_path, moto_endpoint, zone, *records, extra=(), name="bluegreen.yaml"):
    path = tmp_path / name
    argv = ["init", "--zone", zone.name, "--endpoint-url", moto_endpoint, "--region", "us-east-1",
            "--config", str(path), *extra]
    for record in records:
        argv += ["--record", record]
    return (*run(*argv), path)


def test_init_writes_a_config_that_loads_with_what_it_found(tmp_path, moto_endpoint, zone):
    app = zone.weighted_pair("app", blue=100, green=0, ttl=300)
    api = zone.weighted_pair("api", blue=100, green=0, ttl=300, rtype="AAAA", blue_value="::2", green_value="::3")
    code, out, err, path = init(tmp_path, moto_endpoint, zone, app, "api", extra=("--output", "json"))
    assert code == 0, err
    result = json.loads(out)
    assert result["blue"] == "eks-blueprint-blue" and result["green"] == "eks-blueprint-green"
    assert [r["name"] for r in result["records"]] == [app, api]
    assert result["records"][1]["types"] == ["AAAA"]
    config = load_config(path)
    assert config.name == "app" and config.route.hosted_zone == zone.name
    assert [r.name for r in config.route.records] == [app, api]
    assert (config.route.blue, config.route.green) == ("eks-blueprint-blue", "eks-blueprint-green")
    assert config.route.ttl == 60  # the records' 300 s is lowered during the cutover
    assert config.aws.endpoint_url == moto_endpoint and config.aws.region == "us-east-1"
    text = path.read_text()
    for section in ("aws:", "route:", "shift:", "probes:", "gates:", "state:", "# notifications:", "# clusters:",
                    "# verify:", "# preflight:", "# provision:"):
        assert f"\n{section}" in text, f"{section} missing from the starter config"
    assert "TTL 300s" in text and "eks-blueprint-blue=100, eks-blueprint-green=0" in text
    # and the next command finds the records with it
    code, out, err = run("status", "--config", str(path), "--output", "json")
    assert code == 0, err
    assert json.loads(out)["records"][0]["weights"] == {"blue": 100, "green": 0}


def test_init_refuses_to_overwrite_an_existing_file(tmp_path, moto_endpoint, zone):
    app = zone.weighted_pair("app")
    path = tmp_path / "bluegreen.yaml"
    path.write_text("name: mine\n")
    code, out, err, _ = init(tmp_path, moto_endpoint, zone, app)
    assert code == 2 and "already exists" in err and out == ""
    assert path.read_text() == "name: mine\n"


def test_init_refuses_a_record_that_is_not_a_weighted_pair(tmp_path, moto_endpoint, zone):
    app = zone.weighted_pair("app")
    simple = zone.fqdn("simple")
    zone.upsert({"Name": simple, "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": "127.0.0.2"}]})
    code, _, err, path = init(tmp_path, moto_endpoint, zone, app, simple)
    assert code == 2 and simple in err and "simple record" in err
    assert not path.exists()

    code, _, err, path = init(tmp_path, moto_endpoint, zone, app, zone.fqdn("absent"))
    assert code == 2 and zone.fqdn("absent") in err and "does not exist" in err and not path.exists()

    three = zone.weighted_pair("three")
    zone.upsert({"Name": three, "Type": "A", "SetIdentifier": "canary", "Weight": 5, "TTL": 60,
                 "ResourceRecords": [{"Value": "127.0.0.4"}]})
    code, _, err, _ = init(tmp_path, moto_endpoint, zone, three)
    assert code == 2 and three in err and "3 weighted record set(s)" in err

    failover = zone.fqdn("failover")
    zone.upsert({"Name": failover, "Type": "A", "SetIdentifier": "primary", "Failover": "PRIMARY", "TTL": 60,
                 "ResourceRecords": [{"Value": "127.0.0.2"}]},
                {"Name": failover, "Type": "A", "SetIdentifier": "secondary", "Failover": "SECONDARY", "TTL": 60,
                 "ResourceRecords": [{"Value": "127.0.0.3"}]})
    code, _, err, _ = init(tmp_path, moto_endpoint, zone, failover)
    assert code == 2 and failover in err and "Failover routing" in err


def test_init_refuses_records_that_use_different_identifiers(tmp_path, moto_endpoint, zone):
    app = zone.weighted_pair("app")
    other = zone.weighted_pair("other", blue_id="old", green_id="new")
    code, _, err, path = init(tmp_path, moto_endpoint, zone, app, other)
    assert code == 2 and "different SetIdentifiers" in err and not path.exists()


def test_init_picks_blue_from_the_traffic_when_the_names_do_not_say(tmp_path, moto_endpoint, zone):
    app = zone.weighted_pair("app", blue=0, green=100, blue_id="alpha", green_id="omega", ttl=30)
    code, out, err, path = init(tmp_path, moto_endpoint, zone, app)
    assert code == 0, err
    config = load_config(path)
    assert (config.route.blue, config.route.green) == ("omega", "alpha")  # omega holds the traffic now
    assert config.route.ttl is None  # 30 s is short already
    code, _, err, path2 = init(tmp_path, moto_endpoint, zone, app, extra=("--blue", "alpha"), name="two.yaml")
    assert code == 0, err
    assert (load_config(path2).route.blue, load_config(path2).route.green) == ("alpha", "omega")
    code, _, err, _ = init(tmp_path, moto_endpoint, zone, app, extra=("--blue", "nope"), name="three.yaml")
    assert code == 2 and "'nope' is not a SetIdentifier" in err


def test_an_external_dns_registry_record_is_not_a_side_and_is_flagged(tmp_path, moto_endpoint, zone):
    app = zone.weighted_pair("app")
    # external-dns (AWS provider) writes its TXT registry record with the owned record's SetIdentifier.
    heritage = '"heritage=external-dns,external-dns/owner=eks-blueprint-blue,external-dns/resource=ingress/a/b"'
    zone.upsert({"Name": app, "Type": "TXT", "SetIdentifier": "eks-blueprint-blue", "Weight": 100, "TTL": 300,
                 "ResourceRecords": [{"Value": heritage}]})
    code, _, err, path = init(tmp_path, moto_endpoint, zone, app)
    assert code == 0, err
    assert "external-dns owns" in path.read_text()
    assert load_config(path).route.driver == "route53"


def test_weighted_pair_rules_without_a_server():
    sets = [{"Name": "a.example.com.", "Type": "A", "SetIdentifier": s, "Weight": w, "TTL": t,
             "ResourceRecords": [{"Value": "192.0.2.1"}]} for s, w, t in (("x", 1, 60), ("y", 2, 300))]
    with pytest.raises(ConfigError, match="TTLs of its weighted records disagree"):
        weighted_pair("a.example.com", sets, "example.com")
    pair = FoundPair(name="a", types=("A",), weights={"green-x": 0, "blue-y": 100}, ttl=60, external_dns=False)
    assert assign_sides([pair]) == ("blue-y", "green-x")
