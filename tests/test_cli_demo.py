"""`bluegreen demo --keep DIR`: the demo runs preflight (one warning), writes the report, and keeps config,
state and report so `history`, `watch` and `report` work afterwards."""

from __future__ import annotations

import io
import json

from bluegreen.cli import Environment, main
from tests.support.cli import run


def test_demo_keeps_what_history_watch_and_report_need(tmp_path):
    keep = tmp_path / "demo"
    out, err = io.StringIO(), io.StringIO()
    code = main(["demo", "--keep", str(keep)], Environment(stdout=out, stderr=err, install_signal_handlers=False))
    text = out.getvalue()
    assert code == 0, err.getvalue()[-3000:]
    assert "$ bluegreen preflight --cluster green" in text
    assert "BG-K8S-003" in text and "Deployment/team-burnham/burnham-worker" in text
    assert "0 errors, 1 warning, 0 infos: preflight passed" in text
    html, png = keep / "report" / "report.html", keep / "report" / "report.png"
    assert f"the run's report: {html}" in text
    assert "<svg" in html.read_text(encoding="utf-8") and png.read_bytes()[:4] == b"\x89PNG"
    config = str(keep / "bluegreen.yaml")
    code, out, _ = run("history", "--config", config, "--output", "json")
    runs = json.loads(out)
    assert code == 0 and [r["outcome"] for r in runs if r["command"] == "shift"] == ["completed"]
    code, out, err = run("watch", "--config", config)
    assert code == 0 and "COMPLETED" in out, err
    code, out, err = run("report", "--config", config, "--html", str(tmp_path / "again.html"))
    assert code == 0 and (tmp_path / "again.html").exists(), err
