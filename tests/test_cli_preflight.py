"""`bluegreen preflight` and `shift --preflight` through the real CLI, in-process, against the Kubernetes
emulator (official client over HTTPS) and moto (Route 53)."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.support.blueprint_clusters import FAKE_CREDENTIAL, both
from tests.support.cli import run, write_config
from tests.support.preflight_objects import DEPLOYMENTS, NODES, PDBS, deployment, node, pdb

NS = "team-burnham"


def _config(tmp_path, kube, moto_endpoint, zone, record=None, **sections):
    path = tmp_path / "bluegreen.yaml"
    record = record or zone.weighted_pair("app", ttl=0)
    config = {
        "name": "burnham",
        "aws": {"region": "us-east-1", "endpoint_url": moto_endpoint},
        "route": {"hosted_zone": zone.name, "records": [record], "blue": "eks-blueprint-blue",
                  "green": "eks-blueprint-green"},
        "shift": {"steps": [50, 100], "bake": "0s", "ttl_margin": "0s"},
        "clusters": {"blue": {"kubeconfig": str(kube.kubeconfig), "context": "blue", "name": "eks-blueprint-blue"},
                     "green": {"kubeconfig": str(kube.kubeconfig), "context": "green",
                               "name": "eks-blueprint-green"}},
        "verify": {"workload_namespaces": [NS]},
        **sections,
    }
    path.write_text(yaml.safe_dump(config))
    return path


def _plant_green(kube, *, blocking_pdb: bool = False, single_replica: bool = False) -> None:
    green = kube["green"]
    green.set_kubernetes_version("1.30")
    green.put(NODES, None, "ip-10-0-1-10", node("v1.30.4-eks-a737599"))
    green.put(DEPLOYMENTS, "shop", "web", deployment("web", replicas=1 if single_replica else 3))
    # maxUnavailable 0 blocks every node drain: an error-level finding (BG-K8S-006)
    green.put(PDBS, "shop", "web", pdb("web", maxUnavailable=0) if blocking_pdb else pdb("web"))


def test_clean_cluster_passes_and_json_is_one_document(tmp_path, kube, moto_endpoint, zone):
    _plant_green(kube)
    path = _config(tmp_path, kube, moto_endpoint, zone)
    code, out, err = run("preflight", "--config", str(path), "--version", "1.31", "--output", "json")
    assert code == 0, err
    data = json.loads(out)
    assert data["passed"] is True and data["target_version"] == "1.31" and data["current_version"] == "1.30"
    assert data["counts"]["error"] == 0 and "workloads" in data["checked"]
    code, out, _ = run("preflight", "--config", str(path))  # default: green, for its own version
    assert code == 0 and "Kubernetes 1.30 -> 1.30" in out and "preflight passed" in out


def test_error_finding_exits_3_and_ignore_silences_it(tmp_path, kube, moto_endpoint, zone):
    _plant_green(kube, blocking_pdb=True, single_replica=True)
    path = _config(tmp_path, kube, moto_endpoint, zone)
    code, out, err = run("preflight", "--cluster", "green", "--config", str(path))
    assert code == 3, err
    assert "BG-K8S-006" in out and "PodDisruptionBudget/shop/web" in out and "ERROR (1)" in out
    assert "BG-K8S-003" in out and "WARNING" in out  # the 1-replica Deployment
    assert "FAILED" in out
    path = _config(tmp_path, kube, moto_endpoint, zone, preflight={"ignore": ["BG-K8S-006/PodDisruptionBudget/shop/*"]})
    code, out, err = run("preflight", "--config", str(path), "--output", "json")
    data = json.loads(out)
    assert code == 0 and data["ignored"] == 1 and data["passed"] is True
    assert [f["code"] for f in data["findings"] if f["severity"] == "warning"] == ["BG-K8S-003"]


@pytest.mark.parametrize("argv,sections,fragment", [
    (["--version", "one.thirty"], {}, "--version must be a Kubernetes minor version"),
    (["--version", "1.29"], {}, "older than the cluster's 1.30"),
    ([], {"preflight": {"ignore": ["BG-NOPE-999"]}}, "not a known code"),
    ([], {"preflight": {"gate_shift": "yes"}}, "preflight.gate_shift"),
    ([], {"preflight": {"min_replicas": 0}}, "preflight.min_replicas"),
])
def test_bad_input_exits_2(tmp_path, kube, moto_endpoint, zone, argv, sections, fragment):
    _plant_green(kube)
    path = _config(tmp_path, kube, moto_endpoint, zone, **sections)
    code, out, err = run("preflight", "--config", str(path), *argv)
    assert code == 2 and fragment in err, err


def test_without_clusters_is_bad_input(tmp_path, moto_endpoint, zone):
    path = write_config(tmp_path, moto_endpoint, zone, [zone.weighted_pair("app")])
    code, _, err = run("preflight", "--config", str(path))
    assert code == 2 and "`clusters` is missing" in err


def test_unreachable_cluster_exits_1(tmp_path, kube, moto_endpoint, zone):
    import socket

    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    kubeconfig = tmp_path / "dead-kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "green",
        "clusters": [{"name": "green", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "users": [{"name": "green", "user": {"token": "not-a-real-token"}}],
        "contexts": [{"name": "green", "context": {"cluster": "green", "user": "green"}}]}))
    path = _config(tmp_path, kube, moto_endpoint, zone)
    raw = yaml.safe_load(path.read_text())
    raw["clusters"]["green"] = {"kubeconfig": str(kubeconfig), "context": "green", "name": "eks-blueprint-green"}
    path.write_text(yaml.safe_dump(raw))
    code, out, err = run("preflight", "--config", str(path))
    assert code == 1, err
    assert "green" in err and "not-a-real-token" not in out + err


@pytest.mark.parametrize("how", ["flag", "config"])
def test_shift_preflight_gate_refuses_before_any_change(tmp_path, kube, moto_endpoint, zone, how):
    both(kube)
    _plant_green(kube, blocking_pdb=True)
    app = zone.weighted_pair("app", ttl=0)
    sections = {"preflight": {"gate_shift": True}} if how == "config" else {}
    path = _config(tmp_path, kube, moto_endpoint, zone, app, **sections)
    argv = ["--preflight"] if how == "flag" else []
    before = zone.dump()
    code, out, err = run("shift", "--to", "green", "--config", str(path), *argv)
    assert code == 3, err
    assert "preflight found 1 error(s) on green" in err and "BG-K8S-006 PodDisruptionBudget/shop/web" in err
    assert zone.dump() == before
    assert FAKE_CREDENTIAL not in out + err
    code, out, err = run("history", "--config", str(path), "--output", "json")
    assert json.loads(out) == []  # refused before the lock: no run was journaled


def test_shift_preflight_gate_passes_on_a_clean_target(tmp_path, kube, moto_endpoint, zone):
    both(kube)
    _plant_green(kube, single_replica=True)  # a warning does not fail the gate
    app = zone.weighted_pair("app", ttl=0)
    path = _config(tmp_path, kube, moto_endpoint, zone, app)
    code, out, err = run("shift", "--to", "green", "--preflight", "--config", str(path), "--log-format", "json")
    assert code == 0, err
    checked = [json.loads(line) for line in err.splitlines() if '"preflight_checked"' in line]
    assert checked and checked[0]["passed"] is True and checked[0]["counts"]["warning"] >= 1
    assert zone.weights(app) == {"eks-blueprint-blue": 0, "eks-blueprint-green": 100}


def test_readme_lists_every_code_and_every_preflight_key():
    from pathlib import Path

    from bluegreen.preflight import codes_table_markdown
    from bluegreen.preflight.settings import _KEYS

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    assert codes_table_markdown() in readme  # generated from the registry: the two cannot drift apart
    for key in sorted(_KEYS | {"gate_shift"}):
        assert f"`preflight.{key}`" in readme, key
