"""The sandbox's emulated clusters (ArgoCD cluster secrets and Applications, GitOps Bridge layout) and the
demo's verify step: the real CLI, the official kubernetes client over HTTP to kmock, no patching."""

from __future__ import annotations

import io
import json
import logging
import socket
import threading
from urllib.parse import urlsplit

import pytest

from bluegreen.cli import Environment, main
from bluegreen.config import parse_config
from bluegreen.sandbox import Sandbox
from bluegreen.sandbox.kube import ARGOCD_NAMESPACE, FAKE_CLUSTER_CREDENTIAL, SECRETS
from bluegreen.clusters.verify import cluster_summaries, run_verify

pytestmark = pytest.mark.sandbox

RECORDS = ("burnham.example.com", "api.example.com")


def _secret_values(sandbox: Sandbox) -> list[str]:
    """What must never leave the seeded Secrets: the fake credential and every ``data`` value as stored."""
    values = [FAKE_CLUSTER_CREDENTIAL]
    for side, name in (("blue", sandbox.blue_id), ("green", sandbox.green_id)):
        data = sandbox.kube[side].get(SECRETS, ARGOCD_NAMESPACE, name)["data"]
        values += [v for k, v in data.items() if k == "config"]  # base64 of the JSON holding the credential
    return values


def _assert_no_secret_data(texts: list[str], secrets: list[str]) -> None:
    for text in texts:
        for secret in secrets:
            assert secret not in text
        assert "bearerToken" not in text


@pytest.fixture
def clusters_sandbox():
    with Sandbox(records=RECORDS, ttl=1, clusters=True) as sb:
        yield sb


def test_sandbox_clusters_verify_ready_and_leave_nothing_running():
    threads_before = {t.ident for t in threading.enumerate()}
    sandbox = Sandbox(records=RECORDS, ttl=1, clusters=True).start()
    try:
        config = sandbox.config_dict()
        assert config["clusters"]["blue"] == {"kubeconfig": str(sandbox.kubeconfig), "context": "blue",
                                              "name": "eks-blueprint-blue"}
        assert config["clusters"]["argocd"]["mode"] == "in-cluster"
        assert "clusters" not in sandbox.config_dict(clusters=False)
        report = run_verify(parse_config(config), "green")
        assert report.ready, report.reasons
        summary = report.as_dict()["summary"]
        assert summary["application"] == {"checked": 8, "failed": 0}
        assert summary["workload"] == {"checked": 1, "failed": 0}
        assert summary["metadata"]["checked"] >= 15  # addon flags, environment, repos, workloads ...
        clusters = cluster_summaries(parse_config(config))
        assert clusters["blue"]["kubernetes_version"] == "1.30" and clusters["green"]["kubernetes_version"] == "1.31"
        assert (clusters["blue"]["argocd_weight"], clusters["green"]["argocd_weight"]) == ("100", "0")
        tmpdir = sandbox.kubeconfig.parent
        ports = [urlsplit(sandbox.kube[side].url).port for side in ("blue", "green")]
    finally:
        sandbox.stop()
    assert not tmpdir.exists()
    assert {t.ident for t in threading.enumerate()} <= threads_before
    for port in ports:
        with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            pass


def test_green_lacking_an_addon_fails_verify_with_the_reason(clusters_sandbox, capsys, caplog):
    from bluegreen import logs

    caplog.set_level(logging.DEBUG)
    clusters_sandbox.green_lacks_addon("enable_karpenter")
    stream = io.StringIO()
    logs.configure("json", stream, level="debug")
    try:
        config = parse_config(clusters_sandbox.config_dict())
        report = run_verify(config, "green")
        summaries = cluster_summaries(config)
    finally:
        logs.configure("console", io.StringIO())
    assert not report.ready
    assert report.reasons == ("label enable_karpenter: blue=true green=<missing>",
                              "application addons-karpenter: on blue but not on green")
    assert "verify_done" in stream.getvalue()
    captured = capsys.readouterr()
    _assert_no_secret_data([report.text(), json.dumps(report.as_dict()), json.dumps(summaries), stream.getvalue(),
                            captured.out, captured.err, caplog.text], _secret_values(clusters_sandbox))


def test_green_lacks_addon_refuses_an_unknown_flag(clusters_sandbox):
    with pytest.raises(ValueError, match="unknown addon flag"):
        clusters_sandbox.green_lacks_addon("enable_nothing")
    with Sandbox(records=RECORDS) as plain, pytest.raises(RuntimeError, match="clusters=True"):
        plain.green_lacks_addon()


class _RecordingSandbox(Sandbox):
    """The demo's sandbox, remembering its weights (read from moto) and secret values before it stops."""

    last: "_RecordingSandbox | None" = None

    def start(self):
        type(self).last = self
        return super().start()

    def stop(self) -> None:
        if self.zone_id is not None and self.moto.port is not None and self.kube is not None:
            self.final_weights = self.weights()
            self.secret_values = _secret_values(self)
        super().stop()


def _demo(monkeypatch, caplog, *argv):
    import bluegreen.sandbox

    caplog.set_level(logging.DEBUG)
    monkeypatch.setattr(bluegreen.sandbox, "Sandbox", _RecordingSandbox)
    out, err = io.StringIO(), io.StringIO()
    code = main(["demo", *argv, "--log-format", "json"],
                Environment(stdout=out, stderr=err, install_signal_handlers=False))
    return code, out.getvalue(), err.getvalue(), _RecordingSandbox.last


def test_demo_with_green_missing_an_addon_fails_verify_and_shift_changes_no_weight(monkeypatch, caplog, capsys):
    code, out, err, sandbox = _demo(monkeypatch, caplog, "--green-missing-addon")
    assert code == 3, err
    assert sandbox.final_weights == {name: (100, 0) for name in RECORDS}  # every weight still at blue 100
    assert out.index("$ bluegreen verify --cluster green") < out.index("$ bluegreen shift --to green")
    verify_part = out.split("$ bluegreen verify --cluster green")[1].split("$ bluegreen shift")[0]
    assert "label enable_karpenter: blue=true green=<missing>" in verify_part
    assert "green is NOT ready" in verify_part
    assert "green is not ready for traffic; no weight was changed" in err
    assert "weights_changed" not in err and "route53_change_submitted" not in err
    assert "no weight was changed (exit 3)" in out
    assert out.split("$ bluegreen status")[-1].count("100% / 0%") == 2
    assert "nothing is left running" in out
    captured = capsys.readouterr()
    _assert_no_secret_data([out, err, captured.out, captured.err, caplog.text], sandbox.secret_values)


def test_demo_runs_verify_before_the_shift_and_fail_green_still_rolls_back(monkeypatch, caplog, capsys):
    code, out, err, sandbox = _demo(monkeypatch, caplog, "--fail-green")
    assert code == 3, err
    assert out.index("$ bluegreen verify --cluster green") < out.index("$ bluegreen shift --to green")
    assert "green is ready (compared with blue)" in out
    assert "outcome: rolled_back" in out and "traffic went back to blue by itself" in out
    assert '"event": "verify_passed"' in err
    assert sandbox.final_weights == {name: (100, 0) for name in RECORDS}
    captured = capsys.readouterr()
    _assert_no_secret_data([out, err, captured.out, captured.err, caplog.text], sandbox.secret_values)
