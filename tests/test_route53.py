"""The Route 53 router against a moto server over HTTP."""

from __future__ import annotations

import pytest

from bluegreen.config import AwsConfig, RecordRef, RouteConfig
from bluegreen.routers.route53 import Route53Router, split_batches
from bluegreen.core.clock import FakeClock
from bluegreen.core.weights import SideWeights
from bluegreen.errors import PreflightError, RouterError, WeightsChangedExternally


def _router(endpoint, zone_ref, *names, **route_kw):
    route = RouteConfig(driver="route53", hosted_zone=zone_ref, records=tuple(RecordRef(n) for n in names),
                        blue="eks-blueprint-blue", green="eks-blueprint-green", **route_kw)
    return Route53Router(route, AwsConfig(endpoint_url=endpoint, route53_requests_per_second=5.0), clock=FakeClock())


def test_read_reports_weights_ttl_and_values(moto_endpoint, zone):
    app = zone.weighted_pair("app", blue=100, green=0, ttl=300)
    api = zone.weighted_pair("api", blue=100, green=0, ttl=60)
    state = _router(moto_endpoint, zone.name, app, api).read()
    assert state.weights() == SideWeights(100, 0)
    assert state.plain_ttl() == 300
    assert {r.name: r.ttl for r in state.records} == {app: 300, api: 60}
    assert state.records[0].values == ("blue: 127.0.0.2", "green: 127.0.0.3")


def test_zone_can_be_named_by_id(moto_endpoint, zone):
    app = zone.weighted_pair("app")
    assert _router(moto_endpoint, zone.id, app).read().weights() == SideWeights(100, 0)


def test_set_is_one_change_per_zone_and_keeps_everything_but_weight(moto_endpoint, zone):
    app = zone.weighted_pair("app", ttl=120)
    api = zone.weighted_pair("api", ttl=120)
    zone.upsert({"Name": app, "Type": "A", "SetIdentifier": "eks-blueprint-green", "Weight": 0, "TTL": 120,
                 "ResourceRecords": [{"Value": "127.0.0.3"}, {"Value": "127.0.0.4"}],
                 "HealthCheckId": "11111111-2222-3333-4444-555555555555"})
    before = {(r["Name"], r.get("SetIdentifier")): r for r in zone.dump()}
    router = _router(moto_endpoint, zone.name, app, api)
    live = router.read()
    router.calls.clear()
    changes = router.set(SideWeights(90, 10), live=live)
    assert router.calls == {"change_resource_record_sets": 1} and len(changes) == 1
    router.verify(SideWeights(90, 10), changes)
    after = {(r["Name"], r.get("SetIdentifier")): r for r in zone.dump()}
    for key, rrset in before.items():
        expected = dict(rrset)
        if key[1] == "eks-blueprint-blue":
            expected["Weight"] = 90
        elif key[1] == "eks-blueprint-green":
            expected["Weight"] = 10
        assert after[key] == expected


def test_ttl_change_and_readback(moto_endpoint, zone):
    app = zone.weighted_pair("app", ttl=300)
    router = _router(moto_endpoint, zone.name, app)
    changes = router.set(SideWeights(100, 0), ttl=30)
    router.verify(SideWeights(100, 0), changes, ttl=30)
    assert router.read().plain_ttl() == 30


def test_verify_notices_weights_that_did_not_take(moto_endpoint, zone):
    app = zone.weighted_pair("app")
    router = _router(moto_endpoint, zone.name, app)
    changes = router.set(SideWeights(50, 50))
    zone.weighted_pair("app", blue=100, green=0)  # someone (external-dns) puts the old weights back
    with pytest.raises(WeightsChangedExternally, match="read-back"):
        router.verify(SideWeights(50, 50), changes)


def test_all_zero_is_refused_before_any_call(moto_endpoint, zone):
    app = zone.weighted_pair("app")
    router = _router(moto_endpoint, zone.name, app)
    router.read()
    before = zone.dump()
    with pytest.raises(RouterError, match="all-zero"):
        router.set(SideWeights(0, 0))
    assert zone.dump() == before


def test_records_in_several_zones_get_one_change_each(moto_endpoint, zone):
    from tests.support.moto_fixtures import Zone

    other = Zone(moto_endpoint)
    a = zone.weighted_pair("a")
    b = other.weighted_pair("b")
    route = RouteConfig(driver="route53", hosted_zone=zone.name, records=(RecordRef(a), RecordRef(b, other.name)),
                        blue="eks-blueprint-blue", green="eks-blueprint-green")
    router = Route53Router(route, AwsConfig(endpoint_url=moto_endpoint, route53_requests_per_second=5.0),
                           clock=FakeClock())
    router.read()
    changes = router.set(SideWeights(0, 100))
    assert len(changes) == 2
    router.verify(SideWeights(0, 100), changes)
    assert zone.weights(a) == other.weights(b) == {"eks-blueprint-blue": 0, "eks-blueprint-green": 100}


def test_many_records_are_listed_with_few_calls(moto_endpoint, zone):
    names = [zone.weighted_pair(f"r{i}") for i in range(30)]
    router = _router(moto_endpoint, zone.name, *names)
    state = router.read()
    assert len(state.records) == 30
    assert router.calls["list_resource_record_sets"] == 1


@pytest.mark.parametrize("case,fragment", [
    ("missing-green", "no weighted record set with SetIdentifier 'eks-blueprint-green'"),
    ("types-differ", "the other side exists with type CNAME"),
    ("ttl-differs", "TTLs of the group disagree"),
    ("simple-only", "does not convert a simple record"),
    ("third-weighted", "other weighted record sets besides blue and green"),
    ("missing-zone", "does not exist"),
    ("outside-zone", "is not inside hosted zone"),
])
def test_preflight_refusals_name_the_problem_and_change_nothing(moto_endpoint, zone, case, fragment):
    app = zone.fqdn("app")
    blue = {"Name": app, "Type": "A", "SetIdentifier": "eks-blueprint-blue", "Weight": 100, "TTL": 60,
            "ResourceRecords": [{"Value": "127.0.0.2"}]}
    green = {**blue, "SetIdentifier": "eks-blueprint-green", "Weight": 0, "ResourceRecords": [{"Value": "127.0.0.3"}]}
    zone_ref, name = zone.name, app
    if case == "missing-green":
        zone.upsert(blue)
    elif case == "types-differ":
        zone.upsert(blue, {**green, "Type": "CNAME", "ResourceRecords": [{"Value": "green.example.net"}]})
    elif case == "ttl-differs":
        zone.upsert(blue, {**green, "TTL": 300})
    elif case == "simple-only":
        zone.upsert({"Name": app, "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": "127.0.0.2"}]})
    elif case == "third-weighted":
        zone.upsert(blue, green, {**green, "SetIdentifier": "eks-blueprint-canary", "Weight": 5})
    elif case == "missing-zone":
        zone_ref = "no-such-zone.example.org"
    elif case == "outside-zone":
        name = "app.elsewhere.example.org"
    before = zone.dump()
    with pytest.raises(PreflightError, match=fragment):
        _router(moto_endpoint, zone_ref, name).read()
    assert zone.dump() == before


def test_split_batches_respects_limits_and_never_splits_a_pair():
    def pair(i, values=1):
        rr = [{"Value": f"10.0.{i // 250}.{i % 250}"} for _ in range(values)]
        return [{"Action": "UPSERT", "ResourceRecordSet": {"Name": f"r{i}", "ResourceRecords": rr}} for _ in range(2)]

    batches = split_batches([pair(i) for i in range(500)])
    # A pair is 2 UPSERTs x 1 value x 2 = 4 elements: 250 pairs fill a batch of 1,000.
    assert [len(b) for b in batches] == [500, 500]
    assert all(len(b) % 2 == 0 for b in batches)
    long_values = [[{"Action": "UPSERT", "ResourceRecordSet": {"Name": f"t{i}", "ResourceRecords": [{"Value": "x" * 4001}]}}] * 2
                   for i in range(3)]
    assert [len(b) for b in split_batches(long_values)] == [2, 2, 2]  # 16,004 chars a pair: two would pass 32,000
    assert split_batches([pair(1)]) == [pair(1)]


def test_a_mixed_group_ends_with_each_records_own_ttl_and_aliases_untouched(moto_endpoint, zone):
    """route.ttl lowers the plain sets only, the hold respects the alias target's TTL, and the restore
    writes back each record's own TTL (not the largest, not alias_ttl): the whole shift on an injected clock."""
    from bluegreen.core.engine import Outcome, ShiftEngine
    from bluegreen.core.plan import assemble_plan
    from bluegreen.core.ports import NoProbes
    from bluegreen.core.verdict import Gates

    a = zone.weighted_pair("a", ttl=300)
    b = zone.weighted_pair("b", ttl=120)
    c = zone.fqdn("c")
    target = {"HostedZoneId": "Z35SXDOTRQ7X7K", "EvaluateTargetHealth": True}
    zone.upsert(
        {"Name": c, "Type": "A", "SetIdentifier": "eks-blueprint-blue", "Weight": 100,
         "AliasTarget": {**target, "DNSName": "k8s-blue-1.us-east-1.elb.amazonaws.com."}},
        {"Name": c, "Type": "A", "SetIdentifier": "eks-blueprint-green", "Weight": 0,
         "AliasTarget": {**target, "DNSName": "k8s-green-1.us-east-1.elb.amazonaws.com."}})
    router = _router(moto_endpoint, zone.name, a, b, c, ttl=5)
    clock = router.clock
    live = router.read()
    plan = assemble_plan(live=live, target="green", steps=[10, 100], cutover_ttl=5, alias_ttl=60, ttl_margin=1,
                         bake=0).plan
    started = clock.monotonic()
    result = ShiftEngine(router, NoProbes(), clock, Gates(traffic_check=False)).run(plan, live=live)
    assert result.outcome is Outcome.COMPLETED
    ttls = {(r["Name"].rstrip("."), r["SetIdentifier"]): r.get("TTL") for r in zone.dump() if "SetIdentifier" in r}
    assert ttls[(a, "eks-blueprint-green")] == ttls[(a, "eks-blueprint-blue")] == 300
    assert ttls[(b, "eks-blueprint-green")] == ttls[(b, "eks-blueprint-blue")] == 120
    assert ttls[(c, "eks-blueprint-green")] is None and ttls[(c, "eks-blueprint-blue")] is None
    assert zone.weights(c) == {"eks-blueprint-blue": 0, "eks-blueprint-green": 100}
    # lower-TTL wait (old 300 + 1), then two steps held for the alias TTL (60 + 1), not the lowered 5 + 1
    assert clock.monotonic() - started >= 301 + 2 * 61
