"""`bluegreen nodes plan|upgrade` against the emulator + NodeController + moto: the cases of issue 13."""

from __future__ import annotations

import json

from tests.nodes.conftest import NS, deployment, pdb, pvc, run_cli, statefulset

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
