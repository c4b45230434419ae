"""The embedded sandbox: moto over HTTP, the weighted DNS server, the backends and the throttling proxy."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter

import dns.message
import dns.query
import dns.rcode
import pytest
import requests
from botocore.exceptions import ClientError

from bluegreen.config import parse_config
from bluegreen.sandbox import ThrottlingProxy
from bluegreen.sandbox.faults import operation_of
from bluegreen.sandbox.moto_server import sandbox_client

BLUE_IP, GREEN_IP = "127.0.0.2", "127.0.0.3"


def ask(sb, name: str, *, tcp: bool = False) -> dns.message.Message:
    host, port = sb.dns_address.split(":")
    query = dns.message.make_query(name, "A")
    send = dns.query.tcp if tcp else dns.query.udp
    return send(query, host, port=int(port), timeout=2)


def answers(sb, name: str, count: int) -> Counter:
    seen: Counter = Counter()
    for _ in range(count):
        (rrset,) = ask(sb, name).answer
        seen[(rrset[0].address, rrset.ttl)] += 1
    return seen


def wait_insync(client, change: dict, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while client.get_change(Id=change["ChangeInfo"]["Id"])["ChangeInfo"]["Status"] != "INSYNC":
        assert time.monotonic() < deadline, "the change did not turn INSYNC"
        time.sleep(0.05)


# -- DNS -------------------------------------------------------------------------------------------------
def test_dns_answers_only_blue_at_100_0_with_the_record_ttl(shared_sandbox):
    assert answers(shared_sandbox, "burnham.example.com", 30) == Counter({(BLUE_IP, 1): 30})


def test_dns_answers_by_weight(shared_sandbox):
    shared_sandbox.set_weights(75, 25)
    seen = answers(shared_sandbox, "api.example.com", 400)
    green_share = seen[(GREEN_IP, 1)] / 400
    # Binomial n=400, p=0.25: the standard deviation is ~2.2 points; 0.15..0.35 is more than 4.5 of them.
    assert 0.15 < green_share < 0.35 and seen[(BLUE_IP, 1)] + seen[(GREEN_IP, 1)] == 400


def test_an_all_zero_group_is_an_equal_split_as_in_route53(shared_sandbox):
    shared_sandbox.set_weights(0, 0)
    seen = answers(shared_sandbox, "burnham.example.com", 200)
    assert seen[(BLUE_IP, 1)] > 50 and seen[(GREEN_IP, 1)] > 50


def test_dns_follows_a_weight_and_ttl_change_after_refresh(shared_sandbox):
    shared_sandbox.set_weights(0, 100, ttl=30)  # set_weights refreshes the DNS server's snapshot
    assert answers(shared_sandbox, "burnham.example.com", 20) == Counter({(GREEN_IP, 30): 20})


def test_dns_notices_a_change_by_itself_within_a_refresh_interval(shared_sandbox):
    client = shared_sandbox.route53()
    client.change_resource_record_sets(HostedZoneId=shared_sandbox.zone_id, ChangeBatch={"Changes": [
        {"Action": "UPSERT", "ResourceRecordSet": {"Name": "burnham.example.com", "Type": "A",
                                                   "SetIdentifier": sid, "Weight": weight, "TTL": 1,
                                                   "ResourceRecords": [{"Value": ip}]}}
        for sid, weight, ip in (("eks-blueprint-blue", 0, BLUE_IP), ("eks-blueprint-green", 1, GREEN_IP))]})
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        if ask(shared_sandbox, "burnham.example.com").answer[0][0].address == GREEN_IP:
            break
        time.sleep(0.05)
    assert answers(shared_sandbox, "burnham.example.com", 10) == Counter({(GREEN_IP, 1): 10})


def test_unknown_names_are_nxdomain_and_plain_records_answer_as_they_are(shared_sandbox):
    assert ask(shared_sandbox, "nothing-here.example.com").rcode() == dns.rcode.NXDOMAIN
    assert ask(shared_sandbox, "burnham.example.org").rcode() == dns.rcode.NXDOMAIN
    client = shared_sandbox.route53()
    plain = {"Name": "plain.example.com", "Type": "A", "TTL": 42,
             "ResourceRecords": [{"Value": "127.0.0.9"}, {"Value": "127.0.0.10"}]}
    change = client.change_resource_record_sets(
        HostedZoneId=shared_sandbox.zone_id, ChangeBatch={"Changes": [{"Action": "UPSERT", "ResourceRecordSet": plain}]})
    try:
        wait_insync(client, change)  # the DNS server serves a change once it is INSYNC, as Route 53's do
        (rrset,) = ask(shared_sandbox, "plain.example.com").answer
        assert sorted(r.address for r in rrset) == ["127.0.0.10", "127.0.0.9"] and rrset.ttl == 42
    finally:
        wait_insync(client, client.change_resource_record_sets(
            HostedZoneId=shared_sandbox.zone_id,
            ChangeBatch={"Changes": [{"Action": "DELETE", "ResourceRecordSet": plain}]}))


def test_dns_answers_over_tcp_too(shared_sandbox):
    (rrset,) = ask(shared_sandbox, "burnham.example.com", tcp=True).answer
    assert rrset[0].address == BLUE_IP


# -- backends --------------------------------------------------------------------------------------------
def test_backends_share_a_port_and_name_their_cluster(shared_sandbox):
    sb = shared_sandbox
    assert sb.blue.port == sb.green.port == sb.http_port
    for backend, cluster in ((sb.blue, "eks-blueprint-blue"), (sb.green, "eks-blueprint-green")):
        page = requests.get(backend.url, timeout=2)
        assert page.status_code == 200
        assert f"<span>CLUSTER_NAME</span><span>{cluster}</span>" in page.text
    assert sb.blue.requests == sb.green.requests == 1


def test_backend_modes(shared_sandbox):
    sb = shared_sandbox
    sb.fail_green("error")
    assert requests.get(sb.green.url, timeout=2).status_code == 500
    assert requests.get(sb.blue.url, timeout=2).status_code == 200
    sb.fail_green("slow", delay=0.3)
    started = time.monotonic()
    assert requests.get(sb.green.url, timeout=2).status_code == 200
    assert time.monotonic() - started >= 0.3
    with pytest.raises(requests.Timeout):
        sb.fail_green("slow", delay=2.0)
        requests.get(sb.green.url, timeout=0.2)
    with pytest.raises(ValueError):
        sb.fail_green("sideways")


def test_backends_keep_connections_alive(shared_sandbox):
    with requests.Session() as session:
        for _ in range(5):
            assert session.get(shared_sandbox.blue.url, timeout=2).ok
    assert shared_sandbox.blue.requests == 5 and shared_sandbox.blue.connections == 1


# -- the throttling proxy ----------------------------------------------------------------------------------
def _client_through(proxy):
    import boto3
    from botocore.config import Config

    return boto3.client("route53", endpoint_url=proxy.endpoint_url, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing",
                        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}))


def _upsert_weights(client, zone_id: str, blue: int, green: int) -> dict:
    return client.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": [
        {"Action": "UPSERT", "ResourceRecordSet": {"Name": "burnham.example.com", "Type": "A",
                                                   "SetIdentifier": sid, "Weight": weight, "TTL": 1,
                                                   "ResourceRecords": [{"Value": ip}]}}
        for sid, weight, ip in (("eks-blueprint-blue", blue, BLUE_IP), ("eks-blueprint-green", green, GREEN_IP))]})


def test_proxy_throttles_the_first_changes_then_forwards_and_counts(shared_sandbox):
    with ThrottlingProxy(shared_sandbox.endpoint_url, fail_first=2, operation="ChangeResourceRecordSets") as proxy:
        client = _client_through(proxy)
        zone_id = shared_sandbox.zone_id
        client.list_resource_record_sets(HostedZoneId=zone_id)  # another operation: not throttled
        for _ in range(2):
            with pytest.raises(ClientError) as caught:
                _upsert_weights(client, zone_id, 90, 10)
            assert caught.value.response["Error"]["Code"] == "Throttling"
            assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert shared_sandbox.weights()["burnham.example.com"] == (100, 0)  # nothing reached moto
        change = _upsert_weights(client, zone_id, 90, 10)["ChangeInfo"]["Id"]
        client.get_change(Id=change)
        assert shared_sandbox.weights()["burnham.example.com"] == (90, 10)
        assert proxy.counts() == {"ListResourceRecordSets": 1, "ChangeResourceRecordSets": 3, "GetChange": 1}
        assert dict(proxy.failures) == {"ChangeResourceRecordSets": 2} and proxy.remaining_failures == 0
        client.close()


@pytest.mark.parametrize("code, status", [("PriorRequestNotComplete", 400), ("InternalError", 500),
                                          ("ServiceUnavailable", 503)])
def test_proxy_injects_other_route53_errors(shared_sandbox, code, status):
    with ThrottlingProxy(shared_sandbox.endpoint_url, fail_first=1, code=code, status=status) as proxy:
        client = _client_through(proxy)
        with pytest.raises(ClientError) as caught:
            client.get_hosted_zone(Id=shared_sandbox.zone_id)
        assert caught.value.response["Error"]["Code"] == code
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
        assert client.get_hosted_zone(Id=shared_sandbox.zone_id)["HostedZone"]["Name"] == "example.com."
        proxy.fail_next(1, code="Throttling")  # re-armed in the middle of a run
        with pytest.raises(ClientError):
            client.get_hosted_zone(Id=shared_sandbox.zone_id)
        assert proxy.counts() == {"GetHostedZone": 3}
        client.close()


def test_botocore_retries_a_throttled_call_through_the_proxy(shared_sandbox):
    import boto3
    from botocore.config import Config

    with ThrottlingProxy(shared_sandbox.endpoint_url, fail_first=1, operation="ListResourceRecordSets") as proxy:
        client = boto3.client("route53", endpoint_url=proxy.endpoint_url, region_name="us-east-1",
                              aws_access_key_id="testing", aws_secret_access_key="testing",
                              config=Config(retries={"total_max_attempts": 3, "mode": "standard"}))
        client.list_resource_record_sets(HostedZoneId=shared_sandbox.zone_id)
        assert proxy.counts() == {"ListResourceRecordSets": 2}
        client.close()


@pytest.mark.parametrize("method, path, expected", [
    ("POST", "/2013-04-01/hostedzone/Z123/rrset/", "ChangeResourceRecordSets"),
    ("POST", "/2013-04-01/hostedzone/Z123/rrset", "ChangeResourceRecordSets"),
    ("GET", "/2013-04-01/hostedzone/Z123/rrset?maxitems=300&name=a.example.com.", "ListResourceRecordSets"),
    ("GET", "/2013-04-01/change/C2682N5HXP0BZ4", "GetChange"),
    ("GET", "/2013-04-01/hostedzone/Z123", "GetHostedZone"),
    ("GET", "/2013-04-01/hostedzone", "ListHostedZones"),
    ("POST", "/2013-04-01/hostedzone", "CreateHostedZone"),
    ("GET", "/2013-04-01/hostedzonesbyname?dnsname=example.com.", "ListHostedZonesByName"),
])
def test_operation_names_from_route53_paths(method, path, expected):
    assert operation_of(method, path) == expected


def test_operation_names_from_query_and_json_apis():
    assert operation_of("POST", "/", {}, b"Action=GetCallerIdentity&Version=2011-06-15") == "GetCallerIdentity"
    assert operation_of("POST", "/", {"X-Amz-Target": "DynamoDB_20120810.GetItem"}) == "GetItem"


# -- the whole sandbox ------------------------------------------------------------------------------------
def test_config_dict_is_a_valid_bluegreen_config(shared_sandbox):
    config = parse_config(shared_sandbox.config_dict(steps=[0, 10, 50, 100], bake="3s", ttl_margin="500ms"))
    assert config.route.hosted_zone == shared_sandbox.zone_id
    assert [r.name for r in config.route.records] == ["burnham.example.com", "api.example.com"]
    assert config.aws.endpoint_url == shared_sandbox.endpoint_url
    assert config.shift.steps == (0, 10, 50, 100) and config.shift.bake == 3.0
    public, direct = config.probes
    assert public.nameserver == shared_sandbox.dns_address and public.connect_to is None
    assert direct.name == "green-direct" and direct.connect_to == f"127.0.0.3:{shared_sandbox.http_port}"


def test_sandbox_starts_fast_and_stop_leaves_nothing_running(sandbox):
    # The ``sandbox`` fixture is running; start a second one to time it and stop it here.
    from bluegreen.sandbox import Sandbox

    before = set(threading.enumerate())
    started = time.monotonic()
    second = Sandbox(records=["solo.example.com"], ttl=5).start()
    assert time.monotonic() - started < 5.0
    endpoint, dns_address, port = second.endpoint_url, second.dns_address, second.http_port
    assert second.weights() == {"solo.example.com": (100, 0)}
    assert requests.get(f"http://127.0.0.2:{port}/", timeout=2).ok
    second.stop()
    for host, tcp_port in (("127.0.0.1", int(endpoint.rsplit(":", 1)[1])), ("127.0.0.1", int(dns_address.split(":")[1])),
                           ("127.0.0.2", port), ("127.0.0.3", port)):
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((host, tcp_port), timeout=1).close()
    # moto's request threads belong to werkzeug and end as their clients close; give them a moment.
    deadline = time.monotonic() + 2.0
    while set(threading.enumerate()) - before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert set(threading.enumerate()) - before == set()
    # The first sandbox was not disturbed by the second one (moto's memory is shared in a process).
    assert sandbox.weights() == {"api.example.com": (100, 0), "burnham.example.com": (100, 0)}


def test_python_m_bluegreen_sandbox_runs_until_ctrl_c():
    process = subprocess.Popen([sys.executable, "-m", "bluegreen.sandbox", "--record", "cli.example.com"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        for line in process.stdout:
            lines.append(line)
            if "Ctrl-C" in line:
                break
        text = "".join(lines)
        assert "DNS (UDP+TCP):    127.0.0.1:" in text and "cli.example.com" in text
        assert "testing" not in text  # the fake credentials are never printed
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=10)
        assert process.returncode == 0, err
        assert "sandbox stopped." in out
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_sandbox_client_talks_to_moto_over_http(sandbox):
    client = sandbox_client(sandbox.endpoint_url)
    zone = client.get_hosted_zone(Id=sandbox.zone_id)["HostedZone"]
    assert zone["Name"] == "example.com." and zone["ResourceRecordSetCount"] >= 4
    client.close()
