"""The keys a config parser accepts at a place, read from its refusal of an unknown key: what the example
config and the README must show."""

from __future__ import annotations

import copy
import re

from bluegreen.config import parse_config
from bluegreen.errors import ConfigError

SECTION_PATHS = [("aws",), ("route",), ("shift",), ("probes", 0), ("gates",), ("state",), ("notifications",),
                 ("clusters",), ("clusters", "blue"), ("clusters", "argocd"), ("verify",), ("provision",),
                 ("preflight",), ("nodes",)]


def known_keys(raw: dict, path: tuple) -> list[str] | None:
    """The keys the parser accepts at ``path``, read from its refusal of an unknown key (its hint lists
    them), or None when that place does not check its keys."""
    probe = copy.deepcopy(raw)
    where = probe
    for part in path:
        where = where[part]
    where["zz_not_a_key_zz"] = 1
    try:
        parse_config(probe)
    except ConfigError as error:
        assert "zz_not_a_key_zz" in error.message, error
        # "known keys: a, b" in the hint (config/fields.py), or "known: a, b" in the message (preflight)
        match = re.search(r"known(?: keys)?: ([A-Za-z0-9_, ]+)", str(error))
        assert match, error
        return [key.strip() for key in match.group(1).split(",") if key.strip()]
    return None
