"""`provision`: EKS through a moto server over HTTP; ArgoCD registration in the emulated clusters.

moto (5.x) does not implement the EKS add-on API (ListAddons, DescribeAddon, DescribeAddonVersions,
CreateAddon). Those four calls, and only those, go through a second client wrapped in botocore's Stubber;
every other EKS call goes to the moto server.
"""

from __future__ import annotations

import io
import json
import sys
import uuid

import boto3
import pytest
from botocore.stub import Stubber

from bluegreen.adapters.eks import Eks, EksError, wait_for_status
from bluegreen.core.clock import FakeClock
from bluegreen.errors import ConfigError, ExitCode
from bluegreen.clusters.provision import Deps, ProvisionError, check_version_jump, green_metadata, run_provision
from bluegreen.clusters.verify import run_verify
from tests.support.blueprint_clusters import FAKE_B64, FAKE_CREDENTIAL, make_config, secret_for
from tests.support.kube_emulator import SECRETS

ROLE = "arn:aws:iam::123456789012:role/eks-cluster"
NODE_ROLE = "arn:aws:iam::123456789012:role/eks-node"
ADDONS = {"vpc-cni": "v1.18.0-eksbuild.1", "coredns": "v1.11.1-eksbuild.4"}
DEFAULTS = {"vpc-cni": "v1.19.0-eksbuild.1", "coredns": "v1.11.3-eksbuild.1"}


class Env:
    def __init__(self, moto_endpoint, kube, mode="hub"):
        self.eks = boto3.client("eks", endpoint_url=moto_endpoint, region_name="us-east-1")
        self.addons_client = boto3.client("eks", endpoint_url=moto_endpoint, region_name="us-east-1")
        self.stub = Stubber(self.addons_client)
        suffix = uuid.uuid4().hex[:6]
        self.blue, self.green = f"eks-blueprint-blue-{suffix}", f"eks-blueprint-green-{suffix}"
        self.kube = kube
        self.mode = mode
        self.clock = FakeClock()
        self.stream = io.StringIO()

    def create_blue(self, version="1.30"):
        self.eks.create_cluster(
            name=self.blue, version=version, roleArn=ROLE,
            resourcesVpcConfig={"subnetIds": ["subnet-a", "subnet-b"], "securityGroupIds": ["sg-1"],
                                "endpointPublicAccess": True, "endpointPrivateAccess": True},
            logging={"clusterLogging": [{"types": ["api", "audit"], "enabled": True}]},
            tags={"team": "platform", "Blueprint": "eks-blueprint"})
        self.eks.create_nodegroup(
            clusterName=self.blue, nodegroupName="initial", nodeRole=NODE_ROLE, subnets=["subnet-a"],
            scalingConfig={"minSize": 1, "maxSize": 5, "desiredSize": 3}, instanceTypes=["m5.large"],
            labels={"role": "general"}, taints=[{"key": "dedicated", "value": "general", "effect": "NO_SCHEDULE"}],
            releaseVersion="1.30.0-20240101", amiType="AL2_x86_64", capacityType="ON_DEMAND")
        name, obj = secret_for("blue")
        obj["metadata"]["labels"]["cluster_name"] = self.blue
        obj["metadata"]["annotations"]["aws_cluster_name"] = self.blue
        obj["metadata"]["annotations"]["karpenter_iam_role_arn"] = "arn:aws:iam::123456789012:role/karpenter-blue"
        where = "hub" if self.mode == "hub" else "blue"
        self.kube[where].put(SECRETS, "argocd", self.blue, obj)

    def config(self, **kw):
        path = str(self.kube.kubeconfig)
        return make_config(
            self.kube, mode=self.mode, aws={"region": "us-east-1"},
            blue={"eks": self.blue, "kubeconfig": path, "context": "blue"},
            green={"eks": self.green, "kubeconfig": path, "context": "green"},
            provision={"poll_interval": "10s", "wait_timeout": "30m", **kw.pop("provision", {})}, **kw)

    def deps(self):
        return Deps(eks=Eks(self.eks, addons_client=self.addons_client), monotonic=self.clock.monotonic,
                    sleep=self.clock.sleep, stream=self.stream)

    # -- the add-on API (stubbed: moto lacks it) -----------------------------------------------------
    def expect_list(self, cluster, names):
        self.stub.add_response("list_addons", {"addons": list(names)}, {"clusterName": cluster})

    def expect_blue_addons(self):
        self.expect_list(self.blue, ADDONS)
        for name, version in ADDONS.items():
            self.stub.add_response("describe_addon", {"addon": {
                "addonName": name, "clusterName": self.blue, "addonVersion": version, "status": "ACTIVE",
                **({"serviceAccountRoleArn": "arn:aws:iam::123456789012:role/vpc-cni-irsa"}
                   if name == "vpc-cni" else {})}}, {"clusterName": self.blue, "addonName": name})

    def expect_create(self, name, version="1.31", fail=False):
        self.stub.add_response("describe_addon_versions", {"addons": [{"addonName": name, "addonVersions": [
            {"addonVersion": DEFAULTS[name] + "-old", "compatibilities": [{"clusterVersion": version,
                                                                             "defaultVersion": False}]},
            {"addonVersion": DEFAULTS[name], "compatibilities": [{"clusterVersion": version,
                                                                    "defaultVersion": True}]}]}]},
                               {"addonName": name, "kubernetesVersion": version})
        params = {"clusterName": self.green, "addonName": name, "addonVersion": DEFAULTS[name],
                  "resolveConflicts": "OVERWRITE"}
        if name == "vpc-cni":
            params["serviceAccountRoleArn"] = "arn:aws:iam::123456789012:role/vpc-cni-irsa"
        if fail:
            self.stub.add_client_error("create_addon", "InvalidParameterException", "injected", 400,
                                       expected_params=params)
        else:
            self.stub.add_response("create_addon", {"addon": {"addonName": name, "clusterName": self.green,
                                                              "status": "CREATING"}}, params)


@pytest.fixture
def env(moto_endpoint, kube):
    return Env(moto_endpoint, kube)


def statuses(report):
    return {(a.kind, a.name): a.status for a in report.actions}


def test_clone_creates_cluster_nodegroups_addons_and_registers_green_in_argocd(env):
    env.create_blue()
    env.expect_list(env.green, [])
    env.expect_blue_addons()
    env.expect_create("vpc-cni")
    env.expect_create("coredns")
    with env.stub:
        report = run_provision(env.config(), "green", from_side="blue", version="1.31", deps=env.deps())
    env.stub.assert_no_pending_responses()
    assert report.ok, report.problems
    assert report.exit_code == ExitCode.OK
    assert statuses(report) == {
        ("cluster", env.green): "created", ("nodegroup", "initial"): "created", ("addon", "vpc-cni"): "created",
        ("addon", "coredns"): "created", ("argocd-secret", env.green): "created"}

    green = env.eks.describe_cluster(name=env.green)["cluster"]
    assert green["version"] == "1.31" and green["roleArn"] == ROLE
    assert green["resourcesVpcConfig"]["subnetIds"] == ["subnet-a", "subnet-b"]
    assert green["resourcesVpcConfig"]["securityGroupIds"] == ["sg-1"]
    assert green["resourcesVpcConfig"]["endpointPrivateAccess"] is True
    assert green["logging"] == {"clusterLogging": [{"types": ["api", "audit"], "enabled": True}]}
    assert green["tags"]["team"] == "platform" and green["tags"]["bluegreen/migration"] == "burnham"
    ng = env.eks.describe_nodegroup(clusterName=env.green, nodegroupName="initial")["nodegroup"]
    assert ng["scalingConfig"] == {"minSize": 1, "maxSize": 5, "desiredSize": 3}
    assert ng["instanceTypes"] == ["m5.large"] and ng["labels"] == {"role": "general"}
    assert ng["taints"] == [{"key": "dedicated", "value": "general", "effect": "NO_SCHEDULE"}]
    assert ng["subnets"] == ["subnet-a"] and ng["releaseVersion"] != "1.30.0-20240101"

    secret = env.kube["hub"].get(SECRETS, "argocd", env.green)
    labels, annotations = secret["metadata"]["labels"], secret["metadata"]["annotations"]
    assert labels["cluster_name"] == env.green and labels["kubernetes_version"] == "1.31"
    assert labels["enable_karpenter"] == "true" and labels["argocd.argoproj.io/secret-type"] == "cluster"
    assert annotations["aws_cluster_name"] == env.green and annotations["route53_weight"] == "0"
    assert annotations["cluster_endpoint"] == green["endpoint"]
    assert annotations["gitops_workloads_revision"] == "main"
    assert "argocd_password" not in annotations
    assert "kubectl.kubernetes.io/last-applied-configuration" not in annotations
    assert any("karpenter_iam_role_arn" in w for w in report.warnings)
    assert any("vpc-cni" in w and "OIDC" in w for w in report.warnings)
    # The new secret's data tells the hub how to reach green; blue's credentials were never copied.
    import base64

    config = json.loads(base64.b64decode(secret["data"]["config"]))
    assert config["awsAuthConfig"] == {"clusterName": env.green}
    assert FAKE_CREDENTIAL not in json.dumps(secret) and FAKE_B64 not in json.dumps(secret)
    # verify now finds the same metadata on both sides
    metadata_reasons = [r for r in run_verify(env.config(verify={})).reasons if r.startswith(("label", "annot"))]
    assert metadata_reasons == []
    assert FAKE_CREDENTIAL not in report.text() + json.dumps(report.as_dict())


def test_clone_in_cluster_mode_writes_the_secret_into_green(moto_endpoint, kube):
    env = Env(moto_endpoint, kube, mode="in-cluster")
    env.create_blue()
    env.expect_list(env.green, [])
    env.expect_list(env.blue, [])
    with env.stub:
        report = run_provision(env.config(), "green", from_side="blue", version="1.31", deps=env.deps())
    assert report.ok, report.problems
    secret = kube["green"].get(SECRETS, "argocd", env.green)
    assert secret["metadata"]["labels"]["cluster_name"] == env.green
    import base64

    assert base64.b64decode(secret["data"]["server"]).decode() == "https://kubernetes.default.svc"


@pytest.mark.parametrize("version,fragment", [("1.32", "2 minor versions above"), ("1.29", "older than")])
def test_version_jump_is_refused_before_anything_is_created(env, version, fragment):
    env.create_blue()
    with env.stub, pytest.raises(ConfigError, match=fragment) as caught:
        run_provision(env.config(), "green", from_side="blue", version=version, deps=env.deps())
    assert caught.value.exit_code == ExitCode.BAD_INPUT
    assert "--allow-skip" in str(caught.value)
    assert env.green not in env.eks.list_clusters()["clusters"]


def test_allow_skip_accepts_the_jump():
    check_version_jump("1.29", "1.31", allow_skip=True)
    check_version_jump("1.30", "1.31", allow_skip=False)
    check_version_jump("1.30", "1.30", allow_skip=False)
    with pytest.raises(ConfigError):
        check_version_jump("1.30", "1.32", allow_skip=False)
    with pytest.raises(ConfigError, match="must look like"):
        check_version_jump("1.30", "latest", allow_skip=False)


def test_dry_run_changes_nothing_and_returns_the_plan(env):
    env.create_blue()
    env.expect_blue_addons()
    env.stub.add_response("describe_addon_versions", {"addons": [{"addonName": "vpc-cni", "addonVersions": [
        {"addonVersion": DEFAULTS["vpc-cni"], "compatibilities": [{"clusterVersion": "1.31", "defaultVersion": True}]}]}]})
    env.stub.add_response("describe_addon_versions", {"addons": [{"addonName": "coredns", "addonVersions": [
        {"addonVersion": DEFAULTS["coredns"], "compatibilities": [{"clusterVersion": "1.31", "defaultVersion": True}]}]}]})
    before = env.kube["hub"].names(SECRETS)
    with env.stub:
        report = run_provision(env.config(), "green", from_side="blue", version="1.31", dry_run=True,
                               deps=env.deps())
    env.stub.assert_no_pending_responses()
    assert set(statuses(report).values()) == {"would-create"}
    assert statuses(report)[("addon", "vpc-cni")] == "would-create"
    assert env.green not in env.eks.list_clusters()["clusters"]
    assert env.kube["hub"].names(SECRETS) == before
    assert "nothing was changed" in report.text()
    assert env.clock.sleeps == []


def test_rerun_continues_where_it_stopped(env):
    env.create_blue()
    env.expect_list(env.green, [])
    env.expect_blue_addons()
    env.expect_create("vpc-cni")
    env.expect_create("coredns", fail=True)
    with env.stub, pytest.raises(EksError, match="creating add-on coredns"):
        run_provision(env.config(), "green", from_side="blue", version="1.31", deps=env.deps())
    assert env.kube["hub"].get(SECRETS, "argocd", env.green) is None

    env.expect_list(env.green, ["vpc-cni"])
    env.expect_blue_addons()
    env.expect_create("coredns")
    with env.stub:
        report = run_provision(env.config(), "green", from_side="blue", version="1.31", deps=env.deps())
    env.stub.assert_no_pending_responses()
    assert statuses(report) == {
        ("cluster", env.green): "exists", ("nodegroup", "initial"): "exists", ("addon", "vpc-cni"): "exists",
        ("addon", "coredns"): "created", ("argocd-secret", env.green): "created"}

    env.expect_list(env.green, list(ADDONS))
    env.expect_blue_addons()
    with env.stub:
        third = run_provision(env.config(), "green", from_side="blue", version="1.31", deps=env.deps())
    assert "created" not in statuses(third).values() and third.ok


def test_existing_green_at_another_version_is_refused(env):
    env.create_blue()
    env.eks.create_cluster(name=env.green, version="1.30", roleArn=ROLE, resourcesVpcConfig={"subnetIds": ["s"]})
    with pytest.raises(ConfigError, match="already exists at Kubernetes 1.30"):
        run_provision(env.config(), "green", from_side="blue", version="1.31", deps=env.deps())


# -- target and external command modes -------------------------------------------------------------------
def test_target_mode_checks_active_and_registered(env):
    env.create_blue()
    env.eks.create_cluster(name=env.green, version="1.31", roleArn=ROLE, resourcesVpcConfig={"subnetIds": ["s"]})
    report = run_provision(env.config(), "green", deps=env.deps())
    assert not report.ok and report.exit_code == ExitCode.NOT_READY
    assert any("ArgoCD registration" in p and "found: " + env.blue in p for p in report.problems), report.problems

    name, obj = secret_for("green")
    obj["metadata"]["labels"]["cluster_name"] = env.green
    env.kube["hub"].put(SECRETS, "argocd", env.green, obj)
    report = run_provision(env.config(), "green", deps=env.deps())
    assert report.ok, report.problems
    assert statuses(report) == {("check", f"EKS cluster {env.green}"): "ok", ("check", "ArgoCD registration"): "ok"}


def test_target_mode_reports_a_missing_cluster(env):
    report = run_provision(env.config(), "green", deps=env.deps())
    assert any("does not exist" in p for p in report.problems)


def test_external_command_runs_with_its_output_streamed_then_targets(env):
    env.create_blue()
    env.eks.create_cluster(name=env.green, version="1.31", roleArn=ROLE, resourcesVpcConfig={"subnetIds": ["s"]})
    name, obj = secret_for("green")
    obj["metadata"]["labels"]["cluster_name"] = env.green
    env.kube["hub"].put(SECRETS, "argocd", env.green, obj)
    command = f"{sys.executable} -c \"print('terraform: apply complete'); print('done')\""
    config = env.config(provision={"command": command})
    dry = run_provision(config, "green", dry_run=True, deps=env.deps())
    assert statuses(dry)[("command", command)] == "would-run" and env.stream.getvalue() == ""
    report = run_provision(config, "green", deps=env.deps())
    assert report.ok and report.mode == "command"
    assert env.stream.getvalue() == "terraform: apply complete\ndone\n"

    failing = env.config(provision={"command": f"{sys.executable} -c \"raise SystemExit(3)\""})
    with pytest.raises(ProvisionError, match="exited with status 3"):
        run_provision(failing, "green", deps=env.deps())


def test_clone_needs_eks_names_and_a_version(env, kube):
    config = make_config(kube)  # kubeconfig contexts only
    with pytest.raises(ConfigError, match="clone mode needs `clusters.blue.eks`"):
        run_provision(config, "green", from_side="blue", version="1.31", deps=env.deps())
    env.create_blue()
    with pytest.raises(ConfigError, match="--version is required"):
        run_provision(env.config(), "green", from_side="blue", deps=env.deps())


# -- waiting, with an injected clock ------------------------------------------------------------------------
def test_wait_for_active_is_bounded_and_uses_the_injected_clock():
    clock = FakeClock()
    answers = iter([{"status": "CREATING"}] * 3 + [{"status": "ACTIVE", "name": "g"}])
    result = wait_for_status(lambda: next(answers), "EKS cluster g", monotonic=clock.monotonic, sleep=clock.sleep,
                             timeout=1800, interval=30)
    assert result["name"] == "g" and clock.sleeps == [30, 30, 30]

    clock = FakeClock()
    with pytest.raises(EksError, match=r"still CREATING after 1800s"):
        wait_for_status(lambda: {"status": "CREATING"}, "EKS cluster g", monotonic=clock.monotonic,
                        sleep=clock.sleep, timeout=1800, interval=30)
    assert sum(clock.sleeps) == 1800
    with pytest.raises(EksError, match="FAILED"):
        wait_for_status(lambda: {"status": "FAILED"}, "EKS cluster g", monotonic=clock.monotonic,
                        sleep=clock.sleep, timeout=10, interval=1)


def test_green_metadata_sets_cluster_specific_keys_and_weight_zero():
    labels, annotations, suspects = green_metadata(
        {"cluster_name": "b", "kubernetes_version": "1.30", "enable_x": "true"},
        {"aws_cluster_name": "b", "route53_weight": "100", "argocd_password": "h", "external_dns_iam_role_arn": "r",
         "aws_vpc_id": "vpc-1"},
        name="g", endpoint="https://g", version="1.31", vpc_id=None)
    assert labels == {"cluster_name": "g", "kubernetes_version": "1.31", "enable_x": "true"}
    assert annotations == {"aws_cluster_name": "g", "route53_weight": "0", "external_dns_iam_role_arn": "r",
                           "aws_vpc_id": "vpc-1"}
    assert suspects == ["external_dns_iam_role_arn"]
