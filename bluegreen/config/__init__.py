"""Configuration: the YAML file read once, every section checked and turned into frozen dataclasses at load.

Nothing is parsed later, at the moment of use: a typo anywhere is found before a command takes the lock.
Every section is parsed even when an earlier one failed, so one run reports every mistake at once (as Argo
Rollouts validates a whole spec). A command names the sections it uses (``needs``): a mistake there refuses
the command (exit 2, nothing changed); a mistake elsewhere is returned as a warning. That is how
``bluegreen rollback`` — the emergency exit — still rolls back when, say, ``notifications`` has a typo.
Nothing here talks to AWS or Kubernetes.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from bluegreen.config.clusters import ClustersConfig, VerifyConfig, ProvisionConfig, parse_clusters, \
    parse_provision, parse_verify
from bluegreen.config.fields import check_keys
from bluegreen.config.preflight import PreflightConfig, parse_preflight
from bluegreen.config.nodes import parse_nodes
from bluegreen.config.probes import ProbeConfig, parse_probes
from bluegreen.config.route import RecordRef, RouteConfig, parse_route
from bluegreen.config.sections import (AwsConfig, NotifyConfig, ShiftConfig, StateConfig, parse_aws, parse_gates,
                                       parse_notifications, parse_shift, parse_state)
from bluegreen.core.nodes import NodesSettings
from bluegreen.core.verdict import Gates
from bluegreen.errors import ConfigError

__all__ = ["AwsConfig", "ClustersConfig", "Config", "ConfigError", "NotifyConfig", "PreflightConfig", "ProbeConfig",
           "ProvisionConfig", "RecordRef", "RouteConfig", "ShiftConfig", "StateConfig", "VerifyConfig",
           "config_path", "load_config", "parse_config"]

DEFAULT_CONFIG = "bluegreen.yaml"
CONFIG_ENV = "BLUEGREEN_CONFIG"
_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")

# Section -> its parser. Order matters only for the order errors are listed in.
_PARSERS: dict[str, Callable[[Any], Any]] = {
    "aws": parse_aws,
    "route": parse_route,
    "shift": parse_shift,
    "probes": parse_probes,
    "gates": parse_gates,
    "state": parse_state,
    "notifications": parse_notifications,
    "clusters": lambda raw: None if raw is None else parse_clusters(raw),
    "verify": parse_verify,
    "provision": parse_provision,
    "preflight": parse_preflight,
    "nodes": parse_nodes,
}
SECTIONS = ("name",) + tuple(_PARSERS)
ALL = frozenset(SECTIONS)


@dataclass(frozen=True)
class Config:
    name: str
    aws: AwsConfig
    route: RouteConfig
    shift: ShiftConfig = ShiftConfig()
    probes: tuple[ProbeConfig, ...] = ()
    gates: Gates = Gates()
    state: StateConfig = StateConfig()
    notifications: NotifyConfig = NotifyConfig()
    clusters: ClustersConfig | None = None
    verify: VerifyConfig = VerifyConfig()
    provision: ProvisionConfig = ProvisionConfig()
    preflight: PreflightConfig = PreflightConfig()
    nodes: NodesSettings = NodesSettings()
    path: Path | None = None
    # Mistakes in sections the command does not use, as `key: message` lines: log them as warnings.
    warnings: tuple[str, ...] = ()
    broken: frozenset[str] = frozenset()  # those sections' names: they kept their defaults

    def require_clusters(self) -> ClustersConfig:
        if self.clusters is None:
            raise ConfigError("`clusters` is missing: this command needs to reach the blue and green clusters",
                              hint="add `clusters: {blue: {eks: NAME}, green: {eks: NAME}}` (see README, Clusters)")
        return self.clusters


def config_path(explicit: str | None, environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    return Path(explicit or environ.get(CONFIG_ENV) or DEFAULT_CONFIG)


def load_config(path: Path, *, needs: Iterable[str] = ALL) -> Config:
    import yaml

    if not path.exists():
        raise ConfigError(
            f"config file {path} does not exist",
            hint=f"pass --config FILE, set ${CONFIG_ENV}, or copy config/bluegreen.example.yaml to ./{DEFAULT_CONFIG}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {error}") from error
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror}") from error
    return replace(parse_config(raw, needs=needs), path=path)


def parse_config(raw: Any, *, needs: Iterable[str] = ALL) -> Config:
    """Parse every section. Errors in ``needs`` (and in what they depend on) raise one ConfigError listing
    them all; errors elsewhere become ``Config.warnings`` and that section keeps its defaults."""
    if raw is None:
        raise ConfigError("the config file is empty", hint="start from config/bluegreen.example.yaml")
    if not isinstance(raw, Mapping):
        raise ConfigError("the config file must hold a mapping at the top level")
    check_keys(raw, SECTIONS, "")
    needs = set(needs)
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ConfigError(f"`name` must be a lower-case DNS-style name (a-z, 0-9, -), got {name!r}",
                          hint="name the migration, e.g. `name: burnham`; it appears in logs, locks and journals")
    parsed: dict[str, Any] = {}
    errors: dict[str, ConfigError] = {}
    for section, parser in _PARSERS.items():
        try:
            parsed[section] = parser(raw.get(section))
        except ConfigError as error:
            errors[section] = error
    _check_across(parsed, errors)
    route = parsed.get("route")
    if route is not None and route.driver != "route53" and "route" in needs:
        needs.add("clusters")  # the external-dns and argocd drivers write in the clusters
    fatal = [error for section, error in errors.items() if section in needs]
    if fatal:
        if len(fatal) == 1:
            raise fatal[0]
        raise ConfigError(f"{len(fatal)} problems in the configuration:\n  - "
                          + "\n  - ".join(str(e).replace("\n", "\n    ") for e in fatal))
    warnings = tuple(f"{section}: {error.message}" for section, error in errors.items())
    values = {k: v for k, v in parsed.items() if k not in errors and v is not None}
    if "route" not in values:  # only reachable for commands that do not need `route` (none today)
        raise errors.get("route") or ConfigError("`route` is missing")
    return Config(name=name, warnings=warnings, broken=frozenset(errors), **values)


def _check_across(parsed: dict[str, Any], errors: dict[str, ConfigError]) -> None:
    """Rules that span two sections, filed under the section that must change."""
    route, clusters = parsed.get("route"), parsed.get("clusters")
    if route is None or route.driver == "route53" or "route" in errors:
        return
    if clusters is None and "clusters" not in errors:
        errors["clusters"] = ConfigError(
            f"`clusters` is required with route.driver: {route.driver} (the weights are written in the clusters)",
            hint="add `clusters: {blue: {eks: NAME}, green: {eks: NAME}}` (see README, Clusters)")
        return
    if route.argocd is not None and clusters is not None:
        for side, name in route.argocd.secrets.items():
            configured = clusters.side(side).argocd_secret
            if configured and configured != name:
                errors["route"] = ConfigError(
                    f"`route.secrets.{side}` ({name}) and `clusters.{side}.argocd_secret` ({configured}) name "
                    "different secrets", hint="keep one of them")
