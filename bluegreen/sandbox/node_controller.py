"""A small stand-in for the parts of a cluster that `bluegreen nodes` relies on, running as a thread beside the
Kubernetes emulator (which stores objects but runs no controllers). ``bluegreen demo --nodes`` runs it against
the sandbox's cluster, and the tests of ``bluegreen nodes`` against theirs. It plays:

- the node lifecycle of EKS managed node groups: every node group in EKS (moto) gets ``desiredSize`` Ready nodes
  labelled ``eks.amazonaws.com/nodegroup`` with a kubelet at the group's version; a deleted group's nodes go;
- the scheduler: a pod goes to the schedulable, Ready node with the fewest pods, never to a cordoned node
  (``spec.unschedulable``), and a pod using a ReadWriteOnce claim only to the node where another live pod holds
  that claim (the volume attaches to one node at a time), else it stays Pending;
- the Deployment controller (RollingUpdate with maxSurge 1, maxUnavailable 0: one new pod, then one old pod
  deleted once enough pods are ready) and the StatefulSet controller (OrderedReady: the highest ordinal with an
  old revision is deleted, then created again; a pod terminates before its replacement starts);
- their status fields (observedGeneration, replicas, updatedReplicas, readyReplicas, availableReplicas, the
  StatefulSet revisions) and the PodDisruptionBudget controller's ``status.disruptionsAllowed``.

A pod template annotation ``sandbox.bluegreen/unready-pods: "N"`` keeps N pods of a workload not ready (a crash
loop), which is how a test makes a budget that allows no disruption.

One change per workload per tick, so a rollout takes several ticks, as it takes several seconds in a cluster.
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
import time

from bluegreen.core.nodes import NODEGROUP_LABEL, RWO

PODS = "v1/pods"
NODES = "v1/nodes"
OWNER = "sandbox.bluegreen/owner"
HASH = "pod-template-hash"
UNREADY = "sandbox.bluegreen/unready-pods"


class NodeController(threading.Thread):
    def __init__(self, server, eks_client=None, cluster: str | None = None, *, interval: float = 0.02) -> None:
        super().__init__(name="node-controller", daemon=True)
        self.server = server
        self.eks = eks_client
        self.cluster = cluster
        self.interval = interval
        self.halt = threading.Event()
        self.errors: list[BaseException] = []
        self.ticks = 0
        self._groups_every = 5

    # -- thread ---------------------------------------------------------------------------------------
    def run(self) -> None:
        while not self.halt.is_set():
            try:
                self.tick()
            except Exception as error:  # noqa: BLE001 - kept for the caller to assert on
                self.errors.append(error)
            self.ticks += 1
            time.sleep(self.interval)

    def stop(self) -> None:
        self.halt.set()
        self.join(timeout=5)

    def __enter__(self) -> "NodeController":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def wait_settled(self, timeout: float = 10.0) -> None:
        """Until every workload's pods are all at its current template and scheduled where they can be."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            snap = self.snapshot()
            if all(self._settled(kind, w, snap) for kind, plural in (("Deployment", "deployments"),
                                                                      ("StatefulSet", "statefulsets"))
                   for w in snap.get(plural, [])):
                return
            time.sleep(0.05)
        raise AssertionError(f"the cluster did not settle in {timeout}s (errors: {self.errors})")

    def _settled(self, kind: str, w: dict, snap: dict) -> bool:
        pods = self._pods_of(kind, w, snap)
        status = w.get("status") or {}
        desired = int(w["spec"].get("replicas", 1))
        return (len(pods) == desired and all(p["metadata"]["labels"].get(HASH) == _hash(w) for p in pods)
                and status.get("observedGeneration") == w["metadata"].get("generation"))

    # -- reading --------------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, list[dict]]:
        def read():
            out: dict[str, list[dict]] = {}
            for (resource, _, _), obj in self.server.emulator.objects.items():
                if not obj.deleted:
                    out.setdefault(str(resource.plural), []).append(copy.deepcopy(obj.raw))
            return out

        return self.server._call(read)

    def pods_on(self, snap: dict | None = None) -> dict[str, str]:
        """pod name -> node name (or '' when Pending)."""
        snap = snap or self.snapshot()
        return {p["metadata"]["name"]: (p.get("spec") or {}).get("nodeName", "") for p in snap.get("pods", [])}

    def _pods_of(self, kind: str, w: dict, snap: dict) -> list[dict]:
        key = f"{kind}/{w['metadata']['name']}"
        ns = w["metadata"].get("namespace")
        return [p for p in snap.get("pods", []) if p["metadata"].get("namespace") == ns
                and p["metadata"].get("labels", {}).get(OWNER) == key]

    # -- one tick -------------------------------------------------------------------------------------
    def tick(self) -> None:
        if self.eks is not None and self.ticks % self._groups_every == 0:
            self._node_groups()
        snap = self.snapshot()
        for kind, plural in (("Deployment", "deployments"), ("StatefulSet", "statefulsets")):
            for w in snap.get(plural, []):
                self._workload(kind, plural, w, snap)
        self._budgets(self.snapshot())

    def _node_groups(self) -> None:
        from botocore.exceptions import ClientError

        groups = {}
        for name in self.eks.list_nodegroups(clusterName=self.cluster)["nodegroups"]:
            try:
                groups[name] = self.eks.describe_nodegroup(clusterName=self.cluster, nodegroupName=name)["nodegroup"]
            except ClientError as error:  # deleted between the list and the describe (`nodes finish`): gone
                if error.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                    raise
        existing = {n["metadata"]["name"]: n for n in self.snapshot().get("nodes", [])}
        for name, group in groups.items():
            for i in range(int(group["scalingConfig"]["desiredSize"])):
                node = f"{name}-node-{i}"
                if node not in existing:
                    self.server.put(NODES, None, node, {
                        "apiVersion": "v1", "kind": "Node",
                        "metadata": {"labels": {NODEGROUP_LABEL: name}}, "spec": {},
                        "status": {"nodeInfo": {"kubeletVersion": f"v{group['version']}.2-eks-sandbox",
                                                "osImage": "Amazon Linux 2023"},
                                   "conditions": [{"type": "Ready", "status": "True"}]}})
        for node, obj in existing.items():
            group = (obj["metadata"].get("labels") or {}).get(NODEGROUP_LABEL)
            if group and group not in groups:
                self.server.delete(NODES, None, node)

    def _schedulable(self, snap: dict) -> list[str]:
        return sorted(n["metadata"]["name"] for n in snap.get("nodes", [])
                      if not (n.get("spec") or {}).get("unschedulable")
                      and any(c.get("type") == "Ready" and c.get("status") == "True"
                              for c in (n.get("status") or {}).get("conditions") or []))

    def _place(self, w: dict, snap: dict, exclude: str | None = None) -> str:
        """The node for a new pod of ``w``, or '' (Pending)."""
        ns = w["metadata"]["namespace"]
        rwo = {pvc["metadata"]["name"] for pvc in snap.get("persistentvolumeclaims", [])
               if pvc["metadata"].get("namespace") == ns and RWO in (pvc.get("spec") or {}).get("accessModes", [])}
        claims = {v["persistentVolumeClaim"]["claimName"] for v in w["spec"]["template"]["spec"].get("volumes") or []
                  if v.get("persistentVolumeClaim")} & rwo
        candidates = self._schedulable(snap)
        for pod in snap.get("pods", []):
            if pod["metadata"]["name"] == exclude or pod["metadata"].get("namespace") != ns:
                continue
            node = (pod.get("spec") or {}).get("nodeName")
            used = {v["persistentVolumeClaim"]["claimName"] for v in (pod.get("spec") or {}).get("volumes") or []
                    if v.get("persistentVolumeClaim")}
            if node and used & claims:
                candidates = [c for c in candidates if c == node]  # attached there: only there
        if not candidates:
            return ""
        load = {c: 0 for c in candidates}
        for pod in snap.get("pods", []):
            node = (pod.get("spec") or {}).get("nodeName")
            if node in load:
                load[node] += 1
        return min(candidates, key=lambda c: (load[c], c))

    def _new_pod(self, kind: str, w: dict, name: str, snap: dict) -> None:
        template = w["spec"]["template"]
        labels = {**(template.get("metadata") or {}).get("labels", {}), OWNER: f"{kind}/{w['metadata']['name']}",
                  HASH: _hash(w)}
        node = self._place(w, snap)
        spec = {"containers": template["spec"].get("containers", []), "volumes": template["spec"].get("volumes", [])}
        if node:
            spec["nodeName"] = node
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"labels": labels, "namespace": w["metadata"]["namespace"]},
               "spec": spec, "status": {"phase": "Running" if node else "Pending"}}
        self.server.put(PODS, w["metadata"]["namespace"], name, pod)
        snap.setdefault("pods", []).append({**pod, "metadata": {**pod["metadata"], "name": name}})

    def _ready(self, w: dict, pods: list[dict]) -> list[dict]:
        unready = int(((w["spec"]["template"].get("metadata") or {}).get("annotations") or {}).get(UNREADY, 0))
        scheduled = [p for p in sorted(pods, key=lambda p: p["metadata"]["name"]) if (p.get("spec") or {}).get("nodeName")]
        return scheduled[unready:]

    def _workload(self, kind: str, plural: str, w: dict, snap: dict) -> None:
        ns, name = w["metadata"]["namespace"], w["metadata"]["name"]
        desired = int(w["spec"].get("replicas", 1))
        current = _hash(w)
        pods = self._pods_of(kind, w, snap)
        for pod in pods:  # the scheduler: Pending pods get a node when one fits
            if not (pod.get("spec") or {}).get("nodeName"):
                node = self._place(w, snap, exclude=pod["metadata"]["name"])
                if node:
                    self.server.put(PODS, ns, pod["metadata"]["name"], {"spec": {"nodeName": node},
                                                                        "status": {"phase": "Running"}})
                    pod["spec"]["nodeName"] = node
        new = [p for p in pods if p["metadata"]["labels"].get(HASH) == current]
        old = [p for p in pods if p["metadata"]["labels"].get(HASH) != current]
        ready = self._ready(w, pods)
        if kind == "Deployment":
            if len(new) < desired and len(pods) < desired + 1:
                self._new_pod(kind, w, f"{name}-{current[:6]}-{_suffix(pods)}", snap)
            elif old and len(ready) >= min(desired, len(pods)):
                victim = next((p for p in old if p not in ready), old[0])
                self.server.delete(PODS, ns, victim["metadata"]["name"])
            elif len(pods) > desired:
                self.server.delete(PODS, ns, sorted(p["metadata"]["name"] for p in pods)[-1])
        else:
            by_ordinal = {int(p["metadata"]["name"].rsplit("-", 1)[1]): p for p in pods}
            missing = [i for i in range(desired) if i not in by_ordinal]
            if missing and len(ready) == len(pods):
                self._new_pod(kind, w, f"{name}-{missing[0]}", snap)
            elif len(pods) > desired:
                self.server.delete(PODS, ns, by_ordinal[max(by_ordinal)]["metadata"]["name"])
            elif old and len(ready) == len(pods):
                victim = max((i for i, p in by_ordinal.items() if p in old))
                self.server.delete(PODS, ns, by_ordinal[victim]["metadata"]["name"])
        pods = self._pods_of(kind, w, self.snapshot())
        new = [p for p in pods if p["metadata"]["labels"].get(HASH) == current]
        ready = self._ready(w, pods)
        status = {"observedGeneration": w["metadata"].get("generation", 1), "replicas": len(pods),
                  "updatedReplicas": len(new), "readyReplicas": len(ready), "availableReplicas": len(ready)}
        if kind == "StatefulSet":
            status.update(updateRevision=f"{name}-{current[:6]}",
                          currentRevision=f"{name}-{current[:6]}" if len(new) == len(pods) else
                          (w.get("status") or {}).get("currentRevision") or f"{name}-old")
        if {k: (w.get("status") or {}).get(k) for k in status} != status:
            self.server.put(f"apps/v1/{plural}", ns, name, {"status": status})

    def _budgets(self, snap: dict) -> None:
        for pdb in snap.get("poddisruptionbudgets", []):
            ns = pdb["metadata"].get("namespace")
            selector = ((pdb.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
            owners = [(kind, w) for kind, plural in (("Deployment", "deployments"), ("StatefulSet", "statefulsets"))
                      for w in snap.get(plural, []) if w["metadata"].get("namespace") == ns
                      and all(((w["spec"]["template"].get("metadata") or {}).get("labels") or {}).get(k) == v
                              for k, v in selector.items())]
            expected = sum(int(w["spec"].get("replicas", 1)) for _, w in owners)
            healthy = sum(len(self._ready(w, self._pods_of(kind, w, snap))) for kind, w in owners)
            spec = pdb.get("spec") or {}
            if "minAvailable" in spec:
                desired_healthy = int(spec["minAvailable"])
            else:
                desired_healthy = expected - int(spec.get("maxUnavailable", 1))
            status = {"currentHealthy": healthy, "desiredHealthy": desired_healthy, "expectedPods": expected,
                      "disruptionsAllowed": max(0, healthy - desired_healthy), "observedGeneration": 1}
            if (pdb.get("status") or {}) != status:
                self.server.put("policy/v1/poddisruptionbudgets", ns, pdb["metadata"]["name"], {"status": status})


def _hash(w: dict) -> str:
    return hashlib.sha1(json.dumps(w["spec"]["template"], sort_keys=True).encode()).hexdigest()[:10]


def _suffix(pods: list[dict]) -> str:
    used = {p["metadata"]["name"].rsplit("-", 1)[1] for p in pods}
    return next(str(i) for i in range(len(pods) + 1) if str(i) not in used)
