"""The small interfaces the engine drives. Adapters implement them; the core only knows these. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence

from bluegreen.core.verdict import Sample
from bluegreen.core.weights import LiveState, SideWeights


class WeightRouter(Protocol):
    """Three acts, as in Argo Rollouts' traffic routers: read, set, and verify that the set took effect."""

    def read(self) -> LiveState:
        """The live weights of every managed record (raises on missing or inconsistent records)."""
        ...

    def set(self, weights: SideWeights, *, ttl: int | None = None) -> Sequence[str]:
        """Submit the new weights (and TTL when given) for every managed record. Returns change ids."""
        ...

    def verify(self, weights: SideWeights, changes: Sequence[str], *, ttl: int | None = None) -> None:
        """Wait until the change is in effect (INSYNC) and read back that the weights are as set.
        Raises RouterError when they are not, within a bounded time."""
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
