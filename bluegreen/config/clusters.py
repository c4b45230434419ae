"""The ``clusters``, ``verify`` and ``provision`` sections, parsed into frozen dataclasses.

Every problem is a :class:`ConfigError` naming the key and the fix (exit 2). No I/O: nothing here opens a
kubeconfig or talks to AWS; the adapters do that when a command needs a cluster.

    clusters:
      blue:  {eks: eks-blueprint-blue}                      # EKS: endpoint, CA and token from the EKS API
      green: {kubeconfig: ~/.kube/config, context: green}   # or a kubeconfig file and context
                                                            # (context alone: $KUBECONFIG or ~/.kube/config)
                                                            # one side omitted: the kubeconfig's current
                                                            # context (resolved when the clusters are reached)
      argocd:
        mode: in-cluster          # in-cluster (one ArgoCD per cluster) | hub (one ArgoCD holds both secrets)
        namespace: argocd
        hub: {eks: ops}           # only for mode: hub
    verify:
      ignore_keys: [team_owner]   # more keys that may differ (added to the default list)
      workload_namespaces: [team-burnham]
    provision:
      command: terraform -chdir=eks-green apply -auto-approve
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Any, Mapping

from bluegreen.config.fields import Fields, check_keys
from bluegreen.errors import ConfigError

SIDES = ("blue", "green")
ARGOCD_MODES = ("in-cluster", "hub")
_ACCESS_KEYS = {"eks", "kubeconfig", "context", "region"}
_CLUSTER_KEYS = _ACCESS_KEYS | {"name", "argocd_secret", "destination"}
_K8S_NAME = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$")
_EKS_NAME = re.compile(r"^[0-9A-Za-z][A-Za-z0-9\-_]{0,99}$")


@dataclass(frozen=True)
class ClusterAccess:
    """How to reach a cluster's Kubernetes API: an EKS cluster name, or a kubeconfig file and context.

    Both may be given: ``eks`` then names the cluster for the EKS API (provision) and the kubeconfig
    context is used for the Kubernetes API. None of them (the side was omitted): the current context of
    $KUBECONFIG or ~/.kube/config, which :func:`bluegreen.adapters.kube.resolve_current_context` reads when
    the clusters are reached (parsing does no I/O)."""

    eks: str | None = None
    kubeconfig: str | None = None
    context: str | None = None
    region: str | None = None

    @property
    def current_context(self) -> bool:
        """The side was omitted: use the kubeconfig's current context (kubectl's default)."""
        return not (self.eks or self.kubeconfig or self.context)

    def describe(self) -> str:
        if self.current_context:
            return "the current context of $KUBECONFIG or ~/.kube/config"
        if self.context:
            return f"context {self.context!r} of kubeconfig {self.kubeconfig or '$KUBECONFIG or ~/.kube/config'}"
        return f"EKS cluster {self.eks!r}"


@dataclass(frozen=True)
class ClusterSpec:
    side: str
    access: ClusterAccess
    name: str  # the cluster's name in ArgoCD metadata (label cluster_name / annotation aws_cluster_name);
    # "" until the current context is resolved, when the side was omitted
    argocd_secret: str | None = None  # the ArgoCD cluster secret's name, when it cannot be found by name
    destination: str | None = None  # hub mode: the Applications' destination server URL or name

    def label(self) -> str:
        if not self.name:
            return f"{self.side} cluster ({self.access.describe()})"
        return f"{self.side} cluster {self.name!r} ({self.access.describe()})"


@dataclass(frozen=True)
class ArgoCDSpec:
    mode: str = "in-cluster"
    namespace: str = "argocd"
    hub: ClusterAccess | None = None


@dataclass(frozen=True)
class ClustersConfig:
    blue: ClusterSpec
    green: ClusterSpec
    argocd: ArgoCDSpec

    def side(self, side: str) -> ClusterSpec:
        if side not in SIDES:
            raise ConfigError(f"unknown cluster {side!r}", hint="use blue or green")
        return self.blue if side == "blue" else self.green

    def other(self, side: str) -> ClusterSpec:
        return self.side("green" if side == "blue" else "blue")


@dataclass(frozen=True)
class VerifyConfig:
    ignore_keys: tuple[str, ...] = ()  # added to the default list (fnmatch patterns allowed)
    workload_namespaces: tuple[str, ...] = ()
    ignore_applications: tuple[str, ...] = ()  # fnmatch patterns of Application names left out


@dataclass(frozen=True)
class ProvisionConfig:
    command: tuple[str, ...] | None = None  # argv of an external provisioner (no shell)
    command_text: str | None = None
    workdir: str | None = None
    wait_timeout: float = 1800.0  # a new EKS control plane takes 10-15 minutes
    poll_interval: float = 30.0
    migration_tag: str = "bluegreen/migration"


def _mapping(raw: Any, where: str) -> Mapping[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"`{where}` must be a mapping, got {type(raw).__name__}")
    return raw


def _str(section: Mapping[str, Any], key: str, where: str) -> str | None:
    return Fields(section, where).text(key)


def _access(section: Mapping[str, Any], where: str) -> ClusterAccess:
    eks = _str(section, "eks", where)
    kubeconfig = _str(section, "kubeconfig", where)
    context = _str(section, "context", where)
    region = _str(section, "region", where)
    if eks and not _EKS_NAME.match(eks):
        raise ConfigError(f"`{where}.eks` is not a valid EKS cluster name: {eks!r}")
    if kubeconfig and not context:
        raise ConfigError(f"`{where}.context` is required with `{where}.kubeconfig`",
                          hint="name the kubeconfig context of this cluster, e.g. context: eks-blueprint-green")
    if not eks and not context:
        raise ConfigError(f"`{where}` says nothing about how to reach the cluster",
                          hint=f"set `{where}.eks: CLUSTER_NAME`, or `{where}.context: NAME` (kubeconfig from "
                               f"$KUBECONFIG or ~/.kube/config, or `{where}.kubeconfig: PATH`)")
    return ClusterAccess(eks=eks, kubeconfig=kubeconfig, context=context, region=region)


def _cluster(raw: Any, side: str) -> ClusterSpec:
    where = f"clusters.{side}"
    if raw is None:  # omitted: the kubeconfig's current context, resolved when the cluster is reached
        return ClusterSpec(side=side, access=ClusterAccess(), name="")
    section = _mapping(raw, where)
    check_keys(section, _CLUSTER_KEYS, where)
    access = _access(section, where)
    name = _str(section, "name", where) or access.eks or access.context
    secret = _str(section, "argocd_secret", where)
    if secret and not _K8S_NAME.match(secret):
        raise ConfigError(f"`{where}.argocd_secret` is not a valid Secret name: {secret!r}")
    return ClusterSpec(side=side, access=access, name=name, argocd_secret=secret,
                       destination=_str(section, "destination", where))


def _strings(section: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = section.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(f"`{where}.{key}` must be a list of strings, got {value!r}")
    return tuple(v.strip() for v in value)


def parse_clusters(raw: Any) -> ClustersConfig:
    if raw is None:
        raise ConfigError("`clusters` is missing: this command needs to reach the blue and green clusters",
                          hint="add `clusters: {blue: {eks: NAME}, green: {eks: NAME}}` (see README, Clusters)")
    section = _mapping(raw, "clusters")
    check_keys(section, {"blue", "green", "argocd"}, "clusters")
    if section.get("blue") is None and section.get("green") is None:
        # One kubeconfig has one current context: it can stand for one side, never for both.
        raise ConfigError("`clusters.blue` and `clusters.green` are both missing: at most one side may be left "
                          "out to use the kubeconfig's current context",
                          hint="add `clusters.blue: {context: NAME}` or `clusters.green: {eks: NAME}` "
                               "(kubectl config get-contexts lists the contexts)")
    blue = _cluster(section.get("blue"), "blue")
    green = _cluster(section.get("green"), "green")
    if blue.name and blue.name == green.name:
        raise ConfigError(f"`clusters.blue` and `clusters.green` both name the cluster {blue.name!r}",
                          hint="they must be two different clusters; set `name:` if the defaults collide")
    argo = _mapping(section.get("argocd"), "clusters.argocd")
    check_keys(argo, {"mode", "namespace", "hub"}, "clusters.argocd")
    mode = argo.get("mode", "in-cluster")
    if mode not in ARGOCD_MODES:
        raise ConfigError(f"`clusters.argocd.mode` must be in-cluster or hub, got {mode!r}",
                          hint="in-cluster: each cluster runs its own ArgoCD (EKS Blueprints); "
                               "hub: one ArgoCD cluster holds the secrets of both")
    namespace = _str(argo, "namespace", "clusters.argocd") or "argocd"
    if not _K8S_NAME.match(namespace):
        raise ConfigError(f"`clusters.argocd.namespace` is not a valid namespace: {namespace!r}")
    hub = None
    if mode == "hub":
        if argo.get("hub") is None:
            raise ConfigError("`clusters.argocd.hub` is required with mode: hub",
                              hint="e.g. hub: {eks: ops-cluster} or hub: {kubeconfig: PATH, context: NAME}")
        hub_section = _mapping(argo.get("hub"), "clusters.argocd.hub")
        check_keys(hub_section, _ACCESS_KEYS, "clusters.argocd.hub")
        hub = _access(hub_section, "clusters.argocd.hub")
    elif argo.get("hub") is not None:
        raise ConfigError("`clusters.argocd.hub` is only used with mode: hub",
                          hint="set `clusters.argocd.mode: hub` or remove `hub`")
    return ClustersConfig(blue=blue, green=green, argocd=ArgoCDSpec(mode=mode, namespace=namespace, hub=hub))


def parse_verify(raw: Any) -> VerifyConfig:
    section = _mapping(raw, "verify")
    check_keys(section, {"ignore_keys", "workload_namespaces", "ignore_applications"}, "verify")
    namespaces = _strings(section, "workload_namespaces", "verify")
    for ns in namespaces:
        if not _K8S_NAME.match(ns):
            raise ConfigError(f"`verify.workload_namespaces`: {ns!r} is not a valid namespace")
    return VerifyConfig(
        ignore_keys=_strings(section, "ignore_keys", "verify"),
        workload_namespaces=namespaces,
        ignore_applications=_strings(section, "ignore_applications", "verify"),
    )


def parse_provision(raw: Any) -> ProvisionConfig:
    section = _mapping(raw, "provision")
    check_keys(section, {"command", "workdir", "wait_timeout", "poll_interval", "migration_tag"}, "provision")
    text = _str(section, "command", "provision")
    argv = None
    if text:
        try:
            argv = tuple(shlex.split(text))
        except ValueError as error:
            raise ConfigError(f"`provision.command` cannot be split into words: {error}",
                              hint="quote it as in a shell; it runs without a shell") from None
    fields = Fields(section, "provision")
    wait_timeout = fields.duration("wait_timeout", 1800.0, above_zero=True, hi=86400.0)
    poll = fields.duration("poll_interval", 30.0, above_zero=True, hi=3600.0)
    tag = _str(section, "migration_tag", "provision") or "bluegreen/migration"
    return ProvisionConfig(command=argv, command_text=text, workdir=_str(section, "workdir", "provision"),
                           wait_timeout=wait_timeout, poll_interval=poll, migration_tag=tag)
