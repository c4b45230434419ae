"""The small sections: ``aws``, ``shift``, ``gates``, ``state`` and ``notifications``. Pure."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any

from bluegreen.config.fields import Fields
from bluegreen.core.events import DEFAULT_NOTIFIED, NEVER_NOTIFIED, EventKind
from bluegreen.core.plan import PlanError, parse_steps
from bluegreen.core.state import BACKENDS, DEFAULT_LEASE_SECONDS, MIN_LEASE_SECONDS
from bluegreen.core.verdict import Gates
from bluegreen.errors import ConfigError

# Route 53's documented account limit is 10 requests/s with a burst of 50 (Developer Guide, "Throttling of
# API requests", 2026; it was 5/s before). bluegreen paces below it and keeps part of each second for the
# emergency path (a rollback), so its own steps never delay undoing them.
ROUTE53_ACCOUNT_RATE = 10.0
DEFAULT_ROUTE53_RATE = 8.0
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")


@dataclass(frozen=True)
class AwsConfig:
    region: str | None = None  # None: the SDK's chain (AWS_REGION, AWS_DEFAULT_REGION, the profile)
    profile: str | None = None
    endpoint_url: str | None = None
    route53_requests_per_second: float = DEFAULT_ROUTE53_RATE


@dataclass(frozen=True)
class ShiftConfig:
    steps: tuple[int, ...] = (0, 10, 50, 100)
    bake: float = 30.0
    ttl_margin: float = 5.0
    check_interval: float = 0.25
    on_interrupt: str = "rollback"


@dataclass(frozen=True)
class StateConfig:
    backend: str = "sqlite"
    path: str | None = None  # sqlite; None: the user's state directory
    table: str | None = None  # dynamodb
    region: str | None = None  # dynamodb; None: aws.region
    lease_seconds: float = DEFAULT_LEASE_SECONDS


@dataclass(frozen=True)
class NotifyConfig:
    slack_webhook_env: str | None = None
    webhook_env: str | None = None
    events: tuple[str, ...] = tuple(e.value for e in DEFAULT_NOTIFIED)
    timeout: float = 3.0

    @property
    def enabled(self) -> bool:
        return bool(self.slack_webhook_env or self.webhook_env)


def parse_aws(raw: Any) -> AwsConfig:
    fields = Fields(raw, "aws", {"region", "profile", "endpoint_url", "route53_requests_per_second"})
    endpoint = fields.text("endpoint_url")
    if endpoint and not re.match(r"^https?://", endpoint):
        raise ConfigError(f"`aws.endpoint_url` must start with http:// or https://, got {endpoint!r}")
    region = fields.text("region")
    if region and not _REGION.match(region):
        raise ConfigError(f"`aws.region` is not an AWS region name: {region!r}", hint="e.g. region: eu-west-1")
    return AwsConfig(
        region=region, profile=fields.text("profile"), endpoint_url=endpoint,
        route53_requests_per_second=fields.number("route53_requests_per_second", lo=0.1, hi=ROUTE53_ACCOUNT_RATE,
                                                  default=DEFAULT_ROUTE53_RATE),
    )


def parse_shift(raw: Any) -> ShiftConfig:
    fields = Fields(raw, "shift", {"steps", "bake", "ttl_margin", "check_interval", "on_interrupt"})
    steps = ShiftConfig.steps
    if fields.has("steps"):
        try:
            steps = parse_steps(fields.raw["steps"])
        except PlanError as error:
            raise ConfigError(f"`shift.steps`: {error}", hint="e.g. steps: [0, 10, 50, 100]") from None
    return ShiftConfig(
        steps=steps,
        bake=fields.duration("bake", 30.0, hi=7 * 86400.0),
        ttl_margin=fields.duration("ttl_margin", 5.0, hi=3600.0),
        check_interval=fields.duration("check_interval", 0.25, lo=0.01, hi=60.0),
        on_interrupt=fields.choice("on_interrupt", ("rollback", "hold"), "rollback"),
    )


GATE_KEYS = {"min_success_ratio", "max_p95_latency", "min_samples", "max_consecutive_failures", "on_fail",
             "on_both_failing", "observe", "max_error_ratio_increase", "max_p95_increase", "min_samples_per_side",
             "traffic", "metrics", "alarms"}
OBSERVABLE_GATES = ("success_ratio", "p95_latency", "consecutive_failures", "compare_to_blue", "traffic")


def parse_gates(raw: Any) -> Gates:
    fields = Fields(raw, "gates", GATE_KEYS)
    observe = fields.strings("observe")
    for name in observe:
        if name not in OBSERVABLE_GATES:
            close = difflib.get_close_matches(name, OBSERVABLE_GATES, n=1)
            raise ConfigError(f"`gates.observe`: unknown gate {name!r}",
                              hint=f"did you mean {close[0]!r}?" if close else
                              f"gates: {', '.join(OBSERVABLE_GATES)}")
    traffic = fields.section("traffic", {"enabled", "tolerance_floor", "min_samples"})
    from bluegreen.core.metric_gates import parse_alarms, parse_metric_gates

    metrics = parse_metric_gates(fields.raw.get("metrics"), where="gates.metrics")
    alarms = parse_alarms(fields.raw.get("alarms"), where="gates.alarms")
    return Gates(
        min_success_ratio=fields.number("min_success_ratio", lo=0.0, hi=1.0, default=0.99),
        max_p95_latency=fields.duration("max_p95_latency", 2.0, above_zero=True, hi=3600.0),
        min_samples=fields.integer("min_samples", lo=1, hi=1_000_000, default=20),
        max_consecutive_failures=fields.integer("max_consecutive_failures", lo=0, hi=1_000_000, default=3),
        on_fail=fields.choice("on_fail", ("rollback", "hold"), "rollback"),
        on_both_failing=fields.choice("on_both_failing", ("hold", "rollback"), "hold"),
        observe=frozenset(observe),
        max_error_ratio_increase=fields.number("max_error_ratio_increase", lo=0.0, hi=1.0, default=0.05),
        max_p95_increase=fields.duration("max_p95_increase", 1.0, hi=3600.0),
        min_samples_per_side=fields.integer("min_samples_per_side", lo=1, hi=1_000_000, default=5),
        traffic_check=traffic.boolean("enabled", True),
        traffic_tolerance_floor=traffic.number("tolerance_floor", lo=0.0, hi=1.0, default=0.05),
        traffic_min_samples=traffic.integer("min_samples", lo=1, hi=1_000_000, default=10),
        metrics=tuple(metrics) + ((alarms,) if alarms is not None else ()),
    )


def parse_state(raw: Any) -> StateConfig:
    fields = Fields(raw, "state", {"backend", "path", "table", "region", "lease"},
                    example="e.g. state: {backend: dynamodb, table: bluegreen-state}")
    backend = fields.choice("backend", BACKENDS, "sqlite")
    path, table, region = fields.text("path"), fields.text("table"), fields.text("region")
    if backend == "dynamodb":
        if not table:
            raise ConfigError("`state.table` is required with `state.backend: dynamodb`",
                              hint="name the table, e.g. table: bluegreen-state, then run `bluegreen init-state`")
        if path:
            raise ConfigError("`state.path` is for the sqlite backend; the dynamodb backend uses `state.table`")
    elif table or region:
        raise ConfigError("`state.table` and `state.region` need `state.backend: dynamodb`",
                          hint="add `backend: dynamodb` or remove them to use the local SQLite file")
    lease = fields.duration("lease", DEFAULT_LEASE_SECONDS, lo=MIN_LEASE_SECONDS, hi=3600.0)
    return StateConfig(backend=backend, path=path, table=table, region=region, lease_seconds=lease)


def parse_notifications(raw: Any) -> NotifyConfig:
    """Never echoes a value that could be a URL: people paste the webhook URL itself here."""
    fields = Fields(raw, "notifications", {"slack_webhook_env", "webhook_env", "events", "timeout"},
                    example="e.g. notifications: {slack_webhook_env: BLUEGREEN_SLACK_WEBHOOK}")
    names: dict[str, str | None] = {}
    for key in ("slack_webhook_env", "webhook_env"):
        value = fields.raw.get(key)
        if value is not None and (not isinstance(value, str) or not _ENV_NAME.match(value)):
            raise ConfigError(
                f"`notifications.{key}` must be the NAME of an environment variable (letters, digits, _)",
                hint="put the webhook URL in that environment variable, never in the config file; "
                     "e.g. slack_webhook_env: BLUEGREEN_SLACK_WEBHOOK")
        names[key] = value
    known = [e.value for e in EventKind if e not in NEVER_NOTIFIED]
    events = NotifyConfig.events
    if fields.has("events"):
        raw_events = fields.raw["events"]
        if not isinstance(raw_events, list) or not all(isinstance(e, str) for e in raw_events):
            raise ConfigError("`notifications.events` must be a list of event names",
                              hint=f"known events: {', '.join(known)}")
        for name in raw_events:
            if name in (e.value for e in NEVER_NOTIFIED):
                raise ConfigError(f"`notifications.events`: `{name}` is a progress event and cannot be notified",
                                  hint="use step_passed for one message per step")
            if name not in known:
                close = difflib.get_close_matches(name, known, n=1)
                raise ConfigError(f"`notifications.events`: unknown event {name!r}",
                                  hint=f"did you mean {close[0]!r}?" if close else f"known events: {', '.join(known)}")
        events = tuple(dict.fromkeys(raw_events))
    timeout = fields.duration("timeout", 3.0, above_zero=True, hi=30.0)
    return NotifyConfig(slack_webhook_env=names["slack_webhook_env"], webhook_env=names["webhook_env"],
                        events=events, timeout=timeout)
