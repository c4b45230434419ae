"""Metric sources for the metric gates: Prometheus (HTTP API) and CloudWatch (GetMetricData, DescribeAlarms).

:class:`MetricSources` implements ``bluegreen.core.metric_gates.MetricSource``: ``measure(spec, side, end)``
returns a :class:`Reading` and never raises for a source that is down. Transient failures (connection
refused, timeouts, 5xx, throttling) are retried with jittered exponential backoff (tenacity) inside a
time budget measured on the injected clock; past the budget the reading is a failure with the reason.
A query the source rejects (PromQL parse error, a bad CloudWatch parameter, access denied) is not
retried.

:meth:`MetricSources.preflight_check` proves, before the first change, that a gate can be evaluated: the
PromQL parses and returns one value for blue; the CloudWatch metric exists for blue's dimensions
(ListMetrics); every named alarm exists. It raises :class:`MetricQueryError` (exit 2) naming the gate.

Request headers for Prometheus come from the environment variable named by ``headers_env``: either a
JSON object ``{"Authorization": "Bearer ..."}`` or ``Name: value`` lines. Their values never appear in a
message, a log line or an exception.
"""

from __future__ import annotations

import json
import math
import os
import random
from datetime import datetime, timezone
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

from bluegreen.core.clock import Clock, SystemClock
from bluegreen.core.durations import format_duration
from bluegreen.core.metric_gates import (
    AlarmGateSpec,
    GateSpec,
    MetricGateSpec,
    Provider,
    Reading,
)
from bluegreen.errors import PreflightError, shorten


class MetricQueryError(PreflightError):
    """A metric gate cannot be evaluated (found at preflight): the shift does not start. Exit 2."""

    def __init__(self, spec: GateSpec, problem: str, *, hint: str | None = None) -> None:
        super().__init__(f"metric gate `{spec.name}` ({spec.where}): {problem}", hint=hint)
        self.gate = spec.name
        self.problem = problem


class _Transient(Exception):
    """Worth another try: the source may answer in a moment."""


class _Rejected(Exception):
    """The source answered and refused (bad query, bad parameter, no permission): retrying will not help."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


_RETRYABLE_AWS_CODES = {"Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException",
                        "ServiceUnavailable", "InternalFailure", "InternalServiceError", "RequestTimeout"}


def _host(address: str) -> str:
    # Only scheme://host:port in messages: a URL with user:password@ must not leak its password.
    parts = urlsplit(address)
    return f"{parts.scheme}://{parts.hostname}{':' + str(parts.port) if parts.port else ''}"


def parse_headers(text: str) -> dict[str, str]:
    """Headers from an environment variable's value. Raises ValueError without quoting any value."""
    text = text.strip()
    if not text:
        return {}
    if text.startswith("{"):
        try:
            loaded = json.loads(text)
        except ValueError:
            raise ValueError("not valid JSON") from None
        if not isinstance(loaded, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in loaded.items()):
            raise ValueError("the JSON must be an object of header names to string values")
        return dict(loaded)
    headers: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip() or any(c.isspace() for c in name.strip()):
            raise ValueError(f"line {number} is not `Name: value`")
        headers[name.strip()] = value.strip()
    return headers


class MetricSources:
    """The one MetricSource the engine talks to; it dispatches on the gate's provider.

    ``clusters`` maps each side to its cluster name (for ``{{cluster}}``); ``cloudwatch`` is a boto3
    CloudWatch client or a zero-argument factory (called once, when a CloudWatch gate is first read).
    ``retry_budget`` bounds each reading's retries in seconds (default: the gate's interval, at most 20 s),
    so a dead source is a failed measurement before the next one is due.
    """

    def __init__(self, *, clusters: Mapping[str, str], cloudwatch: Any = None, environ: Mapping[str, str] | None = None,
                 clock: Clock | None = None, retry_budget: float | None = None, request_timeout: float = 10.0,
                 session: Any = None, rng: random.Random | None = None) -> None:
        self.clusters = dict(clusters)
        self._cloudwatch = cloudwatch
        self.environ = os.environ if environ is None else environ
        self.clock = clock or SystemClock()
        self.retry_budget = retry_budget
        self.request_timeout = request_timeout
        self._session = session
        self._rng = rng or random.Random()
        self.attempts = 0  # requests made, for tests and the benchmark

    # -- the MetricSource protocol ----------------------------------------------------------------------
    def measure(self, spec: GateSpec, side: str, end: float) -> Reading:
        """Read ``spec`` for ``side`` over ``[end - window, end]`` (``end``: wall-clock epoch seconds)."""
        try:
            return self._retrying(spec, lambda timeout: self._read(spec, side, end, timeout))
        except _Rejected as error:
            return Reading.failed(f"query error: {error}")
        except _Transient as error:
            return Reading.failed(str(error))

    def preflight_check(self, spec: GateSpec, *, end: float | None = None) -> None:
        """Prove the gate can be evaluated, on blue. Raises MetricQueryError naming the gate."""
        end = self.clock.wall() if end is None else end
        try:
            if isinstance(spec, AlarmGateSpec):
                names = [n for side in ("blue", "green") for n in spec.alarms.get(side, ())]
                self._retrying(spec, lambda timeout: self._alarm_states(names, timeout))
                return
            if spec.provider is Provider.PROMETHEUS:
                reading = self._retrying(spec, lambda timeout: self._read(spec, "blue", end, timeout))
                if not reading.has_value:
                    raise MetricQueryError(
                        spec, f"the query returns no data for blue ({reading.detail or 'empty result'})",
                        hint="blue serves all traffic now, so its series must exist: check the labels "
                             "({{cluster}} is " + repr(self.clusters.get("blue")) + ") and the metric names")
                return
            self._retrying(spec, lambda timeout: self._metric_exists(spec, "blue", timeout))
        except _Rejected as error:
            raise MetricQueryError(spec, str(error), hint=error.hint) from None
        except _Transient as error:
            raise MetricQueryError(spec, str(error), hint="the source must answer before the shift starts") from None

    # -- retries ----------------------------------------------------------------------------------------
    def budget_for(self, spec: GateSpec) -> float:
        return self.retry_budget if self.retry_budget is not None else min(spec.interval, 20.0)

    def _retrying(self, spec: GateSpec, call: Callable[[float], Any]) -> Any:
        import tenacity

        budget = self.budget_for(spec)
        started = self.clock.monotonic()

        def remaining() -> float:
            return budget - (self.clock.monotonic() - started)

        def wait(state: tenacity.RetryCallState) -> float:
            # Jittered exponential backoff (0.2 s, 0.4 s, ... at most 5 s), never past the budget's end.
            base = min(5.0, 0.2 * 2 ** (state.attempt_number - 1))
            return max(0.0, min(base * (0.5 + self._rng.random()), remaining()))

        attempts = 0

        def attempt() -> Any:
            nonlocal attempts
            attempts += 1
            self.attempts += 1
            return call(max(0.5, min(self.request_timeout, remaining())))

        # SystemClock(stop=event) returns from sleep at once on an interrupt: stop retrying then too, or
        # the loop would spin through the rest of the budget without pausing.
        interrupt = getattr(self.clock, "stop", None)

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_Transient),
            stop=lambda state: remaining() <= 0 or (interrupt is not None and interrupt.is_set()),
            wait=wait,
            sleep=self.clock.sleep,
            reraise=True,
        )
        try:
            return retrying(attempt)
        except _Transient as error:
            raise _Transient(f"{error} ({attempts} attempt{'s' if attempts != 1 else ''} in "
                             f"{format_duration(max(0.0, self.clock.monotonic() - started))}, "
                             f"retry budget {format_duration(budget)})") from None

    # -- dispatch ---------------------------------------------------------------------------------------
    def _read(self, spec: GateSpec, side: str, end: float, timeout: float) -> Reading:
        if isinstance(spec, AlarmGateSpec):
            return self._alarm_states(spec.alarms.get(side, ()), timeout)
        if spec.provider is Provider.PROMETHEUS:
            return self._prometheus(spec, side, end, timeout)
        return self._cloudwatch_preset(spec, side, end)

    # -- Prometheus -------------------------------------------------------------------------------------
    def _headers(self, spec: MetricGateSpec) -> dict[str, str]:
        if not spec.headers_env:
            return {}
        text = self.environ.get(spec.headers_env)
        if text is None:
            raise _Rejected(f"environment variable {spec.headers_env} (headers_env) is not set",
                            hint="export it with the headers, e.g. 'Authorization: Bearer ...'")
        try:
            return parse_headers(text)
        except ValueError as error:
            raise _Rejected(f"environment variable {spec.headers_env} (headers_env): {error}",
                            hint='use a JSON object {"Name": "value"} or one `Name: value` per line') from None

    def _http(self):
        if self._session is None:
            import requests

            self._session = requests.Session()
        return self._session

    def _prometheus(self, spec: MetricGateSpec, side: str, end: float, timeout: float) -> Reading:
        import requests

        query = spec.query_for(side, self.clusters.get(side, side))
        url = f"{spec.address}/api/v1/query"
        where = _host(spec.address)
        try:
            answer = self._http().get(url, params={"query": query, "time": f"{end:.3f}"},
                                      headers=self._headers(spec), timeout=timeout)
        except requests.RequestException as error:
            raise _Transient(f"prometheus at {where} unreachable: {type(error).__name__}") from None
        if answer.status_code in (429,) or answer.status_code >= 500:
            raise _Transient(f"prometheus at {where} answered HTTP {answer.status_code}")
        try:
            body = answer.json()
        except ValueError:
            if answer.status_code != 200:
                raise _Rejected(f"prometheus at {where} answered HTTP {answer.status_code}") from None
            raise _Transient(f"prometheus at {where} answered something that is not JSON") from None
        if answer.status_code in (401, 403):
            raise _Rejected(f"prometheus at {where} refused the request (HTTP {answer.status_code})",
                            hint=f"check the headers in {spec.headers_env}" if spec.headers_env else
                            "add `headers_env` naming an environment variable with the auth headers")
        if body.get("status") != "success":
            # HTTP API: 400 bad_data when the query cannot be parsed, 422 when it cannot be executed.
            error = shorten(body.get("error") or f"HTTP {answer.status_code}", 240)
            raise _Rejected(f"prometheus rejected the query ({body.get('errorType', 'error')}): {error}",
                            hint=f"the query for {side} was: {shorten(query, 200)}")
        return _prometheus_value(body.get("data") or {})

    # -- CloudWatch -------------------------------------------------------------------------------------
    @property
    def cloudwatch(self) -> Any:
        if self._cloudwatch is None:
            raise _Rejected("no CloudWatch client was configured")
        if callable(self._cloudwatch) and not hasattr(self._cloudwatch, "get_metric_data"):
            self._cloudwatch = self._cloudwatch()
        return self._cloudwatch

    def _aws_call(self, method: str, **kwargs) -> dict:
        from botocore.exceptions import BotoCoreError, ClientError, ConnectionError as BotoConnectionError

        try:
            return getattr(self.cloudwatch, method)(**kwargs)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
            message = shorten(error.response.get("Error", {}).get("Message", ""), 200)
            if code in _RETRYABLE_AWS_CODES or status >= 500:
                raise _Transient(f"CloudWatch {method}: {code or status}") from None
            hint = ("grant cloudwatch:GetMetricData, cloudwatch:ListMetrics and cloudwatch:DescribeAlarms"
                    if "AccessDenied" in code or "Unauthorized" in code else None)
            raise _Rejected(f"CloudWatch {method} refused: {code}: {message}", hint=hint) from None
        except (BotoConnectionError, BotoCoreError) as error:
            raise _Transient(f"CloudWatch {method} unreachable: {type(error).__name__}") from None

    def _cloudwatch_preset(self, spec: MetricGateSpec, side: str, end: float) -> Reading:
        preset = spec.preset_spec
        dims = spec.dimensions_for(side, self.clusters.get(side, side))
        dimensions = [{"Name": k, "Value": v} for k, v in dims.items()]
        parts = {"n": preset.numerator}
        if preset.denominator is not None:
            parts["d"] = preset.denominator
        queries = [{
            "Id": query_id,
            "MetricStat": {"Metric": {"Namespace": preset.namespace, "MetricName": stat.metric,
                                      "Dimensions": dimensions},
                           "Period": int(spec.window), "Stat": stat.stat},
            "ReturnData": True,
        } for query_id, stat in parts.items()]
        start = datetime.fromtimestamp(end - spec.window, tz=timezone.utc)
        stop = datetime.fromtimestamp(end, tz=timezone.utc)
        values: dict[str, list[float]] = {"n": [], "d": []}
        token = None
        while True:
            kwargs = {"MetricDataQueries": queries, "StartTime": start, "EndTime": stop}
            if token:
                kwargs["NextToken"] = token
            answer = self._aws_call("get_metric_data", **kwargs)
            for result in answer.get("MetricDataResults", []):
                values.setdefault(result["Id"], []).extend(
                    float(v) for v in result.get("Values", []) if v is not None and math.isfinite(float(v)))
            token = answer.get("NextToken")
            if not token:
                break
        return _combine(preset, values["n"], values["d"], dims)

    def _metric_exists(self, spec: MetricGateSpec, side: str, timeout: float) -> None:
        preset = spec.preset_spec
        # The 5xx counter is published only when nonzero (ELB docs), so existence is checked on the
        # always-present metric: the denominator, or the single metric of a preset without one.
        stat = preset.denominator or preset.numerator
        dims = spec.dimensions_for(side, self.clusters.get(side, side))
        answer = self._aws_call("list_metrics", Namespace=preset.namespace, MetricName=stat.metric,
                                Dimensions=[{"Name": k, "Value": v} for k, v in dims.items()])
        for metric in answer.get("Metrics", []):
            found = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
            if found == dims:
                return
        shown = ", ".join(f"{k}={v}" for k, v in dims.items())
        raise _Rejected(f"no {stat.metric} in {preset.namespace} for {side}'s {shown} (ListMetrics)",
                        hint="dimensions are the last part of the ARNs (app/NAME/ID, targetgroup/NAME/ID); "
                             "check the region, and that the load balancer has had traffic in the last two weeks")

    def _alarm_states(self, names, timeout: float) -> Reading:
        names = list(names)
        if not names:
            return Reading.of(0)
        found: dict[str, str] = {}
        for index in range(0, len(names), 100):  # DescribeAlarms takes at most 100 names
            chunk = names[index:index + 100]
            token = None
            while True:
                kwargs: dict[str, Any] = {"AlarmNames": chunk, "AlarmTypes": ["MetricAlarm", "CompositeAlarm"]}
                if token:
                    kwargs["NextToken"] = token
                answer = self._aws_call("describe_alarms", **kwargs)
                for alarm in answer.get("MetricAlarms", []) + answer.get("CompositeAlarms", []):
                    found[alarm["AlarmName"]] = alarm.get("StateValue", "")
                token = answer.get("NextToken")
                if not token:
                    break
        missing = [n for n in names if n not in found]
        if missing:
            raise _Rejected(f"alarm not found: {', '.join(missing)}",
                            hint="check the alarm names and the region (DescribeAlarms)")
        in_alarm = [n for n in names if found[n] == "ALARM"]
        return Reading.of(len(in_alarm), detail=", ".join(in_alarm) if in_alarm else None)


def _prometheus_value(data: Mapping[str, Any]) -> Reading:
    """One number from an instant query's data. Several series are refused: a gate compares one value."""
    kind = data.get("resultType")
    result = data.get("result")
    if kind == "scalar":
        sample = result
    elif kind == "vector":
        if not result:
            return Reading.no_data("empty result")
        if len(result) > 1:
            labels = shorten(json.dumps(result[0].get("metric", {}), sort_keys=True), 120)
            raise _Rejected(f"the query returns {len(result)} series (first: {labels}); a gate needs one number",
                            hint="aggregate it: sum(...), max(...) or avg(...)")
        sample = result[0].get("value")
    else:
        raise _Rejected(f"the query returns a {kind}; a gate needs an instant vector or a scalar",
                        hint="drop the range selector or wrap it in rate()/avg_over_time()")
    try:
        value = float(sample[1])
    except (TypeError, ValueError, IndexError):
        raise _Rejected(f"unreadable sample {shorten(str(sample), 80)}") from None
    if math.isnan(value):
        # 0/0 (a ratio without traffic) and histogram_quantile over empty buckets give NaN: no data.
        return Reading.no_data("NaN")
    return Reading.of(value)


def _combine(preset, numerator: list[float], denominator: list[float], dims: Mapping[str, str]) -> Reading:
    """Sums over the window (the largest data point for a percentile: never the optimistic one)."""
    def total(values: list[float], stat: str) -> float:
        return max(values) if stat.lower().startswith("p") else sum(values)

    if preset.denominator is None:
        if not numerator:
            return Reading.no_data(f"no {preset.numerator.metric} data points")
        return Reading.of(total(numerator, preset.numerator.stat))
    if not denominator or total(denominator, preset.denominator.stat) <= 0:
        return Reading.no_data(f"no {preset.denominator.metric} in the window")
    top = total(numerator, preset.numerator.stat) if numerator else (0.0 if preset.numerator_absent_means_zero else None)
    if top is None:
        return Reading.no_data(f"no {preset.numerator.metric} data points")
    bottom = total(denominator, preset.denominator.stat)
    return Reading.of(top / bottom, detail=f"{top:g}/{bottom:g}")
