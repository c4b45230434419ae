"""``bluegreen init-state``: create the lock and journal store."""

from __future__ import annotations

import argparse

from bluegreen.commands.common import EXIT_CODES_HELP, emit, load, setup_logging
from bluegreen.environment import Environment

NAME = "init-state"
DESCRIPTION = ("Create the state store named in `state`: the DynamoDB table (pay-per-request), or the SQLite "
               "file. Idempotent.")
EPILOG = EXIT_CODES_HELP


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace, env: Environment) -> int:
    from bluegreen.adapters.state.sqlite import init_state_store
    from bluegreen.core.clock import SystemClock

    setup_logging(args, env)
    config = load(args, env, needs=("aws", "state"))
    message = init_state_store(config, SystemClock())
    emit(args, env, {"backend": config.state.backend, "message": message}, message)
    return 0
