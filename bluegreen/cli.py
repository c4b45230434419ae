"""The command line: the parser assembled from ``bluegreen.commands``, and the one place that maps errors to
exit codes.

Imports are lazy on purpose: ``bluegreen --help`` must start fast, and ``bluegreen rollback`` must never
import kubernetes or start probes (it is the on-call engineer's emergency exit). Signal handling starts
here, before a command does anything, so a SIGTERM at any moment ends in a known state.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from bluegreen.commands import COMMANDS
from bluegreen.commands.common import EXIT_CODES_HELP
from bluegreen.environment import Environment, SignalsCaught
from bluegreen.errors import BlueGreenError, ExitCode

__all__ = ["Environment", "build_parser", "main"]


def build_parser(*, load_commands: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The full parser. ``load_commands``: import only these command modules (the one being run), so a
    command pays for its own imports only; the others get a stub sub-parser that is never used."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS,
                        help="configuration file (default: $BLUEGREEN_CONFIG or ./bluegreen.yaml)")
    common.add_argument("--output", choices=("text", "json"), default=argparse.SUPPRESS,
                        help="result format on stdout: text, or exactly one JSON document (default: text)")
    common.add_argument("--log-format", choices=("console", "json"), default=argparse.SUPPRESS,
                        help="log format on stderr (default: console on a TTY, json otherwise)")
    from bluegreen import __version__

    parser = argparse.ArgumentParser(
        prog="bluegreen",
        description="Move live traffic between two Kubernetes clusters with Route 53 weighted records: "
                    "step by step, with probes, and automatic rollback.",
        epilog=EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter, parents=[common])
    parser.add_argument("--version", action="version", version=f"bluegreen {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name, help_text in COMMANDS:
        if load_commands is not None and name not in load_commands:
            sub.add_parser(name, parents=[common], help=help_text)
            continue
        module = importlib.import_module(module_name)
        command = sub.add_parser(name, parents=[common], help=help_text, description=module.DESCRIPTION,
                                 epilog=getattr(module, "EPILOG", None) or EXIT_CODES_HELP,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(command)
        command.set_defaults(handler=module.run)
    return parser


def _command_named(argv: Sequence[str]) -> str | None:
    names = {name for name, _, _ in COMMANDS}
    return next((arg for arg in argv if arg in names), None)


def main(argv: Sequence[str] | None = None, env: Environment | None = None) -> int:
    env = env or Environment()
    argv = list(sys.argv[1:] if argv is None else argv)
    wanted = _command_named(argv)
    parser = build_parser(load_commands=None if wanted is None else [wanted])
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        # argparse exits 2 on bad usage, which is our BAD_INPUT code too; --help and --version exit 0.
        return int(exit_.code or 0)
    if not getattr(args, "handler", None):
        parser.print_help(env.stdout)
        return ExitCode.BAD_INPUT
    json_logs = getattr(args, "log_format", None) == "json"
    with SignalsCaught(env):
        try:
            return int(args.handler(args, env))
        except BlueGreenError as error:
            _report(env, error, int(error.exit_code), json_logs)
            return int(error.exit_code)
        except Exception as error:  # noqa: BLE001 - the last line: report, never show a secret-bearing repr
            from bluegreen.errors import shorten

            _report(env, error, int(ExitCode.ERROR), json_logs,
                    message=f"unexpected error: {type(error).__name__}: {shorten(str(error))}")
            if env.environ.get("BLUEGREEN_DEBUG"):
                import traceback

                traceback.print_exc(file=env.stderr)
            return int(ExitCode.ERROR)


def _report(env: Environment, error: BaseException, code: int, json_logs: bool, *, message: str | None = None) -> None:
    """The final error line: plain text, or one JSON line with --log-format json."""
    text = message or str(error)
    if json_logs:
        import json

        import structlog

        # The migration (and run id) bound by the command, so the last line is found with the others.
        line = {**structlog.contextvars.get_contextvars(), "event": "error", "level": "error", "exit_code": code,
                "message": getattr(error, "message", text)}
        hint = getattr(error, "hint", None)
        if hint:
            line["hint"] = hint
        env.stderr.write(json.dumps(line) + "\n")
    else:
        env.stderr.write(f"bluegreen: error: {text}\n")
    env.stderr.flush()


if __name__ == "__main__":
    sys.exit(main())
