"""The example configs load, and the full example documents every key the parsers accept (so a key added to
a parser without a line in config/bluegreen.example.yaml fails here)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tests.support.config_keys import known_keys

from bluegreen.config import SECTIONS, load_config, parse_config

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config" / "bluegreen.example.yaml"
SCHEDULED = ROOT / "config" / "scheduled.example.yaml"


def test_the_full_example_loads_with_every_section():
    config = load_config(EXAMPLE)
    assert config.warnings == ()
    raw = yaml.safe_load(EXAMPLE.read_text())
    assert set(raw) == set(SECTIONS), f"sections missing from the example: {set(SECTIONS) - set(raw)}"
    assert config.clusters is not None and config.clusters.green.access.context == "eks-blueprint-green"
    assert config.verify.workload_namespaces == ("team-burnham",)
    assert config.notifications.slack_webhook_env == "BLUEGREEN_SLACK_WEBHOOK"
    assert [p.name for p in config.probes] == ["public", "green-direct"]


def test_the_scheduled_example_loads():
    config = load_config(SCHEDULED)
    assert config.warnings == () and config.state.backend == "dynamodb"


@pytest.mark.parametrize("path", [("aws",), ("route",), ("shift",), ("probes", 0), ("gates",), ("state",),
                                  ("notifications",), ("clusters",), ("clusters", "blue"), ("clusters", "argocd"),
                                  ("verify",), ("provision",), ("preflight",)], ids=lambda p: ".".join(map(str, p)))
def test_the_full_example_mentions_every_key_the_parser_accepts(path):
    text = EXAMPLE.read_text()
    keys = known_keys(yaml.safe_load(text), path)
    assert keys, f"{path} does not list its keys"
    missing = [key for key in keys if not re.search(rf"(^|[\s{{#]){re.escape(key)}:", text, re.M)]
    assert not missing, f"config/bluegreen.example.yaml does not show {'.'.join(map(str, path))}.{missing}"


def uncomment(text: str, first: str, last: str) -> str:
    """The commented-out block of lines from the one containing ``first`` to the one containing ``last``,
    with its ``# `` removed: the alternatives the example shows must be valid too."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if first in line)
    stop = next(i for i in range(start, len(lines)) if last in lines[i])
    return "\n".join(line.replace("# ", "", 1) for line in lines[start:stop + 1])


def test_the_commented_alternatives_are_valid():
    from bluegreen.core.metric_gates import parse_alarms, parse_metric_gates

    text = EXAMPLE.read_text()
    raw = yaml.safe_load(text)
    gates_block = yaml.safe_load("gates:\n" + uncomment(text, "# traffic:", "how often the alarms are read"))["gates"]
    assert set(gates_block) == {"traffic", "metrics", "alarms"}
    parse_config({**raw, "gates": {**raw["gates"], **gates_block}})
    assert [g.name for g in parse_metric_gates(gates_block["metrics"])] == ["green-5xx", "green-errors"]
    assert parse_alarms(gates_block["alarms"]).alarms["green"] == ("burnham-green-5xx",)

    for driver, last in (("external-dns", "external-dns may take"), ("argocd", "what the annotation says")):
        block = uncomment(text, f"# driver: {driver}", last)
        route = {k: v for k, v in raw["route"].items() if k != "ttl"}  # argocd refuses route.ttl
        route.update(yaml.safe_load(block))
        assert parse_config({**raw, "route": route}).route.driver == driver
