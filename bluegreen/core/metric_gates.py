"""Metric gates: gates that read what each side's load balancer or metrics store saw, not only the probes.

This module holds the typed spec of a gate (:class:`MetricGateSpec`, :class:`AlarmGateSpec`), the built-in
CloudWatch presets, the ``{{side}}`` / ``{{cluster}}`` substitution, the parsers the config loader calls
(:func:`parse_metric_gates`, :func:`parse_alarms`), and :class:`MetricGateRunner`, which only DECIDES
(tenacity style): which gates are due at ``now``, what a measurement says, and the verdict per gate. The
caller carries the decisions out: it asks a :class:`MetricSource` (bluegreen.adapters.metrics) for the
readings and hands them back with :meth:`MetricGateRunner.record`.

Pure: no I/O, no SDK imports, no clock of its own (every time is an argument).
"""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol, Sequence, Union

from bluegreen.core.durations import format_duration, parse_duration
from bluegreen.errors import ConfigError

SIDES = ("blue", "green")


def _other(side: str) -> str:
    return "green" if side == "blue" else "blue"


class Provider(str, enum.Enum):
    CLOUDWATCH = "cloudwatch"
    PROMETHEUS = "prometheus"


class NoData(str, enum.Enum):
    """What a measurement without data means. Never ``pass`` by default: a gate that sees nothing says so."""

    INCONCLUSIVE = "inconclusive"
    FAIL = "fail"
    PASS = "pass"


class GateOutcome(str, enum.Enum):
    # Same values as bluegreen.core.verdict.VerdictOutcome, so the two can be shown (and later merged) side by side.
    PASSING = "passing"
    INCONCLUSIVE = "inconclusive"
    FAILED = "failed"


# -- presets ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MetricStat:
    metric: str  # CloudWatch MetricName
    stat: str  # CloudWatch statistic: Sum, Average, p95...


@dataclass(frozen=True)
class Preset:
    """A CloudWatch measurement: ``numerator`` (or ``numerator / denominator``) over the window, per side."""

    name: str
    namespace: str
    numerator: MetricStat
    denominator: MetricStat | None
    dimensions: tuple[str, ...]  # the dimension names each side must give
    # ELB publishes some counters only when they are nonzero: no data points then means 0, not "no data".
    numerator_absent_means_zero: bool
    unit: str
    doc: str

    def describe(self) -> str:
        top = f"{self.numerator.metric} ({self.numerator.stat})"
        return f"{top} / {self.denominator.metric} ({self.denominator.stat})" if self.denominator else top


_ALB_DOC = "https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-cloudwatch-metrics.html"
_NLB_DOC = "https://docs.aws.amazon.com/elasticloadbalancing/latest/network/load-balancer-cloudwatch-metrics.html"

PRESETS: dict[str, Preset] = {
    # ALB target metrics (namespace AWS/ApplicationELB). HTTPCode_Target_5XX_Count and RequestCount are
    # reported per (LoadBalancer, TargetGroup); "Reporting criteria: There is a nonzero value", so a minute
    # with requests and no 5xx has no 5xx data point at all (_ALB_DOC, "Target metrics").
    "alb_5xx_ratio": Preset(
        name="alb_5xx_ratio", namespace="AWS/ApplicationELB",
        numerator=MetricStat("HTTPCode_Target_5XX_Count", "Sum"),
        denominator=MetricStat("RequestCount", "Sum"),
        dimensions=("LoadBalancer", "TargetGroup"), numerator_absent_means_zero=True, unit="ratio", doc=_ALB_DOC),
    # TargetResponseTime: seconds from the request leaving the load balancer to the target's answer; the
    # useful statistics are Average and pNN.NN (_ALB_DOC).
    "alb_p95_target_response_time": Preset(
        name="alb_p95_target_response_time", namespace="AWS/ApplicationELB",
        numerator=MetricStat("TargetResponseTime", "p95"), denominator=None,
        dimensions=("LoadBalancer", "TargetGroup"), numerator_absent_means_zero=False, unit="seconds", doc=_ALB_DOC),
    # NLB (AWS/NetworkELB): TCP_Target_Reset_Count (RST packets sent by targets) is published with the
    # LoadBalancer dimension only, NewFlowCount with LoadBalancer (or TargetGroup); both "always reported",
    # statistic Sum (_NLB_DOC). RST packets per new flow, a rate indicator rather than a strict ratio.
    "nlb_reset_ratio": Preset(
        name="nlb_reset_ratio", namespace="AWS/NetworkELB",
        numerator=MetricStat("TCP_Target_Reset_Count", "Sum"),
        denominator=MetricStat("NewFlowCount", "Sum"),
        dimensions=("LoadBalancer",), numerator_absent_means_zero=True, unit="ratio", doc=_NLB_DOC),
}


# -- substitution ----------------------------------------------------------------------------------------
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
BUILTIN_VARIABLES = ("side", "cluster", "window")


def placeholders(template: str) -> set[str]:
    return set(_PLACEHOLDER.findall(template))


def substitute(template: str, variables: Mapping[str, str]) -> str:
    """Replace every ``{{name}}``. An unknown name is a ValueError (the parser rejects them before this)."""

    def replace(match: re.Match) -> str:
        name = match.group(1)
        if name not in variables:
            raise ValueError(f"unknown placeholder {{{{{name}}}}}")
        return variables[name]

    return _PLACEHOLDER.sub(replace, template)


def prometheus_duration(seconds: float) -> str:
    """A window as PromQL writes it (``90s``, ``1500ms``): integral seconds when possible."""
    return f"{int(seconds)}s" if float(seconds).is_integer() else f"{int(round(seconds * 1000))}ms"


# -- specs -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CompareToBlue:
    max_increase: float  # fail when target - baseline exceeds this, over the same window


@dataclass(frozen=True)
class MetricGateSpec:
    """One metric gate as configured under ``gates.metrics[i]``."""

    name: str
    provider: Provider
    where: str  # the config key it came from, e.g. "gates.metrics[1]", for messages
    preset: str | None = None  # cloudwatch
    query: str | None = None  # prometheus (PromQL with {{side}}, {{cluster}}, {{window}})
    address: str | None = None  # prometheus base URL
    headers_env: str | None = None  # name of an environment variable holding request headers
    sides: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    max: float | None = None
    compare_to_blue: CompareToBlue | None = None
    interval: float = 30.0
    window: float = 60.0
    failure_limit: int = 0
    no_data: NoData = NoData.INCONCLUSIVE
    observe_only: bool = False

    kind = "metric"

    @property
    def preset_spec(self) -> Preset | None:
        return PRESETS[self.preset] if self.preset else None

    def variables(self, side: str, cluster: str) -> dict[str, str]:
        """Template variables for ``side``: side, cluster (``sides.<side>.cluster`` wins), window, and
        every key given under ``sides.<side>``."""
        own = dict(self.sides.get(side, {}))
        values = {"side": side, "cluster": own.pop("cluster", cluster), "window": prometheus_duration(self.window)}
        values.update(own)
        return values

    def query_for(self, side: str, cluster: str) -> str:
        if self.query is None:
            raise ValueError(f"metric gate {self.name} has no query")
        return substitute(self.query, self.variables(side, cluster))

    def dimensions_for(self, side: str, cluster: str) -> dict[str, str]:
        """The CloudWatch dimensions of ``side`` (values may use {{side}} / {{cluster}})."""
        preset = self.preset_spec
        variables = self.variables(side, cluster)
        given = self.sides.get(side, {})
        names = preset.dimensions if preset else tuple(given)
        return {name: substitute(given[name], variables) for name in names}

    def sides_to_measure(self, target: str) -> tuple[str, ...]:
        return (target, _other(target)) if self.compare_to_blue is not None else (target,)

    def describe_rule(self) -> str:
        parts = []
        if self.max is not None:
            parts.append(f"max {_fmt(self.max)}")
        if self.compare_to_blue is not None:
            parts.append(f"max increase over the other side {_fmt(self.compare_to_blue.max_increase)}")
        return ", ".join(parts)


@dataclass(frozen=True)
class AlarmGateSpec:
    """``gates.alarms``: CloudWatch alarms per side. Any alarm of the side receiving traffic in ALARM fails
    a measurement; the other side's alarms are reported, never failing (rolling back onto an alarming side
    would not help)."""

    alarms: Mapping[str, tuple[str, ...]]
    interval: float = 30.0
    where: str = "gates.alarms"
    name: str = "cloudwatch-alarms"
    provider: Provider = Provider.CLOUDWATCH
    failure_limit: int = 0  # an alarm already aggregates its own evaluation periods
    observe_only: bool = False

    kind = "alarms"

    def sides_to_measure(self, target: str) -> tuple[str, ...]:
        return tuple(side for side in (target, _other(target)) if self.alarms.get(side))


GateSpec = Union[MetricGateSpec, AlarmGateSpec]


# -- parsing ---------------------------------------------------------------------------------------------
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_METRIC_KEYS = {"name", "provider", "preset", "query", "address", "headers_env", "sides", "max", "compare_to_blue",
                "interval", "window", "failure_limit", "no_data", "observe_only"}
_MIN_INTERVAL, _MAX_INTERVAL = 1.0, 3600.0
_MIN_WINDOW, _MAX_WINDOW = 1.0, 86400.0
_MAX_FAILURE_LIMIT = 1000


def _check_keys(section: Mapping[str, Any], allowed: set[str], where: str) -> None:
    import difflib

    for key in section:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), sorted(allowed), n=1)
            hint = f"did you mean `{where}.{close[0]}`?" if close else f"known keys: {', '.join(sorted(allowed))}"
            raise ConfigError(f"unknown key `{where}.{key}`", hint=hint)


def _finite(value: Any, key: str, *, lo: float | None = None, hi: float | None = None) -> float:
    """A real, finite number. YAML's .nan and .inf load as floats: they are refused by name."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"`{key}` must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ConfigError(f"`{key}` must be a finite number, got {value!r}", hint="write a plain number such as 0.01")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        bounds = f"{'' if lo is None else _fmt(lo)}..{'' if hi is None else _fmt(hi)}"
        raise ConfigError(f"`{key}` must be in {bounds}, got {value!r}")
    return float(value)


def _duration(section: Mapping[str, Any], key: str, where: str, default: float, lo: float, hi: float) -> float:
    value = section.get(key)
    if value is None:
        return default
    full = f"{where}.{key}"
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"`{full}` must be a finite duration, got {value!r}", hint="durations look like 30s or 1m")
    try:
        seconds = parse_duration(value, key=full)
    except ValueError as error:
        raise ConfigError(f"`{full}`: {str(error).split(': ', 1)[-1]}", hint="durations look like 30s, 1m or 5m") from None
    if not lo <= seconds <= hi:
        raise ConfigError(f"`{full}` must be between {format_duration(lo)} and {format_duration(hi)}, got {value!r}")
    return seconds


def _text(section: Mapping[str, Any], key: str, where: str) -> str | None:
    value = section.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"`{where}.{key}` must be a non-empty string, got {value!r}")
    return value.strip()


def _enum(section: Mapping[str, Any], key: str, where: str, kind: type[enum.Enum], default):
    value = section.get(key)
    if value is None:
        return default
    try:
        return kind(value)
    except ValueError:
        choices = " | ".join(member.value for member in kind)
        raise ConfigError(f"`{where}.{key}` must be one of {choices}, got {value!r}") from None


def _check_placeholders(text: str, key: str, allowed: set[str]) -> None:
    unknown = sorted(placeholders(text) - allowed)
    if unknown:
        raise ConfigError(f"`{key}` uses unknown placeholder {{{{{unknown[0]}}}}}",
                          hint=f"placeholders: {', '.join('{{' + name + '}}' for name in sorted(allowed))}")


def _parse_sides(raw: Any, where: str) -> dict[str, dict[str, str]]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"`{where}` must be a mapping of blue/green to their dimensions, got {type(raw).__name__}")
    sides: dict[str, dict[str, str]] = {}
    for side, values in raw.items():
        if side not in SIDES:
            raise ConfigError(f"unknown key `{where}.{side}`", hint="sides are `blue` and `green`")
        if not isinstance(values, Mapping):
            raise ConfigError(f"`{where}.{side}` must be a mapping (e.g. LoadBalancer: app/k8s-{side}/123)")
        sides[side] = {}
        for name, value in values.items():
            if not isinstance(name, str) or not _PLACEHOLDER.fullmatch("{{" + name + "}}"):
                raise ConfigError(f"`{where}.{side}` has a bad key {name!r}", hint="keys are names like LoadBalancer")
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"`{where}.{side}.{name}` must be a non-empty string, got {value!r}")
            sides[side][name] = value.strip()
    return sides


def parse_metric_gate(raw: Any, where: str) -> MetricGateSpec:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"`{where}` must be a mapping, got {type(raw).__name__}")
    _check_keys(raw, _METRIC_KEYS, where)
    name = _text(raw, "name", where)
    if name is None:
        raise ConfigError(f"`{where}.name` is required", hint="a short name such as alb-5xx")
    if not _NAME.match(name):
        raise ConfigError(f"`{where}.name` must be letters, digits, '-', '_' or '.', at most 63, got {name!r}")
    provider = _enum(raw, "provider", where, Provider, None)
    if provider is None:
        raise ConfigError(f"`{where}.provider` is required", hint="cloudwatch | prometheus")

    preset = _text(raw, "preset", where)
    query = raw.get("query")
    address = _text(raw, "address", where)
    headers_env = _text(raw, "headers_env", where)
    sides = _parse_sides(raw.get("sides"), f"{where}.sides")

    if provider is Provider.CLOUDWATCH:
        for key in ("query", "address", "headers_env"):
            if raw.get(key) is not None:
                raise ConfigError(f"`{where}.{key}` is for provider prometheus",
                                  hint="a cloudwatch gate names a `preset` and each side's dimensions")
        if preset is None:
            raise ConfigError(f"`{where}.preset` is required for provider cloudwatch",
                              hint=f"presets: {', '.join(PRESETS)}")
        if preset not in PRESETS:
            import difflib

            close = difflib.get_close_matches(preset, list(PRESETS), n=1)
            raise ConfigError(f"`{where}.preset` is not a known preset: {preset!r}",
                              hint=f"did you mean {close[0]}?" if close else f"presets: {', '.join(PRESETS)}")
        needed = PRESETS[preset].dimensions
        for side in SIDES:
            given = sides.get(side)
            if given is None:
                raise ConfigError(f"`{where}.sides.{side}` is required for preset {preset}",
                                  hint=f"give {side}'s own {', '.join(needed)}")
            for dim in needed:
                if dim not in given:
                    raise ConfigError(f"`{where}.sides.{side}.{dim}` is required for preset {preset}",
                                      hint=f"{dim} is the last part of the ARN, e.g. "
                                           f"{'app/k8s-' + side + '/50dc6c495c0c9188' if dim == 'LoadBalancer' else 'targetgroup/k8s-' + side + '/73e2d6bc24d8a067'}")
            extra = sorted(set(given) - set(needed) - {"cluster"})
            if extra:
                raise ConfigError(f"unknown key `{where}.sides.{side}.{extra[0]}`",
                                  hint=f"preset {preset} uses {', '.join(needed)}")
            for dim in needed:
                _check_placeholders(given[dim], f"{where}.sides.{side}.{dim}", {"side", "cluster"})
    else:
        if preset is not None:
            raise ConfigError(f"`{where}.preset` is for provider cloudwatch", hint="a prometheus gate has a `query`")
        if not isinstance(query, str) or not query.strip():
            raise ConfigError(f"`{where}.query` is required for provider prometheus: a PromQL expression, "
                              f"got {query!r}", hint='e.g. sum(rate(http_requests_total{cluster="{{cluster}}"}[1m]))')
        query = query.strip()
        if address is None:
            raise ConfigError(f"`{where}.address` is required for provider prometheus",
                              hint="e.g. http://prometheus.monitoring:9090")
        if not re.match(r"^https?://[^\s/]+", address):
            raise ConfigError(f"`{where}.address` must be an http:// or https:// URL, got {address!r}")
        if headers_env is not None and not _ENV_NAME.match(headers_env):
            raise ConfigError(f"`{where}.headers_env` must be an environment variable name, got {headers_env!r}",
                              hint="the variable's value holds the headers; the config only names it")
        per_side = set().union(*(set(v) for v in sides.values())) if sides else set()
        _check_placeholders(query, f"{where}.query", set(BUILTIN_VARIABLES) | per_side)
        for side in SIDES:
            missing = sorted(placeholders(query) - set(BUILTIN_VARIABLES) - set(sides.get(side, {})))
            if missing:
                raise ConfigError(f"`{where}.sides.{side}.{missing[0]}` is required: the query uses "
                                  f"{{{{{missing[0]}}}}}")
        for side, values in sides.items():
            for key, value in values.items():
                if placeholders(value):
                    raise ConfigError(f"`{where}.sides.{side}.{key}` cannot contain placeholders")

    max_value = None if raw.get("max") is None else _finite(raw["max"], f"{where}.max")
    compare = None
    if raw.get("compare_to_blue") is not None:
        section = raw["compare_to_blue"]
        key = f"{where}.compare_to_blue"
        if not isinstance(section, Mapping):
            raise ConfigError(f"`{key}` must be a mapping like {{max_increase: 0.005}}")
        _check_keys(section, {"max_increase"}, key)
        if section.get("max_increase") is None:
            raise ConfigError(f"`{key}.max_increase` is required", hint="how much worse than blue green may be")
        compare = CompareToBlue(_finite(section["max_increase"], f"{key}.max_increase", lo=0.0))
    if max_value is None and compare is None:
        raise ConfigError(f"`{where}` judges nothing: give `max` and/or `compare_to_blue.max_increase`")

    interval = _duration(raw, "interval", where, 30.0, _MIN_INTERVAL, _MAX_INTERVAL)
    window = _duration(raw, "window", where, 60.0, _MIN_WINDOW, _MAX_WINDOW)
    if provider is Provider.CLOUDWATCH and (window < 60 or not float(window / 60).is_integer()):
        # ELB metrics have 60-second resolution: a GetMetricData period must be a multiple of 60 (see docs).
        raise ConfigError(f"`{where}.window` must be a whole number of minutes for cloudwatch, got {raw.get('window')!r}",
                          hint="ELB publishes 1-minute data points; use 3m or more (the last minute is often late)")
    failure_limit = raw.get("failure_limit", 0)
    if isinstance(failure_limit, bool) or not isinstance(failure_limit, int) \
            or not 0 <= failure_limit <= _MAX_FAILURE_LIMIT:
        raise ConfigError(f"`{where}.failure_limit` must be an integer 0..{_MAX_FAILURE_LIMIT}, got {failure_limit!r}",
                          hint="failed measurements tolerated in one hold; the next one fails the gate")
    no_data = _enum(raw, "no_data", where, NoData, NoData.INCONCLUSIVE)
    observe_only = raw.get("observe_only", False)
    if not isinstance(observe_only, bool):
        raise ConfigError(f"`{where}.observe_only` must be true or false, got {observe_only!r}")

    return MetricGateSpec(
        name=name, provider=provider, where=where, preset=preset,
        query=query if provider is Provider.PROMETHEUS else None, address=address and address.rstrip("/"),
        headers_env=headers_env, sides=sides, max=max_value, compare_to_blue=compare, interval=interval,
        window=window, failure_limit=failure_limit, no_data=no_data, observe_only=observe_only)


def parse_metric_gates(raw: Any, where: str = "gates.metrics") -> tuple[MetricGateSpec, ...]:
    """Parse ``gates.metrics``. Raises ConfigError naming the exact key (``gates.metrics[1].max``)."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(f"`{where}` must be a list of metric gates, got {type(raw).__name__}")
    specs: list[MetricGateSpec] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(raw):
        spec = parse_metric_gate(item, f"{where}[{index}]")
        if spec.name in seen or spec.name == AlarmGateSpec.name:
            first = seen.get(spec.name)
            raise ConfigError(f"`{where}[{index}].name` {spec.name!r} is already used"
                              + (f" by `{where}[{first}]`" if first is not None else " (reserved for gates.alarms)"))
        seen[spec.name] = index
        specs.append(spec)
    return tuple(specs)


def parse_alarms(raw: Any, where: str = "gates.alarms") -> AlarmGateSpec | None:
    """Parse ``gates.alarms``: ``{green: [names], blue: [names], interval: 30s}``. None when absent/empty."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise ConfigError(f"`{where}` must be a mapping like {{green: [my-green-5xx-alarm]}}")
    _check_keys(raw, {"blue", "green", "interval"}, where)
    alarms: dict[str, tuple[str, ...]] = {}
    for side in SIDES:
        names = raw.get(side)
        if names is None:
            continue
        if isinstance(names, str):
            names = [names]
        if not isinstance(names, list):
            raise ConfigError(f"`{where}.{side}` must be a list of alarm names, got {type(names).__name__}")
        cleaned: list[str] = []
        for i, name in enumerate(names):
            # CloudWatch alarm names are 1..255 characters (PutMetricAlarm AlarmName constraints).
            if not isinstance(name, str) or not name.strip() or len(name.strip()) > 255:
                raise ConfigError(f"`{where}.{side}[{i}]` must be an alarm name (1..255 characters), got {name!r}")
            if name.strip() in cleaned:
                raise ConfigError(f"`{where}.{side}[{i}]` repeats alarm {name.strip()!r}")
            cleaned.append(name.strip())
        if cleaned:
            alarms[side] = tuple(cleaned)
    interval = _duration(raw, "interval", where, 30.0, _MIN_INTERVAL, _MAX_INTERVAL)
    if not alarms:
        if raw.get("interval") is not None:
            raise ConfigError(f"`{where}` names no alarm", hint="add `green: [alarm-name]`")
        return None
    return AlarmGateSpec(alarms=alarms, interval=interval, where=where)


# -- readings, measurements, verdicts -------------------------------------------------------------------
@dataclass(frozen=True)
class Reading:
    """What a source said about one side over one window: a value, no data, or an error (after retries)."""

    value: float | None = None
    error: str | None = None
    detail: str | None = None  # e.g. which alarms are in ALARM; how many series a query returned

    @classmethod
    def of(cls, value: float, detail: str | None = None) -> "Reading":
        return cls(value=float(value), detail=detail)

    @classmethod
    def no_data(cls, detail: str | None = None) -> "Reading":
        return cls(detail=detail)

    @classmethod
    def failed(cls, error: str) -> "Reading":
        return cls(error=error)

    @property
    def has_value(self) -> bool:
        return self.error is None and self.value is not None

    def as_dict(self) -> dict:
        out: dict[str, Any] = {"value": None if self.value is None else round(self.value, 6)}
        if self.error:
            out["error"] = self.error
        if self.detail:
            out["detail"] = self.detail
        return out


class MeasurementOutcome(str, enum.Enum):
    PASSED = "passed"
    FAILED = "failed"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class Measurement:
    gate: str
    at: float  # the caller's clock (monotonic) when it was recorded
    outcome: MeasurementOutcome
    reason: str
    readings: Mapping[str, Reading]  # by side

    def as_dict(self) -> dict:
        return {"outcome": self.outcome.value, "reason": self.reason,
                "readings": {side: r.as_dict() for side, r in self.readings.items()}}


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if math.isinf(value) or math.isnan(value):
        return str(value)
    return f"{value:.4g}"


def judge_metric(spec: MetricGateSpec, readings: Mapping[str, Reading], target: str) -> tuple[MeasurementOutcome, str]:
    """What one measurement of a metric gate says, judging ``target`` alone and against the other side."""
    baseline = _other(target)
    mine = readings.get(target)
    if mine is None:
        return MeasurementOutcome.INCONCLUSIVE, f"{target}: not measured"
    if mine.error:
        return MeasurementOutcome.FAILED, f"{target}: {mine.error}"
    if mine.value is None:
        if spec.no_data is NoData.FAIL:
            return MeasurementOutcome.FAILED, f"{target}: no data over {format_duration(spec.window)} (no_data: fail)"
        if spec.no_data is NoData.PASS:
            return MeasurementOutcome.PASSED, f"{target}: no data (no_data: pass)"
        return MeasurementOutcome.INCONCLUSIVE, f"{target}: no data over {format_duration(spec.window)}"
    value = mine.value
    failures: list[str] = []
    notes: list[str] = []
    if spec.max is not None and value > spec.max:
        failures.append(f"{target} {_fmt(value)} > max {_fmt(spec.max)}")
    compared = False
    if spec.compare_to_blue is not None:
        other = readings.get(baseline)
        limit = spec.compare_to_blue.max_increase
        if other is None or other.error:
            # The other side is only a reference: its source failing is reported, and judged as a failure,
            # because a gate that cannot compare must not pass silently.
            failures.append(f"{baseline} (reference): {other.error if other else 'not measured'}")
        elif other.value is None:
            notes.append(f"{baseline} has no data to compare with")
        else:
            compared = True
            if value - other.value > limit:
                failures.append(f"{target} {_fmt(value)} > {baseline} {_fmt(other.value)} + {_fmt(limit)}")
            else:
                notes.append(f"{baseline} {_fmt(other.value)}")
    if failures:
        return MeasurementOutcome.FAILED, "; ".join(failures)
    if spec.max is None and not compared:
        return MeasurementOutcome.INCONCLUSIVE, f"{target} {_fmt(value)}; " + "; ".join(notes)
    return MeasurementOutcome.PASSED, "; ".join([f"{target} {_fmt(value)} ({spec.describe_rule()})"] + notes)


def judge_alarms(spec: AlarmGateSpec, readings: Mapping[str, Reading], target: str) -> tuple[MeasurementOutcome, str]:
    """Alarms of ``target`` in ALARM fail; the other side's are reported only."""
    baseline = _other(target)
    mine = readings.get(target)
    parts: list[str] = []
    outcome = MeasurementOutcome.PASSED
    if spec.alarms.get(target):
        if mine is None:
            return MeasurementOutcome.INCONCLUSIVE, f"{target}: alarms not read"
        if mine.error:
            return MeasurementOutcome.FAILED, f"{target}: {mine.error}"
        if (mine.value or 0) > 0:
            outcome = MeasurementOutcome.FAILED
            parts.append(f"{target} alarm in ALARM: {mine.detail}")
        else:
            parts.append(f"{target}: {len(spec.alarms[target])} alarm(s) not in ALARM")
    other = readings.get(baseline)
    if other is not None and other.has_value and other.value > 0:
        parts.append(f"{baseline} (reported only) alarm in ALARM: {other.detail}")
    return outcome, "; ".join(parts) or "no alarms for the target side"


@dataclass(frozen=True)
class GateVerdict:
    name: str
    outcome: GateOutcome
    reason: str
    measurements: int
    failures: int
    failure_limit: int
    observe_only: bool
    last: Measurement | None

    @property
    def failed(self) -> bool:
        return self.outcome is GateOutcome.FAILED

    def as_dict(self) -> dict:
        return {"name": self.name, "outcome": self.outcome.value, "reason": self.reason,
                "measurements": self.measurements, "failures": self.failures,
                "failure_limit": self.failure_limit, "observe_only": self.observe_only,
                "last": self.last.as_dict() if self.last else None}


@dataclass(frozen=True)
class MetricGatesVerdict:
    outcome: GateOutcome
    gates: tuple[GateVerdict, ...]

    @property
    def failed(self) -> bool:
        return self.outcome is GateOutcome.FAILED

    @property
    def reasons(self) -> tuple[str, ...]:
        """The reasons of the enforcing gates that failed (what a rollback message should say)."""
        return tuple(g.reason for g in self.gates if g.failed and not g.observe_only)

    def as_dict(self) -> dict:
        return {"outcome": self.outcome.value, "gates": [g.as_dict() for g in self.gates]}


class MetricSource(Protocol):
    """Reads a gate's value for one side (bluegreen.adapters.metrics implements it). Never raises for a
    source that is down: past its retry budget it returns ``Reading.failed(reason)``."""

    def measure(self, spec: GateSpec, side: str, end: float) -> Reading:
        """``end`` is wall-clock seconds since the epoch; the reading covers ``[end - window, end]``."""
        ...


@dataclass
class _GateState:
    spec: GateSpec
    next_due: float
    measurements: int = 0
    failures: int = 0
    last: Measurement | None = None


class MetricGateRunner:
    """Decides when each gate is measured during one hold and what the measurements say. No I/O.

    One runner per hold: counts start at zero when the traffic split changes. Every gate is due at once
    (``started_at``), then every ``interval`` after its previous measurement was recorded. A gate fails when
    its failed measurements exceed ``failure_limit`` (as Argo Rollouts' ``failureLimit``: 0 means the first
    failed measurement fails it).
    """

    def __init__(self, specs: Sequence[GateSpec], *, started_at: float, target: str = "green") -> None:
        if target not in SIDES:
            raise ValueError(f"target must be blue or green, got {target!r}")
        self.target = target
        self._gates: dict[str, _GateState] = {}
        for spec in specs:
            if spec.name in self._gates:
                raise ValueError(f"two gates named {spec.name!r}")
            self._gates[spec.name] = _GateState(spec, next_due=started_at)

    @property
    def specs(self) -> tuple[GateSpec, ...]:
        return tuple(state.spec for state in self._gates.values())

    def due(self, now: float) -> tuple[GateSpec, ...]:
        """Gates to measure now. A gate that already failed is not measured again in this hold."""
        return tuple(s.spec for s in self._gates.values()
                     if s.next_due <= now and not self._has_failed(s))

    def next_due(self) -> float | None:
        """When the next measurement is due (the caller sleeps until then at most); None if nothing is."""
        times = [s.next_due for s in self._gates.values() if not self._has_failed(s)]
        return min(times) if times else None

    def sides_to_measure(self, spec: GateSpec) -> tuple[str, ...]:
        return spec.sides_to_measure(self.target)

    def record(self, name: str, readings: Mapping[str, Reading], *, at: float) -> Measurement:
        """Hand over one measurement (the readings of :meth:`sides_to_measure`) taken at ``at``."""
        state = self._gates[name]
        spec = state.spec
        if isinstance(spec, AlarmGateSpec):
            outcome, detail = judge_alarms(spec, readings, self.target)
        else:
            outcome, detail = judge_metric(spec, readings, self.target)
        state.measurements += 1
        if outcome is MeasurementOutcome.FAILED:
            state.failures += 1
        measurement = Measurement(name, at, outcome, detail, dict(readings))
        state.last = measurement
        state.next_due = at + spec.interval
        return measurement

    @staticmethod
    def _has_failed(state: _GateState) -> bool:
        return state.failures > state.spec.failure_limit

    def gate_verdict(self, name: str) -> GateVerdict:
        state = self._gates[name]
        spec = state.spec
        last = state.last
        if self._has_failed(state):
            outcome = GateOutcome.FAILED
            reason = (f"{name}: {last.reason} ({state.failures} failed of {state.measurements}, "
                      f"failure_limit {spec.failure_limit})")
        elif last is None:
            outcome, reason = GateOutcome.INCONCLUSIVE, f"{name}: not measured yet"
        elif last.outcome is MeasurementOutcome.INCONCLUSIVE:
            outcome, reason = GateOutcome.INCONCLUSIVE, f"{name}: {last.reason}"
        else:
            outcome = GateOutcome.PASSING
            tolerated = f" ({state.failures} failed, failure_limit {spec.failure_limit})" if state.failures else ""
            reason = f"{name}: {last.reason}{tolerated}"
        if spec.observe_only:
            reason += " [observe only]"
        return GateVerdict(name, outcome, reason, state.measurements, state.failures, spec.failure_limit,
                           spec.observe_only, last)

    def verdict(self) -> MetricGatesVerdict:
        """Failed if an enforcing gate failed; inconclusive if one has nothing conclusive yet; else passing.
        Observe-only gates are judged and reported, never counted."""
        gates = tuple(self.gate_verdict(name) for name in self._gates)
        enforcing = [g for g in gates if not g.observe_only]
        if any(g.failed for g in enforcing):
            outcome = GateOutcome.FAILED
        elif any(g.outcome is GateOutcome.INCONCLUSIVE for g in enforcing):
            outcome = GateOutcome.INCONCLUSIVE
        else:
            outcome = GateOutcome.PASSING
        return MetricGatesVerdict(outcome, gates)


def measure_due(runner: MetricGateRunner, source: MetricSource, *, now: float, wall: float) -> list[Measurement]:
    """One tick of a hold: measure every gate due at ``now`` (monotonic) on each side it needs, over the
    window ending at ``wall`` (epoch seconds), and record the readings. Returns the new measurements.

    The engine calls this on every check of a hold, next to draining the probes; the source bounds its own
    retries, so one tick lasts at most (due gates x sides) x the retry budget.
    """
    measurements = []
    for spec in runner.due(now):
        readings = {side: source.measure(spec, side, wall) for side in runner.sides_to_measure(spec)}
        measurements.append(runner.record(spec.name, readings, at=now))
    return measurements
