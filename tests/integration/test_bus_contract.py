"""The bus contract (stratus.bus.base), run against every transport.

The AMQP runs use the real RabbitMQ on 127.0.0.1:5672 (started if it is down)
with an exchange prefix of their own, deleted afterwards.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aio_pika
import pytest

from stratus.api.metrics import Metrics
from stratus.bus.amqp import AmqpBus, binding_key
from stratus.bus.base import Bus, Target
from stratus.bus.memory import MemoryBus
from stratus.errors import NotFound, RemoteError, RPCTimeout, ServiceUnavailable
from tests.support.services import ensure_rabbitmq

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


class Harness:
    """Buses of one transport sharing one broker, as processes of one service would."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.prefix = f"stratus-test-{uuid.uuid4().hex[:10]}"
        self.buses: list[Bus] = []

    async def new_bus(self, *, default_timeout: float = 10.0) -> Bus:
        """Another process's bus (the same in-process bus for the memory transport)."""
        if self.kind == "memory":
            if not self.buses:
                self.buses.append(MemoryBus(metrics=Metrics(), default_timeout=default_timeout))
            return self.buses[0]
        bus = AmqpBus(AMQP_URL, metrics=Metrics(), default_timeout=default_timeout,
                      exchange=self.prefix)
        await bus.start()
        self.buses.append(bus)
        return bus

    async def drop_connection(self, bus: Bus) -> None:
        """Make the broker drop ``bus``'s connection (nothing to drop in memory)."""
        if not isinstance(bus, AmqpBus):
            return
        listing = await _run("rabbitmqctl", "-q", "list_connections", "pid", "client_properties")
        pids = [line.split("\t")[0] for line in listing.splitlines()
                if bus.connection_name in line]
        assert pids, f"connection {bus.connection_name} not found:\n{listing}"
        for pid in pids:
            await _run("rabbitmqctl", "-q", "close_connection", pid, "test drops the connection")

    async def close(self) -> None:
        for bus in self.buses:
            await bus.stop()
        for bus in self.buses:
            if isinstance(bus, AmqpBus):
                await bus.delete_topology()


async def _run(*argv: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0, f"{' '.join(argv)} failed: {err.decode()}"
    return out.decode()


@pytest.fixture(scope="session")
def rabbitmq() -> None:
    ensure_rabbitmq()


@pytest.fixture(params=["memory", pytest.param("amqp", marks=pytest.mark.rabbitmq)])
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    if request.param == "amqp":
        request.getfixturevalue("rabbitmq")
    h = Harness(request.param)
    try:
        yield h
    finally:
        await h.close()


@pytest.fixture
async def bus(harness: Harness) -> Bus:
    return await harness.new_bus()


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


class Recorder:
    """An endpoint that remembers what it was sent."""

    def __init__(self, name: str = "") -> None:
        self.name = name
        self.seen: list[Any] = []

    async def echo(self, value: Any) -> Any:
        self.seen.append(value)
        return value

    async def whoami(self) -> str:
        self.seen.append(self.name)
        return self.name

    async def sleep(self, seconds: float) -> str:
        await asyncio.sleep(seconds)
        return "awake"

    async def add(self, a: int, b: int) -> int:
        return a + b

    async def not_found(self) -> None:
        raise NotFound("Flavor m1.huge could not be found.")

    async def crash(self) -> None:
        raise ValueError("disk on fire")

    async def unserializable(self) -> object:
        return object()

    async def _private(self) -> str:
        return "secret"


async def test_call_returns_the_handlers_result(bus: Bus) -> None:
    await bus.serve(Target("calc"), Recorder())
    assert await bus.call(Target("calc"), "add", a=2, b=3) == 5
    assert await bus.call(Target("calc"), "echo", value={"nested": [1, "two", None, True]}) == {
        "nested": [1, "two", None, True]}


async def test_cast_runs_the_handler_without_waiting_for_it(bus: Bus) -> None:
    endpoint = Recorder()
    await bus.serve(Target("worker"), endpoint)
    assert await bus.cast(Target("worker"), "echo", value="hello") is None
    await eventually(lambda: endpoint.seen == ["hello"])


async def test_fanout_reaches_every_listener_of_the_topic(harness: Harness, bus: Bus) -> None:
    endpoints = [Recorder(f"node{i}") for i in range(3)]
    for endpoint in endpoints:
        other = await harness.new_bus()
        await other.serve(Target("agent", endpoint.name), endpoint)
    bystander = Recorder()
    await bus.serve(Target("other-topic"), bystander)
    await bus.fanout("agent", "echo", value="refresh")
    await eventually(lambda: all(e.seen == ["refresh"] for e in endpoints))
    await asyncio.sleep(0.1)
    assert all(e.seen == ["refresh"] for e in endpoints)
    assert bystander.seen == []


async def test_shared_topic_delivers_each_message_to_exactly_one_server(
        harness: Harness, bus: Bus) -> None:
    endpoints = [Recorder("a"), Recorder("b")]
    for endpoint in endpoints:
        await (await harness.new_bus()).serve(Target("conductor", endpoint.name), endpoint)
    for i in range(40):
        await bus.cast(Target("conductor"), "echo", value=i)
    await eventually(lambda: sum(len(e.seen) for e in endpoints) == 40)
    await asyncio.sleep(0.1)
    assert sorted(endpoints[0].seen + endpoints[1].seen) == list(range(40))
    assert endpoints[0].seen and endpoints[1].seen, "round robin between the servers"


async def test_a_server_target_reaches_only_that_server(harness: Harness, bus: Bus) -> None:
    endpoints = {name: Recorder(name) for name in ("node1", "node2")}
    for name, endpoint in endpoints.items():
        await (await harness.new_bus()).serve(Target("compute", name), endpoint)
    for _ in range(5):
        assert await bus.call(Target("compute", "node2"), "whoami") == "node2"
    assert endpoints["node1"].seen == []
    assert endpoints["node2"].seen == ["node2"] * 5


async def test_messages_to_one_target_are_dispatched_in_send_order(
        harness: Harness, bus: Bus) -> None:
    endpoint = Recorder()
    await (await harness.new_bus()).serve(Target("ordered", "n1"), endpoint)
    for i in range(200):
        await bus.cast(Target("ordered", "n1"), "echo", value=i)
    await eventually(lambda: len(endpoint.seen) == 200)
    assert endpoint.seen == list(range(200))


async def test_a_slow_handler_does_not_hold_up_the_next_message(bus: Bus) -> None:
    endpoint = Recorder()
    await bus.serve(Target("slow"), endpoint)
    slow = asyncio.create_task(bus.call(Target("slow"), "sleep", seconds=0.5))
    started = time.monotonic()
    assert await bus.call(Target("slow"), "add", a=1, b=1) == 2
    assert time.monotonic() - started < 0.4
    assert await slow == "awake"


async def test_a_slow_reply_raises_rpc_timeout_naming_target_and_method(bus: Bus) -> None:
    await bus.serve(Target("slow", "n1"), Recorder())
    started = time.monotonic()
    with pytest.raises(RPCTimeout) as info:
        await bus.call(Target("slow", "n1"), "sleep", seconds=5, timeout=0.3)
    assert time.monotonic() - started < 2
    assert "slow.n1" in info.value.message and "'sleep'" in info.value.message
    assert "0.3s" in info.value.message
    assert info.value.status == 504


async def test_a_call_nobody_listens_to_times_out_cleanly(bus: Bus) -> None:
    started = time.monotonic()
    with pytest.raises(RPCTimeout, match=r"nobody-home\.ghost.*no listener"):
        await bus.call(Target("nobody-home", "ghost"), "ping", timeout=0.3)
    assert 0.25 < time.monotonic() - started < 2
    # The bus is still fine afterwards.
    await bus.serve(Target("calc"), Recorder())
    assert await bus.call(Target("calc"), "add", a=1, b=2) == 3


async def test_a_stratus_error_comes_back_as_remote_error_with_its_status(bus: Bus) -> None:
    await bus.serve(Target("flavors"), Recorder())
    with pytest.raises(RemoteError) as info:
        await bus.call(Target("flavors"), "not_found")
    assert info.value.exc_type == "NotFound"
    assert info.value.status == 404
    assert info.value.remote_message == "Flavor m1.huge could not be found."


async def test_a_plain_exception_comes_back_as_remote_error_500(bus: Bus) -> None:
    await bus.serve(Target("disks"), Recorder())
    with pytest.raises(RemoteError) as info:
        await bus.call(Target("disks"), "crash")
    assert (info.value.exc_type, info.value.status) == ("ValueError", 500)
    assert "disk on fire" in info.value.message


@pytest.mark.parametrize("method", ["no_such_thing", "_private", "__init__"])
async def test_unknown_and_private_methods_are_no_such_method(bus: Bus, method: str) -> None:
    await bus.serve(Target("calc"), Recorder())
    with pytest.raises(RemoteError) as info:
        await bus.call(Target("calc"), method)
    assert info.value.exc_type == "NoSuchMethod"


async def test_non_json_payloads_are_rejected_by_the_sender(bus: Bus) -> None:
    endpoint = Recorder()
    await bus.serve(Target("calc"), endpoint)
    for send in (
        lambda: bus.call(Target("calc"), "echo", value=object(), timeout=1),
        lambda: bus.cast(Target("calc"), "echo", value={1, 2}),
        lambda: bus.fanout("calc", "echo", value=b"bytes"),
        lambda: bus.notify("instance.create.start", {"when": float("nan")}),
    ):
        with pytest.raises(TypeError, match="plain JSON"):
            await send()
    await asyncio.sleep(0.05)
    assert endpoint.seen == []


async def test_a_non_json_result_comes_back_as_remote_type_error(bus: Bus) -> None:
    await bus.serve(Target("calc"), Recorder())
    with pytest.raises(RemoteError) as info:
        await bus.call(Target("calc"), "unserializable", timeout=5)
    assert info.value.exc_type == "TypeError"


async def test_a_large_payload_round_trips(harness: Harness, bus: Bus) -> None:
    await (await harness.new_bus()).serve(Target("blobs"), Recorder())
    blob = "x" * (8 * 1024 * 1024)
    assert await bus.call(Target("blobs"), "echo", value=blob, timeout=30) == blob


async def test_a_thousand_calls_in_flight_are_all_answered(harness: Harness, bus: Bus) -> None:
    await (await harness.new_bus()).serve(Target("calc", "n1"), Recorder())
    await (await harness.new_bus()).serve(Target("calc", "n2"), Recorder())
    targets = [Target("calc"), Target("calc", "n1"), Target("calc", "n2")]
    results = await asyncio.gather(*(
        bus.call(targets[i % 3], "add", a=i, b=1000, timeout=30) for i in range(1000)))
    assert results == [i + 1000 for i in range(1000)]


async def test_notifications_reach_the_subscribers_whose_pattern_matches(
        harness: Harness, bus: Bus) -> None:
    got: dict[str, list[tuple[str, dict[str, Any]]]] = {"instance.*": [], "*.end": [],
                                                        "volume.create.end": []}

    def record(pattern: str) -> Callable[[str, dict[str, Any]], Awaitable[None]]:
        async def handler(event_type: str, payload: dict[str, Any]) -> None:
            got[pattern].append((event_type, payload))
        return handler

    subscriber = await harness.new_bus()
    for pattern in got:
        await subscriber.subscribe(pattern, record(pattern))
    for event in ("instance.create.start", "instance.create.end", "volume.create.end",
                  "instancefoo.x"):
        await bus.notify(event, {"id": event}, publisher="compute.node1")
    await eventually(lambda: len(got["instance.*"]) == 2 and len(got["*.end"]) == 2
                     and len(got["volume.create.end"]) == 1)
    await asyncio.sleep(0.1)
    assert sorted(e for e, _ in got["instance.*"]) == ["instance.create.end",
                                                       "instance.create.start"]
    assert sorted(e for e, _ in got["*.end"]) == ["instance.create.end", "volume.create.end"]
    assert got["volume.create.end"] == [("volume.create.end", {"id": "volume.create.end"})]


async def test_a_stopped_listener_receives_nothing_more(bus: Bus) -> None:
    endpoint = Recorder()
    listener = await bus.serve(Target("brief", "n1"), endpoint)
    await bus.call(Target("brief", "n1"), "echo", value=1)
    await listener.stop()
    with pytest.raises(RPCTimeout):
        await bus.call(Target("brief", "n1"), "echo", value=2, timeout=0.3)
    assert endpoint.seen == [1]


async def test_stopping_the_bus_ends_pending_calls_with_rpc_timeout(harness: Harness) -> None:
    server, client = await harness.new_bus(), await harness.new_bus()
    await server.serve(Target("slow"), Recorder())
    pending = asyncio.create_task(client.call(Target("slow"), "sleep", seconds=5, timeout=0.5))
    await asyncio.sleep(0.1)
    await client.stop()
    with pytest.raises(RPCTimeout):
        await pending


async def test_listeners_and_calls_resume_after_the_broker_drops_the_connection(
        harness: Harness, bus: Bus) -> None:
    server_bus = await harness.new_bus()
    endpoint = Recorder("n1")
    await server_bus.serve(Target("resilient", "n1"), endpoint)
    events: list[str] = []

    async def on_event(event_type: str, payload: dict[str, Any]) -> None:
        events.append(event_type)

    await server_bus.subscribe("host.*", on_event)
    assert await bus.call(Target("resilient", "n1"), "echo", value="before") == "before"

    await harness.drop_connection(server_bus)
    await harness.drop_connection(bus)

    assert await bus.call(Target("resilient", "n1"), "echo", value="after", timeout=15) == "after"
    assert await bus.call(Target("resilient"), "whoami", timeout=15) == "n1"
    await bus.fanout("resilient", "echo", value="fanned")
    await eventually(lambda: "fanned" in endpoint.seen, timeout=10)
    await bus.notify("host.up", {})
    await eventually(lambda: events == ["host.up"], timeout=10)


async def test_calls_and_handled_messages_are_counted(bus: Bus) -> None:
    metrics: Metrics = bus.metrics  # type: ignore[attr-defined]
    await bus.serve(Target("calc"), Recorder())
    await bus.call(Target("calc"), "add", a=1, b=1)
    with pytest.raises(RemoteError):
        await bus.call(Target("calc"), "crash")
    with pytest.raises(RPCTimeout):
        await bus.call(Target("nowhere"), "add", timeout=0.2)
    await bus.cast(Target("calc"), "add", a=1, b=1)
    await eventually(lambda: metrics.value(
        "stratus_rpc_handled_total", {"topic": "calc", "method": "add", "outcome": "ok"}) == 2)

    def calls(topic: str, method: str, kind: str, outcome: str) -> float:
        return metrics.value("stratus_rpc_calls_total", {"topic": topic, "method": method,
                                                         "kind": kind, "outcome": outcome})

    assert calls("calc", "add", "call", "ok") == 1
    assert calls("calc", "crash", "call", "error") == 1
    assert calls("nowhere", "add", "call", "timeout") == 1
    assert calls("calc", "add", "cast", "ok") == 1
    assert metrics.value("stratus_rpc_handled_total",
                         {"topic": "calc", "method": "crash", "outcome": "error"}) == 1
    text = metrics.render()
    assert 'stratus_rpc_call_seconds_count{method="add",topic="calc"} 1' in text


@pytest.mark.parametrize(("pattern", "key"), [
    ("instance.create.end", "instance.create.end"),
    ("instance.*", "instance.#"),
    ("instance.create.*", "instance.create.#"),
    ("*.end", "#"),
    ("inst?nce.create", "#"),
    ("*", "#"),
])
def test_notification_patterns_bind_a_covering_amqp_key(pattern: str, key: str) -> None:
    assert binding_key(pattern) == key


@pytest.mark.rabbitmq
async def test_amqp_messages_are_plain_json_and_unknown_fields_are_ignored(
        rabbitmq: None) -> None:
    harness = Harness("amqp")
    try:
        bus = await harness.new_bus()
        endpoint = Recorder()
        await bus.serve(Target("wire", "n1"), endpoint)
        async with await aio_pika.connect(AMQP_URL) as conn:
            channel = await conn.channel()
            exchange = await channel.get_exchange(harness.prefix)
            body = json.dumps({"v": 99, "method": "echo", "args": {"value": "hi"},
                               "added_in_v99": {"x": 1}}).encode()
            await exchange.publish(aio_pika.Message(body), routing_key="wire.n1")
        await eventually(lambda: endpoint.seen == ["hi"])
    finally:
        await harness.close()


async def test_an_unreachable_broker_fails_start_naming_it_without_the_password() -> None:
    bus = AmqpBus("amqp://guest:s3cret@127.0.0.1:1/", metrics=Metrics())
    with pytest.raises(ServiceUnavailable) as info:
        await bus.start()
    assert "127.0.0.1:1" in info.value.message and "s3cret" not in info.value.message
