"""The bus: RPC and notifications between the processes of one service.

Every transport implements :class:`Bus`; one contract test suite
(``tests/integration/test_bus_contract.py``) runs against each of them.

Semantics every transport honours:

* A **target** is a topic plus an optional server (``Target("compute",
  "node1")``). A listener started with ``serve(Target("compute", "node1"),
  endpoint)`` receives messages sent to ``compute`` (shared: exactly one of the
  topic's listeners gets each one), to ``compute.node1`` (direct) and fanouts
  to ``compute`` (every listener gets one copy).
* ``endpoint`` is any object; a message ``method`` names one of its public
  ``async`` methods, called with the message's keyword arguments. Unknown or
  private methods are answered with a ``RemoteError("NoSuchMethod", ...)``.
* **Ordering per target**: messages from one sender to one target are
  dispatched to the handler in the order they were sent. Handlers run
  concurrently (a slow handler does not hold up the next message).
* ``call`` waits at most ``timeout`` seconds (the bus default otherwise) and
  raises :class:`stratus.errors.RPCTimeout` naming the target and method when
  no reply comes, including when nobody listens.
* A handler that raises makes ``call`` raise
  :class:`stratus.errors.RemoteError` carrying the exception's class name and
  message, and its HTTP status when it was a ``StratusError``. ``cast`` errors
  are logged by the listener.
* Payloads are JSON (dicts, lists, str, int, float, bool, None); anything else
  is rejected by the sender with ``TypeError``. Messages carry a version number
  ``v``; receivers ignore fields they do not know.
* ``notify(event_type, payload)`` publishes a notification to every
  ``subscribe`` handler whose pattern matches (``fnmatch`` style, e.g.
  ``instance.*``).
* Every call and handled message is counted and timed into the process's
  :class:`stratus.api.metrics.Metrics` (``stratus_rpc_*`` series).
"""

from __future__ import annotations

import abc
import fnmatch
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

MESSAGE_VERSION = 1

NotificationHandler = Callable[[str, dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class Target:
    topic: str
    server: str | None = None

    def __str__(self) -> str:
        return f"{self.topic}.{self.server}" if self.server else self.topic


class Listener(abc.ABC):
    """A running ``serve`` or ``subscribe``; ``stop`` ends delivery to it."""

    @abc.abstractmethod
    async def stop(self) -> None: ...


class Bus(abc.ABC):
    @abc.abstractmethod
    async def start(self) -> None:
        """Connect (AMQP) or get ready (memory). Idempotent."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Stop every listener and disconnect. Pending calls raise RPCTimeout."""

    @abc.abstractmethod
    async def call(self, target: Target, method: str, *, timeout: float | None = None,
                   **kwargs: Any) -> Any:
        """Send and wait for the handler's return value."""

    @abc.abstractmethod
    async def cast(self, target: Target, method: str, **kwargs: Any) -> None:
        """Send to one listener of ``target``; do not wait."""

    @abc.abstractmethod
    async def fanout(self, topic: str, method: str, **kwargs: Any) -> None:
        """Send to every listener of ``topic``; do not wait."""

    @abc.abstractmethod
    async def notify(self, event_type: str, payload: dict[str, Any], *,
                     publisher: str = "") -> None:
        """Publish a notification such as ``instance.create.end``."""

    @abc.abstractmethod
    async def serve(self, target: Target, endpoint: object) -> Listener:
        """Start dispatching messages for ``target`` to ``endpoint``'s methods."""

    @abc.abstractmethod
    async def subscribe(self, pattern: str, handler: NotificationHandler) -> Listener:
        """Call ``handler(event_type, payload)`` for matching notifications."""


def matches(pattern: str, event_type: str) -> bool:
    return fnmatch.fnmatchcase(event_type, pattern)
