"""The ``preflight:`` section: the checks' settings (:mod:`bluegreen.preflight.settings` parses and checks
them) plus ``gate_shift``, which makes every ``shift`` run preflight on its target before any change.

    preflight:
      gate_shift: true            # like `shift --preflight` on every shift
      ignore: [BG-K8S-004]
      min_replicas: 2

No I/O. A bad key is a :class:`ConfigError` naming it (exit 2).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from bluegreen.errors import ConfigError
from bluegreen.preflight.settings import PreflightSettings, parse_preflight_settings


@dataclass(frozen=True)
class PreflightConfig:
    settings: PreflightSettings = field(default_factory=PreflightSettings)
    gate_shift: bool = False  # run preflight on the shift's target first; error-level findings refuse it


def parse_preflight(raw: Any) -> PreflightConfig:
    if raw is None:
        return PreflightConfig()
    if not isinstance(raw, Mapping):
        raise ConfigError("`preflight` must be a mapping", hint="e.g. `preflight: {gate_shift: true}`")
    gate = raw.get("gate_shift", False)
    if not isinstance(gate, bool):
        raise ConfigError(f"`preflight.gate_shift` must be true or false, got {gate!r}",
                          hint="`preflight.gate_shift: true` runs preflight before every shift")
    settings = parse_preflight_settings({k: v for k, v in raw.items() if k != "gate_shift"})
    return PreflightConfig(settings=settings, gate_shift=gate)
