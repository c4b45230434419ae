"""`clusters.<side>` omitted: that side is the current context of $KUBECONFIG / ~/.kube/config, resolved when
the clusters are reached (never at load), and refused (exit 2, naming `clusters.<side>`) when ambiguous.

Real parts: the kubeconfig files the Kubernetes emulator writes, the official client over HTTP."""

from __future__ import annotations

import pytest
import yaml

from bluegreen.adapters.kube import Clusters, resolve_current_context
from bluegreen.clusters.verify import run_verify
from bluegreen.config import parse_config
from bluegreen.errors import ConfigError, ExitCode
from tests.support.blueprint_clusters import both
from tests.support.cli import run

ROUTE = {"hosted_zone": "example.com", "records": ["burnham.example.com"],
         "blue": "eks-blueprint-blue", "green": "eks-blueprint-green"}


def config_with(clusters: dict):
    return parse_config({"name": "burnham", "aws": {"region": "us-east-1"}, "route": ROUTE, "clusters": clusters,
                         "verify": {"workload_namespaces": ["team-burnham"]}})


def kubeconfig_with_current(kube, tmp_path, current: str | None):
    """A copy of the emulators' kubeconfig whose current context is ``current`` (None: no current context)."""
    document = yaml.safe_load(kube.kubeconfig.read_text())
    document.pop("current-context", None)
    if current is not None:
        document["current-context"] = current
    path = tmp_path / f"kubeconfig-{current}"
    path.write_text(yaml.safe_dump(document))
    return path


def test_an_omitted_side_parses_without_reading_any_kubeconfig(monkeypatch, tmp_path):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "does-not-exist"))  # parsing must not look at it
    clusters = config_with({"green": {"eks": "eks-blueprint-green"}}).require_clusters()
    assert clusters.blue.access.current_context and clusters.blue.name == ""
    assert "current context" in clusters.blue.label() and not clusters.green.access.current_context


def test_both_sides_omitted_is_refused_at_load():
    with pytest.raises(ConfigError) as caught:
        config_with({"argocd": {"mode": "in-cluster"}}).require_clusters()
    assert "`clusters.blue` and `clusters.green` are both missing" in str(caught.value)
    assert caught.value.exit_code == ExitCode.BAD_INPUT


def test_omitted_blue_uses_the_current_context_of_kubeconfig(kube, tmp_path, monkeypatch):
    both(kube)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig_with_current(kube, tmp_path, "blue")))
    config = config_with({"green": {"kubeconfig": str(kube.kubeconfig), "context": "green",
                                    "name": "eks-blueprint-green"}})
    resolved = resolve_current_context(config.require_clusters())
    assert resolved.blue.access.context == "blue" and resolved.blue.name == "blue"
    assert resolved.blue.access.kubeconfig == str(tmp_path / "kubeconfig-blue")
    with Clusters(config, config.require_clusters()) as clusters:
        # the client really reached the blue emulator: its ArgoCD secret is there, green's is not
        names = [s.metadata.name for s in clusters.kube("blue").core.list_namespaced_secret("argocd").items]
    assert "eks-blueprint-blue" in names and "eks-blueprint-green" not in names
    report = run_verify(config)
    assert report.ready, report.reasons


def test_omitted_green_follows_kubeconfig_as_kubectl_does(kube, tmp_path, monkeypatch):
    """KUBECONFIG may list several files: the first one is used (as for `context` alone)."""
    both(kube)
    first = kubeconfig_with_current(kube, tmp_path, "green")
    monkeypatch.setenv("KUBECONFIG", f"{first}:{tmp_path / 'other'}")
    config = config_with({"blue": {"kubeconfig": str(kube.kubeconfig), "context": "blue",
                                   "name": "eks-blueprint-blue"}})
    with Clusters(config, config.require_clusters()) as clusters:
        assert clusters.spec.green.access.context == "green"
        names = [s.metadata.name for s in clusters.kube("green").core.list_namespaced_secret("argocd").items]
    assert "eks-blueprint-green" in names and "eks-blueprint-blue" not in names


@pytest.mark.parametrize("current,other,fragment", [
    ("green", {"context": "green"}, "`clusters.green` already names 'green'"),
    ("green", {"eks": "green"}, "`clusters.green` already names 'green'"),
    (None, {"context": "green"}, "has no current context"),
])
def test_ambiguous_current_context_is_refused_naming_the_side(kube, tmp_path, monkeypatch, current, other, fragment):
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig_with_current(kube, tmp_path, current)))
    config = config_with({"green": other})
    with pytest.raises(ConfigError) as caught:
        Clusters(config, config.require_clusters())
    assert "`clusters.blue` is omitted" in str(caught.value) and fragment in str(caught.value)
    assert caught.value.exit_code == ExitCode.BAD_INPUT


def test_missing_kubeconfig_is_refused_naming_the_side(tmp_path, monkeypatch):
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.kube/config here
    config = config_with({"blue": {"eks": "eks-blueprint-blue"}})
    with pytest.raises(ConfigError) as caught:
        resolve_current_context(config.require_clusters())
    message = str(caught.value)
    assert "`clusters.green` is omitted" in message and str(tmp_path / ".kube" / "config") in message


def test_verify_command_exits_2_when_the_current_context_is_the_other_side(kube, tmp_path, monkeypatch):
    both(kube)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig_with_current(kube, tmp_path, "green")))
    path = tmp_path / "bluegreen.yaml"
    path.write_text(yaml.safe_dump({"name": "burnham", "aws": {"region": "us-east-1"}, "route": ROUTE,
                                    "clusters": {"green": {"kubeconfig": str(kube.kubeconfig), "context": "green"}}}))
    code, out, err = run("verify", "--config", str(path))
    assert code == 2 and "`clusters.blue` is omitted" in err, err
    # with blue as the current context the same file works
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig_with_current(kube, tmp_path, "blue")))
    code, out, err = run("verify", "--config", str(path))
    assert code == 0, err
