"""Typed clients for the compute roles' bus APIs (what each role can be asked).

compute-api → conductor (``compute-conductor``) → scheduler
(``compute-scheduler``) → agent (``compute``, server = host). Messages are
plain JSON; every method takes the request id so the instance-action events
of one request line up across roles.
"""

from __future__ import annotations

from typing import Any

from stratus.bus import Bus, Target

CONDUCTOR = "compute-conductor"
SCHEDULER = "compute-scheduler"
AGENT = "compute"


class SchedulerAPI:
    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    async def select_destinations(self, spec: dict[str, Any], instance_uuids: list[str],
                                  alternates: int = 2) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self.bus.call(
            Target(SCHEDULER), "select_destinations", spec=spec, instance_uuids=instance_uuids,
            alternates=alternates)
        return result

    async def claim_on(self, host: str, spec: dict[str, Any], instance_uuid: str,
                       consumer: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.bus.call(
            Target(SCHEDULER), "claim_on", host=host, spec=spec, instance_uuid=instance_uuid,
            consumer=consumer)
        return result

    async def release(self, consumer: str, host: str | None = None) -> None:
        await self.bus.call(Target(SCHEDULER), "release", consumer=consumer, host=host)

    async def move(self, old_consumer: str, new_consumer: str, host: str | None = None) -> None:
        await self.bus.call(Target(SCHEDULER), "move", old_consumer=old_consumer,
                            new_consumer=new_consumer, host=host)


class ConductorAPI:
    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    async def cast(self, method: str, **kwargs: Any) -> None:
        await self.bus.cast(Target(CONDUCTOR), method, **kwargs)


class AgentAPI:
    """Calls to the agent of one host. ``call`` waits (conductor flows); ``cast`` doesn't."""

    def __init__(self, bus: Bus, timeout: float | None = None,
                 long_timeout: float | None = None) -> None:
        self.bus = bus
        self.timeout = timeout
        self.long_timeout = long_timeout or timeout

    async def call(self, host: str, method: str, **kwargs: Any) -> Any:
        return await self.bus.call(Target(AGENT, host), method, timeout=self.timeout, **kwargs)

    async def long_call(self, host: str, method: str, **kwargs: Any) -> Any:
        """A call whose work takes as long as it takes (image fetch, guest move)."""
        return await self.bus.call(Target(AGENT, host), method, timeout=self.long_timeout,
                                   **kwargs)

    async def cast(self, host: str, method: str, **kwargs: Any) -> None:
        await self.bus.cast(Target(AGENT, host), method, **kwargs)
