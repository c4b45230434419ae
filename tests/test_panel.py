"""The live panel (bluegreen/output/panel.py): rendered on a rich Console of fixed width, on a real
pseudo-terminal, and (when tmux is installed) in a real 80-column terminal read back with capture-pane."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time

import pytest
from rich.console import Console

from bluegreen.core.clock import FakeClock
from bluegreen.core.ports import Event
from bluegreen.output.panel import LivePanel, format_seconds
from tests.support.runs import GATES, engine_run, new_form_events

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _console(width=80, **kw) -> Console:
    kw.setdefault("force_terminal", True)
    kw.setdefault("color_system", "truecolor")
    return Console(width=width, record=True, file=io.StringIO(), **kw)


def _fed(events, upto=None, *, width=80, mode="off", **kw):
    console = _console(width)
    panel = LivePanel(console=console, mode=mode, gates=GATES, **kw)
    for at, kind, data in events[:upto]:
        panel.feed(at, kind, data)
    return panel, console


def _text(panel, console, now):
    console.print(panel.render(now=now))
    return console.export_text()


def test_mid_run_shows_step_weights_next_to_observed_share_gates_and_time_left():
    events = new_form_events()
    panel, console = _fed(events, 8)  # 50% step, second hold (40 s left at t0+74)
    text = _text(panel, console, now=events[7][0] + 10)
    assert "step 2/3" in text and "50% on green" in text and "verdict passing" in text
    rows = {line.split()[0]: line.split() for line in text.splitlines() if line.split()[:1] in (["blue"], ["green"])}
    assert rows["blue"][1:3] == ["50%", "51.0%"] and rows["green"][1:5] == ["50%", "49.0%", "2.0%", "95"]
    assert re.search(r"success ratio\s+0\.980\s+≥ 0\.95\s+✓", text)
    assert re.search(r"p95 latency\s+95 ms\s+≤ 800 ms\s+✓", text)
    assert re.search(r"samples\s+78\s+≥ 10\s+✓", text)
    # 40 s left at the hold, 10 s later: 30 s; then one step of 80 s hold + 2 s to sync
    assert "step: 30s left" in text and "run: ~1m52s left" in text
    assert max(len(line) for line in text.splitlines()) <= 80


def test_a_failing_gate_is_marked():
    events = new_form_events()
    failing = [*events[:7], (events[7][0], "hold", {**events[7][2], "sides": {
        "blue": {"samples": 40, "error_ratio": 0.0, "p95_latency_ms": 20},
        "green": {"samples": 40, "error_ratio": 0.25, "p95_latency_ms": 1200}}})]
    panel, console = _fed(failing)
    text = _text(panel, console, now=failing[-1][0])
    assert re.search(r"success ratio\s+0\.750\s+≥ 0\.95\s+✗", text)
    assert re.search(r"p95 latency\s+1200 ms\s+≤ 800 ms\s+✗", text)


@pytest.mark.parametrize("fail_from,label,colour", [(50, "ROLLED BACK", "31"), (None, "COMPLETED", "32")])
def test_the_end_is_a_coloured_outcome(fail_from, label, colour):
    events, result, _ = engine_run(fail_green_from=fail_from)
    panel, console = _fed(events)
    console.print(panel.render(now=events[-1][0] + 5))
    styled = console.export_text(styles=True)
    plain = ANSI.sub("", styled)
    assert label in plain and ("took " in plain if fail_from else True)
    assert re.search(r"\x1b\[1;" + colour + r"m" + label, styled), styled  # bold red / bold green
    if fail_from:
        assert "probe public, green:" in plain and "blue 100 / green 0" in plain
        assert "step 3/4  50% on green  finished" in plain  # where it stopped, not the rollback's change


def test_no_color_removes_colour_but_keeps_the_words(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    events, _, _ = engine_run(fail_green_from=50)
    console = Console(width=80, record=True, file=io.StringIO(), force_terminal=True, color_system="truecolor")
    panel = LivePanel(console=console, mode="off", gates=GATES)
    for event in events:
        panel.feed(*event)
    console.print(panel.render(now=events[-1][0]))
    styled = console.file.getvalue()  # what reached the terminal
    assert console.no_color and "ROLLED BACK" in styled and "\x1b[1m" in styled  # bold is not a colour
    assert not re.search(r"\x1b\[[0-9;]*3[0-7]m", styled)  # no foreground colour at all


def test_force_color_colours_a_pipe_but_never_redraws_in_it(monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.delenv("NO_COLOR", raising=False)
    stream = io.StringIO()  # not a TTY
    panel = LivePanel(stream, gates=GATES)
    assert panel.console.is_terminal and panel.console.color_system is not None  # rich honours FORCE_COLOR
    assert panel.mode == "off"
    events, _, _ = engine_run()
    for event in events:
        panel.feed(*event)
    panel.close()
    assert stream.getvalue() == ""  # off a TTY the JSON logs tell the story


def test_off_a_tty_it_draws_nothing_and_plain_mode_prints_one_line_per_step(monkeypatch):
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    events, _, _ = engine_run(fail_green_from=50)
    quiet = io.StringIO()
    with LivePanel(quiet) as panel:
        for event in events:
            panel.feed(*event)
    assert panel.mode == "off" and quiet.getvalue() == "" and panel.view.outcome == "rolled_back"
    plain = io.StringIO()
    with LivePanel(plain, mode="plain") as panel:
        for event in events:
            panel.feed(*event)
    out = plain.getvalue()
    assert "\x1b[" not in out  # a pipe: no colour, no cursor movement
    lines = out.splitlines()
    assert lines[:4] == ["step 1/4 0%: started", "step 1/4 0%: passed", "step 2/4 10%: started",
                         "step 2/4 10%: passed"]
    assert any(line.startswith("step 3/4 50%: gates failed: probe public, green:") for line in lines)
    assert any("ROLLED BACK" in line for line in lines)


def test_live_mode_redraws_in_place_within_the_width():
    console = Console(width=80, file=io.StringIO(), force_terminal=True, color_system="standard")
    clock = FakeClock(wall_start=new_form_events()[0][0])
    events = new_form_events()
    with LivePanel(console=console, mode="live", gates=GATES, clock=clock) as panel:
        for at, kind, data in events:
            clock.advance(at - clock.wall())
            panel(Event(kind, data))
    raw = console.file.getvalue()
    assert raw.count("\x1b[2K") > 10  # rich erased its previous frame's lines before each redraw
    assert re.search(r"\x1b\[\d*A", raw)  # and moved the cursor back up over them
    frames = [ANSI.sub("", chunk) for chunk in raw.split("\r")]
    assert all(len(line) <= 80 for frame in frames for line in frame.split("\n"))
    assert "COMPLETED" in frames[-1] + frames[-2]


def test_narrow_terminal_and_long_reasons_stay_inside_the_width():
    events, _, _ = engine_run(fail_green_from=50)
    long_reason = [(events[-1][0], "rolled_back", {"reason": "probe public: " + "very long reason " * 20,
                                                   "weights": {"blue": 100, "green": 0}})]
    for width in (80, 50):
        panel, console = _fed(events[:-1] + long_reason, width=width)
        text = _text(panel, console, now=events[-1][0])
        assert max(len(line) for line in text.splitlines()) <= width
        assert "ROLLED BACK" in text


def test_log_lines_go_above_the_live_panel():
    console = Console(width=80, file=io.StringIO(), force_terminal=True)
    events = new_form_events()
    with LivePanel(console=console, mode="live", gates=GATES) as panel:
        for event in events[:5]:
            panel.feed(*event)
        panel.log_stream.write('{"event": "weights_changed", "step": "50%"}\n')
        panel.feed(*events[5])
    raw = ANSI.sub("", console.file.getvalue())
    assert '{"event": "weights_changed", "step": "50%"}' in raw
    assert raw.rindex("weights_changed") < raw.rindex("step 2/3")  # the panel is drawn again below it


def test_format_seconds():
    assert [format_seconds(s) for s in (None, 0, 0.4, 59.6, 95, 3720)] == ["-", "0s", "0s", "1m00s", "1m35s",
                                                                           "1h02m"]


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="panel mode"):
        LivePanel(io.StringIO(), mode="fancy")


# -- a real terminal ---------------------------------------------------------------------------------------
def test_auto_mode_is_live_on_a_pseudo_terminal(monkeypatch):
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    master, slave = os.openpty()
    stream = os.fdopen(slave, "w", encoding="utf-8")
    try:
        panel = LivePanel(stream, gates=GATES)
        assert panel.mode == "live"
        for event in new_form_events()[:3]:
            panel.feed(*event)
        panel.close()
        stream.flush()
        out = os.read(master, 65536).decode("utf-8", "replace")
    finally:
        stream.close()
        os.close(master)
    assert "step 1/3" in ANSI.sub("", out)


DRIVER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {root!r})
    from bluegreen.output.panel import LivePanel
    from tests.support.runs import GATES, engine_run
    events, _, _ = engine_run(fail_green_from=50)
    with LivePanel(sys.stdout, gates=GATES) as panel:
        for at, kind, data in events:
            panel.feed(at, kind, data)
            time.sleep(0.01)
    print("DRIVER-DONE")
    time.sleep(30)
""")


def test_in_tmux_at_80_columns_the_screen_shows_one_clean_panel(tmp_path):
    tmux = shutil.which("tmux")
    if tmux is None:
        pytest.skip("tmux not installed: apt-get install tmux")
    root = os.getcwd()
    script = tmp_path / "driver.py"
    script.write_text(DRIVER.format(root=root))
    socket = str(tmp_path / "tmux.sock")
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TMUX")}
    env["TERM"] = "xterm-256color"
    subprocess.run([tmux, "-S", socket, "-f", "/dev/null", "new-session", "-d", "-x", "80", "-y", "24",
                    f"{sys.executable} {script}"], check=True, env=env, cwd=root)
    try:
        screen = ""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            screen = subprocess.run([tmux, "-S", socket, "capture-pane", "-p", "-t", "0"], capture_output=True,
                                    text=True, check=True).stdout
            if "DRIVER-DONE" in screen:
                break
            time.sleep(0.2)
        assert "DRIVER-DONE" in screen, screen
    finally:
        subprocess.run([tmux, "-S", socket, "kill-server"], capture_output=True)
    lines = screen.rstrip("\n").splitlines()
    print(screen)
    assert all(len(line) <= 80 for line in lines)
    assert screen.count("step 3/4") == 1 and screen.count("side ") == 1  # redrawn in place, not appended
    assert "ROLLED BACK" in screen and "blue 100 / green 0" in screen
    assert "%]%" not in screen and not re.search(r"\d%\d", screen)  # no stale characters from older frames
