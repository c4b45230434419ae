"""The shared state backend: locks and the run journal in one DynamoDB table, so a scheduled job in a pod
and an engineer on a laptop see the same lock and the same history.

The table has a string partition key ``pk`` and a string sort key ``sk`` (``bluegreen init-state`` creates
it, pay-per-request). Items:

==========================  ====================  =====================================================
pk                          sk                    attributes
==========================  ====================  =====================================================
``LOCK#<migration>``        ``LOCK``              token, holder (JSON), acquired_at, expires_at
``RUN#<run_id>``            ``META``              name, command, plan (JSON), holder (JSON), started_at,
                                                  finished_at, outcome, exit_code, reason, next_seq
``RUN#<run_id>``            ``EVENT#<seq:08d>``   at, kind, data (JSON)
``MIGRATION#<migration>``   ``RUN#<run_id>``      the run's summary (same fields as META, no events)
==========================  ====================  =====================================================

Run ids start with their UTC start time, so ``Query pk=MIGRATION#<name>`` newest-first lists the runs of
a migration in order and ``Query pk=RUN#<id>`` returns one run's events in order followed by its META item.
A run's start and finish write META and the summary in one transaction. Event sequence numbers come from
an atomic counter on META (``ADD next_seq 1``), so two writers never reuse one.

Lock writes are conditional, evaluated by DynamoDB against the stored item, so there is no read-then-write
race between machines:

* acquire: ``attribute_not_exists(pk) OR expires_at < :now OR token = :mine``; on failure, a consistent
  read of the item names the holder in the LockHeld error (exit 4).
* renew: ``token = :mine``; on failure, LockLost (exit 5) naming the new holder.
* release: delete with ``token = :mine`` (a lost lock is left alone).
* take over: an unconditional put returning the old item (whom we displaced).

Times are the injected clock's wall time; the holders' clocks must agree to well under a lease.
JSON values are stored as strings, which keeps floats exact and avoids DynamoDB's Decimal type.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, Callable, Mapping

from bluegreen.core.clock import Clock
from bluegreen.core.state import (
    DEFAULT_LEASE_SECONDS, Holder, JournalEvent, Lease, RunRecord, StateError, StateStore,
    check_lease_seconds, lock_held_error, lock_lost_error, new_run_id,
)
from bluegreen.errors import ConfigError, shorten

_MAX_DATA_CHARS = 300_000  # an item may hold 400 KB


def _s(value: str) -> dict:
    return {"S": value}


def _n(value: float | int) -> dict:
    return {"N": repr(float(value)) if isinstance(value, float) else str(int(value))}


def _json(value: Any) -> dict:
    return {"S": json.dumps(value, sort_keys=True, default=str)}


def _get_s(item: Mapping[str, Any], key: str) -> str | None:
    value = item.get(key)
    return None if value is None or "NULL" in value else value.get("S")


def _get_n(item: Mapping[str, Any], key: str) -> float | None:
    value = item.get(key)
    return None if value is None or "N" not in value else float(value["N"])


class DynamoStateStore(StateStore):
    def __init__(self, client: Any, table: str, clock: Clock, *, region: str | None = None) -> None:
        self.client = client
        self.table = table
        self.clock = clock
        self.region = region

    @classmethod
    def from_config(cls, config: Any, clock: Clock, state: Any = None) -> "DynamoStateStore":
        from bluegreen.adapters.aws import client, resolve_region

        state = state or config.state
        aws = replace(config.aws, region=state.region) if state.region else config.aws
        return cls(client(aws, "dynamodb", total_attempts=4), str(state.table), clock,
                   region=resolve_region(aws, service="dynamodb"))

    def __repr__(self) -> str:
        return f"DynamoStateStore(table={self.table!r}, region={self.region!r})"

    # -- plumbing ------------------------------------------------------------------------------------
    def _call(self, method: str, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.client, method)(TableName=self.table, **kwargs)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code == "ResourceNotFoundException":
                raise ConfigError(
                    f"the DynamoDB state table {self.table!r} does not exist (region {self.region})",
                    hint="run `bluegreen init-state` once to create it, or fix `state.table` / `state.region`",
                ) from error
            if code in ("AccessDeniedException", "UnrecognizedClientException"):
                raise StateError(f"not allowed to use the DynamoDB state table {self.table!r}: "
                                 f"{shorten(error.response.get('Error', {}).get('Message', code))}",
                                 hint="the IAM policy needs dynamodb:GetItem, PutItem, UpdateItem, DeleteItem, "
                                      "Query on the table (transactions use the same permissions)") from error
            raise
        except BotoCoreError as error:
            raise StateError(f"DynamoDB state table {self.table!r}: {shorten(str(error))}") from error

    @staticmethod
    def _failed_condition(error: Exception) -> bool:
        response = getattr(error, "response", None) or {}
        code = response.get("Error", {}).get("Code", "")
        if code == "ConditionalCheckFailedException":
            return True
        if code == "TransactionCanceledException":
            reasons = response.get("CancellationReasons") or []
            return any(r.get("Code") == "ConditionalCheckFailed" for r in reasons)
        return False

    def _conditional(self, method: str, **kwargs: Any) -> Any | None:
        """Run a conditional write; None when the condition failed."""
        from botocore.exceptions import ClientError

        try:
            return self._call(method, **kwargs)
        except ClientError as error:
            if self._failed_condition(error):
                return None
            raise StateError(f"DynamoDB state table {self.table!r}: {shorten(str(error))}") from error

    def _plain(self, method: str, **kwargs: Any) -> Any:
        from botocore.exceptions import ClientError

        try:
            return self._call(method, **kwargs)
        except ClientError as error:
            raise StateError(f"DynamoDB state table {self.table!r}: {shorten(str(error))}") from error

    @staticmethod
    def _lock_key(name: str) -> dict:
        return {"pk": _s(f"LOCK#{name}"), "sk": _s("LOCK")}

    def _lock_item(self, name: str) -> tuple[Holder, float] | None:
        item = self._plain("get_item", Key=self._lock_key(name), ConsistentRead=True).get("Item")
        return None if not item else self._parse_lock(item)

    @staticmethod
    def _parse_lock(item: Mapping[str, Any]) -> tuple[Holder, float]:
        return Holder.from_dict(json.loads(_get_s(item, "holder") or "{}")), float(_get_n(item, "expires_at") or 0)

    def _lock_put_item(self, name: str, holder: Holder, now: float, lease_seconds: float) -> dict:
        return {
            **self._lock_key(name),
            "token": _s(holder.token),
            "holder": _json(holder.as_dict()),
            "acquired_at": _n(float(now)),
            "expires_at": _n(float(now + lease_seconds)),
        }

    # -- lock ----------------------------------------------------------------------------------------
    def acquire(self, name: str, holder: Holder, lease_seconds: float = DEFAULT_LEASE_SECONDS) -> Lease:
        lease_seconds = check_lease_seconds(lease_seconds)
        for _attempt in range(3):
            now = self.clock.wall()
            done = self._conditional(
                "put_item",
                Item=self._lock_put_item(name, holder, now, lease_seconds),
                ConditionExpression="attribute_not_exists(pk) OR expires_at < :now OR #token = :mine",
                ExpressionAttributeNames={"#token": "token"},
                ExpressionAttributeValues={":now": _n(float(now)), ":mine": _s(holder.token)},
            )
            if done is not None:
                return Lease(name=name, holder=holder, lease_seconds=lease_seconds, expires_at=now + lease_seconds)
            current = self._lock_item(name)
            if current is not None:
                raise lock_held_error(name, current[0], current[1], now)
            # released between our write and our read: try again
        raise StateError(f"could not acquire the lock on {name!r}: it keeps changing hands")

    def renew(self, lease: Lease) -> Lease:
        now = self.clock.wall()
        done = self._conditional(
            "update_item",
            Key=self._lock_key(lease.name),
            UpdateExpression="SET expires_at = :exp",
            ConditionExpression="#token = :mine",
            ExpressionAttributeNames={"#token": "token"},
            ExpressionAttributeValues={":exp": _n(float(now + lease.lease_seconds)), ":mine": _s(lease.holder.token)},
        )
        if done is None:
            current = self._lock_item(lease.name)
            raise lock_lost_error(lease.name, current[0] if current else None)
        return lease.renewed(now)

    def release(self, lease: Lease) -> bool:
        done = self._conditional(
            "delete_item",
            Key=self._lock_key(lease.name),
            ConditionExpression="#token = :mine",
            ExpressionAttributeNames={"#token": "token"},
            ExpressionAttributeValues={":mine": _s(lease.holder.token)},
        )
        return done is not None

    def take_over(self, name: str, holder: Holder, lease_seconds: float = DEFAULT_LEASE_SECONDS) -> Lease:
        lease_seconds = check_lease_seconds(lease_seconds)
        now = self.clock.wall()
        old = self._plain("put_item", Item=self._lock_put_item(name, holder, now, lease_seconds),
                          ReturnValues="ALL_OLD").get("Attributes")
        previous = None
        if old:
            other, expires_at = self._parse_lock(old)
            if expires_at > now and other.token != holder.token:
                previous = other
        return Lease(name=name, holder=holder, lease_seconds=lease_seconds, expires_at=now + lease_seconds,
                     previous=previous)

    def current_holder(self, name: str) -> tuple[Holder, float] | None:
        current = self._lock_item(name)
        if current is None or current[1] <= self.clock.wall():
            return None
        return current

    # -- journal -------------------------------------------------------------------------------------
    def _transact(self, items: list[dict]) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        for item in items:
            next(iter(item.values()))["TableName"] = self.table
        try:
            self.client.transact_write_items(TransactItems=items)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code == "ResourceNotFoundException":
                raise ConfigError(f"the DynamoDB state table {self.table!r} does not exist (region {self.region})",
                                  hint="run `bluegreen init-state` once to create it") from error
            raise StateError(f"DynamoDB state table {self.table!r}: {shorten(str(error))}") from error
        except BotoCoreError as error:
            raise StateError(f"DynamoDB state table {self.table!r}: {shorten(str(error))}") from error

    def start_run(self, name: str, command: str, plan: Mapping[str, Any], *, run_id: str | None = None,
                  holder: Holder | None = None) -> str:
        run_id = run_id or new_run_id(self.clock)
        holder_dict = {k: v for k, v in (holder.as_dict() if holder else {}).items() if k != "token"}
        summary = {
            "name": _s(name), "command": _s(command), "plan": _json(dict(plan)), "holder": _json(holder_dict),
            "started_at": _n(float(self.clock.wall())), "run_id": _s(run_id),
        }
        self._transact([
            {"Put": {"Item": {"pk": _s(f"RUN#{run_id}"), "sk": _s("META"), **summary, "next_seq": _n(0)},
                     "ConditionExpression": "attribute_not_exists(pk)"}},
            {"Put": {"Item": {"pk": _s(f"MIGRATION#{name}"), "sk": _s(f"RUN#{run_id}"), **summary}}},
        ])
        return run_id

    def append(self, run_id: str, kind: str, data: Mapping[str, Any]) -> None:
        counter = self._plain(
            "update_item",
            Key={"pk": _s(f"RUN#{run_id}"), "sk": _s("META")},
            UpdateExpression="ADD next_seq :one",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={":one": _n(1)},
            ReturnValues="UPDATED_NEW",
        )
        seq = int(float(counter["Attributes"]["next_seq"]["N"]))
        payload = json.dumps(dict(data), sort_keys=True, default=str)
        if len(payload) > _MAX_DATA_CHARS:
            payload = json.dumps({"truncated": True, "chars": len(payload)})
        self._plain("put_item", Item={
            "pk": _s(f"RUN#{run_id}"), "sk": _s(f"EVENT#{seq:08d}"),
            "at": _n(float(self.clock.wall())), "kind": _s(kind), "data": _s(payload),
        })

    def finish(self, run_id: str, outcome: str, exit_code: int, reason: str | None = None) -> None:
        meta = self._plain("get_item", Key={"pk": _s(f"RUN#{run_id}"), "sk": _s("META")},
                           ConsistentRead=True).get("Item")
        if not meta:
            raise StateError(f"no journaled run {run_id!r} in table {self.table!r}")
        name = _get_s(meta, "name")
        values = {":f": _n(float(self.clock.wall())), ":o": _s(outcome), ":x": _n(int(exit_code)),
                  ":r": _s(reason) if reason else {"NULL": True}}
        update = "SET finished_at = :f, outcome = :o, exit_code = :x, reason = :r"
        self._transact([
            {"Update": {"Key": {"pk": _s(f"RUN#{run_id}"), "sk": _s("META")}, "UpdateExpression": update,
                        "ExpressionAttributeValues": values}},
            {"Update": {"Key": {"pk": _s(f"MIGRATION#{name}"), "sk": _s(f"RUN#{run_id}")},
                        "UpdateExpression": update, "ExpressionAttributeValues": values}},
        ])

    @staticmethod
    def _run(item: Mapping[str, Any], events: tuple[JournalEvent, ...] = ()) -> RunRecord:
        exit_code = _get_n(item, "exit_code")
        return RunRecord(
            run_id=_get_s(item, "run_id") or "", name=_get_s(item, "name") or "",
            command=_get_s(item, "command") or "", plan=json.loads(_get_s(item, "plan") or "{}"),
            holder=json.loads(_get_s(item, "holder") or "{}"), started_at=_get_n(item, "started_at") or 0.0,
            finished_at=_get_n(item, "finished_at"), outcome=_get_s(item, "outcome"),
            exit_code=None if exit_code is None else int(exit_code), reason=_get_s(item, "reason"), events=events,
        )

    def _query(self, limit: int | None = None, **kwargs: Any) -> list[dict]:
        items: list[dict] = []
        start: dict | None = None
        while True:
            page_args = dict(kwargs)
            if start:
                page_args["ExclusiveStartKey"] = start
            if limit is not None:
                page_args["Limit"] = max(1, limit - len(items))
            page = self._plain("query", **page_args)
            items.extend(page.get("Items", []))
            start = page.get("LastEvaluatedKey")
            if not start or (limit is not None and len(items) >= limit):
                return items

    def list_runs(self, name: str, limit: int = 20) -> list[RunRecord]:
        if limit <= 0:
            return []
        items = self._query(
            limit=limit,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :run)",
            ExpressionAttributeValues={":pk": _s(f"MIGRATION#{name}"), ":run": _s("RUN#")},
            ScanIndexForward=False, ConsistentRead=True,
        )
        return [self._run(item) for item in items[:limit]]

    def get_run(self, run_id: str) -> RunRecord | None:
        return self.events_since(run_id, 0)

    def events_since(self, run_id: str, seq: int) -> RunRecord | None:
        # Sort keys compare as UTF-8 bytes and the seq is zero-padded, so ``sk > EVENT#<seq>`` selects the later
        # events and, since "META" sorts after "EVENT#...", the summary too: one Query, sized by what is new.
        # https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Query.KeyConditionExpressions.html
        items = self._query(
            KeyConditionExpression="pk = :pk AND sk > :after",
            ExpressionAttributeValues={":pk": _s(f"RUN#{run_id}"), ":after": _s(f"EVENT#{max(0, int(seq)):08d}")},
            ConsistentRead=True,
        )
        meta = next((i for i in items if _get_s(i, "sk") == "META"), None)
        if meta is None:
            return None
        events = tuple(
            JournalEvent(seq=int((_get_s(i, "sk") or "EVENT#0").split("#", 1)[1]), at=_get_n(i, "at") or 0.0,
                         kind=_get_s(i, "kind") or "", data=json.loads(_get_s(i, "data") or "{}"))
            for i in items if (_get_s(i, "sk") or "").startswith("EVENT#")
        )
        return self._run(meta, tuple(sorted(events, key=lambda e: e.seq)))


# -- init-state ----------------------------------------------------------------------------------------
def init_state(config: Any, *, wait: Callable[..., None] | None = None) -> str:
    """Create the state table (pay-per-request) if it does not exist. Idempotent. Returns what it did.

    Needs dynamodb:CreateTable and dynamodb:DescribeTable: run it once as an administrator; the scheduled
    job's role does not need them."""
    from botocore.exceptions import BotoCoreError, ClientError

    from bluegreen.adapters.aws import client, resolve_region

    state = config.state
    if state.backend != "dynamodb":
        raise ConfigError("`bluegreen init-state` for DynamoDB needs `state.backend: dynamodb` and `state.table`")
    aws = replace(config.aws, region=state.region) if state.region else config.aws
    ddb = client(aws, "dynamodb", total_attempts=4)
    table, region = str(state.table), resolve_region(aws, service="dynamodb")
    try:
        try:
            ddb.create_table(
                TableName=table,
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                      {"AttributeName": "sk", "AttributeType": "S"}],
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
                BillingMode="PAY_PER_REQUEST",
            )
            created = True
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ResourceInUseException":
                raise
            created = False
        if wait is not None:
            wait(table)
        else:
            ddb.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 2, "MaxAttempts": 90})
        description = ddb.describe_table(TableName=table)["Table"]
    except ClientError as error:
        message = error.response.get("Error", {}).get("Message", "")
        raise StateError(f"cannot create the DynamoDB state table {table!r} in {region}: {shorten(message)}",
                         hint="init-state needs dynamodb:CreateTable and dynamodb:DescribeTable") from error
    except BotoCoreError as error:
        raise StateError(f"cannot create the DynamoDB state table {table!r} in {region}: {shorten(str(error))}") \
            from error
    keys = {(k["AttributeName"], k["KeyType"]) for k in description.get("KeySchema", [])}
    if keys != {("pk", "HASH"), ("sk", "RANGE")}:
        raise ConfigError(
            f"the DynamoDB table {table!r} exists but its key is not (pk HASH, sk RANGE): it is not a bluegreen "
            "state table", hint="choose another `state.table` name")
    return (f"created DynamoDB table {table} in {region} (pay-per-request)" if created
            else f"DynamoDB table {table} in {region} already exists; nothing to do")
