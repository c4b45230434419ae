"""`bluegreen completion bash|zsh`: the scripts name every command and the options of each; bash accepts
the script and completes a command name with it."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from bluegreen.commands import COMMANDS
from tests.support.cli import run


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_script_mentions_every_command(shell):
    code, out, _ = run("completion", shell)
    assert code == 0 and out
    for name, _, _ in COMMANDS:
        assert name in out, f"{name} missing from the {shell} completion"
    for option in ("--to", "--steps", "--preflight", "--html", "--interval", "--cluster", "--version"):
        assert option in out


def test_unknown_shell_exits_2():
    code, _, _ = run("completion", "fish")
    assert code == 2


def test_bash_loads_the_script_and_completes_commands(tmp_path):
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash not installed: apt-get install bash")
    code, out, _ = run("completion", "bash")
    script = tmp_path / "bluegreen.bash"
    script.write_text(out)
    # What bash's programmable completion does on `bluegreen pre<TAB>` and `bluegreen shift --pre<TAB>`.
    probe = f"""
source {script}
complete -p bluegreen >/dev/null || exit 3
COMP_WORDS=(bluegreen pre); COMP_CWORD=1; COMP_LINE="bluegreen pre"; COMP_POINT=${{#COMP_LINE}}
fn=$(complete -p bluegreen | sed -E 's/.*-F ([^ ]+).*/\\1/')
$fn bluegreen pre bluegreen
echo "${{COMPREPLY[@]}}"
COMP_WORDS=(bluegreen shift --pre); COMP_CWORD=2; COMP_LINE="bluegreen shift --pre"; COMP_POINT=${{#COMP_LINE}}
$fn bluegreen --pre shift
echo "${{COMPREPLY[@]}}"
"""
    done = subprocess.run([bash, "--norc", "--noprofile", "-c", probe], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.splitlines()[:2]
    assert first.split() == ["preflight"]
    assert "--preflight" in second.split()
