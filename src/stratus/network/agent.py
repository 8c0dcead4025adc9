"""The network agent of one host. Only the no-op dataplane exists so far.

The agent listens on ``network-agent.<host>`` (and the topic's fanouts),
receives the desired state described in :mod:`stratus.network.messages` and
reports back. The no-op dataplane wires nothing: it marks the ports bound to
its host (and the ports of routers it is told about) ACTIVE, which is what
compute waits for. The Linux dataplane will implement the same methods.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

from stratus.bus import Bus
from stratus.bus.base import Listener, Target
from stratus.network import messages as msg

log = logging.getLogger("stratus.network.agent")


class NoopAgent:
    """Bus endpoint: each public method is a message from the network service."""

    def __init__(self, bus: Bus, host: str) -> None:
        self.bus = bus
        self.host = host
        self.ports: dict[str, dict[str, Any]] = {}
        self.routers: dict[str, dict[str, Any]] = {}
        self.subnets: dict[str, dict[str, Any]] = {}
        self.groups: dict[str, dict[str, Any]] = {}

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
    """Start/stop an agent on the bus; used by the network-agent service and embedded mode."""

    def __init__(self, bus: Bus, host: str) -> None:
        self.agent = NoopAgent(bus, host or socket.gethostname())
        self.bus = bus
        self.listener: Listener | None = None

    async def start(self) -> None:
        self.listener = await self.bus.serve(Target(msg.AGENT_TOPIC, self.agent.host),
                                             self.agent)

    async def stop(self) -> None:
        if self.listener is not None:
            await self.listener.stop()
            self.listener = None
