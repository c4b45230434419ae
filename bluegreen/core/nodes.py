"""In-place node upgrades: blue/green node groups inside one cluster. Pure: no I/O, no SDK imports.

What the adapters read (node groups as DescribeNodegroup returns them, nodes, workloads, pods, claims and
disruption budgets as the Kubernetes API returns them, as dicts) goes in; what comes out is a plan (what to
create, cordon and restart, in which order, and what is refused or only reported), the rollback plan, the
decisions of the wait loops (with the time passed in, from an injected clock), and the keep-time rule of
``nodes finish``. The command (``bluegreen.commands.nodes``) carries the decisions out.

The procedure is the one in the seed story of issue 13: upgrade the control plane, add a node group at the
new version beside each old one, cordon the old nodes by kubelet version, ``kubectl rollout restart`` the
Deployments and StatefulSets namespace by namespace (DaemonSets follow the nodes by themselves), keep the old
nodes for a while for rollback, then delete them.
"""

from __future__ import annotations

import enum
import fnmatch
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

# `kubectl rollout restart` sets this pod-template annotation to the current time (RFC 3339); the changed
# template makes the controller roll every pod (kubectl pkg/polymorphichelpers/objectrestarter.go).
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
# EKS labels the nodes of a managed node group with its name (EKS User Guide, "Managed node groups").
NODEGROUP_LABEL = "eks.amazonaws.com/nodegroup"
# Karpenter labels the nodes it launches with their NodePool (v1) or Provisioner (v1alpha5).
KARPENTER_LABELS = ("karpenter.sh/nodepool", "karpenter.sh/provisioner-name")
RWO = "ReadWriteOnce"
RWO_POLICIES = ("refuse", "scale-to-zero")
_MAX_NODEGROUP_NAME = 63  # CreateNodegroup: nodegroupName, 1-63 characters
_VERSION_SUFFIX = re.compile(r"-\d+-\d+$")


class NodesError(ValueError):
    """An input the planner cannot work with (the command turns it into a ConfigError or PreflightError)."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class NodeEvent(str, enum.Enum):
    """What ``nodes`` journals. Kept apart from ``core.events.EventKind`` until the lead folds them in."""

    CONTROL_PLANE_UPGRADED = "nodes_control_plane_upgraded"
    TWIN_CREATED = "nodes_twin_created"
    TWIN_READY = "nodes_twin_ready"
    CORDONED = "nodes_cordoned"
    UNCORDONED = "nodes_uncordoned"
    WORKLOAD_RESTARTED = "nodes_workload_restarted"
    SCALED_TO_ZERO = "nodes_scaled_to_zero"
    SCALED_BACK = "nodes_scaled_back"
    WORKLOAD_MOVED = "nodes_workload_moved"
    WORKLOAD_BLOCKED = "nodes_workload_blocked"
    GATES_FAILED = "nodes_gates_failed"
    ROLLBACK_STARTED = "nodes_rollback_started"
    ROLLED_BACK = "nodes_rolled_back"
    INTERRUPTED = "nodes_interrupted"
    UPGRADE_COMPLETED = "nodes_upgrade_completed"
    GROUP_DELETED = "nodes_group_deleted"

    def __str__(self) -> str:
        return self.value


# -- versions ------------------------------------------------------------------------------------------
def minor(version: str) -> tuple[int, int]:
    """``1.31``, ``v1.31.4-eks-abc``, ``31+`` style minors -> (1, 31)."""
    match = re.match(r"^v?(\d+)\.(\d+)", str(version).strip())
    if not match:
        raise NodesError(f"not a Kubernetes version: {version!r}", hint="versions look like 1.31")
    return int(match[1]), int(match[2])


def minor_text(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


def control_plane_steps(current: str, target: str) -> tuple[str, ...]:
    """The versions UpdateClusterVersion must go through: EKS moves a control plane one minor at a time
    (EKS User Guide, "Update existing cluster to new Kubernetes version")."""
    now, want = minor(current), minor(target)
    if want < now:
        raise NodesError(f"--version {target} is older than the control plane's {current}: "
                         "Kubernetes cannot be downgraded", hint=f"pass --version {current} or newer")
    return tuple(minor_text((want[0], m)) for m in range(now[1] + 1, want[1] + 1))


# -- what the adapters read, as plain values ----------------------------------------------------------
@dataclass(frozen=True)
class Node:
    name: str
    kubelet: str  # status.nodeInfo.kubeletVersion
    nodegroup: str | None  # eks.amazonaws.com/nodegroup
    karpenter: bool
    unschedulable: bool
    ready: bool

    @property
    def managed(self) -> bool:
        return self.nodegroup is not None

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> "Node":
        meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
        labels = meta.get("labels") or {}
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
        return cls(name=meta.get("name", ""), kubelet=(status.get("nodeInfo") or {}).get("kubeletVersion", ""),
                   nodegroup=labels.get(NODEGROUP_LABEL), karpenter=any(k in labels for k in KARPENTER_LABELS),
                   unschedulable=bool(spec.get("unschedulable")), ready=ready)


@dataclass(frozen=True)
class Workload:
    kind: str  # Deployment | StatefulSet
    namespace: str
    name: str
    replicas: int
    template_labels: Mapping[str, str]
    selector: Mapping[str, str]
    claims: tuple[str, ...]  # persistentVolumeClaim.claimName in the pod template

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"

    @classmethod
    def from_object(cls, kind: str, obj: Mapping[str, Any]) -> "Workload":
        meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
        template = spec.get("template") or {}
        volumes = (template.get("spec") or {}).get("volumes") or []
        claims = tuple(v["persistentVolumeClaim"]["claimName"] for v in volumes
                       if (v.get("persistentVolumeClaim") or {}).get("claimName"))
        replicas = spec.get("replicas")
        return cls(kind=kind, namespace=meta.get("namespace", ""), name=meta.get("name", ""),
                   replicas=1 if replicas is None else int(replicas),
                   template_labels=dict((template.get("metadata") or {}).get("labels") or {}),
                   selector=dict((spec.get("selector") or {}).get("matchLabels") or {}), claims=claims)


@dataclass(frozen=True)
class Budget:
    """A PodDisruptionBudget: its selector and what its status allows now."""

    namespace: str
    name: str
    selector: Mapping[str, str]
    disruptions_allowed: int | None  # status.disruptionsAllowed; None before its controller has seen it

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> "Budget":
        meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
        allowed = status.get("disruptionsAllowed")
        return cls(namespace=meta.get("namespace", ""), name=meta.get("name", ""),
                   selector=dict((spec.get("selector") or {}).get("matchLabels") or {}),
                   disruptions_allowed=None if allowed is None else int(allowed))

    def covers(self, workload: Workload) -> bool:
        labels = workload.template_labels
        return (self.namespace == workload.namespace and bool(self.selector)
                and all(labels.get(k) == v for k, v in self.selector.items()))


def selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def rwo_claims(namespace: str, pvcs: Iterable[Mapping[str, Any]]) -> frozenset[str]:
    """Names of the ReadWriteOnce claims of a namespace: a volume that attaches to one node at a time, so
    the new pod on a new node cannot start while the old one holds it (Kubernetes docs, Persistent Volumes,
    "Access Modes")."""
    out = set()
    for pvc in pvcs:
        meta = pvc.get("metadata") or {}
        if meta.get("namespace") == namespace and RWO in ((pvc.get("spec") or {}).get("accessModes") or []):
            out.add(meta.get("name", ""))
    return frozenset(out)


# -- settings -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NodesSettings:
    """The ``nodes:`` config section (parsed in ``bluegreen.config.nodes``)."""

    parallel: int = 2
    workload_timeout: float = 600.0
    rwo: str = "refuse"  # refuse | scale-to-zero
    min_statefulset_replicas: int = 2
    namespaces: tuple[str, ...] = ()  # () = every namespace but skip_namespaces
    skip_namespaces: tuple[str, ...] = ("kube-public", "kube-node-lease")
    keep: float = 86400.0
    ready_timeout: float = 1200.0  # a new node group: ACTIVE and its nodes Ready
    control_plane_timeout: float = 3600.0
    poll_interval: float = 5.0


# -- the plan -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Twin:
    old: str
    new: str
    request: Mapping[str, Any]  # the CreateNodegroup request
    exists: bool = False  # created by an earlier run


@dataclass(frozen=True)
class Move:
    workload: Workload
    action: str  # restart | scale-to-zero
    budget: str | None = None  # the PDB covering it, ns/name
    note: str = ""

    def as_dict(self) -> dict:
        return {"workload": self.workload.key, "action": self.action, "replicas": self.workload.replicas,
                "budget": self.budget, "note": self.note}


@dataclass(frozen=True)
class Finding:
    subject: str
    reason: str
    fix: str

    def as_dict(self) -> dict:
        return {"subject": self.subject, "reason": self.reason, "fix": self.fix}


@dataclass(frozen=True)
class NodesPlan:
    cluster: str
    control_plane: str
    target: str
    control_plane_steps: tuple[str, ...]
    twins: tuple[Twin, ...]
    cordon: tuple[str, ...]  # old managed nodes, by name
    new_nodes: tuple[str, ...]  # nodes already at the target in the twins
    waves: tuple[tuple[str, tuple[Move, ...]], ...]  # (namespace, moves) in order
    refusals: tuple[Finding, ...]
    reported: tuple[Finding, ...]  # seen, not touched

    @property
    def moves(self) -> tuple[Move, ...]:
        return tuple(m for _, moves in self.waves for m in moves)

    @property
    def old_groups(self) -> tuple[str, ...]:
        return tuple(t.old for t in self.twins)

    def as_dict(self) -> dict:
        return {
            "cluster": self.cluster, "control_plane": self.control_plane, "target": self.target,
            "control_plane_steps": list(self.control_plane_steps),
            "twins": [{"old": t.old, "new": t.new, "exists": t.exists} for t in self.twins],
            "cordon": list(self.cordon), "new_nodes": list(self.new_nodes),
            "waves": [{"namespace": ns, "moves": [m.as_dict() for m in moves]} for ns, moves in self.waves],
            "refusals": [f.as_dict() for f in self.refusals], "reported": [f.as_dict() for f in self.reported],
        }

    def text(self) -> str:
        lines = [f"cluster {self.cluster}: control plane {self.control_plane}, target {self.target}"]
        if self.control_plane_steps:
            lines.append(f"1. upgrade the control plane: {' -> '.join((self.control_plane,) + self.control_plane_steps)}")
        else:
            lines.append("1. control plane already at the target")
        lines.append("2. node groups at the target, beside the old ones:")
        lines += [f"   {t.old} -> {t.new}{' (exists)' if t.exists else ''}" for t in self.twins] or ["   (none)"]
        lines.append(f"3. cordon {len(self.cordon)} old node(s): {', '.join(self.cordon) or '(none)'}")
        lines.append("4. restart, namespace by namespace:")
        for ns, moves in self.waves:
            lines.append(f"   {ns}: " + ", ".join(
                f"{m.workload.kind} {m.workload.name}" + (" (scale to 0 and back)" if m.action == "scale-to-zero" else "")
                for m in moves))
        if not self.waves:
            lines.append("   (nothing left on old nodes)")
        for title, items in (("refused", self.refusals), ("reported, not touched", self.reported)):
            if items:
                lines.append(f"{title}:")
                lines += [f"  - {f.subject}: {f.reason}\n    fix: {f.fix}" for f in items]
        return "\n".join(lines)


def twin_name(old: str, target: str) -> str:
    """``workers`` -> ``workers-1-31``; an earlier twin ``workers-1-30`` -> ``workers-1-31``."""
    suffix = "-" + target.replace(".", "-")
    base = _VERSION_SUFFIX.sub("", old)
    return base[: _MAX_NODEGROUP_NAME - len(suffix)] + suffix


def twin_request(group: Mapping[str, Any], cluster: str, target: str) -> dict:
    """CreateNodegroup for the twin of ``group`` (a DescribeNodegroup answer): same scaling, instance types,
    labels, taints, subnets, launch template, capacity type, AMI type, role and tags; ``version`` the target
    and no ``releaseVersion`` (EKS picks the newest AMI release for that version). With a launch template,
    ``diskSize`` and ``remoteAccess`` are left out: EKS refuses them beside one (CreateNodegroup API reference)."""
    request: dict[str, Any] = {
        "clusterName": cluster, "nodegroupName": twin_name(group["nodegroupName"], target), "version": target,
        "nodeRole": group["nodeRole"], "subnets": list(group.get("subnets") or []),
        "scalingConfig": dict(group.get("scalingConfig") or {}),
    }
    for key in ("instanceTypes", "amiType", "capacityType", "labels", "taints", "updateConfig"):
        if group.get(key):
            request[key] = group[key]
    template = group.get("launchTemplate")
    if template:
        request["launchTemplate"] = {k: v for k, v in template.items() if k in ("id", "name", "version")}
        if "id" in request["launchTemplate"] and "name" in request["launchTemplate"]:
            del request["launchTemplate"]["name"]  # EKS takes one of them
    else:
        if group.get("diskSize"):
            request["diskSize"] = int(group["diskSize"])
        if group.get("remoteAccess"):
            request["remoteAccess"] = group["remoteAccess"]
    tags = {k: v for k, v in (group.get("tags") or {}).items() if not k.startswith("aws:")}
    tags["bluegreen/twin-of"] = group["nodegroupName"]
    request["tags"] = tags
    return request


def in_scope(namespace: str, settings: NodesSettings, only: Sequence[str] = ()) -> bool:
    if only:
        return namespace in only
    if settings.namespaces:
        return any(fnmatch.fnmatchcase(namespace, p) for p in settings.namespaces)
    return not any(fnmatch.fnmatchcase(namespace, p) for p in settings.skip_namespaces)


def make_plan(*, cluster: str, control_plane: str, target: str, groups: Sequence[Mapping[str, Any]],
              nodes: Sequence[Node], workloads: Sequence[Workload], pods: Sequence[Mapping[str, Any]],
              pvcs: Sequence[Mapping[str, Any]], budgets: Sequence[Budget], settings: NodesSettings,
              upgrade_control_plane: bool = False, accept_statefulset_downtime: bool = False,
              namespaces: Sequence[str] = ()) -> NodesPlan:
    """What ``nodes upgrade`` will do, from what was read. Refusals are listed, never raised, so ``plan``
    shows them all; ``upgrade`` refuses to start while there is any."""
    want = minor(target)
    steps = control_plane_steps(control_plane, target)
    refusals: list[Finding] = []
    reported: list[Finding] = []
    if steps and not upgrade_control_plane:
        refusals.append(Finding(f"control plane of {cluster}", f"at {control_plane}, not at the target {target}",
                                f"pass --upgrade-control-plane (one minor version at a time), or upgrade it first"))
    by_name = {g["nodegroupName"]: g for g in groups}
    twins: list[Twin] = []
    new_groups: set[str] = set()
    for group in sorted(groups, key=lambda g: g["nodegroupName"]):
        if minor(group.get("version") or "0.0") >= want:
            continue
        name = twin_name(group["nodegroupName"], target)
        existing = by_name.get(name)
        if existing is not None and minor(existing.get("version") or "0.0") < want:
            refusals.append(Finding(f"node group {name}", f"exists at {existing.get('version')}, below {target}",
                                    "rename or delete it: the twin of "
                                    f"{group['nodegroupName']} needs that name"))
            continue
        twins.append(Twin(group["nodegroupName"], name, twin_request(group, cluster, target),
                          exists=existing is not None))
        new_groups.add(name)
    old_groups = {t.old for t in twins}
    cordon, new_nodes = [], []
    for node in sorted(nodes, key=lambda n: n.name):
        old = minor(node.kubelet) < want if node.kubelet else False
        if node.nodegroup in new_groups or (node.managed and not old):
            new_nodes.append(node.name)
        elif old and node.nodegroup in old_groups:
            cordon.append(node.name)
        elif old and node.karpenter:
            reported.append(Finding(f"node {node.name}", f"provisioned by Karpenter at kubelet {node.kubelet}",
                                    "let Karpenter replace it: update the EC2NodeClass AMI (or its drift "
                                    "detection does it once the control plane is upgraded)"))
        elif old and not node.managed:
            reported.append(Finding(f"node {node.name}", f"self-managed at kubelet {node.kubelet}",
                                    "replace it yourself (a new Auto Scaling group or launch template version "
                                    "at the target), then drain it"))
    old_node_set = set(cordon)
    waves: dict[str, list[Move]] = {}
    for workload in sorted(workloads, key=lambda w: (w.namespace, 0 if w.kind == "Deployment" else 1, w.name)):
        if not in_scope(workload.namespace, settings, namespaces) or workload.replicas == 0:
            continue
        on_old = [p for p in pods if (p.get("metadata") or {}).get("namespace") == workload.namespace
                  and selects(workload.selector, (p.get("metadata") or {}).get("labels") or {})
                  and (p.get("spec") or {}).get("nodeName") in old_node_set]
        if not on_old:
            continue  # already on new nodes (or on nodes we do not touch)
        budget = next((b for b in budgets if b.covers(workload)), None)
        budget_ref = f"{budget.namespace}/{budget.name}" if budget else None
        rwo = sorted(set(workload.claims) & rwo_claims(workload.namespace, pvcs))
        if workload.kind == "Deployment" and rwo:
            if settings.rwo != "scale-to-zero":
                refusals.append(Finding(f"Deployment {workload.namespace}/{workload.name}",
                                        f"mounts ReadWriteOnce claim(s) {', '.join(rwo)}: a restarted pod on a new "
                                        "node cannot attach the volume while the old pod holds it, so the "
                                        "rollout hangs",
                                        "set `nodes.rwo: scale-to-zero` (it is scaled to 0 and back: downtime "
                                        "while it restarts, measured and reported), or move it by hand"))
                continue
            waves.setdefault(workload.namespace, []).append(
                Move(workload, "scale-to-zero", budget_ref, note=f"ReadWriteOnce: {', '.join(rwo)}"))
            continue
        if workload.kind == "StatefulSet" and workload.replicas < settings.min_statefulset_replicas:
            if not accept_statefulset_downtime:
                refusals.append(Finding(f"StatefulSet {workload.namespace}/{workload.name}",
                                        f"{workload.replicas} replica(s), below nodes.min_statefulset_replicas "
                                        f"({settings.min_statefulset_replicas}): a StatefulSet pod terminates "
                                        "before its replacement starts, so it is down while it moves",
                                        "scale it up first, or pass --accept-statefulset-downtime"))
                continue
            waves.setdefault(workload.namespace, []).append(
                Move(workload, "restart", budget_ref, note="downtime accepted (--accept-statefulset-downtime)"))
            continue
        waves.setdefault(workload.namespace, []).append(Move(workload, "restart", budget_ref))
    return NodesPlan(cluster=cluster, control_plane=control_plane, target=minor_text(want),
                     control_plane_steps=steps, twins=tuple(twins), cordon=tuple(cordon), new_nodes=tuple(new_nodes),
                     waves=tuple((ns, tuple(moves)) for ns, moves in sorted(waves.items())),
                     refusals=tuple(refusals), reported=tuple(reported))


# -- decisions while a workload moves -------------------------------------------------------------------
class Step(str, enum.Enum):
    WAIT = "wait"
    SCALE_BACK = "scale_back"  # scale-to-zero: every pod is gone, scale back up now
    DONE = "done"
    TIMED_OUT = "timed_out"


@dataclass
class Moving:
    """One workload in flight: what was done to it and when (seconds on the injected monotonic clock)."""

    move: Move
    started: float
    generation: int  # metadata.generation the last patch produced
    phase: str = "restart"  # restart | down | up
    replicas: int = 0  # scale-to-zero: the replicas to restore
    down_at: float | None = None  # scale-to-zero: when the scale to 0 was written
    downtime: float | None = None


def next_step(moving: Moving, *, problem: str | None, observed_generation: int, pods: int, now: float,
              timeout: float) -> Step:
    """Decide, for one poll of one workload. ``problem`` is ``readiness.rollout_problem`` of its status,
    ``pods`` how many pods it still has. A rollout counts only once its controller has seen the patch
    (observedGeneration >= the generation the patch produced), as ``kubectl rollout status`` requires."""
    if now - moving.started > timeout:
        return Step.TIMED_OUT
    seen = observed_generation >= moving.generation
    if moving.phase == "down":
        return Step.SCALE_BACK if seen and pods == 0 else Step.WAIT
    return Step.DONE if seen and problem is None else Step.WAIT


def budget_blocks(budget: Budget | None) -> str | None:
    """A rollout restart goes around PodDisruptionBudgets (the Deployment and StatefulSet controllers
    delete pods without the eviction API; Kubernetes docs, "Disruptions": PDBs guard voluntary disruptions
    through the Eviction API only). bluegreen holds itself to them: a workload whose budget allows no
    disruption now is not restarted, and is reported by name."""
    if budget is None or budget.disruptions_allowed is None or budget.disruptions_allowed > 0:
        return None
    return (f"PodDisruptionBudget {budget.namespace}/{budget.name} allows no disruption now "
            "(status.disruptionsAllowed 0)")


# -- rollback, interruption and finish -------------------------------------------------------------------
@dataclass(frozen=True)
class RollbackPlan:
    uncordon: tuple[str, ...]  # old nodes back in service
    cordon: tuple[str, ...]  # new nodes out of it
    moves: tuple[Move, ...]  # what had moved, moved back (restarted again, the same way)

    def as_dict(self) -> dict:
        return {"uncordon": list(self.uncordon), "cordon": list(self.cordon),
                "restart": [m.as_dict() for m in self.moves]}


def rollback_plan(*, old_nodes: Iterable[str], new_nodes: Iterable[str], moved: Sequence[Move]) -> RollbackPlan:
    """Old nodes first (so there is room), then cordon the new ones, then restart what had moved: its
    pods can only land on the old nodes."""
    seen: dict[str, Move] = {}
    for move in moved:
        seen.setdefault(move.workload.key, move)
    return RollbackPlan(tuple(sorted(set(old_nodes))), tuple(sorted(set(new_nodes))), tuple(seen.values()))


# The rule that SIGTERM leaves behind (module docstring of bluegreen.commands.nodes):
INTERRUPT_RULE = ("cordons are written as one step that a signal does not split: before the cordon step no node "
                  "is cordoned by bluegreen; from it on, every old node is cordoned and every new node is "
                  "schedulable. Restarts already written finish under their controllers; a workload scaled to 0 "
                  "is scaled back before the run stops.")


@dataclass(frozen=True)
class FinishDecision:
    action: str  # delete | wait | nothing | refuse
    reason: str
    groups: tuple[str, ...] = ()
    remaining: float = 0.0


def finish_decision(runs: Sequence[Mapping[str, Any]], *, now: float, keep: float) -> FinishDecision:
    """``runs``: the ``nodes`` runs of this migration, newest first, each ``{"command", "outcome",
    "completed_at", "old_groups", "deleted"}``. The old groups go only when the newest run that changed the
    cluster is a completed upgrade, ``keep`` seconds have passed since it completed, and no rollback came
    after it. Safe to call every night: anything else is ``nothing`` or ``wait`` (exit 0) or ``refuse``."""
    for run in runs:
        command, outcome = run.get("command"), run.get("outcome")
        if command == "nodes-finish":
            if outcome == "completed":
                return FinishDecision("nothing", "the old node groups were already deleted by `nodes finish`")
            continue
        if command == "nodes-rollback" or (command == "nodes-upgrade" and outcome == "rolled_back"):
            return FinishDecision("refuse", "a rollback happened after the upgrade: the old node groups are "
                                            "in service; run `nodes upgrade` again first")
        if command == "nodes-upgrade":
            if outcome != "completed" or run.get("completed_at") is None:
                return FinishDecision("nothing", f"the last upgrade did not complete (outcome {outcome}); "
                                                 "nothing to delete yet")
            groups = tuple(run.get("old_groups") or ())
            if not groups:
                return FinishDecision("nothing", "the last upgrade left no old node group")
            passed = now - float(run["completed_at"])
            if passed < keep:
                return FinishDecision("wait", f"the upgrade completed {_hours(passed)} ago; the old node groups "
                                              f"are kept for {_hours(keep)}", groups, remaining=keep - passed)
            return FinishDecision("delete", f"the upgrade completed {_hours(passed)} ago (keep {_hours(keep)})",
                                  groups)
    return FinishDecision("nothing", "no completed node upgrade in the journal")


def _hours(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds >= 3600:
        return f"{seconds / 3600:.1f}h"
    if seconds >= 60:
        return f"{seconds / 60:.0f}m"
    return f"{seconds:.0f}s"


@dataclass
class Progress:
    """What a run did, kept as it goes: the report, the journal's summary and the rollback's input."""

    moved: list[Move] = field(default_factory=list)
    blocked: list[Finding] = field(default_factory=list)
    downtime: dict[str, float] = field(default_factory=dict)  # scale-to-zero: workload key -> seconds
    cordoned: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"moved": [m.workload.key for m in self.moved], "blocked": [b.as_dict() for b in self.blocked],
                "downtime_seconds": {k: round(v, 2) for k, v in self.downtime.items()}, "cordoned": self.cordoned}
