"""`bluegreen report` through the real CLI, in-process: a real shift against moto journals a run in the real
SQLite store, and the report is written from that journal."""

from __future__ import annotations

import json
import sys

from tests.support.cli import run, write_config


def _shifted(tmp_path, moto_endpoint, zone):
    app = zone.weighted_pair("app", ttl=0)
    path = write_config(tmp_path, moto_endpoint, zone, [app], state={"path": str(tmp_path / "state.db")})
    code, out, err = run("shift", "--to", "green", "--config", str(path), "--output", "json")
    assert code == 0, err
    return path, json.loads(out)["run_id"]


def test_report_of_the_latest_run_and_of_a_given_run(tmp_path, moto_endpoint, zone):
    path, run_id = _shifted(tmp_path, moto_endpoint, zone)
    html, png = tmp_path / "run.html", tmp_path / "run.png"
    code, out, err = run("report", "--html", str(html), "--png", str(png), "--config", str(path))
    assert code == 0, err
    assert str(html) in out and str(png) in out and run_id in out
    page = html.read_text(encoding="utf-8")
    assert "<svg" in page and run_id in page and "completed" in page.lower()
    assert "<script" not in page and 'src="http' not in page and "url(http" not in page  # nothing to fetch
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    other = tmp_path / "again.html"
    code, out, err = run("report", run_id, "--html", str(other), "--config", str(path), "--output", "json")
    data = json.loads(out)
    assert code == 0 and data == {"run_id": run_id, "html": str(other), "png": None}
    assert run_id in other.read_text(encoding="utf-8")


def test_no_run_or_unknown_run_exits_2(tmp_path, moto_endpoint, zone):
    path = write_config(tmp_path, moto_endpoint, zone, [zone.weighted_pair("app")],
                        state={"path": str(tmp_path / "state.db")})
    code, _, err = run("report", "--html", str(tmp_path / "r.html"), "--config", str(path))
    assert code == 2 and "holds no run yet" in err
    code, _, err = run("report", "20990101T000000Z-nope", "--html", str(tmp_path / "r.html"), "--config", str(path))
    assert code == 2 and "no run '20990101T000000Z-nope'" in err and "bluegreen history" in err
    assert not (tmp_path / "r.html").exists()


def test_unwritable_file_exits_2(tmp_path, moto_endpoint, zone):
    path, _ = _shifted(tmp_path, moto_endpoint, zone)
    code, _, err = run("report", "--html", str(tmp_path / "no-such-dir" / "r.html"), "--config", str(path))
    assert code == 2 and "cannot write the report" in err


def test_missing_matplotlib_exits_2_with_the_install_hint(tmp_path, moto_endpoint, zone, monkeypatch):
    path, _ = _shifted(tmp_path, moto_endpoint, zone)
    # None in sys.modules makes `import matplotlib` raise ImportError, as when the extra is not installed.
    for name in [n for n in sys.modules if n == "matplotlib" or n.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, _, err = run("report", "--html", str(tmp_path / "r.html"), "--config", str(path))
    assert code == 2 and "pip install 'bluegreen[report]'" in err
    assert not (tmp_path / "r.html").exists()
