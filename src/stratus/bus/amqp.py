"""The AMQP transport on RabbitMQ (aio-pika): multi-process and multi-host.

Same contract as :mod:`stratus.bus.memory`. Every name starts with the bus's
``exchange`` (``stratus`` by default), so deployments or test runs sharing a
broker never see each other::

    <x>                 direct exchange, RPC: key "<topic>" or "<topic>.<server>"
    <x>_fanout          direct exchange, fanout: key "<topic>", a queue per listener
    <x>.notifications   topic exchange, key = event type
    <x>.<topic>         queue shared by a topic's servers (round robin)
    <x>.<topic>.<server>            queue of one server
    <x>.<topic>_fanout.<id>, <x>.notify.<id>, <x>.reply.<id>
                        exclusive queues of one listener, subscription or bus

Shared and server queues outlive their consumers for ``QUEUE_IDLE_EXPIRY``
seconds, so a cast survives a server's restart; a call carries its timeout as
message TTL, so a late server never runs a call nobody waits for.

Each ``serve``/``subscribe`` has one channel. Deliveries are acknowledged on
receipt (at most once, as in oslo.messaging: an interrupted handler is
recovered by its service, never run twice), and each starts its handler as a
task in delivery order, so ordering per target holds while handlers run
concurrently. The connection is robust: after the broker drops it, aio-pika
reconnects, re-declares queues and bindings and restarts consumers; a publish
made meanwhile waits for the connection to come back.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import (
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustChannel,
    AbstractRobustConnection,
    ExchangeType,
)
from aio_pika.exceptions import CONNECTION_EXCEPTIONS
from yarl import URL

from stratus.api.metrics import Metrics
from stratus.bus.base import MESSAGE_VERSION, Bus, Listener, NotificationHandler, Target, matches
from stratus.bus.dispatch import decode, encode, encode_reply, invoke, unwrap
from stratus.errors import RPCTimeout, ServiceUnavailable

log = logging.getLogger("stratus.bus")

QUEUE_IDLE_EXPIRY = 3600.0
PREFETCH = 100
_RETRY_PAUSE = 0.2
_PUBLISH_ERRORS = (*CONNECTION_EXCEPTIONS, aiormq.exceptions.ChannelInvalidStateError)


def binding_key(pattern: str) -> str:
    """The AMQP topic binding covering an fnmatch pattern (receivers still filter).

    Literal dot-separated words are kept up to the first one with a wildcard;
    the rest becomes ``#``: ``instance.*`` binds ``instance.#``.
    """
    words: list[str] = []
    for word in pattern.split("."):
        if any(ch in word for ch in "*?[]#"):
            return ".".join([*words, "#"])
        words.append(word)
    return pattern


def _redact(url: str) -> str:
    parsed = URL(url)
    return str(parsed.with_password("***")) if parsed.password else url


class _Consumer(Listener):
    """One ``serve`` or ``subscribe``: a channel, its consumers and running handlers."""

    def __init__(self, bus: AmqpBus, channel: AbstractRobustChannel) -> None:
        self.bus = bus
        self.channel = channel
        self.consumers: list[tuple[AbstractQueue, str]] = []
        self.tasks: set[asyncio.Task[None]] = set()

    async def consume(self, queue: AbstractQueue,
                      handle: Callable[[AbstractIncomingMessage], Awaitable[None]]) -> None:
        async def on_message(message: AbstractIncomingMessage) -> None:
            # Start the handler before the first await: tasks run in creation
            # order, so handlers start in delivery order.
            task = asyncio.create_task(handle(message))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
            try:
                await message.ack()
            except Exception as exc:  # noqa: BLE001 - the channel is gone; nothing to ack
                log.debug("could not ack a message on %s: %s", queue.name, exc)

        self.consumers.append((queue, await queue.consume(on_message)))

    async def stop(self) -> None:
        self.bus._listeners.discard(self)
        for queue, tag in self.consumers:
            try:
                await queue.cancel(tag)
            except Exception as exc:  # noqa: BLE001 - closing the channel cancels it too
                log.debug("cancel of %s failed: %s", queue.name, exc)
        self.consumers.clear()
        try:
            await self.channel.close()
        except Exception as exc:  # noqa: BLE001 - already closed with the connection
            log.debug("channel close failed: %s", exc)
        for task in list(self.tasks):
            task.cancel()


class AmqpBus(Bus):
    def __init__(self, url: str, *, metrics: Metrics, default_timeout: float = 60.0,
                 exchange: str = "stratus") -> None:
        self.url = url
        self.metrics = metrics
        self.default_timeout = default_timeout
        self.exchange = exchange
        self.connection_name = (
            f"{exchange}:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        )
        self._reply_queue = f"{exchange}.reply.{uuid.uuid4().hex}"
        self._conn: AbstractRobustConnection | None = None
        self._channel: AbstractRobustChannel | None = None
        self._replies: AbstractRobustChannel | None = None
        self._exchanges: dict[str, AbstractExchange] = {}
        self._pending: dict[str, asyncio.Future[Any]] = {}
        self._listeners: set[_Consumer] = set()
        self._declared_queues: set[str] = set()
        self._start_lock = asyncio.Lock()

    # -- connection --------------------------------------------------------

    async def start(self) -> None:
        async with self._start_lock:
            if self._conn is not None:
                return
            url = URL(self.url)
            if "reconnect_interval" not in url.query:
                url = url.update_query(reconnect_interval=1)
            try:
                conn = await aio_pika.connect_robust(
                    str(url), client_properties={"connection_name": self.connection_name},
                    timeout=10,
                )
            except (*CONNECTION_EXCEPTIONS, OSError, TimeoutError) as exc:
                raise ServiceUnavailable(
                    f"Cannot connect to the message bus at {_redact(self.url)}: {exc}"
                ) from None
            try:
                channel = await conn.channel(publisher_confirms=True)
                self._exchanges = await self._declare_exchanges(channel)
                replies = await conn.channel(publisher_confirms=False)
                queue = await replies.declare_queue(self._reply_queue, exclusive=True,
                                                    auto_delete=True)
                await queue.consume(self._on_reply, no_ack=True)
            except BaseException:
                await conn.close()
                raise
            self._conn, self._channel, self._replies = conn, channel, replies

    async def stop(self) -> None:
        async with self._start_lock:
            for listener in list(self._listeners):
                await listener.stop()
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(RPCTimeout("The message bus stopped before a reply came."))
            self._pending.clear()
            if self._conn is not None:
                await self._conn.close()
            self._conn = self._channel = self._replies = None

    async def _declare_exchanges(self, channel: AbstractRobustChannel
                                 ) -> dict[str, AbstractExchange]:
        return {
            "rpc": await channel.declare_exchange(self.exchange, ExchangeType.DIRECT),
            "fanout": await channel.declare_exchange(f"{self.exchange}_fanout",
                                                     ExchangeType.DIRECT),
            "notify": await channel.declare_exchange(f"{self.exchange}.notifications",
                                                     ExchangeType.TOPIC),
        }

    async def _connection(self) -> AbstractRobustConnection:
        await self.start()
        assert self._conn is not None
        return self._conn

    async def _publish(self, exchange: str, routing_key: str, body: bytes, *,
                       mandatory: bool = False, **properties: Any) -> bool:
        """Publish with broker confirms; False when the broker found no queue for it.

        While the connection is being restored the publish waits and retries
        (the caller bounds the wait).
        """
        await self.start()
        message = aio_pika.Message(
            body, content_type="application/json", message_id=uuid.uuid4().hex,
            delivery_mode=aio_pika.DeliveryMode.NOT_PERSISTENT, **properties,
        )
        while True:
            channel, replies = self._channel, self._replies
            if channel is None or replies is None:
                raise ServiceUnavailable("The message bus was stopped.")
            target = (channel.default_exchange if exchange == "default"
                      else self._exchanges[exchange])
            try:
                # After a reconnect, wait until the reply queue is declared
                # again, or early replies would have nowhere to go.
                await channel.ready()
                if properties.get("reply_to"):
                    await replies.ready()
                result = await target.publish(message, routing_key, mandatory=mandatory)
            except _PUBLISH_ERRORS as exc:
                log.info("publish to %s failed (%s); waiting for the broker", routing_key, exc)
                await asyncio.sleep(_RETRY_PAUSE)
                continue
            return not isinstance(result, aiormq.abc.DeliveredMessage)

    async def _publish_within(self, timeout: float, exchange: str, routing_key: str,
                              body: bytes, **kwargs: Any) -> bool:
        try:
            async with asyncio.timeout(timeout):
                return await self._publish(exchange, routing_key, body, **kwargs)
        except TimeoutError:
            raise ServiceUnavailable(
                f"Could not publish to {routing_key!r} on the message bus within {timeout:g}s"
            ) from None

    # -- sending -----------------------------------------------------------

    def _message(self, method: str, kwargs: dict[str, Any]) -> bytes:
        return encode({"v": MESSAGE_VERSION, "method": method, "args": kwargs})

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        fut = self._pending.get(message.correlation_id or "")
        if fut is None or fut.done():
            return
        try:
            fut.set_result(decode(message.body))
        except ValueError as exc:
            fut.set_result({"error": {"type": "MalformedReply", "status": 500,
                                      "message": str(exc)}})

    async def call(self, target: Target, method: str, *, timeout: float | None = None,
                   **kwargs: Any) -> Any:
        body = self._message(method, kwargs)
        timeout = self.default_timeout if timeout is None else timeout
        start = time.perf_counter()
        outcome = "ok"
        correlation_id = uuid.uuid4().hex
        reply: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[correlation_id] = reply
        routed = True
        try:
            try:
                async with asyncio.timeout(timeout):
                    # Unroutable means nobody listens; like the memory bus, the
                    # caller still learns it as a timeout.
                    routed = await self._publish(
                        "rpc", str(target), body, mandatory=True,
                        correlation_id=correlation_id, reply_to=self._reply_queue,
                        expiration=timeout,
                    )
                    answer = await reply
            except TimeoutError:
                outcome = "timeout"
                raise RPCTimeout(
                    f"No reply from {target} to {method!r} within {timeout:g}s"
                    + ("" if routed else " (no listener for that target)")
                ) from None
            except (RPCTimeout, ServiceUnavailable) as exc:
                outcome = "timeout"
                raise RPCTimeout(f"No reply from {target} to {method!r}: {exc.message}") from None
            if "error" in answer:
                outcome = "error"
            return unwrap(answer)
        finally:
            self._pending.pop(correlation_id, None)
            labels = {"topic": target.topic, "method": method}
            self.metrics.inc("stratus_rpc_calls_total", {**labels, "kind": "call",
                                                         "outcome": outcome})
            self.metrics.observe("stratus_rpc_call_seconds", labels, time.perf_counter() - start)

    async def cast(self, target: Target, method: str, **kwargs: Any) -> None:
        body = self._message(method, kwargs)
        routed = await self._publish_within(self.default_timeout, "rpc", str(target), body,
                                            mandatory=True)
        self.metrics.inc("stratus_rpc_calls_total", {"topic": target.topic, "method": method,
                                                     "kind": "cast",
                                                     "outcome": "ok" if routed else "dropped"})

    async def fanout(self, topic: str, method: str, **kwargs: Any) -> None:
        body = self._message(method, kwargs)
        await self._publish_within(self.default_timeout, "fanout", topic, body)
        self.metrics.inc("stratus_rpc_calls_total", {"topic": topic, "method": method,
                                                     "kind": "fanout", "outcome": "ok"})

    async def notify(self, event_type: str, payload: dict[str, Any], *,
                     publisher: str = "") -> None:
        body = encode({"v": MESSAGE_VERSION, "event_type": event_type, "payload": payload,
                       "publisher": publisher, "timestamp": time.time()})
        await self._publish_within(self.default_timeout, "notify", event_type, body)
        self.metrics.inc("stratus_notifications_total", {"event_type": event_type})

    # -- receiving ---------------------------------------------------------

    async def _open_listener(self) -> tuple[_Consumer, dict[str, AbstractExchange]]:
        conn = await self._connection()
        channel = await conn.channel(publisher_confirms=False)
        await channel.set_qos(prefetch_count=PREFETCH)
        # Declared on this channel too, so a restore never finds them missing.
        exchanges = await self._declare_exchanges(channel)
        listener = _Consumer(self, channel)
        self._listeners.add(listener)
        return listener, exchanges

    async def serve(self, target: Target, endpoint: object) -> Listener:
        listener, exchanges = await self._open_listener()
        channel, topic = listener.channel, target.topic

        async def handle(message: AbstractIncomingMessage) -> None:
            await self._handle(endpoint, topic, message)

        idle = {"x-expires": int(QUEUE_IDLE_EXPIRY * 1000)}
        names = [(f"{self.exchange}.{topic}", topic)]
        if target.server:
            names.append((f"{self.exchange}.{topic}.{target.server}", str(target)))
        for name, key in names:
            queue = await channel.declare_queue(name, arguments=idle)
            await queue.bind(exchanges["rpc"], key)
            self._declared_queues.add(name)
            await listener.consume(queue, handle)
        fanout = await channel.declare_queue(
            f"{self.exchange}.{topic}_fanout.{uuid.uuid4().hex}", exclusive=True, auto_delete=True)
        await fanout.bind(exchanges["fanout"], topic)
        await listener.consume(fanout, handle)
        return listener

    async def _handle(self, endpoint: object, topic: str,
                      message: AbstractIncomingMessage) -> None:
        try:
            msg = decode(message.body)
            method, args = str(msg["method"]), dict(msg.get("args") or {})
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("dropping a malformed message on %s: %s", topic, exc)
            return
        answer = await invoke(endpoint, topic, method, args, self.metrics)
        if message.reply_to:
            try:
                await self._publish_within(self.default_timeout, "default", message.reply_to,
                                           encode_reply(answer),
                                           correlation_id=message.correlation_id)
            except ServiceUnavailable as exc:
                log.warning("reply to %s.%s lost: %s", topic, method, exc)
        elif "error" in answer:
            log.warning("cast %s.%s failed: %s", topic, method, answer["error"])

    async def subscribe(self, pattern: str, handler: NotificationHandler) -> Listener:
        listener, exchanges = await self._open_listener()
        queue = await listener.channel.declare_queue(
            f"{self.exchange}.notify.{uuid.uuid4().hex}", exclusive=True, auto_delete=True)
        await queue.bind(exchanges["notify"], binding_key(pattern))

        async def deliver(message: AbstractIncomingMessage) -> None:
            try:
                msg = decode(message.body)
                event_type = str(msg["event_type"])
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("dropping a malformed notification: %s", exc)
                return
            if not matches(pattern, event_type):
                return
            try:
                await handler(event_type, msg.get("payload") or {})
            except Exception:  # noqa: BLE001 - a subscriber's failure is its own
                log.exception("notification handler for %s failed", event_type)

        await listener.consume(queue, deliver)
        return listener

    # -- administration ------------------------------------------------------

    async def delete_topology(self) -> None:
        """Delete the exchanges and shared/server queues this bus declared.

        For tests and for removing a whole deployment prefix from a broker;
        other processes using the same names lose them too.
        """
        conn = await aio_pika.connect(self.url, timeout=10)
        async with conn:
            channel = await conn.channel()
            for name in sorted(self._declared_queues):
                await channel.queue_delete(name)
            for name in (self.exchange, f"{self.exchange}_fanout",
                         f"{self.exchange}.notifications"):
                await channel.exchange_delete(name)
        self._declared_queues.clear()
