"""A small stand-in for external-dns (and, for the argocd driver, the ApplicationSet before it).

Every ``interval`` seconds a background thread reads weights from the emulated clusters through the
official kubernetes client (over HTTP, with a kubeconfig context, like any client) and UPSERTs them into
the moto hosted zone with boto3 over HTTP, keeping each record's values and changing only Weight (and TTL
when a ttl annotation is present). Like the real one, each instance plays one cluster's external-dns:
start one per side to let the sides sync on their own schedules.

Knobs, changeable while it runs:
- ``delay``: seconds a new weight must have been seen before it is synced (a slow sync);
- ``never``: read but never sync (external-dns down, not owning the records, filtered out...).

Sources:
- ``ingress`` / ``service``: weight and SetIdentifier from ``<prefix>/aws-weight`` and
  ``<prefix>/set-identifier`` (ttl from ``<prefix>/ttl``), as external-dns reads them;
- ``secret``: an ArgoCD cluster secret's weight annotation with a fixed SetIdentifier, standing in for
  the ApplicationSet that renders it into the Ingress plus external-dns. Only metadata is read: the
  secret's ``data`` is dropped unread.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any

import boto3

PREFIX = "external-dns.alpha.kubernetes.io"


@dataclass(frozen=True)
class Source:
    context: str  # kubeconfig context of the cluster holding the object
    kind: str  # ingress | service | secret
    namespace: str
    name: str
    set_identifier: str | None = None  # secrets only: what the ApplicationSet would render
    weight_annotation: str = "route53_weight"  # secrets only


class FakeExternalDns:
    def __init__(self, *, kubeconfig: str, endpoint: str, zone_id: str, records: list[str], sources: list[Source],
                 interval: float = 0.05, delay: float = 0.0, never: bool = False, prefix: str = PREFIX) -> None:
        self.kubeconfig = kubeconfig
        self.route53 = boto3.client("route53", endpoint_url=endpoint, region_name="us-east-1",
                                    aws_access_key_id="testing", aws_secret_access_key="testing")
        self.zone_id = zone_id
        self.records = [r.rstrip(".") for r in records]
        self.sources = list(sources)
        self.interval = interval
        self.delay = delay
        self.never = never
        self.prefix = prefix
        self.syncs: list[dict[str, tuple[int, int | None]]] = []  # what each sync wrote
        self.errors: list[str] = []
        self._applied: dict[str, tuple[int, int | None]] = {}
        self._first_seen: dict[str, tuple[tuple[int, int | None], float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fake-external-dns", daemon=True)
        self._clients: dict[str, Any] = {}

    # -- lifecycle ------------------------------------------------------------------------------------
    def start(self) -> "FakeExternalDns":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for client in self._clients.values():
            client.close()

    def __enter__(self) -> "FakeExternalDns":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception as error:  # noqa: BLE001 - a test helper keeps going, and says why
                self.errors.append(f"{type(error).__name__}: {error}")
            self._stop.wait(self.interval)

    # -- one sync --------------------------------------------------------------------------------------
    def _client(self, context: str):
        from kubernetes import config as k8s_config

        if context not in self._clients:
            self._clients[context] = k8s_config.new_client_from_config(config_file=self.kubeconfig, context=context)
        return self._clients[context]

    def _annotations(self, source: Source) -> dict[str, str]:
        from kubernetes import client as k8s

        api_client = self._client(source.context)
        if source.kind == "ingress":
            obj = k8s.NetworkingV1Api(api_client).read_namespaced_ingress(source.name, source.namespace)
            return dict(obj.metadata.annotations or {})
        if source.kind == "service":
            obj = k8s.CoreV1Api(api_client).read_namespaced_service(source.name, source.namespace)
            return dict(obj.metadata.annotations or {})
        response = k8s.CoreV1Api(api_client).read_namespaced_secret(source.name, source.namespace,
                                                                     _preload_content=False)
        raw = json.loads(response.data)
        response.release_conn()
        return dict((raw.get("metadata") or {}).get("annotations") or {})

    def desired(self) -> dict[str, tuple[int, int | None]]:
        """SetIdentifier -> (weight, ttl) as the sources say now."""
        wanted: dict[str, tuple[int, int | None]] = {}
        for source in self.sources:
            annotations = self._annotations(source)
            if source.kind == "secret":
                ident, weight, ttl = source.set_identifier, annotations.get(source.weight_annotation), None
            else:
                ident = annotations.get(f"{self.prefix}/set-identifier")
                weight = annotations.get(f"{self.prefix}/aws-weight")
                ttl = annotations.get(f"{self.prefix}/ttl")
            if ident and weight is not None and weight.isdigit():
                wanted[ident] = (int(weight), int(ttl) if ttl and ttl.isdigit() else None)
        return wanted

    def tick(self) -> None:
        now = time.monotonic()
        for ident, value in self.desired().items():
            if self._applied.get(ident) == value:
                self._first_seen.pop(ident, None)
                continue
            seen = self._first_seen.get(ident)
            if seen is None or seen[0] != value:
                self._first_seen[ident] = (value, now)
                seen = self._first_seen[ident]
            if self.never or now - seen[1] < self.delay:
                continue
            self._upsert(ident, *value)
            self._applied[ident] = value
            self._first_seen.pop(ident, None)
            self.syncs.append({ident: value})

    def _upsert(self, ident: str, weight: int, ttl: int | None) -> None:
        changes = []
        for name in self.records:
            page = self.route53.list_resource_record_sets(HostedZoneId=self.zone_id, StartRecordName=name + ".",
                                                          MaxItems="100")
            for rrset in page["ResourceRecordSets"]:
                if rrset["Name"].rstrip(".") != name or rrset.get("SetIdentifier") != ident:
                    continue
                new = dict(rrset, Weight=weight)
                if ttl is not None and "TTL" in new:
                    new["TTL"] = ttl
                changes.append({"Action": "UPSERT", "ResourceRecordSet": new})
        if changes:
            self.route53.change_resource_record_sets(
                HostedZoneId=self.zone_id, ChangeBatch={"Comment": "fake external-dns", "Changes": changes})
