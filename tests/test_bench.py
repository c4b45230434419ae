"""The benchmark suite runs and reports every figure of issue 5 (scripts/bench.py --quick).

Only that it runs and reports: whether a target is met depends on the machine, and a slow CI machine must
not fail the build.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.sandbox

REPO = Path(__file__).resolve().parent.parent
FIGURES = ("1_failure_detection", "2_rollback_latency", "3_overhead_per_step", "4_route53_calls",
           "5_probe_throughput", "6_startup")


def test_quick_bench_reports_every_figure(tmp_path):
    output = tmp_path / "bench-results.json"
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "bench.py"), "--quick", "--output", str(output)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads(output.read_text())
    assert results["mode"] == "quick"
    for figure in FIGURES:
        assert results["figures"].get(figure), f"figure {figure} missing"
    prefixes = {row["figure"].split(" ", 1)[0] for row in results["table"]}
    assert prefixes == {"1", "2", "3", "4", "5", "6"}
    for row in results["table"]:
        assert row["met"] in ("yes", "no", "n/a") and row["measured"] not in ("", None)
    detection = results["figures"]["1_failure_detection"]["runs"]
    assert any(r["detection_seconds"] is not None for r in detection)
    assert results["figures"]["4_route53_calls"]["runs"]
    assert "| figure" in proc.stdout  # the table is printed
