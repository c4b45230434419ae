"""What a command may touch besides its arguments (httpie's ``Environment``): the streams, the environment
variables and the stop event, so tests run the real CLI in-process and read what it printed."""

from __future__ import annotations

import os
import signal
import sys
import threading
from dataclasses import dataclass, field
from typing import IO, Any, Callable


@dataclass
class Environment:
    stdout: IO[str] = field(default_factory=lambda: sys.stdout)
    stderr: IO[str] = field(default_factory=lambda: sys.stderr)
    environ: dict = field(default_factory=lambda: os.environ)
    stop: threading.Event = field(default_factory=threading.Event)
    # Hooks for tests and the demo: called with each engine event, after logging.
    on_event: Callable | None = None
    install_signal_handlers: bool = True
    # The clock commands wait and date by (None: the system clock); tests inject a FakeClock.
    clock: Any = None

    def print(self, text: str = "") -> None:
        self.stdout.write(text + "\n")
        self.stdout.flush()


class SignalsCaught:
    """SIGTERM and SIGINT set ``env.stop`` (no KeyboardInterrupt in the middle of a write). Installed by
    the CLI before a command does anything, restored after."""

    def __init__(self, env: Environment) -> None:
        self.env = env
        self.previous: dict = {}

    def __enter__(self) -> "SignalsCaught":
        if not self.env.install_signal_handlers or threading.current_thread() is not threading.main_thread():
            return self
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.previous[sig] = signal.signal(sig, lambda *_: self.env.stop.set())
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
