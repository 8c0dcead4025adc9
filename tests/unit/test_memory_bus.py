"""MemoryBus details the transport-wide contract suite does not pin down."""

from __future__ import annotations

import asyncio

import pytest

from stratus.api.metrics import Metrics
from stratus.bus import connect
from stratus.bus.base import Target
from stratus.bus.memory import MemoryBus
from stratus.errors import RPCTimeout


class Endpoint:
    def __init__(self) -> None:
        self.got: list[object] = []

    async def take(self, value: object) -> object:
        self.got.append(value)
        return value

    async def fail(self) -> None:
        raise RuntimeError("boom")


def test_connect_picks_the_transport_from_the_url() -> None:
    assert isinstance(connect("memory://"), MemoryBus)
    with pytest.raises(ValueError, match="memory:// or amqp://"):
        connect("redis://127.0.0.1")


async def test_the_handler_never_shares_objects_with_the_caller() -> None:
    bus = MemoryBus(metrics=Metrics())
    endpoint = Endpoint()
    await bus.serve(Target("t"), endpoint)
    sent = {"items": [1, 2]}
    got = await bus.call(Target("t"), "take", value=sent)
    assert got == sent and got is not sent and endpoint.got[0] is not sent


async def test_a_cast_to_nobody_is_counted_as_dropped() -> None:
    metrics = Metrics()
    bus = MemoryBus(metrics=metrics)
    await bus.cast(Target("t", "ghost"), "take", value=1)
    assert metrics.value("stratus_rpc_calls_total", {"topic": "t", "method": "take",
                                                     "kind": "cast", "outcome": "dropped"}) == 1


async def test_a_failing_cast_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    bus = MemoryBus(metrics=Metrics())
    await bus.serve(Target("t"), Endpoint())
    await bus.cast(Target("t"), "fail")
    for _ in range(50):
        if "cast t.fail failed" in caplog.text:
            break
        await asyncio.sleep(0.01)
    assert "boom" in caplog.text


async def test_a_failing_subscriber_does_not_stop_the_others() -> None:
    bus = MemoryBus(metrics=Metrics())
    seen: list[str] = []

    async def broken(event_type: str, payload: dict[str, object]) -> None:
        raise RuntimeError("subscriber bug")

    async def fine(event_type: str, payload: dict[str, object]) -> None:
        seen.append(event_type)

    await bus.subscribe("*", broken)
    sub = await bus.subscribe("image.*", fine)
    await bus.notify("image.upload", {})
    await asyncio.sleep(0.01)
    await sub.stop()
    await bus.notify("image.delete", {})
    await asyncio.sleep(0.01)
    assert seen == ["image.upload"]


async def test_stop_ends_every_listener() -> None:
    bus = MemoryBus(metrics=Metrics(), default_timeout=0.2)
    await bus.serve(Target("t"), Endpoint())
    await bus.stop()
    with pytest.raises(RPCTimeout, match="no listener"):
        await bus.call(Target("t"), "take", value=1)
