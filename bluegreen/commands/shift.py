"""``bluegreen shift --to green``: move traffic step by step, with probes and automatic rollback.

Everything the run uses is built and checked before the lock is taken: the whole config, ``--steps``, the
router (and that its writes will stick), the probes, the notifier, and `verify` on the target. Then, under
the lock, the weights are read again, the plan is made from them, and the engine runs it."""

from __future__ import annotations

import argparse

from bluegreen.commands.common import EXIT_CODES_HELP, emit, isatty, load, output, positive_int, setup_logging
from bluegreen.environment import Environment
from bluegreen.errors import ConfigError, PreflightError, ShiftFailed, exit_code_for

NAME = "shift"
DESCRIPTION = ("Move traffic to a side through the steps (percent on the target), holding each step for the "
               "DNS TTL in force plus a margin and the bake time while probes and gates judge both sides. A "
               "failed gate rolls back (or holds, per gates.on_fail). Runs under the migration's lock.")
EPILOG = EXIT_CODES_HELP


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--to", required=True, choices=("blue", "green"), help="the side that receives traffic")
    parser.add_argument("--steps", help="percent on the target side, strictly increasing, e.g. 0,10,50,100 "
                                        "(default: shift.steps)")
    parser.add_argument("--bake", help="override shift.bake, e.g. 30s")
    parser.add_argument("--dry-run", action="store_true",
                        help="check everything and print the plan and its duration; change nothing")
    parser.add_argument("--skip-verify", action="store_true",
                        help="do not run `verify` on the target cluster first (logged as such)")
    parser.add_argument("--preflight", action="store_true",
                        help="run `preflight` on the target first; error-level findings refuse the shift "
                             "(also preflight.gate_shift: true)")
    parser.add_argument("--resume", action="store_true",
                        help="read the live weights, find where they sit in the plan, continue from the next step")
    parser.add_argument("--max-steps", type=positive_int, metavar="N",
                        help="advance at most N weight changes in this run (cutovers spread over days)")
    parser.add_argument("--not-before", metavar="TIME",
                        help="outside the window, exit 0 doing nothing (HH:MM local time, or ISO 8601 with offset)")
    parser.add_argument("--not-after", metavar="TIME", help="end of the window (same forms as --not-before)")


def _steps(args: argparse.Namespace, config) -> tuple[int, ...]:
    from bluegreen.core.plan import PlanError, parse_steps

    if args.steps is None:
        return config.shift.steps
    try:
        return parse_steps(args.steps)  # '' is an error like ',' — never "the config's steps"
    except PlanError as error:
        raise ConfigError(f"--steps: {error}", hint="e.g. --steps 0,10,50,100") from None


def _bake(args: argparse.Namespace, config) -> float:
    if args.bake is None:
        return config.shift.bake
    from bluegreen.config.fields import Fields

    return Fields({"--bake": args.bake}, "").duration("--bake", config.shift.bake)


def run(args: argparse.Namespace, env: Environment) -> int:
    from bluegreen.core.clock import SystemClock
    from bluegreen.core.schedule import check_window

    log_format = setup_logging(args, env)
    config = load(args, env)
    steps = _steps(args, config)
    bake = _bake(args, config)
    window = check_window(args.not_before, args.not_after, SystemClock())
    if not window.inside:
        emit(args, env, {"outcome": "outside_window", "reason": window.reason},
             f"outside the time window: {window.reason}; nothing done")
        return 0
    from bluegreen.routers import build_router

    router = build_router(config)
    try:
        return _run(args, env, config, router, steps, bake, log_format)
    finally:
        router.close()


def _assemble(args, config, live, steps, bake):
    from bluegreen.core.plan import PlanError, UnsafeStart, assemble_plan

    try:
        return assemble_plan(live=live, target=args.to, steps=steps, cutover_ttl=config.route.ttl,
                             alias_ttl=config.route.alias_ttl, ttl_margin=config.shift.ttl_margin, bake=bake,
                             resume=args.resume, max_steps=args.max_steps)
    except UnsafeStart as error:
        raise PreflightError(str(error), hint=error.hint) from None
    except PlanError as error:
        raise ConfigError(str(error)) from None


def _run(args, env, config, router, steps, bake, log_format) -> int:
    from bluegreen import render

    prober = _prober(config)
    notifier = _notifier(config, env)
    metric_source = _metric_source(config, env)  # every metric gate answers for blue, or exit 2 naming it
    _verify_target(args, config)
    _preflight_target(args, config)
    live = router.read()  # the records exist and agree with each other
    router.preflight(live)  # e.g. records owned by external-dns, objects missing: refused before the lock
    if args.dry_run:
        budget = _assemble(args, config, live, steps, bake)
        data = {"dry_run": True, "plan": render.plan_dict(budget.plan, 0.0), "deferred": list(budget.deferred)}
        text = render.plan_text(budget.plan, 0.0)
        if budget.deferred:
            text += f"\nleft for later runs (--max-steps): {', '.join(f'{p}%' for p in budget.deferred)}"
        if config.gates.metrics:
            gates = [render.metric_gate_line(spec) for spec in config.gates.metrics]
            data["metric_gates"] = gates
            text += "\nmetric gates (each checked against blue just now):\n" + "\n".join(f"  {g}" for g in gates)
        emit(args, env, data, text)
        return 0
    # The plan itself is made under the lock: another run may be moving the weights right now (exit 4).
    return _locked_shift(args, env, config, router, prober, notifier, steps, bake, log_format, metric_source)


def _metric_source(config, env: Environment):
    """The metric and alarm gates' source, checked once before any change: each query parses and returns
    data for blue (Prometheus), each metric exists for blue's dimensions (CloudWatch)."""
    if not config.gates.metrics:
        return None
    from bluegreen.adapters.aws import client
    from bluegreen.adapters.metrics import MetricSources

    names = {config.route.blue: "blue", config.route.green: "green"}
    clusters = {side: ident for ident, side in names.items()}
    if config.clusters is not None:
        # An omitted side (the kubeconfig's current context) has no name before it is reached: keep the
        # Route 53 set identifier for it.
        clusters = {side: config.clusters.side(side).name or clusters[side] for side in ("blue", "green")}
    from bluegreen.core.clock import SystemClock

    # The run's stop event ends a source's retries at once (SIGTERM while Prometheus does not answer).
    source = MetricSources(clusters=clusters, cloudwatch=lambda: client(config.aws, "cloudwatch"),
                           environ=env.environ, clock=SystemClock(env.stop))
    for spec in config.gates.metrics:
        source.preflight_check(spec)
    return source


def _locked_shift(args, env, config, router, prober, notifier, steps, bake, log_format, metric_source=None) -> int:
    from bluegreen import render
    from bluegreen.core.clock import SystemClock
    from bluegreen.core.engine import OnInterrupt, ShiftEngine
    from bluegreen.core.ports import NoProbes
    from bluegreen.core.state import origin_side_for
    from bluegreen.logs import LogSink
    from bluegreen.runs import LockedRun

    with LockedRun(config, env, "shift", notifier=notifier) as run:
        if notifier is not None:
            notifier.run_id = run.run_id
        # The plan is made under the lock, from weights read under the lock.
        live = router.read()
        budget = _assemble(args, config, live, steps, bake)
        plan = budget.plan
        previous = run.store.last_run(config.name, "shift")
        run.start({
            "target": plan.target,
            "origin_side": origin_side_for(plan.start.blue, plan.start.green, plan.target, previous),
            "start": plan.start.as_dict(), "ttl": plan.original_ttl, "steps": [s.percent for s in plan.steps],
            "skipped": list(plan.skipped), "deferred": list(budget.deferred), "max_steps": args.max_steps,
            "resume": args.resume, "config_digest": _digest(config),
        })
        run.check_stop()
        panel = _live_panel(env, config, log_format, run.run_id)  # None off a terminal: logs as before
        sink = LogSink(panel.log_stream if panel else env.stderr,
                       tty=panel is None and log_format == "console" and isatty(env.stderr),
                       compact=log_format == "console")

        def on_event(event) -> None:
            if panel is not None:
                panel(event)
            if panel is None or event.kind != "hold":  # the panel shows the hold; no countdown line
                sink(event)
            run(event)
            if env.on_event is not None:
                env.on_event(event)

        engine = ShiftEngine(
            router, prober if plan.steps else NoProbes(), SystemClock(env.stop), config.gates,
            on_event=on_event, check_interval=config.shift.check_interval, stop=env.stop,
            on_interrupt=OnInterrupt(config.shift.on_interrupt), lock_lost=run.lock_lost,
            check_lock=lambda: run.check_lock(config.shift.check_interval), sides=_side_map(config, prober),
            metric_source=metric_source,
        )
        try:
            result = engine.run(plan, live=live)
        finally:
            if panel is not None:
                panel.close()
        if budget.deferred and result.outcome.value == "completed":
            result.reason = (f"advanced {len(plan.steps)} step(s) (--max-steps {args.max_steps}); "
                             f"left for later runs: {', '.join(f'{p}%' for p in budget.deferred)}")
        code = exit_code_for(result.outcome.value)
        run.finish(result.outcome.value, code, result.reason)
    data = result.as_dict()
    data.update(exit_code=int(code), run_id=run.run_id, migration=config.name, deferred=list(budget.deferred))
    emit(args, env, data, render.result_text(data))
    return code


def _side_map(config, prober):
    """What tells the sides apart in the probes' samples: each side's record values (resolved for aliases)
    and the names its cluster answers with (the SetIdentifier, the cluster's name)."""
    if not config.probes:
        return None
    from bluegreen.adapters.probes import SideAddressBook
    from bluegreen.commands.common import cluster_sides

    return SideAddressBook(config.probes, cluster_sides(config), prober=prober)


def _digest(config) -> str | None:
    """A short digest of the config file, so a run can be tied to the exact config it ran with."""
    import hashlib

    if config.path is None:
        return None
    try:
        return hashlib.sha256(config.path.read_bytes()).hexdigest()[:12]
    except OSError:
        return None


def _prober(config):
    from bluegreen.core.ports import NoProbes

    if not config.probes:
        return NoProbes()
    from bluegreen.adapters.probes import HttpProber

    return HttpProber(config.probes)


def _notifier(config, env: Environment):
    from bluegreen.adapters.notify import Notifier

    return Notifier.from_config(config, environ=env.environ)


def _verify_target(args: argparse.Namespace, config) -> None:
    """With clusters configured, the target must pass `verify` before any weight changes."""
    if config.clusters is None:
        return
    import structlog

    log = structlog.get_logger("bluegreen")
    if args.skip_verify:
        log.warning("verify_skipped", cluster=args.to, reason="--skip-verify")
        return
    from bluegreen.clusters.verify import run_verify

    report = run_verify(config, cluster=args.to)
    if not report.ready:
        reasons = "\n  - ".join(report.reasons)
        raise ShiftFailed(
            f"{args.to} is not ready for traffic; no weight was changed:\n  - {reasons}",
            hint=f"fix the reasons above (`bluegreen verify --cluster {args.to}`), or pass --skip-verify")
    log.info("verify_passed", cluster=args.to)


def _preflight_target(args: argparse.Namespace, config) -> None:
    """With --preflight (or preflight.gate_shift), error-level preflight findings on the target refuse the
    shift before any weight changes (exit 3)."""
    if not (getattr(args, "preflight", False) or config.preflight.gate_shift):
        return
    from bluegreen.clusters.preflight import run_cluster_preflight

    report = run_cluster_preflight(config, args.to)
    import structlog

    structlog.get_logger("bluegreen").info("preflight_checked", cluster=args.to, passed=not report.has_errors,
                                           counts=report.as_dict()["counts"], ignored=report.ignored)
    if report.has_errors:
        errors = [f"{f.code} {f.object}: {f.what}" for f in report.findings if f.severity.value == "error"]
        raise ShiftFailed(
            f"preflight found {len(errors)} error(s) on {args.to}; no weight was changed:\n  - "
            + "\n  - ".join(errors),
            hint=f"fix them (`bluegreen preflight --cluster {args.to}` explains each), or silence one with "
                 "preflight.ignore")


def _live_panel(env: Environment, config, log_format: str, run_id: str):
    """On a terminal with console logs: the live panel on stderr, with log lines printed above it. None
    elsewhere (a pipe, a CI log, a Job, TERM=dumb, --log-format json), where the logs tell the story."""
    if log_format != "console":
        return None
    from bluegreen import logs
    from bluegreen.output.panel import LivePanel

    panel = LivePanel(env.stderr, gates=config.gates, environ=env.environ)
    if panel.mode != "live":
        return None
    panel.view.run_id, panel.view.migration = run_id, config.name
    logs.configure("console", panel.log_stream)
    return panel
