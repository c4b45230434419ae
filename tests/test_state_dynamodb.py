"""The DynamoDB state backend, over HTTP against a moto server on 127.0.0.1."""

from __future__ import annotations

import threading
import uuid
from types import SimpleNamespace

import pytest

from bluegreen.adapters.state.dynamodb import DynamoStateStore, init_state
from bluegreen.adapters.state.sqlite import init_state_store, open_state_store
from bluegreen.config import AwsConfig
from bluegreen.core.clock import FakeClock
from bluegreen.core.state import Holder, LeaseKeeper, LockLost, last_origin_side
from bluegreen.errors import ConfigError, ExitCode, LockHeld
from bluegreen.config.sections import parse_state
from bluegreen.runs import JournalSink
from bluegreen.core.ports import Event
from tests.support.journal_contract import check_events_since
from tests.support.moto_fixtures import fake_aws_env


@pytest.fixture
def config(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:  # noqa: F811
    fake_aws_env(monkeypatch)
    table = f"bg-{uuid.uuid4().hex[:8]}"
    return SimpleNamespace(
        name="burnham", path=None,
        aws=AwsConfig(region="eu-west-1", endpoint_url=moto_endpoint),
        state=parse_state({"backend": "dynamodb", "table": table, "lease": "30s"}),
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(config: SimpleNamespace, clock: FakeClock) -> DynamoStateStore:
    assert "created" in init_state(config, wait=lambda table: None)
    built = open_state_store(config, clock)
    assert isinstance(built, DynamoStateStore)
    return built


def test_init_state_is_idempotent_and_checks_the_key(config: SimpleNamespace, clock: FakeClock) -> None:
    assert "created DynamoDB table" in init_state_store(config, clock)
    assert "already exists" in init_state(config)
    from bluegreen.adapters.aws import client

    ddb = client(config.aws, "dynamodb")
    description = ddb.describe_table(TableName=config.state.table)["Table"]
    assert description["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ddb.create_table(TableName="not-ours", AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}], BillingMode="PAY_PER_REQUEST")
    wrong = SimpleNamespace(**{**vars(config), "state": parse_state({"backend": "dynamodb", "table": "not-ours"})})
    with pytest.raises(ConfigError, match="not a bluegreen state table"):
        init_state(wrong)


def test_missing_table_says_run_init_state(config: SimpleNamespace, clock: FakeClock) -> None:
    store = open_state_store(config, clock)
    with pytest.raises(ConfigError) as caught:
        store.acquire("burnham", Holder.current(clock), 30)
    assert "init-state" in caught.value.hint


def test_lock_rules(store: DynamoStateStore, clock: FakeClock) -> None:
    pod = Holder(host="bluegreen-cron-28xq", pid=1, started_at=clock.wall(), run_id="r-pod", command="shift")
    lease = store.acquire("burnham", pod, 30)
    assert store.acquire("burnham", pod, 30).holder == pod  # same holder: re-acquire
    laptop = Holder(host="laptop", pid=4242, started_at=clock.wall(), run_id="r-laptop", command="shift")
    with pytest.raises(LockHeld) as caught:
        store.acquire("burnham", laptop, 30)
    assert caught.value.exit_code == ExitCode.LOCKED
    assert "pid 1 on bluegreen-cron-28xq" in str(caught.value) and "run r-pod" in str(caught.value)
    clock.advance(20)
    lease = store.renew(lease)
    clock.advance(20)  # 40 s after acquire, 20 s after renewal: still held
    with pytest.raises(LockHeld):
        store.acquire("burnham", laptop, 30)
    clock.advance(11)  # expired
    assert store.current_holder("burnham") is None
    taken = store.acquire("burnham", laptop, 30)
    assert taken.holder.run_id == "r-laptop"
    with pytest.raises(LockLost, match="r-laptop"):
        store.renew(lease)
    assert store.release(lease) is False
    assert store.current_holder("burnham")[0].host == "laptop"
    assert store.release(taken) is True
    assert store.current_holder("burnham") is None


def test_take_over_and_keeper_notices(store: DynamoStateStore, clock: FakeClock) -> None:
    lease = store.acquire("burnham", Holder.current(clock, run_id="shift-1", command="shift"), 30)
    stopped = threading.Event()
    keeper = LeaseKeeper(store, lease, clock=clock, lost=stopped)
    assert keeper.tick() is True
    rollback = store.take_over("burnham", Holder.current(clock, run_id="rb-1", command="rollback"), 30)
    assert rollback.previous.run_id == "shift-1"
    assert keeper.tick() is False and stopped.is_set()
    assert keeper.lost_error.exit_code == ExitCode.CONFLICT and "rb-1" in str(keeper.lost_error)


def test_racing_acquires_from_threads_one_wins(store: DynamoStateStore, clock: FakeClock) -> None:
    results: list[str] = []
    barrier = threading.Barrier(4)

    def contender(i: int) -> None:
        barrier.wait()
        try:
            store.acquire("race", Holder(host=f"h{i}", pid=i, started_at=clock.wall()), 30)
            results.append("won")
        except LockHeld:
            results.append("held")

    threads = [threading.Thread(target=contender, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(results) == ["held", "held", "held", "won"]


def test_journal_round_trip(store: DynamoStateStore, clock: FakeClock) -> None:
    holder = Holder.current(clock, command="shift")
    run_id = store.start_run("burnham", "shift", {"target": "green", "origin_side": "blue", "ratio": 0.25},
                             holder=holder)
    sink = JournalSink(store, run_id)
    sink(Event("shift_started", {"target": "green", "steps": [10, 50, 100]}))
    sink(Event("hold", {"remaining_seconds": 3}))
    for i in range(11):
        clock.advance(1)
        sink(Event("weights_changed", {"step": f"{i}%", "change_ids": [f"C{i}"], "token": "s3cr3t"}))
    assert store.get_run(run_id).status() == "unfinished"
    store.finish(run_id, "rolled_back", 3, "gates failed: success ratio 0.5 < 0.99")
    run = store.get_run(run_id)
    assert (run.outcome, run.exit_code, run.reason) == ("rolled_back", 3, "gates failed: success ratio 0.5 < 0.99")
    assert [e.seq for e in run.events] == list(range(1, 14))  # the hold is journaled (bounded), for `watch`
    assert run.events[0].kind == "shift_started" and run.events[-1].data["change_ids"] == ["C10"]
    assert all(e.data.get("token") in (None, "***") for e in run.events)
    assert run.plan == {"target": "green", "origin_side": "blue", "ratio": 0.25}
    assert run.holder["pid"] == holder.pid and "token" not in run.holder
    listed = store.list_runs("burnham")
    assert listed[0].run_id == run_id and listed[0].outcome == "rolled_back" and listed[0].events == ()
    assert store.get_run("missing") is None


def test_list_runs_order_limit_and_last_run(store: DynamoStateStore, clock: FakeClock) -> None:
    ids = []
    for i, command in enumerate(["shift", "shift", "rollback"] + ["status-check"] * 3):
        ids.append(store.start_run("burnham", command, {"origin_side": "blue" if i == 0 else "green"}))
        clock.advance(61)
    store.start_run("other", "shift", {})
    assert [r.run_id for r in store.list_runs("burnham", limit=4)] == ids[::-1][:4]
    assert len(store.list_runs("burnham", limit=100)) == 6
    assert store.last_run("burnham").run_id == ids[1]
    assert store.last_run("burnham", "rollback").run_id == ids[2]
    assert last_origin_side(store, "burnham") == "green"
    assert store.list_runs("nobody") == []


def test_repr_names_table_only(store: DynamoStateStore) -> None:
    assert "bg-" in repr(store) and "http" not in repr(store)


def test_events_since_reads_only_the_new_events_in_one_query(store: DynamoStateStore, clock: FakeClock) -> None:
    run_id = check_events_since(store, clock)
    # What DynamoDB itself read (ScannedCount, billed as read capacity): the events after seq and the summary,
    # not the run's whole journal.
    scanned: list[int] = []

    def count(parsed, **_):
        scanned.append(parsed["ScannedCount"])

    store.client.meta.events.register("after-call.dynamodb.Query", count)
    try:
        assert [e.seq for e in store.events_since(run_id, 10).events] == [11, 12]
    finally:
        store.client.meta.events.unregister("after-call.dynamodb.Query", count)
    assert scanned == [3]  # two events and META
