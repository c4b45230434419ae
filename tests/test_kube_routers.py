"""The external-dns and argocd weight drivers end to end: the official kubernetes client over HTTP to emulated
clusters (kmock), Route 53 in a moto server over HTTP, and a fake external-dns thread copying the annotation
weights into the zone, so the drivers' read-back through Route 53 is exercised for real."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from structlog.testing import capture_logs

from bluegreen.routers import build_router
from bluegreen.routers.argocd import ArgoCdRouter
from bluegreen.routers.external_dns import ExternalDnsRouter
from bluegreen.routers.source import write_order
from bluegreen.adapters.kube import ClusterAccessError
from bluegreen.routers.route53 import Route53Router
from bluegreen.config import parse_config
from bluegreen.core.clock import FakeClock, SystemClock
from bluegreen.core.engine import Outcome, ShiftEngine
from bluegreen.core.ports import NoProbes
from bluegreen.core.verdict import Gates
from bluegreen.core.plan import build_plan
from bluegreen.core.weights import LiveState, RecordState, SideWeights
from bluegreen.errors import ConfigError, ExitCode, PreflightError, RouterError, exit_code_for
from tests.support.blueprint_clusters import FAKE_B64, FAKE_CREDENTIAL, secret_for
from tests.support.fake_external_dns import FakeExternalDns, Source
from tests.support.kube_emulator import INGRESSES, SECRETS, SERVICES

PREFIX = "external-dns.alpha.kubernetes.io"
BLUE_ID, GREEN_ID = "eks-blueprint-blue", "eks-blueprint-green"
NS = "team-burnham"
SYNC_TIMEOUT = "2s"
POLL = 0.05


# -- set-up ------------------------------------------------------------------------------------------
def ingress(ident: str, weight: int, prefix: str = PREFIX, extra: dict | None = None) -> dict:
    return {"metadata": {"annotations": {f"{prefix}/set-identifier": ident, f"{prefix}/aws-weight": str(weight),
                                         "alb.ingress.kubernetes.io/scheme": "internet-facing", **(extra or {})}},
            "spec": {"ingressClassName": "alb"}}


def make_config(kube, zone, *, driver="external-dns", route=None, clusters=None, mode="in-cluster"):
    path = str(kube.kubeconfig)
    raw_clusters = clusters or {
        "blue": {"kubeconfig": path, "context": "blue", "name": BLUE_ID},
        "green": {"kubeconfig": path, "context": "green", "name": GREEN_ID},
    }
    if mode == "hub":
        raw_clusters["argocd"] = {"mode": "hub", "hub": {"kubeconfig": path, "context": "hub"}}
    base = {"driver": driver, "hosted_zone": zone.id, "records": [zone.fqdn("burnham")],
            "blue": BLUE_ID, "green": GREEN_ID, "sync_timeout": SYNC_TIMEOUT}
    if driver == "external-dns":
        base["objects"] = [{"kind": "ingress", "namespace": NS, "name": "burnham"}]
    base.update(route or {})
    return parse_config({"name": "burnham", "aws": {"endpoint_url": zone.client.meta.endpoint_url,
                                                    "route53_requests_per_second": 5.0},
                         "route": {k: v for k, v in base.items() if v is not None}, "clusters": raw_clusters})


def router_for(config, **kwargs):
    cls = ExternalDnsRouter if config.route.driver == "external-dns" else ArgoCdRouter
    return cls(config, clock=kwargs.pop("clock", SystemClock()), poll_interval=POLL, **kwargs)


@pytest.fixture
def edns(kube, zone):
    """Blue at 100, green at 0: in Route 53 and on each cluster's Ingress."""
    zone.weighted_pair("burnham", 100, 0)
    kube["blue"].put(INGRESSES, NS, "burnham", ingress(BLUE_ID, 100))
    kube["green"].put(INGRESSES, NS, "burnham", ingress(GREEN_ID, 0))
    return make_config(kube, zone)


def fake_dns(kube, zone, sides=("blue", "green"), **knobs) -> FakeExternalDns:
    sources = [Source(context=side, kind="ingress", namespace=NS, name="burnham") for side in sides]
    return FakeExternalDns(kubeconfig=str(kube.kubeconfig), endpoint=zone.client.meta.endpoint_url,
                           zone_id=zone.id, records=[zone.fqdn("burnham")], sources=sources, **knobs)


def weight_of(kube, side: str, resource=INGRESSES, name="burnham", ns=NS, key=f"{PREFIX}/aws-weight"):
    return kube[side].get(resource, ns, name)["metadata"]["annotations"].get(key)


# -- external-dns driver -----------------------------------------------------------------------------
def test_set_writes_annotations_and_verify_reads_route53_back(kube, zone, edns):
    router = router_for(edns)
    with fake_dns(kube, zone):
        assert router.read().weights() == SideWeights(100, 0)
        changes = router.set(SideWeights(90, 10))
        assert (weight_of(kube, "blue"), weight_of(kube, "green")) == ("90", "10")
        assert [c.split("@")[0] for c in changes] == [  # green gains weight, so it is written first
            f"annotation:{GREEN_ID}/ingress/{NS}/burnham", f"annotation:{BLUE_ID}/ingress/{NS}/burnham"]
        assert all(c.rsplit("@", 1)[1] for c in changes)  # a resourceVersion
        router.verify(SideWeights(90, 10), changes)
    assert zone.weights(zone.fqdn("burnham")) == {BLUE_ID: 90, GREEN_ID: 10}
    assert router.read().weights() == SideWeights(90, 10)
    assert weight_of(kube, "blue", key="alb.ingress.kubernetes.io/scheme") == "internet-facing"  # others kept


def test_unchanged_side_is_not_rewritten(kube, zone, edns):
    router = router_for(edns)
    changes = router.set(SideWeights(100, 10))
    assert len(changes) == 1 and GREEN_ID in changes[0]


def test_the_gaining_side_is_written_first(kube, zone, edns, monkeypatch):
    from bluegreen.adapters import argocd

    order = []
    real = argocd.patch_object_meta

    def recording(kube_, kind, ns, name, annotations):
        order.append((kube_.label.split()[0], annotations[f"{PREFIX}/aws-weight"]))
        return real(kube_, kind, ns, name, annotations)

    monkeypatch.setattr(argocd, "patch_object_meta", recording)
    router = router_for(edns)
    router.set(SideWeights(90, 10))
    assert order == [("green", "10"), ("blue", "90")]
    zone.weighted_pair("burnham", 10, 90)  # Route 53 says green holds the traffic; back to blue:
    order.clear()
    router.set(SideWeights(100, 0))
    assert order == [("blue", "100"), ("green", "0")]


def live(blue: int, green: int, *more: tuple[int, int]) -> LiveState:
    pairs = [(blue, green), *more]
    return LiveState(tuple(RecordState(f"r{i}.example.com", "A", SideWeights(b, g), 60) for i, (b, g) in
                           enumerate(pairs)))


@pytest.mark.parametrize("before,after,first", [
    ((100, 0), (90, 10), "green"), ((90, 10), (50, 50), "green"), ((0, 100), (100, 0), "blue"),
    ((10, 90), (100, 0), "blue"), ((100, 100), (50, 50), "blue"), ((0, 100), (0, 100), "blue"),
])
def test_write_order_never_passes_through_all_zero(before, after, first):
    state, weights = live(*before), SideWeights(*after)
    order = write_order(state, weights)
    assert order[0] == first
    middle = SideWeights(**{order[0]: weights.of(order[0]), order[1]: state.records[0].weights.of(order[1])})
    assert not middle.all_zero


def test_slow_sync_is_waited_for_within_the_bound(kube, zone, edns):
    router = router_for(edns)
    with fake_dns(kube, zone, delay=0.6) as dns:
        changes = router.set(SideWeights(50, 50))
        began = time.monotonic()
        router.verify(SideWeights(50, 50), changes)
        waited = time.monotonic() - began
    assert 0.4 <= waited < 2.0, waited
    assert dns.syncs and not dns.errors
    assert zone.weights(zone.fqdn("burnham")) == {BLUE_ID: 50, GREEN_ID: 50}


def test_a_sync_that_never_comes_fails_within_the_bound(kube, zone, edns):
    router = router_for(edns)
    with fake_dns(kube, zone, never=True):
        changes = router.set(SideWeights(90, 10))
        began = time.monotonic()
        with pytest.raises(RouterError) as raised:
            router.verify(SideWeights(90, 10), changes)
        waited = time.monotonic() - began
    assert 1.9 <= waited < 3.0, waited
    message = str(raised.value)
    assert "annotation was written (blue=90 green=10) but external-dns did not sync it" in message
    assert "within 2s (route.sync_timeout)" in message and "blue=100 green=0" in message
    assert "route.sync_timeout" in raised.value.hint


def test_verify_is_bounded_by_the_injected_clock():
    """No server timing involved: a router whose Route 53 never changes, and a fake clock."""

    class StuckRoute53:
        reads = 0

        def read(self):
            self.reads += 1
            return live(100, 0)

    from bluegreen.config import parse_config as parse

    config = parse({"name": "burnham", "route": {
        "driver": "external-dns", "hosted_zone": "example.com", "records": ["burnham.example.com"],
        "blue": BLUE_ID, "green": GREEN_ID, "objects": [f"ingress/{NS}/burnham"]},
        "clusters": {"blue": {"eks": "blue"}, "green": {"eks": "green"}}})
    clock, stuck = FakeClock(), StuckRoute53()
    router = ExternalDnsRouter(config, clock=clock, route53=stuck)
    with pytest.raises(RouterError, match="within 3m"):
        router.verify(SideWeights(90, 10), [])
    assert sum(clock.sleeps) == pytest.approx(180.0)  # the default route.sync_timeout, 3 minutes
    assert max(clock.sleeps) == 5.0 and stuck.reads == 37


def test_annotation_changed_back_is_named_on_timeout(kube, zone, edns):
    router = router_for(edns)
    changes = router.set(SideWeights(90, 10))
    kube["green"].put(INGRESSES, NS, "burnham", ingress(GREEN_ID, 0))  # e.g. ArgoCD self-heal
    with pytest.raises(RouterError) as raised:
        router.verify(SideWeights(90, 10), changes)
    assert f"changed back on {GREEN_ID}/ingress/{NS}/burnham" in str(raised.value)
    assert "ignoreDifferences" in raised.value.hint


def shift(router, *, target="green", steps=(10, 100), start=SideWeights(100, 0)):
    plan = build_plan(target=target, steps=steps, start=start, original_ttl=0, cutover_ttl=None, ttl_margin=0,
                      bake=0)
    engine = ShiftEngine(router, NoProbes(), SystemClock(), Gates(min_samples=1), check_interval=0.01)
    return engine.run(plan)


def test_engine_rolls_back_when_the_sync_never_comes(kube, zone, edns):
    with fake_dns(kube, zone, never=True):
        result = shift(router_for(edns))
    assert result.outcome is Outcome.ROLLED_BACK, result.reason
    assert exit_code_for(result.outcome) == ExitCode.GATES_FAILED
    assert "external-dns did not sync it" in result.reason
    assert (weight_of(kube, "blue"), weight_of(kube, "green")) == ("100", "0")  # annotations rolled back
    assert zone.weights(zone.fqdn("burnham")) == {BLUE_ID: 100, GREEN_ID: 0}


def test_engine_rolls_back_when_only_one_cluster_syncs(kube, zone, edns):
    """Green's external-dns syncs, blue's never does: Route 53 shows blue=100 green=10, a mix of the old and
    the new weights. That is our own change in flight, not a conflict: the engine rolls back."""
    with fake_dns(kube, zone, sides=("green",)), fake_dns(kube, zone, sides=("blue",), never=True):
        result = shift(router_for(edns))
        assert result.outcome is Outcome.ROLLED_BACK, result.reason
        assert zone.weights(zone.fqdn("burnham")) == {BLUE_ID: 100, GREEN_ID: 0}
    assert [s.percent for s in result.steps] == [10]


def test_engine_completes_a_shift_through_external_dns(kube, zone, edns):
    with fake_dns(kube, zone):
        result = shift(router_for(edns), steps=(10, 50, 100))
    assert result.outcome is Outcome.COMPLETED, result.reason
    assert zone.weights(zone.fqdn("burnham")) == {BLUE_ID: 0, GREEN_ID: 100}
    assert (weight_of(kube, "blue"), weight_of(kube, "green")) == ("0", "100")


def test_ttl_is_written_with_the_weight(kube, zone, edns):
    router = router_for(edns)
    with fake_dns(kube, zone):
        changes = router.set(SideWeights(100, 0), ttl=30)
        router.verify(SideWeights(100, 0), changes, ttl=30)
    assert weight_of(kube, "green", key=f"{PREFIX}/ttl") == "30"
    assert {r["TTL"] for r in zone.dump() if r.get("SetIdentifier")} == {30}


def test_wrong_set_identifier_is_refused_before_anything_is_written(kube, zone, edns):
    kube["green"].put(INGRESSES, NS, "burnham", ingress(BLUE_ID, 0))
    with pytest.raises(PreflightError) as raised:
        router_for(edns).set(SideWeights(90, 10))
    assert raised.value.exit_code == ExitCode.BAD_INPUT
    assert (f"{GREEN_ID}/ingress/{NS}/burnham has {PREFIX}/set-identifier='{BLUE_ID}', "
            f"but route.green is '{GREEN_ID}'") in str(raised.value)
    assert (weight_of(kube, "blue"), weight_of(kube, "green")) == ("100", "0")


def test_objects_annotated_with_the_new_prefix_get_a_hint(kube, zone, edns):
    new = "external-dns.kubernetes.io"
    kube.reset()
    kube["blue"].put(INGRESSES, NS, "burnham", ingress(BLUE_ID, 100, prefix=new))
    kube["green"].put(INGRESSES, NS, "burnham", ingress(GREEN_ID, 0, prefix=new))
    with pytest.raises(PreflightError, match=f"set route.annotation_prefix: {new}"):
        router_for(edns).preflight(None)
    router = router_for(make_config(kube, zone, route={"annotation_prefix": new + "/"}))
    router.set(SideWeights(90, 10))
    assert weight_of(kube, "green", key=f"{new}/aws-weight") == "10"


def test_missing_object_names_the_cluster(kube, zone, edns):
    config = make_config(kube, zone, route={"objects": {
        "blue": [{"kind": "ingress", "namespace": NS, "name": "burnham"}],
        "green": [{"kind": "service", "namespace": NS, "name": "burnham"}]}})
    with pytest.raises(ClusterAccessError) as raised:
        router_for(config).set(SideWeights(90, 10))
    assert "green" in str(raised.value) and "service team-burnham/burnham" in str(raised.value)
    assert weight_of(kube, "blue") == "100"


def test_service_objects_per_side(kube, zone):
    zone.weighted_pair("burnham", 100, 0)
    kube["blue"].put(SERVICES, "web", "burnham-blue", ingress(BLUE_ID, 100))
    kube["green"].put(SERVICES, "web", "burnham-green", ingress(GREEN_ID, 0))
    config = make_config(kube, zone, route={"namespace": "web", "objects": {
        "blue": ["service/web/burnham-blue"], "green": [{"kind": "Service", "name": "burnham-green"}]}})
    changes = router_for(config).set(SideWeights(0, 100))
    assert [c.split("@")[0] for c in changes] == [f"annotation:{GREEN_ID}/service/web/burnham-green",
                                                  f"annotation:{BLUE_ID}/service/web/burnham-blue"]


def test_all_zero_is_refused(kube, zone, edns):
    with pytest.raises(RouterError, match="all-zero"):
        router_for(edns).set(SideWeights(0, 0))
    assert (weight_of(kube, "blue"), weight_of(kube, "green")) == ("100", "0")


# -- config refusals (no server involved) ------------------------------------------------------------
def config_with(route: dict, driver="external-dns", clusters=None):
    raw_route = {"driver": driver, "hosted_zone": "example.com", "records": ["burnham.example.com"],
                 "blue": BLUE_ID, "green": GREEN_ID, **route}
    raw = {"name": "burnham", "route": raw_route}
    if clusters is not False:
        raw["clusters"] = clusters or {"blue": {"eks": "blue"}, "green": {"eks": "green"}}
    return parse_config(raw)


OBJ = {"kind": "ingress", "namespace": NS, "name": "burnham"}


@pytest.mark.parametrize("driver,route,clusters,match", [
    ("external-dns", {}, None, "`route.objects` is required with route.driver: external-dns"),
    ("external-dns", {"objects": "burnham"}, None, "`route.objects` must be a list or a mapping"),
    ("external-dns", {"objects": []}, None, "`route.objects` must be a non-empty list"),
    ("external-dns", {"objects": {"blue": [OBJ]}}, None, "`route.objects.green` must be a non-empty list"),
    ("external-dns", {"objects": {"blue": [OBJ], "green": [OBJ], "gren": []}}, None, "unknown key `route.objects.gren`"),
    ("external-dns", {"objects": [{"kind": "deployment", "namespace": NS, "name": "x"}]}, None,
     r"`route.objects\[0\].kind` must be ingress or service"),
    ("external-dns", {"objects": [{"kind": "ingress", "name": "x"}]}, None, r"`route.objects\[0\].namespace` is missing"),
    ("external-dns", {"objects": [{"kind": "ingress", "namespace": NS}]}, None, r"`route.objects\[0\].name` must be"),
    ("external-dns", {"objects": [{**OBJ, "nmae": "x"}]}, None, r"unknown key `route.objects\[0\].nmae`"),
    ("external-dns", {"objects": ["ingress/burnham"]}, None, r"`route.objects\[0\]` must be KIND/NAMESPACE/NAME"),
    ("external-dns", {"objects": [OBJ, OBJ]}, None, r"`route.objects\[1\]`: ingress team-burnham/burnham is listed twice"),
    ("external-dns", {"objects": [OBJ], "namespace": "Team_Burnham"}, None, "`route.namespace` must be a Kubernetes"),
    ("external-dns", {"objects": [OBJ], "annotation_prefix": "external-dns.alpha.kubernetes.io/aws"}, None,
     "`route.annotation_prefix` must be a DNS subdomain"),
    ("external-dns", {"objects": [OBJ], "sync_timeout": "soon"}, None, "route.sync_timeout"),
    ("external-dns", {"objects": [OBJ], "sync_timeout": 0}, None, "`route.sync_timeout` must be a finite duration, more than 0"),
    ("external-dns", {"objects": [OBJ], "weight_annotation": "w"}, None,
     "`route.weight_annotation` is not used with route.driver: external-dns"),
    ("external-dns", {"objects": [OBJ]}, False, "`clusters` is required with route.driver: external-dns"),
    ("argocd", {"objects": [OBJ]}, None, "`route.objects` is not used with route.driver: argocd"),
    ("argocd", {"ttl": 30}, None, "`route.ttl` cannot be used with route.driver: argocd"),
    ("argocd", {"weight_annotation": "bad key!"}, None, "`route.weight_annotation` must be an annotation key"),
    ("argocd", {"secrets": ["a", "b"]}, None, "`route.secrets` must map blue and green"),
    ("argocd", {"secrets": {"blue": "Not_A_Name"}}, None, "`route.secrets.blue` must be a Secret name"),
    ("argocd", {"secrets": {"blue": "a"}}, {"blue": {"eks": "blue", "argocd_secret": "b"}, "green": {"eks": "green"}},
     "`route.secrets.blue` \\(a\\) and `clusters.blue.argocd_secret` \\(b\\) name different secrets"),
    ("route53", {"sync_timeout": "3m"}, None, "`route.sync_timeout` is not used with route.driver: route53"),
])
def test_bad_driver_config_is_refused_naming_the_key(driver, route, clusters, match):
    with pytest.raises(ConfigError, match=match) as raised:
        build_router(config_with(route, driver, clusters))
    assert raised.value.exit_code == ExitCode.BAD_INPUT


def test_object_shapes():
    objects = config_with({"namespace": "web", "objects": {
        "blue": ["ingress/a/x", {"name": "y"}], "green": [{"kind": "Service", "namespace": "b", "name": "z"}]}}
    ).route.external_dns.objects
    assert [(o.kind, o.namespace, o.name) for o in objects["blue"]] == [("ingress", "a", "x"), ("ingress", "web", "y")]
    assert [(o.side, o.kind, o.namespace) for o in objects["green"]] == [("green", "service", "b")]


def test_route53_driver_never_imports_kubernetes():
    code = ("import sys\n"
            "from bluegreen.config import parse_config\n"
            "from bluegreen.routers import build_router\n"
            "from bluegreen.routers.route53 import Route53Router\n"
            "c = parse_config({'name': 'b', 'route': {'hosted_zone': 'example.com', 'records': ['a.example.com'],"
            " 'blue': 'x', 'green': 'y'}})\n"
            "assert isinstance(build_router(c), Route53Router)\n"
            "assert 'kubernetes' not in sys.modules, 'kubernetes imported'\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            env={"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr


def test_build_router_picks_the_driver(kube, zone, edns):
    assert isinstance(build_router(edns), ExternalDnsRouter)
    assert isinstance(build_router(make_config(kube, zone, driver="argocd")), ArgoCdRouter)
    assert isinstance(build_router(make_config(kube, zone, driver="route53", route={"sync_timeout": None})),
                      Route53Router)


# -- argocd driver -----------------------------------------------------------------------------------
@pytest.fixture
def argo(kube, zone):
    """Each cluster's own ArgoCD holds its cluster secret (EKS Blueprints); blue at 100, green at 0."""
    zone.weighted_pair("burnham", 100, 0)
    for side, weight in (("blue", "100"), ("green", "0")):
        name, obj = secret_for(side)
        obj["metadata"]["annotations"]["route53_weight"] = weight
        kube[side].put(SECRETS, "argocd", name, obj)
    return make_config(kube, zone, driver="argocd")


def fake_chain(kube, zone, where=None, key="route53_weight", **knobs) -> FakeExternalDns:
    """external-dns behind an ApplicationSet: the weight comes from the cluster secret's annotation."""
    sources = [Source(context=where or side, kind="secret", namespace="argocd", name=ident, set_identifier=ident,
                      weight_annotation=key) for side, ident in (("blue", BLUE_ID), ("green", GREEN_ID))]
    return FakeExternalDns(kubeconfig=str(kube.kubeconfig), endpoint=zone.client.meta.endpoint_url,
                           zone_id=zone.id, records=[zone.fqdn("burnham")], sources=sources, **knobs)


def secret_weight(kube, where, name, key="route53_weight"):
    return kube[where].get(SECRETS, "argocd", name)["metadata"]["annotations"].get(key)


def test_argocd_set_and_verify_in_cluster(kube, zone, argo):
    router = router_for(argo)
    with capture_logs() as logs, fake_chain(kube, zone):
        changes = router.set(SideWeights(90, 10))
        router.verify(SideWeights(90, 10), changes)
    assert [c.split("@")[0] for c in changes] == [f"annotation:{GREEN_ID}/secret/argocd/{GREEN_ID}",
                                                  f"annotation:{BLUE_ID}/secret/argocd/{BLUE_ID}"]
    assert secret_weight(kube, "blue", BLUE_ID) == "90" and secret_weight(kube, "green", GREEN_ID) == "10"
    assert zone.weights(zone.fqdn("burnham")) == {BLUE_ID: 90, GREEN_ID: 10}
    stored = kube["green"].get(SECRETS, "argocd", GREEN_ID)
    assert stored["data"]["config"]  # data untouched by the patch
    text = json.dumps(logs, default=str)
    assert "weight_annotation_written" in text and "weights_synced" in text
    for leak in (FAKE_CREDENTIAL, FAKE_B64, "$2a$10$"):  # neither data nor other annotation values
        assert leak not in text


def test_argocd_hub_mode_finds_both_secrets_in_the_hub(kube, zone):
    zone.weighted_pair("burnham", 100, 0)
    for side, weight in (("blue", "100"), ("green", "0")):
        name, obj = secret_for(side)
        obj["metadata"]["annotations"]["route53_weight"] = weight
        kube["hub"].put(SECRETS, "argocd", name, obj)
    other, obj = secret_for("blue", labels={"cluster_name": "eks-other"}, annotations={"aws_cluster_name": "other"})
    kube["hub"].put(SECRETS, "argocd", "eks-other", obj)
    config = make_config(kube, zone, driver="argocd", mode="hub")
    with fake_chain(kube, zone, where="hub"):
        result = shift(router_for(config), steps=(10, 100))
    assert result.outcome is Outcome.COMPLETED, result.reason
    assert secret_weight(kube, "hub", BLUE_ID) == "0" and secret_weight(kube, "hub", GREEN_ID) == "100"
    assert kube["hub"].get(SECRETS, "argocd", "eks-other")["metadata"]["annotations"]["route53_weight"] == "100"
    assert zone.weights(zone.fqdn("burnham")) == {BLUE_ID: 0, GREEN_ID: 100}


def test_argocd_sync_never_comes_rolls_back(kube, zone, argo):
    with fake_chain(kube, zone, never=True):
        router = router_for(argo)
        changes = router.set(SideWeights(90, 10))
        with pytest.raises(RouterError) as raised:
            router.verify(SideWeights(90, 10), changes)
        assert "route53_weight annotation of the ArgoCD cluster secrets was written" in str(raised.value)
        assert "ApplicationSet" in raised.value.hint
        router.set(SideWeights(100, 0))  # back where Route 53 still is
        result = shift(router)
    assert result.outcome is Outcome.ROLLED_BACK, result.reason
    assert secret_weight(kube, "blue", BLUE_ID) == "100" and secret_weight(kube, "green", GREEN_ID) == "0"


def test_argocd_slow_chain_succeeds(kube, zone, argo):
    with fake_chain(kube, zone, delay=0.5):
        result = shift(router_for(argo), steps=(50,))
    assert result.outcome is Outcome.COMPLETED, result.reason
    assert zone.weights(zone.fqdn("burnham")) == {BLUE_ID: 50, GREEN_ID: 50}


def test_argocd_custom_annotation_and_named_secrets(kube, zone):
    zone.weighted_pair("burnham", 100, 0)
    for side, weight in (("blue", "100"), ("green", "0")):
        _, obj = secret_for(side)
        obj["metadata"]["annotations"]["traffic_weight"] = weight
        kube[side].put(SECRETS, "argocd", f"cluster-{side}", obj)
    config = make_config(kube, zone, driver="argocd", route={
        "weight_annotation": "traffic_weight", "secrets": {"blue": "cluster-blue", "green": "cluster-green"}})
    with fake_chain(kube, zone, key="traffic_weight") as dns:
        dns.sources = [Source(side, "secret", "argocd", f"cluster-{side}", ident, "traffic_weight")
                       for side, ident in (("blue", BLUE_ID), ("green", GREEN_ID))]
        router = router_for(config)
        router.verify(SideWeights(90, 10), router.set(SideWeights(90, 10)))
    assert secret_weight(kube, "green", "cluster-green", key="traffic_weight") == "10"


def test_argocd_refusals_write_nothing(kube, zone, argo):
    name, obj = secret_for("green", annotations={"route53_weight": None})  # no weight annotation
    kube["green"].reset()
    kube["green"].put(SECRETS, "argocd", name, obj)
    with pytest.raises(PreflightError, match=f"{GREEN_ID}/secret/argocd/{GREEN_ID} has no route53_weight annotation"):
        router_for(argo).set(SideWeights(90, 10))
    assert secret_weight(kube, "blue", BLUE_ID) == "100"
    kube["green"].reset()
    with pytest.raises(PreflightError, match=f"no ArgoCD cluster secret for cluster '{GREEN_ID}'"):
        router_for(argo).set(SideWeights(90, 10))
    with pytest.raises(RouterError, match="cannot change the TTL"):
        router_for(argo).set(SideWeights(90, 10), ttl=30)


def test_ttl_change_synced_one_cluster_at_a_time_is_waited_for(kube, zone, edns):
    """Blue's external-dns syncs the new TTL at once, green's later: for a while the group's TTLs disagree,
    which a read refuses; verify keeps waiting instead of failing."""
    router = router_for(edns)
    with fake_dns(kube, zone, sides=("blue",)), fake_dns(kube, zone, sides=("green",), delay=0.5):
        changes = router.set(SideWeights(100, 0), ttl=30)
        router.verify(SideWeights(100, 0), changes, ttl=30)
    assert {r["TTL"] for r in zone.dump() if r.get("SetIdentifier")} == {30}
