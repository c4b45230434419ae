"""`bluegreen shift` draws the live panel on a terminal (a real pseudo-terminal here) and keeps the log
lines off a terminal exactly as before."""

from __future__ import annotations

import io
import os
import re
import threading

from bluegreen.cli import Environment, main
from tests.support.cli import run, write_config

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def test_on_a_terminal_shift_draws_the_panel_with_logs_above_it(tmp_path, moto_endpoint, zone):
    app = zone.weighted_pair("app", ttl=0)
    path = write_config(tmp_path, moto_endpoint, zone, [app], shift__bake="1s")
    master, slave = os.openpty()
    terminal = os.fdopen(slave, "w", encoding="utf-8")
    chunks: list[bytes] = []

    def drain() -> None:  # what the terminal shows; read all along so the pty never fills up
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    out = io.StringIO()
    env = Environment(stdout=out, stderr=terminal, environ={"TERM": "xterm-256color"},
                      install_signal_handlers=False)
    try:
        code = main(["shift", "--to", "green", "--config", str(path), "--log-format", "console"], env)
        terminal.flush()
    finally:
        terminal.close()
        reader.join(5)
        os.close(master)
    screen = b"".join(chunks).decode("utf-8", "replace")
    text = ANSI.sub("", screen)
    assert code == 0, text
    assert "step 4/4" in text and "COMPLETED" in text  # the panel, to its last frame
    assert "weights_changed" in text  # log lines still shown (above the panel)
    assert "\x1b[" in screen  # redrawn in place with cursor movement
    assert "left, " not in text or "samples," not in text  # no hand-drawn countdown line any more
    assert "completed" in out.getvalue()  # the result on stdout as before


def test_off_a_terminal_there_is_no_panel(tmp_path, moto_endpoint, zone):
    app = zone.weighted_pair("app", ttl=0)
    path = write_config(tmp_path, moto_endpoint, zone, [app])
    code, out, err = run("shift", "--to", "green", "--config", str(path), "--log-format", "console")
    assert code == 0, err
    assert "step 4/4" not in err and "COMPLETED" not in err and "\x1b[" not in err
    assert "weights_changed" in err
