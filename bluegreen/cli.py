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
  3  the shift failed its gates (or verify failed) and traffic was rolled back
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
    shift.set_defaults(handler=cmd_shift)

    rollback = sub.add_parser("rollback", parents=[common],
                              help="emergency: all traffic to one side now (works while a shift runs)")
    rollback.add_argument("--to", choices=("blue", "green"),
                          help="side to put all traffic on (default: the side that held all traffic before the "
                               "last shift, else blue)")
    rollback.add_argument("--dry-run", action="store_true", help="print what would change; change nothing")
    rollback.set_defaults(handler=cmd_rollback)

    demo = sub.add_parser("demo", parents=[common],
                          help="the whole cutover against the embedded sandbox (needs the sandbox extra)")
    demo.add_argument("--fail-green", action="store_true", help="make green fail at 10%% to show the rollback")
    demo.set_defaults(handler=cmd_demo)
    return parser


# -- composition helpers -------------------------------------------------------------------------------
def _load(args: argparse.Namespace, env: Environment):
    from bluegreen.config import CONFIG_ENV, DEFAULT_CONFIG, load_config
    from pathlib import Path

    path = Path(getattr(args, "config", None) or env.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)
    return load_config(path)


def _router(config, *, writes: bool = False):
    """The weight router for ``route.driver``. ``writes``: the command will change weights."""
    if config.route.driver != "route53":
        raise ConfigError(f"route.driver {config.route.driver!r} is not available in this build",
                          hint="use route.driver: route53")
    from bluegreen.adapters.route53 import Route53Router

    router = Route53Router(config.route, config.aws)
    if writes:
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


# -- commands ------------------------------------------------------------------------------------------
def cmd_status(args: argparse.Namespace, env: Environment) -> int:
    from bluegreen import render

    config = _load(args, env)
    _setup_logging(args, env)
    state = _router(config).read()
    if _output(args) == "json":
        env.print(render.to_json({"name": config.name, **render.live_state_dict(state)}))
    else:
        env.print(f"migration {config.name}")
        env.print(render.live_state_text(state))
    return ExitCode.OK


def cmd_shift(args: argparse.Namespace, env: Environment) -> int:
    from bluegreen import render
    from bluegreen.core.clock import SystemClock
    from bluegreen.core.durations import parse_duration
    from bluegreen.core.engine import OnInterrupt, ShiftEngine
    from bluegreen.core.weights import PlanError, build_plan, parse_steps

    config = _load(args, env)
    try:
        steps = parse_steps(args.steps) if args.steps else config.shift.steps
    except PlanError as error:
        raise ConfigError(f"--steps: {error}", hint="e.g. --steps 0,10,50,100") from None
    try:
        bake = parse_duration(args.bake, key="--bake") if args.bake else config.shift.bake
    except ValueError as error:
        raise ConfigError(str(error)) from None
    log_format = _setup_logging(args, env)
    router = _router(config, writes=not args.dry_run)
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
                      cutover_ttl=config.route.ttl, ttl_margin=config.shift.ttl_margin, bake=bake)
    on_target = start.percent_on(args.to)
    if plan.steps and on_target > plan.steps[0].percent:
        raise PreflightError(
            f"{args.to} already has {on_target:g}% of traffic ({start}), more than the first step "
            f"({plan.steps[0].percent}%): running this plan would move traffic back",
            hint=f"start the steps at {on_target:g} or above",
        )
    if args.dry_run:
        env.print(render.to_json({"dry_run": True, "plan": render.plan_dict(plan, 0.0)})
                  if _output(args) == "json" else render.plan_text(plan, 0.0))
        return ExitCode.OK

    from bluegreen.core.ports import NoProbes
    from bluegreen.logs import LogSink

    prober = NoProbes()
    if config.probes:
        from bluegreen.adapters.probes import HttpProber

        prober = HttpProber(config.probes)
    sink = LogSink(env.stderr, tty=log_format == "console" and _isatty(env.stderr))

    def on_event(event) -> None:
        sink(event)
        if env.on_event is not None:
            env.on_event(event)

    engine = ShiftEngine(
        router, prober, SystemClock(env.stop), config.gates,
        on_event=on_event, check_interval=config.shift.check_interval, stop=env.stop,
        on_interrupt=OnInterrupt(config.shift.on_interrupt),
    )
    with _signals_set(env):
        result = engine.run(plan)
    data = result.as_dict()
    env.print(render.to_json(data) if _output(args) == "json" else render.result_text(data))
    return result.exit_code


def cmd_rollback(args: argparse.Namespace, env: Environment) -> int:
    import time

    from bluegreen import render
    from bluegreen.core.weights import SideWeights

    config = _load(args, env)
    _setup_logging(args, env)
    import structlog

    log = structlog.get_logger("bluegreen")
    side = args.to or "blue"
    router = _router(config, writes=not args.dry_run)
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
    env.print(render.to_json(result) if _output(args) == "json" else result["message"])
    return ExitCode.OK


def cmd_demo(args: argparse.Namespace, env: Environment) -> int:
    try:
        from bluegreen.demo import run_demo
    except ImportError as error:
        raise ConfigError(f"the demo needs the sandbox extra ({error.name} is missing)",
                          hint="pip install 'bluegreen[sandbox]'") from None
    return run_demo(env, fail_green=args.fail_green, output=_output(args),
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
