"""Durations as users write them (``500ms``, ``30s``, ``5m``, ``1h``, ``1m30s``). Pure."""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")


def parse_duration(value: object, *, key: str = "duration") -> float:
    """Return seconds. Accepts a number (seconds) or a string of number+unit parts. Raises ValueError."""
    if isinstance(value, bool):
        raise ValueError(f"{key}: expected a duration like 500ms, 30s, 5m or 1h, got {value!r}")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"{key}: a duration cannot be negative, got {value!r}")
        return float(value)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{key}: expected a duration like 500ms, 30s, 5m or 1h, got {value!r}")
    text = value.strip().lower()
    pos, total = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or pos == 0:
        raise ValueError(f"{key}: expected a duration like 500ms, 30s, 5m or 1h, got {value!r}")
    return total


def format_duration(seconds: float) -> str:
    """Short human form: ``450ms``, ``12s``, ``4m05s``, ``1h02m``."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.0f}s" if seconds >= 10 or float(seconds).is_integer() else f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
