"""What a command may touch besides its arguments (httpie's ``Environment``): the streams, the environment
variables and the stop event, so tests run the real CLI in-process and read what it printed."""

from __future__ import annotations

import os
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
