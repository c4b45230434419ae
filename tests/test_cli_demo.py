"""`bluegreen demo --keep DIR`: the demo runs preflight (one warning), writes the report, and keeps config,
state and report so `history`, `watch` and `report` work afterwards. `bluegreen demo --nodes`: the in-place mode
against the sandbox, and nothing left running after it."""

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


def test_demo_nodes_upgrades_blue_in_place_and_leaves_nothing_running(tmp_path, moto_endpoint):
    import threading
    import time

    import boto3

    from tests.conftest import FAKE_CREDENTIALS

    threads_before = {t.ident for t in threading.enumerate()}
    keep = tmp_path / "demo-nodes"
    out, err = io.StringIO(), io.StringIO()
    started = time.monotonic()
    code = main(["demo", "--nodes", "--keep", str(keep)],
                Environment(stdout=out, stderr=err, install_signal_handlers=False))
    took = time.monotonic() - started
    text = out.getvalue()
    assert code == 0, err.getvalue()[-3000:] + text
    assert took < 40, f"the nodes demo took {took:.0f}s"
    # The real commands, in order, and what each showed.
    plan, upgrade, finish = (text.index(f"$ bluegreen nodes {verb} --cluster blue")
                             for verb in ("plan", "upgrade", "finish"))
    assert plan < upgrade < finish
    assert "general -> general-1-31" in text[plan:upgrade] and "system -> system-1-31" in text[plan:upgrade]
    assert "cordon 3 old node(s)" in text[plan:upgrade]
    during = text[upgrade:finish]
    assert "created node group general-1-31 at 1.31 (twin of general)" in during
    assert "cordoned the old nodes: general-node-0, general-node-1, system-node-0" in during
    assert "completed: 3 workload(s) moved to 1.31" in during
    assert "StatefulSet/team-burnham/burnham-cache" in during
    assert "probe public:" in during and "100.0% ok" in during  # the probe ran and passed throughout
    assert "preflight_inventory_read" in err.getvalue()  # preflight first
    assert "nothing deleted:" in text[finish:] and "kept for 24.0h" in text[finish:]
    assert "0 pod(s) left on the 3 old nodes (3 cordoned); node groups now: general, general-1-31, system, " \
           "system-1-31" in text
    assert "sandbox stopped; nothing is left running." in text
    # Nothing left running: threads (servers, the node controller, probes) gone, moto's EKS cluster removed.
    deadline = time.monotonic() + 5
    while {t.ident for t in threading.enumerate()} - threads_before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [t.name for t in threading.enumerate() if t.ident not in threads_before] == []
    eks = boto3.client("eks", endpoint_url=moto_endpoint, region_name="us-east-1", **FAKE_CREDENTIALS)
    assert not [c for c in eks.list_clusters()["clusters"] if c.startswith("eks-blueprint-blue-")]
    # The journal kept: the upgrade completed, finish changed nothing (no run of its own).
    code, out, _ = run("history", "--config", str(keep / "bluegreen.yaml"), "--output", "json")
    runs = json.loads(out)
    assert code == 0 and [(r["command"], r["outcome"]) for r in runs] == [("nodes-upgrade", "completed")]


def test_demo_nodes_is_one_of_the_exclusive_choices(capsys):
    out, err = io.StringIO(), io.StringIO()
    code = main(["demo", "--nodes", "--fail-green"], Environment(stdout=out, stderr=err, install_signal_handlers=False))
    # argparse writes its usage error to sys.stderr
    assert code == 2 and "--fail-green: not allowed with argument --nodes" in capsys.readouterr().err
