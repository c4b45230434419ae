"""``route.driver: argocd``: weights on an annotation (``route53_weight``) of each side's ArgoCD cluster
secret, which the ApplicationSets render into the Ingress's aws-weight annotation (the EKS Blueprints
pattern). The TTL is rendered by the ApplicationSet too, so this driver never writes one."""

from __future__ import annotations

from typing import Any, Callable, Mapping

from bluegreen.config import Config
from bluegreen.core.ports import TtlSpec
from bluegreen.core.weights import SIDES
from bluegreen.errors import PreflightError, RouterError
from bluegreen.routers.source import _SourceRouter, _Write


class ArgoCdRouter(_SourceRouter):
    """Weights on an annotation (``route53_weight``) of each side's ArgoCD cluster secret."""

    driver = "argocd"

    def __init__(self, config: Config, **kwargs: Any) -> None:
        settings = config.route.argocd
        super().__init__(config, sync_timeout=settings.sync_timeout, **kwargs)
        self.key = settings.weight_annotation
        self.names = dict(settings.secrets)
        self.namespace = settings.namespace or self.clusters_config.argocd.namespace
        self.source = f"{self.key} annotation of the ArgoCD cluster secrets"

    def _weight_key(self) -> str:
        return self.key

    def _check_ttl(self, ttl: TtlSpec) -> None:
        if ttl is not None:
            raise RouterError("the argocd driver cannot change the TTL",
                              hint="the TTL is rendered by the ApplicationSet; remove route.ttl")

    def _where(self, side: str) -> str:
        if self.clusters_config.argocd.mode == "hub":
            return "hub"
        return self.clusters_config.side(side).name

    def _writes(self) -> list[_Write]:
        from dataclasses import replace

        from bluegreen.adapters import argocd
        from bluegreen.adapters.argocd import pick_cluster_secret

        writes, problems, seen = [], [], {}
        for side in SIDES:
            spec = self.clusters_config.side(side)
            kube = self.clusters.argocd_kube(side)
            name = self.names.get(side) or spec.argocd_secret
            if name:
                secret = argocd.read_cluster_secret(kube, self.namespace, name)
                found = [name] if secret else []
            else:
                secrets = argocd.list_cluster_secrets(kube, self.namespace)
                secret = pick_cluster_secret(secrets, replace(spec, argocd_secret=None),
                                             self.clusters_config.argocd.mode)
                found = [s.name for s in secrets]
            if secret is None:
                want = f"named {name!r}" if name else f"for cluster {spec.name!r}"
                problems.append(f"no ArgoCD cluster secret {want} in {self._where(side)} namespace {self.namespace} "
                                f"(found: {', '.join(found) or 'none'}); set route.secrets.{side} or "
                                f"clusters.{side}.name")
                continue
            where = f"{self._where(side)}/secret/{secret.namespace}/{secret.name}"
            if where in seen:
                problems.append(f"blue and green both resolve to {where}; set route.secrets")
                continue
            seen[where] = side
            if self.key not in secret.annotations:
                problems.append(f"{where} has no {self.key} annotation, so no ApplicationSet renders it; "
                                f"set route.weight_annotation to the key they read")
                continue
            writes.append(_Write(side, where, secret.annotations.get(self.key), self._writer(kube, secret)))
        if problems:
            raise PreflightError("refusing to write weights: " + "; ".join(problems),
                                 hint="see clusters.argocd (mode, namespace) and route.secrets in the README")
        return writes

    def _writer(self, kube: Any, secret: Any) -> Callable[[str, Mapping[str, str]], str]:
        def apply(value: str, extra: Mapping[str, str]) -> str:
            from bluegreen.adapters import argocd

            return argocd.set_cluster_secret_annotation(kube, secret, self.key, value).resource_version

        return apply

    def _sync_hint(self, reverted: bool) -> str:
        if reverted:
            return ("something rewrites the cluster secret's annotation (a terraform apply of the GitOps Bridge "
                    "with its own route53_weight?): change the weight in one place only")
        return ("check the chain: the ApplicationSet renders the annotation into the Ingress's aws-weight, the "
                "Applications synced, external-dns runs and owns the records (its logs); raise route.sync_timeout "
                "if it is slow. bluegreen rolls the annotations back")


