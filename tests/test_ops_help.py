"""Every subcommand's ``--help`` shows what it does and the exit codes (issue 11, "Help and completion")."""

from __future__ import annotations

import importlib
import io
import re
import textwrap

import pytest

from bluegreen.cli import Environment, main
from bluegreen.commands import COMMANDS
from bluegreen.commands.common import EXIT_CODES_HELP


def help_of(*argv) -> str:
    out = io.StringIO()
    import contextlib

    # argparse prints --help on sys.stdout, not on the Environment's stream.
    with contextlib.redirect_stdout(out):
        code = main([*argv, "--help"], Environment(stdout=out, stderr=io.StringIO(), environ={},
                                                   install_signal_handlers=False))
    assert code == 0
    return out.getvalue()


@pytest.mark.parametrize("name,module_name", [(name, module) for name, module, _ in COMMANDS])
def test_every_subcommand_help_has_a_description_and_the_exit_codes(name, module_name):
    text = help_of(name)
    description = importlib.import_module(module_name).DESCRIPTION
    assert description, f"{module_name}.DESCRIPTION is empty"
    # argparse re-wraps the description: compare its words.
    assert " ".join(description.split()[:8]) in " ".join(text.split())
    assert "exit codes:" in text, f"`bluegreen {name} --help` does not list its exit codes"
    codes = re.findall(r"^  (\d)  \S", text.split("exit codes:", 1)[1], re.M)
    assert "2" in codes, f"`bluegreen {name} --help` lists exit codes {codes} (2, bad input, applies to all)"
    # A command without exit codes of its own shows the shared list, whole.
    if getattr(importlib.import_module(module_name), "EPILOG", None) in (None, EXIT_CODES_HELP):
        for line in textwrap.dedent(EXIT_CODES_HELP).splitlines()[1:]:
            code = line.strip().split(" ", 1)[0]
            if code.isdigit():
                assert f"\n  {code}  " in text, f"`bluegreen {name} --help` lacks exit code {code}"


def test_top_level_help_lists_every_command():
    text = help_of()
    for name, _, help_text in COMMANDS:
        assert name in text and help_text.split()[0] in text
