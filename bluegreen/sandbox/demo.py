"""``bluegreen demo``: the whole cutover against the embedded sandbox, in under a minute.

It starts the sandbox (moto, DNS, two backends and two emulated Kubernetes APIs with ArgoCD's cluster
secrets and Applications, on loopback), writes a config into a temporary folder, and runs the real commands
through the real CLI: status -> verify -> preflight -> shift 0,10,50,100 -> status -> report. With ``fail_green``, green passes
verify but starts answering 500 as soon as it gets traffic, and the automatic rollback is shown. With
``green_missing_addon``, green's cluster secret lacks an addon flag: verify fails, and shift refuses to
change any weight.

With ``nodes`` it shows the in-place mode instead (:func:`run_nodes_demo`): blue's node groups, in EKS (moto),
upgraded blue/green inside the one cluster by ``bluegreen nodes plan``, ``upgrade`` and ``finish``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import yaml

from bluegreen.errors import ExitCode

DEMO_RECORDS = ["burnham.example.com", "api.example.com"]
MISSING_ADDON = "enable_karpenter"


def run_demo(env, *, fail_green: bool = False, green_missing_addon: bool = False, nodes: bool = False,
             output: str = "text", log_format: str | None = None, keep: str | os.PathLike[str] | None = None) -> int:
    """``keep``: a folder that keeps the config, the state (journal) and the report afterwards, so
    ``history``, ``watch`` and ``report`` work on the demo's runs; without it they go to a temporary folder
    and only the report is kept (its path is printed). ``nodes``: :func:`run_nodes_demo` instead."""
    if nodes:
        return run_nodes_demo(env, output=output, log_format=log_format, keep=keep)
    from bluegreen.sandbox import Sandbox

    def say(text: str) -> None:
        if output == "text":
            env.print(text)

    say("starting the sandbox: moto (Route 53), a DNS server, two clusters' backends and their Kubernetes APIs "
        "(emulated, with ArgoCD) on loopback ...")
    if keep is not None:
        folder = Path(keep).expanduser().resolve()
        folder.mkdir(parents=True, exist_ok=True)
        report_dir = folder / "report"
        workdir = contextlib.nullcontext(str(folder))
    else:
        report_dir = Path(tempfile.mkdtemp(prefix="bluegreen-demo-report-"))  # outlives the demo
        workdir = tempfile.TemporaryDirectory(prefix="bluegreen-demo-")
    # Route 53 changes stay PENDING about 2 s, as real ones do for up to a minute; the public probe asks a
    # caching resolver, as the service's clients do; each side's ALB publishes metrics to CloudWatch (moto).
    with Sandbox(records=DEMO_RECORDS, ttl=1, clusters=True, pending_seconds=DEMO_PENDING_SECONDS) as sandbox, \
            _environ(sandbox.aws_environ()), workdir as tmp, _alb_metrics(sandbox) as metric_gate:
        config = sandbox.config_dict(steps=[0, 10, 50, 100], bake="3s", ttl_margin="500ms",
                                     via_caching_resolver=True)
        config["gates"]["metrics"] = [metric_gate]
        config["state"] = {"path": str(Path(tmp) / "state.db")}  # with --keep, history/watch/report read it
        path = Path(tmp) / "bluegreen.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        say(f"sandbox: Route 53 at {sandbox.endpoint_url} (changes PENDING {DEMO_PENDING_SECONDS:g}s), DNS at "
            f"{sandbox.dns_address} behind a caching resolver at {sandbox.caching_resolver_address}, "
            f"blue at 127.0.0.2:{sandbox.http_port}, green at 127.0.0.3:{sandbox.http_port}")
        say("gates: the probes, judged per side, and a CloudWatch metric gate on each side's ALB 5xx ratio")
        say(f"clusters: kubeconfig {sandbox.kubeconfig} (contexts blue, green; ArgoCD in namespace argocd)")
        say(f"config written to {path}\n")
        if green_missing_addon:
            sandbox.green_lacks_addon(MISSING_ADDON)
            say(f"(green's ArgoCD cluster secret lacks the addon flag {MISSING_ADDON}: green is not ready)\n")
        common = ["--config", str(path), "--output", output] + (["--log-format", log_format] if log_format else [])

        code = shown(["status", *common], env, say, first=True)
        if code != ExitCode.OK:
            return code

        verify_code = shown(["verify", "--cluster", "green", *common], env, say, first=False)
        if verify_code not in (ExitCode.OK, ExitCode.GATES_FAILED):
            return verify_code

        _plant_preflight_warning(sandbox)
        say("\n(green is well kept, except one Deployment with a single replica: one warning, no error)")
        preflight_code = shown(["preflight", "--cluster", "green", *common], env, say, first=True)
        if preflight_code not in (ExitCode.OK, ExitCode.NOT_READY):
            return preflight_code

        shift_env = env
        if verify_code != ExitCode.OK:
            say("\n(shift runs verify first: it refuses to start, and changes no weight)")
        elif fail_green:
            def break_green(event) -> None:
                if event.kind == "step_started" and event.data.get("step") == "10%":
                    sandbox.fail_green("error")
                if env.on_event is not None:
                    env.on_event(event)

            shift_env = replace(env, on_event=break_green)
            say("\n(green will answer HTTP 500 from the 10% step on)")
        shift_code = shown(["shift", "--to", "green", *common], shift_env, say, first=False)
        weights_untouched = set(sandbox.weights().values()) == {tuple(sandbox.initial_weights)}

        shown(["status", *common], env, say, first=False)

        report_dir.mkdir(parents=True, exist_ok=True)
        html, png = report_dir / "report.html", report_dir / "report.png"
        report_code = ExitCode.BAD_INPUT
        if verify_code == ExitCode.OK:  # a refused shift journals no run: nothing to draw
            report_code = shown(["report", "--html", str(html), "--png", str(png), *common], env, say, first=False)
    say("\nsandbox stopped; nothing is left running.")
    if report_code == ExitCode.OK:
        say(f"the run's report: {html} (open it in a browser) and {png}")
    if keep is not None:
        say(f"kept in {folder}: the config, the state (journal) and the report. Try:\n"
            f"  bluegreen --config {folder / 'bluegreen.yaml'} history\n"
            f"  bluegreen --config {folder / 'bluegreen.yaml'} watch\n"
            f"  bluegreen --config {folder / 'bluegreen.yaml'} report --html run.html")
    if verify_code != ExitCode.OK:
        say("verify found green not ready and the shift refused to start: no weight was changed (exit 3)"
            if shift_code == ExitCode.GATES_FAILED and weights_untouched
            else f"unexpected: the shift ended with exit {shift_code}")
    elif fail_green:
        say("the shift failed its gates and traffic went back to blue by itself (exit 3)"
            if shift_code == ExitCode.GATES_FAILED else f"unexpected: the shift ended with exit {shift_code}")
    return shift_code


DEMO_PENDING_SECONDS = 2.0


@contextmanager
def _alb_metrics(sandbox):
    """Each side's backend publishes ALB-shaped metrics to CloudWatch (moto) every second; yields the
    metric gate that reads them. Blue serves a few requests first, as it would in production, so the gate's
    check before the shift finds blue's metrics."""
    import urllib.request

    from bluegreen.sandbox.cloudwatch_publisher import DEFAULT_DIMENSIONS, CloudWatchPublisher
    from bluegreen.sandbox.moto_server import sandbox_client

    import secrets

    # Load balancers of this run only: moto keeps its metrics in process memory, shared by every sandbox.
    suffix = secrets.token_hex(4)
    dimensions = {side: {key: f"{value}{suffix}" for key, value in dims.items()}
                  for side, dims in DEFAULT_DIMENSIONS.items()}
    publisher = CloudWatchPublisher(sandbox_client(sandbox.moto.endpoint_url, "cloudwatch"), sandbox.backends,
                                    dimensions=dimensions)
    for _ in range(5):
        urllib.request.urlopen(f"http://{sandbox.blue.host}:{sandbox.http_port}/", timeout=2).read()
    publisher.publish_once()
    publisher.start()
    try:
        yield {"name": "alb-5xx", "provider": "cloudwatch", "preset": "alb_5xx_ratio",
               "sides": dimensions,
               "max": 0.05, "interval": "2s", "window": "1m"}
    finally:
        publisher.stop()


def shown(argv: list[str], env, say, *, first: bool = False) -> int:
    """Print the command exactly as it runs (a reader can paste it), then run it through the real CLI."""
    import shlex

    from bluegreen.cli import main

    say(("" if first else "\n") + "$ bluegreen " + shlex.join(argv))
    return main(argv, env)


@contextmanager
def _environ(values: dict[str, str]):
    """The sandbox's fake AWS credentials for the CLI's own boto3 clients, for the demo's duration only."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _plant_preflight_warning(sandbox) -> None:
    """Make green's workload what a well-kept cluster has (a PodDisruptionBudget, spread over zones,
    minReadySeconds), then add one Deployment with a single replica: preflight shows exactly one warning
    (BG-K8S-003) and lets the shift go on."""
    from bluegreen.sandbox.kube import DEPLOYMENTS, WORKLOAD_NAMESPACE, deployment

    green = sandbox.kube["green"]
    spread = [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway",
               "labelSelector": {"matchLabels": {"app": "x"}}}]
    green.put(DEPLOYMENTS, WORKLOAD_NAMESPACE, "burnham", {"spec": {
        "minReadySeconds": 10, "template": {"spec": {"containers": [], "topologySpreadConstraints": spread}}}})
    green.put("policy/v1/poddisruptionbudgets", WORKLOAD_NAMESPACE, "burnham", {
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "x"}}}})
    green.put(DEPLOYMENTS, WORKLOAD_NAMESPACE, "burnham-worker", deployment(replicas=1))


# -- bluegreen demo --nodes: the in-place mode --------------------------------------------------------------
NODES_FROM, NODES_TO = "1.30", "1.31"
# (node group, nodes): as EKS Blueprints' managed node groups; moto holds them, the node controller runs nodes.
DEMO_NODE_GROUPS = (("general", 2), ("system", 1))


def run_nodes_demo(env, *, output: str = "text", log_format: str | None = None,
                   keep: str | os.PathLike[str] | None = None) -> int:
    """``bluegreen demo --nodes``: blue's control plane is already at 1.31 (moto has no UpdateClusterVersion,
    and a real one takes about ten minutes), its two managed node groups still at 1.30. The demo runs
    ``nodes plan``, ``nodes upgrade`` (preflight first, then twins, cordon, restarts, with the probe on the
    public name judged throughout) and ``nodes finish``, which deletes nothing before the keep time (24h).

    While it runs, :class:`~bluegreen.sandbox.node_controller.NodeController` plays the kubelets of the node
    groups, the scheduler and the Deployment/StatefulSet controllers on blue's emulated API server. Returns the
    upgrade's exit code (0), or the first unexpected one."""
    from bluegreen.sandbox import Sandbox
    from bluegreen.sandbox.kube import WORKLOAD_NAMESPACE
    from bluegreen.sandbox.node_controller import NodeController

    def say(text: str) -> None:
        if output == "text":
            env.print(text)

    say("starting the sandbox: moto (Route 53 and EKS), a DNS server, the clusters' backends and their "
        "Kubernetes APIs (emulated) on loopback ...")
    if keep is not None:
        folder = Path(keep).expanduser().resolve()
        folder.mkdir(parents=True, exist_ok=True)
        workdir = contextlib.nullcontext(str(folder))
    else:
        workdir = tempfile.TemporaryDirectory(prefix="bluegreen-demo-nodes-")
    with Sandbox(records=DEMO_RECORDS, ttl=1, clusters=True) as sandbox, _environ(sandbox.aws_environ()), \
            workdir as tmp, _eks_cluster(sandbox) as (eks, cluster):
        blue = sandbox.kube["blue"]
        blue.set_kubernetes_version(NODES_TO)  # the control plane was upgraded already
        with NodeController(blue, eks, cluster, interval=0.05) as controller:
            _plant_nodes_workloads(blue)
            controller.wait_settled(timeout=20)
            # The sandbox's gates, with room for a loaded machine: the demo shows the probe passing, not a race.
            config = sandbox.config_dict(green_direct=False, probe_interval="100ms", probe_timeout="2s", gates={
                "min_success_ratio": 0.95, "max_p95_latency": "2s", "min_samples": 5, "max_consecutive_failures": 3})
            config["aws"]["endpoint_url"] = sandbox.moto.endpoint_url  # EKS: straight to moto
            config["clusters"]["blue"]["eks"] = cluster
            config["nodes"] = {"poll_interval": "100ms", "ready_timeout": "30s", "workload_timeout": "30s",
                               "parallel": 2}
            config["state"] = {"path": str(Path(tmp) / "state.db")}
            path = Path(tmp) / "bluegreen.yaml"
            path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
            say(f"cluster blue: EKS cluster {cluster} in moto at {sandbox.moto.endpoint_url}, control plane "
                f"{NODES_TO}; node groups "
                + ", ".join(f"{g} ({n} node{'s' if n > 1 else ''})" for g, n in DEMO_NODE_GROUPS)
                + f" at {NODES_FROM}; {len(controller.pods_on())} pods in {WORKLOAD_NAMESPACE}")
            say(f"probe: http://{DEMO_RECORDS[0]}:{sandbox.http_port}/ through the DNS server at "
                f"{sandbox.dns_address} (all traffic on blue), judged by the gates throughout")
            say(f"config written to {path}\n")
            common = ["--config", str(path), "--output", output] + (["--log-format", log_format] if log_format
                                                                     else [])
            code = shown(["nodes", "plan", "--cluster", "blue", *common], env, say, first=True)
            if code != ExitCode.OK:
                return code

            say(f"\n(preflight for {NODES_TO} first; then the twins, the cordon and the restarts, printed as they "
                "happen)")
            upgrade_env = replace(env, on_event=_progress(say, env.on_event))
            upgrade_code = shown(["nodes", "upgrade", "--cluster", "blue", *common], upgrade_env, say, first=True)
            old = {name: cordoned for name, cordoned in _nodes(controller).items()
                   if name.split("-node-")[0] in dict(DEMO_NODE_GROUPS)}
            on_old = [pod for pod, node in controller.pods_on().items() if node in old]

            say("\n(finish deletes the old node groups only once nodes.keep, 24h, has passed since the upgrade: "
                "not yet, so it deletes nothing and exits 0, as it will every night until then)")
            finish_code = shown(["nodes", "finish", "--cluster", "blue", *common], env, say, first=True)
            groups = sorted(eks.list_nodegroups(clusterName=cluster)["nodegroups"])
        if controller.errors:
            raise RuntimeError(f"the sandbox's node controller failed: {controller.errors[0]!r}")
    say("\nsandbox stopped; nothing is left running.")
    kept = {group for group, _ in DEMO_NODE_GROUPS} <= set(groups)
    if upgrade_code == ExitCode.OK:
        say(f"every workload moved to the {NODES_TO} nodes: {len(on_old)} pod(s) left on the {len(old)} old nodes "
            f"({sum(old.values())} cordoned); node groups now: {', '.join(groups)}"
            + ("" if kept else " (unexpected: an old node group is gone before the keep time)"))
    else:
        say(f"unexpected: the upgrade ended with exit {upgrade_code}")
    if keep is not None:
        say(f"kept in {folder}: the config and the state (journal). Try:\n"
            f"  bluegreen --config {folder / 'bluegreen.yaml'} history")
    if upgrade_code != ExitCode.OK or finish_code != ExitCode.OK:
        return upgrade_code if upgrade_code != ExitCode.OK else finish_code
    return int(ExitCode.OK) if kept else int(ExitCode.ERROR)


def _plant_nodes_workloads(server) -> None:
    """Blue's workload as a team runs it: the web Deployment (already there), an API Deployment and a cache
    StatefulSet with enough replicas to restart one pod at a time without an outage."""
    from bluegreen.sandbox.kube import DEPLOYMENTS, STATEFULSETS, WORKLOAD_NAMESPACE

    def template(app: str) -> dict:
        return {"metadata": {"labels": {"app": app}},
                "spec": {"containers": [{"name": app, "image": f"public.ecr.aws/example/{app}:1"}]}}

    server.put(DEPLOYMENTS, WORKLOAD_NAMESPACE, "burnham-api", {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"generation": 1},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "burnham-api"}},
                 "strategy": {"type": "RollingUpdate"}, "template": template("burnham-api")}})
    server.put(STATEFULSETS, WORKLOAD_NAMESPACE, "burnham-cache", {
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"generation": 1},
        "spec": {"replicas": 2, "serviceName": "burnham-cache", "selector": {"matchLabels": {"app": "burnham-cache"}},
                 "updateStrategy": {"type": "RollingUpdate"}, "template": template("burnham-cache")}})


@contextmanager
def _eks_cluster(sandbox):
    """An EKS cluster in moto (``clusters.blue.eks``), control plane at NODES_TO, with DEMO_NODE_GROUPS at
    NODES_FROM; removed afterwards (moto keeps its state in process memory, shared by every sandbox)."""
    import secrets

    from bluegreen.sandbox.moto_server import sandbox_client

    eks = sandbox_client(sandbox.moto.endpoint_url, "eks")
    name = f"{sandbox.blue_id}-{secrets.token_hex(3)}"
    subnets = ["subnet-0sandboxa", "subnet-0sandboxb"]
    eks.create_cluster(name=name, version=NODES_TO, roleArn="arn:aws:iam::123456789012:role/eks-cluster",
                       resourcesVpcConfig={"subnetIds": subnets})
    try:
        for group, size in DEMO_NODE_GROUPS:
            eks.create_nodegroup(clusterName=name, nodegroupName=group, version=NODES_FROM,
                                 releaseVersion=f"{NODES_FROM}.4-20240917",
                                 nodeRole="arn:aws:iam::123456789012:role/eks-nodes", subnets=subnets,
                                 scalingConfig={"minSize": size, "maxSize": size + 2, "desiredSize": size},
                                 instanceTypes=["m6i.large"], amiType="AL2023_x86_64_STANDARD",
                                 labels={"pool": group})
        yield eks, name
    finally:
        try:
            for group in eks.list_nodegroups(clusterName=name)["nodegroups"]:
                eks.delete_nodegroup(clusterName=name, nodegroupName=group)
            eks.delete_cluster(name=name)
        except Exception:  # noqa: BLE001 - best effort; the server goes next anyway
            pass
        eks.close()


def _nodes(controller) -> dict[str, bool]:
    """node -> cordoned"""
    return {n["metadata"]["name"]: bool((n.get("spec") or {}).get("unschedulable"))
            for n in controller.snapshot().get("nodes", [])}


def _progress(say, then):
    """An on_event hook that prints the upgrade's steps as they happen (text output only), then calls the
    caller's hook."""
    def on_event(event) -> None:
        data = event.data
        line = {
            "nodes_twin_created": lambda: f"  created node group {data.get('new')} at {NODES_TO} "
                                          f"(twin of {data.get('old')})",
            "nodes_twin_ready": lambda: f"  {data.get('nodegroup')}: {len(data.get('nodes') or [])} node(s) Ready",
            "nodes_cordoned": lambda: f"  cordoned the old nodes: {', '.join(data.get('nodes') or [])}",
            "nodes_workload_restarted": lambda: f"  restarting {data.get('workload')} (rollout restart)",
            "nodes_workload_moved": lambda: f"  moved {data.get('workload')}: its rollout is complete",
            "nodes_workload_blocked": lambda: f"  blocked {data.get('subject')}: {data.get('reason')}",
            "nodes_gates_failed": lambda: f"  gates failed: {'; '.join(data.get('reasons') or [])}",
        }.get(event.kind)
        if line is not None:
            say(line())
        if then is not None:
            then(event)

    return on_event
