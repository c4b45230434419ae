"""The CLI's cluster wiring: `verify`, verify as the gate before `shift`, and `status` with clusters."""

from __future__ import annotations

import json

import yaml

from tests.support.blueprint_clusters import FAKE_CREDENTIAL, both
from tests.support.cli import run


def _config(tmp_path, kube, moto_endpoint, zone, record):
    path = tmp_path / "bluegreen.yaml"
    path.write_text(yaml.safe_dump({
        "name": "burnham",
        "aws": {"region": "us-east-1", "endpoint_url": moto_endpoint},
        "route": {"hosted_zone": zone.name, "records": [record], "blue": "eks-blueprint-blue",
                  "green": "eks-blueprint-green"},
        "shift": {"steps": [50, 100], "bake": "0s", "ttl_margin": "0s"},
        "clusters": {"blue": {"kubeconfig": str(kube.kubeconfig), "context": "blue", "name": "eks-blueprint-blue"},
                     "green": {"kubeconfig": str(kube.kubeconfig), "context": "green",
                               "name": "eks-blueprint-green"}},
        "verify": {"workload_namespaces": ["team-burnham"]},
    }))
    return path


def test_verify_command_exit_codes_and_no_secret_data(tmp_path, kube, moto_endpoint, zone):
    both(kube, labels={"enable_karpenter": None})
    path = _config(tmp_path, kube, moto_endpoint, zone, zone.weighted_pair("app", ttl=0))
    code, out, err = run("verify", "--config", str(path))
    assert code == 3 and "label enable_karpenter: blue=true green=<missing>" in out
    code, out, err = run("verify", "--config", str(path), "--output", "json", "--log-format", "json")
    assert code == 3 and json.loads(out)["ready"] is False
    assert FAKE_CREDENTIAL not in out + err


def test_shift_refuses_when_green_is_not_ready_and_changes_nothing(tmp_path, kube, moto_endpoint, zone):
    both(kube, annotations={"gitops_workloads_revision": "feature-x"})
    app = zone.weighted_pair("app", ttl=0)
    path = _config(tmp_path, kube, moto_endpoint, zone, app)
    before = zone.dump()
    code, out, err = run("shift", "--to", "green", "--config", str(path))
    assert code == 3, err
    assert "green is not ready for traffic" in err and "gitops_workloads_revision" in err
    assert zone.dump() == before
    assert FAKE_CREDENTIAL not in out + err
    code, out, err = run("shift", "--to", "green", "--skip-verify", "--config", str(path), "--log-format", "json")
    assert code == 0, err
    assert '"verify_skipped"' in err
    assert zone.weights(app) == {"eks-blueprint-blue": 0, "eks-blueprint-green": 100}


def test_shift_runs_when_green_is_ready_and_status_shows_clusters(tmp_path, kube, moto_endpoint, zone):
    both(kube)
    app = zone.weighted_pair("app", ttl=0)
    path = _config(tmp_path, kube, moto_endpoint, zone, app)
    code, out, err = run("shift", "--to", "green", "--config", str(path), "--log-format", "json")
    assert code == 0, err
    assert '"verify_passed"' in err
    code, out, err = run("status", "--config", str(path), "--output", "json")
    data = json.loads(out)
    assert code == 0 and set(data["clusters"]) == {"blue", "green"}
    assert data["clusters"]["green"]["applications"] == 2 and data["clusters"]["green"]["healthy"] == 2
    code, out, _ = run("status", "--config", str(path))
    assert "ARGOCD APPLICATIONS" in out and "2/2 healthy" in out and FAKE_CREDENTIAL not in out
