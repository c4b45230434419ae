#!/usr/bin/env python
"""bluegreen's performance figures (issue 5), measured side by side against the embedded sandbox.

    python scripts/bench.py            # full run (a few minutes)
    python scripts/bench.py --quick    # smaller counts, for CI (under a minute)

Prints one table (figure, measured, baseline, ratio, target, met) and writes ``bench-results.json``.
Every figure and its baseline are measured in the same run on the same machine, so ratios hold on a noisy
machine; absolute targets are reported as met or not, and never make this script fail. It exits non-zero
only when a measurement itself could not be taken.

What is timed, and how:
1. failure detection: the real CLI (``shift --to green``, in-process) with the default probe and gate
   settings; green breaks (HTTP 500, or answers after 3 s) when the 10% step starts. Time from the fault to
   the first failing verdict (``judge_step``), with a probe pinned to green (``connect_to``), with the public
   probe alone (per-side judgement, its side companions on: the default), the public probe with
   ``direct_sides: false`` (only what DNS sends it), and the public probe behind the sandbox's caching
   resolver. Also the share error per step (observed share of each side vs the weights), and detection
   through a Prometheus metric gate alone (the real server, where installed).
2. rollback latency: failing verdict -> ``Route53Router.set`` returned (ChangeResourceRecordSets accepted by
   moto), in the same runs; and ``bluegreen rollback`` as a cold process, spawn -> change accepted, with a
   check of ``sys.modules`` and of the threads at its exit (no kubernetes, no probes).
3. overhead per step: a real shift's step wall time minus its floor (INSYNC wait + TTL + margin + bake).
4. Route 53 calls per step, counted by a ThrottlingProxy in front of moto (server side), for 1..500 records
   in 1 and 3 zones, and the largest number of calls bluegreen made in any 1 s window.
5. probe throughput of HttpProber vs the seeds' ``curl -s URL | grep CLUSTER_NAME`` loop on the same
   backend (run in its own process), and the memory of the sample window and buffer (tracemalloc).
6. start-up: ``bluegreen --help`` and ``bluegreen status`` as cold processes (median).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# Flagger's code defaults (pkg/apis/flagger/v1beta1/canary.go): analysis interval 60 s, threshold 1, so its
# default rollback comes after at most about one minute. (1m x 5 = 300 s is a tutorial setting.) Not run.
FLAGGER_DEFAULT_DETECTION = 60.0
FLAGGER_LABEL = "60 s (Flagger code default: interval 60 s x threshold 1, canary.go; not run)"
SEEDS_SCRIPT = "curl -s URL | grep CLUSTER_NAME"


# -- small helpers -----------------------------------------------------------------------------------------
def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _fmt_s(seconds, digits=2):
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.{digits}f} s"


def _ratio(baseline, measured):
    if not baseline or not measured:
        return None
    return baseline / measured


def _fmt_ratio(value):
    return "-" if value is None else f"{value:,.1f}x"


def _yes_no(value):
    return "n/a" if value is None else ("yes" if value else "no")


class Table:
    def __init__(self) -> None:
        self.rows: list[dict] = []

    def add(self, figure, measured, baseline="-", ratio="-", target="-", met=None, note="") -> None:
        self.rows.append({"figure": figure, "measured": measured, "baseline": baseline, "ratio": ratio,
                          "target": target, "met": _yes_no(met), "note": note})

    def render(self) -> str:
        head = ("figure", "measured", "baseline", "ratio", "target", "met")
        lines = [head] + [tuple(str(r[k]) for k in head) for r in self.rows]
        widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
        out = []
        for n, line in enumerate(lines):
            out.append("| " + " | ".join(cell.ljust(w) for cell, w in zip(line, widths)) + " |")
            if n == 0:
                out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
        return "\n".join(out)


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _bluegreen_command() -> list[str]:
    script = Path(sys.executable).with_name("bluegreen")
    return [str(script)] if script.exists() else [sys.executable, "-m", "bluegreen"]


# -- instrumentation of the process under test (timestamps only; behaviour unchanged) ------------------------
class Marks:
    """Wraps ``judge`` (in the engine) and ``Route53Router.set``/``wait_insync`` to timestamp them."""

    def __init__(self) -> None:
        self.failed_verdicts: list[float] = []
        self.sets: list[tuple[float, str]] = []
        self.insync_waits: list[tuple[float, float]] = []  # (started, seconds)

    def install(self) -> None:
        import bluegreen.core.engine as engine
        from bluegreen.routers.route53 import Route53Router

        marks = self
        judge = engine.judge_step

        def timed_judge(*args, **kwargs):
            verdict = judge(*args, **kwargs)
            if verdict.failed:
                marks.failed_verdicts.append(time.monotonic())
            return verdict

        engine.judge_step = timed_judge
        original_set = Route53Router.set
        original_wait = Route53Router.wait_insync

        def timed_set(self, weights, **kwargs):
            ids = original_set(self, weights, **kwargs)
            marks.sets.append((time.monotonic(), str(weights)))
            return ids

        def timed_wait(self, change_id):
            began = time.monotonic()
            try:
                return original_wait(self, change_id)
            finally:
                marks.insync_waits.append((began, time.monotonic() - began))

        Route53Router.set = timed_set
        Route53Router.wait_insync = timed_wait

    def first_after(self, items, t):
        for item in items:
            stamp = item[0] if isinstance(item, tuple) else item
            if stamp >= t:
                return stamp
        return None


def _run_cli(argv, *, on_event=None):
    from bluegreen.cli import Environment, main

    out, err = io.StringIO(), io.StringIO()
    env = Environment(stdout=out, stderr=err, on_event=on_event, install_signal_handlers=False)
    code = main(list(argv), env)
    return code, out.getvalue(), err.getvalue()


def _write_config(path: Path, config: dict, state_dir: Path) -> Path:
    import yaml

    config = dict(config)
    config["state"] = {"path": str(state_dir / "state.db")}
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def _reset(sb) -> None:
    sb.blue.set_mode("ok")
    sb.green.set_mode("ok")
    if any(w != (100, 0) for w in sb.weights().values()):
        sb.set_weights(100, 0, ttl=sb.ttl)


# -- 1 and 2: failure detection and rollback latency -------------------------------------------------------
PROBE_SETUPS = {
    "pinned": "public + green-direct (connect_to)",
    "public": "public only (side companions on: default)",
    "public-dns-only": "public only, direct_sides: false",
    "public-cached": "public only, behind the caching resolver",
}


def detection_run(sb, marks: Marks, tmp: Path, *, fault: str, setup: str, bake: str,
                  inject_on: str = "step_started") -> dict:
    """``inject_on``: ``step_started`` (the fault is there when the step starts) or ``weights_changed`` (the
    worst case for the rollback: the step's own Route 53 calls have just used the second's budget)."""
    _reset(sb)
    pinned = setup == "pinned"
    # Default probe and gate settings: interval 500 ms, timeout 2 s; gates from bluegreen/config.
    config = sb.config_dict(steps=[10, 50, 100], bake=bake, ttl_margin="1s", check_interval="250ms",
                            probe_interval="500ms", probe_timeout="2s", gates={}, green_direct=pinned,
                            via_caching_resolver=setup == "public-cached")
    if setup == "public-dns-only":
        config["probes"][0]["direct_sides"] = False
    path = _write_config(tmp / f"detect-{fault}-{setup}-{inject_on}.yaml", config, tmp)
    stamps: dict[str, float] = {}

    def on_event(event) -> None:
        now = time.monotonic()
        stamps.setdefault(event.kind, now)
        if event.kind == inject_on and event.data.get("step") == "10%" and "fault" not in stamps:
            if fault == "error":
                sb.fail_green("error")
            else:
                sb.fail_green("slow", delay=3.0)
            stamps["fault"] = time.monotonic()

    code, out, err = _run_cli(["shift", "--to", "green", "--config", str(path), "--output", "json",
                               "--log-format", "json"], on_event=on_event)
    sb.green.set_mode("ok")
    result = json.loads(out) if out.strip() else {}
    fault_at = stamps.get("fault")
    verdict_at = marks.first_after(marks.failed_verdicts, fault_at) if fault_at else None
    accepted_at = marks.first_after(marks.sets, verdict_at) if verdict_at else None
    return {
        "fault": "HTTP 500" if fault == "error" else "3 s answers",
        "probes": PROBE_SETUPS[setup],
        "setup": setup,
        "inject_on": inject_on,
        "exit_code": code,
        "outcome": result.get("outcome"),
        "reason": result.get("reason"),
        "failed_at_step": (result.get("steps") or [{}])[-1].get("percent"),
        "detection_seconds": None if verdict_at is None else round(verdict_at - fault_at, 3),
        "rollback_submit_seconds": None if accepted_at is None else round(accepted_at - verdict_at, 4),
        "verdict_to_rolled_back_seconds": (None if "rolled_back" not in stamps or verdict_at is None
                                           else round(stamps["rolled_back"] - verdict_at, 4)),
        "final_weights": sorted(set(sb.weights().values())),
        "stderr_tail": err[-400:] if code not in (3,) else "",
    }


PROMETHEUS_ERROR_RATIO = ('(sum(rate(http_requests_total{cluster="{{cluster}}",code=~"5.."}[{{window}}])) or vector(0))'
                          ' / sum(rate(http_requests_total{cluster="{{cluster}}"}[{{window}}]))')


def metric_gate_run(sb, tmp: Path) -> dict:
    """Detection through a metric gate alone: a real Prometheus (Debian's package) scraping the sandbox's
    backends every second, a gate on green's 5xx ratio measured every 2 s over 3 s; the probes are set so
    they never fail. Green answers 500 from the moment the 10% change is in sync."""
    from bluegreen.sandbox.prometheus import PrometheusServer, prometheus_binary

    if prometheus_binary() is None:
        return {"skipped": "prometheus is not installed (apt-get install prometheus)", "detection_seconds": None}
    import urllib.request

    _reset(sb)
    targets = [f"{sb.blue.host}:{sb.http_port}", f"{sb.green.host}:{sb.http_port}"]
    with PrometheusServer(targets, scrape_interval=1.0) as prometheus:
        query = PROMETHEUS_ERROR_RATIO.replace("{{cluster}}", sb.blue_id).replace("{{window}}", "3s")
        deadline = time.monotonic() + 30
        while not prometheus.wait_for_samples(query, timeout=0.5) and time.monotonic() < deadline:
            urllib.request.urlopen(f"http://{sb.blue.host}:{sb.http_port}/", timeout=2).read()
        config = sb.config_dict(steps=[10, 100], bake="15s", ttl_margin="500ms", green_direct=False)
        config["probes"][0]["direct_sides"] = False
        config["gates"] = {"min_samples": 1000, "max_consecutive_failures": 1000, "min_success_ratio": 0.0,
                           "max_error_ratio_increase": 1.0, "traffic": {"enabled": False},
                           "metrics": [{"name": "green-5xx", "provider": "prometheus", "address": prometheus.url,
                                        "query": PROMETHEUS_ERROR_RATIO, "max": 0.05, "interval": "2s",
                                        "window": "3s"}]}
        path = _write_config(tmp / "metric-gate.yaml", config, tmp)
        stamps: dict[str, float] = {}

        def on_event(event) -> None:
            if event.kind == "weights_changed" and event.data.get("step") == "10%" and "fault" not in stamps:
                sb.fail_green("error")
                stamps["fault"] = time.monotonic()
            if event.kind == "gates_failed" and "failed" not in stamps:
                stamps["failed"] = time.monotonic()

        code, out, err = _run_cli(["shift", "--to", "green", "--config", str(path), "--output", "json",
                                   "--log-format", "json"], on_event=on_event)
        sb.green.set_mode("ok")
    result = json.loads(out) if out.strip() else {}
    detected = stamps.get("failed") is not None and "green-5xx" in (result.get("reason") or "")
    _reset(sb)
    return {"exit_code": code, "reason": result.get("reason"),
            "detection_seconds": round(stamps["failed"] - stamps["fault"], 3) if detected else None,
            "setting": "interval 2 s, window 3 s, scrape 1 s", "stderr_tail": "" if code == 3 else err[-400:]}


def share_run(sb, tmp: Path, *, cached: bool) -> dict:
    """A completed shift 0,10,50,100 with the public probe alone: each step's observed green share (the
    samples attributed to green after the TTL, side companions excluded) against the weight."""
    _reset(sb)
    config = sb.config_dict(steps=[0, 10, 50, 100], bake="4s", ttl_margin="500ms", green_direct=False,
                            via_caching_resolver=cached)
    config["probes"][0]["direct_sides"] = False
    path = _write_config(tmp / f"share-{cached}.yaml", config, tmp)
    code, out, err = _run_cli(["shift", "--to", "green", "--config", str(path), "--output", "json",
                               "--log-format", "json"])
    result = json.loads(out) if out.strip() else {}
    steps = []
    for step in result.get("steps", []):
        sides = step.get("sides") or {}
        green = (sides.get("green") or {}).get("share_percent")
        blue = (sides.get("blue") or {}).get("share_percent")
        observed = green if green is not None else (None if blue is None else round(100 - blue, 1))
        steps.append({"weight_green_percent": step["weights"]["green"], "observed_green_percent": observed})
    _reset(sb)
    return {"probes": "behind the caching resolver" if cached else "asking the weighted DNS server",
            "exit_code": code, "steps": steps}


def cold_rollback(sb, tmp: Path, runs: int) -> dict:
    """``bluegreen rollback`` in a fresh interpreter: spawn -> ChangeResourceRecordSets accepted."""
    config = sb.config_dict(steps=[10, 50, 100])
    path = _write_config(tmp / "rollback.yaml", config, tmp)
    wrapper = tmp / "rollback_wrapper.py"
    wrapper.write_text(
        "import json, sys, threading, time\n"
        "import bluegreen.routers.route53 as r53\n"
        "_set = r53.Route53Router.set\n"
        "def _timed(self, *a, **k):\n"
        "    ids = _set(self, *a, **k)\n"
        "    print('BENCH_ACCEPTED', time.time(), file=sys.__stderr__, flush=True)\n"
        "    return ids\n"
        "r53.Route53Router.set = _timed\n"
        "from bluegreen.cli import main\n"
        "code = main(sys.argv[1:])\n"
        "seen = {'kubernetes': any(m == 'kubernetes' or m.startswith('kubernetes.') for m in sys.modules),\n"
        "        'probes_module': 'bluegreen.adapters.probes' in sys.modules,\n"
        "        'probe_threads': [t.name for t in threading.enumerate() if 'probe' in t.name]}\n"
        "print('BENCH_MODULES', json.dumps(seen), file=sys.__stderr__, flush=True)\n"
        "sys.exit(code)\n", encoding="utf-8")
    env = dict(os.environ, **sb.aws_environ())
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    argv = ["rollback", "--to", "blue", "--config", str(path), "--output", "json", "--log-format", "json"]
    samples = []
    for _ in range(runs):
        sb.set_weights(50, 50)
        began = time.time()
        proc = subprocess.run([sys.executable, str(wrapper), *argv], capture_output=True, text=True, env=env,
                              timeout=60)
        ended = time.time()
        accepted = modules = None
        for line in proc.stderr.splitlines():
            if line.startswith("BENCH_ACCEPTED"):
                accepted = float(line.split()[1])
            elif line.startswith("BENCH_MODULES"):
                modules = json.loads(line.split(" ", 1)[1])
        samples.append({"exit_code": proc.returncode, "accepted_seconds": None if accepted is None
                        else round(accepted - began, 3), "process_seconds": round(ended - began, 3),
                        "seen": modules, "weights_after": sorted(set(sb.weights().values())),
                        "stderr_tail": "" if proc.returncode == 0 else proc.stderr[-400:]})
    # An independent check of the imports, as Python itself reports them.
    sb.set_weights(50, 50)
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "bluegreen", *argv], capture_output=True,
                          text=True, env=env, timeout=60)
    imported = [line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")]
    return {
        "runs": samples,
        "accepted_seconds_median": _median([s["accepted_seconds"] for s in samples]),
        "process_seconds_median": _median([s["process_seconds"] for s in samples]),
        "imports_kubernetes": any(s["seen"] is None or s["seen"]["kubernetes"] for s in samples)
        or any(m == "kubernetes" or m.startswith("kubernetes.") for m in imported),
        "imports_probes": any(s["seen"] is None or s["seen"]["probes_module"] for s in samples)
        or "bluegreen.adapters.probes" in imported,
        "probe_threads": sorted({t for s in samples if s["seen"] for t in s["seen"]["probe_threads"]}),
        "importtime_exit_code": proc.returncode,
        "modules_imported": len(imported),
    }


# -- 3: overhead per step ----------------------------------------------------------------------------------
def overhead_run(sb, marks: Marks, tmp: Path, *, steps: list[int], bake: float, margin: float) -> dict:
    _reset(sb)
    config = sb.config_dict(steps=steps, bake=f"{bake}s", ttl_margin=f"{margin}s",
                            check_interval="250ms", probe_interval="500ms", probe_timeout="2s", gates={})
    path = _write_config(tmp / "overhead.yaml", config, tmp)
    events: list[tuple[float, str, dict]] = []
    insync_from = len(marks.insync_waits)

    def on_event(event) -> None:
        events.append((time.monotonic(), event.kind, dict(event.data)))

    code, out, err = _run_cli(["shift", "--to", "green", "--config", str(path), "--output", "json",
                               "--log-format", "json"], on_event=on_event)
    result = json.loads(out) if out.strip() else {}
    waits = marks.insync_waits[insync_from:]
    steps = []
    previous = next((t for t, kind, _ in events if kind == "shift_started"), None)
    ttl = sb.ttl
    for t, kind, data in events:
        if kind != "step_passed":
            continue
        step_start = previous
        previous = t
        wait = sum(seconds for began, seconds in waits if step_start <= began <= t)
        changed = next((d for tt, k, d in events if k == "weights_changed" and step_start <= tt <= t), None)
        floor = wait + ttl + margin + bake
        wall = t - step_start
        steps.append({
            "step": data.get("step"), "wall_seconds": round(wall, 3), "floor_seconds": round(floor, 3),
            "insync_wait_seconds": round(wait, 4), "overhead_seconds": round(wall - floor, 3),
            "submit_seconds": changed and changed.get("submit_seconds"),
            "insync_plus_readback_seconds": changed and changed.get("insync_seconds"),
        })
    return {"exit_code": code, "outcome": result.get("outcome"), "ttl": ttl, "margin": margin, "bake": bake,
            "records": len(sb.records), "probes": [p["name"] for p in config["probes"]], "steps": steps,
            "stderr_tail": "" if code == 0 else err[-400:]}


# -- 4: Route 53 calls per step ----------------------------------------------------------------------------
class RecordingClient:
    """A boto3 client that timestamps every call bluegreen makes (after its own pacing)."""

    def __init__(self, client) -> None:
        self._client = client
        self.stamps: list[float] = []

    def __getattr__(self, name):
        attr = getattr(self._client, name)
        if not callable(attr) or name.startswith("_") or name in ("get_paginator", "close"):
            return attr

        def call(*args, **kwargs):
            self.stamps.append(time.monotonic())
            return attr(*args, **kwargs)

        return call


def max_in_window(stamps: list[float], window: float = 1.0, tolerance: float = 0.001) -> int:
    """The most calls in any half-open window [t, t + window). Stamps are taken just after the limiter lets
    a call go, so calls exactly one window apart may be stamped a few microseconds closer: ``tolerance``."""
    window -= tolerance
    stamps = sorted(stamps)
    best = start = 0
    for end, stamp in enumerate(stamps):
        while stamps[start] <= stamp - window:
            start += 1
        best = max(best, end - start + 1)
    return best


def calls_run(endpoint_url: str, records: int, zones: int, steps: list[int], tmp_tag: str) -> dict:
    from bluegreen.adapters.aws import client as make_client
    from bluegreen.routers.route53 import MAX_RECORDS_PER_BATCH, Route53Router
    from bluegreen.config import AwsConfig, RecordRef, RouteConfig
    from bluegreen.core.clock import SystemClock
    from bluegreen.core.engine import ShiftEngine
    from bluegreen.core.ports import NoProbes
    from bluegreen.core.verdict import Gates
    from bluegreen.core.plan import build_plan
    from bluegreen.core.weights import SideWeights
    from bluegreen.sandbox.faults import ThrottlingProxy
    from bluegreen.sandbox.zone import delete_zone, seed_zone

    per_zone = [records // zones + (1 if i < records % zones else 0) for i in range(zones)]
    zone_ids, refs = [], []
    for z, count in enumerate(per_zone):
        name = f"z{z}-{tmp_tag}.bench.example"
        names = [f"r{i}.{name}" for i in range(count)]
        zone_id = seed_zone(endpoint_url, name, names, ttl=1)
        zone_ids.append(zone_id)
        refs += [RecordRef(n, zone=zone_id) for n in names]
    try:
        with ThrottlingProxy(endpoint_url) as proxy:
            aws = AwsConfig(region="us-east-1", endpoint_url=proxy.endpoint_url)
            route = RouteConfig(driver="route53", hosted_zone=None, records=tuple(refs), blue="eks-blueprint-blue",
                                green="eks-blueprint-green", insync_timeout=120.0, retry_timeout=120.0)
            client = RecordingClient(make_client(aws, "route53", total_attempts=1, timeout=60.0))
            router = Route53Router(route, aws, client=client)
            snapshots: list[tuple[str, dict]] = []

            def on_event(event) -> None:
                if event.kind in ("shift_started", "step_passed"):
                    snapshots.append((event.data.get("step", "start"), proxy.counts()))

            plan = build_plan(target="green", steps=steps, start=SideWeights(100, 0), original_ttl=1,
                              cutover_ttl=None, ttl_margin=0.0, bake=0.0)
            engine = ShiftEngine(router, NoProbes(), SystemClock(), Gates(), on_event=on_event)
            began = time.monotonic()
            result = engine.run(plan)
            elapsed = time.monotonic() - began
            proxy_total = proxy.counts()
    finally:
        for zone_id in zone_ids:
            try:
                delete_zone(endpoint_url, zone_id)
            except Exception:  # noqa: BLE001 - best effort clean-up of moto's memory
                pass
    per_step = []
    for (label, before), (label_after, after) in zip(snapshots, snapshots[1:]):
        delta = {op: after.get(op, 0) - before.get(op, 0) for op in set(after) | set(before)}
        per_step.append({"step": label_after, **{k: v for k, v in sorted(delta.items()) if v}})
    # Steady state: the steps after the first (the first also resolves the zones).
    steady = per_step[1:] or per_step
    change = max(s.get("ChangeResourceRecordSets", 0) for s in steady)
    # Route 53's limit: 1,000 ResourceRecord elements per change, an UPSERT counting twice (4 per pair).
    expected = sum(-(-(4 * n) // MAX_RECORDS_PER_BATCH) for n in per_zone)
    return {
        "records": records, "zones": zones, "records_per_zone": per_zone, "outcome": result.outcome.value,
        "per_step": per_step,
        "change_calls_per_step": change,
        "change_calls_per_zone_per_step": round(change / zones, 2),
        "minimum_change_calls_per_step": expected,
        "get_change_per_step": max(s.get("GetChange", 0) for s in steady),
        "list_calls_per_step": max(s.get("ListResourceRecordSets", 0) for s in steady),
        "total_calls_per_step": max(sum(v for k, v in s.items() if k != "step") for s in steady),
        "baseline_change_calls_per_step": records,
        "calls_total": sum(proxy_total.values()),
        "max_calls_in_any_1s": max_in_window(client.stamps),
        "configured_rate": aws.route53_requests_per_second,
        "seconds": round(elapsed, 2),
    }


# -- 5: probe throughput and memory ------------------------------------------------------------------------
def _backend_process(nodelay: bool):
    code = (
        "import sys\n"
        "from bluegreen.sandbox.backends import ClusterBackend, _BackendHandler\n"
        f"_BackendHandler.disable_nagle_algorithm = {nodelay!r}\n"
        "backends = ClusterBackend().start()\n"
        "print(backends.port, flush=True)\n"
        "sys.stdin.read()\n"
        "backends.stop()\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            env=env)
    port = int(proc.stdout.readline())
    return proc, port


def probe_throughput(seconds: float, curl_requests: int, *, nodelay: bool) -> dict:
    from bluegreen.adapters.probes import HttpProber
    from bluegreen.config import ProbeConfig
    from bluegreen.sandbox.stack import CLUSTER_PATTERN

    proc, port = _backend_process(nodelay)
    try:
        url = f"http://127.0.0.3:{port}/"
        # A schedule far above what one process can do (5,000/s), so the engine's ceiling is what is measured.
        probe = ProbeConfig(name="green", url=url, cluster_pattern=CLUSTER_PATTERN, interval=0.0002, timeout=2.0)
        prober = HttpProber([probe])
        prober.start()
        time.sleep(0.5)  # warm up: threads and connections
        prober.drain()
        began = time.perf_counter()
        samples = []
        while time.perf_counter() - began < seconds:
            time.sleep(0.25)  # the engine drains every check_interval (250 ms)
            samples += prober.drain()
        elapsed = time.perf_counter() - began
        prober.stop()
        ok = sum(1 for s in samples if s.ok and s.cluster == "eks-blueprint-green")
        engine_rps = ok / elapsed
        curl_rps = curl_ok = None
        curl = shutil.which("curl")
        if curl:
            loop = (f"for i in $(seq {curl_requests}); do curl -s {url} | grep CLUSTER_NAME; done")
            began = time.perf_counter()
            out = subprocess.run(["bash", "-c", loop], capture_output=True, text=True, timeout=300).stdout
            curl_elapsed = time.perf_counter() - began
            curl_ok = out.count("eks-blueprint-green")
            curl_rps = curl_ok / curl_elapsed
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    return {"backend": "sandbox backend (own process)" + (", as shipped (TCP_NODELAY)" if nodelay
                                                          else ", Nagle on (a delayed-ACK stall per answer)"),
            "nodelay": nodelay,
            "engine_requests_per_second": round(engine_rps, 1), "engine_ok": ok,
            "engine_samples": len(samples), "engine_seconds": round(elapsed, 2),
            "curl_available": bool(curl), "curl_requests_per_second": None if curl_rps is None else round(curl_rps, 1),
            "curl_ok": curl_ok, "curl_requests": curl_requests, "method": SEEDS_SCRIPT,
            "ratio": None if not curl_rps else round(engine_rps / curl_rps, 1)}


def probe_memory(counts: list[int], buffer_capacity: int | None = None) -> dict:
    """Memory held by one probe's SampleWindow (a step's summary) and by the prober's buffer, as samples
    pile up: both must level off, whatever the number of samples."""
    from bluegreen.adapters.probes import DEFAULT_BUFFER_SIZE, SampleBuffer
    from bluegreen.core.verdict import Sample, SampleWindow

    ok = Sample(probe="green", at=0.0, ok=True, latency=0.004, status=200, cluster="eks-blueprint-green")
    bad = Sample(probe="green", at=0.0, ok=False, latency=2.0, status=500, cluster="eks-blueprint-green",
                 error="HTTP 500")

    def sample(i):
        # Distinct objects, as the prober makes them (a shared one would hide the cost of a kept sample).
        base = bad if i % 50 == 0 else ok
        return Sample(probe=base.probe, at=float(i), ok=base.ok, latency=base.latency + (i % 97) * 1e-5,
                      status=base.status, cluster=base.cluster, error=base.error)

    tracemalloc.start()
    try:
        window = SampleWindow()
        window_points = []
        done = 0
        base = tracemalloc.get_traced_memory()[0]
        for target in counts:
            while done < target:
                window.add(sample(done))
                done += 1
            window.summary()
            window_points.append({"samples": target, "bytes": tracemalloc.get_traced_memory()[0] - base})
        del window
        # The buffer, never drained (the worst case: nobody reads for hours): capped at its capacity.
        capacity = buffer_capacity or DEFAULT_BUFFER_SIZE
        buffer = SampleBuffer(capacity)
        buffer_points = []
        done = 0
        base = tracemalloc.get_traced_memory()[0]
        for target in (capacity // 2, capacity, 2 * capacity):
            while done < target:
                buffer.add(sample(done))
                done += 1
            buffer_points.append({"samples": target, "bytes": tracemalloc.get_traced_memory()[0] - base})
        dropped = buffer.dropped
        del buffer
    finally:
        tracemalloc.stop()
    grows = window_points[-1]["bytes"] > 1.5 * window_points[0]["bytes"] + 64 * 1024
    buffer_grows = buffer_points[-1]["bytes"] > 1.1 * buffer_points[1]["bytes"]
    return {"window": window_points, "window_bounded": not grows, "buffer": buffer_points,
            "buffer_capacity": capacity, "default_buffer_capacity": DEFAULT_BUFFER_SIZE, "buffer_dropped": dropped, "buffer_bounded": not buffer_grows}


# -- 6: start-up -------------------------------------------------------------------------------------------
def startup(argv: list[str], runs: int, env: dict | None = None) -> dict:
    times, codes = [], []
    for _ in range(runs):
        began = time.perf_counter()
        proc = subprocess.run([*_bluegreen_command(), *argv], capture_output=True, text=True, env=env, timeout=60)
        times.append(time.perf_counter() - began)
        codes.append(proc.returncode)
    return {"runs": [round(t, 3) for t in times], "median_seconds": round(statistics.median(times), 3),
            "exit_codes": sorted(set(codes))}


def help_imports() -> dict:
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "bluegreen", "--help"], capture_output=True,
                          text=True, timeout=60)
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    heavy = ("boto3", "botocore", "kubernetes", "requests", "moto", "yaml")
    return {name: name in imported for name in heavy}


# -- the run -----------------------------------------------------------------------------------------------
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts (CI): under a minute")
    parser.add_argument("--output", default="bench-results.json", help="where to write the JSON results")
    args = parser.parse_args(argv)
    quick = args.quick
    started = time.monotonic()

    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    figures: dict[str, dict] = {}
    table = Table()
    sections: dict[str, float] = {}
    mark = [time.monotonic()]

    def lap(name: str) -> None:
        now = time.monotonic()
        sections[name] = round(now - mark[0], 1)
        mark[0] = now

    # 6 and 5 first, with nothing else running in this process (the sandbox's DNS server polls moto).
    say("6. start-up ...")
    help_times = startup(["--help"], 3 if quick else 9)
    figures["6_startup"] = {"help": help_times, "help_imports": help_imports()}
    lap("6_help")

    say("5. probe throughput and memory ...")
    seconds = 1.5 if quick else 5.0
    curl_requests = 40 if quick else 300
    throughput = [probe_throughput(seconds, curl_requests, nodelay=True)]
    throughput.append(probe_throughput(seconds, curl_requests, nodelay=False))
    memory = probe_memory([10_000, 50_000, 100_000] if quick else [10_000, 100_000, 1_000_000],
                          buffer_capacity=20_000 if quick else None)
    figures["5_probe_throughput"] = {"runs": throughput, "memory": memory, "cpus": os.cpu_count()}
    lap("5_probes")

    from bluegreen.sandbox import Sandbox

    marks = Marks()
    marks.install()
    with tempfile.TemporaryDirectory(prefix="bluegreen-bench-") as tmp_name, \
            Sandbox(records=("burnham.example.com", "api.example.com"), ttl=1) as sb:
        tmp = Path(tmp_name)
        os.environ.update(sb.aws_environ())
        os.environ["XDG_STATE_HOME"] = str(tmp / "xdg-state")

        say("1/2. failure detection and rollback latency (default probe and gate settings) ...")
        runs = []
        setups = ("pinned", "public", "public-dns-only", "public-cached")
        for fault in ("error", "slow"):
            for setup in setups:
                if quick and (fault == "slow" or setup == "public-dns-only") and setup != "pinned":
                    runs.append({"fault": "HTTP 500" if fault == "error" else "3 s answers",
                                 "probes": PROBE_SETUPS[setup], "setup": setup, "skipped": "--quick",
                                 "detection_seconds": None, "rollback_submit_seconds": None,
                                 "verdict_to_rolled_back_seconds": None})
                    continue
                runs.append(detection_run(sb, marks, tmp, fault=fault, setup=setup, bake="30s"))
                say(f"   {runs[-1]['fault']}, {runs[-1]['probes']}: detected in {runs[-1]['detection_seconds']} s")
        worst = detection_run(sb, marks, tmp, fault="error", setup="pinned", bake="30s", inject_on="weights_changed")
        say(f"   worst case (fault right after the step's change): verdict -> change accepted in "
            f"{worst['rollback_submit_seconds']} s")
        figures["1_failure_detection"] = {"runs": runs, "reference_seconds": FLAGGER_DEFAULT_DETECTION,
                                          "reference": FLAGGER_LABEL}
        say("1. share error per step (public probe, observed vs weights) ...")
        figures["1_share_error"] = [share_run(sb, tmp, cached=False), share_run(sb, tmp, cached=True)]
        say("1. detection through a Prometheus metric gate ...")
        figures["1_metric_gate_detection"] = metric_gate_run(sb, tmp)
        lap("1_detection")

        say("2. bluegreen rollback as a cold process ...")
        cold = cold_rollback(sb, tmp, 1 if quick else 5)
        figures["2_rollback_latency"] = {
            "in_process": [{"fault": r["fault"], "probes": r["probes"],
                            "verdict_to_change_accepted_seconds": r["rollback_submit_seconds"],
                            "verdict_to_rolled_back_seconds": r["verdict_to_rolled_back_seconds"]} for r in runs],
            "verdict_to_change_accepted_median_seconds": _median([r["rollback_submit_seconds"] for r in runs]),
            "verdict_to_change_accepted_max_seconds": max((r["rollback_submit_seconds"] or 0) for r in runs
                                                          if r["rollback_submit_seconds"] is not None),
            "cold_process": cold,
            "worst_case_after_step_change_seconds": worst["rollback_submit_seconds"],
        }
        lap("2_cold_rollback")

        say("3. overhead per step ...")
        overhead = overhead_run(sb, marks, tmp, steps=[10, 100] if quick else [10, 50, 100],
                                bake=1.0 if quick else 10.0, margin=0.5 if quick else 1.0)
        figures["3_overhead_per_step"] = overhead
        lap("3_overhead")

        say("6. bluegreen status as a cold process ...")
        _reset(sb)
        status_path = _write_config(tmp / "status.yaml", sb.config_dict(), tmp)
        status_env = dict(os.environ, **sb.aws_environ())
        figures["6_startup"]["status"] = startup(["status", "--config", str(status_path)], 3 if quick else 7,
                                                 env=status_env)
        lap("6_status")

        say("4. Route 53 calls per step ...")
        sizes = {1: [1, 100], 3: [100]} if quick else {1: [1, 10, 100, 500], 3: [10, 100, 500]}
        calls = []
        for zones in (1, 3):
            for records in sizes[zones]:
                if records < zones:
                    continue  # one record cannot span three zones
                steps = [10, 100] if quick else [10, 50, 100]
                calls.append(calls_run(sb.endpoint_url, records, zones, steps, f"{records}x{zones}"))
                say(f"   {records} records in {zones} zone(s): {calls[-1]['per_step'][-1]}")
        figures["4_route53_calls"] = {"runs": calls}
        lap("4_calls")

    # -- the table ---------------------------------------------------------------------------------------------
    for r in figures["1_failure_detection"]["runs"]:
        d = r["detection_seconds"]
        # Target < 5 s for the pinned set-up and for public probes with per-side judgement (the default). A
        # public probe that only follows DNS sees green in about one answer in ten at weight 10, and behind a
        # caching resolver in one TTL in ten: reported side by side, not judged.
        judged = r.get("setup") in ("pinned", "public")
        table.add(f"1 detection, {r['fault']}, {r['probes']}", _fmt_s(d), FLAGGER_LABEL,
                  _fmt_ratio(_ratio(FLAGGER_DEFAULT_DETECTION, d)),
                  "< 5 s" if judged else "reported", (None if d is None else d < 5.0) if judged else None)
    gate = figures["1_metric_gate_detection"]
    bound = 2.0 + 1.0 + 1.5  # interval + scrape + the rate() window's first point
    table.add("1 detection, HTTP 500, Prometheus metric gate alone (interval 2 s, scrape 1 s)",
              gate.get("skipped") or _fmt_s(gate["detection_seconds"]), FLAGGER_LABEL,
              _fmt_ratio(_ratio(FLAGGER_DEFAULT_DETECTION, gate["detection_seconds"])),
              f"<= interval + scrape + 1.5 s ({bound:g} s)",
              None if gate["detection_seconds"] is None else gate["detection_seconds"] <= bound)
    for share in figures["1_share_error"]:
        errors = [abs(s["observed_green_percent"] - s["weight_green_percent"]) for s in share["steps"]
                  if s["observed_green_percent"] is not None]
        table.add(f"1 share error per step, {share['probes']} (max |observed - weight|)",
                  "-" if not errors else f"{max(errors):.0f} pts",
                  "-", "-", "reported", None,
                  "; ".join(f"{s['weight_green_percent']}%: {s['observed_green_percent']}" for s in share["steps"]))
    rb = figures["2_rollback_latency"]
    table.add("2 rollback: failing verdict -> change accepted (median of runs)",
              _fmt_s(rb["verdict_to_change_accepted_median_seconds"]), "-", "-", "< 250 ms",
              None if rb["verdict_to_change_accepted_median_seconds"] is None
              else rb["verdict_to_change_accepted_max_seconds"] < 0.25)
    table.add("2 rollback: worst of runs", _fmt_s(rb["verdict_to_change_accepted_max_seconds"]), "-", "-",
              "< 250 ms", rb["verdict_to_change_accepted_max_seconds"] < 0.25)
    w = rb["worst_case_after_step_change_seconds"]
    table.add("2 rollback right after a step change: verdict -> change accepted", _fmt_s(w), "-", "-",
              "< 250 ms", None if w is None else w < 0.25)
    acc = cold["accepted_seconds_median"]
    table.add("2 `bluegreen rollback` cold: start -> change accepted", _fmt_s(acc),
              f"process exit {_fmt_s(cold['process_seconds_median'])}", "-", "< 1 s",
              None if acc is None else acc < 1.0)
    table.add("2 `bluegreen rollback` imports kubernetes / starts probes",
              f"{_yes_no(cold['imports_kubernetes'])} / "
              f"{_yes_no(cold['imports_probes'] or bool(cold['probe_threads']))}",
              "-", "-", "no / no", not cold["imports_kubernetes"] and not cold["imports_probes"]
              and not cold["probe_threads"])
    steps = overhead["steps"]
    if steps:
        worst = max(steps, key=lambda s: s["overhead_seconds"])
        allowed = max(0.01 * worst["wall_seconds"], 1.0)
        table.add(f"3 overhead per step (worst of {len(steps)}; {overhead['records']} records, probes on)",
                  _fmt_s(worst["overhead_seconds"]), f"floor {_fmt_s(worst['floor_seconds'])}",
                  f"{worst['overhead_seconds'] / worst['wall_seconds'] * 100:.1f}% of step",
                  f"< {_fmt_s(allowed)}", worst["overhead_seconds"] < allowed)
    else:
        table.add("3 overhead per step", "-", "-", "-", "< max(1%, 1 s)", None, note="no step passed")
    pacing = 0
    for c in figures["4_route53_calls"]["runs"]:
        pacing = max(pacing, c["max_calls_in_any_1s"])
        table.add(f"4 ChangeRRSets/step, {c['records']} rec in {c['zones']} zone(s) "
                  f"(+{c['get_change_per_step']} GetChange, {c['list_calls_per_step']} List)",
                  f"{c['change_calls_per_step']} ({c['change_calls_per_zone_per_step']:g}/zone)",
                  f"{c['baseline_change_calls_per_step']} (1 per record)",
                  _fmt_ratio(_ratio(c["baseline_change_calls_per_step"], c["change_calls_per_step"])),
                  f"{c['minimum_change_calls_per_step']} (batch limits)",
                  c["change_calls_per_step"] <= c["minimum_change_calls_per_step"])
    rate = figures["4_route53_calls"]["runs"][0]["configured_rate"] if figures["4_route53_calls"]["runs"] else 4.0
    table.add("4 Route 53 calls in any 1 s window (all runs)", str(pacing), "-", "-",
              f"<= {rate:g} (configured; Route 53 allows 10/s, burst 50)", pacing <= rate)
    for t in throughput:
        rps, curl_rps = t["engine_requests_per_second"], t["curl_requests_per_second"]
        # The target is judged on the backend as shipped; the Nagle row shows what a server that writes
        # headers and body separately without TCP_NODELAY costs any keep-alive client, side by side.
        table.add(f"5 probe req/s, {t['backend']}", f"{rps:,.0f}/s",
                  "curl not installed" if not t["curl_available"] else f"{curl_rps:,.0f}/s (curl | grep loop)",
                  _fmt_ratio(t["ratio"]), ">= 10x and >= 1,000/s" if t["nodelay"] else "reported",
                  (rps >= 1000 and (t["ratio"] is None or t["ratio"] >= 10)) if t["nodelay"] else None)
    mem = memory
    table.add(f"5 memory: SampleWindow after {mem['window'][0]['samples']:,} -> {mem['window'][-1]['samples']:,} "
              "samples", f"{mem['window'][0]['bytes'] / 1024:,.0f} -> {mem['window'][-1]['bytes'] / 1024:,.0f} KiB",
              "-", "-", "bounded", mem["window_bounded"])
    table.add(f"5 memory: undrained buffer at 1x -> 2x capacity ({mem['buffer_capacity']:,})",
              f"{mem['buffer'][1]['bytes'] / 2**20:,.1f} -> {mem['buffer'][2]['bytes'] / 2**20:,.1f} MiB",
              "-", "-", "bounded", mem["buffer_bounded"])
    h = figures["6_startup"]["help"]["median_seconds"]
    table.add("6 `bluegreen --help` cold (median)", _fmt_s(h), "-", "-", "< 300 ms", h < 0.3)
    s = figures["6_startup"]["status"]["median_seconds"]
    table.add("6 `bluegreen status` cold (median, sandbox)", _fmt_s(s), "-", "-", "reported", None)

    duration = time.monotonic() - started
    results = {
        "mode": "quick" if quick else "full",
        "command": "python scripts/bench.py" + (" --quick" if quick else ""),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "seconds": round(duration, 1),
        "section_seconds": sections,
        "figures": figures,
        "table": table.rows,
    }
    Path(args.output).write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    print(table.render())
    print(f"\n{results['mode']} run in {duration:.0f} s on {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}; results written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
