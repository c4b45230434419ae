"""``bluegreen status``: the weights, share and TTL of every managed record, and the clusters."""

from __future__ import annotations

import argparse

from bluegreen.commands.common import EXIT_CODES_HELP, emit, load, setup_logging
from bluegreen.environment import Environment

NAME = "status"
DESCRIPTION = ("Read the weighted records (and, with `clusters`, each cluster's version and ArgoCD health). "
               "Changes nothing. With the argocd or external-dns driver, a weight ArgoCD asks for that Route 53 "
               "does not hold is flagged as drift.")
EPILOG = EXIT_CODES_HELP


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace, env: Environment) -> int:
    from bluegreen import render
    from bluegreen.routers import build_router

    setup_logging(args, env)
    config = load(args, env, needs=("aws", "route"))
    router = build_router(config)
    try:
        live = router.read()
    finally:
        router.close()
    clusters = None
    if config.clusters is not None:
        from bluegreen.clusters.verify import cluster_summaries

        clusters = cluster_summaries(config)
        if config.route.driver == "route53":
            for info in clusters.values():
                info.pop("argocd_weight", None)
        else:
            render.drift(clusters, live)
    data = {"migration": config.name, **render.live_state_dict(live),
            **({"clusters": clusters} if clusters is not None else {})}
    text = f"migration {config.name}\n" + render.live_state_text(live)
    if clusters is not None:
        text += "\n\n" + render.clusters_text(clusters, show_argocd_weight=config.route.driver != "route53")
    emit(args, env, data, text)
    return 0
