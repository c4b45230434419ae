"""`bluegreen nodes plan|upgrade` against the emulator + NodeController + moto: the cases of issue 13."""

from __future__ import annotations

import json

from tests.nodes.conftest import NS, deployment, pdb, pvc, run_cli, statefulset
from tests.support.node_controller import UNREADY

DEPLOYMENTS, STATEFULSETS = "apps/v1/deployments", "apps/v1/statefulsets"
PVCS, PDBS = "v1/persistentvolumeclaims", "policy/v1/poddisruptionbudgets"


def _old_nodes(cluster):
    return {n for n in cluster.nodes() if n.startswith(("general-node", "system-node"))}


def test_clean_upgrade_of_two_node_groups(cluster):
    cluster.put(DEPLOYMENTS, "web", deployment("web", 3))
    cluster.put(DEPLOYMENTS, "api", deployment("api", 2))
    cluster.put(STATEFULSETS, "queue", statefulset("queue", 3))
    cluster.controller.wait_settled()
    old = _old_nodes(cluster)
    assert len(old) == 3 and set(cluster.placement().values()) <= old

    code, out, err = run_cli("nodes", "plan", "--cluster", "prod", "--config", str(cluster.config_path),
                             "--output", "json")
    assert code == 0, err
    plan = json.loads(out)
    assert [(t["old"], t["new"]) for t in plan["twins"]] == [("general", "general-1-31"), ("system", "system-1-31")]
    assert sorted(plan["cordon"]) == sorted(old)
    assert [m["workload"] for m in plan["waves"][0]["moves"]] == [
        f"Deployment/{NS}/api", f"Deployment/{NS}/web", f"StatefulSet/{NS}/queue"]

    code, out, err = run_cli("nodes", "upgrade", "--cluster", "prod", "--config", str(cluster.config_path),
                             "--output", "json")
    assert code == 0, err + out
    assert "preflight_inventory_read" in err  # preflight ran first, for the target version
    result = json.loads(out)
    assert result["outcome"] == "completed"
    assert sorted(result["moved"]) == [f"Deployment/{NS}/api", f"Deployment/{NS}/web", f"StatefulSet/{NS}/queue"]
    # The twins: same scaling, instance types and labels, at 1.31, release version not pinned.
    groups = cluster.groups()
    assert groups == {"general": "1.30", "system": "1.30", "general-1-31": "1.31", "system-1-31": "1.31"}
    twin = cluster.eks.describe_nodegroup(clusterName=cluster.name, nodegroupName="general-1-31")["nodegroup"]
    assert twin["scalingConfig"] == {"minSize": 2, "maxSize": 4, "desiredSize": 2}
    assert twin["instanceTypes"] == ["m6i.large"] and twin["labels"] == {"pool": "general"}
    assert twin["releaseVersion"] != "1.30.4-20240917"
    # Old nodes cordoned, new ones not; every pod on a new node.
    nodes = cluster.nodes()
    assert all(nodes[n] for n in old) and not any(v for n, v in nodes.items() if n not in old)
    assert not set(cluster.placement().values()) & old
    # The journal: a locked run with its steps, the completion time for `finish`.
    code, out, err = run_cli("history", "--config", str(cluster.config_path), "--output", "json")
    assert code == 0 and "nodes-upgrade" in out


def test_rwo_deployment_refused_by_default_then_moved_with_scale_to_zero(cluster):
    cluster.put(PVCS, "data", pvc("ReadWriteOnce"))
    cluster.put(DEPLOYMENTS, "ledger", deployment("ledger", 1, claims=("data",)))
    cluster.put(DEPLOYMENTS, "web", deployment("web", 2))
    cluster.controller.wait_settled()
    before = cluster.groups()
    code, out, err = run_cli("nodes", "upgrade", "--cluster", "prod", "--config", str(cluster.config_path))
    assert code == 3, err
    assert f"Deployment {NS}/ledger" in out and "ReadWriteOnce" in out and "nodes.rwo: scale-to-zero" in out
    assert cluster.groups() == before and not any(cluster.nodes().values())  # nothing changed

    cluster.write_config(nodes={"rwo": "scale-to-zero"})
    code, out, err = run_cli("nodes", "upgrade", "--cluster", "prod", "--config", str(cluster.config_path),
                             "--output", "json")
    assert code == 0, err + out
    result = json.loads(out)
    assert f"Deployment/{NS}/ledger" in result["moved"]
    downtime = result["downtime_seconds"][f"Deployment/{NS}/ledger"]
    assert 0 < downtime < 8
    ledger = [node for pod, node in cluster.placement().items() if pod.startswith("ledger-")]
    assert len(ledger) == 1 and ledger[0].endswith(("-1-31-node-0", "-1-31-node-1"))
    assert cluster.server.get(DEPLOYMENTS, NS, "ledger")["spec"]["replicas"] == 1


def test_statefulset_below_the_minimum_is_refused(cluster):
    cluster.put(STATEFULSETS, "solo", statefulset("solo", 1))
    cluster.controller.wait_settled()
    code, out, err = run_cli("nodes", "upgrade", "--cluster", "prod", "--config", str(cluster.config_path))
    assert code == 3, err
    assert f"StatefulSet {NS}/solo" in out and "--accept-statefulset-downtime" in out
    assert set(cluster.groups()) == {"general", "system"}
    code, out, err = run_cli("nodes", "upgrade", "--cluster", "prod", "--config", str(cluster.config_path),
                             "--accept-statefulset-downtime", "--output", "json")
    assert code == 0, err + out
    assert json.loads(out)["moved"] == [f"StatefulSet/{NS}/solo"]


def test_a_pdb_that_allows_no_disruption_blocks_its_workload_by_name(cluster):
    # One pod of three crash-loops: the budget (minAvailable 2) allows no disruption now.
    cluster.put(DEPLOYMENTS, "pay", deployment("pay", 3, annotations={UNREADY: "1"}))
    cluster.put(PDBS, "pay", pdb("pay", minAvailable=2))
    cluster.put(DEPLOYMENTS, "web", deployment("web", 2))
    cluster.controller.wait_settled()
    code, out, err = run_cli("nodes", "upgrade", "--cluster", "prod", "--config", str(cluster.config_path),
                             "--output", "json")
    assert code == 3, err + out
    result = json.loads(out)
    assert result["outcome"] == "blocked"
    assert [b["subject"] for b in result["blocked"]] == [f"Deployment/{NS}/pay"]
    assert f"PodDisruptionBudget {NS}/pay" in result["blocked"][0]["reason"]
    assert result["moved"] == [f"Deployment/{NS}/web"]
    # Not forced: its pods are still on the (cordoned) old nodes, and reported.
    assert any(p.startswith(f"{NS}/pay-") for p in result["left_on_old_nodes"])
    old = _old_nodes(cluster)
    assert all(cluster.nodes()[n] for n in old)
