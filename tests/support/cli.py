"""Driving the real CLI from tests: a config file on disk, the CLI in-process, the environment of a child
process."""

from __future__ import annotations

import io
import os

import yaml

from bluegreen.cli import Environment, main


def write_config(tmp_path, endpoint, zone, records, **overrides):
    """A minimal route53 config for ``records`` in ``zone`` (moto at ``endpoint``); ``section__key=value``
    overrides one key, ``section=value`` a whole section."""
    config = {
        "name": "burnham",
        "aws": {"region": "us-east-1", "endpoint_url": endpoint},
        "route": {"driver": "route53", "hosted_zone": zone.name, "records": list(records),
                  "blue": "eks-blueprint-blue", "green": "eks-blueprint-green"},
        "shift": {"steps": [0, 10, 50, 100], "bake": "0s", "ttl_margin": "0s", "check_interval": "50ms"},
        "gates": {"min_samples": 5},
    }
    for key, value in overrides.items():
        section, _, sub = key.partition("__")
        if sub:
            config.setdefault(section, {})[sub] = value
        else:
            config[section] = value
    path = tmp_path / "bluegreen.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def run(*argv):
    """The CLI in-process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), Environment(stdout=out, stderr=err, environ={}, install_signal_handlers=False))
    return code, out.getvalue(), err.getvalue()


def process_env(**extra):
    """The environment for a bluegreen child process: no BLUEGREEN_* settings, credentials moto accepts."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLUEGREEN")}
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1", **extra)
    return env
