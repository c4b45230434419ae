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
