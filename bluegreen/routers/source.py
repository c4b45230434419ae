"""What the external-dns and argocd drivers share: read and verify through Route 53, write at the source.

external-dns puts back, on its next sync (every minute by default), any weight written into Route 53
behind its back. So for records it owns, bluegreen writes the weight where external-dns reads it (the
subclasses say where). Reading and verifying go through Route 53 with
:class:`~bluegreen.routers.route53.Route53Router`, so the records are validated exactly as with the
``route53`` driver. ``verify`` polls Route 53 until the new weights appear, bounded by
``route.sync_timeout``; external-dns's own change id is unknown to us, so the proof is the read-back, not
INSYNC.

Only the weight annotation is ever logged: other annotation values may be sensitive (the pattern keeps a
password hash on the cluster secret), and a secret's ``data`` is never read (see ``adapters/argocd``).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import structlog

from bluegreen.config import Config
from bluegreen.core.clock import Clock, SystemClock
from bluegreen.core.durations import format_duration
from bluegreen.core.ports import TtlSpec
from bluegreen.core.weights import SIDES, LiveState, SideWeights
from bluegreen.errors import BlueGreenError, PreflightError, RouterError

log = structlog.get_logger("bluegreen.router")

DEFAULT_POLL_INTERVAL = 5.0  # one Route 53 read per record per poll, well inside the rate limit


# -- the write order -------------------------------------------------------------------------------
def write_order(live: LiveState, weights: SideWeights) -> tuple[str, str]:
    """The side that gains weight is written first. Pure.

    Each side's weight reaches Route 53 on its own (one external-dns per cluster, each syncing on its own
    schedule), so between the two writes Route 53 may hold the new weight of the first side and the old
    weight of the second. Writing the gaining side first keeps that mix from ever being all-zero (which
    Route 53 answers as a 50/50 split): the gaining side's new weight is above zero; and when neither side
    gains, the second side's old weight is at least its new one, so the sum stays at least the new sum."""

    def gain(side: str) -> int:
        old = max((r.weights.of(side) for r in live.records), default=0)
        return weights.of(side) - old

    first = max(SIDES, key=gain)  # ties: blue first (max keeps the first)
    return first, ("green" if first == "blue" else "blue")


# -- the routers -----------------------------------------------------------------------------------
class _Write:
    """One annotation to write: where, what it holds now, and how to write it."""

    def __init__(self, side: str, where: str, current: str | None,
                 apply: Callable[[str, Mapping[str, str]], str]) -> None:
        self.side = side
        self.where = where  # cluster/kind/namespace/name, for messages and change ids
        self.current = current
        self.apply = apply  # (weight, other annotations) -> the resourceVersion after the write


class _SourceRouter:
    """Read and verify through Route 53; write at the source (subclasses say where)."""

    driver = ""
    source = ""  # what holds the weight, for messages

    def __init__(self, config: Config, *, sync_timeout: float, clock: Clock | None = None, route53: Any = None,
                 connect: Callable[[Any, str], Any] | None = None,
                 poll_interval: float = DEFAULT_POLL_INTERVAL) -> None:
        self.config = config
        self.route = config.route
        self.sync_timeout = sync_timeout
        from bluegreen.adapters.kube import resolve_current_context

        # An omitted side is pinned to the kubeconfig's current context now, before any weight is read.
        self.clusters_config = resolve_current_context(config.require_clusters())
        self.clock = clock or SystemClock()
        if route53 is None:
            from bluegreen.routers.route53 import Route53Router

            route53 = Route53Router(self.route, config.aws, clock=self.clock)
        self.route53 = route53
        self.poll_interval = poll_interval
        self._connect = connect
        self._clusters: Any = None

    # -- clusters ------------------------------------------------------------------------------------
    @property
    def clusters(self):
        if self._clusters is None:
            from bluegreen.adapters.kube import Clusters

            self._clusters = Clusters(self.config, self.clusters_config, connector=self._connect)
        return self._clusters

    def close(self) -> None:
        if self._clusters is not None:
            self._clusters.close()

    # -- read -----------------------------------------------------------------------------------------
    def read(self) -> LiveState:
        return self.route53.read()

    # -- set ------------------------------------------------------------------------------------------
    def preflight(self, live: LiveState | None = None) -> None:
        """Check every object the driver writes (exists, identifies the right side). Writes nothing."""
        self._writes()

    def _writes(self) -> list[_Write]:
        raise NotImplementedError

    def _check_ttl(self, ttl: TtlSpec) -> None:
        pass

    def _ttl_annotations(self, ttl: TtlSpec) -> dict[str, str]:
        return {}

    def set(self, weights: SideWeights, *, live: LiveState | None = None, ttl: TtlSpec = None,
            urgent: bool = False) -> list[str]:
        if weights.all_zero:
            # Route 53 answers an all-zero group as an equal split: half the traffic to the side meant to be off.
            raise RouterError(f"refusing to write an all-zero weight group ({weights})")
        self._check_ttl(ttl)
        writes = self._writes()  # every object checked before anything is written
        order = write_order(live if live is not None else self.route53.read(), weights)
        extra = self._ttl_annotations(ttl)
        changes: list[str] = []
        for side in order:
            for write in (w for w in writes if w.side == side):
                value = str(weights.of(side))
                if write.current == value and not extra:
                    continue
                try:
                    version = write.apply(value, extra)
                except BlueGreenError as error:
                    done = ", ".join(c.split("@")[0].removeprefix("annotation:") for c in changes) or "nothing"
                    raise RouterError(f"writing the {side} weight on {write.where} failed (already written: {done}): "
                                      f"{error.message}", hint=error.hint) from error
                change_id = f"annotation:{write.where}@{version}"
                changes.append(change_id)
                log.info("weight_annotation_written", driver=self.driver, side=side, object=write.where,
                         key=self._weight_key(), weight=int(value), change_id=change_id)
        return changes

    def _weight_key(self) -> str:
        raise NotImplementedError

    # -- verify ---------------------------------------------------------------------------------------
    def verify(self, weights: SideWeights, changes: Sequence[str], *, ttl: TtlSpec = None) -> LiveState:
        started = self.clock.monotonic()
        deadline = started + self.sync_timeout
        polls = 0
        while True:
            polls += 1
            try:
                live = self.route53.read()
                wrong = live.mismatches(weights, ttl)
            except PreflightError as error:
                # Each cluster's external-dns syncs its own record on its own schedule, so while a TTL change
                # travels the group's TTLs may disagree for a moment: not synced yet, not a failure.
                wrong = [error.message]
            if not wrong:
                log.info("weights_synced", driver=self.driver, weights=weights.as_dict(), polls=polls,
                         seconds=round(self.clock.monotonic() - started, 3))
                return live
            remaining = deadline - self.clock.monotonic()
            if remaining <= 0:
                raise self._not_synced(weights, wrong)
            log.debug("waiting_for_sync", driver=self.driver, weights=weights.as_dict(), remaining=round(remaining, 1))
            self.clock.sleep(min(self.poll_interval, remaining))

    def _not_synced(self, weights: SideWeights, wrong: list[str]) -> RouterError:
        reverted = self._reverted(weights)
        message = (f"the {self.source} was written ({weights}) but external-dns did not sync it into Route 53 "
                   f"within {format_duration(self.sync_timeout)} (route.sync_timeout): Route 53 still shows "
                   f"{', '.join(wrong[:5])}")
        if reverted:
            message += f"; meanwhile the annotation was changed back on {', '.join(reverted)}"
        return RouterError(message, hint=self._sync_hint(bool(reverted)))

    def _reverted(self, weights: SideWeights) -> list[str]:
        """Objects whose weight annotation no longer holds what we wrote (a diagnosis: errors are ignored)."""
        try:
            return [w.where for w in self._writes() if w.current != str(weights.of(w.side))]
        except BlueGreenError:
            return []

    def _sync_hint(self, reverted: bool) -> str:
        raise NotImplementedError


