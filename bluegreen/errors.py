"""The error hierarchy and the exit codes it maps to. No I/O.

Every error a user can see is a :class:`BlueGreenError` carrying the exit code the CLI returns for it, so
the mapping lives in one place (``ExitCode``) and in one ``except`` (``bluegreen.cli``).
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0
    ERROR = 1  # unexpected error: a bug, or a failure we could not classify
    BAD_INPUT = 2  # bad input or configuration; nothing was changed
    # The gates failed (the shift rolled back, or held where policy says hold), or verify / preflight found
    # the cluster not ready. One code for "the checks said no": the output says which.
    GATES_FAILED = 3
    NOT_READY = 3
    LOCKED = 4  # another run holds the migration's lock
    CONFLICT = 5  # the weights were changed by someone else during the run; we stopped without touching them


class BlueGreenError(Exception):
    """Base of every error bluegreen reports to its user."""

    exit_code: ExitCode = ExitCode.ERROR

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


class ConfigError(BlueGreenError):
    """The configuration or the command line is wrong. Raised before anything is changed."""

    exit_code = ExitCode.BAD_INPUT


class PreflightError(BlueGreenError):
    """The live state (zone, records) does not allow the requested change. Nothing was changed."""

    exit_code = ExitCode.BAD_INPUT


class ShiftFailed(BlueGreenError):
    """The target is not ready (verify, preflight): the shift refused before any change."""

    exit_code = ExitCode.NOT_READY


class LockHeld(BlueGreenError):
    exit_code = ExitCode.LOCKED


class WeightsChangedExternally(BlueGreenError):
    """Someone else (a ``rollback``, a person, another tool) changed the weights while we ran."""

    exit_code = ExitCode.CONFLICT


class RouterError(BlueGreenError):
    """A traffic router (Route 53, external-dns, ArgoCD) failed in a way retries could not fix."""

    exit_code = ExitCode.ERROR


# How a shift's outcome (``bluegreen.core.engine.Outcome`` values) maps to the exit code.
OUTCOME_EXIT_CODES = {
    "completed": ExitCode.OK,
    "nothing_to_do": ExitCode.OK,
    "outside_window": ExitCode.OK,
    "rolled_back": ExitCode.GATES_FAILED,
    "held": ExitCode.GATES_FAILED,
    "rollback_failed": ExitCode.ERROR,
    "conflict": ExitCode.CONFLICT,
    "interrupted": ExitCode.ERROR,
}


def exit_code_for(outcome) -> ExitCode:
    """``outcome``: an Outcome (a str enum) or its value."""
    return OUTCOME_EXIT_CODES.get(getattr(outcome, "value", outcome), ExitCode.ERROR)


def shorten(text: str, limit: int = 300) -> str:
    """Cut an upstream payload short before it goes into a message or a log line."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
