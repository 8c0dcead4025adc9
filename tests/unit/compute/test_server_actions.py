"""Every lifecycle action through the API, with the states users see."""

from __future__ import annotations

import asyncio

import pytest

from stratus.compute.states import PowerState
from tests.unit.compute.conftest import Cloud
from tests.unit.compute.schema_check import check


async def test_stop_start_reboot_walk_the_table(cloud: Cloud) -> None:
    async with cloud.client() as c:
        s = await cloud.create(c)
        assert s["OS-EXT-STS:power_state"] == PowerState.RUNNING
        assert (await cloud.action(c, s["id"], "os-stop")).status_code == 202
        s = await cloud.wait(c, s["id"], "SHUTOFF")
        assert s["OS-EXT-STS:vm_state"] == "stopped"
        assert s["OS-EXT-STS:power_state"] == PowerState.SHUTDOWN
        assert (await cloud.action(c, s["id"], "os-start")).status_code == 202
        await cloud.wait(c, s["id"], "ACTIVE")
        for kind in ("SOFT", "HARD"):
            assert (await cloud.action(c, s["id"], "reboot", {"type": kind})).status_code == 202
            await cloud.wait(c, s["id"], "ACTIVE")


async def test_action_in_wrong_state_is_409_naming_the_state(cloud: Cloud) -> None:
    async with cloud.client() as c:
        s = await cloud.create(c)
        resp = await cloud.action(c, s["id"], "os-start")
        assert resp.status_code == 409
        assert "vm_state active" in resp.json()["conflictingRequest"]["message"]
        resp = await cloud.action(c, s["id"], "unpause")
        assert resp.status_code == 409


async def test_pause_suspend_resume(cloud: Cloud) -> None:
    async with cloud.client() as c:
        s = await cloud.create(c)
        await cloud.action(c, s["id"], "pause")
        s = await cloud.wait(c, s["id"], "PAUSED")
        assert s["OS-EXT-STS:power_state"] == PowerState.PAUSED
        await cloud.action(c, s["id"], "unpause")
        await cloud.wait(c, s["id"], "ACTIVE")
        await cloud.action(c, s["id"], "suspend")
        s = await cloud.wait(c, s["id"], "SUSPENDED")
        assert s["OS-EXT-STS:power_state"] == PowerState.SUSPENDED
        await cloud.action(c, s["id"], "resume")
        await cloud.wait(c, s["id"], "ACTIVE")


async def test_lock_refuses_actions_for_non_admin(cloud: Cloud) -> None:
    async with cloud.client() as c, cloud.client("admin-p1") as admin:
        s = await cloud.create(c)
        assert (await cloud.action(c, s["id"], "lock", {"locked_reason": "maint"})
                ).status_code == 202
        shown = (await c.get(f"/servers/{s['id']}")).json()["server"]
        assert shown["locked"] is True and shown["locked_reason"] == "maint"
        resp = await cloud.action(c, s["id"], "os-stop")
        assert resp.status_code == 409 and "locked" in resp.text
        assert (await c.delete(f"/servers/{s['id']}")).status_code == 409
        assert (await cloud.action(admin, s["id"], "os-stop")).status_code == 202
        await cloud.wait(c, s["id"], "SHUTOFF")
        assert (await cloud.action(c, s["id"], "unlock")).status_code == 202
        assert (await cloud.action(c, s["id"], "os-start")).status_code == 202


async def test_snapshot_walks_image_states_and_uploads(cloud: Cloud) -> None:
    seen: list[str | None] = []
    async with cloud.client() as c:
        s = await cloud.create(c)
        driver = cloud.driver()
        driver.latency["snapshot"] = 0.1
        resp = await cloud.action(c, s["id"], "createImage", {"name": "snap"})
        assert resp.status_code == 202
        image_id = resp.json()["image_id"]
        for _ in range(100):
            body = (await c.get(f"/servers/{s['id']}")).json()["server"]
            if not seen or seen[-1] != body["OS-EXT-STS:task_state"]:
                seen.append(body["OS-EXT-STS:task_state"])
            if body["OS-EXT-STS:task_state"] is None and len(seen) > 1:
                break
            await asyncio.sleep(0.01)
        assert seen[-1] is None
        assert set(seen) <= {"image_snapshot_pending", "image_snapshot",
                             "image_pending_upload", "image_uploading", None}
        assert "image_uploading" in seen
        assert cloud.images.images[image_id]["status"] == "active"
        assert cloud.images.data[image_id]


async def test_failed_snapshot_deletes_image_and_records_fault(cloud: Cloud) -> None:
    async with cloud.client() as c, cloud.client("admin-p1") as admin:
        s = await cloud.create(c)
        cloud.driver().fail_next("snapshot")
        resp = await cloud.action(c, s["id"], "createImage", {"name": "snap"})
        image_id = resp.json()["image_id"]
        s = await cloud.wait(c, s["id"], "ACTIVE")
        assert image_id not in cloud.images.images
        actions = (await admin.get(f"/servers/{s['id']}/os-instance-actions")).json()
        snap = next(a for a in actions["instanceActions"] if a["action"] == "createImage")
        assert snap["message"] == "Error"
        detail = (await admin.get(
            f"/servers/{s['id']}/os-instance-actions/{snap['request_id']}")).json()
        check("servers.show_instance_action", "2.96", 200, detail)
        assert detail["instanceAction"]["events"][0]["result"] == "Error"


async def test_resize_confirm_and_revert(cloud: Cloud) -> None:
    async with cloud.client() as c:
        s = await cloud.create(c)
        assert (await cloud.action(c, s["id"], "resize", {"flavorRef": "2"})).status_code == 202
        s = await cloud.wait(c, s["id"], "VERIFY_RESIZE")
        assert s["flavor"]["original_name"] == "m1.small"
        assert (await cloud.action(c, s["id"], "confirmResize")).status_code == 204
        s = await cloud.wait(c, s["id"], "ACTIVE")
        assert (await cloud.action(c, s["id"], "resize", {"flavorRef": "3"})).status_code == 202
        await cloud.wait(c, s["id"], "VERIFY_RESIZE")
        assert (await cloud.action(c, s["id"], "revertResize")).status_code == 202
        s = await cloud.wait(c, s["id"], "ACTIVE")
        assert s["flavor"]["original_name"] == "m1.small"
        limits = (await c.get("/limits")).json()["limits"]["absolute"]
        assert limits["totalRAMUsed"] == 128


async def test_resize_of_stopped_server_stays_stopped(cloud: Cloud) -> None:
    async with cloud.client() as c:
        s = await cloud.create(c)
        await cloud.action(c, s["id"], "os-stop")
        await cloud.wait(c, s["id"], "SHUTOFF")
        await cloud.action(c, s["id"], "resize", {"flavorRef": "2"})
        await cloud.wait(c, s["id"], "VERIFY_RESIZE")
        await cloud.action(c, s["id"], "confirmResize")
        await cloud.wait(c, s["id"], "SHUTOFF")


async def test_cold_and_live_migration_move_between_hosts(two_hosts: Cloud) -> None:
    cloud = two_hosts
    async with cloud.client("admin-p1") as c:
        s = await cloud.create(c)
        first = s["OS-EXT-SRV-ATTR:host"]
        await cloud.action(c, s["id"], "migrate")
        s = await cloud.wait(c, s["id"], "VERIFY_RESIZE")
        assert s["OS-EXT-SRV-ATTR:host"] != first
        await cloud.action(c, s["id"], "confirmResize")
        s = await cloud.wait(c, s["id"], "ACTIVE")
        second = s["OS-EXT-SRV-ATTR:host"]
        assert s["id"] in cloud.driver(second).guests
        assert s["id"] not in cloud.driver(first).guests
        resp = await cloud.action(c, s["id"], "os-migrateLive",
                                  {"host": None, "block_migration": "auto"})
        assert resp.status_code == 202
        s = await cloud.wait(c, s["id"], "ACTIVE")
        assert s["OS-EXT-SRV-ATTR:host"] == first
        migs = (await c.get("/os-migrations")).json()
        check("migrations.list_migrations", "2.96", 200, migs)
        assert {m["status"] for m in migs["migrations"]} == {"confirmed", "completed"}


async def test_migrate_with_one_host_explains_no_valid_host(cloud: Cloud) -> None:
    async with cloud.client("admin-p1") as c:
        s = await cloud.create(c)
        await cloud.action(c, s["id"], "migrate")
        s = await cloud.wait(c, s["id"], "ACTIVE")
        actions = (await c.get(f"/servers/{s['id']}/os-instance-actions")).json()
        assert actions["instanceActions"][0]["message"] == "Error"


async def test_shelve_offload_unshelve(cloud: Cloud) -> None:
    async with cloud.client() as c:
        s = await cloud.create(c)
        assert (await cloud.action(c, s["id"], "shelve")).status_code == 202
        s = await cloud.wait(c, s["id"], "SHELVED_OFFLOADED")
        assert s["id"] not in cloud.driver().guests
        hv = (await cloud.client("admin-p1").get("/os-hypervisors/detail",
                                                 headers={"OpenStack-API-Version":
                                                          "compute 2.87"})).json()
        assert hv["hypervisors"][0]["running_vms"] == 0
        assert (await cloud.action(c, s["id"], "unshelve")).status_code == 202
        await cloud.wait(c, s["id"], "ACTIVE")
        assert s["id"] in cloud.driver().guests


async def test_rescue_unrescue_rebuild(cloud: Cloud) -> None:
    async with cloud.client() as c:
        s = await cloud.create(c)
        resp = await cloud.action(c, s["id"], "rescue", {})
        assert resp.status_code == 200 and "adminPass" in resp.json()
        await cloud.wait(c, s["id"], "RESCUE")
        await cloud.action(c, s["id"], "unrescue")
        await cloud.wait(c, s["id"], "ACTIVE")
        other = cloud.images.add(name="other")
        resp = await cloud.action(c, s["id"], "rebuild", {"imageRef": other})
        assert resp.status_code == 202, resp.text
        check("servers.rebuild_server_with_admin_pass", "2.96", 202, resp.json())
        s = await cloud.wait(c, s["id"], "ACTIVE")
        assert s["image"]["id"] == other


async def test_console_output(cloud: Cloud) -> None:
    async with cloud.client() as c:
        s = await cloud.create(c, name="web")
        resp = await cloud.action(c, s["id"], "os-getConsoleOutput", {"length": 1})
        assert resp.status_code == 200
        check("servers.get_console_output", "2.96", 200, resp.json())
        assert len(resp.json()["output"].split("\n")) == 1


async def test_evacuate_needs_the_source_down(two_hosts: Cloud) -> None:
    cloud = two_hosts
    async with cloud.client("admin-p1") as c:
        s = await cloud.create(c)
        source = s["OS-EXT-SRV-ATTR:host"]
        resp = await cloud.action(c, s["id"], "evacuate", {})
        assert resp.status_code == 409
        services = (await c.get("/os-services?binary=nova-compute&host=" + source)).json()
        svc = services["services"][0]
        resp = await c.put(f"/os-services/{svc['id']}", json={"forced_down": True})
        assert resp.status_code == 200, resp.text
        check("services.update_service", "2.96", 200, resp.json())
        assert (await cloud.action(c, s["id"], "evacuate", {})).status_code == 200
        s = await cloud.wait(c, s["id"], "ACTIVE")
        assert s["OS-EXT-SRV-ATTR:host"] != source


async def test_failed_spawn_is_rescheduled_to_another_host(two_hosts: Cloud) -> None:
    cloud = two_hosts
    flaky = cloud.driver("vm")
    flaky.fail_next("spawn")
    async with cloud.client("admin-p1") as c:
        for name in ("a", "b"):
            s = await cloud.create(c, name=name, wait=False)
            s = await cloud.wait(c, s["id"], "ACTIVE")
    assert flaky._failures["spawn"] == 0  # the failure happened, and was survived
    assert ("spawn", s["id"]) in flaky.calls or s["id"] in cloud.driver("vm-2").guests


async def test_build_failing_everywhere_ends_in_error_with_fault(cloud: Cloud) -> None:
    cloud.driver().fail_next("spawn", 5)
    async with cloud.client() as c:
        s = await cloud.create(c, wait=False)
        s = await cloud.wait(c, s["id"], "ERROR")
        assert s["OS-EXT-STS:task_state"] is None
        assert "injected failure" in s["fault"]["message"]
        check("servers.get_server", "2.96", 200, {"server": s})


@pytest.mark.parametrize("version", ["2.1", "2.26", "2.47", "2.73", "2.96"])
async def test_show_and_list_match_tempest_schemas(cloud: Cloud, version: str) -> None:
    async with cloud.client(version=version) as c, cloud.client("admin-p1", version) as a:
        s = await cloud.create(c, wait=False, **({"networks": "none"} if version >= "2.37"
                                                  else {}))
        await cloud.wait(c, s["id"], "ACTIVE")
        for client in (c, a):
            resp = await client.get(f"/servers/{s['id']}")
            check("servers.get_server", version, resp.status_code, resp.json())
            resp = await client.get("/servers/detail")
            check("servers.list_servers_detail", version, resp.status_code, resp.json())
            resp = await client.get("/servers")
            check("servers.list_servers", version, resp.status_code, resp.json())
        resp = await c.put(f"/servers/{s['id']}", json={"server": {"name": "renamed"}})
        check("servers.update_server", version, resp.status_code, resp.json())


async def test_progress_shows_only_while_a_server_moves(cloud: Cloud) -> None:
    async with cloud.client() as c:
        s = await cloud.create(c)
        assert "progress" in s  # ACTIVE
        await cloud.action(c, s["id"], "os-stop")
        stopped = await cloud.wait(c, s["id"], "SHUTOFF")
        assert "progress" not in stopped
        updated = (await c.put(f"/servers/{s['id']}", json={"server": {"name": "x"}})).json()
        assert "progress" not in updated["server"]


async def test_deleting_a_server_being_deleted_is_accepted(cloud: Cloud) -> None:
    cloud.driver().latency["destroy"] = 0.5  # the first delete is still running
    async with cloud.client() as c:
        s = await cloud.create(c)
        assert (await c.delete(f"/servers/{s['id']}")).status_code == 204
        again = await c.get(f"/servers/{s['id']}")
        assert again.json()["server"]["OS-EXT-STS:task_state"] == "deleting"
        assert (await c.delete(f"/servers/{s['id']}")).status_code == 204
        await cloud.wait(c, s["id"], "DELETED")
        assert (await c.delete(f"/servers/{s['id']}")).status_code == 404


async def test_tenant_id_without_all_tenants_lists_only_the_callers_servers(
        cloud: Cloud) -> None:
    async with cloud.client("member-p2") as other, cloud.client("admin-p1") as admin:
        theirs = await cloud.create(other, name="theirs")
        mine = await cloud.create(admin, name="mine")
        p2 = "project-2"
        names = [s["name"] for s in (await admin.get(
            "/servers", params={"tenant_id": p2})).json()["servers"]]
        assert names == ["mine"]  # as Nova (lp#1185290): tenant_id needs all_tenants
        names = [s["name"] for s in (await admin.get(
            "/servers", params={"tenant_id": p2, "all_tenants": "1"})).json()["servers"]]
        assert names == ["theirs"]
        for c, s in ((other, theirs), (admin, mine)):
            await c.delete(f"/servers/{s['id']}")
