"""``bluegreen provision``: target, clone or build a cluster."""

from __future__ import annotations

import argparse

from bluegreen.commands.common import EXIT_CODES_HELP, emit, load, setup_logging
from bluegreen.environment import Environment

NAME = "provision"
DESCRIPTION = ("Make the green (or blue) cluster exist: target one that exists, clone the other side's EKS "
               "cluster at a new version (--from), or run provision.command (Terraform...). Idempotent.")
EPILOG = EXIT_CODES_HELP


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("side", nargs="?", default="green", choices=("blue", "green"))
    parser.add_argument("--from", dest="from_side", choices=("blue", "green"),
                        help="clone this side's cluster through the EKS API")
    parser.add_argument("--version", dest="k8s_version", metavar="X.Y", help="Kubernetes version of the clone")
    parser.add_argument("--allow-skip", action="store_true",
                        help="allow a jump of more than one minor version from the source")
    parser.add_argument("--dry-run", action="store_true", help="print what would be created; change nothing")


def run(args: argparse.Namespace, env: Environment) -> int:
    from bluegreen.clusters.provision import Deps, run_provision

    setup_logging(args, env)
    config = load(args, env, needs=("aws", "clusters", "provision"))
    report = run_provision(config, args.side, from_side=args.from_side, version=args.k8s_version,
                           allow_skip=args.allow_skip, dry_run=args.dry_run, deps=Deps(stream=env.stderr))
    emit(args, env, report.as_dict(), report.text())
    return report.exit_code
