"""Route 53 changes that take time to propagate: a proxy in front of moto that keeps each change PENDING.

Real Route 53 answers ChangeResourceRecordSets with ``Status: PENDING`` and a change id; GetChange on that id
says PENDING until every Route 53 name server has the change, then INSYNC ("usually within 60 seconds",
Route 53 API Reference, GetChange). moto answers INSYNC at once, with the same change id for every change, so a
controller's INSYNC wait is never exercised. :class:`Route53Proxy` sits between the client and moto and:

- forwards ChangeResourceRecordSets to moto, gives the change an id of its own and answers PENDING;
- answers GetChange for its ids with PENDING until ``pending_seconds`` have passed since the change was
  submitted, INSYNC after (the clock is injectable);
- keeps the *published* state of each zone: what the name servers answer. A change becomes visible there only
  when it is INSYNC, never before. Real name servers pick a change up one by one during propagation, so a
  client may see it earlier; but INSYNC is the only proof that all of them have it, and the sandbox models the
  strict reading, where a controller that does not wait for INSYNC sees the old answers.

How the DNS server follows it (the design choice): moto applies a change at once, so the proxy lists the zone
just *before* forwarding each change (changes are serialised under one lock) and keeps that listing with the
change. While any change of a zone is still PENDING, the published state is the listing from before the oldest
PENDING change; when none is, it is moto's live listing. The DNS server reads :meth:`published_listing`
instead of moto (``WeightedDnsServer(source=proxy)``), wakes up at :meth:`next_change_at`, and the proxy
refreshes it before it answers INSYNC to anyone (:meth:`subscribe`), so a client that has seen INSYNC never
gets the old answer from the DNS server.

Writes made directly to moto (the sandbox's ``set_weights``, a shortcut for tests) skip the PENDING window;
while a change sent through the proxy is PENDING they show up only when it turns INSYNC.
"""

from __future__ import annotations

import datetime
import re
import secrets
import string
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import unquote, urlsplit

from bluegreen.sandbox.faults import ThrottlingProxy

_ZONE_RRSET = re.compile(r"/2013-04-01/hostedzone/(?P<zone>[^/]+)/rrset/?")
_CHANGE = re.compile(r"/2013-04-01/change/(?P<change>[^/]+)")
_ID_ALPHABET = string.ascii_uppercase + string.digits
_XMLNS = "https://route53.amazonaws.com/doc/2013-04-01/"


@dataclass
class _Change:
    change_id: str
    zone_id: str
    submitted: float  # on the proxy's clock
    submitted_at: str  # wall-clock time, as GetChange reports it
    insync_at: float
    before: list[dict]  # the zone as published before this change
    announced: bool = False  # subscribers were told it is INSYNC


@dataclass
class _Zone:
    changes: list[_Change] = field(default_factory=list)  # in submission order (= INSYNC order)


def new_change_id() -> str:
    """An id shaped like Route 53's (``C`` and 13 upper-case letters and digits)."""
    return "C" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(13))


class Route53Proxy(ThrottlingProxy):
    """A :class:`ThrottlingProxy` (it can still fail calls on demand) whose changes stay PENDING for
    ``pending_seconds``; ``pending_seconds=0`` answers INSYNC at once, as moto does."""

    def __init__(self, upstream_url: str, *, pending_seconds: float = 0.0,
                 monotonic: Callable[[], float] = time.monotonic, host: str = "127.0.0.1") -> None:
        if pending_seconds < 0:
            raise ValueError(f"pending_seconds must be >= 0, got {pending_seconds}")
        super().__init__(upstream_url, host=host)
        self.upstream_url = upstream_url
        self.pending_seconds = float(pending_seconds)
        self.monotonic = monotonic
        self._changes: dict[str, _Change] = {}
        self._zones: dict[str, _Zone] = {}
        self._change_lock = threading.Lock()  # serialises changes and the published view
        self._subscribers: dict[str, list[Callable[[], None]]] = {}
        self._lister: Any = None
        self._lister_lock = threading.Lock()

    # -- what the name servers answer -----------------------------------------------------------------------
    def published_listing(self, zone_id: str) -> list[dict]:
        """The zone's record sets as the name servers have them: without the changes still PENDING."""
        with self._change_lock:
            pending = self._pending(zone_id)
            if pending:
                return pending[0].before
            return self._list(zone_id)

    def next_change_at(self, zone_id: str) -> float | None:
        """When (on :attr:`monotonic`'s clock) the oldest PENDING change of the zone turns INSYNC, if any."""
        with self._change_lock:
            pending = self._pending(zone_id)
            return pending[0].insync_at if pending else None

    def subscribe(self, zone_id: str, callback: Callable[[], None]) -> None:
        """``callback()`` runs when a change of the zone turns INSYNC, before anyone is told so."""
        self._subscribers.setdefault(zone_id, []).append(callback)

    def unsubscribe(self, zone_id: str, callback: Callable[[], None]) -> None:
        callbacks = self._subscribers.get(zone_id, [])
        if callback in callbacks:
            callbacks.remove(callback)

    def settle(self, zone_id: str) -> None:
        """Make every PENDING change of the zone INSYNC now (a test shortcut that writes straight to moto uses it:
        what it wrote is published at once, with whatever was PENDING before it)."""
        with self._change_lock:
            now = self.monotonic()
            settled = list(self._pending(zone_id))
            for change in settled:
                change.insync_at = now
            self._pending(zone_id)
        for change in settled:
            self._announce(change)

    def change_status(self, change_id: str) -> str | None:
        """PENDING or INSYNC for a change made through this proxy; None for an id it did not hand out."""
        change = self._changes.get(change_id)
        if change is None:
            return None
        return "INSYNC" if self.monotonic() >= change.insync_at else "PENDING"

    def _pending(self, zone_id: str) -> list[_Change]:
        zone = self._zones.get(zone_id)
        if zone is None:
            return []
        now = self.monotonic()
        # Drop what is INSYNC from the zone's queue (GetChange still finds it in self._changes).
        zone.changes = [c for c in zone.changes if now < c.insync_at]
        return zone.changes

    def _list(self, zone_id: str) -> list[dict]:
        from bluegreen.sandbox.moto_server import sandbox_client
        from bluegreen.sandbox.zone import list_record_sets

        with self._lister_lock:
            if self._lister is None:
                self._lister = sandbox_client(self.upstream_url)
            return list_record_sets(self._lister, zone_id)

    def _announce(self, change: _Change) -> None:
        """Tell the subscribers (the DNS server) that ``change`` is INSYNC, once."""
        if change.announced:
            return
        change.announced = True
        for callback in list(self._subscribers.get(change.zone_id, [])):
            callback()

    def stop(self) -> None:
        super().stop()
        with self._lister_lock:
            if self._lister is not None:
                self._lister.close()
                self._lister = None

    # -- the calls it answers itself ------------------------------------------------------------------------
    def _exchange(self, operation: str, method: str, path: str, headers: dict[str, str], body: bytes):
        route = urlsplit(path).path
        if operation == "ChangeResourceRecordSets":
            match = _ZONE_RRSET.fullmatch(route)
            if match:
                return self._change(unquote(match["zone"]), method, path, headers, body)
        if operation == "GetChange":
            match = _CHANGE.fullmatch(route)
            change = self._changes.get(unquote(match["change"])) if match else None
            if change is not None:
                return self._get_change(change)
        return self._forward(method, path, headers, body)

    def _change(self, zone_id: str, method: str, path: str, headers: dict[str, str], body: bytes):
        with self._change_lock:
            pending = self._pending(zone_id)
            # Only the oldest PENDING change's "before" is ever published; later ones keep the one taken here
            # for when they become the oldest.
            before = self._list(zone_id)
            status, upstream_headers, payload = self._forward(method, path, headers, body)
            if status != 200:
                return status, upstream_headers, payload  # moto refused it (InvalidChangeBatch ...): no change
            now = self.monotonic()
            change = _Change(new_change_id(), zone_id, now,
                             datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                             now + self.pending_seconds, before)
            self._changes[change.change_id] = change
            if self.pending_seconds > 0:
                self._zones.setdefault(zone_id, _Zone()).changes = pending + [change]
        if self.pending_seconds == 0:
            self._announce(change)
        text = payload.decode("utf-8")
        text = re.sub(r"<Id>[^<]*</Id>", f"<Id>/change/{change.change_id}</Id>", text, count=1)
        text = re.sub(r"<Status>[^<]*</Status>", f"<Status>{self.change_status(change.change_id)}</Status>",
                      text, count=1)
        return status, upstream_headers, text.encode("utf-8")

    def _get_change(self, change: _Change):
        status = self.change_status(change.change_id)
        if status == "INSYNC":
            self._announce(change)  # the DNS server has it before the client learns it is INSYNC
        payload = (f'<?xml version="1.0" encoding="UTF-8"?>\n<GetChangeResponse xmlns="{_XMLNS}"><ChangeInfo>'
                   f"<Id>/change/{change.change_id}</Id><Status>{status}</Status>"
                   f"<SubmittedAt>{change.submitted_at}</SubmittedAt></ChangeInfo></GetChangeResponse>").encode()
        headers = [("Content-Type", "text/xml"), ("x-amzn-RequestId", str(uuid.uuid4()))]
        return 200, headers, payload
