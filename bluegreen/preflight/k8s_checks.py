"""Checks over Kubernetes objects (dicts as the API returns them). Pure: no I/O.

Each ``check_*`` takes the :class:`Inventory` (or a part of it), the target minor version and the settings,
and returns findings. The workload checks follow the upgrade checklists of the seed documents (PDBs,
RollingUpdate, probes, docker.sock) and seed 000's edge cases (a Deployment with a ReadWriteOnce volume, a
StatefulSet with a single writer).
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Iterator

from bluegreen.preflight.findings import Finding, Severity, finding, object_ref
from bluegreen.preflight.inventory import Inventory, ManifestRef
from bluegreen.preflight.settings import PreflightSettings
from bluegreen.preflight.tables import minor_str, removal_table

Version = tuple[int, int]
_SERVING = ("Deployment", "StatefulSet")  # kinds with a replica count that serve traffic
# Databases with one writable primary: a restart of the primary pauses writes until a replica takes over.
_SINGLE_PRIMARY_IMAGES = ("mysql", "mariadb", "postgres", "postgresql", "redis", "mongo", "mongodb")
_DOCKER_SOCKETS = ("docker.sock", "dockershim.sock")
DOCKERSHIM_REMOVED: Version = (1, 24)  # Kubernetes 1.24 removed dockershim (EKS: 1.24 release notes)


# -- object helpers ------------------------------------------------------------------------------------
def meta(obj: dict) -> dict:
    return obj.get("metadata") or {}


def ref(obj: dict) -> str:
    m = meta(obj)
    return object_ref(obj.get("kind", "Object"), m.get("namespace"), m.get("name", ""))


def pod_template(obj: dict) -> dict:
    spec = obj.get("spec") or {}
    if obj.get("kind") == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    return spec.get("template") or {}


def pod_spec(obj: dict) -> dict:
    return pod_template(obj).get("spec") or {}


def replicas(obj: dict) -> int:
    value = (obj.get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)  # the API defaults replicas to 1


def containers(obj: dict) -> list[dict]:
    return list(pod_spec(obj).get("containers") or [])


def _in_scope(obj: dict, settings: PreflightSettings) -> bool:
    return meta(obj).get("namespace") not in settings.skip_namespaces


def selector_matches(selector: dict | None, labels: dict) -> bool:
    """A LabelSelector (matchLabels + matchExpressions) against labels. In policy/v1 an empty selector
    selects every pod of the namespace; a missing one selects none."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


# -- removed and deprecated APIs -----------------------------------------------------------------------
_WHERE = {
    "last-applied": "the kubectl.kubernetes.io/last-applied-configuration annotation",
    "helm": "a Helm release record",
    "argocd": "the resources an ArgoCD Application manages",
}


def check_api_versions(manifests: Iterable[ManifestRef], target: Version) -> list[Finding]:
    table = removal_table()
    out = []
    for item in manifests:
        row = table.lookup(item.api_version, item.kind)
        if row is None or row.deprecated > target:
            continue
        obj = object_ref(item.kind, item.namespace or None, item.name)
        replacement = f"use {row.replacement}" if row.replacement else "it has no replacement: remove it"
        where = _WHERE.get(item.where, item.where)
        if row.removed <= target:
            why = (f"Kubernetes {minor_str(row.removed)} no longer serves {item.api_version} {item.kind}: "
                   f"re-applying this manifest fails on {minor_str(target)}")
            if item.where == "helm":
                why += " (helm upgrade and rollback refuse a release whose stored manifest uses it)"
            out.append(finding("BG-K8S-001", obj,
                               f"{item.api_version} {item.kind} is removed in {minor_str(row.removed)} "
                               f"(found in {where})", why,
                               f"change the manifest's apiVersion ({replacement}) and re-apply it"
                               + ("; for an installed release, helm-mapkubeapis rewrites the stored manifest"
                                  if item.where == "helm" else ""),
                               source=item.origin))
        else:
            out.append(finding("BG-K8S-002", obj,
                               f"{item.api_version} {item.kind} is deprecated since {minor_str(row.deprecated)} "
                               f"and removed in {minor_str(row.removed)} (found in {where})",
                               f"it still works on {minor_str(target)}, but the upgrade to "
                               f"{minor_str(row.removed)} will break it",
                               f"change the manifest's apiVersion ({replacement})", source=item.origin))
    return out


def check_helm_records(unreadable: Iterable[str]) -> list[Finding]:
    return [finding("BG-K8S-014", f"Secret/{name}", "the Helm release record could not be decoded",
                    "the API versions of that release were not checked",
                    "check that the release is healthy (helm history); then re-run preflight")
            for name in unreadable]


# -- workloads -----------------------------------------------------------------------------------------
def check_workloads(inventory: Inventory, target: Version, settings: PreflightSettings) -> list[Finding]:
    out: list[Finding] = []
    for obj in inventory.workloads():
        if not _in_scope(obj, settings):
            continue
        out += _replica_checks(obj, inventory, settings)
        out += _pod_checks(obj, target)
        out += _strategy_checks(obj, inventory)
    return out


def _replica_checks(obj: dict, inventory: Inventory, settings: PreflightSettings) -> Iterator[Finding]:
    kind = obj.get("kind")
    if kind not in _SERVING:
        return
    count = replicas(obj)
    if count == 0:
        return  # scaled to zero on purpose: nothing to keep available
    name = ref(obj)
    if count < settings.min_replicas:
        yield finding("BG-K8S-003", name, f"{count} replica(s); preflight.min_replicas is {settings.min_replicas}",
                      "a node drain or rolling restart during the upgrade takes every pod down at once",
                      f"run at least {settings.min_replicas} replicas (spec.replicas)")
    pdbs = [p for p in inventory.pdbs
            if meta(p).get("namespace") == meta(obj).get("namespace")
            and selector_matches((p.get("spec") or {}).get("selector"),
                                 (pod_template(obj).get("metadata") or {}).get("labels") or {})]
    for pdb in pdbs:
        blocked = _pdb_blocks(pdb, count)
        if blocked:
            yield finding("BG-K8S-006", ref({**pdb, "kind": "PodDisruptionBudget"}),
                          f"{blocked} for {name} ({count} replica(s))",
                          "the eviction API refuses every eviction, so draining a node that runs one of these "
                          "pods never finishes (managed node group updates fail after their timeout)",
                          "allow at least one disruption: maxUnavailable: 1, or minAvailable below the replicas")
    if count < 2:
        return
    if not pdbs:
        yield finding("BG-K8S-005", name, f"{count} replicas and no PodDisruptionBudget selects its pods",
                      "a drain may evict every replica at the same time",
                      "add a PodDisruptionBudget with maxUnavailable: 1 (policy/v1)")
    spec = obj.get("spec") or {}
    if not spec.get("minReadySeconds"):
        yield finding("BG-K8S-004", name, "minReadySeconds is not set",
                      "a new pod counts as available the moment it turns ready, so a rollout can outrun a pod "
                      "that crashes a few seconds after starting",
                      "set spec.minReadySeconds (e.g. 10) so a pod must stay ready before the next one goes")
    pod = pod_spec(obj)
    affinity = (pod.get("affinity") or {}).get("podAntiAffinity")
    if not pod.get("topologySpreadConstraints") and not affinity:
        yield finding("BG-K8S-007", name, f"{count} replicas without topologySpreadConstraints or podAntiAffinity",
                      "the scheduler may put every replica on one node or zone, which one drain then empties",
                      "add topologySpreadConstraints over kubernetes.io/hostname and topology.kubernetes.io/zone")


def _pdb_blocks(pdb: dict, count: int) -> str:
    """Why this PDB allows no voluntary disruption of a workload with ``count`` replicas ('' if it allows one).
    Percentages round up, as the disruption controller does."""
    spec = pdb.get("spec") or {}

    def absolute(value: Any) -> int | None:
        if value is None:
            return None
        if isinstance(value, str) and value.endswith("%"):
            return math.ceil(count * float(value[:-1]) / 100)
        return int(value)

    max_unavailable = absolute(spec.get("maxUnavailable"))
    if max_unavailable is not None and max_unavailable <= 0:
        return f"maxUnavailable is {spec.get('maxUnavailable')}"
    min_available = absolute(spec.get("minAvailable"))
    if min_available is not None and min_available >= count:
        return f"minAvailable is {spec.get('minAvailable')}"
    return ""


def _pod_checks(obj: dict, target: Version) -> Iterator[Finding]:
    name = ref(obj)
    pod = pod_spec(obj)
    kind = obj.get("kind")
    if kind in _SERVING and replicas(obj) > 0:
        missing = [c.get("name", "?") for c in containers(obj) if not c.get("readinessProbe")]
        if missing:
            yield finding("BG-K8S-008", name, f"no readinessProbe on container(s) {', '.join(missing)}",
                          "a restarted pod gets traffic before the application can answer it",
                          "add a readinessProbe (httpGet, tcpSocket or exec) to each container")
    if pod.get("terminationGracePeriodSeconds") == 0:
        yield finding("BG-K8S-009", name, "terminationGracePeriodSeconds is 0",
                      "pods are killed at once on every drain: in-flight requests fail",
                      "remove it (default 30 s) or set the time the application needs to drain")
    for volume in pod.get("volumes") or []:
        path = ((volume.get("hostPath") or {}).get("path") or "").rstrip("/")
        if path.rsplit("/", 1)[-1] in _DOCKER_SOCKETS:
            removed = target >= DOCKERSHIM_REMOVED
            yield finding("BG-K8S-010", name, f"mounts {path} from the host (volume {volume.get('name', '?')})",
                          "EKS nodes run containerd since 1.24: there is no Docker socket, so the pod fails or "
                          "silently loses what it used the socket for",
                          "use the containerd socket or the CRI API instead (kubectl dds finds every such mount)",
                          severity=None if removed else Severity.WARNING)


def _rwo_claims(obj: dict, inventory: Inventory) -> list[str]:
    namespace = meta(obj).get("namespace")
    claims = {(v.get("persistentVolumeClaim") or {}).get("claimName") for v in pod_spec(obj).get("volumes") or []}
    claims.discard(None)
    found = []
    for pvc in inventory.pvcs:
        m = meta(pvc)
        if m.get("namespace") == namespace and m.get("name") in claims:
            modes = (pvc.get("spec") or {}).get("accessModes") or []
            if "ReadWriteOnce" in modes or "ReadWriteOncePod" in modes:
                found.append(m.get("name"))
    return sorted(found)


def _strategy_checks(obj: dict, inventory: Inventory) -> Iterator[Finding]:
    kind, name, spec = obj.get("kind"), ref(obj), obj.get("spec") or {}
    if kind == "Deployment":
        strategy = (spec.get("strategy") or {}).get("type") or "RollingUpdate"
        rwo = _rwo_claims(obj, inventory)
        if rwo and strategy != "Recreate" and replicas(obj) > 0:
            yield finding("BG-K8S-012", name,
                          f"RollingUpdate with ReadWriteOnce PersistentVolumeClaim(s) {', '.join(rwo)}",
                          "on restart the new pod waits for a volume the old pod still holds, and the old pod "
                          "is only stopped once the new one is ready: the rollout hangs",
                          "use strategy Recreate for this Deployment, or scale it to 0 before the restart")
        elif strategy == "Recreate" and not rwo:
            yield finding("BG-K8S-011", name, "strategy is Recreate",
                          "every restart (node drain, rollout restart) stops all pods before new ones start",
                          "use RollingUpdate unless two versions really cannot run side by side")
    elif kind in ("StatefulSet", "DaemonSet"):
        strategy = (spec.get("updateStrategy") or {}).get("type") or "RollingUpdate"
        if strategy == "OnDelete":
            yield finding("BG-K8S-011", name, "updateStrategy is OnDelete",
                          "pods keep the old template until someone deletes them by hand: an upgrade leaves "
                          "them behind",
                          "use updateStrategy RollingUpdate")
    if kind == "StatefulSet" and replicas(obj) > 0:
        count = replicas(obj)
        if count == 1:
            yield finding("BG-K8S-013", name, "1 replica: every write goes to one pod",
                          "a StatefulSet stops its pod before starting the new one, so writes fail for as long "
                          "as the restart takes (minutes for a database)",
                          "run a replicated setup with failover, or plan a write pause for the restart")
        else:
            images = [c.get("image", "") for c in containers(obj)]
            primary = [i for i in images if _image_name(i) in _SINGLE_PRIMARY_IMAGES]
            if primary:
                yield finding("BG-K8S-013", name,
                              f"{count} replicas of {', '.join(primary)}: one primary takes every write",
                              "restarting the primary pauses writes until a replica is promoted",
                              "check failover works before the upgrade, or plan a short write pause",
                              severity=Severity.INFO)


def _image_name(image: str) -> str:
    """``docker.io/bitnami/postgresql:16`` -> ``postgresql``."""
    return image.split("@", 1)[0].rsplit("/", 1)[-1].split(":", 1)[0].lower()
