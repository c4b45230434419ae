"""``bluegreen history [RUN_ID]``: the migration's journal."""

from __future__ import annotations

import argparse

from bluegreen.commands.common import EXIT_CODES_HELP, emit, load, positive_int, setup_logging
from bluegreen.environment import Environment
from bluegreen.errors import ConfigError

NAME = "history"
DESCRIPTION = "List the migration's runs (who, when, outcome), or show one run with every event."
EPILOG = EXIT_CODES_HELP


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_id", nargs="?", metavar="RUN_ID", help="show this run with every event")
    parser.add_argument("--limit", type=positive_int, default=20, help="how many runs to list (default 20)")


def run(args: argparse.Namespace, env: Environment) -> int:
    from bluegreen import render
    from bluegreen.adapters.state.sqlite import open_state_store
    from bluegreen.core.clock import SystemClock

    setup_logging(args, env)
    config = load(args, env, needs=("aws", "state"))
    store = open_state_store(config, SystemClock())
    try:
        current = store.current_holder(config.name)
        holder = current[0] if current else None
        if args.run_id:
            record = store.get_run(args.run_id)
            if record is None:
                raise ConfigError(f"no run {args.run_id!r} in the journal of {config.name!r}",
                                  hint="`bluegreen history` lists the runs")
            emit(args, env, record.as_dict(), render.run_text(record, lock_holder=holder))
        else:
            runs = store.list_runs(config.name, args.limit)
            emit(args, env, [r.as_dict(with_events=False) for r in runs], render.runs_text(runs, lock_holder=holder))
    finally:
        store.close()
    return 0
