"""The small interfaces the engine drives. Adapters implement them; the core only knows these. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol, Sequence, Union

from bluegreen.core.verdict import Sample
from bluegreen.core.weights import LiveState, SideWeights


# A TTL to write: one for every plain set, or each record's own by (name, type); None keeps the TTLs.
TtlSpec = Union[int, Mapping[tuple, int], None]


class WeightRouter(Protocol):
    """Read, set, and verify that the set took effect (as Argo Rollouts' SetWeight / VerifyWeight), plus a
    preflight that proves writes can stick before the first one, and close. One module per driver in
    ``bluegreen.routers``; ``bluegreen.routers.build_router`` is the one place that picks it."""

    def read(self) -> LiveState:
        """The live weights of every managed record (raises on missing or inconsistent records)."""
        ...

    def preflight(self, live: LiveState) -> None:
        """Check, writing nothing, that a write will stick (objects exist, nobody else owns the records).
        Raises PreflightError (exit 2)."""
        ...

    def set(self, weights: SideWeights, *, live: LiveState, ttl: TtlSpec = None,
            urgent: bool = False) -> Sequence[str]:
        """Submit the new weights (and TTL when given) for the records of ``live``, the state the caller
        read last. ``urgent``: the emergency path (a rollback), which must not wait behind bluegreen's own
        pacing. Returns change ids."""
        ...

    def verify(self, weights: SideWeights, changes: Sequence[str], *, ttl: TtlSpec = None) -> LiveState:
        """Wait until the change is in effect and read back that the weights are as set (the check is
        ``LiveState.mismatches``). Returns the state read back. Raises RouterError when it does not happen
        within a bounded time."""
        ...

    def close(self) -> None:
        ...


class Prober(Protocol):
    """Probes run in the background between ``start`` and ``stop``; ``drain`` hands over new samples."""

    def start(self) -> None: ...

    def drain(self) -> list[Sample]: ...

    def stop(self) -> None: ...

    @property
    def names(self) -> Sequence[str]: ...


class NoProbes:
    """For commands and tests that move weights without probing."""

    names: Sequence[str] = ()

    def start(self) -> None:
        pass

    def drain(self) -> list[Sample]:
        return []

    def stop(self) -> None:
        pass


@dataclass(frozen=True)
class Event:
    """Something worth logging, journaling or notifying. ``kind`` is a short snake_case name."""

    kind: str
    data: dict[str, Any] = field(default_factory=dict)


EventSink = Callable[[Event], None]
