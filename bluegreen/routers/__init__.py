"""Weight routers: one module per ``route.driver``, and :func:`build_router`, the one place that picks it.

Adding a driver touches this package only: a module with a class implementing
:class:`~bluegreen.core.ports.WeightRouter` (read / preflight / set / verify / close), and a line below.
"""

from __future__ import annotations

from typing import Any

from bluegreen.config import Config
from bluegreen.core.clock import Clock
from bluegreen.core.ports import WeightRouter


def build_router(config: Config, *, clock: Clock | None = None, **kwargs: Any) -> WeightRouter:
    """The weight router for ``route.driver``. The route53 driver never imports kubernetes."""
    driver = config.route.driver
    if driver == "route53":
        from bluegreen.routers.route53 import Route53Router

        return Route53Router(config.route, config.aws, clock=clock, **kwargs)
    if driver == "external-dns":
        from bluegreen.routers.external_dns import ExternalDnsRouter

        return ExternalDnsRouter(config, clock=clock, **kwargs)
    if driver == "argocd":
        from bluegreen.routers.argocd import ArgoCdRouter

        return ArgoCdRouter(config, clock=clock, **kwargs)
    raise AssertionError(f"route.driver {driver!r} passed the config check")  # config.route refuses others
