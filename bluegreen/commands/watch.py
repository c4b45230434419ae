"""``bluegreen watch [RUN_ID]``: follow a run from another terminal or machine, through the journal alone.

The shift journals its progress (a ``hold`` event at most every 5 s, every step, verdict and outcome), so
whoever can read the state store (the SQLite file, or the DynamoDB table) can follow it: no other channel,
no port to open. The store is polled at a bounded rate (``--interval``, at least 0.5 s), and each poll reads
only the events journaled since the last one (``StateStore.events_since``): a day-long run costs no more to
follow at its end than at its start."""

from __future__ import annotations

import argparse

from bluegreen.commands.common import cluster_sides, emit, load, pick_run, setup_logging
from bluegreen.environment import Environment
from bluegreen.errors import ExitCode

NAME = "watch"
DESCRIPTION = ("Follow a running shift (the latest one by default) from the journal, with the live panel on a "
               "terminal (one line per step otherwise), and exit with the run's own exit code when it ends. A "
               "finished run is shown as it ended. Reads the state store only: works from any machine that can.")
EPILOG = """exit codes:
  the run's exit code once it ends (0 completed, 3 rolled back, 5 conflict, ... see `bluegreen --help`)
  1  the run's process died without an outcome (its lock expired), or watching was interrupted
  2  bad input: no such run, or no run yet
"""
MIN_INTERVAL = 0.5


def _interval(text: str) -> float:
    try:
        value = float(text.rstrip("s"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, e.g. 2 or 2s, got {text!r}") from None
    if value < MIN_INTERVAL:
        raise argparse.ArgumentTypeError(f"at least {MIN_INTERVAL:g}s (each poll reads the journal)")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_id", nargs="?", metavar="RUN_ID", help="the run (default: the latest shift)")
    parser.add_argument("--interval", type=_interval, default=2.0, metavar="SECONDS",
                        help="how often the journal is read (default 2s, at least 0.5s)")


def run(args: argparse.Namespace, env: Environment) -> int:
    from bluegreen.adapters.state.sqlite import open_state_store
    from bluegreen.core.clock import SystemClock

    setup_logging(args, env)
    config = load(args, env, needs=("aws", "state"))
    clock = SystemClock(env.stop)
    store = open_state_store(config, clock)
    try:
        return _follow(args, env, config, store, clock)
    finally:
        store.close()


def _follow(args, env: Environment, config, store, clock) -> int:
    from dataclasses import replace

    import structlog

    from bluegreen.core.timeline import RunView
    from bluegreen.output.panel import LivePanel, _stream_is_terminal, outcome_banner

    record = pick_run(store, config, args.run_id)
    as_json = getattr(args, "output", None) == "json"
    mode = "off" if as_json else "live" if _stream_is_terminal(env.stdout, env.environ) else "plain"
    view = RunView(keep_history=False, run_id=record.run_id, migration=record.name, command=record.command,
                   holder={k: v for k, v in dict(record.holder or {}).items() if k != "token"},
                   cluster_sides=cluster_sides(config))
    view.use_plan(record.plan or {})
    panel = LivePanel(env.stdout, mode=mode, clock=clock, gates=config.gates, view=view, environ=env.environ,
                      title=f"bluegreen watch {record.command}")
    log = structlog.get_logger("bluegreen")
    last_seq, dead_since = 0, None
    with panel:
        while True:
            for event in record.events:  # only what is new: each poll asks for the events after last_seq
                if event.seq > last_seq:
                    panel.feed(event.at, event.kind, event.data)
                    last_seq = event.seq
            if record.finished:
                return _finished(args, env, panel, record, plain=mode == "plain", banner=outcome_banner)
            current = store.current_holder(config.name)
            if record.status(current[0] if current else None) == "running":
                dead_since = None
            elif dead_since is None:
                dead_since = clock.monotonic()
            elif clock.monotonic() - dead_since > config.state.lease_seconds:
                log.error("run_unfinished", run_id=record.run_id,
                          reason="its process died without an outcome; its lock expired",
                          hint="`bluegreen shift --resume` continues it, `bluegreen rollback` undoes it")
                return ExitCode.ERROR
            panel.refresh()  # the countdown moves between polls
            if env.stop.wait(args.interval):
                log.warning("watch_interrupted", run_id=record.run_id, reason="the run goes on; only watching stopped")
                return ExitCode.ERROR
            newer = store.events_since(record.run_id, last_seq)
            record = newer if newer is not None else replace(record, events=())


def _finished(args, env, panel, record, *, plain: bool, banner) -> int:
    view = panel.view
    printed = view.finished  # the journal's ending event already drew the outcome
    view.outcome, view.exit_code = record.outcome, record.exit_code
    view.reason = record.reason or view.reason
    if record.finished_at is not None:
        view.finished_at = record.finished_at
    if plain and not printed:
        panel.console.print(banner(view))
    panel.close()
    if getattr(args, "output", None) == "json":
        emit(args, env, record.as_dict(with_events=False), "")
    code = record.exit_code
    return int(code) if code is not None else ExitCode.ERROR
