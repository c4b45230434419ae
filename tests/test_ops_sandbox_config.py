"""`python -m bluegreen.sandbox` writes a ready config and prints how to use it; the printed commands work."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import yaml


def start(*args):
    process = subprocess.Popen([sys.executable, "-m", "bluegreen.sandbox", "--record", "cli.example.com",
                                "--pending-seconds", "0", *args],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    for line in process.stdout:
        lines.append(line)
        if "Ctrl-C" in line:
            break
    return process, "".join(lines)


def stop(process):
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    return out


def test_the_sandbox_writes_a_config_that_the_printed_commands_use(tmp_path):
    config = tmp_path / "sandbox" / "bluegreen.yaml"
    process, text = start("--config", str(config))
    try:
        assert f"config:           {config}" in text
        export = re.search(r"^  export (.*)$", text, re.M).group(1)
        environ = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BLUEGREEN_"))}
        environ.update(dict(word.split("=", 1) for word in export.split()))
        environ["XDG_STATE_HOME"] = str(tmp_path / "xdg")
        assert "testing" not in text  # the sandbox's own fake credentials are never printed
        bluegreen = [sys.executable, "-m", "bluegreen"]
        status = subprocess.run([*bluegreen, "status"], env=environ, capture_output=True, text=True, timeout=60)
        assert status.returncode == 0, status.stderr
        assert "cli.example.com" in status.stdout and "100% / 0%" in status.stdout
        plan = subprocess.run([*bluegreen, "shift", "--to", "green", "--dry-run"], env=environ, capture_output=True,
                              text=True, timeout=60)
        assert plan.returncode == 0, plan.stderr
        assert "plan: move traffic to green" in plan.stdout
        raw = yaml.safe_load(config.read_text())
        assert Path(raw["state"]["path"]).parent == config.parent  # never the user's own journal
    finally:
        stop(process)
    assert config.exists()  # --config FILE is kept

    # a file the sandbox did not write is never overwritten
    mine = tmp_path / "mine.yaml"
    mine.write_text("name: mine\n")
    refused = subprocess.run([sys.executable, "-m", "bluegreen.sandbox", "--config", str(mine)],
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "was not written by the sandbox" in refused.stderr
    assert mine.read_text() == "name: mine\n"


def test_without_config_the_file_lives_in_a_temporary_folder_removed_at_exit():
    process, text = start()
    try:
        config = Path(re.search(r"^config:\s+(\S+)", text, re.M).group(1))
        assert config.exists() and config.parent.name.startswith("bluegreen-sandbox-")
    finally:
        stop(process)
    assert not config.parent.exists()
