"""``bluegreen rollback``: the on-call engineer's emergency exit. All traffic to one side, now.

It uses only what it needs (``aws``, ``route``, ``state``): a mistake anywhere else in the config is logged
as a warning and never stops it. It takes the lock over from a running shift (which stops within one check
interval without writing again), never imports kubernetes for the route53 driver, starts no probes, and its
Route 53 calls may use the rate reserved for the emergency path."""

from __future__ import annotations

import argparse
import time

from bluegreen.commands.common import EXIT_CODES_HELP, emit, load, setup_logging
from bluegreen.environment import Environment
from bluegreen.errors import BlueGreenError, ExitCode, shorten

NAME = "rollback"
DESCRIPTION = ("Put all traffic on one side now, in one Route 53 change, and wait until it is in sync. Works "
               "while a shift runs: it takes the migration's lock over and the shift stops. A mistake in a "
               "config section rollback does not use is only a warning.")
EPILOG = EXIT_CODES_HELP
NEEDS = ("aws", "route", "state")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--to", choices=("blue", "green"),
                        help="side to put all traffic on (default: the side that held all traffic before the "
                             "last shift, else blue)")
    parser.add_argument("--dry-run", action="store_true", help="print what would change; change nothing")


def run(args: argparse.Namespace, env: Environment) -> int:
    from bluegreen.routers import build_router

    setup_logging(args, env)
    config = load(args, env, needs=NEEDS)
    router = build_router(config)
    try:
        if args.dry_run:
            return _rollback(args, env, config, router, run=None)
        from bluegreen.runs import LockedRun

        notifier = None
        if "notifications" not in config.broken:
            from bluegreen.adapters.notify import Notifier

            notifier = Notifier.from_config(config, environ=env.environ)
        with LockedRun(config, env, "rollback", take_over=True, notifier=notifier) as run:
            if notifier is not None:
                notifier.run_id = run.run_id
            return _rollback(args, env, config, router, run=run)
    finally:
        router.close()


def _rollback(args, env: Environment, config, router, run) -> int:
    from bluegreen.core.events import EventKind
    from bluegreen.core.state import last_origin_side
    from bluegreen.core.weights import SideWeights

    side = args.to
    if side is None and run is not None:
        side = last_origin_side(run.store, config.name)
    side = side or "blue"
    live = router.read()
    target = SideWeights.all_on(side)
    before = live.weights()
    cache_ttl = live.cache_ttl(config.route.alias_ttl)
    result = {"side": side, "before": None if before is None else before.as_dict(), "weights": target.as_dict(),
              "ttl": cache_ttl, "changed": False, "change_ids": []}
    if before == target:
        result["message"] = f"all traffic is already on {side} ({target}); nothing written"
        if run is not None:
            run.start({"target": side, "origin_side": None, "start": before.as_dict(), "steps": [100]})
            run.finish("nothing_to_do", ExitCode.OK, result["message"])
    elif args.dry_run:
        result["message"] = f"would set {target} on {len(live.records)} record(s); nothing changed (--dry-run)"
    else:
        run.start({"target": side, "origin_side": None, "start": result["before"], "steps": [100]})
        started = time.monotonic()
        try:
            changes = router.set(target, live=live, urgent=True)
            router.verify(target, changes)
        except BlueGreenError as error:
            now = _weights_now(router)
            run.record(EventKind.ROLLBACK_FAILED, {"error": shorten(str(error)), "to": target.as_dict(),
                                                   "weights": now})
            where = f"traffic is at blue={now['blue']} green={now['green']}" if now else "traffic is where it was"
            error.message = (f"the rollback FAILED: {error.message}. {where}. Run `bluegreen rollback --to {side}` "
                             "again when Route 53 answers")
            raise
        every_client_by = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(time.time() + cache_ttl))
        import structlog

        structlog.get_logger("bluegreen").warning(
            "rollback_done", side=side, old=result["before"], new=target.as_dict(), change_ids=changes,
            seconds=round(time.monotonic() - started, 3))
        result.update(changed=True, change_ids=changes, every_client_by=every_client_by)
        result["message"] = (f"all traffic on {side} ({target}), in sync; clients that cached the old answer "
                             f"move within the TTL: every client on {side} by {every_client_by} (now + {cache_ttl}s)")
        run.record(EventKind.ROLLED_BACK, {"reason": "bluegreen rollback", "weights": target.as_dict(),
                                           "change_ids": changes})
        run.finish("rolled_back", ExitCode.OK, f"all traffic on {side}")
    emit(args, env, result, result["message"])
    return ExitCode.OK


def _weights_now(router) -> dict | None:
    try:
        weights = router.read().weights()
    except Exception:  # noqa: BLE001 - a diagnosis for the message; the original failure is what matters
        return None
    return None if weights is None else weights.as_dict()
