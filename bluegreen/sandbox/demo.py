"""``bluegreen demo``: the whole cutover against the embedded sandbox, in under a minute.

It starts the sandbox (moto, DNS, two backends and two emulated Kubernetes APIs with ArgoCD's cluster
secrets and Applications, on loopback), writes a config into a temporary folder, and runs the real commands
through the real CLI: status -> verify -> preflight -> shift 0,10,50,100 -> status -> report. With ``fail_green``, green passes
verify but starts answering 500 as soon as it gets traffic, and the automatic rollback is shown. With
``green_missing_addon``, green's cluster secret lacks an addon flag: verify fails, and shift refuses to
change any weight.
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


def run_demo(env, *, fail_green: bool = False, green_missing_addon: bool = False, output: str = "text",
             log_format: str | None = None, keep: str | os.PathLike[str] | None = None) -> int:
    """``keep``: a folder that keeps the config, the state (journal) and the report afterwards, so
    ``history``, ``watch`` and ``report`` work on the demo's runs; without it they go to a temporary folder
    and only the report is kept (its path is printed)."""
    from bluegreen.cli import main
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
    with Sandbox(records=DEMO_RECORDS, ttl=1, clusters=True) as sandbox, _environ(sandbox.aws_environ()), \
            workdir as tmp:
        config = sandbox.config_dict(steps=[0, 10, 50, 100], bake="3s", ttl_margin="500ms")
        config["state"] = {"path": str(Path(tmp) / "state.db")}  # with --keep, history/watch/report read it
        path = Path(tmp) / "bluegreen.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        say(f"sandbox: Route 53 at {sandbox.endpoint_url}, DNS at {sandbox.dns_address}, "
            f"blue at 127.0.0.2:{sandbox.http_port}, green at 127.0.0.3:{sandbox.http_port}")
        say(f"clusters: kubeconfig {sandbox.kubeconfig} (contexts blue, green; ArgoCD in namespace argocd)")
        say(f"config written to {path}\n")
        if green_missing_addon:
            sandbox.green_lacks_addon(MISSING_ADDON)
            say(f"(green's ArgoCD cluster secret lacks the addon flag {MISSING_ADDON}: green is not ready)\n")
        common = ["--config", str(path), "--output", output] + (["--log-format", log_format] if log_format else [])

        say("$ bluegreen status")
        code = main(["status", *common], env)
        if code != ExitCode.OK:
            return code

        say("\n$ bluegreen verify --cluster green")
        verify_code = main(["verify", "--cluster", "green", *common], env)
        if verify_code not in (ExitCode.OK, ExitCode.GATES_FAILED):
            return verify_code

        _plant_preflight_warning(sandbox)
        say("\n$ bluegreen preflight --cluster green")
        say("(green is well kept, except one Deployment with a single replica: one warning, no error)")
        preflight_code = main(["preflight", "--cluster", "green", *common], env)
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
        say("\n$ bluegreen shift --to green --steps 0,10,50,100")
        shift_code = main(["shift", "--to", "green", *common], shift_env)
        weights_untouched = set(sandbox.weights().values()) == {tuple(sandbox.initial_weights)}

        say("\n$ bluegreen status")
        main(["status", *common], env)

        report_dir.mkdir(parents=True, exist_ok=True)
        html, png = report_dir / "report.html", report_dir / "report.png"
        report_code = ExitCode.BAD_INPUT
        if verify_code == ExitCode.OK:  # a refused shift journals no run: nothing to draw
            say(f"\n$ bluegreen report --html {html} --png {png}")
            report_code = main(["report", "--html", str(html), "--png", str(png), *common], env)
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
