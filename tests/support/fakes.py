"""In-memory stand-ins for the engine's ports, for unit tests of the pure core only.

The adapters themselves are tested against real servers (moto, HTTP, DNS); these doubles exist so the
engine's decisions can be asserted with an injected clock, without waiting minutes.
"""

from __future__ import annotations

from bluegreen.core.verdict import Sample
from bluegreen.core.weights import LiveState, RecordState, SideWeights
from bluegreen.errors import RouterError


class MemoryRouter:
    def __init__(self, weights: SideWeights, ttl: int = 60, names=("app.example.com",)) -> None:
        self.weights = weights
        self.ttl = ttl
        self.names = names
        self.writes: list[tuple[SideWeights, int | None]] = []
        self.fail_set_at: int | None = None  # raise on the Nth set (1-based)

    def read(self) -> LiveState:
        return self._state()

    def _state(self) -> LiveState:
        return LiveState(tuple(RecordState(n, "A", self.weights, self.ttl) for n in self.names))

    def preflight(self, live) -> None:
        pass

    def close(self) -> None:
        pass

    def set(self, weights, *, live=None, ttl=None, urgent=False):
        if self.fail_set_at is not None and len(self.writes) + 1 == self.fail_set_at:
            self.fail_set_at = None
            raise RouterError("injected failure")
        assert not weights.all_zero
        self.writes.append((weights, ttl))
        self.weights = weights
        if ttl is not None:
            self.ttl = ttl if isinstance(ttl, int) else max(ttl.values())
        return [f"C{len(self.writes)}"]

    def verify(self, weights, changes, *, ttl=None) -> LiveState:
        if self.weights != weights:
            raise RouterError("mismatch")
        return self._state()


class ScriptedProber:
    """Produces one sample per probe each time it is drained, from a function of the clock and weights."""

    def __init__(self, clock, router, outcome=lambda now, weights: (True, 0.01, "green" if weights.green >= 50 else "blue"),
                 names=("public",)):
        self.clock = clock
        self.router = router
        self.outcome = outcome
        self._names = tuple(names)
        self.started = self.stopped = False

    @property
    def names(self):
        return self._names

    def start(self):
        self.started = True

    def stop(self):
        self.stopped = True

    def drain(self):
        now = self.clock.monotonic()
        samples = []
        for name in self._names:
            ok, latency, cluster = self.outcome(now, self.router.weights)
            samples.append(Sample(name, now, ok, latency, 200 if ok else 500, cluster, None if ok else "HTTP 500"))
        return samples
