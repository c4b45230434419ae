"""Masking of secrets in anything bluegreen logs, journals or sends. Pure: no I/O.

The code never logs a credential on purpose; this is the last line of defence, shared by the log
processor, the journal and the notifier so the three mask the same things.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

SECRET_KEY = re.compile(
    r"(token|secret|password|passwd|authorization|cookie|webhook|credential|api[_-]?key|access[_-]?key|"
    r"session[_-]?key|private[_-]?key|bearer|headers?$)", re.IGNORECASE)
_URL_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/\s@]+@", re.IGNORECASE)
_URL_QUERY = re.compile(r"(?P<base>[a-z][a-z0-9+.-]*://[^\s?#]+)\?[^\s#]*", re.IGNORECASE)
_SECRET_VALUE = re.compile(r"(k8s-aws-v1\.[A-Za-z0-9_\-]+|https://hooks\.slack\.com/\S+|AKIA[0-9A-Z]{16}|"
                           r"(?i:bearer)\s+[A-Za-z0-9._~+/=-]+)")
MAX_STRING = 2_000


def scrub(value: Any, *, depth: int = 0) -> Any:
    """A JSON-safe copy of ``value`` with secrets masked and long strings cut short."""
    if depth > 8:
        return "..."
    if isinstance(value, Mapping):
        return {str(k): ("***" if SECRET_KEY.search(str(k)) else scrub(v, depth=depth + 1)) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [scrub(v, depth=depth + 1) for v in value]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return scrub_text(str(value))


def scrub_text(text: str) -> str:
    text = _SECRET_VALUE.sub("***", text)
    text = _URL_USERINFO.sub(r"\g<scheme>***@", text)
    text = _URL_QUERY.sub(r"\g<base>?***", text)
    return text if len(text) <= MAX_STRING else text[: MAX_STRING - 3] + "..."
