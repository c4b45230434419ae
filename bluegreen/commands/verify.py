"""``bluegreen verify``: is a cluster ready for traffic?"""

from __future__ import annotations

import argparse

from bluegreen.commands.common import EXIT_CODES_HELP, emit, load, setup_logging
from bluegreen.environment import Environment
from bluegreen.errors import ExitCode

NAME = "verify"
DESCRIPTION = ("Compare the two clusters' ArgoCD cluster-secret metadata (labels and annotations, never "
               "data), check that the Applications are Synced and Healthy on both, and that every workload's "
               "rollout is complete. Exit 3 when the cluster is not ready.")
EPILOG = EXIT_CODES_HELP


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cluster", choices=("blue", "green"), default="green", help="the cluster to check")


def run(args: argparse.Namespace, env: Environment) -> int:
    from bluegreen.clusters.verify import run_verify

    setup_logging(args, env)
    config = load(args, env, needs=("aws", "clusters", "verify"))
    report = run_verify(config, cluster=args.cluster)
    emit(args, env, report.as_dict(), report.text())
    return ExitCode.OK if report.ready else ExitCode.NOT_READY
