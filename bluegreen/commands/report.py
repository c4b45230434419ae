"""``bluegreen report [RUN_ID] --html FILE [--png FILE]``: a picture of a run, from the journal."""

from __future__ import annotations

import argparse

from bluegreen.commands.common import cluster_sides, emit, load, pick_run, setup_logging
from bluegreen.environment import Environment

NAME = "report"
DESCRIPTION = ("Write a run's report from the journal (SQLite or DynamoDB): one self-contained HTML file (the "
               "chart inline as SVG, no network needed) with each side's weight and observed share, error ratio "
               "and p95 latency over time, the steps and verdicts and the rollback moment, and the run's facts; "
               "optionally the chart as PNG. The latest shift by default. Needs the report extra: "
               "pip install 'bluegreen[report]'.")
EPILOG = """exit codes:
  0  written
  1  unexpected error (the state store cannot be read)
  2  bad input: no such run, a file that cannot be written, or matplotlib missing (the report extra)
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_id", nargs="?", metavar="RUN_ID", help="the run (default: the latest shift)")
    parser.add_argument("--html", required=True, metavar="FILE", help="write the HTML report here")
    parser.add_argument("--png", metavar="FILE", help="also write the chart as a PNG image here")


def run(args: argparse.Namespace, env: Environment) -> int:
    from bluegreen.adapters.state.sqlite import open_state_store
    from bluegreen.core.clock import SystemClock
    from bluegreen.errors import ConfigError
    from bluegreen.output.report import _matplotlib, write_report

    setup_logging(args, env)
    _matplotlib()  # missing matplotlib: exit 2 with the install hint before anything else is read
    config = load(args, env, needs=("aws", "state"))
    clock = SystemClock()
    store = open_state_store(config, clock)
    try:
        record = pick_run(store, config, args.run_id)
    finally:
        store.close()
    try:
        files = write_report(record, args.html, args.png, cluster_sides=cluster_sides(config),
                             generated_at=clock.wall())
    except OSError as error:
        raise ConfigError(f"cannot write the report: {error.strerror}: {error.filename}",
                          hint="pass --html/--png paths in a folder you can write to") from None
    data = {"run_id": record.run_id, "html": str(files.html), "png": str(files.png) if files.png else None}
    text = f"report of run {record.run_id} written to {files.html}" + (f" and {files.png}" if files.png else "")
    emit(args, env, data, text)
    return 0
