"""/v2.0/agents: the per-host agents that report to the network service (Neutron's agent ext)."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from stratus.network.agent import AgentRunner
from stratus.network.service import NetworkService
from stratus.runtime import Runtime
from tests.unit.network.harness import Net, fault, network_service

TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")


async def only_agent(client: httpx.AsyncClient, query: str = "") -> dict[str, Any]:
    r = await client.get(f"/v2.0/agents{query}")
    assert r.status_code == 200, r.text
    agents = r.json()["agents"]
    assert len(agents) == 1, agents
    return dict(agents[0])


def runner(runtime: Runtime) -> AgentRunner:
    service = runtime.services["network"]
    assert isinstance(service, NetworkService)
    return service.agents[0]


@pytest.fixture
async def quick(tmp_path: Path) -> AsyncIterator[tuple[Net, Runtime]]:
    """Agents count as dead 0.3 s after their last report; they report only when told to."""
    async with network_service(tmp_path, agent_down_time=0.3, report_interval=3600) as pair:
        yield pair


async def test_the_embedded_agent_registers_itself_alive_on_its_host(
        admin: httpx.AsyncClient) -> None:
    agent = await only_agent(admin)
    assert agent["agent_type"] == "Stratus no-op agent"
    assert agent["binary"] == "stratus-network-agent"
    assert agent["host"] == socket.gethostname() and agent["topic"] == "network-agent"
    assert agent["alive"] is True and agent["admin_state_up"] is True
    assert agent["description"] is None and agent["availability_zone"] is None
    assert agent["configurations"]["dataplane"] == "noop"
    for key in ("created_at", "started_at", "heartbeat_timestamp"):
        assert TIME.match(agent[key]), agent
    r = await admin.get(f"/v2.0/agents/{agent['id']}")
    assert r.status_code == 200 and r.json()["agent"] == agent
    r = await admin.get("/v2.0/extensions/agent")
    assert r.status_code == 200 and r.json()["extension"]["alias"] == "agent"


async def test_non_admins_list_no_agents_and_cannot_see_change_or_delete_one(
        admin: httpx.AsyncClient, alice: httpx.AsyncClient) -> None:
    agent = await only_agent(admin)
    r = await alice.get("/v2.0/agents")
    assert r.status_code == 200 and r.json() == {"agents": []}
    r = await alice.get("/v2.0/agents?alive=true&fields=id")
    assert r.status_code == 200 and r.json() == {"agents": []}
    url = f"/v2.0/agents/{agent['id']}"
    r = await alice.get(url)
    assert r.status_code == 404 and fault(r) == "AgentNotFound"
    r = await alice.put(url, json={"agent": {"admin_state_up": False}})
    assert r.status_code == 404 and fault(r) == "AgentNotFound"
    r = await alice.delete(url)
    assert r.status_code == 404 and fault(r) == "AgentNotFound"
    assert (await only_agent(admin))["admin_state_up"] is True


async def test_admins_disable_and_describe_an_agent_and_change_nothing_else(
        admin: httpx.AsyncClient) -> None:
    agent = await only_agent(admin)
    url = f"/v2.0/agents/{agent['id']}"
    r = await admin.put(url, json={"agent": {"admin_state_up": False,
                                             "description": "rack 4"}})
    assert r.status_code == 200, r.text
    assert r.json()["agent"]["admin_state_up"] is False
    assert r.json()["agent"]["description"] == "rack 4"
    assert (await admin.get(url)).json()["agent"]["admin_state_up"] is False
    r = await admin.put(url, json={"agent": {"description": None, "admin_state_up": "true"}})
    assert r.status_code == 200 and r.json()["agent"]["description"] is None
    assert r.json()["agent"]["admin_state_up"] is True

    for body, kind in [
        ({"agent": {"host": "elsewhere"}}, "HTTPBadRequest"),
        ({"agent": {"alive": False}}, "HTTPBadRequest"),
        ({"agent": {"colour": "red"}}, "HTTPBadRequest"),
        ({"agent": {"admin_state_up": "maybe"}}, "InvalidInput"),
        ({"agent": {"description": "x" * 256}}, "InvalidInput"),
        ({"agent": ["admin_state_up"]}, None),
        ({"network": {}}, None),
    ]:
        r = await admin.put(url, json=body)
        assert r.status_code == 400, (body, r.text)
        if kind:
            assert fault(r) == kind, (body, r.text)
    assert (await admin.get(url)).json()["agent"]["host"] == agent["host"]
    r = await admin.put("/v2.0/agents/no-such-agent", json={"agent": {"description": "x"}})
    assert r.status_code == 404 and fault(r) == "AgentNotFound"
    r = await admin.post("/v2.0/agents", json={"agent": {"host": "h"}})
    assert r.status_code == 405 and "NeutronError" in r.json()


async def test_agents_filter_on_their_attributes_and_select_fields(
        admin: httpx.AsyncClient) -> None:
    agent = await only_agent(admin)
    assert (await only_agent(admin, "?agent_type=Stratus no-op agent"))["id"] == agent["id"]
    assert (await only_agent(admin, f"?host={agent['host']}&alive=True"))["id"] == agent["id"]
    assert (await only_agent(admin, "?admin_state_up=true&binary=stratus-network-agent")
            )["id"] == agent["id"]
    for query in ("?alive=false", "?host=nowhere", "?agent_type=Open vSwitch agent"):
        r = await admin.get(f"/v2.0/agents{query}")
        assert r.status_code == 200 and r.json()["agents"] == [], query
    r = await admin.get("/v2.0/agents?alive=perhaps")
    assert r.status_code == 400 and fault(r) == "InvalidInput"
    assert await only_agent(admin, "?fields=id&fields=alive") == {
        "id": agent["id"], "alive": True}
    r = await admin.get(f"/v2.0/agents/{agent['id']}?fields=host")
    assert r.json() == {"agent": {"host": agent["host"]}}


async def test_a_deleted_agent_registers_again_at_its_next_report(
        quick: tuple[Net, Runtime]) -> None:
    net, runtime = quick
    async with net.client("admin") as admin:
        old = await only_agent(admin)
        await admin.put(f"/v2.0/agents/{old['id']}", json={"agent": {"admin_state_up": False}})
        r = await admin.delete(f"/v2.0/agents/{old['id']}")
        assert r.status_code == 204
        assert (await admin.get(f"/v2.0/agents/{old['id']}")).status_code == 404
        assert (await admin.get("/v2.0/agents")).json()["agents"] == []
        await runner(runtime).report_state()
        new = await only_agent(admin)
    assert new["id"] != old["id"] and new["host"] == old["host"]
    assert new["admin_state_up"] is True and new["alive"] is True


async def test_an_agent_that_stops_reporting_is_dead_and_resyncs_when_it_reports_again(
        quick: tuple[Net, Runtime], monkeypatch: pytest.MonkeyPatch) -> None:
    net, runtime = quick
    agent = runner(runtime)
    resyncs: list[str] = []

    async def resync() -> None:
        resyncs.append(agent.agent.host)
    monkeypatch.setattr(agent.agent, "resync", resync)
    async with net.client("admin") as admin:
        first = await only_agent(admin)
        await admin.put(f"/v2.0/agents/{first['id']}", json={"agent": {
            "admin_state_up": False, "description": "kept"}})
        while (await only_agent(admin))["alive"]:
            await asyncio.sleep(0.05)
        assert (await only_agent(admin, "?alive=false"))["id"] == first["id"]
        assert resyncs == []
        await agent.report_state()
        again = await only_agent(admin)
    assert again["alive"] is True and again["id"] == first["id"]
    assert resyncs == [first["host"]]
    # A report refreshes the heartbeat, not what the admin set, nor started_at (no restart).
    assert (again["admin_state_up"], again["description"]) == (False, "kept")
    assert again["started_at"] == first["started_at"]
