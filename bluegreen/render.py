"""Text and JSON renderings of what commands return. Pure: builds strings, prints nothing."""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

from bluegreen.core.durations import format_duration
from bluegreen.core.state import RunRecord, format_wall
from bluegreen.core.plan import ShiftPlan
from bluegreen.core.weights import LiveState


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [[("" if c is None else str(c)) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=False, default=str)


def live_state_dict(state: LiveState) -> dict:
    return {
        "records": [
            {
                "name": r.name, "type": r.type, "zone": r.zone,
                "weights": r.weights.as_dict(),
                "share_percent": {"blue": r.weights.percent_on("blue"), "green": r.weights.percent_on("green")},
                "ttl": r.ttl, "values": list(r.values),
            }
            for r in state.records
        ],
        "consistent": state.weights() is not None,
    }


def live_state_text(state: LiveState) -> str:
    rows = [
        (r.name, r.type, r.weights.blue, r.weights.green,
         f"{r.weights.percent_on('blue'):g}% / {r.weights.percent_on('green'):g}%", r.ttl, "; ".join(r.values))
        for r in state.records
    ]
    text = table(("RECORD", "TYPE", "BLUE", "GREEN", "SHARE blue/green", "TTL", "VALUES"), rows)
    if state.weights() is None:
        text += "\n\nwarning: the records do not all have the same weights"
    return text


def plan_dict(plan: ShiftPlan, insync_estimate: float) -> dict:
    current = plan.start
    steps = []
    for step in plan.steps:
        changed = step.weights != current
        steps.append({
            "percent": step.percent, "weights": step.weights.as_dict(),
            "changes_weights": changed, "hold_seconds": plan.hold_after(step, changed=changed),
        })
        current = step.weights
    return {
        "target": plan.target, "source": plan.source,
        "start": plan.start.as_dict(),
        "ttl": plan.original_ttl, "cutover_ttl": plan.cutover_ttl if plan.lowers_ttl else None,
        "ttl_margin_seconds": plan.ttl_margin, "bake_seconds": plan.bake,
        "skipped_percent": list(plan.skipped), "steps": steps,
        "estimated_seconds": round(plan.estimated_seconds(insync_estimate), 1),
    }


def plan_text(plan: ShiftPlan, insync_estimate: float) -> str:
    data = plan_dict(plan, insync_estimate)
    lines = [f"plan: move traffic to {plan.target} (now {plan.start})"]
    if plan.skipped:
        lines.append(f"  already done: {', '.join(f'{p}%' for p in plan.skipped)}")
    if plan.lowers_ttl:
        lines.append(f"  lower TTL {plan.original_ttl}s -> {plan.cutover_ttl}s, then wait "
                     f"{format_duration((plan.original_ttl or 0) + plan.ttl_margin)} for old answers to expire")
    for step in data["steps"]:
        w = step["weights"]
        action = "set" if step["changes_weights"] else "keep"
        lines.append(f"  {step['percent']:>3}% on {plan.target}: {action} blue={w['blue']} green={w['green']}, "
                     f"hold {format_duration(step['hold_seconds'])}")
    if plan.lowers_ttl:
        lines.append(f"  restore TTL {plan.original_ttl}s")
    lines.append(f"estimated duration: {format_duration(data['estimated_seconds'])} "
                 f"(plus Route 53 propagation, usually under 60s a change)")
    return "\n".join(lines)


def result_text(result: dict) -> str:
    lines = []
    for step in result["steps"]:
        label = "lower TTL" if step["percent"] is None else f"{step['percent']}%"
        w = step["weights"]
        probe_bits = []
        for name, p in step["probes"].items():
            share = ", ".join(f"{c} {v:g}%" for c, v in p["cluster_share_percent"].items()) or "no cluster seen"
            ratio = "n/a" if p["success_ratio"] is None else f"{p['success_ratio'] * 100:.1f}%"
            p95 = "n/a" if p["p95_latency_ms"] is None else f"{p['p95_latency_ms']:.0f}ms"
            probe_bits.append(f"{name}: {p['samples']} samples, {ratio} ok, p95 {p95}, answered by {share}")
        lines.append(f"step {label:>9}: blue={w['blue']} green={w['green']} "
                     f"{'(changed)' if step['changed'] else '(unchanged)'} verdict {step['verdict'] or 'n/a'}")
        lines.extend(f"    {bit}" for bit in probe_bits)
        for side, numbers in (step.get("sides") or {}).items():
            if side == "unknown" or not numbers.get("samples"):
                continue
            errors, share = numbers.get("error_ratio"), numbers.get("share_percent")
            lines.append(f"    {side}: {numbers['samples']} samples, "
                         f"{'n/a' if errors is None else f'{errors * 100:.1f}%'} errors, "
                         f"observed share {'n/a' if share is None else f'{share:g}%'}")
        for gate in (step.get("metric_gates") or {}).get("gates", []):
            lines.append(f"    metric gate {gate['reason']} [{gate['outcome']}]")
        for warning in step.get("warnings") or []:
            lines.append(f"    warning: {warning}")
    final = result["final_weights"]
    lines.append(f"outcome: {result['outcome']} in {format_duration(result['duration_seconds'])}"
                 + (f"; final weights blue={final['blue']} green={final['green']}" if final else ""))
    if result.get("reason"):
        lines.append(f"reason: {result['reason']}")
    return "\n".join(lines)


def clusters_text(clusters: dict, *, show_argocd_weight: bool) -> str:
    """The clusters table. ``show_argocd_weight``: the weight driver reads the ArgoCD annotation (argocd,
    external-dns via an ApplicationSet); with the route53 driver that annotation says nothing about traffic
    and is not shown beside the records' weights."""
    rows = []
    for side, info in clusters.items():
        weight = info.get("argocd_weight") or ""
        if info.get("drift"):
            weight = f"{weight} (drift: {info['drift']})"
        apps = info.get("applications")
        health = "" if apps is None else f"{info.get('synced', 0)}/{apps} synced, {info.get('healthy', 0)}/{apps} healthy"
        if info.get("error"):
            health, weight = f"unreachable: {info['error']}", ""
        row = (side, info.get("name", ""), info.get("kubernetes_version", ""), weight, health)
        rows.append(row if show_argocd_weight else row[:3] + row[4:])
    headers = ("CLUSTER", "NAME", "KUBERNETES", "ARGOCD WEIGHT", "ARGOCD APPLICATIONS")
    return table(headers if show_argocd_weight else headers[:3] + headers[4:], rows)


def drift(clusters: dict, live: LiveState) -> None:
    """Flag, on each cluster entry, an ArgoCD weight that differs from what Route 53 holds."""
    weights = live.weights()
    for side, info in clusters.items():
        argocd = info.get("argocd_weight")
        if weights is not None and argocd not in (None, "") and str(argocd) != str(weights.of(side)):
            info["drift"] = f"ArgoCD says {argocd}, Route 53 says {weights.of(side)}"


def metric_gate_line(spec: Any) -> str:
    """One metric or alarm gate as the dry run lists it."""
    rule = spec.describe_rule() if hasattr(spec, "describe_rule") else ""
    alarms = getattr(spec, "alarms", None)
    listed = "; ".join(side + ": " + ", ".join(names) for side, names in (alarms or {}).items())
    what = f"CloudWatch alarms {listed}" if alarms else getattr(spec, "preset", None) or getattr(spec, "provider", None)
    return (f"{spec.name}: {getattr(what, 'value', what)}{f', {rule}' if rule else ''}, every "
            f"{format_duration(spec.interval)}" + (f" over {format_duration(spec.window)}"
                                                     if getattr(spec, "window", None) else ""))


def weights_text(weights: Any) -> str:
    """``blue=90 green=10`` from the JSON shape ``{"blue": 90, "green": 10}`` (older journals hold text)."""
    if isinstance(weights, Mapping) and "blue" in weights and "green" in weights:
        return f"blue={weights['blue']} green={weights['green']}"
    return "-" if weights is None else str(weights)


# -- the journal (`bluegreen history`) -------------------------------------------------------------------
def _short_time(seconds: float | None) -> str:
    return "-" if seconds is None else format_wall(seconds).replace(" UTC", "")


def runs_text(runs: list[RunRecord], *, lock_holder: Any = None) -> str:
    """The journal's runs, newest first, for ``bluegreen history``."""
    if not runs:
        return "no runs journaled for this migration yet\n"
    rows = []
    for run in runs:
        duration = "-" if run.finished_at is None else f"{run.finished_at - run.started_at:.0f}s"
        rows.append((run.run_id, run.command, _short_time(run.started_at), duration, run.status(lock_holder),
                     "-" if run.exit_code is None else str(run.exit_code), str(run.plan.get("target", "-")),
                     (run.reason or "")[:60]))
    return table(("RUN", "COMMAND", "STARTED (UTC)", "DURATION", "STATUS", "EXIT", "TARGET", "REASON"), rows) + "\n"


def _describe_event(kind: str, data: Mapping[str, Any]) -> str:
    if kind == "weights_changed":
        changes = ", ".join(data.get("change_ids") or []) or "-"
        return f"{data.get('step')}: {weights_text(data.get('old'))} -> {weights_text(data.get('new'))} (changes {changes})"
    if kind == "step_passed":
        probes = data.get("probes") or {}
        parts = []
        for name, summary in probes.items():
            if isinstance(summary, Mapping):
                keys = ("samples", "success_ratio", "p95_latency_ms", "cluster_share_percent")
                brief = ", ".join(f"{k}={summary[k]}" for k in keys if k in summary)
                parts.append(f"{name}[{brief}]" if brief else name)
        return f"{data.get('step')} passed at {weights_text(data.get('weights'))}" + (f"; {'; '.join(parts)}" if parts else "")
    if kind in ("gates_failed",):
        return f"{data.get('step')}: " + "; ".join(str(r) for r in data.get("reasons") or [])
    if kind in ("rollback_started", "rolled_back"):
        return f"{data.get('reason')} -> {weights_text(data.get('to') or data.get('weights'))}"
    text = ", ".join(f"{k}={v}" for k, v in data.items())
    return text[:200]


def run_text(run: RunRecord, *, lock_holder: Any = None) -> str:
    """One run in full, for ``bluegreen history RUN_ID``."""
    holder = run.holder or {}
    lines = [
        f"run       {run.run_id}",
        f"command   bluegreen {run.command} (migration {run.name})",
        f"by        pid {holder.get('pid', '?')} on {holder.get('host', '?')}",
        f"started   {format_wall(run.started_at)}",
        f"finished  {'-' if run.finished_at is None else format_wall(run.finished_at)}",
        f"status    {run.status(lock_holder)}" + ("" if run.exit_code is None else f" (exit {run.exit_code})"),
    ]
    if run.reason:
        lines.append(f"reason    {run.reason}")
    plan = dict(run.plan)
    if plan:
        lines.append("plan      " + ", ".join(f"{k}={v}" for k, v in plan.items()))
    if run.events:
        lines.append("events")
        for event in run.events:
            lines.append(f"  {_short_time(event.at)[11:]}  {event.kind:<16} {_describe_event(event.kind, event.data)}")
    return "\n".join(lines) + "\n"
