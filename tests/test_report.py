"""The run report (bluegreen/output/report.py): one self-contained HTML file and a PNG, built from runs the
real engine produced (0,10,50,100 rolled back at 50%, and a completed one), checked in a real browser."""

from __future__ import annotations

import builtins
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bluegreen.errors import exit_code_for
from bluegreen.adapters.state.sqlite import SqliteStateStore
from bluegreen.core.clock import FakeClock
from bluegreen.core.ports import Event
from bluegreen.core.state import Holder
from bluegreen.core.timeline import fold
from bluegreen.errors import ExitCode
from bluegreen.runs import JournalSink
from tests.support.runs import GATES, engine_run, new_form_events, plan_dict

pytest.importorskip("matplotlib", reason="the report extra is not installed: pip install 'bluegreen[report]'")
from bluegreen.output.report import ReportUnavailable, write_report  # noqa: E402

BLUE = (0x1F, 0x62, 0xC9)
GREEN = (0x18, 0x96, 0x3A)


def _journaled(tmp_path, *, fail_green_from=None, plan_extra=None):
    """Run the engine, journal its events in the real SQLite store as `bluegreen shift` does, read it back."""
    events, result, plan = engine_run(fail_green_from=fail_green_from)
    clock = FakeClock(wall_start=events[0][0])
    store = SqliteStateStore(tmp_path / "state.db", clock)
    holder = Holder(host="ops-box-1", pid=4242, started_at=clock.wall(), run_id="20270115T080000Z-ab12cd",
                    command="shift")
    store.start_run("checkout", "shift", plan_dict(plan, config_digest="sha256:5f0c2a", **(plan_extra or {})),
                    run_id=holder.run_id, holder=holder)
    sink = JournalSink(store, holder.run_id)
    for at, kind, data in events:
        clock.advance(at - clock.wall())
        sink(Event(kind, data))
    store.finish(holder.run_id, result.outcome.value, int(exit_code_for(result.outcome)), result.reason)
    record = store.get_run(holder.run_id)
    store.close()
    return record


def test_report_of_a_rollback_is_one_self_contained_file_with_the_facts(tmp_path):
    record = _journaled(tmp_path, fail_green_from=50)
    files = write_report(record, tmp_path / "run.html", tmp_path / "run.png", gates=GATES)
    page = files.html.read_text(encoding="utf-8")
    # nothing to fetch: no scripts, stylesheets, images, fonts or frames from anywhere
    assert not re.search(r"<(script|link|img|iframe|object|embed)\b", page, re.IGNORECASE)
    assert not re.search(r"\b(src|href)\s*=\s*\"(?!#)", page, re.IGNORECASE)  # only the SVG's own #ids
    assert "xlink:href=\"#" in page
    assert not re.search(r"url\((?!#)|@import", page, re.IGNORECASE)  # clip paths use the SVG's own ids
    assert "<!DOCTYPE svg" not in page and page.count("<svg") == 1
    for fact in ("20270115T080000Z-ab12cd", "checkout", "host ops-box-1, pid 4242", "sha256:5f0c2a",
                 "C1, C2, C3", "rolled back (exit 3)", "probe public, green:"):
        assert fact in page, fact
    steps = re.search(r'<table id="steps">(.*?)</table>', page, re.S).group(1)
    assert re.findall(r'class="(passed|failed|done)"', steps) == ["passed", "passed", "failed", "done"]
    assert files.png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_png_is_a_drawn_chart_with_both_sides(tmp_path):
    from PIL import Image

    record = _journaled(tmp_path, fail_green_from=50)
    files = write_report(record, tmp_path / "run.html", tmp_path / "run.png", gates=GATES)
    image = Image.open(files.png).convert("RGB")
    assert image.size[0] >= 1000 and image.size[1] >= 700
    assert _near(image, BLUE) > 2000 and _near(image, GREEN) > 2000  # each side's weight line is drawn
    assert _near(image, (0xC6, 0x28, 0x28)) > 500  # the rollback line


def test_completed_new_shape_run_and_the_same_run_twice_gives_the_same_bytes(tmp_path):
    events = new_form_events()
    first = write_report(events, tmp_path / "a.html", gates=GATES)
    second = write_report(fold(events), tmp_path / "b.html", gates=GATES)
    page = first.html.read_text(encoding="utf-8")
    assert "completed" in page and "C1, C2" in page and first.png is None
    assert "not in the journaled plan" in page  # no digest: said so, not invented
    assert first.html.read_bytes() == second.html.read_bytes()


def test_secrets_in_reasons_and_holders_are_masked(tmp_path):
    events = new_form_events()
    events[-1] = (events[-1][0], "run_failed", {"reason": "notify failed: https://hooks.slack.com/services/T0/B0/XYZ"
                                                " and https://bob:hunter2@example.com/hook?sig=abc"})
    files = write_report(fold(events, holder={"host": "h", "pid": 1, "token": "tok-123"}), tmp_path / "r.html")
    page = files.html.read_text(encoding="utf-8")
    for secret in ("hooks.slack.com/services", "hunter2", "sig=abc", "tok-123"):
        assert secret not in page


def test_missing_matplotlib_says_how_to_install_it_and_writes_nothing(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(ReportUnavailable) as caught:
        write_report(new_form_events(), tmp_path / "r.html", tmp_path / "r.png")
    assert caught.value.exit_code == ExitCode.BAD_INPUT == 2
    assert "pip install 'bluegreen[report]'" in str(caught.value)
    assert not list(tmp_path.iterdir())


def test_a_report_needs_a_run():
    with pytest.raises(TypeError, match="RunRecord"):
        write_report(42, "/nonexistent/r.html")


# -- in a real browser -------------------------------------------------------------------------------------
def _pixels(image):
    import numpy

    return numpy.asarray(image.convert("RGB"), dtype=numpy.int16)


def _near(image, colour, tolerance=40) -> int:
    import numpy

    distance = numpy.abs(_pixels(image) - numpy.array(colour, dtype=numpy.int16)).max(axis=2)
    return int((distance <= tolerance).sum())


def _non_white(image) -> int:
    return int((_pixels(image).min(axis=2) < 235).sum())


def _screenshot(browser: str, page: Path, out: Path, profile: Path) -> None:
    # --no-sandbox: the tests run as root in a container, where Chromium's sandbox cannot start.
    # The host resolver rule makes every name unresolvable: the page must draw with no network at all.
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
               f"--user-data-dir={profile}", "--host-resolver-rules=MAP * ~NOTFOUND",
               "--window-size=1280,1000", f"--screenshot={out}", page.as_uri()]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert out.exists(), f"chromium wrote no screenshot (exit {completed.returncode}): {completed.stderr[-2000:]}"


@pytest.mark.parametrize("fail_green_from", [50, None], ids=["rolled-back-at-50", "completed"])
def test_chromium_draws_the_chart(tmp_path, fail_green_from):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        print("SKIP reason: chromium is not installed (apt-get install -y chromium)", file=sys.stderr)
        pytest.skip("chromium not installed: apt-get install -y chromium")
    from PIL import Image

    record = _journaled(tmp_path, fail_green_from=fail_green_from)
    files = write_report(record, tmp_path / "run.html", gates=GATES)
    page = files.html.read_text(encoding="utf-8")
    # the same page with the chart taken out, at the same size: what "blank" looks like in this browser
    svg = re.search(r"<svg.*</svg>", page, re.S)
    width, height = re.search(r'<svg[^>]*width="([\d.]+)pt"[^>]*height="([\d.]+)pt"', page).groups()
    blank = tmp_path / "blank.html"
    blank.write_text(page[: svg.start()] + f'<div style="aspect-ratio:{width}/{height}"></div>' + page[svg.end():],
                     encoding="utf-8")
    _screenshot(browser, files.html, tmp_path / "run-shot.png", tmp_path / "profile")
    _screenshot(browser, blank, tmp_path / "blank-shot.png", tmp_path / "profile")
    # the chart region: below the heading, across the page
    box = (40, 90, 1240, 900)
    drawn = Image.open(tmp_path / "run-shot.png").convert("RGB").crop(box)
    empty = Image.open(tmp_path / "blank-shot.png").convert("RGB").crop(box)
    assert _non_white(drawn) > _non_white(empty) + 20_000, "the chart region is (nearly) blank"
    assert _near(drawn, BLUE) > 1500 and _near(drawn, GREEN) > 1500, "a side's lines are missing"
    assert _near(empty, BLUE) < 100
    if fail_green_from:
        assert _near(drawn, (0xC6, 0x28, 0x28)) > 300  # the rollback line and the failed step
