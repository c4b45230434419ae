"""Checked reads of one config mapping: every value is typed, finite and in range, or a ConfigError that names
the key (``probes[1].interval``) and says how to fix it. Pure: no I/O."""

from __future__ import annotations

import difflib
import math
import re
from typing import Any, Iterable, Mapping

from bluegreen.core.durations import parse_duration
from bluegreen.errors import ConfigError

DURATION_HINT = "durations look like 500ms, 30s, 5m or 1h"


def check_keys(section: Mapping[str, Any], allowed: Iterable[str], where: str) -> None:
    allowed = sorted(allowed)
    for key in section:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            prefix = f"{where}." if where else ""
            hint = f"did you mean `{prefix}{close[0]}`?" if close else f"known keys: {', '.join(allowed)}"
            raise ConfigError(f"unknown key `{prefix}{key}`", hint=hint)


class Fields:
    """The keys of one mapping at ``where`` (``route``, ``probes[0]``...). Each reader checks one key."""

    def __init__(self, raw: Any, where: str, allowed: Iterable[str] | None = None, *, required: bool = False,
                 example: str | None = None) -> None:
        self.where = where
        if raw is None:
            if required:
                raise ConfigError(f"`{where}` is missing",
                                  hint=example or f"add a `{where}:` section (see config/bluegreen.example.yaml)")
            raw = {}
        if not isinstance(raw, Mapping):
            raise ConfigError(f"`{where}` must be a mapping, got {type(raw).__name__}",
                              hint=example)
        self.raw: Mapping[str, Any] = raw
        if allowed is not None:
            check_keys(raw, allowed, where)

    def key(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def has(self, key: str) -> bool:
        return self.raw.get(key) is not None

    def get(self, key: str, default: Any = None) -> Any:
        value = self.raw.get(key)
        return default if value is None else value

    def text(self, key: str, *, required: bool = False, default: str | None = None,
             hint: str | None = None) -> str | None:
        value = self.raw.get(key)
        if value is None:
            if required:
                raise ConfigError(f"`{self.key(key)}` is required", hint=hint)
            return default
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"`{self.key(key)}` must be a non-empty string, got {value!r}", hint=hint)
        return value.strip()

    def choice(self, key: str, choices: Iterable[str], default: str) -> str:
        choices = tuple(choices)
        value = self.raw.get(key, default)
        if value not in choices:
            raise ConfigError(f"`{self.key(key)}` must be one of {', '.join(choices)}, got {value!r}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.raw.get(key, default)
        if not isinstance(value, bool):
            raise ConfigError(f"`{self.key(key)}` must be true or false, got {value!r}")
        return value

    def duration(self, key: str, default: float, *, lo: float = 0.0, hi: float = 7 * 86400.0,
                 above_zero: bool = False) -> float:
        """Seconds. ``.nan`` and ``.inf`` are refused: a NaN hold never ends and a NaN threshold never fails."""
        value = self.raw.get(key)
        if value is None:
            return default
        try:
            seconds = parse_duration(value, key=f"`{self.key(key)}`")
        except ValueError as error:
            raise ConfigError(str(error), hint=DURATION_HINT) from None
        if not math.isfinite(seconds) or seconds < lo or seconds > hi or (above_zero and seconds <= 0):
            low = "more than 0" if above_zero and lo == 0 else f"at least {lo:g}s"
            raise ConfigError(f"`{self.key(key)}` must be a finite duration, {low} and at most {hi:g}s, "
                              f"got {value!r}", hint=DURATION_HINT)
        return seconds

    def integer(self, key: str, *, lo: int, hi: int, default: int | None = None) -> int | None:
        value = self.raw.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise ConfigError(f"`{self.key(key)}` must be a whole number {lo}..{hi}, got {value!r}")
        return value

    def number(self, key: str, *, lo: float, hi: float, default: float) -> float:
        value = self.raw.get(key, default)
        if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
                or not lo <= value <= hi):
            raise ConfigError(f"`{self.key(key)}` must be a finite number {lo:g}..{hi:g}, got {value!r}")
        return float(value)

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.raw.get(key)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise ConfigError(f"`{self.key(key)}` must be a list of strings, got {value!r}")
        return tuple(v.strip() for v in value)

    def section(self, key: str, allowed: Iterable[str] | None = None, **kwargs: Any) -> "Fields":
        return Fields(self.raw.get(key), self.key(key), allowed, **kwargs)


def parse_host_port(value: str, where: str, default_port: int | None = None) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = value, ""
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not port:
        if default_port is None:
            raise ConfigError(f"`{where}` must be host:port, got {value!r}")
        return host, default_port
    if not port.isdigit() or not 0 < int(port) < 65536 or not host:
        raise ConfigError(f"`{where}` must be host:port with a port 1..65535, got {value!r}")
    return host, int(port)


_OCTAL_ESCAPE = re.compile(r"\\(\d{3})")
_LABEL = re.compile(r"^(\*|[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)$")


def normalize_record_name(name: str, where: str) -> str:
    """A record name as Route 53 stores it: lower case, no trailing dot, internationalized labels in IDNA
    (punycode) — Route 53 refuses raw UTF-8 with UnsupportedCharacter — and the octal escape Route 53 lists
    (``\\052`` for ``*``) read as the character it stands for."""
    text = _OCTAL_ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), name.strip()).rstrip(".").lower()
    if not text or " " in text:
        raise ConfigError(f"`{where}` is not a valid record name: {name!r}")
    labels = []
    for label in text.split("."):
        if label and not label.isascii():
            try:
                label = label.encode("idna").decode("ascii")
            except UnicodeError:
                raise ConfigError(f"`{where}`: {name!r} cannot be written as an IDNA (punycode) name",
                                  hint="write the name in its xn-- form as Route 53 lists it") from None
        if not _LABEL.match(label):
            raise ConfigError(f"`{where}` is not a valid record name: {name!r} (label {label!r})",
                              hint="labels are letters, digits and hyphens, at most 63 characters; `*` only as "
                                   "a whole label")
        labels.append(label)
    result = ".".join(labels)
    if len(result) > 253:
        raise ConfigError(f"`{where}`: record name {name!r} is longer than 253 characters")
    return result
