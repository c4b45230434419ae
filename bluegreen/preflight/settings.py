"""The ``preflight:`` config section, parsed once and checked whole. Pure: no I/O.

Every bad key is reported at once in one :class:`ConfigError` that names each key and the fix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from bluegreen.errors import ConfigError
from bluegreen.preflight.findings import CODES, Severity

_CODE_PATTERN = re.compile(r"^BG-[A-Z0-9*?\[\]]+-[0-9*?\[\]]+$", re.IGNORECASE)
DEFAULT_SKIP_NAMESPACES = ("kube-public", "kube-node-lease")


@dataclass(frozen=True)
class PreflightSettings:
    ignore: tuple[str, ...] = ()  # codes or CODE/Kind/namespace/name globs
    min_replicas: int = 2  # BG-K8S-003 below this
    min_free_ips_control_plane: int = 5  # BG-EKS-010 error below this (EKS needs up to 5 to upgrade)
    min_free_ips_nodes: int = 16  # BG-EKS-010 warning below this (new nodes need addresses)
    skip_namespaces: tuple[str, ...] = DEFAULT_SKIP_NAMESPACES  # workload checks do not look here
    severity: Mapping[str, Severity] = field(default_factory=dict)  # per-code severity overrides


_KEYS = {"ignore", "min_replicas", "min_free_ips_control_plane", "min_free_ips_nodes", "skip_namespaces",
         "severity"}


def parse_preflight_settings(raw: Mapping[str, Any] | None) -> PreflightSettings:
    """``preflight:`` from the config file (None or {} gives the defaults)."""
    raw = raw or {}
    if not isinstance(raw, Mapping):
        raise ConfigError("`preflight` must be a mapping", hint="see the README section Preflight")
    problems: list[str] = []
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        problems.append(f"unknown key(s) {', '.join('preflight.' + k for k in unknown)}; "
                        f"known: {', '.join(sorted(_KEYS))}")

    ignore = _string_list(raw.get("ignore", []), "preflight.ignore", problems)
    for pattern in ignore:
        code = pattern.partition("/")[0]
        if not _CODE_PATTERN.match(code):
            problems.append(f"preflight.ignore: {pattern!r} does not start with a code like BG-K8S-003")
        elif not any(ch in code for ch in "*?[") and code.upper() not in CODES:
            problems.append(f"preflight.ignore: {code!r} is not a known code (see the README code table)")

    def integer(key: str, default: int, low: int, high: int) -> int:
        value = raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            problems.append(f"preflight.{key} must be an integer from {low} to {high}, got {value!r}")
            return default
        return value

    min_replicas = integer("min_replicas", 2, 1, 100)
    cp_ips = integer("min_free_ips_control_plane", 5, 0, 1000)
    node_ips = integer("min_free_ips_nodes", 16, 0, 100000)
    skip = tuple(_string_list(raw.get("skip_namespaces", list(DEFAULT_SKIP_NAMESPACES)),
                              "preflight.skip_namespaces", problems))

    overrides: dict[str, Severity] = {}
    severity_raw = raw.get("severity", {}) or {}
    if not isinstance(severity_raw, Mapping):
        problems.append("preflight.severity must map codes to error, warning or info")
    else:
        for code, level in severity_raw.items():
            if str(code).upper() not in CODES:
                problems.append(f"preflight.severity: {code!r} is not a known code")
                continue
            try:
                overrides[str(code).upper()] = Severity(str(level).lower())
            except ValueError:
                problems.append(f"preflight.severity.{code} must be error, warning or info, got {level!r}")

    if problems:
        raise ConfigError("invalid preflight settings:\n  - " + "\n  - ".join(problems),
                          hint="fix the keys above in the `preflight:` section of your config")
    return PreflightSettings(tuple(ignore), min_replicas, cp_ips, node_ips, skip, overrides)


def _string_list(value: Any, key: str, problems: list[str]) -> list[str]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        problems.append(f"{key} must be a list of strings, got {value!r}")
        return []
    return [v.strip() for v in value if v.strip()]
