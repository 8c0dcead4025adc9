"""The in-process transport: the all-in-one default. Same contract as AMQP.

Messages are JSON-encoded and decoded on the way, so a handler never shares
objects with its caller and a non-JSON payload fails here as it would on AMQP.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import defaultdict
from typing import Any

from stratus.api.metrics import Metrics
from stratus.bus.base import MESSAGE_VERSION, Bus, Listener, NotificationHandler, Target, matches
from stratus.bus.dispatch import decode, encode, encode_reply, invoke, unwrap
from stratus.errors import RPCTimeout

log = logging.getLogger("stratus.bus")


class _Server(Listener):
    """One ``serve``: a queue drained in order by one dispatcher task."""

    def __init__(self, bus: MemoryBus, target: Target, endpoint: object) -> None:
        self.bus = bus
        self.target = target
        self.endpoint = endpoint
        self.queue: asyncio.Queue[tuple[bytes, asyncio.Future[Any] | None]] = asyncio.Queue()
        self.inflight: set[asyncio.Task[None]] = set()
        self.task = asyncio.create_task(self._drain(), name=f"bus-serve-{target}")

    async def _drain(self) -> None:
        while True:
            body, reply = await self.queue.get()
            task = asyncio.create_task(self._handle(body, reply))
            self.inflight.add(task)
            task.add_done_callback(self.inflight.discard)

    async def _handle(self, body: bytes, reply: asyncio.Future[Any] | None) -> None:
        msg = decode(body)
        answer = await invoke(self.endpoint, self.target.topic, msg["method"],
                              msg.get("args", {}), self.bus.metrics)
        if reply is not None and not reply.done():
            reply.set_result(decode(encode_reply(answer)))
        elif reply is None and "error" in answer:
            log.warning("cast %s.%s failed: %s", self.target, msg["method"], answer["error"])

    async def stop(self, grace: float = 5.0) -> None:
        self.bus._remove(self)
        self.task.cancel()
        # Let handlers that are mid-way (often inside a DB transaction) finish;
        # cancelling them there can leave a connection half-used at shutdown.
        if self.inflight:
            await asyncio.wait(list(self.inflight), timeout=grace)
        for task in list(self.inflight):
            task.cancel()


class _Subscription(Listener):
    def __init__(self, bus: MemoryBus, pattern: str, handler: NotificationHandler) -> None:
        self.bus, self.pattern, self.handler = bus, pattern, handler

    async def stop(self) -> None:
        if self in self.bus._subs:
            self.bus._subs.remove(self)


class MemoryBus(Bus):
    def __init__(self, *, metrics: Metrics, default_timeout: float = 60.0) -> None:
        self.metrics = metrics
        self.default_timeout = default_timeout
        self._servers: dict[str, list[_Server]] = defaultdict(list)
        self._rr: dict[str, itertools.count[int]] = defaultdict(itertools.count)
        self._subs: list[_Subscription] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        for servers in list(self._servers.values()):
            for server in list(servers):
                await server.stop()
        self._subs.clear()

    def _remove(self, server: _Server) -> None:
        lst = self._servers.get(server.target.topic, [])
        if server in lst:
            lst.remove(server)

    def _pick(self, target: Target) -> _Server | None:
        servers = self._servers.get(target.topic, [])
        if target.server is not None:
            for server in servers:
                if server.target.server == target.server:
                    return server
            return None
        if not servers:
            return None
        return servers[next(self._rr[target.topic]) % len(servers)]

    def _message(self, method: str, kwargs: dict[str, Any]) -> bytes:
        return encode({"v": MESSAGE_VERSION, "method": method, "args": kwargs})

    async def call(self, target: Target, method: str, *, timeout: float | None = None,
                   **kwargs: Any) -> Any:
        body = self._message(method, kwargs)
        timeout = self.default_timeout if timeout is None else timeout
        start = time.perf_counter()
        outcome = "ok"
        reply: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        try:
            server = self._pick(target)
            if server is not None:
                server.queue.put_nowait((body, reply))
            try:
                answer = await asyncio.wait_for(reply, timeout)
            except TimeoutError:
                outcome = "timeout"
                raise RPCTimeout(
                    f"No reply from {target} to {method!r} within {timeout:g}s"
                    + ("" if server else " (no listener for that target)")
                ) from None
            if "error" in answer:
                outcome = "error"
            return unwrap(answer)
        finally:
            labels = {"topic": target.topic, "method": method}
            self.metrics.inc("stratus_rpc_calls_total", {**labels, "kind": "call",
                                                         "outcome": outcome})
            self.metrics.observe("stratus_rpc_call_seconds", labels, time.perf_counter() - start)

    async def cast(self, target: Target, method: str, **kwargs: Any) -> None:
        body = self._message(method, kwargs)
        server = self._pick(target)
        self.metrics.inc("stratus_rpc_calls_total", {"topic": target.topic, "method": method,
                                                     "kind": "cast",
                                                     "outcome": "ok" if server else "dropped"})
        if server is not None:
            server.queue.put_nowait((body, None))

    async def fanout(self, topic: str, method: str, **kwargs: Any) -> None:
        body = self._message(method, kwargs)
        self.metrics.inc("stratus_rpc_calls_total", {"topic": topic, "method": method,
                                                     "kind": "fanout", "outcome": "ok"})
        for server in list(self._servers.get(topic, [])):
            server.queue.put_nowait((body, None))

    async def notify(self, event_type: str, payload: dict[str, Any], *,
                     publisher: str = "") -> None:
        body = encode({"v": MESSAGE_VERSION, "event_type": event_type, "payload": payload,
                       "publisher": publisher, "timestamp": time.time()})
        self.metrics.inc("stratus_notifications_total", {"event_type": event_type})
        for sub in list(self._subs):
            if matches(sub.pattern, event_type):
                task = asyncio.create_task(self._deliver(sub, body))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _deliver(self, sub: _Subscription, body: bytes) -> None:
        msg = decode(body)
        try:
            await sub.handler(msg["event_type"], msg["payload"])
        except Exception:  # noqa: BLE001 - a subscriber's failure is its own
            log.exception("notification handler for %s failed", msg["event_type"])

    async def serve(self, target: Target, endpoint: object) -> Listener:
        server = _Server(self, target, endpoint)
        self._servers[target.topic].append(server)
        return server

    async def subscribe(self, pattern: str, handler: NotificationHandler) -> Listener:
        sub = _Subscription(self, pattern, handler)
        self._subs.append(sub)
        return sub
