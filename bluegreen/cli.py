"""The command line: the one place that wires adapters to the core and maps errors to exit codes.

Imports are lazy on purpose: ``bluegreen --help`` must start fast, and ``bluegreen rollback`` must never
import kubernetes or start probes (it is the on-call engineer's emergency exit).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from dataclasses import dataclass, field
from typing import IO, Callable, Sequence

from bluegreen.errors import BlueGreenError, ConfigError, ExitCode, PreflightError

EXIT_CODES_HELP = """exit codes:
  0  done
  1  unexpected error
  2  bad input or configuration (nothing was changed)
  3  the shift failed its gates and traffic was rolled back, or verify found the cluster not ready
  4  another run holds the lock
  5  aborted: the weights were changed by someone else during the run
"""


@dataclass
class Environment:
    """What a command may touch besides its arguments, so tests run the real CLI in-process."""

    stdout: IO[str] = field(default_factory=lambda: sys.stdout)
    stderr: IO[str] = field(default_factory=lambda: sys.stderr)
    environ: dict = field(default_factory=lambda: os.environ)
    stop: threading.Event = field(default_factory=threading.Event)
    # Hooks for tests and the demo: called with each engine event, after logging.
    on_event: Callable | None = None
    install_signal_handlers: bool = True

    def print(self, text: str = "") -> None:
        self.stdout.write(text + "\n")
        self.stdout.flush()


# -- argument parsing ----------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS,
                        help="configuration file (default: $BLUEGREEN_CONFIG or ./bluegreen.yaml)")
    common.add_argument("--output", choices=("text", "json"), default=argparse.SUPPRESS,
                        help="result format on stdout (default: text)")
    common.add_argument("--log-format", choices=("console", "json"), default=argparse.SUPPRESS,
                        help="log format on stderr (default: console on a TTY, json otherwise)")

    parser = argparse.ArgumentParser(
        prog="bluegreen",
        description="Move live traffic between two Kubernetes clusters with Route 53 weighted records: "
                    "step by step, with probes, and automatic rollback.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    from bluegreen import __version__

    parser.add_argument("--version", action="version", version=f"bluegreen {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    status = sub.add_parser("status", parents=[common], help="show the weights, share and TTL of every record")
    status.set_defaults(handler=cmd_status)

    shift = sub.add_parser("shift", parents=[common], help="move traffic to a side, step by step, with probes",
                           epilog=EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    shift.add_argument("--to", required=True, choices=("blue", "green"), help="the side that receives traffic")
    shift.add_argument("--steps", help="percent on the target side, strictly increasing, e.g. 0,10,50,100 "
                                       "(default: shift.steps)")
    shift.add_argument("--bake", help="override shift.bake, e.g. 30s")
    shift.add_argument("--dry-run", action="store_true", help="print the plan and its duration; change nothing")
    shift.add_argument("--skip-verify", action="store_true",
                       help="do not run `verify` on the target cluster first (logged as such)")
    shift.add_argument("--resume", action="store_true",
                       help="read the live weights, find where they sit in the plan, continue from the next step")
    shift.add_argument("--max-steps", type=_positive_int, metavar="N",
                       help="advance at most N weight changes in this run (cutovers spread over days)")
    shift.add_argument("--not-before", metavar="TIME",
                       help="outside the window, exit 0 doing nothing (HH:MM local time, or ISO 8601 with offset)")
    shift.add_argument("--not-after", metavar="TIME", help="end of the window (same forms as --not-before)")
    shift.set_defaults(handler=cmd_shift)

    rollback = sub.add_parser("rollback", parents=[common],
                              help="emergency: all traffic to one side now (works while a shift runs)")
    rollback.add_argument("--to", choices=("blue", "green"),
                          help="side to put all traffic on (default: the side that held all traffic before the "
                               "last shift, else blue)")
    rollback.add_argument("--dry-run", action="store_true", help="print what would change; change nothing")
    rollback.set_defaults(handler=cmd_rollback)

    verify = sub.add_parser("verify", parents=[common],
                            help="is a cluster ready for traffic? (ArgoCD metadata, applications, workloads)")
    verify.add_argument("--cluster", choices=("blue", "green"), default="green", help="the cluster to check")
    verify.set_defaults(handler=cmd_verify)

    provision = sub.add_parser("provision", parents=[common],
                               help="target, clone (--from) or build (provision.command) a cluster")
    provision.add_argument("side", nargs="?", default="green", choices=("blue", "green"))
    provision.add_argument("--from", dest="from_side", choices=("blue", "green"),
                           help="clone this side's cluster through the EKS API")
    provision.add_argument("--version", dest="k8s_version", metavar="X.Y", help="Kubernetes version of the clone")
    provision.add_argument("--allow-skip", action="store_true",
                           help="allow a jump of more than one minor version from the source")
    provision.add_argument("--dry-run", action="store_true", help="print what would be created; change nothing")
    provision.set_defaults(handler=cmd_provision)

    history = sub.add_parser("history", parents=[common], help="list the migration's runs, or show one run")
    history.add_argument("run_id", nargs="?", metavar="RUN_ID", help="show this run with every event")
    history.add_argument("--limit", type=_positive_int, default=20, help="how many runs to list (default 20)")
    history.set_defaults(handler=cmd_history)

    init_state = sub.add_parser("init-state", parents=[common],
                                help="create the state store (the DynamoDB table, or the SQLite file)")
    init_state.set_defaults(handler=cmd_init_state)

    demo = sub.add_parser("demo", parents=[common],
                          help="the whole cutover against the embedded sandbox (needs the sandbox extra)")
    demo.add_argument("--fail-green", action="store_true", help="make green fail at 10%% to show the rollback")
    demo.add_argument("--green-missing-addon", action="store_true",
                      help="green's ArgoCD cluster secret lacks an addon flag: verify fails, shift refuses")
    demo.set_defaults(handler=cmd_demo)
    return parser


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return int(text)


# -- composition helpers -------------------------------------------------------------------------------
def _load(args: argparse.Namespace, env: Environment):
    from bluegreen.config import CONFIG_ENV, DEFAULT_CONFIG, load_config
    from pathlib import Path

    path = Path(getattr(args, "config", None) or env.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)
    return load_config(path)


def _router(config, *, writes: bool = False):
    """The weight router for ``route.driver``. ``writes``: a shift will change weights, so check first
    that the writes can stick."""
    from bluegreen.adapters.kube_routers import build_router

    router = build_router(config)
    if not writes:
        return router
    if config.route.driver != "route53":
        router.preflight()  # every Ingress/Service or cluster secret exists and names its side
        return router
    owners = router.external_dns_owners()
    if owners:
        listed = ", ".join(f"{name} (owner {owner})" for name, owner in sorted(owners.items()))
        raise PreflightError(
            f"external-dns owns {listed}: a weight written into Route 53 directly would be put back on "
            "its next sync",
            hint="set route.driver: external-dns (weights on the Ingress/Service annotations), or "
                 "route.driver: argocd (weights on the ArgoCD cluster secret)",
        )
    return router


def _output(args: argparse.Namespace) -> str:
    return getattr(args, "output", None) or "text"


def _setup_logging(args: argparse.Namespace, env: Environment) -> str:
    from bluegreen import logs

    return logs.configure(getattr(args, "log_format", None), env.stderr)


def _isatty(stream: IO[str]) -> bool:
    return bool(getattr(stream, "isatty", lambda: False)())


class _LockedRun:
    """A command that changes weights: holds the migration's lock (renewed while it lives), journals the
    run, and sends notifications. ``take_over`` (rollback) never waits for the lock: it takes it."""

    def __init__(self, config, env: Environment, command: str, *, take_over: bool = False) -> None:
        from bluegreen.adapters.state_sqlite import open_state_store
        from bluegreen.core.clock import SystemClock
        from bluegreen.core.state import Holder, new_run_id, parse_state_config

        self.config = config
        self.env = env
        self.command = command
        self.clock = SystemClock()
        self.state = parse_state_config(config.sections.get("state"))
        self.store = open_state_store(config, self.clock, self.state)
        self.run_id = new_run_id(self.clock)
        self.holder = Holder.current(self.clock, run_id=self.run_id, command=command)
        self.take_over = take_over
        self.lease = None
        self.keeper = None
        self.journal = None
        self.notifier = None
        self.finished = False
        self.lock_lost = threading.Event()

    def __enter__(self) -> "_LockedRun":
        import structlog

        if self.take_over:
            self.lease = self.store.take_over(self.config.name, self.holder, self.state.lease_seconds)
            if self.lease.previous is not None:
                structlog.get_logger("bluegreen").warning(
                    "lock_taken_over", migration=self.config.name, previous=self.lease.previous.describe())
        else:
            self.lease = self.store.acquire(self.config.name, self.holder, self.state.lease_seconds)
        from bluegreen.core.state import LeaseKeeper

        def lost(error) -> None:
            self.record("lock_lost", {"holder": str(error)})
            self.env.stop.set()

        self.keeper = LeaseKeeper(self.store, self.lease, clock=self.clock, lost=self.lock_lost, on_lost=lost)
        self.keeper.start()
        return self

    def start(self, plan: dict) -> None:
        from bluegreen.adapters.notify import Notifier
        from bluegreen.journal_sink import JournalSink

        self.store.start_run(self.config.name, self.command, plan, run_id=self.run_id, holder=self.holder)
        self.journal = JournalSink(self.store, self.run_id)
        self.notifier = Notifier.from_config(self.config, run_id=self.run_id, environ=self.env.environ)

    def __call__(self, event) -> None:
        """The run's EventSink: journal and notifications."""
        if self.journal is not None:
            self.journal(event)
        if self.notifier is not None:
            self.notifier(event)

    def record(self, kind: str, data: dict) -> None:
        if self.journal is not None:
            self.journal.record(kind, data)
        if self.notifier is not None:
            self.notifier.notify(kind, data)

    def finish(self, outcome: str, exit_code: int, reason: str | None) -> None:
        if self.journal is not None and not self.finished:
            self.store.finish(self.run_id, outcome, int(exit_code), reason)
        self.finished = True

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc is not None and not self.finished:
                code = getattr(exc, "exit_code", ExitCode.ERROR)
                from bluegreen.errors import shorten

                self.record("run_failed", {"reason": shorten(str(exc))})
                self.finish("failed", int(code), shorten(str(exc)))
        finally:
            if self.keeper is not None:
                self.keeper.stop()
            if self.lease is not None:
                self.store.release(self.lease)
            if self.notifier is not None:
                self.notifier.close(5.0)
            self.store.close()


# -- commands ------------------------------------------------------------------------------------------
def cmd_status(args: argparse.Namespace, env: Environment) -> int:
    from bluegreen import render

    config = _load(args, env)
    _setup_logging(args, env)
    state = _router(config).read()
    clusters = None
    if "clusters" in config.sections:
        from bluegreen.verify import cluster_summaries

        clusters = cluster_summaries(config)
    if _output(args) == "json":
        env.print(render.to_json({"name": config.name, **render.live_state_dict(state),
                                  **({"clusters": clusters} if clusters is not None else {})}))
    else:
        env.print(f"migration {config.name}")
        env.print(render.live_state_text(state))
        if clusters is not None:
            env.print("")
            env.print(render.clusters_text(clusters))
    return ExitCode.OK


def cmd_shift(args: argparse.Namespace, env: Environment) -> int:
    from bluegreen import render
    from bluegreen.core.clock import SystemClock
    from bluegreen.core.durations import parse_duration
    from bluegreen.core.engine import OnInterrupt, ShiftEngine
    from bluegreen.core.state import origin_side_for, parse_state_config
    from bluegreen.core.weights import PlanError, build_plan, parse_steps
    from bluegreen.schedule import check_window, limit_steps

    config = _load(args, env)
    parse_state_config(config.sections.get("state"))  # a bad state section is exit 2 before anything else
    try:
        steps = parse_steps(args.steps) if args.steps else config.shift.steps
    except PlanError as error:
        raise ConfigError(f"--steps: {error}", hint="e.g. --steps 0,10,50,100") from None
    try:
        bake = parse_duration(args.bake, key="--bake") if args.bake else config.shift.bake
    except ValueError as error:
        raise ConfigError(str(error)) from None
    window = check_window(args.not_before, args.not_after, SystemClock())
    log_format = _setup_logging(args, env)
    if not window.inside:
        env.print(render.to_json({"outcome": "outside_window", "reason": window.reason})
                  if _output(args) == "json" else f"outside the time window: {window.reason}; nothing done")
        return ExitCode.OK
    router = _router(config, writes=not args.dry_run)
    _verify_before_shift(args, config, env)

    def plan_from_live():
        live = router.read()
        start = live.weights()
        if start is None:
            raise PreflightError(
                "the managed records do not all have the same weights: "
                + ", ".join(f"{r.name} {r.type} {r.weights}" for r in live.records),
                hint="bring them together first, e.g. `bluegreen rollback --to blue`",
            )
        if start.all_zero:
            raise PreflightError("every weight is 0, which Route 53 answers as an equal split",
                                 hint="run `bluegreen rollback --to blue` to put traffic on one side first")
        plan = build_plan(target=args.to, steps=steps, start=start, original_ttl=live.ttl(),
                          cutover_ttl=config.route.ttl, ttl_margin=config.shift.ttl_margin, bake=bake,
                          resume=args.resume)
        on_target = start.percent_on(args.to)
        if plan.steps and on_target > plan.steps[0].percent:
            raise PreflightError(
                f"{args.to} already has {on_target:g}% of traffic ({start}), more than the first step "
                f"({plan.steps[0].percent}%): running this plan would move traffic back",
                hint=f"use --resume to continue from there, or start the steps at {on_target:g} or above",
            )
        return limit_steps(plan, args.max_steps)

    if args.dry_run:
        budget = plan_from_live()
        data = {"dry_run": True, "plan": render.plan_dict(budget.plan, 0.0), "deferred": list(budget.deferred)}
        text = render.plan_text(budget.plan, 0.0)
        if budget.deferred:
            text += f"\nleft for later runs (--max-steps): {', '.join(f'{p}%' for p in budget.deferred)}"
        env.print(render.to_json(data) if _output(args) == "json" else text)
        return ExitCode.OK

    from bluegreen.core.ports import NoProbes
    from bluegreen.logs import LogSink

    with _LockedRun(config, env, "shift") as run:
        # The plan is made under the lock, from weights read under the lock.
        budget = plan_from_live()
        plan = budget.plan
        previous = run.store.last_run(config.name, "shift")
        run.start({
            "target": plan.target, "origin_side": origin_side_for(plan.start.blue, plan.start.green, plan.target,
                                                                  previous),
            "start": str(plan.start), "ttl": plan.original_ttl, "steps": [s.percent for s in plan.steps],
            "skipped": list(plan.skipped), "deferred": list(budget.deferred), "max_steps": args.max_steps,
            "resume": args.resume,
        })
        prober = NoProbes()
        if config.probes and plan.steps:
            from bluegreen.adapters.probes import HttpProber

            prober = HttpProber(config.probes)
        sink = LogSink(env.stderr, tty=log_format == "console" and _isatty(env.stderr))

        def on_event(event) -> None:
            sink(event)
            run(event)
            if env.on_event is not None:
                env.on_event(event)

        engine = ShiftEngine(
            router, prober, SystemClock(env.stop), config.gates,
            on_event=on_event, check_interval=config.shift.check_interval, stop=env.stop,
            on_interrupt=OnInterrupt(config.shift.on_interrupt), lock_lost=run.lock_lost,
        )
        with _signals_set(env):
            result = engine.run(plan, start_is_fresh=True)
        if budget.deferred and result.outcome.value == "completed":
            result.reason = (f"advanced {len(plan.steps)} step(s) (--max-steps {args.max_steps}); "
                             f"left for later runs: {', '.join(f'{p}%' for p in budget.deferred)}")
        run.finish(result.outcome.value, result.exit_code, result.reason)
    data = result.as_dict()
    data["run_id"] = run.run_id
    data["deferred"] = list(budget.deferred)
    env.print(render.to_json(data) if _output(args) == "json" else render.result_text(data))
    return result.exit_code


def _verify_before_shift(args: argparse.Namespace, config, env: Environment) -> None:
    """With clusters configured, the target must pass `verify` before any weight changes."""
    if "clusters" not in config.sections:
        return
    import structlog

    log = structlog.get_logger("bluegreen")
    if args.skip_verify:
        log.warning("verify_skipped", cluster=args.to, reason="--skip-verify")
        return
    from bluegreen.errors import ShiftFailed
    from bluegreen.verify import run_verify

    report = run_verify(config, cluster=args.to)
    if not report.ready:
        reasons = "\n  - ".join(report.reasons)
        raise ShiftFailed(
            f"{args.to} is not ready for traffic; no weight was changed:\n  - {reasons}",
            hint=f"fix the reasons above (`bluegreen verify --cluster {args.to}`), or pass --skip-verify",
        )
    log.info("verify_passed", cluster=args.to)


def cmd_verify(args: argparse.Namespace, env: Environment) -> int:
    from bluegreen import render
    from bluegreen.verify import run_verify

    config = _load(args, env)
    _setup_logging(args, env)
    report = run_verify(config, cluster=args.cluster)
    env.print(render.to_json(report.as_dict()) if _output(args) == "json" else report.text())
    return ExitCode.OK if report.ready else ExitCode.ROLLED_BACK


def cmd_provision(args: argparse.Namespace, env: Environment) -> int:
    from bluegreen import render
    from bluegreen.provision import Deps, run_provision

    config = _load(args, env)
    _setup_logging(args, env)
    report = run_provision(config, args.side, from_side=args.from_side, version=args.k8s_version,
                           allow_skip=args.allow_skip, dry_run=args.dry_run, deps=Deps(stream=env.stderr))
    env.print(render.to_json(report.as_dict()) if _output(args) == "json" else report.text())
    return report.exit_code


def cmd_rollback(args: argparse.Namespace, env: Environment) -> int:
    import structlog

    config = _load(args, env)
    _setup_logging(args, env)
    log = structlog.get_logger("bluegreen")
    # No external-dns ownership check here: it costs several calls, and this is the emergency exit. A shift
    # on records owned by external-dns was refused before it could start.
    router = _router(config)
    if args.dry_run:
        return _rollback(args, env, config, router, log, run=None)
    with _LockedRun(config, env, "rollback", take_over=True) as run:
        return _rollback(args, env, config, router, log, run=run)


def _rollback(args, env: Environment, config, router, log, run) -> int:
    import time

    from bluegreen import render
    from bluegreen.core.weights import SideWeights

    side = args.to
    if side is None and run is not None:
        from bluegreen.core.state import last_origin_side

        side = last_origin_side(run.store, config.name)
    side = side or "blue"
    live = router.read()
    target = SideWeights.all_on(side)
    before = live.weights()
    ttl = live.ttl() or 0
    result = {"side": side, "before": None if before is None else str(before), "weights": str(target),
              "ttl": ttl, "changed": False, "change_ids": []}
    if before == target:
        result["message"] = f"all traffic is already on {side} ({target}); nothing to do"
    elif args.dry_run:
        result["message"] = f"would set {target} on {len(live.records)} record(s); nothing changed (--dry-run)"
    else:
        run.start({"target": side, "origin_side": None, "start": result["before"], "steps": [100]})
        started = time.monotonic()
        changes = router.set(target)
        router.verify(target, changes)
        done_at = time.time() + ttl
        log.warning("rollback_done", side=side, old=result["before"], new=str(target), change_ids=changes,
                    seconds=round(time.monotonic() - started, 3))
        result.update(changed=True, change_ids=changes, every_client_by=time.strftime(
            "%Y-%m-%dT%H:%M:%S%z", time.localtime(done_at)))
        result["message"] = (f"all traffic on {side} ({target}), in sync; clients that cached the old answer "
                             f"move within the TTL: every client on {side} by {result['every_client_by']} "
                             f"(now + {ttl}s)")
        run.record("rolled_back", {"reason": "bluegreen rollback", "weights": str(target), "change_ids": changes})
        run.finish("rolled_back", ExitCode.OK, f"all traffic on {side}")
    env.print(render.to_json(result) if _output(args) == "json" else result["message"])
    return ExitCode.OK


def cmd_history(args: argparse.Namespace, env: Environment) -> int:
    from bluegreen import render
    from bluegreen.adapters.state_sqlite import open_state_store
    from bluegreen.core.clock import SystemClock
    from bluegreen.core.state import parse_state_config
    from bluegreen.journal_sink import render_run, render_runs

    config = _load(args, env)
    _setup_logging(args, env)
    store = open_state_store(config, SystemClock(), parse_state_config(config.sections.get("state")))
    try:
        current = store.current_holder(config.name)
        holder = current[0] if current else None
        if args.run_id:
            run = store.get_run(args.run_id)
            if run is None:
                raise ConfigError(f"no run {args.run_id!r} in the journal of {config.name!r}",
                                  hint="`bluegreen history` lists the runs")
            env.print(render.to_json(run.as_dict()) if _output(args) == "json"
                      else render_run(run, lock_holder=holder))
        else:
            runs = store.list_runs(config.name, args.limit)
            env.print(render.to_json([r.as_dict(with_events=False) for r in runs]) if _output(args) == "json"
                      else render_runs(runs, lock_holder=holder))
    finally:
        store.close()
    return ExitCode.OK


def cmd_init_state(args: argparse.Namespace, env: Environment) -> int:
    from bluegreen.adapters.state_sqlite import init_state_store
    from bluegreen.core.clock import SystemClock

    config = _load(args, env)
    _setup_logging(args, env)
    env.print(init_state_store(config, SystemClock()))
    return ExitCode.OK


def cmd_demo(args: argparse.Namespace, env: Environment) -> int:
    try:
        from bluegreen.demo import run_demo
    except ImportError as error:
        raise ConfigError(f"the demo needs the sandbox extra ({error.name} is missing)",
                          hint="pip install 'bluegreen[sandbox]'") from None
    return run_demo(env, fail_green=args.fail_green, green_missing_addon=args.green_missing_addon,
                    output=_output(args),
                    log_format=getattr(args, "log_format", None))


class _signals_set:
    """SIGTERM and SIGINT set the stop event: the engine finishes or undoes the current change, then exits."""

    def __init__(self, env: Environment) -> None:
        self.env = env
        self.previous: dict = {}

    def __enter__(self):
        import signal

        if not self.env.install_signal_handlers or threading.current_thread() is not threading.main_thread():
            return self
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.previous[sig] = signal.signal(sig, lambda *_: self.env.stop.set())
        return self

    def __exit__(self, *exc) -> None:
        import signal

        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


# -- entry point ---------------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None, env: Environment | None = None) -> int:
    env = env or Environment()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        # argparse exits 2 on bad usage, which is our BAD_INPUT code too; --help and --version exit 0.
        return int(exit_.code or 0)
    if not getattr(args, "handler", None):
        parser.print_help(env.stdout)
        return ExitCode.BAD_INPUT
    try:
        return int(args.handler(args, env))
    except BlueGreenError as error:
        env.stderr.write(f"bluegreen: error: {error}\n")
        return int(error.exit_code)
    except KeyboardInterrupt:
        env.stderr.write("bluegreen: interrupted\n")
        return int(ExitCode.ERROR)
    except Exception as error:  # noqa: BLE001 - the last line: report, never show a secret-bearing repr
        from bluegreen.errors import shorten

        env.stderr.write(f"bluegreen: unexpected error: {type(error).__name__}: {shorten(str(error))}\n")
        if env.environ.get("BLUEGREEN_DEBUG"):
            import traceback

            traceback.print_exc(file=env.stderr)
        return int(ExitCode.ERROR)


if __name__ == "__main__":
    sys.exit(main())
