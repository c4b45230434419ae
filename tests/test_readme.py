"""The README is the front door: its configuration reference names every key the parsers accept."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tests.support.config_keys import SECTION_PATHS, known_keys

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
EXAMPLE = yaml.safe_load((ROOT / "config" / "bluegreen.example.yaml").read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", SECTION_PATHS, ids=lambda p: ".".join(map(str, p)))
def test_the_readme_names_every_key(path):
    keys = known_keys(EXAMPLE, path)
    assert keys, f"{path} does not list its keys"
    prefix = ".".join("[]" if isinstance(p, int) else p for p in path).replace(".[]", "[]")
    missing = [key for key in keys
               if f"{prefix}.{key}" not in README and f"`{key}`" not in README
               and not re.search(rf"(^|[\s{{#]){re.escape(key)}:", README, re.M)]
    assert not missing, f"README.md does not document {prefix}.{missing}"


def test_the_readme_lists_every_command_and_its_options():
    import argparse

    from bluegreen.cli import build_parser
    from bluegreen.commands import COMMANDS

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, _, _ in COMMANDS:
        assert f"`bluegreen {name}" in README, f"README's command table lacks `bluegreen {name}`"
        for action in sub.choices[name]._actions:
            for flag in action.option_strings:
                if flag.startswith("--") and flag not in ("--help", "--config", "--output", "--log-format"):
                    assert flag in README, f"README does not mention `bluegreen {name} {flag}`"
