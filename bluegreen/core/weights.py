"""Weights of a blue/green pair of weighted records, and the plan that moves them. Pure.

Every managed record name has two weighted record sets, one per side, told apart by their SetIdentifier.
bluegreen moves all managed records together, so one :class:`SideWeights` describes the whole group.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

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


@dataclass(frozen=True)
class RecordState:
    """One weighted pair as read from the router: the weights and what else the user wants to see."""

    name: str
    type: str
    weights: SideWeights
    ttl: int | None  # None for alias records (the alias target's TTL applies)
    values: tuple[str, ...] = ()
    zone: str = ""


@dataclass(frozen=True)
class LiveState:
    """Every managed record as read at one moment."""

    records: tuple[RecordState, ...]

    def weights(self) -> SideWeights | None:
        """The common weights of all records, or None when the records disagree."""
        distinct = {r.weights for r in self.records}
        return next(iter(distinct)) if len(distinct) == 1 else None

    def ttl(self) -> int | None:
        """The largest TTL in force: what a client may still have cached after a change."""
        ttls = [r.ttl for r in self.records if r.ttl is not None]
        return max(ttls) if ttls else None


class PlanError(ValueError):
    """A plan that cannot be executed safely (raised before anything changes)."""


def parse_steps(raw: object) -> tuple[int, ...]:
    """Steps as written in config (a list) or on the command line (``0,10,50,100``)."""
    if isinstance(raw, str):
        parts = [p.strip() for p in raw.split(",") if p.strip()]
    elif isinstance(raw, (list, tuple)):
        parts = list(raw)
    else:
        raise PlanError(f"steps must be a list of percentages like 0,10,50,100, got {raw!r}")
    steps: list[int] = []
    for part in parts:
        if isinstance(part, bool):
            raise PlanError(f"step {part!r} is not an integer percentage")
        try:
            value = int(part) if not isinstance(part, float) or part.is_integer() else None
        except (TypeError, ValueError):
            value = None
        if value is None or (isinstance(part, str) and not part.lstrip("+").isdigit()):
            raise PlanError(f"step {part!r} is not an integer percentage (0..100)")
        steps.append(value)
    validate_steps(steps)
    return tuple(steps)


def validate_steps(steps: Iterable[int]) -> None:
    steps = list(steps)
    if not steps:
        raise PlanError("steps are empty: give at least one percentage, e.g. 0,10,50,100")
    for value in steps:
        if not 0 <= value <= 100:
            raise PlanError(f"step {value} is outside 0..100: steps are percentages of traffic on the target")
    for before, after in zip(steps, steps[1:]):
        if after <= before:
            raise PlanError(f"steps must be strictly increasing, but {after} follows {before}")


@dataclass(frozen=True)
class Step:
    index: int  # 0-based position in the plan
    percent: int  # share of traffic on the target side
    weights: SideWeights


@dataclass(frozen=True)
class ShiftPlan:
    """Move traffic to ``target`` through ``steps`` (percent on target), from ``start`` weights."""

    target: str
    steps: tuple[Step, ...]
    start: SideWeights
    original_ttl: int | None
    cutover_ttl: int | None  # the lowered TTL in force during the cutover, or None to keep the TTL
    ttl_margin: float
    bake: float
    skipped: tuple[int, ...] = field(default=())  # steps already passed (resume), by percent

    @property
    def source(self) -> str:
        return other_side(self.target)

    @property
    def rollback_weights(self) -> SideWeights:
        return SideWeights.all_on(self.source)

    @property
    def lowers_ttl(self) -> bool:
        return (
            self.cutover_ttl is not None
            and self.original_ttl is not None
            and self.cutover_ttl < self.original_ttl
        )

    def step_ttl(self) -> int:
        """The TTL in force while the weights move (what clients may cache after each change)."""
        if self.lowers_ttl:
            return int(self.cutover_ttl)  # type: ignore[arg-type]
        return int(self.original_ttl or 0)

    def hold_after(self, step: Step, *, changed: bool) -> float:
        """Seconds to hold at a step: the TTL clients may still cache the old answer for, plus the
        margin, plus the bake. A step that changed nothing only bakes."""
        if not changed:
            return self.bake
        return self.step_ttl() + self.ttl_margin + self.bake

    def estimated_seconds(self, insync_estimate: float = 0.0) -> float:
        total = 0.0
        if self.lowers_ttl:
            total += insync_estimate + float(self.original_ttl or 0) + self.ttl_margin
        current = self.start
        for step in self.steps:
            changed = step.weights != current
            total += (insync_estimate if changed else 0.0) + self.hold_after(step, changed=changed)
            current = step.weights
        if self.lowers_ttl:
            total += insync_estimate
        return total


def build_plan(
    *,
    target: str,
    steps: Iterable[int],
    start: SideWeights,
    original_ttl: int | None,
    cutover_ttl: int | None,
    ttl_margin: float,
    bake: float,
    resume: bool = False,
) -> ShiftPlan:
    """Turn percentages into weight steps. With ``resume``, drop steps the live weights already passed."""
    other_side(target)
    steps = list(steps)
    validate_steps(steps)
    all_steps = [Step(i, p, SideWeights.for_percent(target, p)) for i, p in enumerate(steps)]
    skipped: tuple[int, ...] = ()
    if resume:
        position = resume_position(all_steps, start, target)
        skipped = tuple(s.percent for s in all_steps[:position])
        all_steps = all_steps[position:]
    return ShiftPlan(
        target=target,
        steps=tuple(all_steps),
        start=start,
        original_ttl=original_ttl,
        cutover_ttl=cutover_ttl,
        ttl_margin=ttl_margin,
        bake=bake,
        skipped=skipped,
    )


def resume_position(steps: list[Step], live: SideWeights, target: str) -> int:
    """Index of the first step still to run, given live weights: the steps at or below the live share
    on the target are done; the step equal to it is done too."""
    live_pct = live.percent_on(target)
    position = 0
    for i, step in enumerate(steps):
        if step.percent <= live_pct:
            position = i + 1
    return position
