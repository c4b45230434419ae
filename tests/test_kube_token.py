"""EKS bearer tokens: the format `aws eks get-token` prints, renewal before expiry, and no leaks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import urllib.parse
import uuid

import boto3
import pytest

from bluegreen.adapters import argocd
from bluegreen.adapters.kube import (
    CLUSTER_ID_HEADER, TOKEN_PREFIX, ClusterAccessError, EksTokenSource, Kube, connect, make_eks_token,
    token_configuration,
)
from bluegreen.config.clusters import ClusterAccess
from bluegreen.config import AwsConfig
from tests.support.kube_emulator import SECRETS, cluster_secret

SECRET_KEY = "testing"  # the fake credentials tests/conftest.py puts in the environment


def sts(region="us-west-2"):
    return boto3.client("sts", region_name=region, aws_access_key_id="testing", aws_secret_access_key=SECRET_KEY)


def decode(token: str) -> str:
    assert token.startswith(TOKEN_PREFIX)
    body = token[len(TOKEN_PREFIX):]
    assert "=" not in body and "+" not in body and "/" not in body  # base64url without padding
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def signature_for(url: str, cluster_header: str) -> str:
    """Recompute the SigV4 query signature as STS would, given the x-k8s-aws-id header the API server
    (aws-iam-authenticator) sends along with the URL."""
    parts = urllib.parse.urlsplit(url)
    query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True) if k != "X-Amz-Signature"]
    canonical_query = "&".join(f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}"
                               for k, v in sorted(query))
    params = dict(query)
    signed = params["X-Amz-SignedHeaders"]
    headers = {"host": parts.netloc, CLUSTER_ID_HEADER: cluster_header}
    canonical_headers = "".join(f"{h}:{headers[h]}\n" for h in signed.split(";"))
    request = "\n".join(["GET", parts.path or "/", canonical_query, canonical_headers, signed,
                         hashlib.sha256(b"").hexdigest()])  # STS: the empty body is hashed
    amz_date = params["X-Amz-Date"]
    scope = params["X-Amz-Credential"].split("/", 1)[1]
    date, region, service, _ = scope.split("/")
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(request.encode()).hexdigest()])
    key = _hmac(_hmac(_hmac(_hmac(("AWS4" + SECRET_KEY).encode(), date), region), service), "aws4_request")
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def test_token_is_a_presigned_get_caller_identity_url_bound_to_the_cluster():
    token = make_eks_token(sts(), "eks-blueprint-green")
    url = decode(token)
    parts = urllib.parse.urlsplit(url)
    params = dict(urllib.parse.parse_qsl(parts.query))
    assert parts.scheme == "https" and parts.netloc == "sts.us-west-2.amazonaws.com"
    assert params["Action"] == "GetCallerIdentity" and params["Version"] == "2011-06-15"
    assert params["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert params["X-Amz-Expires"] == "60"
    assert CLUSTER_ID_HEADER in params["X-Amz-SignedHeaders"].split(";")
    # The signature covers the header's value: it verifies with this cluster's name and no other.
    assert params["X-Amz-Signature"] == signature_for(url, "eks-blueprint-green")
    assert params["X-Amz-Signature"] != signature_for(url, "eks-blueprint-blue")


def test_the_signing_hook_does_not_stay_on_the_sts_client():
    client = sts()
    make_eks_token(client, "a")
    plain = client.generate_presigned_url("get_caller_identity", Params={}, ExpiresIn=60, HttpMethod="GET")
    assert CLUSTER_ID_HEADER not in dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(plain).query))[
        "X-Amz-SignedHeaders"]


def test_token_is_renewed_before_the_15_minutes_and_hidden_from_repr():
    now = [1000.0]
    source = EksTokenSource("eks-blueprint-green", sts, monotonic=lambda: now[0])
    first = source.token()
    now[0] += 11 * 60
    assert source.token() == first and source.renewals == 1
    now[0] += 60  # 12 minutes: renewed, well before EKS's 15
    source.token()
    assert source.renewals == 2
    assert first not in repr(source) and "hidden" in repr(source)


def test_client_sends_the_token_and_renews_it_through_the_refresh_hook(kube):
    kube["green"].put(SECRETS, "argocd", "eks-blueprint-green", cluster_secret("eks-blueprint-green"))
    from kubernetes import client as k8s

    now = [0.0]
    source = EksTokenSource("eks-blueprint-green", sts, monotonic=lambda: now[0])
    api = Kube(k8s.ApiClient(token_configuration(kube["green"].url, source)), "green cluster")
    assert [s.name for s in argocd.list_cluster_secrets(api, "argocd")] == ["eks-blueprint-green"]
    now[0] += 13 * 60
    argocd.list_cluster_secrets(api, "argocd")
    seen = [r.headers.get("Authorization", "") for r in kube["green"].requests()][-2:]
    assert all(h.startswith("Bearer " + TOKEN_PREFIX) for h in seen), [h[:30] for h in seen]
    assert decode(seen[0][len("Bearer "):]).startswith("https://sts.")
    assert source.renewals == 2
    assert "k8s-aws-v1" not in repr(api) + repr(api.api_client.configuration)


def test_connect_through_eks_uses_describe_cluster_endpoint_and_ca(moto_endpoint):
    eks = boto3.client("eks", endpoint_url=moto_endpoint, region_name="us-east-1")
    name = f"c-{uuid.uuid4().hex[:8]}"
    eks.create_cluster(name=name, roleArn="arn:aws:iam::123456789012:role/eks", version="1.30",
                       resourcesVpcConfig={"subnetIds": ["subnet-1"]})
    endpoint = eks.describe_cluster(name=name)["cluster"]["endpoint"]
    aws = AwsConfig(region="us-east-1", endpoint_url=moto_endpoint)
    client = connect(ClusterAccess(eks=name), aws, label=f"green cluster {name!r}")
    configuration = client.api_client.configuration
    assert configuration.host == endpoint and client.eks_endpoint == endpoint
    header = configuration.get_api_key_with_prefix("authorization")
    assert header.startswith("Bearer " + TOKEN_PREFIX)
    assert header[len("Bearer "):] not in repr(client) + repr(configuration)


def test_eks_cluster_that_does_not_exist_is_named_in_the_error(moto_endpoint):
    aws = AwsConfig(region="us-east-1", endpoint_url=moto_endpoint)
    with pytest.raises(ClusterAccessError, match="green cluster 'ghost' .* does not exist in EKS"):
        connect(ClusterAccess(eks="ghost"), aws, label="green cluster 'ghost' (EKS cluster 'ghost')")


def test_unreachable_api_server_error_names_the_cluster_and_never_the_token():
    import socket

    from kubernetes import client as k8s

    from bluegreen import logs

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    source = EksTokenSource("eks-blueprint-green", sts)
    api = Kube(k8s.ApiClient(token_configuration(f"http://127.0.0.1:{port}", source)),
               "green cluster 'eks-blueprint-green'")
    stream = io.StringIO()
    logs.configure("json", stream, level="debug")
    try:
        with pytest.raises(ClusterAccessError) as caught:
            argocd.list_cluster_secrets(api, "argocd")
    finally:
        logs.configure("console", io.StringIO())
    text = str(caught.value) + repr(caught.value) + stream.getvalue()
    assert "cannot reach the green cluster 'eks-blueprint-green'" in str(caught.value)
    assert source.token() not in text and "k8s-aws-v1" not in text
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
