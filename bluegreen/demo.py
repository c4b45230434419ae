"""``bluegreen demo``: the whole cutover against the embedded sandbox, in under a minute.

It starts the sandbox (moto, DNS, two backends on loopback), writes a config into a temporary folder, and
runs the real commands through the real CLI: status -> shift 0,10,50,100 -> status. With ``fail_green``,
green starts answering 500 as soon as it gets traffic, and the automatic rollback is shown.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import yaml

from bluegreen.errors import ExitCode

DEMO_RECORDS = ["burnham.example.com", "api.example.com"]


def run_demo(env, *, fail_green: bool = False, output: str = "text", log_format: str | None = None) -> int:
    from bluegreen.cli import main
    from bluegreen.sandbox import Sandbox

    def say(text: str) -> None:
        if output == "text":
            env.print(text)

    say("starting the sandbox: moto (Route 53), a DNS server and two clusters' backends on loopback ...")
    with Sandbox(records=DEMO_RECORDS, ttl=1) as sandbox, _environ(sandbox.aws_environ()), \
            tempfile.TemporaryDirectory(prefix="bluegreen-demo-") as tmp:
        config = sandbox.config_dict(steps=[0, 10, 50, 100], bake="3s", ttl_margin="500ms")
        config["state"] = {"path": str(Path(tmp) / "state.db")}  # the demo's journal goes away with it
        path = Path(tmp) / "bluegreen.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        say(f"sandbox: Route 53 at {sandbox.endpoint_url}, DNS at {sandbox.dns_address}, "
            f"blue at 127.0.0.2:{sandbox.http_port}, green at 127.0.0.3:{sandbox.http_port}")
        say(f"config written to {path}\n")
        common = ["--config", str(path), "--output", output] + (["--log-format", log_format] if log_format else [])

        say("$ bluegreen status")
        code = main(["status", *common], env)
        if code != ExitCode.OK:
            return code

        shift_env = env
        if fail_green:
            def break_green(event) -> None:
                if event.kind == "step_started" and event.data.get("step") == "10%":
                    sandbox.fail_green("error")
                if env.on_event is not None:
                    env.on_event(event)

            shift_env = replace(env, on_event=break_green)
            say("\n(green will answer HTTP 500 from the 10% step on)")
        say("\n$ bluegreen shift --to green --steps 0,10,50,100")
        shift_code = main(["shift", "--to", "green", *common], shift_env)

        say("\n$ bluegreen status")
        main(["status", *common], env)
    say("\nsandbox stopped; nothing is left running.")
    if fail_green:
        say("the shift failed its gates and traffic went back to blue by itself (exit 3)"
            if shift_code == ExitCode.ROLLED_BACK else f"unexpected: the shift ended with exit {shift_code}")
    return shift_code


@contextmanager
def _environ(values: dict[str, str]):
    """The sandbox's fake AWS credentials for the CLI's own boto3 clients, for the demo's duration only."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
