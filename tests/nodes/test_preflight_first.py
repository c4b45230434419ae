"""`nodes upgrade --upgrade-control-plane`: preflight runs before any change, on the cluster as it is, judged
for the target version (it used to be skipped whenever the control plane had steps to make)."""

from __future__ import annotations

import json
import time

from tests.nodes.conftest import run_cli

FLOWSCHEMAS = "flowcontrol.apiserver.k8s.io/v1/flowschemas"


def _plant_flowschema_applied_as_v1beta3(cluster) -> None:
    """Served by 1.31 (the cluster now), removed in 1.32 (the target): an error for 1.32 only."""
    applied = {"apiVersion": "flowcontrol.apiserver.k8s.io/v1beta3", "kind": "FlowSchema",
               "metadata": {"name": "custom"}}
    cluster.server.put(FLOWSCHEMAS, None, "custom", {"metadata": {
        "annotations": {"kubectl.kubernetes.io/last-applied-configuration": json.dumps(applied)}}})


def _wait_for_the_old_nodes(cluster) -> dict[str, bool]:
    """The controller brings up the node groups' nodes within a few ticks of the fixture's start."""
    deadline = time.monotonic() + 10
    while len(cluster.nodes()) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    nodes = cluster.nodes()
    assert len(nodes) == 3, nodes
    return nodes


def _control_plane(cluster) -> str:
    return cluster.eks.describe_cluster(name=cluster.name)["cluster"]["version"]


def test_preflight_error_for_the_target_refuses_before_the_control_plane_upgrade(cluster):
    _plant_flowschema_applied_as_v1beta3(cluster)
    before_groups, before_nodes = cluster.groups(), _wait_for_the_old_nodes(cluster)
    # Had preflight been skipped, the run would go on to UpdateClusterVersion (which moto lacks: it would end
    # with an EKS error, exit 1), so exit 3 with the finding shows preflight refused first.
    code, out, err = run_cli("nodes", "upgrade", "--cluster", "prod", "--config", str(cluster.config_path),
                             "--version", "1.32", "--upgrade-control-plane")
    assert code == 3, err + out
    assert "Kubernetes 1.31 -> 1.32" in out  # the cluster as it is, judged for the target
    assert "BG-K8S-001" in out and "FlowSchema/custom" in out and "removed in 1.32" in out
    assert "preflight found error-level findings for 1.32; nothing was changed" in err
    assert _control_plane(cluster) == "1.31"
    assert cluster.groups() == before_groups and cluster.nodes() == before_nodes
    assert not any(cluster.nodes().values())
    code, out, err = run_cli("history", "--config", str(cluster.config_path), "--output", "json")
    assert code == 0 and "nodes-upgrade" not in out  # refused before the lock: no run journaled

    # The same finding is only a warning for 1.31 (deprecated, still served): an upgrade to 1.31 passes it.
    code, out, err = run_cli("nodes", "upgrade", "--cluster", "prod", "--config", str(cluster.config_path),
                             "--dry-run", "--output", "json")
    assert code == 0, err + out
    assert "preflight_inventory_read" in err


def test_a_multi_minor_control_plane_walk_is_judged_for_the_final_target(cluster):
    _wait_for_the_old_nodes(cluster)
    argv = ("nodes", "upgrade", "--cluster", "prod", "--config", str(cluster.config_path), "--version", "1.33",
            "--upgrade-control-plane", "--dry-run")
    code, out, err = run_cli(*argv)
    # The node groups run Amazon Linux 2, which EKS does not publish for 1.33: an error for the target.
    assert code == 3, err + out
    assert "Kubernetes 1.31 -> 1.33" in out and "BG-EKS-008" in out and "Nodegroup/general" in out
    # BG-EKS-001 (one minor version at a time) is what the plan does (1.31 -> 1.32 -> 1.33): dropped, logged.
    assert "BG-EKS-001" not in out
    assert "preflight_finding_handled" in err and "BG-EKS-001" in err

    cluster.write_config(preflight={"ignore": ["BG-EKS-008"]})  # e.g. the AMI is moved to AL2023 meanwhile
    code, out, err = run_cli(*argv, "--output", "json")
    assert code == 0, err + out
    assert json.loads(out)["plan"]["control_plane_steps"] == ["1.32", "1.33"]
    assert _control_plane(cluster) == "1.31" and not any(cluster.nodes().values())
