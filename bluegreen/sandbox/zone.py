"""Seeding the sandbox's hosted zone: the weighted A pairs the EKS Blueprints pattern creates."""

from __future__ import annotations

import uuid
from typing import Iterable, Mapping, Sequence

from bluegreen.sandbox.moto_server import sandbox_client

DEFAULT_BLUE_ID = "eks-blueprint-blue"
DEFAULT_GREEN_ID = "eks-blueprint-green"


def seed_zone(endpoint_url: str, zone: str = "example.com", records: Iterable[str] = ("burnham.example.com",), *,
              blue_id: str = DEFAULT_BLUE_ID, green_id: str = DEFAULT_GREEN_ID, blue_ip: str = "127.0.0.2",
              green_ip: str = "127.0.0.3", ttl: int = 60, weights: Sequence[int] = (100, 0),
              aliases: Mapping[str, dict] | None = None) -> str:
    """Create the hosted zone and, per record name, a blue and a green weighted A record. Returns the zone id.

    ``aliases`` maps a side ("blue", "green") to an ``AliasTarget``: that side's record sets are aliases to it
    (as external-dns writes them for an ALB Ingress) instead of carrying an address and a TTL.

    A new zone is created every time (Route 53 allows several zones with one name), so two sandboxes in one
    process never share records; refer to the zone by the id returned.
    """
    client = sandbox_client(endpoint_url)
    created = client.create_hosted_zone(Name=zone.rstrip(".") + ".", CallerReference=uuid.uuid4().hex)
    zone_id = created["HostedZone"]["Id"].rsplit("/", 1)[-1]
    blue_weight, green_weight = weights
    changes = []
    for name in records:
        for side, set_id, weight, ip in (("blue", blue_id, blue_weight, blue_ip),
                                         ("green", green_id, green_weight, green_ip)):
            rrset: dict = {"Name": name.rstrip(".") + ".", "Type": "A", "SetIdentifier": set_id, "Weight": weight}
            if aliases and side in aliases:
                rrset["AliasTarget"] = dict(aliases[side])
            else:
                rrset.update(TTL=ttl, ResourceRecords=[{"Value": ip}])
            changes.append({"Action": "CREATE", "ResourceRecordSet": rrset})
    if changes:
        client.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": changes})
    return zone_id


def list_record_sets(client, zone_id: str) -> list[dict]:
    pages = client.get_paginator("list_resource_record_sets").paginate(HostedZoneId=zone_id)
    return [rrset for page in pages for rrset in page["ResourceRecordSets"]]


def set_weights(endpoint_url: str, zone_id: str, weights: Sequence[int], *, names: Iterable[str] | None = None,
                blue_id: str = DEFAULT_BLUE_ID, green_id: str = DEFAULT_GREEN_ID, ttl: int | None = None) -> None:
    """Change the weights behind bluegreen's back (as a person or external-dns would), in one batch."""
    client = sandbox_client(endpoint_url)
    wanted = {n.rstrip(".").lower() for n in names} if names is not None else None
    by_id = {blue_id: weights[0], green_id: weights[1]}
    changes = []
    for rrset in list_record_sets(client, zone_id):
        name = rrset["Name"].rstrip(".").lower()
        if rrset.get("SetIdentifier") not in by_id or (wanted is not None and name not in wanted):
            continue
        updated = dict(rrset, Weight=by_id[rrset["SetIdentifier"]])
        if ttl is not None and "AliasTarget" not in rrset:  # an alias has no TTL of its own
            updated["TTL"] = ttl
        changes.append({"Action": "UPSERT", "ResourceRecordSet": updated})
    if changes:
        client.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": changes})


def delete_zone(endpoint_url: str, zone_id: str) -> None:
    """Remove every record but SOA/NS at the apex, then the zone, so moto's memory does not grow per sandbox."""
    client = sandbox_client(endpoint_url)
    records = list_record_sets(client, zone_id)
    zone_name = client.get_hosted_zone(Id=zone_id)["HostedZone"]["Name"]
    changes = [{"Action": "DELETE", "ResourceRecordSet": r} for r in records
               if not (r["Name"] == zone_name and r["Type"] in ("SOA", "NS"))]
    if changes:
        client.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": changes})
    client.delete_hosted_zone(Id=zone_id)
