"""Per-side judgement of a hold: every sample attributed to the side that answered it, the target side judged
on its own and against the source side over the same window, and the check that traffic really moved. Pure.

Why per side: at a 10% step, a public probe's samples are nine parts blue; judged together, a green that
fails every request hides under blue's successes until the ratio gate has enough samples. Judged alone,
green's own samples fail it. Why against blue: when both sides fail at once (a shared database, the probe's
own network), rolling back does not help; the verdict says so and ``gates.on_both_failing`` decides.

Attribution: a sample's side comes first from the address it dialled (the side's A/AAAA values, or what its
alias or CNAME target resolves to, refreshed each step), then from the cluster named in the body or a header.
When both are known and disagree, the step carries a warning (a wrong pattern, or a backend serving the
other side's content). A sample with neither is judged with the others of its probe as "unknown".

The traffic gate: after the TTL in force has expired (``settle_at``), the share of each probe's samples
answered by the target side must be consistent with the weights. Samples are not independent draws: a
keep-alive connection answers from one side for its whole life, and a caching resolver hands out one answer
for a whole TTL. So the test counts draws, not requests: the number of distinct connections, capped at one
per cached-answer lifetime (``1 + hold / ttl``). It fails only when the observed count is implausible under
a binomial with that many draws (tail probability below ``TRAFFIC_ALPHA``) and outside a floor
(``gates.traffic.tolerance_floor``): a coarse view (few draws) widens what passes instead of failing
spuriously, and a weight of 0% or 100% is exact (one sample on the wrong side is implausible).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from bluegreen.core.timeline import side_of_cluster
from bluegreen.core.verdict import Gates, Sample, SampleWindow, Summary, Verdict, VerdictOutcome

UNKNOWN = "unknown"
TRAFFIC_ALPHA = 0.001  # a 1-in-1000 chance of failing a step whose traffic did move


@dataclass(frozen=True)
class SideMap:
    """What tells the sides apart at one step."""

    addresses: Mapping[str, str] = field(default_factory=dict)  # address -> side
    clusters: Mapping[str, str] = field(default_factory=dict)  # cluster name (body/header) -> side

    def by_address(self, sample: Sample) -> str | None:
        return self.addresses.get(sample.address) if sample.address else None

    def by_cluster(self, sample: Sample) -> str | None:
        # The explicit names first, then a name with "blue" or "green" as a whole word (eks-blueprint-green).
        return side_of_cluster(sample.cluster, self.clusters) if sample.cluster else None


@dataclass
class _Draws:
    """Samples after the settle time, per side, and how many independent DNS draws they came from."""

    samples: Counter = field(default_factory=Counter)
    draws: Counter = field(default_factory=Counter)
    last_connection: int | None = None


class StepWindows:
    """The samples of one hold, by probe and by side. Memory is bounded as in SampleWindow."""

    def __init__(self, sides: SideMap, *, settle_at: float, max_draws: int | None = None) -> None:
        self.sides = sides
        self.settle_at = settle_at
        self.max_draws = max_draws  # one draw per cached-answer lifetime at most
        self.probes: dict[str, SampleWindow] = {}
        self.by_side: dict[tuple[str, str], SampleWindow] = {}
        self.traffic: dict[str, _Draws] = {}
        self.disagreements: Counter = Counter()
        self.followed: Counter = Counter()  # samples by side from probes that follow DNS (not pinned)

    def add(self, sample: Sample) -> None:
        self.probes.setdefault(sample.probe, SampleWindow()).add(sample)
        by_address, by_cluster = self.sides.by_address(sample), self.sides.by_cluster(sample)
        if by_address and by_cluster and by_address != by_cluster:
            self.disagreements[sample.probe] += 1
        side = by_address or by_cluster or UNKNOWN
        self.by_side.setdefault((sample.probe, side), SampleWindow()).add(sample)
        if side != UNKNOWN and not sample.pinned:
            self.followed[side] += 1
        if side != UNKNOWN and not sample.pinned and sample.at >= self.settle_at:
            draws = self.traffic.setdefault(sample.probe, _Draws())
            draws.samples[side] += 1
            if sample.connection != draws.last_connection:
                draws.draws[side] += 1
                draws.last_connection = sample.connection

    def summaries(self) -> dict[str, Summary]:
        return {name: window.summary() for name, window in self.probes.items()}

    def per_side(self) -> dict[str, dict]:
        """Each side's numbers over every probe that follows DNS, for the panel and the journal."""
        result = {}
        total = sum(self.followed.values())
        for side in sorted({side for _, side in self.by_side}):
            windows = [w for (probe, s), w in self.by_side.items() if s == side]
            samples = sum(w.samples for w in windows)
            successes = sum(w.successes for w in windows)
            p95 = max((w.summary().p95_latency or 0.0 for w in windows), default=0.0)
            result[side] = {
                "samples": samples,
                "error_ratio": None if not samples else round(1 - successes / samples, 4),
                "p95_latency_ms": round(p95 * 1000, 1) if samples else None,
                # The share of answers DNS gave this side: pinned probes and side companions do not count.
                "share_percent": None if side == UNKNOWN or not total else round(self.followed[side] / total * 100, 1),
            }
        return result

    def side_summaries(self) -> dict[str, dict[str, Summary]]:
        result: dict[str, dict[str, Summary]] = {}
        for (probe, side), window in sorted(self.by_side.items()):
            result.setdefault(probe, {})[side] = window.summary()
        return result


def _side_reasons(probe: str, side: str, summary: Summary, gates: Gates, min_samples: int) -> list[tuple[str, str]]:
    """(gate, reason) pairs for one side of one probe, judged on its own samples."""
    label = f"probe {probe}" + ("" if side == UNKNOWN else f", {side}")
    found = []
    if summary.consecutive_failures > gates.max_consecutive_failures:
        found.append(("consecutive_failures",
                      f"{label}: {summary.consecutive_failures} consecutive failures "
                      f"(max {gates.max_consecutive_failures}); last: {summary.last_error}"))
    if summary.samples >= min_samples:
        ratio = summary.success_ratio or 0.0
        # A run of failures already says it; the ratio of the same samples would only repeat it.
        said = bool(found) and "consecutive_failures" not in gates.observe
        if ratio < gates.min_success_ratio and not said:
            found.append(("success_ratio", f"{label}: success ratio {ratio:.3f} < {gates.min_success_ratio} over "
                                           f"{summary.samples} samples; last: {summary.last_error}"))
        if summary.p95_latency is not None and summary.p95_latency > gates.max_p95_latency:
            found.append(("p95_latency", f"{label}: p95 latency {summary.p95_latency * 1000:.0f}ms > "
                                         f"{gates.max_p95_latency * 1000:.0f}ms over {summary.samples} samples"))
    return found


def judge_step(windows: StepWindows, gates: Gates, *, target: str, target_share: float,
               final: bool = False) -> Verdict:
    """The verdict over one hold so far. ``target_share``: the fraction of answers the weights give the
    target side. ``final``: the hold is over, so the traffic gate is judged too."""
    source = "blue" if target == "green" else "green"
    failing: list[tuple[str, str]] = []
    source_failing: list[tuple[str, str]] = []
    warnings: list[str] = []
    inconclusive = False
    for probe, sides in windows.side_summaries().items():
        for side, summary in sides.items():
            # The target is judged on a few samples of its own; the unknown group as before (min_samples).
            minimum = gates.min_samples_per_side if side == target else gates.min_samples
            found = _side_reasons(probe, side, summary, gates, minimum)
            (source_failing if side == source else failing).extend(found)
            if side != source and summary.samples < minimum:
                inconclusive = True
        got, base = sides.get(target), sides.get(source)
        if (got is not None and base is not None and got.samples >= gates.min_samples_per_side
                and base.samples >= gates.min_samples_per_side):
            increase = (1 - (got.success_ratio or 0)) - (1 - (base.success_ratio or 0))
            if increase > gates.max_error_ratio_increase:
                failing.append(("compare_to_blue", f"probe {probe}: {target}'s error ratio is {increase:.3f} above "
                                                   f"{source}'s (max {gates.max_error_ratio_increase})"))
            if got.p95_latency is not None and base.p95_latency is not None \
                    and got.p95_latency - base.p95_latency > gates.max_p95_increase:
                failing.append(("compare_to_blue", f"probe {probe}: {target}'s p95 is "
                                f"{(got.p95_latency - base.p95_latency) * 1000:.0f}ms above {source}'s (max "
                                f"{gates.max_p95_increase * 1000:.0f}ms)"))
        if windows.disagreements.get(probe):
            warnings.append(f"probe {probe}: {windows.disagreements[probe]} answers came from one side's address "
                            "but named the other side's cluster (a wrong cluster_pattern, or a backend serving "
                            "the other side's content)")
    if final and gates.traffic_check:
        failing.extend(("traffic", reason) for reason in traffic_reasons(windows, gates, target=target,
                                                                         target_share=target_share))
    acted = [reason for gate, reason in failing if gate not in gates.observe]
    observed = [reason for gate, reason in failing + source_failing if gate in gates.observe]
    source_acted = [reason for gate, reason in source_failing if gate not in gates.observe]
    if acted and not source_acted:
        # "Blue fails as much as green": over the same window, the source's error ratio is not lower than
        # the target's by more than the allowed increase. Then rolling back would not help.
        source_acted = _as_bad(windows, gates, target=target, source=source)
    if acted and source_acted:
        return Verdict(VerdictOutcome.BOTH_FAILING, tuple(acted + source_acted), tuple(observed), tuple(warnings))
    if source_acted:
        warnings.extend(f"{reason} (the source side; the target is not to blame)" for reason in source_acted)
    if acted:
        return Verdict(VerdictOutcome.FAILED, tuple(acted), tuple(observed), tuple(warnings))
    return Verdict(VerdictOutcome.INCONCLUSIVE if inconclusive else VerdictOutcome.PASSING, (), tuple(observed), tuple(warnings))


def _as_bad(windows: StepWindows, gates: Gates, *, target: str, source: str) -> list[str]:
    reasons = []
    for probe, sides in windows.side_summaries().items():
        got, base = sides.get(target), sides.get(source)
        if got is None or base is None or not got.samples or not base.samples:
            continue
        got_errors, base_errors = 1 - (got.success_ratio or 0), 1 - (base.success_ratio or 0)
        if base_errors > 0 and base_errors >= got_errors - gates.max_error_ratio_increase:
            reasons.append(f"probe {probe}, {source}: error ratio {base_errors:.3f} over {base.samples} samples, "
                           f"as bad as {target}'s {got_errors:.3f}; last: {base.last_error}")
    return reasons


def traffic_reasons(windows: StepWindows, gates: Gates, *, target: str, target_share: float) -> list[str]:
    reasons = []
    for probe, counts in sorted(windows.traffic.items()):
        n = sum(counts.samples.values())
        if n < gates.traffic_min_samples:
            continue
        observed = counts.samples[target] / n
        if abs(observed - target_share) <= gates.traffic_tolerance_floor:
            continue
        draws = max(1, sum(counts.draws.values()))
        if windows.max_draws is not None:
            draws = max(1, min(draws, windows.max_draws))
        hits = round(observed * draws)
        if binomial_tail(draws, target_share, hits) >= TRAFFIC_ALPHA:
            continue
        expected = f"{target_share * 100:.0f}%"
        if observed < target_share and counts.samples[target] == 0:
            what = (f"{target} received nothing, expected {expected}: Route 53 may be skipping it (a failing "
                    "health check, or an alias whose EvaluateTargetHealth sees no healthy target), or the "
                    "weight was written back")
        elif observed > target_share and target_share == 0:
            what = f"{target} still receives traffic at weight 0"
        else:
            other = "blue" if target == "green" else "green"
            what = (f"{target} answered {observed * 100:.0f}% of requests, expected {expected}"
                    + (f"; {other} still receives traffic after the TTL" if target_share == 1 else ""))
        reasons.append(f"probe {probe}: traffic did not move: {what} ({n} samples from {draws} DNS draws "
                       "after the TTL)")
    return reasons


def binomial_tail(n: int, p: float, k: int) -> float:
    """Probability of a count at least as far from the expectation as ``k``, on the side ``k`` lies
    (one-sided tail of Binomial(n, p)). Exact: n is small (draws, not requests)."""
    p = min(1.0, max(0.0, p))
    if p in (0.0, 1.0):
        return 1.0 if k == round(n * p) else 0.0

    def pmf(i: int) -> float:
        return math.comb(n, i) * p ** i * (1 - p) ** (n - i)

    if k <= n * p:
        return sum(pmf(i) for i in range(0, k + 1))
    return sum(pmf(i) for i in range(k, n + 1))
