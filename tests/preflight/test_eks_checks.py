"""The EKS/AWS part of preflight: EKS, EC2 and IAM through moto over HTTP, the cluster through the emulator.

moto (5.2) does not implement ListAddons, DescribeAddon, DescribeAddonVersions, ListInsights,
DescribeInsight or ListPodIdentityAssociations (its server answers 404): those six calls, and only those,
go to a botocore Stubber, through ``SplitEks`` below. Everything else is moto.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
from botocore.stub import Stubber

from bluegreen.adapters.inventory import collect_inventory
from bluegreen.preflight import PreflightSettings, run_preflight
from bluegreen.sandbox.moto_server import sandbox_client
from tests.support.preflight_objects import DAEMONSETS, DEPLOYMENTS, NODES, PDBS, SERVICE_ACCOUNTS, container, daemonset, \
    deployment, node, pdb

ACCOUNT = "123456789012"
NS = "team-burnham"
STUBBED = {"list_addons", "describe_addon", "describe_addon_versions", "list_insights", "describe_insight",
           "list_pod_identity_associations"}


class SplitEks:
    """One EKS client for the code under test: the calls moto lacks go to the stubbed client."""

    def __init__(self, moto_client, stubbed_client) -> None:
        self._moto, self._stubbed = moto_client, stubbed_client

    def __getattr__(self, name):
        return getattr(self._stubbed if name in STUBBED else self._moto, name)


class AwsWorld:
    def __init__(self, endpoint: str) -> None:
        self.eks = sandbox_client(endpoint, "eks")
        self.ec2 = sandbox_client(endpoint, "ec2")
        self.iam = sandbox_client(endpoint, "iam")
        self.stubbed = sandbox_client(endpoint, "eks")
        self.stubber = Stubber(self.stubbed)
        self.name = f"green-{uuid.uuid4().hex[:6]}"

    def build(self, *, ami="AL2023_x86_64_STANDARD", template_behind=False, control_plane_free=None,
              node_cidr="10.0.2.0/24") -> None:
        vpc = self.ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        self.cp_subnet = self.ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/28")["Subnet"]["SubnetId"]
        if control_plane_free is not None:  # a /28 has 11 usable addresses; network interfaces take the rest
            for _ in range(11 - control_plane_free):
                self.ec2.create_network_interface(SubnetId=self.cp_subnet)
        self.node_subnet = self.ec2.create_subnet(VpcId=vpc, CidrBlock=node_cidr)["Subnet"]["SubnetId"]
        role = self.iam.create_role(RoleName=f"{self.name}-cluster", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        cluster = self.eks.create_cluster(name=self.name, version="1.30", roleArn=role,
                                          resourcesVpcConfig={"subnetIds": [self.cp_subnet]})["cluster"]
        self.issuer = cluster["identity"]["oidc"]["issuer"]
        template = self.ec2.create_launch_template(LaunchTemplateName=f"{self.name}-nodes",
                                                   LaunchTemplateData={"InstanceType": "m6i.large"})
        self.template_id = template["LaunchTemplate"]["LaunchTemplateId"]
        if template_behind:
            self.ec2.create_launch_template_version(LaunchTemplateId=self.template_id,
                                                    LaunchTemplateData={"InstanceType": "m7i.large"})
        self.eks.create_nodegroup(clusterName=self.name, nodegroupName="default", nodeRole=role,
                                  subnets=[self.node_subnet], amiType=ami,
                                  launchTemplate={"id": self.template_id, "version": "1"})

    def irsa_role(self, name: str, issuer: str) -> str:
        provider = issuer.removeprefix("https://")
        trust = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "sts:AssumeRoleWithWebIdentity",
            "Principal": {"Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{provider}"},
            "Condition": {"StringEquals": {f"{provider}:sub": f"system:serviceaccount:{NS}:web",
                                           f"{provider}:aud": "sts.amazonaws.com"}}}]}
        return self.iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]

    def stub(self, *, addon_version="v1.18.3-eksbuild.1", compatible=("v1.19.0-eksbuild.1", "v1.18.3-eksbuild.1"),
             addon_issues=(), insight_status="PASSING", associations=(("team-burnham", "web"),),
             peer_associations=(("team-burnham", "web"),), peer="blue-cluster") -> None:
        s = self.stubber
        s.add_response("list_addons", {"addons": ["vpc-cni"]}, {"clusterName": self.name})
        s.add_response("describe_addon", {"addon": {
            "addonName": "vpc-cni", "clusterName": self.name, "status": "DEGRADED" if addon_issues else "ACTIVE",
            "addonVersion": addon_version, "health": {"issues": [
                {"code": c, "message": m, "resourceIds": []} for c, m in addon_issues]}}},
            {"clusterName": self.name, "addonName": "vpc-cni"})
        s.add_response("describe_addon_versions", {"addons": [{"addonName": "vpc-cni", "addonVersions": [
            {"addonVersion": v, "compatibilities": [{"clusterVersion": "1.31", "defaultVersion": i == 0}]}
            for i, v in enumerate(compatible)]}]}, {"addonName": "vpc-cni", "kubernetesVersion": "1.31"})
        s.add_response("list_insights", {"insights": [{"id": "ins-1", "name": "Deprecated APIs removed in 1.31"}]},
                       {"clusterName": self.name, "filter": {"kubernetesVersions": ["1.31"]}})
        s.add_response("describe_insight", {"insight": {
            "id": "ins-1", "name": "Deprecated APIs removed in 1.31", "category": "UPGRADE_READINESS",
            "kubernetesVersion": "1.31", "insightStatus": {"status": insight_status, "reason": "found 1 call"},
            "description": "Checks for usage of deprecated APIs", "recommendation": "Update the clients",
            "resources": [{"kubernetesResourceUri": "/apis/flowcontrol.apiserver.k8s.io/v1beta3/flowschemas"}]}},
            {"clusterName": self.name, "id": "ins-1"})
        s.add_response("list_pod_identity_associations", {"associations": [
            {"clusterName": self.name, "namespace": n, "serviceAccount": a} for n, a in associations]},
            {"clusterName": self.name})
        s.add_response("list_pod_identity_associations", {"associations": [
            {"clusterName": peer, "namespace": n, "serviceAccount": a} for n, a in peer_associations]},
            {"clusterName": peer})
        s.activate()

    def client(self) -> SplitEks:
        return SplitEks(self.eks, self.stubbed)


@pytest.fixture
def aws(moto_endpoint):
    world = AwsWorld(moto_endpoint)
    yield world
    world.stubber.deactivate()


def plant(green, *, role_arn: str, kube_proxy="v1.30.0-minimal-eksbuild.3", kubelet="v1.30.4-eks-a737599"):
    green.put(DEPLOYMENTS, NS, "web", deployment("web"))
    green.put(PDBS, NS, "web", pdb("web"))
    green.put(NODES, None, "ip-10-0-2-10", node(kubelet))
    green.put(DAEMONSETS, "kube-system", "kube-proxy", daemonset("kube-proxy", [container(
        "kube-proxy", f"602401143452.dkr.ecr.us-east-1.amazonaws.com/eks/kube-proxy:{kube_proxy}", probe=False)]))
    green.put(SERVICE_ACCOUNTS, NS, "web", {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {
        "annotations": {"eks.amazonaws.com/role-arn": role_arn}}})


def run(aws, green_kube, **settings):
    inventory = collect_inventory(green_kube, eks=aws.client(), iam=aws.iam, ec2=aws.ec2, cluster_name=aws.name,
                                  target_version="1.31", peer_cluster_name="blue-cluster")
    aws.stubber.assert_no_pending_responses()
    return run_preflight(inventory, target_version="1.31", settings=PreflightSettings(**settings),
                         today=dt.date(2025, 9, 1))


def codes(report):
    return sorted((f.code, f.object) for f in report.findings)


def test_clean_eks_cluster_only_reports_support_dates(aws, green, green_kube):
    aws.build()
    plant(green, role_arn=aws.irsa_role(f"{aws.name}-web", aws.issuer))
    aws.stub()
    report = run(aws, green_kube)
    assert codes(report) == [("BG-EKS-011", "Cluster"), ("BG-EKS-011", "Cluster")], report.text()
    texts = [f.what for f in report.findings]
    assert any("current version 1.30" in t and "in extended support now" in t for t in texts)
    assert any("target version 1.31" in t and "2025-11-26" in t for t in texts)
    assert "$0.60" in report.findings[0].why
    assert "Upgrade Insights" in report.checked and "Pod Identity" in report.checked


def test_every_eks_finding(aws, green, green_kube):
    aws.build(ami="AL2_x86_64", template_behind=True, control_plane_free=3, node_cidr="10.0.2.0/28")
    blue_issuer = "https://oidc.eks.us-east-1.amazonaws.com/id/BLUEBLUEBLUE"
    plant(green, role_arn=aws.irsa_role(f"{aws.name}-web", blue_issuer), kube_proxy="v1.27.4-eksbuild.2",
          kubelet="v1.27.9-eks-5e0fdde")
    aws.stub(addon_version="v1.15.1-eksbuild.1", addon_issues=[("InsufficientNumberOfReplicas", "1 of 2 ready")],
             insight_status="ERROR", associations=(), peer_associations=(("team-burnham", "web"),))
    report = run(aws, green_kube)
    found = codes(report)
    for expected in [("BG-EKS-002", "Node/ip-10-0-2-10"),  # kubelet 1.27 vs 1.31: 4 minors, 3 allowed
                     ("BG-EKS-003", "DaemonSet/kube-system/kube-proxy"),
                     ("BG-EKS-004", "Addon/vpc-cni"), ("BG-EKS-005", "Addon/vpc-cni"),
                     ("BG-EKS-007", "Nodegroup/default"),
                     ("BG-EKS-009", "Insight/Deprecated APIs removed in 1.31"),
                     ("BG-EKS-010", f"Subnet/{aws.cp_subnet}"), ("BG-EKS-010", f"Subnet/{aws.node_subnet}"),
                     ("BG-EKS-012", f"ServiceAccount/{NS}/web"), ("BG-EKS-013", f"ServiceAccount/{NS}/web")]:
        assert expected in found, (expected, report.text())
    by_code = {f.code: f for f in report.findings}
    assert by_code["BG-EKS-009"].severity.value == "error" and "ERROR" in by_code["BG-EKS-009"].what
    assert "version 1, latest is 2" in by_code["BG-EKS-007"].what
    assert "v1.19.0-eksbuild.1" in by_code["BG-EKS-004"].what
    cp = next(f for f in report.findings if f.object == f"Subnet/{aws.cp_subnet}")
    assert cp.severity.value == "error" and "3 free" in cp.what
    assert report.has_errors
    # AL2 is fine for 1.31; the same node group fails for a 1.33 target (no AL2 AMIs from 1.33 on)
    assert "BG-EKS-008" not in {c for c, _ in found}


def test_al2_node_group_for_a_target_without_al2(aws, green, green_kube):
    from bluegreen.preflight.eks_checks import check_nodegroups
    from bluegreen.preflight.inventory import EksInventory

    aws.build(ami="AL2_x86_64")
    group = aws.eks.describe_nodegroup(clusterName=aws.name, nodegroupName="default")["nodegroup"]
    eks = EksInventory(cluster={"name": aws.name}, nodegroups=[group])
    assert [f.code for f in check_nodegroups(eks, (1, 32))] == []
    (item,) = check_nodegroups(eks, (1, 33))
    assert (item.code, item.object, item.severity.value) == ("BG-EKS-008", "Nodegroup/default", "error")


def test_calls_moto_lacks_are_reported_not_fatal(moto_endpoint, green, green_kube):
    """Without the stub, moto answers the add-on, insight and Pod Identity calls with 404: each becomes a
    BG-PRE-001 'not read' warning and the rest of the preflight still runs."""
    world = AwsWorld(moto_endpoint)
    world.build()
    plant(green, role_arn=world.irsa_role(f"{world.name}-web", world.issuer))
    inventory = collect_inventory(green_kube, eks=world.eks, iam=world.iam, ec2=world.ec2, cluster_name=world.name,
                                  target_version="1.31")
    report = run_preflight(inventory, target_version="1.31", settings=PreflightSettings())
    unread = [f.what for f in report.findings if f.code == "BG-PRE-001"]
    assert any("ListAddons" in u for u in unread) and any("ListInsights" in u for u in unread)
    assert "BG-EKS-012" not in {f.code for f in report.findings}  # IAM (moto) still checked: role trusts green
    assert "Upgrade Insights" not in report.checked
