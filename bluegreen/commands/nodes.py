"""``bluegreen nodes plan|upgrade|rollback|finish``: blue/green node groups inside one cluster.

``upgrade`` reads the cluster (EKS node groups, nodes, workloads, pods, claims, budgets), makes the plan
(``bluegreen.core.nodes.make_plan``), refuses before any change while the plan lists a refusal or preflight
finds an error, then under the migration's lock: upgrades the control plane when asked, creates the twins
and waits for their nodes, cordons the old nodes, and restarts the workloads namespace by namespace, while
the configured probes run and the gates judge them (``HttpProber`` + ``core.verdict.judge``; a failed verdict
rolls back, exit 3).

What a signal (SIGTERM, SIGINT) leaves behind is ``core.nodes.INTERRUPT_RULE``: the cordon step is written
whole, before or after a signal, never half; restarts already written finish under their controllers; a
workload at zero replicas is scaled back before the run stops; the journal's ``nodes_interrupted`` event
lists the cordoned and the schedulable nodes. ``--resume`` continues from live state plus the journal
(replicas to restore).
"""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from bluegreen.commands.common import EXIT_CODES_HELP, emit, load, setup_logging
from bluegreen.environment import Environment
from bluegreen.errors import BlueGreenError, ConfigError, ExitCode, PreflightError, ShiftFailed, exit_code_for

NAME = "nodes"
DESCRIPTION = ("In-place mode: upgrade a cluster's nodes blue/green inside the cluster. A node group at the new "
               "version beside each old one, the old nodes cordoned, the workloads restarted namespace by "
               "namespace with probes and gates, the old node groups kept for rollback, deleted by `finish`.")
EPILOG = EXIT_CODES_HELP
UPGRADE, ROLLBACK, FINISH = "nodes-upgrade", "nodes-rollback", "nodes-finish"
VERSION_STEP_CODE = "BG-EKS-001"  # preflight: "the control plane upgrades one minor version at a time"


class NodesRefused(ShiftFailed):
    """The plan lists refusals, or preflight found errors: nothing was changed (exit 3)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="nodes_command", metavar="SUBCOMMAND", required=True)

    def common(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--cluster", required=True,
                       help="blue or green, or the cluster's name (clusters.<side>.name or .eks)")
        p.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS, help="configuration file")
        p.add_argument("--output", choices=("text", "json"), default=argparse.SUPPRESS)
        p.add_argument("--log-format", choices=("console", "json"), default=argparse.SUPPRESS)
        return p

    for name, help_text in (("plan", "what will be created, cordoned and restarted, in order; changes nothing"),
                            ("upgrade", "move every workload onto node groups at the target version")):
        p = common(name, help_text)
        p.add_argument("--version", dest="target", metavar="X.Y", help="target version (default: the control "
                                                                          "plane's)")
        p.add_argument("--namespaces", help="only these namespaces, comma-separated")
        p.add_argument("--upgrade-control-plane", action="store_true",
                       help="run UpdateClusterVersion first, one minor version at a time")
        p.add_argument("--accept-statefulset-downtime", action="store_true",
                       help="restart StatefulSets below nodes.min_statefulset_replicas anyway")
        if name == "upgrade":
            p.add_argument("--dry-run", action="store_true", help="check everything, print the plan, change nothing")
            p.add_argument("--resume", action="store_true", help="continue an interrupted upgrade")
            p.add_argument("--skip-preflight", action="store_true", help="do not run preflight first (logged)")
    common("rollback", "old nodes back in service, new ones cordoned, moved workloads restarted")
    p = common("finish", "delete the old node groups once the keep time has passed (safe every night)")
    p.add_argument("--keep", help="override nodes.keep, e.g. 24h")


def run(args: argparse.Namespace, env: Environment) -> int:
    setup_logging(args, env)
    config = load(args, env)
    ctx = Context(config, args, env)
    try:
        return {"plan": _plan, "upgrade": _upgrade, "rollback": _rollback, "finish": _finish}[args.nodes_command](ctx)
    finally:
        ctx.close()


# -- the context: config, clients, clock ------------------------------------------------------------------
class Context:
    def __init__(self, config, args: argparse.Namespace, env: Environment) -> None:
        from bluegreen.core.clock import SystemClock

        self.config, self.args, self.env = config, args, env
        self.settings = config.nodes
        self.clock = env.clock or SystemClock(env.stop)
        clusters = config.require_clusters()
        self.side = _side(clusters, args.cluster)
        self.spec = clusters.side(self.side)
        if not self.spec.access.eks:
            raise ConfigError(f"`clusters.{self.side}.eks` is required by `bluegreen nodes` (node groups are read "
                              "and created through the EKS API)", hint="add `eks: CLUSTER-NAME` beside the kubeconfig")
        self._clusters = None
        self._groups = None
        self._kube = None

    @property
    def groups(self):
        if self._groups is None:
            from dataclasses import replace

            from bluegreen.adapters import aws
            from bluegreen.adapters.nodegroups import NodeGroups

            aws_config = replace(self.config.aws, region=self.spec.access.region or self.config.aws.region)
            self._groups = NodeGroups(aws.client(aws_config, "eks"), self.spec.access.eks)
        return self._groups

    @property
    def kube(self):
        if self._kube is None:
            from bluegreen.adapters.kube import Clusters
            from bluegreen.adapters.kube_nodes import KubeNodes

            self._clusters = Clusters(self.config, self.config.require_clusters())
            self._kube = KubeNodes(self._clusters.kube(self.side))
        return self._kube

    def close(self) -> None:
        if self._clusters is not None:
            self._clusters.close()

    def read(self) -> dict:
        from bluegreen.core.nodes import Budget, Node, Workload

        return {
            "control_plane": self.groups.control_plane_version(),
            "groups": self.groups.groups(),
            "nodes": [Node.from_object(n) for n in self.kube.nodes()],
            "workloads": [Workload.from_object(kind, obj) for kind, obj in self.kube.workloads()],
            "pods": self.kube.pods(), "pvcs": self.kube.pvcs(),
            "budgets": [Budget.from_object(b) for b in self.kube.budgets()],
        }

    def make_plan(self, state: dict, target: str | None):
        from bluegreen.core.nodes import NodesError, make_plan, minor, minor_text

        args = self.args
        try:
            target = minor_text(minor(target or state["control_plane"]))
            return make_plan(cluster=self.spec.access.eks, control_plane=state["control_plane"], target=target,
                             groups=state["groups"], nodes=state["nodes"], workloads=state["workloads"],
                             pods=state["pods"], pvcs=state["pvcs"], budgets=state["budgets"], settings=self.settings,
                             upgrade_control_plane=getattr(args, "upgrade_control_plane", False),
                             accept_statefulset_downtime=getattr(args, "accept_statefulset_downtime", False),
                             namespaces=_namespaces(getattr(args, "namespaces", None)))
        except NodesError as error:
            raise ConfigError(str(error), hint=error.hint) from None


def _side(clusters, wanted: str) -> str:
    for side in ("blue", "green"):
        spec = clusters.side(side)
        if wanted in (side, spec.name, spec.access.eks):
            return side
    raise ConfigError(f"--cluster {wanted!r} is neither blue, green nor a configured cluster's name",
                      hint=f"use blue, green, {clusters.blue.name} or {clusters.green.name}")


def _namespaces(text: str | None) -> tuple[str, ...]:
    if text is None:
        return ()
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise ConfigError("--namespaces is empty", hint="e.g. --namespaces team-a,team-b")
    return names


# -- plan ---------------------------------------------------------------------------------------------------
def _plan(ctx: Context) -> int:
    plan = ctx.make_plan(ctx.read(), ctx.args.target)
    emit(ctx.args, ctx.env, plan.as_dict(), plan.text())
    return 0


# -- upgrade ------------------------------------------------------------------------------------------------
def _upgrade(ctx: Context) -> int:
    import structlog

    from bluegreen.runs import LockedRun

    log = structlog.get_logger("bluegreen.nodes")
    args = ctx.args
    previous = _last_runs(ctx, limit=5)
    last_upgrade = next((r for r in previous if r.command == UPGRADE), None)
    if (last_upgrade is not None and last_upgrade.outcome in ("interrupted", "failed") and not args.resume
            and not args.dry_run):
        raise PreflightError(f"the last node upgrade (run {last_upgrade.run_id}) was {last_upgrade.outcome}",
                             hint="pass --resume to continue it, or `bluegreen nodes rollback`")
    state = ctx.read()
    plan = ctx.make_plan(state, args.target)
    if plan.refusals:
        emit(args, ctx.env, {"refused": True, "plan": plan.as_dict()}, plan.text())
        raise NodesRefused(f"{len(plan.refusals)} workload(s) or setting(s) refuse the upgrade; nothing was changed",
                           hint="see `refused:` above for each fix")
    if args.skip_preflight:
        log.warning("preflight_skipped", reason="--skip-preflight")
    else:
        # Before any change, also before --upgrade-control-plane: the cluster as it is, judged for the target.
        _preflight(ctx, plan.target, walks_control_plane=len(plan.control_plane_steps) > 1)
    if args.dry_run:
        emit(args, ctx.env, {"dry_run": True, "plan": plan.as_dict()}, plan.text())
        return 0
    restore = _pending_restores(ctx, last_upgrade) if args.resume else []
    with LockedRun(ctx.config, ctx.env, UPGRADE, notifier=_notifier(ctx)) as run:
        run.start({"cluster": plan.cluster, "target": plan.target, "resume": args.resume, "plan": plan.as_dict()})
        run.check_stop()
        upgrade = Upgrade(ctx, run, plan)
        outcome, reason = upgrade.run(restore)
        code = ExitCode.GATES_FAILED if outcome == "blocked" else exit_code_for(outcome)
        run.finish(outcome, int(code), reason)
    data = {"outcome": outcome, "reason": reason, "exit_code": int(code), "run_id": run.run_id,
            "plan": plan.as_dict(), **upgrade.progress.as_dict(), "left_on_old_nodes": upgrade.left,
            "probes": upgrade.probe_summary()}
    emit(args, ctx.env, data, _result_text(data))
    return int(code)


def _result_text(data: dict) -> str:
    lines = [f"{data['outcome']}: {data['reason']}"]
    if data.get("moved"):
        lines.append(f"moved: {', '.join(data['moved'])}")
    for key, seconds in (data.get("downtime_seconds") or {}).items():
        lines.append(f"downtime of {key} (scaled to 0 and back): {seconds:.1f}s")
    for item in data.get("blocked") or []:
        lines.append(f"blocked: {item['subject']}: {item['reason']}\n  fix: {item['fix']}")
    for pod in data.get("left_on_old_nodes") or []:
        lines.append(f"still on an old node: {pod}")
    for name, seen in (data.get("probes") or {}).items():
        ratio = "-" if seen["success_ratio"] is None else f"{seen['success_ratio']:.1%} ok"
        p95 = "" if seen["p95_ms"] is None else f", p95 {seen['p95_ms']:g} ms"
        lines.append(f"probe {name}: {seen['samples']} requests, {ratio}{p95}")
    return "\n".join(lines)


def _preflight(ctx: Context, target: str, *, walks_control_plane: bool = False) -> None:
    """The preflight checks for the target version, with the config's ``preflight:`` settings (ignore,
    severity...); an error-level finding refuses (exit 3). It runs before any change, so with
    ``--upgrade-control-plane`` it reads the cluster at its current version and judges it for the target
    (what the workloads, add-ons and nodes will meet once the control plane is there).

    ``walks_control_plane``: the plan takes the control plane up more than one minor version, one at a time
    (``core.nodes.control_plane_steps``), which is what BG-EKS-001 ("one minor version at a time") asks for;
    that finding is dropped, and logged."""
    import structlog

    from bluegreen.adapters.inventory import collect_inventory
    from bluegreen.preflight.run import run_preflight

    inventory = collect_inventory(ctx.kube.kube, eks=ctx.groups.client, cluster_name=ctx.spec.access.eks,
                                  target_version=target, read_insights=False)
    report = run_preflight(inventory, target_version=target, settings=ctx.config.preflight.settings,
                           today=dt.date.fromtimestamp(ctx.clock.wall()))
    if walks_control_plane:
        from dataclasses import replace

        stepped = [f for f in report.findings if f.code == VERSION_STEP_CODE]
        if stepped:
            structlog.get_logger("bluegreen.nodes").info(
                "preflight_finding_handled", code=VERSION_STEP_CODE,
                reason="--upgrade-control-plane upgrades one minor version at a time")
            report = replace(report, findings=tuple(f for f in report.findings if f.code != VERSION_STEP_CODE))
    if report.has_errors:
        ctx.env.print(report.text())
        raise NodesRefused(f"preflight found error-level findings for {target}; nothing was changed",
                           hint="fix them (see above), or pass --skip-preflight")


def _notifier(ctx: Context):
    from bluegreen.adapters.notify import Notifier

    return Notifier.from_config(ctx.config, environ=ctx.env.environ)


def _last_runs(ctx: Context, limit: int = 50) -> list:
    from bluegreen.adapters.state.sqlite import open_state_store

    store = open_state_store(ctx.config, ctx.clock)
    try:
        return [r for r in store.list_runs(ctx.config.name, limit=limit) if r.command.startswith("nodes-")]
    finally:
        store.close()


def _events(ctx: Context, run_id: str) -> list:
    from bluegreen.adapters.state.sqlite import open_state_store

    store = open_state_store(ctx.config, ctx.clock)
    try:
        record = store.get_run(run_id)
        return list(record.events) if record else []
    finally:
        store.close()


def _pending_restores(ctx: Context, last_upgrade) -> list[dict]:
    """Workloads the interrupted run scaled to 0 and did not scale back: restored first on --resume."""
    from bluegreen.core.nodes import NodeEvent

    if last_upgrade is None:
        return []
    pending: dict[str, dict] = {}
    for event in _events(ctx, last_upgrade.run_id):
        if event.kind == str(NodeEvent.SCALED_TO_ZERO):
            pending[event.data["workload"]] = dict(event.data)
        elif event.kind in (str(NodeEvent.SCALED_BACK), str(NodeEvent.WORKLOAD_MOVED)):
            pending.pop(event.data.get("workload"), None)
    return list(pending.values())


class Upgrade:
    """Carries out one plan. ``run`` returns (outcome, reason): completed | blocked | rolled_back | held |
    interrupted."""

    def __init__(self, ctx: Context, run, plan) -> None:
        from bluegreen.core.nodes import Progress

        self.ctx, self.run_, self.plan = ctx, run, plan
        self.kube, self.groups, self.clock = ctx.kube, ctx.groups, ctx.clock
        self.settings = ctx.settings
        self.progress = Progress()
        self.left: list[str] = []
        self.prober = None
        self.windows: dict = {}

    # -- bookkeeping --------------------------------------------------------------------------------
    def record(self, kind, data: dict) -> None:
        import structlog

        from bluegreen.core.ports import Event

        structlog.get_logger("bluegreen.nodes").info(str(kind), **data)
        self.run_.record(str(kind), data)
        if self.ctx.env.on_event is not None:
            self.ctx.env.on_event(Event(str(kind), dict(data)))

    def stopped(self) -> bool:
        return self.ctx.env.stop.is_set() or self.run_.lock_lost.is_set()

    def _now_text(self) -> str:
        return restarted_at(self.clock.wall())

    # -- probes and gates ---------------------------------------------------------------------------
    def _start_probes(self) -> None:
        if not self.ctx.config.probes:
            return
        from bluegreen.adapters.probes import HttpProber
        from bluegreen.core.verdict import SampleWindow

        self.prober = HttpProber(self.ctx.config.probes)
        self.windows = {name: SampleWindow() for name in self.prober.names}
        self.prober.start()

    def _verdict(self):
        """None while the gates pass (or cannot tell yet); the failed Verdict otherwise."""
        if self.prober is None:
            return None
        from bluegreen.core.verdict import judge

        for sample in self.prober.drain():
            self.windows[sample.probe].add(sample)
        verdict = judge({name: w.summary() for name, w in self.windows.items()}, self.ctx.config.gates)
        return verdict if verdict.failed else None

    def probe_summary(self) -> dict[str, dict]:
        """What each probe saw over the run (the samples judged): for the result, so a passing run shows its
        evidence too."""
        out = {}
        for name, window in self.windows.items():
            summary = window.summary()
            ratio = summary.success_ratio
            out[name] = {"samples": summary.samples, "success_ratio": None if ratio is None else round(ratio, 4),
                         "p95_ms": None if summary.p95_latency is None else round(summary.p95_latency * 1000, 1)}
        return out

    # -- the run ------------------------------------------------------------------------------------
    def run(self, restore: list[dict]) -> tuple[str, str]:
        self._start_probes()
        try:
            return self._run(restore)
        finally:
            if self.prober is not None:
                self.prober.stop()

    def _run(self, restore: list[dict]) -> tuple[str, str]:
        from bluegreen.core.nodes import NodeEvent

        for item in restore:  # a workload left at zero by the interrupted run comes back first
            kind, namespace, name = item["workload"].split("/", 2)
            self.kube.scale(kind, namespace, name, int(item["replicas"]))
            self.record(NodeEvent.SCALED_BACK, {"workload": item["workload"], "replicas": item["replicas"],
                                                "resumed": True})
        for version in self.plan.control_plane_steps:
            if self.stopped():
                return self._interrupted(cordon_written=False)
            self.groups.upgrade_control_plane(version, monotonic=self.clock.monotonic, sleep=self.clock.sleep,
                                              timeout=self.settings.control_plane_timeout,
                                              interval=self.settings.poll_interval)
            self.record(NodeEvent.CONTROL_PLANE_UPGRADED, {"version": version})
        for twin in self.plan.twins:
            if self.stopped():
                return self._interrupted(cordon_written=False)
            if not twin.exists:
                self.groups.create(dict(twin.request))
                self.record(NodeEvent.TWIN_CREATED, {"old": twin.old, "new": twin.new})
        failed = self._wait_twins()
        if failed is not None:
            return failed
        if self.stopped():
            return self._interrupted(cordon_written=False)
        self._cordon()
        for namespace, moves in self.plan.waves:
            for start in range(0, len(moves), self.settings.parallel):
                ended = self._move(moves[start:start + self.settings.parallel])
                if ended is not None:
                    return ended
        self.left = self._left_on_old_nodes()
        if self.progress.blocked:
            return "blocked", (f"{len(self.progress.blocked)} workload(s) did not move; the old nodes stay "
                               "cordoned: fix them and run `nodes upgrade --resume`, or `nodes rollback`")
        self.record(NodeEvent.UPGRADE_COMPLETED, {"at": self.clock.wall(), "old_groups": list(self.plan.old_groups),
                                                  "twins": [t.new for t in self.plan.twins]})
        return "completed", (f"{len(self.progress.moved)} workload(s) moved to {self.plan.target}; old node groups "
                             f"kept for rollback: {', '.join(self.plan.old_groups) or '(none)'}")

    def _twin_nodes(self) -> dict[str, list]:
        from bluegreen.core.nodes import Node

        names = {t.new for t in self.plan.twins}
        out: dict[str, list] = {name: [] for name in names}
        for node in (Node.from_object(n) for n in self.kube.nodes()):
            if node.nodegroup in names:
                out[node.nodegroup].append(node)
        return out

    def _wait_twins(self):
        from bluegreen.core.nodes import NodeEvent

        if not self.plan.twins:
            return None
        started = self.clock.monotonic()
        for twin in self.plan.twins:
            self.groups.wait_active(twin.new, monotonic=self.clock.monotonic, sleep=self.clock.sleep,
                                    timeout=self.settings.ready_timeout, interval=self.settings.poll_interval)
        wanted = {t.new: int((t.request.get("scalingConfig") or {}).get("desiredSize") or 0) for t in self.plan.twins}
        while True:
            nodes = self._twin_nodes()
            if all(sum(n.ready for n in nodes[name]) >= count for name, count in wanted.items()):
                for name in wanted:
                    self.record(NodeEvent.TWIN_READY, {"nodegroup": name, "nodes": [n.name for n in nodes[name]]})
                return None
            verdict = self._verdict()
            if verdict is not None:
                return self._gates_failed(verdict)
            if self.stopped():
                return self._interrupted(cordon_written=False)
            if self.clock.monotonic() - started > self.settings.ready_timeout:
                raise BlueGreenError("the new node groups' nodes are not Ready after "
                                     f"{int(self.settings.ready_timeout)}s; nothing was cordoned",
                                     hint="look at the node groups in the EKS console; re-run with --resume")
            self.clock.sleep(self.settings.poll_interval)

    def _cordon(self) -> None:
        """The one cordon step (INTERRUPT_RULE): the new nodes schedulable, then every old node cordoned, with
        no stop check in between."""
        from bluegreen.core.nodes import NodeEvent

        new = [n for group in self._twin_nodes().values() for n in group]
        for node in new:
            if node.unschedulable:
                self.kube.set_unschedulable(node.name, False)
        for name in self.plan.cordon:
            self.kube.set_unschedulable(name, True)
        self.progress.cordoned = list(self.plan.cordon)
        self.record(NodeEvent.CORDONED, {"nodes": list(self.plan.cordon), "schedulable": [n.name for n in new]})

    def _start(self, move):
        from bluegreen.core.nodes import Budget, Moving, NodeEvent, budget_blocks

        w = move.workload
        budget = next((b for b in map(Budget.from_object, self.kube.budgets()) if b.covers(w)), None)
        blocked = budget_blocks(budget)
        if blocked:
            self._blocked(move, blocked, "wait until the budget allows a disruption (its pods healthy), then "
                                         "`nodes upgrade --resume`; bluegreen does not force it")
            return None
        now = self.clock.monotonic()
        if move.action == "scale-to-zero":
            current = int((self.kube.workload(w.kind, w.namespace, w.name).get("spec") or {}).get("replicas") or 0)
            self.record(NodeEvent.SCALED_TO_ZERO, {"workload": w.key, "replicas": current})
            generation = self.kube.scale(w.kind, w.namespace, w.name, 0)
            return Moving(move, now, generation, phase="down", replicas=current, down_at=now)
        generation = self.kube.restart(w.kind, w.namespace, w.name, self._now_text())
        self.record(NodeEvent.WORKLOAD_RESTARTED, {"workload": w.key})
        return Moving(move, now, generation)

    def _blocked(self, move, reason: str, fix: str) -> None:
        from bluegreen.core.nodes import Finding, NodeEvent

        finding = Finding(move.workload.key, reason, fix)
        self.progress.blocked.append(finding)
        self.record(NodeEvent.WORKLOAD_BLOCKED, finding.as_dict())

    def _move(self, batch) -> tuple[str, str] | None:
        """Move one batch (at most nodes.parallel workloads); a tuple when the run must end."""
        from bluegreen.core.nodes import NodeEvent, Step, next_step
        from bluegreen.core.readiness import rollout_problem, workload_from_object

        moving = [m for m in (self._start(move) for move in batch) if m is not None]
        while moving:
            verdict = self._verdict()
            if verdict is not None:
                self._restore_zero(moving)
                return self._gates_failed(verdict, in_flight=[m.move for m in moving])
            if self.stopped():
                self._restore_zero(moving)
                return self._interrupted(cordon_written=True, in_flight=[m.move.workload.key for m in moving])
            for m in list(moving):
                w = m.move.workload
                obj = self.kube.workload(w.kind, w.namespace, w.name)
                status = obj.get("status") or {}
                step = next_step(m, problem=rollout_problem(workload_from_object(w.kind, obj)),
                                 observed_generation=int(status.get("observedGeneration") or 0),
                                 pods=int(status.get("replicas") or 0), now=self.clock.monotonic(),
                                 timeout=self.settings.workload_timeout)
                if step is Step.SCALE_BACK:
                    m.generation = self.kube.scale(w.kind, w.namespace, w.name, m.replicas)
                    m.phase = "up"
                    self.record(NodeEvent.SCALED_BACK, {"workload": w.key, "replicas": m.replicas})
                elif step is Step.DONE:
                    moving.remove(m)
                    data = {"workload": w.key, "action": m.move.action}
                    if m.down_at is not None:
                        m.downtime = self.clock.monotonic() - m.down_at
                        self.progress.downtime[w.key] = m.downtime
                        data["downtime_seconds"] = round(m.downtime, 2)
                    self.progress.moved.append(m.move)
                    self.record(NodeEvent.WORKLOAD_MOVED, data)
                elif step is Step.TIMED_OUT:
                    moving.remove(m)
                    if m.phase == "down":
                        self.kube.scale(w.kind, w.namespace, w.name, m.replicas)
                        self.record(NodeEvent.SCALED_BACK, {"workload": w.key, "replicas": m.replicas})
                    self._blocked(m.move, f"rollout not complete after {int(self.settings.workload_timeout)}s "
                                          f"({rollout_problem(workload_from_object(w.kind, obj)) or 'pods not gone'})",
                                  "look at its pods (Pending? a volume that will not attach?), then "
                                  "`nodes upgrade --resume` or `nodes rollback`")
            if moving:
                self.clock.sleep(self.settings.poll_interval)
        return None

    def _restore_zero(self, moving) -> None:
        """Never leave a workload at zero replicas behind (INTERRUPT_RULE)."""
        from bluegreen.core.nodes import NodeEvent

        for m in moving:
            if m.phase == "down":
                w = m.move.workload
                self.kube.scale(w.kind, w.namespace, w.name, m.replicas)
                m.phase = "up"
                self.record(NodeEvent.SCALED_BACK, {"workload": w.key, "replicas": m.replicas})

    def _interrupted(self, *, cordon_written: bool, in_flight=()) -> tuple[str, str]:
        from bluegreen.core.nodes import INTERRUPT_RULE, NodeEvent

        cordoned = list(self.plan.cordon) if cordon_written else []
        self.record(NodeEvent.INTERRUPTED, {"cordoned": cordoned, "rule": INTERRUPT_RULE,
                                            "in_flight": list(in_flight),
                                            "moved": [m.workload.key for m in self.progress.moved]})
        where = (f"{len(cordoned)} old node(s) cordoned, the new ones schedulable" if cordon_written
                 else "no node was cordoned")
        return "interrupted", f"interrupted by a signal: {where}; continue with `nodes upgrade --resume`"

    def _gates_failed(self, verdict, in_flight=()) -> tuple[str, str]:
        from bluegreen.core.nodes import NodeEvent

        self.record(NodeEvent.GATES_FAILED, {"reasons": list(verdict.reasons)})
        if self.ctx.config.gates.on_fail == "hold":
            return "held", "the gates failed; held where it is (gates.on_fail: hold): " + "; ".join(verdict.reasons)
        roll_back(self.ctx, self.record, old_groups=self.plan.old_groups, new_groups=[t.new for t in self.plan.twins],
                  target=self.plan.target)
        return "rolled_back", "the gates failed, rolled back: " + "; ".join(verdict.reasons)

    def _left_on_old_nodes(self) -> list[str]:
        """Pods still on cordoned old nodes that are not DaemonSet pods (those follow the nodes): reported."""
        old = set(self.plan.cordon)
        left = []
        for pod in self.kube.pods():
            meta = pod.get("metadata") or {}
            owners = {o.get("kind") for o in meta.get("ownerReferences") or []}
            if (pod.get("spec") or {}).get("nodeName") in old and "DaemonSet" not in owners:
                left.append(f"{meta.get('namespace')}/{meta.get('name')} on {pod['spec']['nodeName']}")
        return sorted(left)


def restarted_at(wall: float) -> str:
    """The annotation's value: RFC 3339 like kubectl's, with microseconds, so a rollback written in the same
    second as the upgrade's restart still changes the pod template (an unchanged template rolls nothing)."""
    return dt.datetime.fromtimestamp(wall, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# -- rollback -----------------------------------------------------------------------------------------------
def roll_back(ctx: Context, record, *, old_groups, new_groups, target: str) -> dict:
    """Old nodes back in service, new ones cordoned, then what had moved restarted (it can only land on the
    old nodes), each the way it moved (RWO Deployments scaled to 0 and back). Waits for each rollout, bounded
    by nodes.workload_timeout; a signal does not stop a rollback."""
    from bluegreen.core.nodes import (Move, Node, NodeEvent, Workload, rollback_plan, rwo_claims, selects)
    from bluegreen.core.readiness import rollout_problem, workload_from_object

    kube, clock = ctx.kube, ctx.clock
    nodes = [Node.from_object(n) for n in kube.nodes()]
    old = [n.name for n in nodes if n.nodegroup in set(old_groups)]
    new = [n.name for n in nodes if n.nodegroup in set(new_groups)]
    pods = kube.pods()
    pvcs = kube.pvcs()
    moved = []
    for kind, obj in kube.workloads():
        w = Workload.from_object(kind, obj)
        if w.replicas and any((p.get("metadata") or {}).get("namespace") == w.namespace
                              and selects(w.selector, (p.get("metadata") or {}).get("labels") or {})
                              and (p.get("spec") or {}).get("nodeName") in set(new) for p in pods):
            rwo = kind == "Deployment" and set(w.claims) & rwo_claims(w.namespace, pvcs)
            moved.append(Move(w, "scale-to-zero" if rwo else "restart"))
    plan = rollback_plan(old_nodes=old, new_nodes=new, moved=moved)
    record(NodeEvent.ROLLBACK_STARTED, {"target": target, **plan.as_dict()})
    for name in plan.uncordon:
        kube.set_unschedulable(name, False)
    for name in plan.cordon:
        kube.set_unschedulable(name, True)
    at = restarted_at(clock.wall())
    not_back = []
    for move in plan.moves:
        w = move.workload
        if move.action == "scale-to-zero":
            kube.scale(w.kind, w.namespace, w.name, 0)
            _wait(ctx, w, lambda obj: int((obj.get("status") or {}).get("replicas") or 0) == 0)
            kube.scale(w.kind, w.namespace, w.name, w.replicas)
        else:
            kube.restart(w.kind, w.namespace, w.name, at)
        if not _wait(ctx, w, lambda obj, w=w: rollout_problem(workload_from_object(w.kind, obj)) is None
                     and int((obj.get("status") or {}).get("observedGeneration") or 0)
                     >= int((obj.get("metadata") or {}).get("generation") or 0)):
            not_back.append(w.key)
    result = {**plan.as_dict(), "not_back": not_back}
    record(NodeEvent.ROLLED_BACK, result)
    return result


def _wait(ctx: Context, w, done) -> bool:
    started = ctx.clock.monotonic()
    while ctx.clock.monotonic() - started <= ctx.settings.workload_timeout:
        if done(ctx.kube.workload(w.kind, w.namespace, w.name)):
            return True
        ctx.clock.sleep(ctx.settings.poll_interval)
    return False


def _last_upgrade_plan(ctx: Context) -> dict | None:
    from bluegreen.adapters.state.sqlite import open_state_store

    store = open_state_store(ctx.config, ctx.clock)
    try:
        for record in store.list_runs(ctx.config.name, limit=50):
            if record.command == UPGRADE and (record.plan or {}).get("plan"):
                return dict(record.plan)
        return None
    finally:
        store.close()


def _rollback(ctx: Context) -> int:
    from bluegreen.runs import LockedRun

    last = _last_upgrade_plan(ctx)
    if last is None:
        raise PreflightError("no node upgrade in the journal: nothing to roll back",
                             hint="`bluegreen history` lists the runs of this migration")
    twins = last["plan"].get("twins") or []
    # The emergency exit: it takes the lock over (a running upgrade stops within one check).
    with LockedRun(ctx.config, ctx.env, ROLLBACK, take_over=True, notifier=_notifier(ctx)) as run:
        run.start({"cluster": last.get("cluster"), "target": last.get("target"), "twins": twins})

        def record(kind, data) -> None:
            run.record(str(kind), data)

        result = roll_back(ctx, record, old_groups=[t["old"] for t in twins], new_groups=[t["new"] for t in twins],
                           target=last.get("target", ""))
        code = ExitCode.ERROR if result["not_back"] else ExitCode.OK
        reason = ("old nodes in service, new nodes cordoned" +
                  (f"; not back yet: {', '.join(result['not_back'])}" if result["not_back"] else ""))
        run.finish("rolled_back" if not result["not_back"] else "rollback_failed", int(code), reason)
    emit(ctx.args, ctx.env, {"outcome": "rolled_back", "reason": reason, **result}, reason)
    return int(code)


# -- finish -------------------------------------------------------------------------------------------------
def _finish(ctx: Context) -> int:
    from bluegreen.core.nodes import NodeEvent, finish_decision
    from bluegreen.runs import LockedRun

    keep = ctx.settings.keep
    if ctx.args.keep is not None:
        from bluegreen.config.fields import Fields

        keep = Fields({"--keep": ctx.args.keep}, "").duration("--keep", keep, hi=30 * 86400.0)
    decision = finish_decision(_run_summaries(ctx), now=ctx.clock.wall(), keep=keep)
    data = {"action": decision.action, "reason": decision.reason, "groups": list(decision.groups),
            "remaining_seconds": round(decision.remaining, 1)}
    if decision.action == "refuse":
        emit(ctx.args, ctx.env, data, f"refused: {decision.reason}")
        return int(ExitCode.GATES_FAILED)
    if decision.action != "delete":
        emit(ctx.args, ctx.env, data, f"nothing deleted: {decision.reason}")
        return 0
    with LockedRun(ctx.config, ctx.env, FINISH, notifier=_notifier(ctx)) as run:
        # Decided again under the lock: a rollback may have run meanwhile.
        decision = finish_decision(_run_summaries(ctx), now=ctx.clock.wall(), keep=keep)
        run.start({"groups": list(decision.groups), "keep": keep, "decision": decision.action})
        deleted = []
        if decision.action == "delete":
            for name in decision.groups:
                if ctx.groups.delete(name):
                    deleted.append(name)
                run.record(str(NodeEvent.GROUP_DELETED), {"nodegroup": name})
        run.finish("completed" if decision.action == "delete" else "nothing_to_do", 0, decision.reason)
    data.update(deleted=deleted, action=decision.action)
    emit(ctx.args, ctx.env, data, f"deleted {', '.join(deleted) or 'nothing'}: {decision.reason}")
    return 0


def _run_summaries(ctx: Context) -> list[dict[str, Any]]:
    from bluegreen.core.nodes import NodeEvent

    out = []
    for record in _last_runs(ctx):
        item: dict[str, Any] = {"command": record.command, "outcome": record.outcome}
        if record.command == UPGRADE and record.outcome == "completed":
            for event in _events(ctx, record.run_id):
                if event.kind == str(NodeEvent.UPGRADE_COMPLETED):
                    item.update(completed_at=event.data.get("at"), old_groups=event.data.get("old_groups"))
        out.append(item)
    return out
