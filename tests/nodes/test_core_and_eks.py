"""The pure core of `nodes` (plan details, decisions with the time passed in, the keep-time rule), the
`nodes:` config section, and the control-plane upgrade through EKS."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from bluegreen.adapters.eks import EksError
from bluegreen.adapters.nodegroups import NodeGroups
from bluegreen.config import parse_config
from bluegreen.core.clock import FakeClock
from bluegreen.core.nodes import (Move, Moving, NodesError, Step, Workload, control_plane_steps, finish_decision,
                                  next_step, twin_name, twin_request)
from bluegreen.errors import ConfigError
from tests.conftest import FAKE_CREDENTIALS

DAY = 86400.0


def test_twin_names_say_the_version_and_fit_eks_limits():
    assert twin_name("workers", "1.31") == "workers-1-31"
    assert twin_name("workers-1-30", "1.31") == "workers-1-31"
    assert len(twin_name("x" * 80, "1.31")) == 63


def test_twin_request_copies_settings_unpins_release_and_respects_launch_template_rules():
    group = {"nodegroupName": "gpu", "nodeRole": "arn:role", "subnets": ["s1"], "version": "1.30",
             "releaseVersion": "1.30.4-20240917", "scalingConfig": {"minSize": 1, "maxSize": 5, "desiredSize": 3},
             "instanceTypes": ["g5.xlarge"], "labels": {"gpu": "yes"}, "diskSize": 100,
             "taints": [{"key": "gpu", "value": "yes", "effect": "NO_SCHEDULE"}], "remoteAccess": {"ec2SshKey": "k"},
             "launchTemplate": {"id": "lt-1", "name": "gpu-lt", "version": "7"},
             "tags": {"team": "ml", "aws:cloudformation:stack-name": "x"}}
    request = twin_request(group, "prod", "1.31")
    assert request["nodegroupName"] == "gpu-1-31" and request["version"] == "1.31"
    assert "releaseVersion" not in request
    assert request["scalingConfig"] == group["scalingConfig"] and request["taints"] == group["taints"]
    assert request["launchTemplate"] == {"id": "lt-1", "version": "7"}
    assert "diskSize" not in request and "remoteAccess" not in request  # refused beside a launch template
    assert request["tags"] == {"team": "ml", "bluegreen/twin-of": "gpu"}


def test_control_plane_moves_one_minor_at_a_time_and_never_down():
    assert control_plane_steps("1.29", "1.31") == ("1.30", "1.31")
    assert control_plane_steps("1.31", "1.31") == ()
    with pytest.raises(NodesError, match="cannot be downgraded"):
        control_plane_steps("1.31", "1.30")


def _moving(phase="restart"):
    w = Workload("Deployment", "ns", "web", 2, {"app": "web"}, {"app": "web"}, ())
    return Moving(Move(w, "restart"), started=100.0, generation=5, phase=phase, replicas=2)


def test_a_rollout_counts_only_once_the_controller_saw_the_patch_and_times_out_on_the_clock():
    m = _moving()
    assert next_step(m, problem=None, observed_generation=4, pods=2, now=101, timeout=60) is Step.WAIT
    assert next_step(m, problem="rolling out: 1 of 2 updated", observed_generation=5, pods=2, now=101,
                     timeout=60) is Step.WAIT
    assert next_step(m, problem=None, observed_generation=5, pods=2, now=101, timeout=60) is Step.DONE
    assert next_step(m, problem="x", observed_generation=5, pods=2, now=161, timeout=60) is Step.TIMED_OUT
    down = _moving("down")
    assert next_step(down, problem=None, observed_generation=5, pods=1, now=101, timeout=60) is Step.WAIT
    assert next_step(down, problem=None, observed_generation=5, pods=0, now=101, timeout=60) is Step.SCALE_BACK


def test_finish_rule():
    upgrade = {"command": "nodes-upgrade", "outcome": "completed", "completed_at": 1000.0,
               "old_groups": ["general"]}
    wait = finish_decision([upgrade], now=1000.0 + DAY - 1, keep=DAY)
    assert wait.action == "wait" and wait.remaining == 1
    assert finish_decision([upgrade], now=1000.0 + DAY, keep=DAY).action == "delete"
    rollback = {"command": "nodes-rollback", "outcome": "rolled_back"}
    assert finish_decision([rollback, upgrade], now=1e9, keep=DAY).action == "refuse"
    assert finish_decision([{"command": "nodes-finish", "outcome": "completed"}, upgrade], now=1e9,
                           keep=DAY).action == "nothing"
    assert finish_decision([{"command": "nodes-upgrade", "outcome": "interrupted"}], now=1e9,
                           keep=DAY).action == "nothing"
    assert finish_decision([], now=1e9, keep=DAY).action == "nothing"


BASE = {"name": "shop", "route": {"hosted_zone": "example.com", "records": ["app.example.com"], "blue": "b",
                                  "green": "g"}}


def test_nodes_section_defaults_and_errors_name_the_key():
    assert parse_config(BASE).nodes.rwo == "refuse"
    with pytest.raises(ConfigError, match=r"nodes\.rwo"):
        parse_config({**BASE, "nodes": {"rwo": "delete-it"}})
    with pytest.raises(ConfigError, match=r"did you mean `nodes\.parallel`"):
        parse_config({**BASE, "nodes": {"paralel": 2}})
    with pytest.raises(ConfigError, match=r"nodes\.keep"):
        parse_config({**BASE, "nodes": {"keep": ".inf"}})


def test_control_plane_upgrade_waits_for_the_update(moto_endpoint):
    # Stubber: moto implements neither UpdateClusterVersion nor DescribeUpdate.
    client = boto3.client("eks", endpoint_url=moto_endpoint, region_name="us-east-1", **FAKE_CREDENTIALS)
    clock = FakeClock()
    with Stubber(client) as stub:
        stub.add_response("update_cluster_version", {"update": {"id": "u1", "status": "InProgress"}},
                          {"name": "prod", "version": "1.31"})
        for status in ("InProgress", "InProgress", "Successful"):
            stub.add_response("describe_update", {"update": {"id": "u1", "status": status}},
                              {"name": "prod", "updateId": "u1"})
        NodeGroups(client, "prod").upgrade_control_plane("1.31", monotonic=clock.monotonic, sleep=clock.sleep,
                                                         timeout=3600, interval=30)
        stub.assert_no_pending_responses()
    assert clock.sleeps == [30, 30]
    with Stubber(client) as stub:
        stub.add_response("update_cluster_version", {"update": {"id": "u2", "status": "InProgress"}},
                          {"name": "prod", "version": "1.31"})
        stub.add_response("describe_update", {"update": {"id": "u2", "status": "Failed",
                                                          "errors": [{"errorMessage": "subnet full"}]}},
                          {"name": "prod", "updateId": "u2"})
        with pytest.raises(EksError, match="Failed: subnet full"):
            NodeGroups(client, "prod").upgrade_control_plane("1.31", monotonic=clock.monotonic, sleep=clock.sleep,
                                                             timeout=3600, interval=30)


def test_self_managed_and_karpenter_nodes_are_reported_not_cordoned():
    from bluegreen.core.nodes import Node, NodesSettings, make_plan

    nodes = [Node("ng-a", "v1.30.4", "general", False, False, True),
             Node("karp-1", "v1.30.4", None, True, False, True),
             Node("self-1", "v1.30.4", None, False, False, True)]
    group = {"nodegroupName": "general", "nodeRole": "r", "subnets": ["s"], "version": "1.30",
             "scalingConfig": {"minSize": 1, "maxSize": 1, "desiredSize": 1}}
    plan = make_plan(cluster="prod", control_plane="1.31", target="1.31", groups=[group], nodes=nodes, workloads=[],
                     pods=[], pvcs=[], budgets=[], settings=NodesSettings())
    assert plan.cordon == ("ng-a",)
    reported = {f.subject: f.fix for f in plan.reported}
    assert set(reported) == {"node karp-1", "node self-1"}
    assert "Karpenter" in reported["node karp-1"] or "EC2NodeClass" in reported["node karp-1"]
    assert not plan.refusals
    behind = make_plan(cluster="prod", control_plane="1.30", target="1.31", groups=[group], nodes=nodes,
                       workloads=[], pods=[], pvcs=[], budgets=[], settings=NodesSettings())
    assert "--upgrade-control-plane" in behind.refusals[0].fix
