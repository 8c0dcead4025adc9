"""`openstack network agent list/show/set/delete` against the all-in-one's network agents."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.functional.network.conftest import NetCloud
from tests.support.cloud import CloudProcess
from tests.support.openstack import run_script, script

AGENT_TYPE = "Stratus no-op agent"


def ours(rows: list[dict[str, Any]]) -> dict[str, Any]:
    mine = [r for r in rows if r["Agent Type"] == AGENT_TYPE]
    assert len(mine) == 1, rows
    return mine[0]


def test_admin_sees_the_hosts_agent_alive_and_disables_and_describes_it(
        net_cloud: NetCloud) -> None:
    c = net_cloud
    (rows,) = run_script(c.cloud, ["network agent list -f json"], cloud_name="admin",
                         clouds_yaml=c.clouds_yaml)
    row = ours(rows)
    assert row["Host"] == socket.gethostname() and row["Alive"] is True
    assert row["Binary"] == "stratus-network-agent"
    agent_id = row["ID"]
    try:
        docs = run_script(c.cloud, [
            f"network agent set --disable --description parked-for-maintenance {agent_id}",
            f"network agent show {agent_id} -f json",
            f"network agent list --host {socket.gethostname()} -f json",
            "network agent list --host no-such-host -f json",
        ], cloud_name="admin", clouds_yaml=c.clouds_yaml)
    finally:
        run_script(c.cloud, [f"network agent set --enable {agent_id}"],
                   cloud_name="admin", clouds_yaml=c.clouds_yaml)
    shown, on_host, elsewhere = docs
    assert shown["admin_state_up"] is False and shown["alive"] is True
    assert shown["description"] == "parked-for-maintenance"
    assert shown["configuration"]["dataplane"] == "noop"
    assert ours(on_host)["ID"] == agent_id and ours(on_host)["State"] is False
    assert elsewhere == []


def test_a_member_sees_no_agents(net_cloud: NetCloud) -> None:
    c = net_cloud
    (rows,) = run_script(c.cloud, ["network agent list -f json"], cloud_name="admin",
                         clouds_yaml=c.clouds_yaml)
    agent_id = ours(rows)["ID"]
    out = c.cli(c.alice, ["network agent list -f json", f"network agent show {agent_id}",
                          f"network agent delete {agent_id}"])
    assert out.docs == [[]]
    assert "could not be found" in out.errors and "Failed to delete" in out.errors, out.errors
    (rows,) = run_script(c.cloud, ["network agent list -f json"], cloud_name="admin",
                         clouds_yaml=c.clouds_yaml)
    assert ours(rows)["ID"] == agent_id


def poll(check: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"never saw {what}")


def test_a_deleted_agent_comes_back_and_a_stopped_one_is_dead(tmp_path: Path) -> None:
    """Agents report every 0.3 s and count as dead 2 s after their last report."""
    env = {"STRATUS_NETWORK__REPORT_INTERVAL": "0.3", "STRATUS_NETWORK__AGENT_DOWN_TIME": "2"}
    cloud = CloudProcess(tmp_path / "data", env=env)

    def agents() -> list[dict[str, Any]]:
        (rows,) = run_script(cloud, ["network agent list -f json"])
        return [r for r in rows if r["Agent Type"] == AGENT_TYPE]

    with cloud:
        (first,) = agents()
        assert first["Alive"] is True
        run_script(cloud, [f"network agent delete {first['ID']}"])
        # Gone; its next report (the agent still runs) registers it again, under a new id.
        again = poll(lambda: [a for a in agents() if a["ID"] != first["ID"]],
                     "the deleted agent register again")
        assert [a["ID"] for a in agents()] == [again[0]["ID"]]
        assert again[0]["Host"] == first["Host"] and again[0]["Alive"] is True
        shown = run_script(cloud, [f"network agent show {again[0]['ID']} -f json"])[0]

    # The same cloud without its agent: the row stays, the heartbeats stop.
    cloud.env["STRATUS_NETWORK__EMBEDDED_AGENT"] = "false"
    with cloud:
        dead = poll(lambda: [a for a in agents() if a["Alive"] is False],
                    "the stopped agent dead")
        assert [a["ID"] for a in dead] == [again[0]["ID"]]
        out = script(cloud, ["network agent list --long -f json",
                             f"network agent show {again[0]['ID']} -f json"])
        assert not out.errors, out.errors
        assert [a["ID"] for a in out.docs[0]] == [again[0]["ID"]]
        assert out.docs[1]["alive"] is False
        assert out.docs[1]["last_heartbeat_at"] >= shown["last_heartbeat_at"]

    # Back with its agent: alive again, same row, a new start.
    del cloud.env["STRATUS_NETWORK__EMBEDDED_AGENT"]
    with cloud:
        back = poll(lambda: [a for a in agents() if a["Alive"] is True], "the agent back")
        assert [a["ID"] for a in back] == [again[0]["ID"]]
        restarted = run_script(cloud, [f"network agent show {again[0]['ID']} -f json"])[0]
        assert restarted["started_at"] > shown["started_at"]
        assert restarted["created_at"] == shown["created_at"]
