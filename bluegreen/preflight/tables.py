"""Version numbers and the tables shipped in ``bluegreen/preflight/data``. Pure: the only thing read is
this package's own data (through ``importlib.resources``, so it works from a wheel as well)."""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass
from importlib import resources
from typing import Mapping

import yaml

from bluegreen.errors import ConfigError

_MINOR = re.compile(r"^v?(\d+)\.(\d+)(?:\.\d+)?(?:[-+].*)?$")
_SEMVER = re.compile(r"v?(\d+)\.(\d+)(?:\.(\d+))?")


def minor_of(version: str) -> tuple[int, int]:
    """``1.31``, ``v1.31.2-eks-1234``, ``1.31+`` -> (1, 31). ValueError when it is none of those."""
    match = _MINOR.match(str(version).strip().rstrip("+"))
    if not match:
        raise ValueError(f"not a Kubernetes version: {version!r}")
    return int(match[1]), int(match[2])


def minor_str(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


def parse_target(version: str, *, key: str = "--version") -> tuple[int, int]:
    """A target version given by the user: ``1.31`` (a patch is tolerated and ignored)."""
    try:
        return minor_of(version)
    except ValueError:
        raise ConfigError(f"{key} must be a Kubernetes minor version like 1.31, got {version!r}",
                          hint=f"pass e.g. {key} 1.31") from None


def semver_of(text: str) -> tuple[int, int, int] | None:
    """The first ``x.y[.z]`` in an image tag: ``v1.11.1-eksbuild.9`` -> (1, 11, 1); None if there is none."""
    match = _SEMVER.search(text or "")
    if not match:
        return None
    return int(match[1]), int(match[2]), int(match[3] or 0)


def semver_str(version: tuple[int, int, int]) -> str:
    return ".".join(str(part) for part in version)


def _load(name: str) -> dict:
    text = resources.files("bluegreen.preflight").joinpath("data", name).read_text(encoding="utf-8")
    return yaml.safe_load(text)


# -- removed / deprecated APIs -------------------------------------------------------------------------
@dataclass(frozen=True)
class ApiRemoval:
    api_version: str  # group/version, e.g. "policy/v1beta1"
    kind: str
    deprecated: tuple[int, int]
    removed: tuple[int, int]
    replacement: str  # "" when nothing replaces it (PodSecurityPolicy)


@dataclass(frozen=True)
class RemovalTable:
    covers: tuple[int, int]
    source: str
    rows: tuple[ApiRemoval, ...]

    def lookup(self, api_version: str, kind: str) -> ApiRemoval | None:
        return self._index.get((api_version, kind))

    @functools.cached_property
    def _index(self) -> Mapping[tuple[str, str], ApiRemoval]:
        return {(row.api_version, row.kind): row for row in self.rows}


@functools.lru_cache(maxsize=1)
def removal_table() -> RemovalTable:
    raw = _load("removed_apis.yaml")
    rows = tuple(ApiRemoval(r["apiVersion"], r["kind"], minor_of(r["deprecated"]), minor_of(r["removed"]),
                            r.get("replacement") or "") for r in raw["removed"])
    return RemovalTable(minor_of(raw["covers"]), raw["source"], rows)


# -- EKS version calendar ------------------------------------------------------------------------------
@dataclass(frozen=True)
class EksVersion:
    version: tuple[int, int]
    eks_release: dt.date
    end_of_standard: dt.date
    end_of_extended: dt.date


@dataclass(frozen=True)
class EksCalendar:
    source: str
    pricing_source: str
    standard_usd_per_hour: float
    extended_usd_per_hour: float
    al2_last_version: tuple[int, int]
    versions: tuple[EksVersion, ...]

    def get(self, version: tuple[int, int]) -> EksVersion | None:
        return next((v for v in self.versions if v.version == version), None)

    @property
    def newest(self) -> tuple[int, int]:
        return max(v.version for v in self.versions)


@functools.lru_cache(maxsize=1)
def eks_calendar() -> EksCalendar:
    raw = _load("eks_versions.yaml")
    versions = tuple(EksVersion(minor_of(r["version"]), r["eks_release"], r["end_of_standard"], r["end_of_extended"])
                     for r in raw["versions"])
    return EksCalendar(raw["source"], raw["pricing_source"], float(raw["standard_usd_per_cluster_hour"]),
                       float(raw["extended_usd_per_cluster_hour"]), minor_of(raw["al2_last_version"]), versions)


# -- self-managed add-ons ------------------------------------------------------------------------------
@dataclass(frozen=True)
class AddonRule:
    name: str
    images: tuple[str, ...]  # image repository names (the last path segments) that identify the add-on
    rule: str  # match_minor | minimum | skew
    severity: str
    source: str
    minimum: tuple[tuple[tuple[int, int], tuple[int, int, int]], ...] = ()
    eks_addon: str = ""
    max_older: int = 0

    def minimum_for(self, target: tuple[int, int]) -> tuple[int, int, int] | None:
        """The row for ``target``, or the newest row below it; None when the table starts after it."""
        best = None
        for version, minimum in self.minimum:
            if version <= target:
                best = minimum
        return best

    def matches_image(self, repository: str) -> bool:
        """``602401143452.dkr.ecr.../eks/coredns`` matches ``eks/coredns`` and ``coredns``: a whole trailing
        path, never a substring (``my-coredns-exporter`` is not CoreDNS)."""
        repo = repository.lower()
        return any(repo == image or repo.endswith("/" + image) for image in self.images)


@functools.lru_cache(maxsize=1)
def addon_rules() -> tuple[AddonRule, ...]:
    raw = _load("addons.yaml")["addons"]
    rules = []
    for name, spec in raw.items():
        minimum = tuple(sorted((minor_of(k), semver_of(v)) for k, v in (spec.get("minimum") or {}).items()))
        rules.append(AddonRule(name, tuple(spec["images"]), spec["rule"], spec["severity"], spec["source"],
                               minimum, spec.get("eks_addon", ""), int(spec.get("max_older", 0))))
    return tuple(rules)


def split_image(image: str) -> tuple[str, str]:
    """``repo/path:tag@sha256:...`` -> (``repo/path``, ``tag``). A registry port is not a tag."""
    image = image.split("@", 1)[0]
    slash = image.rfind("/")
    colon = image.rfind(":")
    if colon > slash:
        return image[:colon], image[colon + 1:]
    return image, ""
