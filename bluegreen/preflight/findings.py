"""What a preflight finds, and the report it prints. Pure: no I/O.

Every finding has a stable code (``BG-K8S-006``) registered in :data:`CODES` with its default severity and a
one-line title; the README's code table is generated from that registry (:func:`codes_table_markdown`), so
the two cannot drift apart. ``preflight.ignore`` silences findings by code (``BG-K8S-003``) or by code and
object (``BG-K8S-003/Deployment/team-*/*``, fnmatch globs); the report says how many it silenced.
"""

from __future__ import annotations

import enum
import fnmatch
from dataclasses import dataclass, field
from typing import Iterable, Sequence


class Severity(str, enum.Enum):
    ERROR = "error"  # the upgrade (or the shift onto this cluster) breaks or hangs: the gate fails
    WARNING = "warning"  # it works, but with downtime or risk worth fixing first
    INFO = "info"  # worth knowing (support dates, costs); never fails the gate

    @property
    def rank(self) -> int:
        return {"error": 0, "warning": 1, "info": 2}[self.value]


@dataclass(frozen=True)
class CodeInfo:
    code: str
    severity: Severity
    title: str


def _codes(*rows: tuple[str, Severity, str]) -> dict[str, CodeInfo]:
    return {code: CodeInfo(code, severity, title) for code, severity, title in rows}


E, W, I = Severity.ERROR, Severity.WARNING, Severity.INFO
CODES: dict[str, CodeInfo] = _codes(
    # Kubernetes objects
    ("BG-K8S-001", E, "API version removed in the target version is still used (last-applied, Helm or ArgoCD)"),
    ("BG-K8S-002", W, "API version deprecated in the target version is still used (removed in a later version)"),
    ("BG-K8S-003", W, "Workload has fewer replicas than preflight.min_replicas"),
    ("BG-K8S-004", I, "Multi-replica workload without minReadySeconds"),
    ("BG-K8S-005", W, "Multi-replica workload without a PodDisruptionBudget"),
    ("BG-K8S-006", E, "PodDisruptionBudget allows no disruption at all (blocks every node drain)"),
    ("BG-K8S-007", W, "Multi-replica workload without topology spread constraints or pod anti-affinity"),
    ("BG-K8S-008", W, "Container without a readinessProbe"),
    ("BG-K8S-009", W, "terminationGracePeriodSeconds is 0"),
    ("BG-K8S-010", E, "docker.sock or dockershim.sock mounted from the host (no Docker runtime since 1.24)"),
    ("BG-K8S-011", W, "Recreate (or OnDelete) update strategy: every restart is an outage"),
    ("BG-K8S-012", W, "Deployment with a ReadWriteOnce volume and RollingUpdate hangs when restarted"),
    ("BG-K8S-013", W, "StatefulSet whose writes go to a single replica: minutes of write outage on restart"),
    ("BG-K8S-014", W, "A Helm release record could not be decoded: its API versions were not checked"),
    # EKS and AWS
    ("BG-EKS-001", E, "Target is more than one minor version above the control plane"),
    ("BG-EKS-002", E, "Node kubelet version outside the skew the target control plane supports"),
    ("BG-EKS-003", E, "kube-proxy version outside the skew allowed against the kubelets or the target"),
    ("BG-EKS-004", E, "Managed add-on version not compatible with the target version"),
    ("BG-EKS-005", W, "Managed add-on reports health issues"),
    ("BG-EKS-006", W, "Managed node group reports health issues"),
    ("BG-EKS-007", W, "Managed node group does not use the latest version of its launch template"),
    ("BG-EKS-008", E, "Node group uses Amazon Linux 2 AMIs, which the target version does not offer"),
    ("BG-EKS-009", W, "EKS Upgrade Insight is not passing"),
    ("BG-EKS-010", W, "Subnet has too few free IP addresses"),
    ("BG-EKS-011", I, "Kubernetes version support dates and extended-support cost"),
    ("BG-EKS-012", E, "IRSA role's trust policy does not include this cluster's OIDC provider"),
    ("BG-EKS-013", E, "EKS Pod Identity association present on the peer cluster but missing here"),
    # self-managed add-ons (found by their container images)
    ("BG-ADD-001", E, "cluster-autoscaler minor version does not match the target version"),
    ("BG-ADD-002", E, "Self-managed add-on older than the minimum known to work with the target version"),
    ("BG-ADD-003", I, "Self-managed add-on version could not be read from its image tag"),
    # the preflight itself
    ("BG-PRE-001", W, "Part of the cluster could not be read: its checks did not run"),
)
del E, W, I


@dataclass(frozen=True)
class Finding:
    code: str
    severity: Severity
    object: str  # "Kind/namespace/name" ("Kind/name" for cluster-scoped objects)
    what: str  # what is wrong, with the values seen
    why: str  # why it matters for an upgrade (or for moving traffic onto this cluster)
    fix: str  # how to fix it
    source: str = ""  # where it was seen, when that is not the object itself (a Helm release, an Application)

    def as_dict(self) -> dict:
        out = {"code": self.code, "severity": self.severity.value, "object": self.object, "what": self.what,
               "why": self.why, "fix": self.fix}
        if self.source:
            out["source"] = self.source
        return out


def finding(code: str, obj: str, what: str, why: str, fix: str, *, severity: Severity | None = None,
            source: str = "") -> Finding:
    """A finding with the registered default severity unless a check has a reason to choose another."""
    info = CODES[code]  # KeyError for an unregistered code: a bug, caught by the registry test
    return Finding(code, severity or info.severity, obj, what, why, fix, source)


def object_ref(kind: str, namespace: str | None, name: str) -> str:
    return f"{kind}/{namespace}/{name}" if namespace else f"{kind}/{name}"


# -- ignore patterns -----------------------------------------------------------------------------------
def is_ignored(item: Finding, patterns: Sequence[str]) -> bool:
    """``BG-K8S-003`` silences a code everywhere; ``BG-K8S-003/Deployment/team-*/*`` only for matching
    objects. Codes compare case-insensitively; object globs (fnmatch) are case-sensitive like Kubernetes
    names."""
    for pattern in patterns:
        code_part, _, object_part = pattern.partition("/")
        if not fnmatch.fnmatchcase(item.code, code_part.upper()):
            continue
        if not object_part or fnmatch.fnmatchcase(item.object, object_part):
            return True
    return False


# -- the report ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PreflightReport:
    cluster: str
    current_version: str
    target_version: str
    findings: tuple[Finding, ...] = ()
    ignored: int = 0
    checked: tuple[str, ...] = field(default_factory=tuple)  # what was looked at, for the header

    @property
    def has_errors(self) -> bool:
        return any(f.severity is Severity.ERROR for f in self.findings)

    def count(self, severity: Severity) -> int:
        return sum(1 for f in self.findings if f.severity is severity)

    def as_dict(self) -> dict:
        """For ``--output json``: stable keys, findings sorted like the text report."""
        return {
            "cluster": self.cluster,
            "current_version": self.current_version,
            "target_version": self.target_version,
            "passed": not self.has_errors,
            "counts": {s.value: self.count(s) for s in Severity},
            "ignored": self.ignored,
            "checked": list(self.checked),
            "findings": [f.as_dict() for f in self.findings],
        }

    def text(self) -> str:
        """A table per severity (error, warning, info): code, object, and what / why / fix under it."""
        lines = [f"Preflight of {self.cluster}: Kubernetes {self.current_version} -> {self.target_version}"]
        if self.checked:
            lines.append("checked: " + ", ".join(self.checked))
        for severity in Severity:
            rows = [f for f in self.findings if f.severity is severity]
            if not rows:
                continue
            lines.append("")
            lines.append(f"{severity.value.upper()} ({len(rows)})")
            code_w = max(len("CODE"), *(len(f.code) for f in rows))
            obj_w = min(max(len("OBJECT"), *(len(f.object) for f in rows)), 60)
            lines.append(f"  {'CODE':<{code_w}}  {'OBJECT':<{obj_w}}  WHAT")
            for f in rows:
                lines.append(f"  {f.code:<{code_w}}  {_cut(f.object, obj_w):<{obj_w}}  {f.what}")
                pad = " " * (code_w + 4)
                if f.source:
                    lines.append(f"{pad}seen in: {f.source}")
                lines.append(f"{pad}why: {f.why}")
                lines.append(f"{pad}fix: {f.fix}")
        lines.append("")
        summary = ", ".join(f"{self.count(s)} {s.value}{'s' if self.count(s) != 1 else ''}" for s in Severity)
        ignored = f"; {self.ignored} ignored by preflight.ignore" if self.ignored else ""
        verdict = "FAILED (error-level findings)" if self.has_errors else "passed"
        lines.append(f"{summary}{ignored}: preflight {verdict}")
        return "\n".join(lines)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def build_report(cluster: str, current_version: str, target_version: str, findings: Iterable[Finding],
                 ignore: Sequence[str] = (), checked: Sequence[str] = ()) -> PreflightReport:
    kept, ignored, seen = [], 0, set()
    for item in findings:
        key = (item.code, item.object, item.what, item.source)
        if key in seen:  # the same object found twice (e.g. last-applied and Helm): say it once
            continue
        seen.add(key)
        if is_ignored(item, ignore):
            ignored += 1
        else:
            kept.append(item)
    kept.sort(key=lambda f: (f.severity.rank, f.code, f.object, f.source))
    return PreflightReport(cluster, current_version, target_version, tuple(kept), ignored, tuple(checked))


def codes_table_markdown() -> str:
    """The README table of every code, generated from :data:`CODES`."""
    lines = ["| Code | Default severity | What it means |", "|---|---|---|"]
    lines += [f"| `{c.code}` | {c.severity.value} | {c.title} |" for c in CODES.values()]
    return "\n".join(lines)
