"""The message bus: see :mod:`stratus.bus.base` for the contract."""

from __future__ import annotations

from stratus.api.metrics import Metrics
from stratus.bus.base import Bus, Listener, Target


def connect(url: str, *, metrics: Metrics | None = None, default_timeout: float = 60.0) -> Bus:
    """The transport named by ``url``: ``memory://`` or ``amqp://user:pw@host:port/vhost``."""
    metrics = metrics or Metrics()
    if url.startswith("memory://"):
        from stratus.bus.memory import MemoryBus

        return MemoryBus(metrics=metrics, default_timeout=default_timeout)
    if url.startswith(("amqp://", "amqps://")):
        from stratus.bus.amqp import AmqpBus

        return AmqpBus(url, metrics=metrics, default_timeout=default_timeout)
    raise ValueError(f"unsupported bus URL {url!r}; use memory:// or amqp://")


__all__ = ["Bus", "Listener", "Target", "connect"]
