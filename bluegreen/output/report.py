"""A run report: one self-contained HTML file, and a PNG for chat and change tickets.

The chart shows, over the run's time: each side's weight (as a percent of answers) and the share of answers
the probes really saw from it, the error ratio and the p95 latency (per side when the events carry per-side
data, else over every probe), the step boundaries with each step's verdict, the gate thresholds, and the
rollback moment. Under it: the run's facts (who, when, config digest, change ids, outcome) and its steps.

Why matplotlib, rendering SVG inlined into the HTML and the PNG directly:

* offline by construction: no JavaScript, no CDN, no fonts or images to fetch; the SVG is part of the
  HTML text, so the file can be mailed, attached to a change ticket or opened years later as it is;
* one drawing for both outputs: the same figure is saved as SVG (crisp at any zoom, text searchable in the
  page) and as PNG (what chat tools and ticket systems preview);
* a well-kept library with a stable object API (``matplotlib.figure.Figure``, no global pyplot state, so it
  is safe to call from a CLI and from tests), whose wheels bring their own fonts (DejaVu).

JavaScript charting libraries (Plotly, Vega, Chart.js) would have to be inlined whole (hundreds of KB to
a few MB per report) to stay offline, and would draw nothing where scripts are blocked (mail previews,
some ticket systems). matplotlib is in the optional ``report`` extra (it brings numpy and pillow): without
it :func:`write_report` raises :class:`ReportUnavailable` (exit 2) saying how to install it.
"""

from __future__ import annotations

import html
import io
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping

from bluegreen.core.redact import scrub, scrub_text
from bluegreen.core.timeline import AGGREGATE, SIDES, RunView, fold, from_run_record, gate_thresholds
from bluegreen.errors import BlueGreenError, ExitCode

INSTALL_HINT = "install the report extra: pip install 'bluegreen[report]' (it adds matplotlib)"
SIDE_COLOURS = {"blue": "#1f62c9", "green": "#18963a", AGGREGATE: "#555555"}
OUTCOME_COLOURS = {"completed": "#18963a", "nothing_to_do": "#18963a", "rolled_back": "#c62828",
                   "failed": "#c62828", "conflict": "#b26a00", "interrupted": "#b26a00"}
VERDICT_MARKS = {"passed": ("✓", "#18963a"), "failed": ("✗", "#c62828"), "stopped": ("■", "#b26a00"),
                 "done": ("", "#555555")}
DIGEST_KEYS = ("config_digest", "config_sha256", "digest")


class ReportUnavailable(BlueGreenError):
    """The report needs matplotlib (the ``report`` extra), which is not installed. Nothing was written."""

    exit_code = ExitCode.BAD_INPUT


@dataclass(frozen=True)
class ReportFiles:
    html: Path
    png: Path | None


# -- entry point ---------------------------------------------------------------------------------------
def write_report(run: Any, html_path: str | os.PathLike[str], png_path: str | os.PathLike[str] | None = None,
                 *, gates: Any = None, cluster_sides: Mapping[str, str] | None = None,
                 generated_at: float | None = None) -> ReportFiles:
    """Write the report of ``run``: a :class:`~bluegreen.core.state.RunRecord`, a RunView, or events as
    ``(wall_time, kind, data)`` triples. ``gates`` (a Gates or a mapping) draws the thresholds; by default
    ``plan["gates"]`` when the journal has it. ``generated_at`` (wall clock) is printed in the footer.

    Raises :class:`ReportUnavailable` (exit 2) when matplotlib is missing."""
    figure_module = _matplotlib()
    view = as_view(run, cluster_sides=cluster_sides)
    figure = draw_chart(view, gates=gates, figure_module=figure_module)
    svg = _svg_text(figure)
    html_path = Path(html_path)
    html_path.write_text(render_html(view, svg, gates=gates, generated_at=generated_at), encoding="utf-8")
    png: Path | None = None
    if png_path is not None:
        png = Path(png_path)
        figure.savefig(png, format="png", dpi=110, metadata={"Software": "bluegreen"})
    return ReportFiles(html=html_path, png=png)


def as_view(run: Any, *, cluster_sides: Mapping[str, str] | None = None) -> RunView:
    if isinstance(run, RunView):
        return run
    if hasattr(run, "events") and hasattr(run, "run_id"):
        return from_run_record(run, cluster_sides=cluster_sides)
    if isinstance(run, Iterable):
        return fold(list(run), cluster_sides=cluster_sides)
    raise TypeError(f"a report needs a RunRecord, a RunView or events, got {type(run).__name__}")


def _matplotlib():
    try:
        from matplotlib import figure
    except ImportError:
        raise ReportUnavailable("`bluegreen report` needs matplotlib, which is not installed",
                                hint=INSTALL_HINT) from None
    return figure


# -- the chart -----------------------------------------------------------------------------------------
TICK_STEPS = (5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600)


def _elapsed_label(seconds: float, _pos: Any = None) -> str:
    seconds = int(round(seconds))
    sign = "-" if seconds < 0 else ""
    hours, rest = divmod(abs(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{sign}{hours}:{minutes:02d}:{secs:02d}" if hours else f"{sign}{minutes}:{secs:02d}"


def _tick_step(span: float) -> float:
    """Ticks at round times (every 30 s, 5 min, 1 h...), at most about ten of them."""
    return next((step for step in TICK_STEPS if span / step <= 10), TICK_STEPS[-1] * max(1, round(span / 36000)))


def _gapped(points: list, t0: float, boundaries: list[float], scale: float = 1.0) -> tuple[list, list]:
    """x and y of ``points`` with a gap at each step boundary, so values measured in different steps are
    not joined by a line that suggests they were measured in between."""
    xs: list[float] = []
    ys: list[float] = []
    previous: float | None = None
    for at, value in points:
        if previous is not None and any(previous < b <= at for b in boundaries):
            xs.append(float("nan"))
            ys.append(float("nan"))
        xs.append(at - t0)
        ys.append(value * scale)
        previous = at
    return xs, ys


def draw_chart(view: RunView, *, gates: Any = None, figure_module: Any = None):
    """A matplotlib Figure of the run (no pyplot: no global state, no display needed)."""
    figure_module = figure_module or _matplotlib()
    from matplotlib.ticker import FuncFormatter, MaxNLocator, MultipleLocator

    fig = figure_module.Figure(figsize=(11, 7.6), layout="constrained")
    traffic, errors, latency = fig.subplots(3, 1, sharex=True, height_ratios=(1.5, 1, 1))
    bounds = view.bounds() or (0.0, 1.0)
    t0, t_end = bounds
    span = max(t_end - t0, 1.0)

    boundaries = [step.started_at for step in view.spans]

    def x(points):
        return [at - t0 for at, _ in points]

    def y(points, scale=1.0):
        return [value * scale for _, value in points]

    # traffic: weight (what we asked Route 53 for) and observed share (what the probes saw)
    for side in SIDES:
        points = list(view.weights.get(side) or [])
        if points:
            points.append((t_end, points[-1][1]))  # hold the last weight to the end of the run
            traffic.step(x(points), y(points), where="post", color=SIDE_COLOURS[side], linewidth=2.4,
                         label=f"{side} weight")
        observed = view.share.get(side) or []
        if observed:
            traffic.plot(*_gapped(observed, t0, boundaries), color=SIDE_COLOURS[side], linewidth=1.1, linestyle="--",
                         marker="o", markersize=3, alpha=0.85, label=f"{side} observed share")
    traffic.set_ylim(-4, 112)
    traffic.set_ylabel("traffic (%)")
    traffic.yaxis.set_major_locator(MaxNLocator(5))

    thresholds = gate_thresholds(gates if gates is not None else view.plan.get("gates"))
    error_limit = (1.0 - thresholds["min_success_ratio"]) * 100 if "min_success_ratio" in thresholds else None
    _series(errors, view, "error_ratio", t0, boundaries, t_end, scale=100.0, what="error ratio",
            limit=error_limit, unit="%")
    errors.set_ylabel("errors (%)")
    _series(latency, view, "p95_ms", t0, boundaries, t_end, what="p95 latency",
            limit=thresholds.get("max_p95_latency_ms"), unit=" ms")
    latency.set_ylabel("p95 latency (ms)")

    # steps: boundaries, verdicts, the failed step shaded, the rollback moment
    for axis in (traffic, errors, latency):
        axis.grid(axis="y", color="#e4e4e4", linewidth=0.8)
        axis.set_axisbelow(True)
        for step in view.spans:
            axis.axvline(step.started_at - t0, color="#9a9a9a", linestyle=":", linewidth=1)
            if step.verdict == "failed":
                axis.axvspan(step.started_at - t0, (step.ended_at or t_end) - t0, color="#c62828", alpha=0.08)
        if view.rollback_at is not None:
            axis.axvline(view.rollback_at - t0, color="#c62828", linewidth=2)
    for step in view.spans:
        if step.label == "rollback":
            continue  # drawn as the red line below
        mark, colour = VERDICT_MARKS.get(step.verdict or "", ("", "#333333"))
        traffic.annotate(f"{step.label} {mark}".strip(), (step.started_at - t0, 104), xytext=(3, 0),
                         textcoords="offset points", fontsize=9.5, color=colour, va="center",
                         fontweight="bold" if step.verdict == "failed" else "normal")
    if view.rollback_at is not None:
        traffic.annotate("rollback", (view.rollback_at - t0, 50), xytext=(4, 0), textcoords="offset points",
                         color="#c62828", fontweight="bold", fontsize=10, rotation=90, va="center")

    latency.set_xlim(-span * 0.01, span * 1.03)
    latency.xaxis.set_major_locator(MultipleLocator(_tick_step(span)))
    latency.xaxis.set_major_formatter(FuncFormatter(_elapsed_label))
    latency.set_xlabel("time since the start (min:s)")
    traffic.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, frameon=False)
    for axis in (errors, latency):
        if axis.get_legend_handles_labels()[0]:
            axis.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, frameon=False)
    outcome = (view.outcome or "running").replace("_", " ")
    title = f"{view.migration or 'bluegreen'}: shift to {view.target or '?'}, {outcome}"
    fig.suptitle(title, fontsize=13, fontweight="bold", color=OUTCOME_COLOURS.get(view.outcome or "", "#222222"))
    return fig


def _series(axis: Any, view: RunView, name: str, t0: float, boundaries: list[float], t_end: float, *,
            scale: float = 1.0, what: str, limit: float | None, unit: str) -> None:
    """Per-side points (from per-side hold data), and each step's summary over every probe as a flat
    segment across the step it was measured over. The gate, when known, as a dotted red line."""
    series: Mapping[str, list] = getattr(view, name)
    highest = 0.0
    for key in SIDES:
        points = series.get(key) or []
        if points:
            xs, ys = _gapped(points, t0, boundaries, scale)
            axis.plot(xs, ys, color=SIDE_COLOURS[key], marker="o", markersize=3.5, linewidth=1.6, label=key)
            highest = max([highest, *(v for v in ys if v == v)])
    summaries = [(step, getattr(step.summary, "error_ratio" if name == "error_ratio" else "p95_ms", None))
                 for step in view.spans if step.summary is not None]
    label = "all probes, per step"
    for step, value in summaries:
        if value is None:
            continue
        end = step.ended_at if step.ended_at is not None else t_end
        axis.hlines(value * scale, step.started_at - t0, end - t0, color=SIDE_COLOURS[AGGREGATE], linewidth=2.2,
                    label=label)
        label = "_nolegend_"
        highest = max(highest, value * scale)
    if label != "_nolegend_" and not any(series.get(k) for k in SIDES):
        axis.text(0.5, 0.5, f"no {what} measured in this run's events", transform=axis.transAxes,
                  ha="center", va="center", color="#888888", fontsize=9)
    if limit is not None:
        axis.axhline(limit, color="#c62828", linestyle=":", linewidth=1.2, label=f"gate {limit:g}{unit}")
        highest = max(highest, limit)
    top = highest * 1.15 if highest > 0 else 1.0
    axis.set_ylim(-top * 0.04, top)  # a little below 0, so a flat 0 line is not hidden by the axis


def _svg_text(figure: Any) -> str:
    """The figure as an ``<svg>`` element to inline: the XML prolog and DOCTYPE (whose DTD address a
    browser never fetches, but which does not belong inside HTML) are dropped."""
    import matplotlib

    buffer = io.StringIO()
    # A fixed salt gives stable element ids, so two reports of the same run are byte-identical.
    with matplotlib.rc_context({"svg.hashsalt": "bluegreen", "svg.fonttype": "path"}):
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": "bluegreen"})
    text = buffer.getvalue()
    start = text.find("<svg")
    return text[start:] if start >= 0 else text


# -- the page ------------------------------------------------------------------------------------------
def _utc(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _weights_text(weights: Mapping[str, int] | None) -> str:
    return "-" if not weights else f"blue {weights['blue']} / green {weights['green']}"


def run_facts(view: RunView) -> list[tuple[str, str]]:
    """The facts table, in order (values already masked; escape them when writing HTML)."""
    plan = scrub(dict(view.plan))
    holder = scrub(dict(view.holder))
    who = []
    for key in ("user", "host", "pid"):
        if holder.get(key) not in (None, ""):
            who.append(f"{key} {holder[key]}")
    digest = next((str(plan[k]) for k in DIGEST_KEYS if plan.get(k)), None)
    end = view.finished_at if view.finished_at is not None else view.last_event_at
    facts = [
        ("outcome", (view.outcome or "running").replace("_", " ")
         + ("" if view.exit_code is None else f" (exit {view.exit_code})")),
        ("reason", view.reason or "-"),
        ("migration", view.migration or "-"),
        ("run", view.run_id or "-"),
        ("command", f"bluegreen {view.command}" if view.command else "-"),
        ("who", ", ".join(who) or "-"),
        ("started", _utc(view.started_at)),
        ("finished", _utc(view.finished_at) if view.finished else "- (not finished)"),
        ("duration", _duration(None if view.started_at is None or end is None else end - view.started_at)),
        ("target", view.target or "-"),
        ("weights", f"{_weights_text(view.start_weights)} → {_weights_text(view.current_weights)}"),
        ("steps", ", ".join(f"{p}%" for p in view.steps) or "-"),
    ]
    if view.skipped:
        facts.append(("skipped (resume)", ", ".join(f"{p}%" for p in view.skipped)))
    facts.append(("config digest", digest or "- (not in the journaled plan)"))
    facts.append(("change ids", ", ".join(view.change_ids) or "-"))
    if view.rollback_at is not None:
        facts.append(("rollback", f"{_utc(view.rollback_at)}: {view.rollback_reason or '-'}"))
    return [(k, str(scrub(v))) for k, v in facts]


CSS = """
body { font: 14px/1.45 -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: #222;
       margin: 24px auto; max-width: 1180px; padding: 0 16px; background: #fff; }
h1 { font-size: 20px; margin: 0 0 4px; }
.outcome { display: inline-block; padding: 2px 10px; border-radius: 4px; color: #fff; font-weight: bold; }
.chart { margin: 16px 0; border: 1px solid #ddd; border-radius: 6px; padding: 8px; background: #fff; }
.chart svg { width: 100%; height: auto; display: block; }
table { border-collapse: collapse; margin: 8px 0 16px; }
th, td { text-align: left; padding: 3px 12px 3px 0; vertical-align: top; border-bottom: 1px solid #eee; }
th { color: #555; font-weight: 600; white-space: nowrap; }
td.mono, code { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 13px; }
.passed { color: #18963a; } .failed { color: #c62828; } .stopped { color: #b26a00; }
footer { color: #777; font-size: 12px; margin-top: 24px; }
"""


def render_html(view: RunView, svg: str, *, gates: Any = None, generated_at: float | None = None) -> str:
    def esc(text: Any) -> str:
        # every text is masked (secrets, URL credentials and queries) and then escaped, whatever its source
        return html.escape(scrub_text(str(text)))
    outcome = view.outcome or "running"
    colour = OUTCOME_COLOURS.get(outcome, "#555555")
    facts = "\n".join(f"<tr><th>{esc(k)}</th><td class=\"mono\">{esc(v)}</td></tr>" for k, v in run_facts(view))
    step_rows = []
    for step in view.spans:
        verdict = step.verdict or "running"
        took = None if step.ended_at is None else step.ended_at - step.started_at
        reasons = "; ".join(str(scrub(r)) for r in step.reasons)
        step_rows.append(
            f"<tr><td>{esc(step.label)}</td><td>{esc(_utc(step.started_at))}</td><td>{esc(_duration(took))}</td>"
            f"<td>{esc(_weights_text(step.weights))}</td><td class=\"{esc(verdict)}\">{esc(verdict)}</td>"
            f"<td class=\"mono\">{esc(', '.join(step.change_ids) or '-')}</td><td>{esc(reasons)}</td></tr>")
    notes = "".join(f"<li>{esc(_utc(at))}: {esc(str(scrub(text)))}</li>" for at, text in view.notes)
    thresholds = gate_thresholds(gates if gates is not None else view.plan.get("gates"))
    gate_text = ", ".join(f"{k} {v:g}" for k, v in thresholds.items())
    title = f"bluegreen run {view.run_id or ''}".strip()
    generated = _utc(generated_at) if generated_at is not None else None
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title>
<style>{CSS}</style>
</head>
<body>
<h1>{esc(view.migration or 'bluegreen')}: shift to {esc(view.target or '?')}
 <span class="outcome" style="background:{colour}">{esc(outcome.replace('_', ' '))}</span></h1>
<div>{esc(view.reason or '')}</div>
<div class="chart" id="chart">
{svg}
</div>
<h2>Run</h2>
<table id="facts">
{facts}
</table>
<h2>Steps</h2>
<table id="steps">
<tr><th>step</th><th>started</th><th>took</th><th>weights</th><th>verdict</th><th>changes</th><th>reasons</th></tr>
{''.join(step_rows)}
</table>
{f'<p>Gates: <code>{esc(gate_text)}</code></p>' if gate_text else ''}
{f'<h2>Notes</h2><ul>{notes}</ul>' if notes else ''}
<footer>Weights are drawn as the percent of answers they ask Route 53 for; the observed share is the part of
probe answers that came from each side's cluster. Generated by bluegreen{esc(f' at {generated}') if generated else ''}.
This file is self-contained: it loads nothing from the network.</footer>
</body>
</html>
"""


__all__ = ("INSTALL_HINT", "ReportFiles", "ReportUnavailable", "draw_chart", "render_html", "run_facts",
           "write_report")
