"""What every command does the same way: load the config for the sections it needs, set up logging, print
one result document. No command-specific logic here."""

from __future__ import annotations

import argparse
from typing import Any, Iterable

from bluegreen.environment import Environment

EXIT_CODES_HELP = """exit codes:
  0  done
  1  unexpected error, a cluster that cannot be reached, an interrupted run, or a rollback that failed (the
     message says where traffic is)
  2  bad input or configuration (nothing was changed)
  3  the gates failed (traffic rolled back, or held where gates.on_fail / on_both_failing say hold), or
     verify or preflight found the cluster not ready
  4  another run holds the lock
  5  aborted: the weights were changed by someone else during the run (or the lock was taken over)
"""


def load(args: argparse.Namespace, env: Environment, *, needs: Iterable[str] | None = None):
    """The config, with the sections this command uses checked (all of them by default); mistakes in the
    others are logged as warnings."""
    from bluegreen.config import ALL, config_path, load_config

    import structlog

    config = load_config(config_path(getattr(args, "config", None), env.environ),
                         needs=ALL if needs is None else needs)
    # Every log line from here on names the migration (a run adds its run_id: bluegreen.runs.LockedRun).
    structlog.contextvars.bind_contextvars(migration=config.name)
    if config.warnings:
        for warning in config.warnings:
            structlog.get_logger("bluegreen").warning("config_problem_ignored", problem=warning,
                                                      reason="this command does not use that section")
    return config


def output(args: argparse.Namespace) -> str:
    return getattr(args, "output", None) or "text"


def setup_logging(args: argparse.Namespace, env: Environment) -> str:
    """Configure the log lines; forget what an earlier command in this process bound (migration, run_id)."""
    import structlog

    from bluegreen import logs

    structlog.contextvars.clear_contextvars()
    return logs.configure(getattr(args, "log_format", None), env.stderr)


def emit(args: argparse.Namespace, env: Environment, data: Any, text: str) -> None:
    """Print the result: one JSON document with --output json, else the text."""
    from bluegreen import render

    env.print(render.to_json(data) if output(args) == "json" else text)


def isatty(stream: Any) -> bool:
    return bool(getattr(stream, "isatty", lambda: False)())


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return int(text)


def pick_run(store, config, run_id: str | None):
    """The journaled run ``run_id`` (with its events), or the migration's latest shift (else its latest run
    of any command) when ``run_id`` is None. ConfigError (exit 2) when there is none."""
    from bluegreen.errors import ConfigError

    if run_id:
        record = store.get_run(run_id)
        if record is None or record.name != config.name:
            raise ConfigError(f"no run {run_id!r} in the journal of {config.name!r}",
                              hint="`bluegreen history` lists the runs")
        return record
    latest = store.last_run(config.name, "shift") or store.last_run(config.name, None)
    if latest is None:
        raise ConfigError(f"the journal of {config.name!r} holds no run yet",
                          hint="run `bluegreen shift` first (state.path / state.table says where the journal is)")
    return store.get_run(latest.run_id)


def cluster_sides(config) -> dict[str, str]:
    """Names a probe may report a cluster by (Route 53 set identifiers, ArgoCD cluster names) -> side."""
    sides = {config.route.blue: "blue", config.route.green: "green"}
    if config.clusters is not None:
        for side in ("blue", "green"):
            spec = config.clusters.side(side)
            for name in (spec.name, spec.access.eks):
                if name:
                    sides[name] = side
    return sides
