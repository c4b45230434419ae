"""Weights of a blue/green pair of weighted records, and the plan that moves them. Pure.

Every managed record name has two weighted record sets, one per side, told apart by their SetIdentifier.
bluegreen moves all managed records together, so one :class:`SideWeights` describes the whole group.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

SIDES = ("blue", "green")
MAX_WEIGHT = 255  # Route 53's upper bound for Weight


def other_side(side: str) -> str:
    if side not in SIDES:
        raise ValueError(f"unknown side {side!r}: expected one of {', '.join(SIDES)}")
    return "green" if side == "blue" else "blue"


@dataclass(frozen=True)
class SideWeights:
    blue: int
    green: int

    def __post_init__(self) -> None:
        for side in SIDES:
            value = getattr(self, side)
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_WEIGHT:
                raise ValueError(f"{side} weight must be an integer 0..{MAX_WEIGHT}, got {value!r}")

    @classmethod
    def all_on(cls, side: str) -> "SideWeights":
        return cls(blue=100, green=0) if side == "blue" else cls(blue=0, green=100)

    @classmethod
    def for_percent(cls, target: str, percent: int) -> "SideWeights":
        """Weights that send ``percent`` of traffic to ``target``. Always sums to 100 (never all-zero)."""
        if not 0 <= percent <= 100:
            raise ValueError(f"percent must be 0..100, got {percent!r}")
        source = other_side(target)
        return cls(**{target: percent, source: 100 - percent})

    def of(self, side: str) -> int:
        return self.green if side == "green" else self.blue

    @property
    def total(self) -> int:
        return self.blue + self.green

    @property
    def all_zero(self) -> bool:
        # Route 53 answers an all-zero weighted group as an equal split: never write one.
        return self.total == 0

    def share(self, side: str) -> float:
        """Fraction of answers Route 53 gives to ``side`` (0.5 for an all-zero group, as Route 53 does)."""
        if self.all_zero:
            return 0.5
        return self.of(side) / self.total

    def percent_on(self, side: str) -> float:
        return round(self.share(side) * 100, 2)

    def __str__(self) -> str:
        return f"blue={self.blue} green={self.green}"

    def as_dict(self) -> dict[str, int]:
        """The one JSON shape of weights, in logs, journals, notifications and every --output json."""
        return {"blue": self.blue, "green": self.green}


@dataclass(frozen=True)
class RecordState:
    """One weighted pair as read from the router: the weights and what else the user wants to see."""

    name: str
    type: str
    weights: SideWeights
    ttl: int | None  # the TTL of its plain sets; None when both sets are aliases (the target's TTL applies)
    values: tuple[str, ...] = ()
    zone: str = ""
    alias: bool = False  # at least one of the two sets is an alias record
    # What each side answers with: the A/AAAA/CNAME values, or the alias target's DNS name.
    blue_values: tuple[str, ...] = ()
    green_values: tuple[str, ...] = ()

    # The router's own record of what it read (raw record sets), handed back to it when it writes: a write
    # starts from the state the caller read, never from state hidden in the router.
    handle: object = field(default=None, compare=False, repr=False)

    def values_of(self, side: str) -> tuple[str, ...]:
        return self.blue_values if side == "blue" else self.green_values


@dataclass(frozen=True)
class LiveState:
    """Every managed record as read at one moment."""

    records: tuple[RecordState, ...]

    def weights(self) -> SideWeights | None:
        """The common weights of all records, or None when the records disagree."""
        distinct = {r.weights for r in self.records}
        return next(iter(distinct)) if len(distinct) == 1 else None

    def plain_ttl(self) -> int | None:
        """The largest TTL of the plain (non-alias) sets, or None when every set is an alias."""
        ttls = [r.ttl for r in self.records if r.ttl is not None]
        return max(ttls) if ttls else None

    def plain_ttls(self) -> tuple[tuple[str, str, int], ...]:
        return tuple((r.name, r.type, r.ttl) for r in self.records if r.ttl is not None)

    def has_alias(self) -> bool:
        return any(r.alias for r in self.records)

    def cache_ttl(self, alias_ttl: int) -> int:
        """How long a client may cache an answer: the largest plain TTL, or the alias target's TTL."""
        return max(self.plain_ttl() or 0, alias_ttl if self.has_alias() else 0)

    def mismatches(self, weights: SideWeights, ttl: "int | Mapping[tuple[str, str], int] | None" = None) -> list[str]:
        """What differs from ``weights`` (and the TTL when given) in this state: empty when it matches. The
        read-back check of every router. Alias sets have no TTL of their own, so only plain sets count."""
        wrong = [f"{r.name} {r.type} {r.weights}" for r in self.records if r.weights != weights]
        if ttl is not None:
            for r in self.records:
                want = ttl.get((r.name, r.type)) if isinstance(ttl, Mapping) else ttl
                if r.ttl is not None and want is not None and r.ttl != want:
                    wrong.append(f"{r.name} {r.type} ttl={r.ttl}")
        return wrong
