"""Is the target cluster ready for traffic? A pure comparison of what the adapters read: no I/O.

Inputs are plain values (labels and annotations of the two ArgoCD cluster secrets, Application statuses,
workload rollout status); the output is a :class:`ReadinessReport` with every reason it is not ready.

A workload is ready when its rollout is complete as ``kubectl rollout status`` decides
(kubernetes/kubectl ``pkg/polymorphichelpers/rollout_status.go``), not merely when enough replicas are
available: during a rolling update the old ReplicaSet keeps ``availableReplicas`` at the desired count while
the new pods are still coming up, so "2/2 available" can mean "still serving the old version".
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

# Keys whose values differ between two clusters by nature. Patterns use fnmatch (``*``).
DEFAULT_IGNORED_KEYS: tuple[str, ...] = (
    "cluster_name", "aws_cluster_name", "cluster_endpoint", "cluster_arn", "aws_cluster_arn",
    "kubernetes_version", "cluster_version", "aws_vpc_id",
    "route53_weight", "route53_*", "*aws-weight", "*set-identifier",
    "argocd_password", "argocd_*password*",
    "*_iam_role_arn", "*_iam_role_name", "*_role_arn", "oidc_provider", "oidc_provider_arn",
    "cluster_certificate_authority_data", "karpenter_sqs_queue_name", "karpenter_node_instance_profile_name",
    "kubectl.kubernetes.io/*",  # last-applied-configuration & co: written by kubectl, never compared
)

# Values of these keys are never shown (the annotation may hold a hash or a credential).
_SENSITIVE = re.compile(r"(password|passwd|secret|token|credential|private|ssh_key|api_key)", re.IGNORECASE)
MISSING = "<missing>"
HEALTHY, SYNCED = "Healthy", "Synced"


@dataclass(frozen=True)
class ClusterMetadata:
    """Labels and annotations of one ArgoCD cluster secret (never its data)."""

    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AppStatus:
    name: str
    sync: str | None
    health: str | None


@dataclass(frozen=True)
class WorkloadStatus:
    """One workload's desired and observed state. The rollout fields are optional: when the caller leaves
    them out (None), only ``available >= desired`` is checked, as before rollout status was read.

    For a DaemonSet, ``desired`` is ``status.desiredNumberScheduled``, ``available`` ``numberAvailable`` and
    ``updated`` ``updatedNumberScheduled``.
    """

    kind: str  # Deployment | StatefulSet | DaemonSet
    namespace: str
    name: str
    desired: int
    available: int
    generation: int | None = None  # metadata.generation
    observed_generation: int | None = None  # status.observedGeneration
    updated: int | None = None  # status.updatedReplicas (DaemonSet: updatedNumberScheduled)
    current: int | None = None  # status.replicas: pods of every revision, old ones included
    ready: int | None = None  # status.readyReplicas
    current_revision: str | None = None  # StatefulSet status.currentRevision
    update_revision: str | None = None  # StatefulSet status.updateRevision
    partition: int | None = None  # StatefulSet spec.updateStrategy.rollingUpdate.partition
    strategy: str | None = None  # spec.strategy.type / spec.updateStrategy.type
    progress_deadline_exceeded: bool = False  # Deployment condition Progressing, reason ProgressDeadlineExceeded

    @property
    def has_rollout_status(self) -> bool:
        return self.observed_generation is not None or self.updated is not None


@dataclass(frozen=True)
class Check:
    """One row of the report: what was checked, on which side, and whether it passed."""

    kind: str  # metadata | application | workload | cluster
    subject: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class ReadinessReport:
    target: str
    reference: str
    checks: tuple[Check, ...]

    @property
    def ready(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(check.detail for check in self.checks if not check.ok)

    def rows(self) -> list[tuple[str, str, str, str]]:
        return [(c.kind, c.subject, "ok" if c.ok else "FAIL", c.detail) for c in self.checks]

    def as_dict(self) -> dict:
        counts: dict[str, dict[str, int]] = {}
        for check in self.checks:
            bucket = counts.setdefault(check.kind, {"checked": 0, "failed": 0})
            bucket["checked"] += 1
            bucket["failed"] += 0 if check.ok else 1
        return {
            "target": self.target, "reference": self.reference, "ready": self.ready,
            "reasons": list(self.reasons), "summary": counts,
            "checks": [{"kind": c.kind, "subject": c.subject, "ok": c.ok, "detail": c.detail} for c in self.checks],
        }

    def text(self) -> str:
        headers = ("CHECK", "SUBJECT", "RESULT", "DETAIL")
        cells = [headers] + self.rows()
        widths = [max(len(str(row[i])) for row in cells) for i in range(4)]
        lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
        lines.insert(1, "  ".join("-" * w for w in widths))
        verdict = (f"{self.target} is ready (compared with {self.reference})" if self.ready else
                   f"{self.target} is NOT ready: {len(self.reasons)} reason(s)")
        return "\n".join(lines + ["", verdict] + [f"  - {r}" for r in self.reasons])


def is_ignored(key: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(key, p) for p in patterns)


def show_value(key: str, value: str | None) -> str:
    """A value as it may appear in a reason: masked when the key looks sensitive, cut when long."""
    if value is None:
        return MISSING
    if _SENSITIVE.search(key):
        return "<redacted>"
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def compare_metadata(reference: str, ref: ClusterMetadata, target: str, tgt: ClusterMetadata,
                     ignore: Sequence[str] = DEFAULT_IGNORED_KEYS) -> list[Check]:
    """Key by key, labels then annotations; ignored keys are left out of the report."""
    checks: list[Check] = []
    for kind, left, right in (("label", ref.labels, tgt.labels), ("annotation", ref.annotations, tgt.annotations)):
        for key in sorted(set(left) | set(right)):
            if is_ignored(key, ignore):
                continue
            a, b = left.get(key), right.get(key)
            ok = a == b
            detail = "" if ok else f"{kind} {key}: {reference}={show_value(key, a)} {target}={show_value(key, b)}"
            checks.append(Check("metadata", f"{kind} {key}", ok, detail))
    return checks


def app_key(name: str, cluster_names: Iterable[str]) -> str:
    """The name of an Application with its cluster suffix taken off, so that the same app on both
    clusters compares equal: ``burnham-eks-blueprint-blue`` ~ ``burnham-eks-blueprint-green``."""
    for token in sorted((t for t in cluster_names if t), key=len, reverse=True):
        if name == token:
            return "<cluster>"
        if name.endswith("-" + token):
            return name[: -len(token) - 1]
        if name.startswith(token + "-"):
            return name[len(token) + 1:]
    return name


def compare_applications(reference: str, ref_apps: Sequence[AppStatus], ref_names: Iterable[str],
                         target: str, tgt_apps: Sequence[AppStatus], tgt_names: Iterable[str],
                         ignore: Sequence[str] = ()) -> list[Check]:
    """Each target app must be Synced and Healthy; both sides must have the same set of apps."""
    ref_names, tgt_names = tuple(ref_names), tuple(tgt_names)
    ref_by_key = {app_key(a.name, ref_names): a for a in ref_apps if not is_ignored(a.name, ignore)}
    tgt_by_key = {app_key(a.name, tgt_names): a for a in tgt_apps if not is_ignored(a.name, ignore)}
    checks: list[Check] = []
    for key in sorted(set(ref_by_key) | set(tgt_by_key)):
        app = tgt_by_key.get(key)
        if app is None:
            ref_app = ref_by_key[key]
            checks.append(Check("application", ref_app.name, False,
                                f"application {ref_app.name}: on {reference} but not on {target}"))
            continue
        problems = []
        if app.sync != SYNCED:
            problems.append(f"sync={app.sync or 'Unknown'}")
        if app.health != HEALTHY:
            problems.append(f"health={app.health or 'Unknown'}")
        if key not in ref_by_key:
            problems.append(f"not on {reference}")
        ok = not problems
        detail = (f"{app.sync}/{app.health}" if ok else
                  f"application {app.name} on {target}: " + ", ".join(problems))
        checks.append(Check("application", app.name, ok, detail))
    return checks


def _int(value: object, default: int = 0) -> int:
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default


def workload_from_object(kind: str, obj: Mapping) -> WorkloadStatus:
    """A :class:`WorkloadStatus` from a Deployment, StatefulSet or DaemonSet as the API returns it (the JSON
    form, camelCase keys; with the official client: ``ApiClient().sanitize_for_serialization(model)``)."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    observed = status.get("observedGeneration")
    common = dict(kind=kind, namespace=meta.get("namespace") or "", name=meta.get("name") or "",
                  generation=_int(meta.get("generation"), 0) if meta.get("generation") is not None else None,
                  observed_generation=_int(observed) if observed is not None else None)
    if kind == "DaemonSet":
        return WorkloadStatus(desired=_int(status.get("desiredNumberScheduled")),
                              available=_int(status.get("numberAvailable")),
                              updated=_int(status.get("updatedNumberScheduled")),
                              strategy=(spec.get("updateStrategy") or {}).get("type"), **common)
    # spec.replicas defaults to 1 (the API server fills it in; an object built by hand may lack it).
    desired = _int(spec.get("replicas"), 1) if spec.get("replicas") is not None else 1
    available = status.get("availableReplicas")
    if available is None and kind == "StatefulSet":
        available = status.get("readyReplicas")  # StatefulSets report availableReplicas since Kubernetes 1.22
    if kind == "StatefulSet":
        update_strategy = spec.get("updateStrategy") or {}
        partition = (update_strategy.get("rollingUpdate") or {}).get("partition")
        return WorkloadStatus(desired=desired, available=_int(available), updated=_int(status.get("updatedReplicas")),
                              current=_int(status.get("replicas")), ready=_int(status.get("readyReplicas")),
                              current_revision=status.get("currentRevision"),
                              update_revision=status.get("updateRevision"),
                              partition=_int(partition) if partition is not None else None,
                              strategy=update_strategy.get("type"), **common)
    conditions = status.get("conditions") or []
    timed_out = any(c.get("type") == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded"
                    for c in conditions if isinstance(c, Mapping))
    return WorkloadStatus(desired=desired, available=_int(available), updated=_int(status.get("updatedReplicas")),
                          current=_int(status.get("replicas")), ready=_int(status.get("readyReplicas")),
                          strategy=(spec.get("strategy") or {}).get("type"),
                          progress_deadline_exceeded=timed_out, **common)


def rollout_problem(w: WorkloadStatus) -> str | None:
    """What keeps the rollout from being complete, or None when it is, in the order ``kubectl rollout status``
    checks (kubernetes/kubectl pkg/polymorphichelpers/rollout_status.go). The wording starts with "rolling
    out" for a rollout in progress, so a reader can tell it from a workload that is simply short of pods."""
    if not w.has_rollout_status:
        return None if w.available >= w.desired else f"{w.available}/{w.desired} replicas available"
    generation = w.generation or 0
    observed = w.observed_generation or 0
    # kubectl: a StatefulSet with observedGeneration 0 has not been seen by its controller at all.
    if generation > observed or (w.kind == "StatefulSet" and observed == 0):
        return (f"rolling out: spec update not yet observed by the controller "
                f"(generation {generation}, observed {observed})")
    updated = w.updated or 0
    if w.kind == "DaemonSet":
        if updated < w.desired:
            return f"rolling out: {updated} of {w.desired} updated"
        if w.available < w.desired:
            return f"rolling out: {w.available} of {w.desired} updated pods available"
        return None
    if w.kind == "StatefulSet":
        ready = w.ready if w.ready is not None else w.available
        if ready < w.desired:
            return f"rolling out: {ready} of {w.desired} ready"
        if w.strategy == "OnDelete":
            return None  # kubectl: rollout status exists only for RollingUpdate; pods change when deleted
        wanted = w.desired - (w.partition or 0)
        if updated < wanted:
            return f"rolling out: {updated} of {wanted} updated"
        # kubectl compares the revisions when no rollingUpdate block is set; the API server defaults one
        # (partition 0), so a partitioned update is complete once the pods above the partition are updated.
        if not w.partition and w.current_revision and w.update_revision and w.current_revision != w.update_revision:
            return (f"rolling out: revision {w.update_revision} not yet current "
                    f"({updated} of {w.desired} updated, current {w.current_revision})")
        if w.available < w.desired:
            return f"{w.available}/{w.desired} replicas available"
        return None
    if w.progress_deadline_exceeded:
        return f"rollout exceeded its progress deadline ({updated} of {w.desired} updated)"
    if updated < w.desired:
        return f"rolling out: {updated} of {w.desired} updated"
    current = w.current if w.current is not None else updated
    if current > updated:
        return f"rolling out: {current - updated} old replicas pending termination"
    if w.available < updated:
        return f"rolling out: {w.available} of {updated} updated replicas available"
    if w.available < w.desired:
        return f"{w.available}/{w.desired} replicas available"
    return None


def check_workloads(target: str, workloads: Sequence[WorkloadStatus], namespaces: Sequence[str]) -> list[Check]:
    checks: list[Check] = []
    for w in sorted(workloads, key=lambda w: (w.namespace, w.kind, w.name)):
        problem = rollout_problem(w)
        subject = f"{w.kind} {w.namespace}/{w.name}"
        if problem is None:
            detail = (f"{w.available}/{w.desired} available, rolled out" if w.has_rollout_status else
                      f"{w.available}/{w.desired} available")
        else:
            detail = f"{subject} on {target}: {problem}"
        checks.append(Check("workload", subject, problem is None, detail))
    seen = {w.namespace for w in workloads}
    for ns in namespaces:
        if ns not in seen:
            checks.append(Check("workload", f"namespace {ns}", False,
                                f"namespace {ns} on {target}: no Deployment or StatefulSet found"))
    return checks


def assess(reference: str, target: str, *, ref_meta: ClusterMetadata, tgt_meta: ClusterMetadata,
           ref_apps: Sequence[AppStatus], tgt_apps: Sequence[AppStatus],
           ref_names: Iterable[str], tgt_names: Iterable[str],
           workloads: Sequence[WorkloadStatus] = (), workload_namespaces: Sequence[str] = (),
           extra_ignore: Sequence[str] = (), ignore_applications: Sequence[str] = (),
           extra_checks: Sequence[Check] = ()) -> ReadinessReport:
    ignore = tuple(DEFAULT_IGNORED_KEYS) + tuple(extra_ignore)
    checks = list(extra_checks)
    checks += compare_metadata(reference, ref_meta, target, tgt_meta, ignore)
    checks += compare_applications(reference, ref_apps, ref_names, target, tgt_apps, tgt_names, ignore_applications)
    checks += check_workloads(target, workloads, workload_namespaces)
    return ReadinessReport(target=target, reference=reference, checks=tuple(checks))
