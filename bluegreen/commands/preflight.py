"""``bluegreen preflight [--cluster green] [--version 1.31]``: is the cluster ready for this Kubernetes
version, and for traffic? Everything that breaks an EKS upgrade, checked before a request moves."""

from __future__ import annotations

import argparse

from bluegreen.commands.common import EXIT_CODES_HELP, emit, load, setup_logging
from bluegreen.environment import Environment
from bluegreen.errors import ExitCode

NAME = "preflight"
DESCRIPTION = ("Check one cluster for what breaks an EKS upgrade or a shift onto it: removed API versions "
               "(last-applied, Helm releases, ArgoCD), workload safety (replicas, PDBs, probes, strategy, "
               "volumes), node and add-on versions, EKS add-ons, node groups, Upgrade Insights, subnets, "
               "support dates, IRSA and Pod Identity. Findings by severity, each with a code (see the README); "
               "`preflight.ignore` silences some. Exit 3 when a finding is an error.")
EPILOG = EXIT_CODES_HELP


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cluster", choices=("blue", "green"), default="green",
                        help="the cluster to check (default: green, the usual shift target)")
    parser.add_argument("--version", metavar="1.31",
                        help="the Kubernetes version to check for (default: the cluster's own version; for an "
                             "in-place upgrade, the version being upgraded to)")


def run(args: argparse.Namespace, env: Environment) -> int:
    from bluegreen.clusters.preflight import run_cluster_preflight

    setup_logging(args, env)
    config = load(args, env, needs=("aws", "clusters", "preflight"))
    report = run_cluster_preflight(config, args.cluster, version=args.version)
    emit(args, env, report.as_dict(), report.text())
    return ExitCode.NOT_READY if report.has_errors else ExitCode.OK
