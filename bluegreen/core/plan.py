"""What a shift will do: steps parsed and validated once, the plan built from the live weights, where a
resumed run starts, and how many steps one run may take (``--max-steps``). Pure.

A step is a percentage of traffic on the target side. ``--steps`` and ``shift.steps`` are parsed here and
only here (:func:`parse_steps`); :func:`assemble_plan` is the one place that turns them, the live state and
the command's options into a :class:`ShiftPlan`, refusing what would be unsafe before anything changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Iterable

from bluegreen.core.weights import LiveState, SideWeights, other_side


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
    original_ttl: int | None  # the largest TTL of the plain (non-alias) sets; None when all are aliases
    cutover_ttl: int | None  # the lowered TTL in force during the cutover, or None to keep the TTL
    ttl_margin: float
    bake: float
    skipped: tuple[int, ...] = field(default=())  # steps already passed (resume), by percent
    # Alias sets have no TTL of their own: resolvers cache the target's answer (60 s for an ELB), and a
    # lowered route.ttl does nothing for them (field notes, "Alias records have no TTL of their own").
    alias_ttl: int | None = None  # route.alias_ttl when the group has alias sets, else None
    # Each plain record's own TTL before the cutover, written back exactly when the TTL is restored.
    restore_ttls: tuple[tuple[str, str, int], ...] = ()  # (name, type, ttl)

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
        """The TTL in force while the weights move (what clients may cache after each change): the lowered
        or original TTL of the plain sets, or the alias target's TTL, whichever is longer."""
        plain = int(self.cutover_ttl) if self.lowers_ttl else int(self.original_ttl or 0)  # type: ignore[arg-type]
        return max(plain, int(self.alias_ttl or 0))

    @property
    def restore_ttl(self) -> "int | dict[tuple[str, str], int] | None":
        """What the TTL restore writes: each record's own TTL when they differ, else the one TTL."""
        if not self.lowers_ttl:
            return None
        ttls = {(name, rtype): ttl for name, rtype, ttl in self.restore_ttls}
        if len(set(ttls.values())) > 1:
            return ttls
        return self.original_ttl

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
    alias_ttl: int | None = None,
    restore_ttls: Iterable[tuple[str, str, int]] = (),
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
        alias_ttl=alias_ttl,
        restore_ttls=tuple(restore_ttls),
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


@dataclass(frozen=True)
class StepBudget:
    """A plan cut to ``--max-steps``; ``deferred`` lists the percentages left for later runs."""

    plan: ShiftPlan
    deferred: tuple[int, ...] = ()

    @property
    def trimmed(self) -> bool:
        return bool(self.deferred)


def limit_steps(plan: ShiftPlan, max_steps: int | None) -> StepBudget:
    """Keep at most ``max_steps`` weight-changing steps of ``plan`` (None: all of them). Leading steps that
    would not change the live weights (the ``0%`` a plan starts with) only bake and do not count."""
    if max_steps is None:
        return StepBudget(plan)
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        raise PlanError(f"--max-steps must be a whole number of at least 1, got {max_steps!r}")
    free = 0
    for step in plan.steps:
        if step.weights != plan.start:
            break
        free += 1
    keep = free + max_steps
    if keep >= len(plan.steps):
        return StepBudget(plan)
    return StepBudget(replace(plan, steps=plan.steps[:keep]), tuple(s.percent for s in plan.steps[keep:]))


class UnsafeStart(PlanError):
    """The live weights do not allow this plan (records disagree, all zero, or it would move traffic back).
    ``hint`` says what to run first."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


def assemble_plan(*, live: LiveState, target: str, steps: Iterable[int], cutover_ttl: int | None,
                  alias_ttl: int, ttl_margin: float, bake: float, resume: bool = False,
                  max_steps: int | None = None) -> StepBudget:
    """The plan a shift runs, from the weights read under the lock. Raises UnsafeStart before any change."""
    start = live.weights()
    if start is None:
        raise UnsafeStart(
            "the managed records do not all have the same weights: "
            + ", ".join(f"{r.name} {r.type} {r.weights}" for r in live.records),
            hint="bring them together first, e.g. `bluegreen rollback --to blue`")
    if start.all_zero:
        raise UnsafeStart("every weight is 0, which Route 53 answers as an equal split",
                          hint="run `bluegreen rollback --to blue` to put traffic on one side first")
    plan = build_plan(target=target, steps=steps, start=start, original_ttl=live.plain_ttl(),
                      cutover_ttl=cutover_ttl, ttl_margin=ttl_margin, bake=bake, resume=resume,
                      alias_ttl=alias_ttl if live.has_alias() else None,
                      restore_ttls=live.plain_ttls())
    on_target = start.percent_on(target)
    if plan.steps and on_target > plan.steps[0].percent:
        raise UnsafeStart(
            f"{target} already has {on_target:g}% of traffic ({start}), more than the first step "
            f"({plan.steps[0].percent}%): running this plan would move traffic back",
            hint=f"use --resume to continue from there, or start the steps at {on_target:g} or above")
    return limit_steps(plan, max_steps)
