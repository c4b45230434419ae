"""The sandbox behaves like the world it stands for: Kubernetes API errors and discovery as kubectl meets
them, Route 53 changes that stay PENDING, caching resolvers (ours and a real unbound), alias records and
health as Route 53 evaluates them. Real servers on loopback throughout."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from bluegreen.sandbox.kube import (
    ARGOCD_NAMESPACE, DAEMONSETS, DEPLOYMENTS, NO_SECRETS, SECRETS, STATEFULSETS, KubeEmulators, cluster_secret,
    daemonset, deployment, identity, statefulset,
)

KUBECTL = shutil.which("kubectl")
ADMIN_TOKEN = "realism-admin-token"
NO_SECRETS_TOKEN = "realism-no-secrets-token"


def need_kubectl() -> str:
    if KUBECTL is None:
        pytest.skip("kubectl not installed: install kubectl (https://kubernetes.io/docs/tasks/tools/) to run this test")
    return KUBECTL


# -- Kubernetes API emulator -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def clusters(tmp_path_factory):
    kube = KubeEmulators(names=("blue",), token=ADMIN_TOKEN, tls=True,
                         tokens={NO_SECRETS_TOKEN: identity("system:serviceaccount:bluegreen:runner", NO_SECRETS)})
    kube.start(tmp_path_factory.mktemp("realism-kube"))
    try:
        blue = kube["blue"]
        blue.put(SECRETS, ARGOCD_NAMESPACE, "eks-blueprint-blue", cluster_secret("eks-blueprint-blue",
                                                                                data={"config": "{}"}))
        blue.put(SECRETS, ARGOCD_NAMESPACE, "repo-creds", {"metadata": {"labels": {"x": "y"}}})
        blue.put(DEPLOYMENTS, "team-burnham", "burnham", deployment(2, updated=1, generation=2))
        blue.put(DEPLOYMENTS, "team-burnham", "done", deployment(2))
        blue.put(STATEFULSETS, "team-burnham", "db", statefulset(3, updated=1))
        blue.put(DAEMONSETS, "kube-system", "agent", daemonset(3, updated=2))
        yield kube
    finally:
        kube.stop()


def kubeconfig(clusters, tmp_path: Path, token: str | None) -> Path:
    return clusters.write_kubeconfig(tmp_path / "kubeconfig.yaml", token=token)


def kubectl(config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([need_kubectl(), "--kubeconfig", str(config), *args], capture_output=True, text=True,
                          timeout=30)


def api_client(clusters, tmp_path: Path, token: str | None):
    from kubernetes import client as k8s
    from kubernetes import config as k8s_config

    configuration = k8s.Configuration()
    k8s_config.load_kube_config(config_file=str(kubeconfig(clusters, tmp_path, token)), context="blue",
                                client_configuration=configuration, persist_config=False)
    configuration.retries = 0
    return k8s.ApiClient(configuration)


SEED_COMMAND = ("get", "secret", "-n", "argocd", "-l", "argocd.argoproj.io/secret-type=cluster", "-o", "json")


def test_the_seeds_kubectl_command_lists_the_cluster_secrets(clusters, tmp_path):
    result = kubectl(kubeconfig(clusters, tmp_path, None), *SEED_COMMAND)
    assert result.returncode == 0, result.stderr
    listing = json.loads(result.stdout)
    assert [item["metadata"]["name"] for item in listing["items"]] == ["eks-blueprint-blue"]


def test_core_group_discovery_says_v1(clusters, tmp_path):
    from kubernetes import client as k8s

    with api_client(clusters, tmp_path, ADMIN_TOKEN) as client:
        assert k8s.CoreV1Api(client).get_api_resources().group_version == "v1"
        assert k8s.AppsV1Api(client).get_api_resources().group_version == "apps/v1"
        listing = k8s.CoreV1Api(client).list_namespaced_secret("argocd")
        assert (listing.kind, listing.api_version) == ("SecretList", "v1")


@pytest.mark.parametrize("token", ["not-the-token", ""])
def test_a_wrong_or_missing_token_is_401_with_a_status(clusters, tmp_path, token):
    from kubernetes import client as k8s
    from kubernetes.client.exceptions import ApiException

    with api_client(clusters, tmp_path, token) as client:
        if not token:
            client.configuration.api_key.clear()  # no Authorization header at all
        with pytest.raises(ApiException) as raised:
            k8s.CoreV1Api(client).list_namespaced_secret("argocd")
    assert raised.value.status == 401
    assert json.loads(raised.value.body) == {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                             "status": "Failure", "message": "Unauthorized",
                                             "reason": "Unauthorized", "code": 401}


def test_kubectl_with_a_wrong_token_is_told_it_is_unauthorized(clusters, tmp_path):
    result = kubectl(kubeconfig(clusters, tmp_path, "not-the-token"), *SEED_COMMAND)
    assert result.returncode != 0 and "Unauthorized" in result.stderr


def test_a_token_without_secrets_is_forbidden_with_the_api_servers_message(clusters, tmp_path):
    from kubernetes import client as k8s
    from kubernetes.client.exceptions import ApiException

    with api_client(clusters, tmp_path, NO_SECRETS_TOKEN) as client:
        assert k8s.AppsV1Api(client).list_namespaced_deployment("team-burnham").items  # other reads still work
        with pytest.raises(ApiException) as raised:
            k8s.CoreV1Api(client).list_namespaced_secret("argocd")
    body = json.loads(raised.value.body)
    assert raised.value.status == 403 and body["reason"] == "Forbidden"
    assert body["message"] == ('secrets is forbidden: User "system:serviceaccount:bluegreen:runner" cannot list '
                               'resource "secrets" in API group "" in the namespace "argocd"')
    result = kubectl(kubeconfig(clusters, tmp_path, NO_SECRETS_TOKEN), *SEED_COMMAND)
    assert result.returncode != 0 and "cannot list resource \"secrets\"" in result.stderr


def test_bluegreen_names_the_missing_permission_and_the_rejected_token(clusters, tmp_path):
    from bluegreen.adapters.kube import ClusterAccessError, Kube

    for token, expected, hint in (
            (NO_SECRETS_TOKEN, "HTTP 403 Forbidden: missing permission list secrets in namespace argocd",
             "grant list secrets in namespace argocd"),
            ("not-the-token", "HTTP 401 Unauthorized: the cluster rejected the token", "renew the credentials")):
        kube = Kube(api_client(clusters, tmp_path, token), "blue cluster")
        with pytest.raises(ClusterAccessError) as raised, kube.guard("listing ArgoCD cluster secrets"):
            kube.core.list_namespaced_secret("argocd")
        kube.close()
        assert expected in raised.value.message and hint in (raised.value.hint or "")
        assert token not in raised.value.message + (raised.value.hint or "")


def test_workload_helpers_carry_rollout_status_that_kubectl_and_bluegreen_agree_on(clusters, tmp_path):
    from kubernetes import client as k8s

    from bluegreen.core.readiness import rollout_problem, workload_from_object

    with api_client(clusters, tmp_path, ADMIN_TOKEN) as client:
        apps = k8s.AppsV1Api(client)
        read = {
            ("Deployment", "burnham"): apps.read_namespaced_deployment("burnham", "team-burnham"),
            ("Deployment", "done"): apps.read_namespaced_deployment("done", "team-burnham"),
            ("StatefulSet", "db"): apps.read_namespaced_stateful_set("db", "team-burnham"),
            ("DaemonSet", "agent"): apps.read_namespaced_daemon_set("agent", "kube-system"),
        }
        problems = {key: rollout_problem(workload_from_object(key[0], client.sanitize_for_serialization(obj)))
                    for key, obj in read.items()}
    mid = read[("Deployment", "burnham")]
    assert (mid.metadata.generation, mid.status.observed_generation, mid.status.updated_replicas,
            mid.status.available_replicas) == (2, 2, 1, 2)
    assert problems == {("Deployment", "burnham"): "rolling out: 1 of 2 updated",
                        ("Deployment", "done"): None,
                        ("StatefulSet", "db"): "rolling out: 1 of 3 updated",
                        ("DaemonSet", "agent"): "rolling out: 2 of 3 updated"}
    if KUBECTL is None:
        return  # the kubectl cross-check needs kubectl; the assertions above stand without it
    config = kubeconfig(clusters, tmp_path, None)
    for kind, namespace, name, expected in (
            ("deployment", "team-burnham", "burnham", "1 out of 2 new replicas have been updated"),
            ("deployment", "team-burnham", "done", "successfully rolled out"),
            ("daemonset", "kube-system", "agent", "2 out of 3 new pods have been updated")):
        result = kubectl(config, "rollout", "status", f"{kind}/{name}", "-n", namespace, "--watch=false")
        assert expected in result.stdout, result.stdout + result.stderr


# -- Route 53 changes stay PENDING, and the DNS server serves only what is INSYNC --------------------------
class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


def ask_a(address: str, name: str = "burnham.example.com"):
    """(addresses, ttl) of the A answer from a DNS server at ``host:port``."""
    import dns.message
    import dns.query

    host, port = address.split(":")
    reply = dns.query.udp(dns.message.make_query(name, "A"), host, port=int(port), timeout=2)
    if not reply.answer:
        return (), None
    rrset = reply.answer[-1]
    return tuple(sorted(r.address for r in rrset)), rrset.ttl


def upsert_weights(client, zone_id: str, blue: int, green: int, ttl: int = 60) -> dict:
    return client.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": [
        {"Action": "UPSERT", "ResourceRecordSet": {"Name": "burnham.example.com", "Type": "A", "SetIdentifier": sid,
                                                   "Weight": weight, "TTL": ttl, "ResourceRecords": [{"Value": ip}]}}
        for sid, weight, ip in (("eks-blueprint-blue", blue, "127.0.0.2"), ("eks-blueprint-green", green, "127.0.0.3"))]})


@pytest.fixture
def pending_zone(moto_endpoint):
    """A seeded zone (blue 100, green 0) behind a Route53Proxy on a manual clock, and a DNS server following it."""
    from bluegreen.sandbox.dns_server import WeightedDnsServer
    from bluegreen.sandbox.moto_server import sandbox_client
    from bluegreen.sandbox.route53_proxy import Route53Proxy
    from bluegreen.sandbox.zone import delete_zone, seed_zone

    clock = ManualClock()
    zone_id = seed_zone(moto_endpoint, "example.com", ["burnham.example.com"])
    proxy = Route53Proxy(moto_endpoint, pending_seconds=0.3, monotonic=clock.monotonic).start()
    server = WeightedDnsServer(moto_endpoint, zone_id, source=proxy, refresh_interval=0.05).start()
    client = sandbox_client(proxy.endpoint_url)
    try:
        yield clock, proxy, server, client, zone_id
    finally:
        client.close()
        server.stop()
        proxy.stop()
        delete_zone(moto_endpoint, zone_id)


def test_a_change_is_pending_then_insync_and_served_only_once_insync(pending_zone):
    clock, proxy, server, client, zone_id = pending_zone
    first = upsert_weights(client, zone_id, 0, 100)["ChangeInfo"]
    assert first["Status"] == "PENDING" and first["Id"].startswith("/change/C")
    assert client.get_change(Id=first["Id"])["ChangeInfo"]["Status"] == "PENDING"
    server.refresh()
    assert ask_a(server.address) == (("127.0.0.2",), 60)  # moto has green at 100; the name servers do not yet
    clock.now += 0.299
    assert client.get_change(Id=first["Id"])["ChangeInfo"]["Status"] == "PENDING"
    clock.now += 0.001
    assert client.get_change(Id=first["Id"])["ChangeInfo"]["Status"] == "INSYNC"
    # No sleep: the proxy refreshed the DNS server before it answered INSYNC.
    assert ask_a(server.address) == (("127.0.0.3",), 60)


def test_each_change_has_its_own_id_and_the_dns_follows_them_in_order(pending_zone):
    clock, proxy, server, client, zone_id = pending_zone
    first = upsert_weights(client, zone_id, 0, 100, ttl=30)["ChangeInfo"]["Id"]
    clock.now += 0.2
    second = upsert_weights(client, zone_id, 0, 100, ttl=10)["ChangeInfo"]["Id"]
    assert first != second
    clock.now += 0.1  # the first is INSYNC, the second is not
    assert [client.get_change(Id=c)["ChangeInfo"]["Status"] for c in (first, second)] == ["INSYNC", "PENDING"]
    assert ask_a(server.address) == (("127.0.0.3",), 30)
    clock.now += 0.2
    assert client.get_change(Id=second)["ChangeInfo"]["Status"] == "INSYNC"
    assert ask_a(server.address) == (("127.0.0.3",), 10)


def test_a_refused_change_is_not_recorded(pending_zone):
    from botocore.exceptions import ClientError

    clock, proxy, server, client, zone_id = pending_zone
    with pytest.raises(ClientError) as raised:
        client.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": [
            {"Action": "DELETE", "ResourceRecordSet": {"Name": "missing.example.com", "Type": "A", "TTL": 5,
                                                       "ResourceRecords": [{"Value": "127.0.0.9"}]}}]})
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400  # moto: InvalidInput
    assert proxy.next_change_at(zone_id) is None


def test_pending_zero_answers_insync_at_once(moto_endpoint):
    from bluegreen.sandbox.moto_server import sandbox_client
    from bluegreen.sandbox.route53_proxy import Route53Proxy
    from bluegreen.sandbox.zone import delete_zone, seed_zone

    zone_id = seed_zone(moto_endpoint, "example.com", ["burnham.example.com"])
    with Route53Proxy(moto_endpoint, pending_seconds=0) as proxy:
        client = sandbox_client(proxy.endpoint_url)
        change = upsert_weights(client, zone_id, 50, 50)["ChangeInfo"]
        assert change["Status"] == "INSYNC" and client.get_change(Id=change["Id"])["ChangeInfo"]["Status"] == "INSYNC"
        client.close()
    delete_zone(moto_endpoint, zone_id)


def test_the_sandbox_routes_clients_through_the_pending_proxy_and_the_dns_turns_at_insync():
    import time

    from bluegreen.sandbox import Sandbox

    with Sandbox(records=["burnham.example.com"], ttl=1, pending_seconds=0.4) as sb:
        assert sb.endpoint_url == sb.route53_proxy.endpoint_url != sb.moto.endpoint_url
        client = sb.route53()
        started = time.monotonic()
        change = upsert_weights(client, sb.zone_id, 0, 100, ttl=1)["ChangeInfo"]
        assert change["Status"] == "PENDING"
        # Nobody asks GetChange here: the DNS server turns by itself when the change becomes INSYNC.
        while ask_a(sb.dns_address)[0] == ("127.0.0.2",):
            assert time.monotonic() - started < 3.0
            time.sleep(0.01)
        turned = time.monotonic() - started
        assert 0.4 <= turned < 0.4 + 0.35 and ask_a(sb.dns_address)[0] == ("127.0.0.3",)
        assert client.get_change(Id=change["Id"])["ChangeInfo"]["Status"] == "INSYNC"
        client.close()


# -- a caching resolver in front of the weighted server ---------------------------------------------------
@pytest.fixture
def cached_zone(moto_endpoint):
    """A 50/50 weighted pair with TTL 5 (Route 53 straight from moto), our caching resolver on a manual clock."""
    from bluegreen.sandbox.caching_resolver import CachingResolver
    from bluegreen.sandbox.dns_server import WeightedDnsServer
    from bluegreen.sandbox.zone import delete_zone, seed_zone

    clock = ManualClock()
    zone_id = seed_zone(moto_endpoint, "example.com", ["burnham.example.com"], ttl=5, weights=(50, 50))
    server = WeightedDnsServer(moto_endpoint, zone_id).start()
    resolver = CachingResolver(server.address, monotonic=clock.monotonic).start()
    try:
        yield clock, server, resolver, moto_endpoint, zone_id
    finally:
        resolver.stop()
        server.stop()
        delete_zone(moto_endpoint, zone_id)


def test_the_weighted_server_alone_answers_both_sides(cached_zone):
    clock, server, resolver, _, _ = cached_zone
    assert {ask_a(server.address)[0] for _ in range(40)} == {("127.0.0.2",), ("127.0.0.3",)}  # 1 - 2**-39


def test_within_the_ttl_the_resolver_answers_one_address_whatever_the_weights(cached_zone):
    from bluegreen.sandbox.zone import set_weights

    clock, server, resolver, moto_endpoint, zone_id = cached_zone
    first, ttl = ask_a(resolver.address)
    assert ttl == 5
    seen = {first}
    for second in range(1, 5):
        clock.now += 1.0
        addresses, ttl = ask_a(resolver.address)
        seen.add(addresses)
        assert ttl == 5 - second  # RFC 1035 §7.4: the TTL handed out counts down
        # Weights flipped behind the resolver's back: still the cached pick.
        set_weights(moto_endpoint, zone_id, (100, 0) if first == ("127.0.0.3",) else (0, 100))
        server.refresh()
    assert seen == {first} and resolver.misses == 1 and resolver.hits == 4
    clock.now += 1.0  # 5 s after the first answer: expired
    assert ask_a(resolver.address) == ((("127.0.0.2",) if first == ("127.0.0.3",) else ("127.0.0.3",)), 5)
    assert resolver.misses == 2


def test_after_each_ttl_a_new_pick_follows_the_weights(cached_zone):
    clock, server, resolver, _, _ = cached_zone
    picks = []
    for _ in range(30):
        picks.append(ask_a(resolver.address)[0])
        assert ask_a(resolver.address)[0] == picks[-1]  # same TTL window, same answer
        clock.now += 5.0
    assert set(picks) == {("127.0.0.2",), ("127.0.0.3",)} and resolver.misses == 30  # 1 - 2**-29


def test_unknown_names_pass_through_uncached(cached_zone):
    import dns.message
    import dns.query
    import dns.rcode

    clock, server, resolver, _, _ = cached_zone
    host, port = resolver.address.split(":")
    for _ in range(2):
        reply = dns.query.udp(dns.message.make_query("nothing.example.com", "A"), host, port=int(port), timeout=2)
        assert reply.rcode() == dns.rcode.NXDOMAIN
    assert resolver.misses == 2 and resolver.hits == 0


def test_the_sandbox_runs_a_caching_resolver_for_its_public_probe():
    from bluegreen.config import parse_config
    from bluegreen.sandbox import Sandbox

    with Sandbox(records=["burnham.example.com"], ttl=30, weights=(50, 50)) as sb:
        answers = {ask_a(sb.caching_resolver_address)[0] for _ in range(20)}
        assert len(answers) == 1  # TTL 30: one pick for all of them
        config = parse_config(sb.config_dict(via_caching_resolver=True))
        assert config.probes[0].nameserver == sb.caching_resolver_address != sb.dns_address


# -- alias records and health, as Route 53 evaluates them ----------------------------------------------------
BLUE, GREEN = ("127.0.0.2",), ("127.0.0.3",)


@pytest.fixture(scope="module")
def alias_sandbox():
    from bluegreen.sandbox import Sandbox

    with Sandbox(records=["burnham.example.com"], ttl=5, alias=True) as sb:
        yield sb


@pytest.fixture
def aliased(alias_sandbox):
    for side in ("blue", "green"):
        alias_sandbox.load_balancer(side).healthy = True
    yield alias_sandbox
    alias_sandbox.set_weights(100, 0)


def seen(address: str, count: int = 60) -> dict:
    from collections import Counter

    return dict(Counter(ask_a(address) for _ in range(count)))


def test_an_alias_answers_the_load_balancers_address_with_the_elb_ttl(aliased):
    aliased.set_weights(50, 50, ttl=5)  # ttl is not written to alias sets: they have none
    rrsets = [r for r in aliased.route53().list_resource_record_sets(HostedZoneId=aliased.zone_id)["ResourceRecordSets"]
              if r["Type"] == "A"]
    assert all("TTL" not in r and r["AliasTarget"]["EvaluateTargetHealth"] for r in rrsets)
    assert {r["AliasTarget"]["DNSName"] for r in rrsets} == {aliased.load_balancer(s).dns_name for s in ("blue", "green")}
    assert set(seen(aliased.dns_address)) == {(BLUE, 60), (GREEN, 60)}


def test_an_unhealthy_green_behind_an_alias_gets_no_traffic_at_any_weight(aliased):
    aliased.load_balancer("green").healthy = False
    aliased.set_weights(90, 10)
    assert seen(aliased.dns_address) == {(BLUE, 60): 60}  # unhealthy non-zero sets are skipped
    aliased.set_weights(0, 100)
    assert seen(aliased.dns_address) == {(BLUE, 60): 60}  # the zero-weight blue is used: every non-zero set is down


def test_zero_weight_sets_are_used_only_when_every_non_zero_set_is_unhealthy(aliased):
    aliased.set_weights(100, 0)
    aliased.load_balancer("green").healthy = False  # the zero-weight side being down changes nothing
    assert seen(aliased.dns_address) == {(BLUE, 60): 60}
    aliased.load_balancer("green").healthy = True
    aliased.load_balancer("blue").healthy = False
    assert seen(aliased.dns_address) == {(GREEN, 60): 60}


def test_when_no_set_is_healthy_all_are_treated_as_healthy(aliased):
    aliased.load_balancer("blue").healthy = aliased.load_balancer("green").healthy = False
    aliased.set_weights(0, 100)
    assert seen(aliased.dns_address) == {(GREEN, 60): 60}  # the weights apply again
    aliased.set_weights(50, 50)
    assert set(seen(aliased.dns_address)) == {(BLUE, 60), (GREEN, 60)}


def test_all_zero_weights_split_among_the_healthy_sets(aliased):
    aliased.set_weights(0, 0)
    assert set(seen(aliased.dns_address)) == {(BLUE, 60), (GREEN, 60)}
    aliased.load_balancer("blue").healthy = False
    assert seen(aliased.dns_address) == {(GREEN, 60): 60}


def test_an_alias_that_does_not_evaluate_target_health_is_answered_when_its_target_is_down(aliased):
    client = aliased.route53()
    aliased.set_weights(0, 100)
    green = next(r for r in client.list_resource_record_sets(HostedZoneId=aliased.zone_id)["ResourceRecordSets"]
                 if r.get("SetIdentifier") == aliased.green_id)
    green["AliasTarget"]["EvaluateTargetHealth"] = False
    wait = client.change_resource_record_sets(HostedZoneId=aliased.zone_id, ChangeBatch={"Changes": [
        {"Action": "UPSERT", "ResourceRecordSet": green}]})["ChangeInfo"]["Id"]
    import time

    while client.get_change(Id=wait)["ChangeInfo"]["Status"] != "INSYNC":
        time.sleep(0.05)
    aliased.load_balancer("green").healthy = False
    assert seen(aliased.dns_address) == {(GREEN, 60): 60}
    green["AliasTarget"]["EvaluateTargetHealth"] = True
    client.change_resource_record_sets(HostedZoneId=aliased.zone_id, ChangeBatch={"Changes": [
        {"Action": "UPSERT", "ResourceRecordSet": green}]})
    aliased.route53_proxy.settle(aliased.zone_id)
    client.close()


def test_record_sets_with_a_failing_health_check_are_skipped():
    from bluegreen.sandbox import Sandbox

    with Sandbox(records=["burnham.example.com"], ttl=5, weights=(50, 50)) as sb:
        check = sb.add_health_check("green")
        client = sb.route53()
        assert client.get_health_check(HealthCheckId=check)["HealthCheck"]["Id"] == check  # moto has it
        green = [r for r in client.list_resource_record_sets(HostedZoneId=sb.zone_id)["ResourceRecordSets"]
                 if r.get("SetIdentifier") == sb.green_id]
        assert [r["HealthCheckId"] for r in green] == [check]
        client.close()
        assert set(seen(sb.dns_address)) == {(BLUE, 5), (GREEN, 5)}
        sb.set_health_check(check, False)
        assert seen(sb.dns_address) == {(BLUE, 5): 60}
        sb.set_health_check(check, True)
        assert set(seen(sb.dns_address)) == {(BLUE, 5), (GREEN, 5)}


def test_alias_is_chosen_per_side():
    from bluegreen.sandbox import Sandbox

    with pytest.raises(ValueError, match="purple"):
        Sandbox(alias=("purple",))
    with Sandbox(records=["burnham.example.com"], ttl=5, weights=(0, 100), alias=["green"]) as sb:
        assert seen(sb.dns_address, 10) == {(GREEN, 60): 10}
        sb.set_weights(100, 0)
        assert seen(sb.dns_address, 10) == {(BLUE, 5): 10}


# -- a real unbound, where installed -------------------------------------------------------------------------
def need_unbound() -> None:
    from bluegreen.sandbox.unbound import unbound_binary

    if unbound_binary() is None:
        print("unbound not installed: apt-get install unbound")
        pytest.skip("unbound not installed: apt-get install unbound")


def test_unbound_config_is_private_and_forwards_the_zone(tmp_path):
    from bluegreen.sandbox.unbound import unbound_config

    text = unbound_config(port=5353, zone="example.com", upstream="127.0.0.1:4242", directory=tmp_path)
    for line in ("interface: 127.0.0.1", "port: 5353", "do-not-query-localhost: no", 'chroot: ""', 'username: ""',
                 "do-daemonize: no", "control-enable: no", 'name: "example.com."', "forward-addr: 127.0.0.1@4242"):
        assert line in text


def test_unbound_answers_from_the_sandbox_zone_and_caches_within_the_ttl():
    import time

    need_unbound()
    from bluegreen.sandbox import Sandbox

    with Sandbox(records=["burnham.example.com"], ttl=2, weights=(50, 50), unbound=True) as sb:
        first, ttl = ask_a(sb.unbound_address)
        assert first in (BLUE, GREEN) and ttl <= 2
        asked, started = sb.dns.queries, time.monotonic()
        for _ in range(20):  # well within the TTL: unbound answers from its cache
            assert ask_a(sb.unbound_address)[0] == first
        assert sb.dns.queries == asked
        # When the TTL runs out, unbound asks the weighted server again (its clock counts whole seconds, so
        # up to a second late).
        while sb.dns.queries == asked:
            assert time.monotonic() - started < 2 + 1.5, "unbound never asked again"
            ask_a(sb.unbound_address)
            time.sleep(0.05)
        assert time.monotonic() - started >= 1.0
        # Behind unbound, the weights are seen once per TTL; the weighted server itself splits per query.
        assert {ask_a(sb.dns_address)[0] for _ in range(40)} == {BLUE, GREEN}


def test_unbound_follows_a_change_only_after_insync_and_the_ttl():
    import time

    need_unbound()
    from bluegreen.sandbox import Sandbox

    with Sandbox(records=["burnham.example.com"], ttl=1, pending_seconds=0.3, unbound=True) as sb:
        assert ask_a(sb.unbound_address)[0] == BLUE
        client = sb.route53()
        change = upsert_weights(client, sb.zone_id, 0, 100, ttl=1)["ChangeInfo"]["Id"]
        assert ask_a(sb.unbound_address)[0] == BLUE  # PENDING: not published yet
        while client.get_change(Id=change)["ChangeInfo"]["Status"] != "INSYNC":
            time.sleep(0.05)
        deadline = time.monotonic() + 3.0
        while ask_a(sb.unbound_address)[0] != GREEN:  # at most the old TTL later
            assert time.monotonic() < deadline, "unbound kept the old answer past its TTL"
            time.sleep(0.1)
        client.close()
    assert sb.unbound is None


# -- the sandbox's clusters, as kubectl and bluegreen meet them -------------------------------------------------
def test_sandbox_clusters_answer_kubectl_and_refuse_a_token_without_secrets():
    from bluegreen.adapters.kube import ClusterAccessError
    from bluegreen.config import parse_config
    from bluegreen.core.readiness import rollout_problem, workload_from_object
    from bluegreen.sandbox import Sandbox
    from bluegreen.sandbox.kube import FAKE_CLUSTER_CREDENTIAL, WORKLOAD_NAMESPACE
    from bluegreen.clusters.verify import run_verify

    with Sandbox(records=["burnham.example.com"], ttl=1, clusters=True) as sb:
        if KUBECTL is not None:
            result = kubectl(sb.kubeconfig, "--context", "green", *SEED_COMMAND)
            assert result.returncode == 0, result.stderr
            assert [i["metadata"]["name"] for i in json.loads(result.stdout)["items"]] == [sb.green_id]
        config = sb.config_dict()
        for side in ("blue", "green"):
            config["clusters"][side]["kubeconfig"] = str(sb.kubeconfig_without_secrets())
        with pytest.raises(ClusterAccessError) as raised:
            run_verify(parse_config(config), "green")
        text = f"{raised.value.message} {raised.value.hint}"
        assert "missing permission list secrets in namespace argocd" in text
        assert FAKE_CLUSTER_CREDENTIAL not in text and Sandbox.NO_SECRETS_TOKEN not in text
        sb.green_rolling_out(updated=1)
        obj = sb.kube["green"].get(DEPLOYMENTS, WORKLOAD_NAMESPACE, "burnham")
        assert rollout_problem(workload_from_object("Deployment", obj)) == "rolling out: 1 of 2 updated"
