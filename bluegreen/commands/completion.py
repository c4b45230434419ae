"""``bluegreen completion bash|zsh``: print the shell completion script (made by shtab from the parser
itself, so it always knows every command and option)."""

from __future__ import annotations

import argparse

from bluegreen.environment import Environment

NAME = "completion"
DESCRIPTION = ("Print the shell completion script for bash or zsh. Install it once, e.g.\n"
               "  bluegreen completion bash > ~/.local/share/bash-completion/completions/bluegreen\n"
               "  bluegreen completion zsh > \"${fpath[1]}/_bluegreen\"")
EPILOG = """exit codes:
  0  printed
  2  unknown shell
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("shell", choices=("bash", "zsh"), help="the shell to complete for")


def run(args: argparse.Namespace, env: Environment) -> int:
    import shtab

    from bluegreen.cli import build_parser

    env.stdout.write(shtab.complete(build_parser(), shell=args.shell))
    env.stdout.flush()
    return 0
