"""The HTTP prober against real servers: the sandbox's backends on 127.0.0.2/127.0.0.3 and its DNS server."""

from __future__ import annotations

import socket
import time
from collections import Counter
from dataclasses import replace

import dns.flags
import dns.message
import dns.query
import pytest

from bluegreen.adapters.probes import DialAdapter, HttpProber, SampleBuffer, probe_once
from bluegreen.config import ProbeConfig
from bluegreen.core.verdict import Sample
from bluegreen.sandbox import CLUSTER_PATTERN

BLUE, GREEN = "eks-blueprint-blue", "eks-blueprint-green"


def public(sb, **overrides) -> ProbeConfig:
    """Through the sandbox DNS, as a client on the internet would reach the service."""
    fields = dict(name="public", url=sb.url(), resolver=sb.dns_address, cluster_pattern=CLUSTER_PATTERN,
                  interval=0.02, timeout=1.0)
    fields.update(overrides)
    return ProbeConfig(**fields)


def green_direct(sb, **overrides) -> ProbeConfig:
    fields = dict(name="green-direct", url=sb.url(), connect_to=f"127.0.0.3:{sb.http_port}",
                  cluster_pattern=CLUSTER_PATTERN, interval=0.02, timeout=1.0)
    fields.update(overrides)
    return ProbeConfig(**fields)


def run_for(probes, seconds: float, **kwargs) -> tuple[list[Sample], dict]:
    prober = HttpProber(probes, **kwargs)
    prober.start()
    try:
        time.sleep(seconds)
    finally:
        prober.stop()
    return prober.drain(), prober.stats()


def free_port_without_listener() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- one request ---------------------------------------------------------------------------------------
def test_public_probe_resolves_through_the_sandbox_dns_and_sees_blue(shared_sandbox):
    sample = probe_once(public(shared_sandbox))
    assert sample.ok and sample.status == 200 and sample.cluster == BLUE and sample.error is None
    assert 0 < sample.latency < 1.0
    assert shared_sandbox.blue.requests == 1 and shared_sandbox.green.requests == 0


def test_connect_to_pins_green_whatever_the_dns_says(shared_sandbox):
    sample = probe_once(green_direct(shared_sandbox))
    assert sample.ok and sample.cluster == GREEN
    assert shared_sandbox.green.requests == 1 and shared_sandbox.blue.requests == 0


def test_http_500_is_a_failed_sample_that_still_names_the_cluster(shared_sandbox):
    shared_sandbox.fail_green("error")
    sample = probe_once(green_direct(shared_sandbox))
    assert not sample.ok and sample.status == 500 and sample.error == "HTTP 500"
    assert sample.cluster == GREEN


def test_expect_status_accepts_what_it_lists(shared_sandbox):
    shared_sandbox.fail_green("error")
    assert probe_once(green_direct(shared_sandbox, expect_status=(200, 500))).ok


def test_slow_backend_times_out_as_a_failure_at_the_timeout(shared_sandbox):
    shared_sandbox.fail_green("slow", delay=3.0)
    sample = probe_once(green_direct(shared_sandbox, timeout=0.3))
    assert not sample.ok and sample.status is None
    assert sample.error.startswith("timeout")
    assert 0.25 < sample.latency < 1.0


def test_connection_refused_is_a_short_error():
    port = free_port_without_listener()
    sample = probe_once(ProbeConfig(name="down", url=f"http://127.0.0.1:{port}/", timeout=1.0))
    assert not sample.ok and sample.error == "connection refused" and sample.status is None


def test_errors_never_carry_the_url_query_or_headers():
    port = free_port_without_listener()
    probe = ProbeConfig(name="down", url=f"http://127.0.0.1:{port}/health?token=SECRET-QUERY",
                        headers={"Authorization": "Bearer SECRET-HEADER"}, timeout=0.5)
    sample = probe_once(probe)
    assert "SECRET" not in repr(sample)


def test_unknown_name_fails_with_nxdomain(shared_sandbox):
    sample = probe_once(public(shared_sandbox, url=f"http://nope.example.com:{shared_sandbox.http_port}/"))
    assert not sample.ok and "NXDOMAIN" in sample.error


def test_body_contains_and_cluster_header(shared_sandbox):
    probe = green_direct(shared_sandbox, cluster_pattern=None, cluster_header="X-Cluster-Name",
                         body_contains="CLUSTER_NAME")
    sample = probe_once(probe)
    assert sample.ok and sample.cluster == GREEN
    missing = probe_once(replace(probe, body_contains="not on the page"))
    assert not missing.ok and missing.status == 200 and "body" in missing.error


def test_positional_group_works_when_the_pattern_has_no_named_group(shared_sandbox):
    sample = probe_once(green_direct(shared_sandbox, cluster_pattern=r"<span>CLUSTER_NAME</span><span>([^<]+)<"))
    assert sample.cluster == GREEN


def test_truncated_udp_answer_falls_back_to_tcp(shared_sandbox):
    sb = shared_sandbox
    name = "big.example.com"
    values = ["127.0.0.2"] + [f"10.1.{i // 250}.{i % 250 + 1}" for i in range(59)]
    client = sb.route53()
    client.change_resource_record_sets(HostedZoneId=sb.zone_id, ChangeBatch={"Changes": [{
        "Action": "UPSERT", "ResourceRecordSet": {"Name": name, "Type": "A", "TTL": 1,
                                                  "ResourceRecords": [{"Value": v} for v in values]}}]})
    try:
        sb.route53_proxy.settle(sb.zone_id)  # the change is INSYNC: the DNS server may serve it
        sb.dns.refresh()
        host, port = sb.dns_address.split(":")
        udp_answer = dns.query.udp(dns.message.make_query(name, "A"), host, port=int(port), timeout=2)
        assert udp_answer.flags & dns.flags.TC  # too big for 512 bytes: the server says so
        sample = probe_once(public(sb, url=f"http://{name}:{sb.http_port}/"))
        assert sample.ok and sample.cluster == BLUE  # the first value, read from the TCP answer
    finally:
        client.change_resource_record_sets(HostedZoneId=sb.zone_id, ChangeBatch={"Changes": [{
            "Action": "DELETE", "ResourceRecordSet": {"Name": name, "Type": "A", "TTL": 1,
                                                      "ResourceRecords": [{"Value": v} for v in values]}}]})
        sb.dns.refresh()


def test_https_dials_the_pinned_address_with_the_url_name_for_sni_and_certificate():
    # Pool keys are what urllib3 connects with: host is the dialed address, server_hostname the URL's name.
    import requests

    adapter = DialAdapter()
    request = requests.Request("GET", "https://secure.example.com:8443/health").prepare()
    request.dial_to = ("127.0.0.3", 9443)
    pool = adapter.get_connection_with_tls_context(request, verify=True)
    assert (pool.host, pool.port) == ("127.0.0.3", 9443)
    assert pool.conn_kw["server_hostname"] == "secure.example.com"
    assert pool.assert_hostname == "secure.example.com"
    adapter.close()


@pytest.fixture
def tls_server(tmp_path):
    """An HTTPS server on 127.0.0.3 with a self-signed certificate for secure.example.com; records the SNI
    and Host each request arrived with."""
    import datetime
    import ssl
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "secure.example.com")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("secure.example.com")]), critical=False)
            .sign(key, hashes.SHA256()))
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                         serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    seen: dict[str, list] = {"sni": [], "host": []}
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    context.sni_callback = lambda sock, server_name, ctx: seen["sni"].append(server_name)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            seen["host"].append(self.headers["Host"])
            body = b"<span>CLUSTER_NAME</span><span>eks-blueprint-green</span>"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.3", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield server.server_address[1], seen
    server.shutdown()
    thread.join()
    server.server_close()


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_https_connect_to_sends_the_url_name_as_sni_and_host(tls_server):
    port, seen = tls_server
    probe = ProbeConfig(name="tls", url=f"https://secure.example.com:{port}/", connect_to=f"127.0.0.3:{port}",
                        cluster_pattern=CLUSTER_PATTERN, verify_tls=False, timeout=2.0)
    sample = probe_once(probe)
    assert sample.ok and sample.cluster == GREEN
    assert seen["sni"] == ["secure.example.com"] and seen["host"] == [f"secure.example.com:{port}"]
    # With verification on, a self-signed certificate is refused (the check is not silently off).
    refused = probe_once(replace(probe, verify_tls=True))
    assert not refused.ok and refused.error == "tls error"


# -- the prober ------------------------------------------------------------------------------------------
def test_at_50_50_the_public_probe_sees_both_clusters(shared_sandbox):
    shared_sandbox.set_weights(50, 50)
    samples, stats = run_for([public(shared_sandbox, interval=0.01, reuse_connections=False)], 1.5)
    clusters = Counter(s.cluster for s in samples)
    assert len(samples) >= 60 and all(s.ok for s in samples)
    # With reuse_connections: false each request resolves afresh, so answers follow the weights: with
    # n >= 60 at p = 0.5, a share under 20% has a probability below 1e-6.
    assert clusters[BLUE] >= 0.2 * len(samples) and clusters[GREEN] >= 0.2 * len(samples)
    assert stats["dropped"] == 0


def test_at_100_0_the_public_probe_sees_only_blue_and_green_direct_only_green(shared_sandbox):
    samples, _ = run_for([public(shared_sandbox), green_direct(shared_sandbox)], 0.6)
    by_probe = {name: Counter(s.cluster for s in samples if s.probe == name) for name in ("public", "green-direct")}
    assert set(by_probe["public"]) == {BLUE} and set(by_probe["green-direct"]) == {GREEN}
    assert sum(by_probe["public"].values()) >= 10


def test_connections_are_reused(shared_sandbox):
    samples, _ = run_for([green_direct(shared_sandbox, interval=0.01)], 0.8)
    assert len(samples) >= 30 and all(s.ok for s in samples)
    # One connection per request would mean as many connections as requests.
    assert shared_sandbox.green.connections <= 10 < shared_sandbox.green.requests


def test_slow_answers_do_not_lower_the_request_rate_and_each_timeout_is_a_sample(shared_sandbox):
    shared_sandbox.fail_green("slow", delay=2.0)
    probe = green_direct(shared_sandbox, interval=0.1, timeout=0.3)
    samples, stats = run_for([probe], 1.2)
    # One request every 100 ms whatever the answer time: ~12 sent in 1.2 s, and each one timed out.
    assert stats["sent"]["green-direct"] >= 9 and stats["skipped"]["green-direct"] == 0
    assert len(samples) == stats["sent"]["green-direct"]
    assert all(not s.ok and s.error.startswith("timeout") for s in samples)
    # Timeouts are recorded when they happen, not when the answer would have come: spread over the run.
    assert max(s.at for s in samples) - min(s.at for s in samples) > 0.6


def test_the_buffer_is_bounded_and_counts_what_it_dropped(shared_sandbox):
    samples, stats = run_for([green_direct(shared_sandbox, interval=0.005)], 0.5, buffer_size=10)
    assert len(samples) == 10
    assert stats["dropped"] == stats["sent"]["green-direct"] - 10 > 0


def test_sample_buffer_keeps_the_newest():
    buffer = SampleBuffer(capacity=3)
    for i in range(5):
        buffer.add(Sample(probe="p", at=float(i), ok=True, latency=0.0))
    assert [s.at for s in buffer.drain()] == [2.0, 3.0, 4.0]
    assert buffer.dropped == 2 and buffer.drain() == []


def test_names_and_stop_leave_no_threads(shared_sandbox):
    import threading

    prober = HttpProber([public(shared_sandbox), green_direct(shared_sandbox)])
    assert list(prober.names) == ["public", "green-direct"]
    prober.start()
    time.sleep(0.2)
    prober.stop()
    assert [t.name for t in threading.enumerate() if t.name.startswith("bluegreen-probe")] == []
    assert prober.drain()


@pytest.mark.parametrize("interval, timeout, expected", [(0.5, 2.0, 5), (1.0, 0.5, 2), (0.001, 2.0, 64)])
def test_in_flight_limit(interval, timeout, expected):
    from bluegreen.adapters.probes import in_flight_limit

    assert in_flight_limit(ProbeConfig(name="p", url="http://x/", interval=interval, timeout=timeout)) == expected


def test_a_keep_alive_probe_follows_a_weight_change_within_its_connection_age(shared_sandbox):
    """The bug a real resolver showed: a probe that kept its first connection reported blue through a whole
    shift to a dead green. A connection now lives at most max_connection_age; the next one resolves again."""
    sb = shared_sandbox
    prober = HttpProber([public(sb, interval=0.02, max_connection_age=0.2, direct_sides=False)])
    prober.start()
    try:
        time.sleep(0.4)
        sb.set_weights(0, 100)  # everything to green now
        time.sleep(0.2 + 0.3)  # one connection age, then the weighted server answers green
        prober.drain()
        time.sleep(0.5)
    finally:
        prober.stop()
    late = prober.drain()
    assert late and {s.cluster for s in late} == {GREEN}
    assert {s.address for s in late} == {"127.0.0.3"} and len({s.connection for s in late}) >= 2


def test_side_companions_dial_each_sides_address_and_are_pinned(shared_sandbox):
    sb = shared_sandbox
    prober = HttpProber([public(sb, interval=0.05)])
    prober.start()
    try:
        prober.set_side_addresses({"blue": "127.0.0.2", "green": "127.0.0.3"})
        time.sleep(0.5)
    finally:
        prober.stop()
    by_name = {}
    for sample in prober.drain():
        by_name.setdefault(sample.probe, set()).add((sample.cluster, sample.pinned))
    assert by_name["public@green"] == {(GREEN, True)} and by_name["public@blue"] == {(BLUE, True)}
    assert by_name["public"] == {(BLUE, False)}  # 100/0: the public probe itself follows DNS
    assert prober.names == ("public",)  # companions are not configured probes
