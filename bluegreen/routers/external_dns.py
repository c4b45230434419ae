"""``route.driver: external-dns``: weights on the ``<prefix>/aws-weight`` annotation of the Ingress or
Service objects named in ``route.objects``, in each side's cluster. ``<prefix>/set-identifier`` on each
object must be the side's SetIdentifier (``route.blue`` / ``route.green``): bluegreen refuses otherwise."""

from __future__ import annotations

from typing import Any, Callable, Mapping

from bluegreen.config import Config
from bluegreen.config.route import NEW_PREFIX, ObjectRef
from bluegreen.core.ports import TtlSpec
from bluegreen.core.weights import SIDES
from bluegreen.errors import PreflightError
from bluegreen.routers.source import _SourceRouter, _Write


class ExternalDnsRouter(_SourceRouter):
    """Weights on the ``<prefix>/aws-weight`` annotation of Ingress or Service objects (``route.objects``)."""

    driver = "external-dns"

    def __init__(self, config: Config, **kwargs: Any) -> None:
        settings = config.route.external_dns
        super().__init__(config, sync_timeout=settings.sync_timeout, **kwargs)
        self.prefix = settings.prefix
        self.objects = settings.objects
        self.source = f"{self.prefix}/aws-weight annotation"

    def _weight_key(self) -> str:
        return f"{self.prefix}/aws-weight"

    def _ttl_annotations(self, ttl: TtlSpec) -> dict[str, str]:
        if isinstance(ttl, Mapping):
            # One Ingress may carry several hostnames, each with its own record: the annotation sets one TTL
            # for all of them, so a per-record restore writes the largest.
            ttl = max(ttl.values()) if ttl else None
        return {} if ttl is None else {f"{self.prefix}/ttl": str(ttl)}

    def _writes(self) -> list[_Write]:
        from bluegreen.adapters import argocd

        writes, problems = [], []
        ident_key = f"{self.prefix}/set-identifier"
        for side in SIDES:
            spec = self.clusters_config.side(side)
            kube = self.clusters.kube(side)
            for ref in self.objects[side]:
                meta = argocd.read_object_meta(kube, ref.kind, ref.namespace, ref.name)
                where = f"{spec.name}/{ref.kind}/{ref.namespace}/{ref.name}"
                found = meta.annotations.get(ident_key)
                expected = self.route.identifier(side)
                if found != expected:
                    problems.append(self._identifier_problem(side, where, found, expected, meta.annotations))
                    continue
                writes.append(_Write(side, where, meta.annotations.get(self._weight_key()), self._writer(kube, ref)))
        if problems:
            raise PreflightError(
                "refusing to write weights: " + "; ".join(problems),
                hint=f"each object in route.objects.<side> must carry {ident_key} equal to route.<side> (the "
                     f"record's SetIdentifier), or external-dns writes a different record than the one bluegreen "
                     f"reads; external-dns v0.22+ reads {NEW_PREFIX}/... (set route.annotation_prefix)")
        return writes

    def _writer(self, kube: Any, ref: ObjectRef) -> Callable[[str, Mapping[str, str]], str]:
        def apply(value: str, extra: Mapping[str, str]) -> str:
            from bluegreen.adapters import argocd

            # One merge patch: the weight and the TTL change together.
            meta = argocd.patch_object_meta(kube, ref.kind, ref.namespace, ref.name,
                                            {self._weight_key(): value, **extra})
            return meta.resource_version

        return apply

    def _identifier_problem(self, side: str, where: str, found: str | None, expected: str,
                            annotations: Mapping[str, str]) -> str:
        if found is not None:
            return f"{where} has {self.prefix}/set-identifier={found!r}, but route.{side} is {expected!r}"
        others = sorted({k.rsplit("/", 1)[0] for k in annotations if k.endswith("/set-identifier")})
        if others:
            return (f"{where} has no {self.prefix}/set-identifier but has {others[0]}/set-identifier: "
                    f"set route.annotation_prefix: {others[0]}")
        return f"{where} has no {self.prefix}/set-identifier annotation (external-dns makes no weighted record of it)"

    def _sync_hint(self, reverted: bool) -> str:
        if reverted:
            return ("something rewrites the annotation, e.g. ArgoCD self-heal on an Ingress it manages: ignore the "
                    "annotation there (ignoreDifferences) or use route.driver: argocd")
        return ("check that external-dns runs in both clusters and owns these records (its logs; --interval, "
                "--policy, --domain-filter, --txt-owner-id); raise route.sync_timeout if it syncs slowly. "
                "bluegreen rolls the annotations back")


