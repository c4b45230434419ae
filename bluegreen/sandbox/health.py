"""What Route 53 knows about health, for the sandbox's DNS server: fake load balancers behind alias records, and
the state of Route 53 health checks.

In the EKS Blueprints pattern each cluster's Ingress is an ALB, and external-dns writes an *alias* A record to
it with ``EvaluateTargetHealth: true``. Route 53 then answers with the load balancer's addresses, with the
load balancer's TTL (60 s for ELB), and treats the record set as unhealthy when the load balancer has no healthy
target. A record set may also carry a ``HealthCheckId``. Route 53 Developer Guide, "How Amazon Route 53 chooses
records when health checking is configured" and "Value/route traffic to" for alias records.

Health switches here take effect at once; a real health checker needs its interval times its failure threshold
(30 s x 3 by default) to notice.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

# The hosted zone id of Application and Classic Load Balancers in us-east-1 (AWS General Reference, "Elastic
# Load Balancing endpoints and quotas"): the AliasTarget.HostedZoneId of an alias to an ALB there.
ELB_HOSTED_ZONE_ID = "Z35SXDOTRQ7X7K"
ELB_TTL = 60  # what Route 53 answers for an alias to an ELB: the load balancer's own TTL


def normalize_dns_name(name: str) -> str:
    """How Route 53 matches alias targets: case-insensitive, without the final dot or a ``dualstack.`` prefix."""
    name = name.rstrip(".").lower()
    return name.removeprefix("dualstack.")


@dataclass
class FakeLoadBalancer:
    """One side's load balancer: a DNS name that resolves to the side's backend address, and a health switch
    (``healthy = False``: no healthy target, as an ALB whose target group is all unhealthy)."""

    name: str
    dns_name: str
    address: str
    hosted_zone_id: str = ELB_HOSTED_ZONE_ID
    ttl: int = ELB_TTL
    healthy: bool = True

    def alias_target(self, evaluate_target_health: bool = True) -> dict:
        """The ``AliasTarget`` of a record set that points at this load balancer."""
        return {"HostedZoneId": self.hosted_zone_id, "DNSName": self.dns_name,
                "EvaluateTargetHealth": evaluate_target_health}


@dataclass
class Health:
    """Load balancers by DNS name and health check states by id, read by the DNS server at every query."""

    load_balancers: dict[str, FakeLoadBalancer] = field(default_factory=dict)
    checks: dict[str, bool] = field(default_factory=dict)  # health check id -> healthy
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add_load_balancer(self, lb: FakeLoadBalancer) -> FakeLoadBalancer:
        with self._lock:
            self.load_balancers[normalize_dns_name(lb.dns_name)] = lb
        return lb

    def load_balancer(self, dns_name: str) -> FakeLoadBalancer | None:
        return self.load_balancers.get(normalize_dns_name(dns_name))

    def set_check(self, check_id: str, healthy: bool) -> None:
        with self._lock:
            self.checks[check_id] = healthy

    def check_healthy(self, check_id: str) -> bool:
        """A health check the sandbox was not told about is healthy (a new check starts healthy in Route 53)."""
        return self.checks.get(check_id, True)
