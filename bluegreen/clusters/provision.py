"""``bluegreen provision``: target an existing green cluster, clone blue into a new one through the EKS API,
or run an external provisioner and then target its result.

Every mode ends with the same checks: the cluster is ACTIVE and registered in ArgoCD. Re-running continues
where a previous run stopped (whatever exists is left alone); ``dry_run`` reads only and returns the plan.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from typing import IO, Any, Callable

import structlog

from bluegreen.config.clusters import ClustersConfig, ProvisionConfig
from bluegreen.config import Config
from bluegreen.errors import BlueGreenError, ConfigError, ExitCode

log = structlog.get_logger("bluegreen.clusters")

# Metadata keys that name or locate one cluster: set for the new cluster instead of copied from blue.
CLUSTER_SPECIFIC_KEYS = ("cluster_name", "aws_cluster_name", "cluster_endpoint", "kubernetes_version",
                         "aws_vpc_id", "route53_weight")
# Never copied to the new cluster's secret: a credential hash of blue's ArgoCD, kubectl's full copy.
NOT_COPIED = ("argocd_password", "kubectl.kubernetes.io/last-applied-configuration")
# Copied but probably wrong for the new cluster (IAM roles trust blue's OIDC provider): reported.
_SUSPECT = re.compile(r"(_iam_role_arn|_role_arn|_iam_role_name|oidc_provider|karpenter_sqs_queue_name|"
                      r"karpenter_node_instance_profile_name)$")
_VERSION = re.compile(r"^(\d+)\.(\d+)$")


class ProvisionError(BlueGreenError):
    exit_code = ExitCode.ERROR


@dataclass(frozen=True)
class Action:
    kind: str  # command | cluster | nodegroup | addon | argocd-secret | check
    name: str
    status: str  # created | exists | would-create | waited | ran | would-run | ok | failed
    detail: str = ""


@dataclass
class ProvisionReport:
    side: str
    cluster: str
    mode: str  # target | clone | command
    dry_run: bool
    version: str | None = None
    actions: list[Action] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        return [f"{a.kind} {a.name}: {a.detail}" for a in self.actions if a.status == "failed"]

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK if self.ok else ExitCode.NOT_READY

    def add(self, kind: str, name: str, status: str, detail: str = "") -> None:
        self.actions.append(Action(kind, name, status, detail))

    def as_dict(self) -> dict:
        return {
            "side": self.side, "cluster": self.cluster, "mode": self.mode, "dry_run": self.dry_run,
            "version": self.version, "ok": self.ok, "problems": self.problems, "warnings": list(self.warnings),
            "actions": [{"kind": a.kind, "name": a.name, "status": a.status, "detail": a.detail}
                        for a in self.actions],
        }

    def text(self) -> str:
        head = (f"provision {self.side} ({self.cluster}), mode {self.mode}"
                + (f", Kubernetes {self.version}" if self.version else "") + (" [dry run]" if self.dry_run else ""))
        lines = [head]
        for a in self.actions:
            lines.append(f"  {a.status:<13} {a.kind:<14} {a.name}" + (f"  ({a.detail})" if a.detail else ""))
        lines += [f"  warning: {w}" for w in self.warnings]
        if self.dry_run:
            lines.append("nothing was changed (--dry-run)")
        lines.append(f"{self.side} is ready to verify" if self.ok else
                     f"{self.side} is NOT ready: " + "; ".join(self.problems))
        return "\n".join(lines)


# -- pure planning -----------------------------------------------------------------------------------
def parse_version(text: str, what: str) -> tuple[int, int]:
    match = _VERSION.match(str(text or "").strip())
    if not match:
        raise ConfigError(f"{what} must look like 1.31, got {text!r}")
    return int(match[1]), int(match[2])


def check_version_jump(blue_version: str, target_version: str, allow_skip: bool, source: str = "blue") -> None:
    old, new = parse_version(blue_version, f"{source}'s Kubernetes version"), parse_version(target_version, "--version")
    if old[0] != new[0]:
        raise ConfigError(f"cannot go from Kubernetes {blue_version} to {target_version}")
    jump = new[1] - old[1]
    if jump < 0 and not allow_skip:
        raise ConfigError(f"--version {target_version} is older than {source}'s {blue_version}",
                          hint="a blue/green upgrade goes forward; pass --allow-skip if you really mean it")
    if jump > 1 and not allow_skip:
        raise ConfigError(
            f"--version {target_version} is {jump} minor versions above {source}'s {blue_version}",
            hint="a new cluster may skip versions, but check every deprecated API and add-on for each skipped "
                 "version first; pass --allow-skip to do it deliberately, or use "
                 f"--version {old[0]}.{old[1] + 1}")


def cluster_request(blue: dict, name: str, version: str, tag_key: str, migration: str) -> dict:
    vpc = blue.get("resourcesVpcConfig") or {}
    vpc_request = {"subnetIds": list(vpc.get("subnetIds") or []),
                   "securityGroupIds": list(vpc.get("securityGroupIds") or [])}
    for key in ("endpointPublicAccess", "endpointPrivateAccess", "publicAccessCidrs"):
        if key in vpc:
            vpc_request[key] = vpc[key]
    request = {"name": name, "version": version, "roleArn": blue["roleArn"], "resourcesVpcConfig": vpc_request,
               "tags": {**(blue.get("tags") or {}), tag_key: migration, "bluegreen/cloned-from": blue["name"]}}
    if blue.get("logging"):
        request["logging"] = blue["logging"]
    return request


def nodegroup_request(blue_ng: dict, cluster: str, tag_key: str, migration: str) -> dict:
    """Same scaling, instance types, labels, taints and subnets; no release version (EKS picks the one of
    the new Kubernetes version)."""
    request: dict[str, Any] = {
        "clusterName": cluster, "nodegroupName": blue_ng["nodegroupName"], "nodeRole": blue_ng["nodeRole"],
        "subnets": list(blue_ng.get("subnets") or []),
        "tags": {**(blue_ng.get("tags") or {}), tag_key: migration},
    }
    for key in ("scalingConfig", "instanceTypes", "labels", "taints", "amiType", "capacityType", "updateConfig"):
        if blue_ng.get(key):
            request[key] = blue_ng[key]
    if blue_ng.get("launchTemplate"):
        template = blue_ng["launchTemplate"]
        request["launchTemplate"] = {k: template[k] for k in ("id", "version") if template.get(k)} or \
                                    {k: template[k] for k in ("name", "version") if template.get(k)}
    elif blue_ng.get("diskSize"):
        request["diskSize"] = blue_ng["diskSize"]
    if blue_ng.get("remoteAccess") and blue_ng["remoteAccess"].get("ec2SshKey") and not blue_ng.get("launchTemplate"):
        request["remoteAccess"] = blue_ng["remoteAccess"]
    return request


def addon_request(blue_addon: dict, cluster: str, version: str | None) -> dict:
    request = {"clusterName": cluster, "addonName": blue_addon["addonName"], "resolveConflicts": "OVERWRITE"}
    if version:
        request["addonVersion"] = version
    for key in ("serviceAccountRoleArn", "configurationValues"):
        if blue_addon.get(key):
            request[key] = blue_addon[key]
    return request


def green_metadata(blue_labels: dict, blue_annotations: dict, *, name: str, endpoint: str | None,
                   version: str, vpc_id: str | None) -> tuple[dict, dict, list[str]]:
    """Blue's labels and annotations, with the cluster-specific keys set for the new cluster and route53
    weight 0. Returns (labels, annotations, keys copied from blue that probably need a new value)."""
    values = {"cluster_name": name, "aws_cluster_name": name, "cluster_endpoint": endpoint,
              "kubernetes_version": version, "aws_vpc_id": vpc_id, "route53_weight": "0"}
    out: list[dict] = []
    for source in (blue_labels, blue_annotations):
        copied = {k: v for k, v in source.items() if k not in NOT_COPIED}
        for key in CLUSTER_SPECIFIC_KEYS:
            if key in copied and values[key] is not None:
                copied[key] = values[key]
        out.append(copied)
    labels, annotations = out
    if "route53_weight" not in labels:
        annotations["route53_weight"] = "0"
    suspects = sorted(k for k in {**labels, **annotations} if _SUSPECT.search(k))
    return labels, annotations, suspects


# -- running -----------------------------------------------------------------------------------------
@dataclass
class Deps:
    """What provision touches, injectable for tests."""

    eks: Any = None  # bluegreen.adapters.eks.Eks
    connect: Callable | None = None  # (ClusterAccess, label) -> Kube
    monotonic: Callable[[], float] | None = None
    sleep: Callable[[float], None] | None = None
    stream: IO[str] | None = None  # where an external command's output goes
    run_command: Callable | None = None  # (argv, cwd, stream) -> exit status


def run_provision(config: Config, side: str = "green", from_side: str | None = None, version: str | None = None,
                  allow_skip: bool = False, dry_run: bool = False, *, deps: Deps | None = None) -> ProvisionReport:
    """Target, clone (``from_side``) or run ``provision.command`` for ``side``. Raises ConfigError (exit 2)
    before any change on bad input; returns a report whose ``exit_code`` is 0 when the cluster is ready."""
    import time

    from bluegreen.adapters.kube import Clusters, resolve_current_context

    clusters = resolve_current_context(config.require_clusters())
    options = config.provision
    deps = deps or Deps()
    deps.monotonic = deps.monotonic or time.monotonic
    deps.sleep = deps.sleep or time.sleep
    deps.stream = deps.stream or sys.stderr
    spec = clusters.side(side)
    if from_side is not None and from_side == side:
        raise ConfigError(f"--from {from_side}: cannot clone a cluster into itself")
    mode = "clone" if from_side else "command" if options.command else "target"
    if from_side is None and version is not None:
        raise ConfigError("--version is only used with --from (clone mode)")
    report = ProvisionReport(side=side, cluster=spec.name, mode=mode, dry_run=dry_run, version=version)
    with Clusters(config, clusters, deps.connect) as kubes:
        if mode == "clone":
            _clone(config, clusters, options, kubes, report, side, from_side, version, allow_skip, dry_run, deps)
        else:
            if mode == "command":
                _run_command(options, report, dry_run, deps)
            _target(config, clusters, options, kubes, report, side, dry_run, deps)
    log.info("provision_done", side=side, mode=mode, dry_run=dry_run, ok=report.ok,
             created=sum(a.status == "created" for a in report.actions))
    return report


def _eks(config: Config, deps: Deps):
    if deps.eks is None:
        from bluegreen.adapters import aws
        from bluegreen.adapters.eks import Eks

        deps.eks = Eks(aws.client(config.aws, "eks"))
    return deps.eks


def _run_command(options: ProvisionConfig, report: ProvisionReport, dry_run: bool, deps: Deps) -> None:
    text = options.command_text or ""
    if dry_run:
        report.add("command", text, "would-run")
        return
    log.info("provision_command_start", command=options.command[0] if options.command else "")
    runner = deps.run_command or _stream_command
    status = runner(list(options.command or ()), options.workdir, deps.stream)
    if status != 0:
        raise ProvisionError(f"provision.command exited with status {status}: {text}",
                             hint="fix it and run `bluegreen provision` again")
    report.add("command", text, "ran")


def _stream_command(argv: list[str], cwd: str | None, stream: IO[str]) -> int:
    try:
        process = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   bufsize=1)
    except OSError as error:
        raise ProvisionError(f"cannot run provision.command ({argv[0]}): {error.strerror}") from None
    assert process.stdout is not None
    for line in process.stdout:
        stream.write(line)
        stream.flush()
    return process.wait()


def _target(config: Config, clusters: ClustersConfig, options: ProvisionConfig, kubes, report: ProvisionReport,
            side: str, dry_run: bool, deps: Deps) -> None:
    from bluegreen.adapters.eks import wait_for_status
    from bluegreen.adapters.argocd import find_cluster_secret

    spec = clusters.side(side)
    if spec.access.eks:
        eks = _eks(config, deps)
        description = eks.describe_cluster(spec.access.eks)
        if description is None:
            report.add("check", f"EKS cluster {spec.access.eks}", "failed",
                       "does not exist; create it (provision.command, or --from blue to clone blue)")
            return
        if description.get("status") != "ACTIVE" and not dry_run:
            description = wait_for_status(lambda: eks.describe_cluster(spec.access.eks),
                                          f"EKS cluster {spec.access.eks}", monotonic=deps.monotonic,
                                          sleep=deps.sleep, timeout=options.wait_timeout,
                                          interval=options.poll_interval)
            report.add("cluster", spec.access.eks, "waited", "ACTIVE")
        active = description.get("status") == "ACTIVE"
        report.add("check", f"EKS cluster {spec.access.eks}", "ok" if active else "failed",
                   f"{description.get('status')}, Kubernetes {description.get('version')}")
        report.version = report.version or description.get("version")
    secret, seen = find_cluster_secret(kubes, side)
    if secret is None:
        report.add("check", "ArgoCD registration", "failed",
                   f"no cluster secret for {spec.name!r} in {clusters.argocd.namespace} "
                   f"(found: {', '.join(seen) or 'none'})")
    else:
        report.add("check", "ArgoCD registration", "ok", f"{clusters.argocd.namespace}/{secret.name}")


def _clone(config: Config, clusters: ClustersConfig, options: ProvisionConfig, kubes, report: ProvisionReport,
           side: str, from_side: str, version: str | None, allow_skip: bool, dry_run: bool, deps: Deps) -> None:
    from bluegreen.adapters.eks import wait_for_status

    source, target = clusters.side(from_side), clusters.side(side)
    for spec in (source, target):
        if not spec.access.eks:
            raise ConfigError(f"clone mode needs `clusters.{spec.side}.eks` (the EKS cluster name)",
                              hint="cloning goes through the EKS API; a kubeconfig context alone is not enough")
    if version is None:
        raise ConfigError("--version is required with --from", hint="e.g. --version 1.31")
    eks = _eks(config, deps)
    blue = eks.describe_cluster(source.access.eks)
    if blue is None:
        raise ConfigError(f"the {from_side} cluster {source.access.eks!r} does not exist in EKS",
                          hint=f"check clusters.{from_side}.eks and aws.region")
    check_version_jump(blue["version"], version, allow_skip, from_side)
    name = target.access.eks
    migration = config.name
    green = eks.describe_cluster(name)
    if green is not None and green.get("version") != version:
        raise ConfigError(f"the {side} cluster {name!r} already exists at Kubernetes {green.get('version')}, "
                          f"not {version}", hint=f"pass --version {green.get('version')} to continue with it")

    # 1. the control plane
    if green is None:
        if dry_run:
            report.add("cluster", name, "would-create", f"Kubernetes {version}, like {blue['name']}")
        else:
            eks.create_cluster(cluster_request(blue, name, version, options.migration_tag, migration))
            report.add("cluster", name, "created", f"Kubernetes {version}")
    else:
        report.add("cluster", name, "exists", green.get("status", ""))
    if not dry_run:
        green = wait_for_status(lambda: eks.describe_cluster(name), f"EKS cluster {name}",
                                monotonic=deps.monotonic, sleep=deps.sleep,
                                timeout=options.wait_timeout, interval=options.poll_interval)

    # 2. node groups
    existing_ngs = {ng["nodegroupName"] for ng in eks.nodegroups(name)} if green is not None else set()
    new_ngs = []
    for ng in eks.nodegroups(blue["name"]):
        ng_name = ng["nodegroupName"]
        if ng_name in existing_ngs:
            report.add("nodegroup", ng_name, "exists")
        elif dry_run:
            report.add("nodegroup", ng_name, "would-create", _ng_summary(ng))
        else:
            eks.create_nodegroup(nodegroup_request(ng, name, options.migration_tag, migration))
            report.add("nodegroup", ng_name, "created", _ng_summary(ng))
            new_ngs.append(ng_name)

    # 3. add-ons, at the default version for the new Kubernetes version
    existing_addons = set(eks.addon_names(name)) if green is not None else set()
    for addon in eks.addons(blue["name"]):
        addon_name = addon["addonName"]
        if addon_name in existing_addons:
            report.add("addon", addon_name, "exists")
            continue
        default = eks.default_addon_version(addon_name, version)
        if default is None:
            report.warnings.append(f"add-on {addon_name} has no version for Kubernetes {version}; not installed")
            report.add("addon", addon_name, "failed", f"no version for Kubernetes {version}")
            continue
        detail = f"{addon.get('addonVersion')} -> {default}"
        if dry_run:
            report.add("addon", addon_name, "would-create", detail)
        else:
            eks.create_addon(addon_request(addon, name, default))
            report.add("addon", addon_name, "created", detail)
        if addon.get("serviceAccountRoleArn"):
            report.warnings.append(f"add-on {addon_name} uses role {addon['serviceAccountRoleArn']}, which trusts "
                                   f"{blue['name']}'s OIDC provider: add {name}'s to its trust policy")
    for ng_name in new_ngs:
        wait_for_status(lambda n=ng_name: eks.describe_nodegroup(name, n), f"node group {ng_name} of {name}",
                        monotonic=deps.monotonic, sleep=deps.sleep,
                        timeout=options.wait_timeout, interval=options.poll_interval)

    # 4. ArgoCD registration, with blue's metadata
    _register(clusters, kubes, report, from_side, side, blue, green, version, dry_run)


def _ng_summary(ng: dict) -> str:
    scaling = ng.get("scalingConfig") or {}
    return (f"{','.join(ng.get('instanceTypes') or [])} min {scaling.get('minSize')} max {scaling.get('maxSize')} "
            f"desired {scaling.get('desiredSize')}")


def _register(clusters: ClustersConfig, kubes, report: ProvisionReport, from_side: str, side: str, blue: dict,
              green: dict | None, version: str, dry_run: bool) -> None:
    from bluegreen.adapters import argocd
    from bluegreen.adapters.argocd import find_cluster_secret

    target = clusters.side(side)
    namespace = clusters.argocd.namespace
    hub = clusters.argocd.mode == "hub"
    if dry_run and not hub and green is None:
        report.add("argocd-secret", target.name, "would-create", f"in {namespace} on the new cluster, weight 0")
        return
    blue_secret, seen = find_cluster_secret(kubes, from_side)
    if blue_secret is None:
        report.add("argocd-secret", target.name, "failed",
                   f"cannot copy metadata: no ArgoCD cluster secret for the {from_side} cluster "
                   f"(found: {', '.join(seen) or 'none'})")
        return
    existing, _ = find_cluster_secret(kubes, side)
    if existing is not None:
        report.add("argocd-secret", existing.name, "exists", f"{namespace}/{existing.name}")
        return
    endpoint = (green or {}).get("endpoint")
    vpc_id = ((green or {}).get("resourcesVpcConfig") or {}).get("vpcId")
    labels, annotations, suspects = green_metadata(dict(blue_secret.labels), dict(blue_secret.annotations),
                                                   name=target.name, endpoint=endpoint, version=version,
                                                   vpc_id=vpc_id)
    for key in suspects:
        report.warnings.append(f"metadata {key} was copied from {from_side}; it probably names a {from_side} "
                               "resource: set it for the new cluster")
    secret_name = target.argocd_secret or (
        blue_secret.name.replace(blue["name"], target.name) if blue["name"] in blue_secret.name else target.name)
    if dry_run:
        report.add("argocd-secret", secret_name, "would-create",
                   f"{namespace}, {len(labels)} labels, {len(annotations)} annotations, route53 weight 0")
        return
    server = endpoint if hub else "https://kubernetes.default.svc"
    cluster_config: dict = {"tlsClientConfig": {"insecure": False}}
    if hub:
        cluster_config["awsAuthConfig"] = {"clusterName": target.access.eks or target.name}
        ca = ((green or {}).get("certificateAuthority") or {}).get("data")
        if ca:
            cluster_config["tlsClientConfig"]["caData"] = ca
    argocd.create_cluster_secret(kubes.argocd_kube(side), namespace, secret_name, labels=labels,
                                 annotations=annotations,
                                 string_data={"name": target.name, "server": server or "",
                                              "config": json.dumps(cluster_config)})
    report.add("argocd-secret", secret_name, "created", f"{namespace}, route53 weight 0")
