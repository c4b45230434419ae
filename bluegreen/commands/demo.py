"""``bluegreen demo``: the whole cutover against the embedded sandbox."""

from __future__ import annotations

import argparse

from bluegreen.commands.common import output
from bluegreen.environment import Environment
from bluegreen.errors import ConfigError

NAME = "demo"
DESCRIPTION = ("Start the sandbox (Route 53 in moto, a weighted DNS server, two clusters' backends and "
               "Kubernetes APIs, all on loopback) and run status, verify, preflight, a shift 0,10,50,100, status "
               "and report through the real CLI, then print where the report is; with --nodes, the in-place mode "
               "(nodes plan, upgrade, finish) instead. Needs the sandbox extra: pip install 'bluegreen[sandbox]'.")
EPILOG = None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--fail-green", action="store_true", help="make green fail at 10%% to show the rollback")
    which.add_argument("--green-missing-addon", action="store_true",
                       help="green's ArgoCD cluster secret lacks an addon flag: verify fails, shift refuses")
    which.add_argument("--nodes", action="store_true",
                       help="the in-place mode instead: `nodes plan`, `nodes upgrade` and `nodes finish` on blue's "
                            "node groups (EKS in moto), 1.30 -> 1.31")
    parser.add_argument("--keep", metavar="DIR",
                        help="keep the config, the state (journal) and the report in DIR, so `history`, `watch` "
                             "and `report` work on the demo's runs afterwards")


def run(args: argparse.Namespace, env: Environment) -> int:
    try:
        import dnslib  # noqa: F401 - the sandbox extra's packages: a clear hint instead of a traceback
        import moto  # noqa: F401

        from bluegreen.sandbox.demo import run_demo
    except ImportError as error:
        raise ConfigError(f"the demo needs the sandbox extra ({error.name} is missing)",
                          hint="pip install 'bluegreen[sandbox]'") from None
    return run_demo(env, fail_green=args.fail_green, green_missing_addon=args.green_missing_addon, nodes=args.nodes,
                    output=output(args), log_format=getattr(args, "log_format", None), keep=args.keep)
