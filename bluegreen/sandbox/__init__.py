"""The embedded sandbox: Route 53 (moto), a weighted DNS server and two clusters' backends, on loopback;
optionally (``Sandbox(clusters=True)``) the two clusters' Kubernetes APIs, emulated with kmock, holding
ArgoCD's cluster secrets and Applications (:mod:`bluegreen.sandbox.kube`).

Installed with the ``sandbox`` extra. Used by ``bluegreen demo``, by the end-to-end tests and by
benchmarks; ``python -m bluegreen.sandbox`` runs it in the foreground.
"""

from bluegreen.sandbox.backends import Backend, ClusterBackend
from bluegreen.sandbox.dns_server import WeightedDnsServer
from bluegreen.sandbox.faults import ThrottlingProxy
from bluegreen.sandbox.moto_server import MotoServer
from bluegreen.sandbox.route53_proxy import Route53Proxy
from bluegreen.sandbox.stack import CLUSTER_PATTERN, Sandbox
from bluegreen.sandbox.zone import seed_zone, set_weights

__all__ = [
    "Backend", "ClusterBackend", "CLUSTER_PATTERN", "MotoServer", "Route53Proxy", "Sandbox", "ThrottlingProxy",
    "WeightedDnsServer", "seed_zone", "set_weights",
]
