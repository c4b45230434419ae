"""Text and JSON renderings of what commands return. Pure: builds strings, prints nothing."""

from __future__ import annotations

import json
from typing import Any, Sequence

from bluegreen.core.durations import format_duration
from bluegreen.core.weights import LiveState, ShiftPlan


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
                "weights": {"blue": r.weights.blue, "green": r.weights.green},
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
            "percent": step.percent, "weights": {"blue": step.weights.blue, "green": step.weights.green},
            "changes_weights": changed, "hold_seconds": plan.hold_after(step, changed=changed),
        })
        current = step.weights
    return {
        "target": plan.target, "source": plan.source,
        "start": {"blue": plan.start.blue, "green": plan.start.green},
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
    final = result["final_weights"]
    lines.append(f"outcome: {result['outcome']} in {format_duration(result['duration_seconds'])}"
                 + (f"; final weights blue={final['blue']} green={final['green']}" if final else ""))
    if result.get("reason"):
        lines.append(f"reason: {result['reason']}")
    return "\n".join(lines)


def clusters_text(clusters: dict) -> str:
    rows = []
    for side, info in clusters.items():
        if info.get("error"):
            rows.append((side, info.get("name", ""), "", "", f"unreachable: {info['error']}"))
            continue
        apps = info.get("applications")
        health = "" if apps is None else f"{info.get('synced', 0)}/{apps} synced, {info.get('healthy', 0)}/{apps} healthy"
        rows.append((side, info.get("name", ""), info.get("kubernetes_version", ""),
                     info.get("route53_weight", ""), health))
    return table(("CLUSTER", "NAME", "KUBERNETES", "ROUTE53 WEIGHT", "ARGOCD APPLICATIONS"), rows)
