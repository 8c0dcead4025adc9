"""The network agent of one host. Only the no-op dataplane exists so far.

The agent listens on ``network-agent.<host>`` (and the topic's fanouts),
receives the desired state described in :mod:`stratus.network.messages` and
reports back. The no-op dataplane wires nothing: it marks the ports bound to
its host (and the ports of routers it is told about) ACTIVE, which is what
compute waits for. The Linux dataplane will implement the same methods.

Every ``network.report_interval`` seconds the agent reports its state to the
server, which lists it under ``/v2.0/agents`` as a :data:`AGENT_TYPE` agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Any

from stratus.bus import Bus
from stratus.bus.base import Listener, Target
from stratus.network import messages as msg

log = logging.getLogger("stratus.network.agent")

# What `openstack network agent list` shows: it wires nothing, so it is no
# "Open vSwitch agent" or "Linux bridge agent".
AGENT_TYPE = "Stratus no-op agent"
BINARY = "stratus-network-agent"


class NoopAgent:
    """Bus endpoint: each public method is a message from the network service."""

    def __init__(self, bus: Bus, host: str) -> None:
        self.bus = bus
        self.host = host
        self.ports: dict[str, dict[str, Any]] = {}
        self.routers: dict[str, dict[str, Any]] = {}
        self.subnets: dict[str, dict[str, Any]] = {}
        self.groups: dict[str, dict[str, Any]] = {}

    def state(self, *, start_flag: bool) -> msg.AgentState:
        return msg.AgentState(
            agent_type=AGENT_TYPE, binary=BINARY, host=self.host, topic=msg.AGENT_TOPIC,
            configurations={"dataplane": "noop", "ports": len(self.ports),
                            "routers": len(self.routers), "subnets": len(self.subnets),
                            "security_groups": len(self.groups)},
            start_flag=start_flag)

    async def _report(self, port_id: str, status: str) -> None:
        await self.bus.call(Target(msg.SERVER_TOPIC), "report_port_status", port_id=port_id,
                            status=status, host=self.host)

    async def port_update(self, port: dict[str, Any], **_: Any) -> None:
        self.ports[port["id"]] = port
        await self._report(port["id"], "ACTIVE" if port.get("admin_state_up", True) else "DOWN")

    async def port_delete(self, port_id: str, **_: Any) -> None:
        self.ports.pop(port_id, None)

    async def network_delete(self, network_id: str, **_: Any) -> None:
        self.subnets = {k: v for k, v in self.subnets.items() if v["network_id"] != network_id}

    async def subnet_update(self, subnet: dict[str, Any], **_: Any) -> None:
        self.subnets[subnet["subnet_id"]] = subnet

    async def subnet_delete(self, subnet_id: str, **_: Any) -> None:
        self.subnets.pop(subnet_id, None)

    async def router_update(self, router: dict[str, Any], **_: Any) -> None:
        self.routers[router["id"]] = router
        ifaces = list(router.get("interfaces", []))
        if router.get("gateway"):
            ifaces.append(router["gateway"])
        # A router's ports are wired (ACTIVE) even while the router is administratively
        # down, as in Neutron: the router stops routing, its ports stay plugged.
        for iface in ifaces:
            await self._report(iface["port_id"], "ACTIVE")

    async def router_delete(self, router_id: str, **_: Any) -> None:
        self.routers.pop(router_id, None)

    async def security_group_update(self, group: dict[str, Any], **_: Any) -> None:
        self.groups[group["id"]] = group

    async def resync(self) -> None:
        """Rebuild local state from the server (what an agent does at start)."""
        state = await self.bus.call(Target(msg.SERVER_TOPIC), "sync", host=self.host)
        for port in state.get("ports", []):
            await self.port_update(port)
        for router in state.get("routers", []):
            await self.router_update(router)


class AgentRunner:
    """Start/stop an agent on the bus and its state reports; used by the network-agent
    service and embedded mode."""

    def __init__(self, bus: Bus, host: str, report_interval: float = 30.0) -> None:
        self.agent = NoopAgent(bus, host or socket.gethostname())
        self.bus = bus
        self.report_interval = report_interval
        self.listener: Listener | None = None
        self._reporter: asyncio.Task[None] | None = None
        self._started = False  # the server has seen a report since this start

    async def start(self) -> None:
        self.listener = await self.bus.serve(Target(msg.AGENT_TOPIC, self.agent.host),
                                             self.agent)
        await self.report_state()
        self._reporter = asyncio.create_task(self._report_forever(),
                                             name=f"network-agent-report-{self.agent.host}")

    async def report_state(self) -> None:
        """One report, as Neutron's report_state: start_flag until the server took one."""
        state = self.agent.state(start_flag=not self._started)
        try:
            status = await self.bus.call(Target(msg.SERVER_TOPIC), "report_state",
                                         agent=msg.to_json(state),
                                         timeout=max(self.report_interval, 10.0))
        except Exception:  # the server may be down or not started yet; report again later
            log.warning("network agent %s could not report its state", self.agent.host,
                        exc_info=True)
            return
        self._started = True
        if status == msg.AGENT_REVIVED and not state.start_flag:
            # The server thought us dead and may have sent casts nobody heard.
            log.info("network agent %s revived; resyncing", self.agent.host)
            try:
                await self.agent.resync()
            except Exception:
                log.warning("network agent %s could not resync", self.agent.host,
                            exc_info=True)

    async def _report_forever(self) -> None:
        while True:
            await asyncio.sleep(self.report_interval)
            await self.report_state()

    async def stop(self) -> None:
        if self._reporter is not None:
            self._reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reporter
            self._reporter = None
        if self.listener is not None:
            await self.listener.stop()
            self.listener = None
