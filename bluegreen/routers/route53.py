"""Route 53 weighted records as a :class:`~bluegreen.core.ports.WeightRouter`.

What it guarantees, and why:
- One ChangeResourceRecordSets per hosted zone per step, UPSERTing both record sets of every managed name,
  so each weighted pair changes atomically (a half-applied pair could be an all-zero group, which Route 53
  answers as an equal split). Batches split only where Route 53's limits force it (1,000 ResourceRecord
  elements, 32,000 characters; an UPSERT counts twice), and never between the two sets of a pair.
- Only Weight (and TTL when asked) changes: values, alias targets and health check ids are kept as read.
- Setting and verifying are separate acts: ``verify`` waits for INSYNC (GetChange, bounded, with backoff)
  and then reads the records back.
- Throttling, PriorRequestNotComplete and 5xx are retried with jittered exponential backoff, bounded in
  time by ``route.retry_timeout`` alone, and every call is paced below the account's rate limit, with part
  of each second kept for the emergency path (a rollback never waits behind the step it undoes).
"""

from __future__ import annotations

import copy
import math
import re
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import structlog
import tenacity

from bluegreen.config import AwsConfig, RouteConfig
from bluegreen.core.clock import Clock, SystemClock
from bluegreen.core.weights import LiveState, RecordState, SideWeights
from bluegreen.errors import PreflightError, RouterError, WeightsChangedExternally, shorten
from bluegreen.core.ports import TtlSpec

log = structlog.get_logger("bluegreen.route53")

MAX_RECORDS_PER_BATCH = 1000  # ResourceRecord elements; an UPSERT counts twice
MAX_CHARS_PER_BATCH = 32000  # characters of record values; an UPSERT counts twice
FULL_LISTING_THRESHOLD = 8  # zone size unknown: above this many names, one paginated listing is cheaper
LIST_PAGE_SIZE = 300  # record sets per ListResourceRecordSets page
RETRYABLE_CODES = {
    "Throttling", "ThrottlingException", "PriorRequestNotComplete", "RequestLimitExceeded",
    "ServiceUnavailable", "InternalFailure", "InternalError", "RequestTimeout",
}


class RateLimiter:
    """At most ``rate`` calls in any one-second window, wherever the window is placed, shared by every call
    of a router: never above Route 53's account rate (10/s, burst 50, since 2026), not even in a burst.

    A sliding log of the latest grants (not a token bucket: a bucket of 5 refilled at 4/s lets 9 calls into
    one second). Below 1/s, one call per ``1 / rate`` seconds. Ordinary calls may use all but ``reserve``
    of the window's slots; ``urgent`` calls (a rollback) may use every slot, so the emergency change never
    waits behind the calls of the step it undoes.
    """

    def __init__(self, rate: float, clock: Clock, *, reserve: int = 2) -> None:
        self.rate = rate
        self.limit = max(1, int(rate))
        self.reserve = min(reserve, self.limit - 1)
        self.window = 1.0 if rate >= 1 else 1.0 / rate
        self.clock = clock
        self._granted: deque[float] = deque()
        self._lock = threading.Lock()

    def acquire(self, *, urgent: bool = False) -> None:
        limit = self.limit if urgent else self.limit - self.reserve
        while True:
            with self._lock:
                now = self.clock.monotonic()
                while self._granted and self._granted[0] <= now - self.window:
                    self._granted.popleft()
                if len(self._granted) < limit:
                    self._granted.append(now)
                    return
                wait = self._granted[len(self._granted) - limit] + self.window - now
            self.clock.sleep(wait)


_OCTAL_ESCAPE = re.compile(r"\\(\d{3})")


def decode_name(name: str) -> str:
    """Route 53 returns names with a trailing dot and special characters as octal escapes (\\052 = *)."""
    return _OCTAL_ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), name).rstrip(".").lower()


@dataclass
class _Zone:
    ref: str  # as written in config
    id: str  # bare id, no /hostedzone/ prefix
    name: str  # without trailing dot
    records: list[str]
    record_sets: int | None = None  # ResourceRecordSetCount when resolved (a cost hint, may be stale)

    def full_listing_is_cheaper(self, lookups: int) -> bool:
        """One paginated listing of the zone, or one call per name: whichever makes fewer calls. A small
        zone is one page, so even two names are read in one call."""
        if self.record_sets is None:
            return lookups > FULL_LISTING_THRESHOLD
        return math.ceil(max(1, self.record_sets) / LIST_PAGE_SIZE) < lookups


@dataclass(frozen=True)
class _Pair:
    """The two weighted record sets of one name and type, as read (raw boto3 dicts). Travels with the live
    state (``RecordState.handle``), so a write starts from what was read, not from hidden router state."""

    zone: _Zone
    name: str
    type: str
    blue: dict
    green: dict

    def sets(self) -> tuple[dict, dict]:
        return self.blue, self.green


def _is_retryable(error: BaseException) -> bool:
    from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError, ReadTimeoutError

    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0
        return code in RETRYABLE_CODES or status >= 500
    return isinstance(error, (EndpointConnectionError, ConnectionClosedError, ReadTimeoutError))


def _describe(error: BaseException) -> str:
    from botocore.exceptions import ClientError

    if isinstance(error, ClientError):
        err = error.response.get("Error", {})
        return f"{err.get('Code', 'Error')}: {shorten(err.get('Message', ''), 200)}"
    return shorten(f"{type(error).__name__}: {error}", 200)


class Route53Router:
    def __init__(
        self,
        route: RouteConfig,
        aws: AwsConfig,
        *,
        clock: Clock | None = None,
        client: Any = None,
    ) -> None:
        self.route = route
        self.clock = clock or SystemClock()
        if client is None:
            from bluegreen.adapters.aws import client as make_client

            # botocore's own retries are off: our policy below is bounded, jittered and logged.
            client = make_client(aws, "route53", total_attempts=1)
        self.client = client
        self.limiter = RateLimiter(aws.route53_requests_per_second, self.clock)
        self._zones: list[_Zone] | None = None
        self.calls: dict[str, int] = {}
        self.urgent = False  # set by the emergency path: its calls may use the reserved rate

    # -- calls ---------------------------------------------------------------------------------------
    def _call(self, operation: str, **kwargs: Any) -> dict:
        def attempt() -> dict:
            self.limiter.acquire(urgent=self.urgent)
            self.calls[operation] = self.calls.get(operation, 0) + 1
            return getattr(self.client, operation)(**kwargs)

        def before_sleep(state: tenacity.RetryCallState) -> None:
            log.warning("route53_retry", operation=operation, attempt=state.attempt_number,
                        error=_describe(state.outcome.exception()),
                        wait_seconds=round(state.next_action.sleep, 2) if state.next_action else None)

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(_is_retryable),
            wait=tenacity.wait_random_exponential(multiplier=0.2, max=5.0),
            # route.retry_timeout alone bounds the retries: a hidden attempt cap would end them sooner.
            stop=tenacity.stop_after_delay(self.route.retry_timeout),
            sleep=self.clock.sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            return retrying(attempt)
        except Exception as error:  # noqa: BLE001 - every failure becomes a typed, short RouterError
            from botocore.exceptions import BotoCoreError, ClientError

            if isinstance(error, (ClientError, BotoCoreError)):
                from bluegreen.adapters.aws import credentials_error

                raise credentials_error(error) or RouterError(
                    f"Route 53 {operation} failed: {_describe(error)}") from error
            raise

    # -- zones -----------------------------------------------------------------------------------------
    def zones(self) -> list[_Zone]:
        if self._zones is None:
            grouped: dict[str, list[str]] = {}
            for record in self.route.records:
                grouped.setdefault(record.zone or self.route.hosted_zone or "", []).append(record.name)
            self._zones = [self._resolve_zone(ref, names) for ref, names in grouped.items()]
        return self._zones

    def _resolve_zone(self, ref: str, names: list[str]) -> _Zone:
        # Zone ids are upper-case alphanumerics (Z... on AWS); zone names have dots.
        if re.fullmatch(r"(/hostedzone/)?[A-Z0-9]+", ref):
            zone_id = ref.rsplit("/", 1)[-1]
            from botocore.exceptions import ClientError

            try:
                zone = self._call("get_hosted_zone", Id=zone_id)["HostedZone"]
            except RouterError as error:
                cause = error.__cause__
                if isinstance(cause, ClientError) and cause.response["Error"]["Code"] == "NoSuchHostedZone":
                    raise PreflightError(f"hosted zone {ref} does not exist",
                                         hint="check route.hosted_zone (a zone name or id)") from None
                raise
            found = [zone]
        else:
            wanted = ref.rstrip(".").lower()
            answer = self._call("list_hosted_zones_by_name", DNSName=wanted + ".", MaxItems="10")
            found = [z for z in answer.get("HostedZones", []) if decode_name(z["Name"]) == wanted]
            if not found:
                raise PreflightError(f"hosted zone {ref!r} does not exist in this account",
                                     hint="check route.hosted_zone, the AWS profile and region")
            if len(found) > 1:
                ids = ", ".join(z["Id"].rsplit("/", 1)[-1] for z in found)
                raise PreflightError(
                    f"more than one hosted zone is named {ref!r} ({ids}), e.g. a public and a private one",
                    hint="set route.hosted_zone to the id of the zone to change",
                )
        zone = found[0]
        zone_name = decode_name(zone["Name"])
        for name in names:
            if name != zone_name and not name.endswith("." + zone_name):
                raise PreflightError(f"record {name} is not inside hosted zone {zone_name}",
                                     hint="fix route.records or the record's zone")
        count = zone.get("ResourceRecordSetCount")
        return _Zone(ref=ref, id=zone["Id"].rsplit("/", 1)[-1], name=zone_name, records=names,
                     record_sets=int(count) if count is not None else None)

    # -- read --------------------------------------------------------------------------------------------
    def _list_sets(self, zone: _Zone) -> Iterable[dict]:
        wanted = set(zone.records)
        if zone.full_listing_is_cheaper(len(zone.records)):
            kwargs: dict[str, Any] = {"HostedZoneId": zone.id, "MaxItems": str(LIST_PAGE_SIZE)}
            while True:
                page = self._call("list_resource_record_sets", **kwargs)
                for rrset in page.get("ResourceRecordSets", []):
                    if decode_name(rrset["Name"]) in wanted:
                        yield rrset
                if not page.get("IsTruncated"):
                    return
                kwargs = {"HostedZoneId": zone.id, "MaxItems": str(LIST_PAGE_SIZE),
                          "StartRecordName": page["NextRecordName"], "StartRecordType": page["NextRecordType"]}
                if page.get("NextRecordIdentifier"):
                    kwargs["StartRecordIdentifier"] = page["NextRecordIdentifier"]
        for name in zone.records:
            kwargs = {"HostedZoneId": zone.id, "StartRecordName": name + ".", "MaxItems": "100"}
            while True:
                page = self._call("list_resource_record_sets", **kwargs)
                sets = page.get("ResourceRecordSets", [])
                past_name = False
                for rrset in sets:
                    if decode_name(rrset["Name"]) != name:
                        past_name = True
                        break
                    yield rrset
                if past_name or not page.get("IsTruncated") or decode_name(page.get("NextRecordName", "")) != name:
                    break
                kwargs = {"HostedZoneId": zone.id, "MaxItems": "100",
                          "StartRecordName": page["NextRecordName"], "StartRecordType": page["NextRecordType"]}
                if page.get("NextRecordIdentifier"):
                    kwargs["StartRecordIdentifier"] = page["NextRecordIdentifier"]

    def read(self) -> LiveState:
        pairs: list[_Pair] = []
        ids = {self.route.blue: "blue", self.route.green: "green"}
        for zone in self.zones():
            found: dict[str, dict[str, dict[str, dict]]] = {name: {} for name in zone.records}
            others: dict[str, list[str]] = {name: [] for name in zone.records}
            for rrset in self._list_sets(zone):
                name = decode_name(rrset["Name"])
                side = ids.get(rrset.get("SetIdentifier", ""))
                if side is None:
                    others[name].append(f"{rrset['Type']} {rrset.get('SetIdentifier') or '(simple record)'}")
                    continue
                found[name].setdefault(rrset["Type"], {})[side] = rrset
            for name in zone.records:
                pairs.extend(self._pairs_of(zone, name, found[name], others[name]))
        return LiveState(tuple(self._state_of(pair) for pair in pairs))

    def record_sets(self) -> dict[str, list[dict]]:
        """Every record set of each name in ``route.records`` as Route 53 lists it (raw dicts), whatever its
        SetIdentifier; a name with none maps to ``[]``. ``bluegreen init`` learns the pair from these."""
        found: dict[str, list[dict]] = {}
        for zone in self.zones():
            sets: dict[str, list[dict]] = {name: [] for name in zone.records}
            for rrset in self._list_sets(zone):
                sets[decode_name(rrset["Name"])].append(rrset)
            found.update(sets)
        return found

    def _pairs_of(self, zone: _Zone, name: str, by_type: dict[str, dict[str, dict]], others: list[str]) -> list[_Pair]:
        blue_id, green_id = self.route.blue, self.route.green
        if not by_type:
            seen = f" (found: {', '.join(others)})" if others else ""
            raise PreflightError(
                f"record {name} has no weighted record sets with SetIdentifier {blue_id!r} or {green_id!r}{seen}",
                hint="create both weighted records (blue and green) first, e.g. with Terraform; bluegreen does "
                     "not convert a simple record into weighted ones",
            )
        pairs = []
        for rtype, sides in sorted(by_type.items()):
            missing = [ident for side, ident in (("blue", blue_id), ("green", green_id)) if side not in sides]
            if missing:
                other_types = sorted(t for t in by_type if t != rtype)
                detail = f"; the other side exists with type {', '.join(other_types)}" if other_types else ""
                raise PreflightError(
                    f"record {name} {rtype} has no weighted record set with SetIdentifier {missing[0]!r}{detail}",
                    hint="both sides must exist as weighted records of the same name and type",
                )
            for side, rrset in sides.items():
                if "Weight" not in rrset:
                    raise PreflightError(
                        f"record {name} {rtype} {rrset['SetIdentifier']!r} is not a weighted record",
                        hint="bluegreen moves traffic with weighted routing only",
                    )
            strays = [o for o in others if o.split(" ", 1)[0] == rtype and o.split(" ", 1)[1] != "(simple record)"]
            if strays:
                raise PreflightError(
                    f"record {name} {rtype} has other weighted record sets besides blue and green: "
                    f"{', '.join(s.split(' ', 1)[1] for s in strays)}",
                    hint="bluegreen manages groups of exactly two weighted records; remove the others",
                )
            blue, green = sides["blue"], sides["green"]
            if "TTL" in blue and "TTL" in green and blue["TTL"] != green["TTL"]:
                raise PreflightError(
                    f"record {name} {rtype}: the TTLs of the group disagree (blue {blue['TTL']}, green {green['TTL']})",
                    hint="Route 53 applies the last TTL set to the whole group; make them equal first",
                )
            pairs.append(_Pair(zone=zone, name=name, type=rtype, blue=blue, green=green))
        return pairs

    def _state_of(self, pair: _Pair) -> RecordState:
        ttls = [s["TTL"] for s in pair.sets() if "TTL" in s]
        per_side: dict[str, tuple[str, ...]] = {}
        for side, rrset in (("blue", pair.blue), ("green", pair.green)):
            if "AliasTarget" in rrset:
                per_side[side] = (rrset["AliasTarget"]["DNSName"].rstrip(".").lower(),)
            else:
                per_side[side] = tuple(r["Value"] for r in rrset.get("ResourceRecords", []))
        alias = any("AliasTarget" in s for s in pair.sets())
        values = tuple(f"{side}: {'alias ' if 'AliasTarget' in rrset else ''}{', '.join(per_side[side])}"
                       for side, rrset in (("blue", pair.blue), ("green", pair.green)))
        return RecordState(
            name=pair.name,
            type=pair.type,
            weights=SideWeights(blue=int(pair.blue["Weight"]), green=int(pair.green["Weight"])),
            ttl=max(ttls) if ttls else None,
            values=values,
            zone=pair.zone.name,
            alias=alias,
            blue_values=per_side["blue"],
            green_values=per_side["green"],
            handle=pair,
        )

    # -- ownership -----------------------------------------------------------------------------------
    def external_dns_owners(self) -> tuple[dict[str, str], list[str]]:
        """Names managed here that external-dns owns (with the owner id of its TXT registry record), and
        warnings about TXT records near a name that look like ownership records bluegreen cannot place.

        external-dns puts back, on its next sync, any weight written behind its back, so writing these
        records directly would be undone within a minute. Its TXT registry record sits at the record's own
        name (old format), at a type prefix (``a-``, ``aaaa-``, ``cname-``), or where ``--txt-prefix`` /
        ``--txt-suffix`` put it (``route.txt_prefix`` / ``route.txt_suffix``, ``%{record_type}`` allowed);
        its value holds ``heritage=external-dns``. Registries kept elsewhere (DynamoDB, the DNSEndpoint CRD,
        encrypted TXT values) cannot be seen from Route 53.
        """
        owners: dict[str, str] = {}
        warnings: list[str] = []
        for zone in self.zones():
            candidates = {c: name for name in zone.records for c in txt_owner_names(name, self.route)}
            for rrset in self._txt_sets(zone, candidates):
                name = candidates.get(decode_name(rrset["Name"]))
                for record in rrset.get("ResourceRecords", []):
                    match = re.search(r"heritage=external-dns(?:.*external-dns/owner=([^,\"]+))?", record["Value"])
                    if name and match:
                        owners[name] = match.group(1) or "unknown owner"
                    elif name and re.search(r"heritage=|external-dns|owner=", record["Value"]):
                        warnings.append(f"TXT {decode_name(rrset['Name'])} looks like an ownership record "
                                        f"but does not say heritage=external-dns")
        return owners, warnings

    def _txt_sets(self, zone: _Zone, candidates: dict[str, str]) -> Iterable[dict]:
        if zone.full_listing_is_cheaper(len(candidates)):
            scan = _Zone(zone.ref, zone.id, zone.name, records=sorted(candidates), record_sets=zone.record_sets)
            yield from (r for r in self._list_sets(scan) if r["Type"] == "TXT")
            return
        for candidate in candidates:
            page = self._call("list_resource_record_sets", HostedZoneId=zone.id, StartRecordName=candidate + ".",
                              StartRecordType="TXT", MaxItems="1")
            for rrset in page.get("ResourceRecordSets", []):
                if rrset["Type"] == "TXT" and decode_name(rrset["Name"]) == candidate:
                    yield rrset

    # -- set ---------------------------------------------------------------------------------------------
    def preflight(self, live: LiveState | None = None) -> None:
        """A weight written into Route 53 directly must stick: refuse records that external-dns owns."""
        owners, warnings = self.external_dns_owners()
        for warning in warnings:
            log.warning("ownership_record_unclear", detail=warning)
        if owners:
            listed = ", ".join(f"{name} (owner {owner})" for name, owner in sorted(owners.items()))
            raise PreflightError(
                f"external-dns owns {listed}: a weight written into Route 53 directly would be put back on "
                "its next sync",
                hint="set route.driver: external-dns (weights on the Ingress/Service annotations), or "
                     "route.driver: argocd (weights on the ArgoCD cluster secret)")

    def close(self) -> None:
        pass

    def set(self, weights: SideWeights, *, live: LiveState | None = None, ttl: TtlSpec = None,
            urgent: bool = False) -> list[str]:
        """``live``: the state read last (the engine always passes it); None reads it now."""
        # The emergency path's calls (this change, its INSYNC wait and read-back) may use the reserved rate.
        self.urgent = urgent
        if weights.all_zero:
            # Route 53 answers an all-zero group as an equal split: it would send half the traffic to a side
            # the user meant to switch off.
            raise RouterError(f"refusing to write an all-zero weight group ({weights})")
        live = live if live is not None else self.read()
        change_ids: list[str] = []
        by_zone: dict[str, list[_Pair]] = {}
        for record in live.records:
            pair = record.handle
            if not isinstance(pair, _Pair):
                raise RouterError(f"record {record.name} {record.type} was not read by this router")
            by_zone.setdefault(pair.zone.id, []).append(pair)
        for zone_id, pairs in by_zone.items():
            for batch in split_batches([self._upserts(pair, weights, ttl) for pair in pairs]):
                answer = self._call(
                    "change_resource_record_sets",
                    HostedZoneId=zone_id,
                    ChangeBatch={"Comment": f"bluegreen: {weights}", "Changes": batch},
                )
                change_id = answer["ChangeInfo"]["Id"].rsplit("/", 1)[-1]
                change_ids.append(change_id)
                log.info("route53_change_submitted", zone=pairs[0].zone.name, change_id=change_id,
                         records=sorted({f"{p.name} {p.type}" for p in pairs}), weights=weights.as_dict(),
                         ttl=ttl if not isinstance(ttl, dict) else "per record", changes=len(batch))
        return change_ids

    @staticmethod
    def _upserts(pair: _Pair, weights: SideWeights, ttl: TtlSpec) -> list[dict]:
        want = ttl.get((pair.name, pair.type)) if isinstance(ttl, dict) else ttl
        changes = []
        for side, rrset in (("blue", pair.blue), ("green", pair.green)):
            new = copy.deepcopy(rrset)
            new["Weight"] = weights.of(side)
            if want is not None and "TTL" in new:  # an alias set has no TTL of its own
                new["TTL"] = want
            changes.append({"Action": "UPSERT", "ResourceRecordSet": new})
        return changes

    # -- verify ------------------------------------------------------------------------------------------
    def verify(self, weights: SideWeights, changes: Sequence[str], *, ttl: TtlSpec = None) -> LiveState:
        for change_id in changes:
            self.wait_insync(change_id)
        live = self.read()
        wrong = live.mismatches(weights, ttl)
        if wrong:
            # After INSYNC, Route 53 answers with what was written: anything else was written by someone else.
            raise WeightsChangedExternally(
                f"read-back after INSYNC does not show {weights}: {', '.join(wrong[:5])}")
        return live

    def wait_insync(self, change_id: str) -> None:
        deadline = self.clock.monotonic() + self.route.insync_timeout
        delay = 0.1
        while True:
            status = self._call("get_change", Id=change_id)["ChangeInfo"]["Status"]
            if status == "INSYNC":
                return
            if self.clock.monotonic() >= deadline:
                raise RouterError(
                    f"change {change_id} is still {status} after {self.route.insync_timeout:.0f}s "
                    f"(route.insync_timeout): {self._live_weights_text()}",
                    hint=f"Route 53 usually syncs within 60s; `aws route53 get-change --id {change_id}` tells "
                         "when it is done; raise route.insync_timeout or check the AWS status page")
            self.clock.sleep(min(delay, max(0.0, deadline - self.clock.monotonic())))
            delay = min(delay * 2, 5.0)

    def _live_weights_text(self) -> str:
        """What Route 53 holds now, for a message (a diagnosis: a failure to read says so)."""
        try:
            live = self.read()
        except Exception:  # noqa: BLE001 - the message must not hide the original failure
            return "the live weights could not be read"
        weights = live.weights()
        return (f"Route 53 holds {weights} now" if weights is not None else
                "Route 53 holds " + ", ".join(f"{r.name} {r.type} {r.weights}" for r in live.records))


def txt_owner_names(name: str, route: RouteConfig) -> list[str]:
    """Where external-dns may keep the TXT ownership record of ``name``: at the name, behind a type prefix
    (registry format since v0.12), or with --txt-prefix / --txt-suffix (on the first label, as external-dns
    applies the suffix), with ``%{record_type}`` expanded for each type."""
    names = [name] + [f"{t}-{name}" for t in ("a", "aaaa", "cname")]
    first, _, rest = name.partition(".")
    for rtype in ("a", "aaaa", "cname"):
        prefix = route.txt_prefix.replace("%{record_type}", rtype)
        suffix = route.txt_suffix.replace("%{record_type}", rtype)
        if prefix or suffix:
            names.append(f"{prefix}{first}{suffix}" + (f".{rest}" if rest else ""))
    return list(dict.fromkeys(n.lower() for n in names))


def split_batches(pairs: list[list[dict]]) -> list[list[dict]]:
    """Group the UPSERTs of pairs into change batches within Route 53's limits, never splitting a pair."""
    batches: list[list[dict]] = []
    current: list[dict] = []
    records = chars = 0
    for changes in pairs:
        pair_records = pair_chars = 0
        for change in changes:
            rrset = change["ResourceRecordSet"]
            values = [r["Value"] for r in rrset.get("ResourceRecords", [])] or [""]
            pair_records += 2 * len(values)  # an UPSERT counts twice
            pair_chars += 2 * sum(len(v) for v in values)
        if current and (records + pair_records > MAX_RECORDS_PER_BATCH or chars + pair_chars > MAX_CHARS_PER_BATCH):
            batches.append(current)
            current, records, chars = [], 0, 0
        current.extend(changes)
        records += pair_records
        chars += pair_chars
    if current:
        batches.append(current)
    return batches
