"""Flavors, keypairs, quotas, limits, groups, AZs, services, hypervisors,
usage, external events, metadata and tags: bodies match Tempest's schemas."""

from __future__ import annotations

import pytest

from tests.unit.compute.conftest import Cloud
from tests.unit.compute.schema_check import check

PUBLIC_KEY = ("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDx8nkQv/zgGgB4rMYmIf+6A4l6Rr+o/6lHBQdW5aVkU"
              "c6Q3A0r0QWr6KV4QwT7PJ1AJGgsa6pI0NQjcVS2Sz/kvBf5SG7ZHq6wh3xJvzWeQwqX5EQ6KfvY1jMtM"
              "ILEbQGWzGWT0qjnOJkpM0v/dlwLKQh+q3oAH0W8mODyDd5d5Q== test")


@pytest.mark.parametrize("version", ["2.1", "2.55", "2.61", "2.75", "2.96"])
async def test_flavor_bodies(cloud: Cloud, version: str) -> None:
    async with cloud.client("admin-p1", version) as c:
        check("flavors.list_flavors", version, 200, (await c.get("/flavors")).json())
        check("flavors.list_flavors_details", version, 200,
              (await c.get("/flavors/detail")).json())
        check("flavors.create_update_get_flavor_details", version, 200,
              (await c.get("/flavors/1")).json())
        resp = await c.post("/flavors", json={"flavor": {
            "name": f"custom-{version}", "ram": 96, "vcpus": 1, "disk": 1,
            "os-flavor-access:is_public": False}})
        check("flavors.create_update_get_flavor_details", version, resp.status_code,
              resp.json())
        fid = resp.json()["flavor"]["id"]
        resp = await c.post(f"/flavors/{fid}/os-extra_specs",
                            json={"extra_specs": {"hw:cpu_policy": "shared"}})
        check("flavors_extra_specs.set_get_flavor_extra_specs", version, resp.status_code,
              resp.json())
        resp = await c.post(f"/flavors/{fid}/action",
                            json={"addTenantAccess": {"tenant": "project-2"}})
        check("flavors_access.add_remove_list_flavor_access", version, resp.status_code,
              resp.json())
        async with cloud.client("member-p2", version) as p2, \
                cloud.client("member-p1", version) as p1:
            assert (await p2.get(f"/flavors/{fid}")).status_code == 200
            assert (await p1.get(f"/flavors/{fid}")).status_code == 404
        assert (await c.delete(f"/flavors/{fid}")).status_code == 202


async def test_flavor_paging_and_filters(cloud: Cloud) -> None:
    async with cloud.client() as c:
        page = (await c.get("/flavors?limit=2")).json()
        assert [f["id"] for f in page["flavors"]] == ["1", "2"]
        assert "marker=2" in page["flavors_links"][0]["href"]
        big = (await c.get("/flavors/detail?minRam=256")).json()["flavors"]
        assert {f["name"] for f in big} == {"m1.medium", "m1.large", "m1.xlarge"}


@pytest.mark.parametrize("version", ["2.1", "2.2", "2.10", "2.35", "2.96"])
async def test_keypairs_import_generate_and_per_user(cloud: Cloud, version: str) -> None:
    async with cloud.client("member-p1", version) as c, cloud.client("member-p2", version) as o:
        resp = await c.post("/os-keypairs", json={"keypair": {"name": "imp",
                                                              "public_key": PUBLIC_KEY}})
        check("keypairs.create_keypair", version, resp.status_code, resp.json())
        assert resp.json()["keypair"]["fingerprint"].count(":") == 15
        resp = await c.post("/os-keypairs", json={"keypair": {"name": "gen"}})
        if version >= "2.92":
            assert resp.status_code == 400
        else:
            assert "PRIVATE KEY" in resp.json()["keypair"]["private_key"]
        assert (await c.post("/os-keypairs", json={"keypair": {
            "name": "imp", "public_key": PUBLIC_KEY}})).status_code == 409
        check("keypairs.list_keypairs", version, 200, (await c.get("/os-keypairs")).json())
        check("keypairs.get_keypair", version, 200, (await c.get("/os-keypairs/imp")).json())
        assert (await o.get("/os-keypairs/imp")).status_code == 404
        resp = await c.delete("/os-keypairs/imp")
        check("keypairs.delete_keypair", version, resp.status_code, None)
        bad = await c.post("/os-keypairs", json={"keypair": {"name": "b", "public_key": "x"}})
        assert bad.status_code == 400


@pytest.mark.parametrize("version", ["2.1", "2.36", "2.57", "2.96"])
async def test_quotas_and_limits(cloud: Cloud, version: str) -> None:
    async with cloud.client("admin-p1", version) as a, cloud.client("member-p1", version) as m:
        check("quotas.get_quota_set", version, 200,
              (await m.get("/os-quota-sets/project-1")).json())
        check("quotas.get_quota_set", version, 200,
              (await m.get("/os-quota-sets/project-1/defaults")).json())
        check("quotas.get_quota_set_details", version, 200,
              (await m.get("/os-quota-sets/project-1/detail")).json())
        resp = await a.put("/os-quota-sets/project-1", json={"quota_set": {"instances": 3}})
        check("quotas.update_quota_set", version, resp.status_code, resp.json())
        assert (await m.put("/os-quota-sets/project-1",
                            json={"quota_set": {"instances": 99}})).status_code == 403
        check("limits.get_limit", version, 200, (await m.get("/limits")).json())
        assert (await m.get("/limits")).json()["limits"]["absolute"]["maxTotalInstances"] == 3
        resp = await a.delete("/os-quota-sets/project-1")
        check("quotas.delete_quota", version, resp.status_code, None)


@pytest.mark.parametrize("version", ["2.1", "2.13", "2.64", "2.96"])
async def test_server_groups(cloud: Cloud, version: str) -> None:
    body = ({"policy": "anti-affinity", "rules": {"max_server_per_host": 2}}
            if version >= "2.64" else {"policies": ["anti-affinity"]})
    async with cloud.client("member-p1", version) as c:
        resp = await c.post("/os-server-groups", json={"server_group": {"name": "g", **body}})
        check("server_groups.create_show_server_group", version, resp.status_code, resp.json())
        gid = resp.json()["server_group"]["id"]
        check("server_groups.list_server_groups", version, 200,
              (await c.get("/os-server-groups")).json())
        check("server_groups.create_show_server_group", version, 200,
              (await c.get(f"/os-server-groups/{gid}")).json())
        resp = await c.delete(f"/os-server-groups/{gid}")
        check("server_groups.delete_server_group", version, resp.status_code, None)
        bad = await c.post("/os-server-groups", json={"server_group": {"name": "g",
                                                                       "policy": "nope"}})
        assert bad.status_code == 400


@pytest.mark.parametrize("version", ["2.1", "2.11", "2.28", "2.53", "2.87"])
async def test_operator_apis(cloud: Cloud, version: str) -> None:
    async with cloud.client("admin-p1", version) as a, cloud.client("member-p1", version) as m:
        server = await cloud.create(m, wait=True, networks="none")
        check("availability_zone.list_availability_zone_list", version, 200,
              (await m.get("/os-availability-zone")).json())
        check("availability_zone.list_availability_zone_list_detail", version, 200,
              (await a.get("/os-availability-zone/detail")).json())
        check("services.list_services", version, 200, (await a.get("/os-services")).json())
        assert (await m.get("/os-services")).status_code == 403
        hv = (await a.get("/os-hypervisors/detail")).json()
        check("hypervisors.list_hypervisors_detail", version, 200, hv)
        hid = hv["hypervisors"][0]["id"]
        check("hypervisors.get_hypervisor", version, 200,
              (await a.get(f"/os-hypervisors/{hid}")).json())
        check("hypervisors.get_hypervisor_statistics", version, 200,
              (await a.get("/os-hypervisors/statistics")).json())
        check("tenant_usages.list_tenant_usage", version, 200,
              (await a.get("/os-simple-tenant-usage")).json())
        check("tenant_usages.get_tenant_usage", version, 200,
              (await m.get("/os-simple-tenant-usage/project-1")).json())
        resp = await a.post("/os-server-external-events", json={"events": [
            {"name": "network-vif-plugged", "server_uuid": server["id"], "tag": "port-1"}]})
        check("server_external_events.create", version, resp.status_code, resp.json())
        check("migrations.list_migrations", version, 200, (await a.get("/os-migrations")).json())
        if version < "2.53":
            resp = await a.put("/os-services/disable", json={"host": "vm", "binary":
                                                             "nova-compute"})
            assert resp.status_code in (200, 404)


async def test_metadata_tags_and_instance_actions(cloud: Cloud) -> None:
    v = "2.96"
    async with cloud.client() as c:
        s = await cloud.create(c, metadata={"a": "1"})
        sid = s["id"]
        check("servers.list_server_metadata", v, 200,
              (await c.get(f"/servers/{sid}/metadata")).json())
        resp = await c.post(f"/servers/{sid}/metadata", json={"metadata": {"b": "2"}})
        check("servers.update_server_metadata", v, resp.status_code, resp.json())
        resp = await c.put(f"/servers/{sid}/metadata/c", json={"meta": {"c": "3"}})
        check("servers.set_show_server_metadata_item", v, resp.status_code, resp.json())
        assert (await c.get(f"/servers/{sid}/metadata")).json()["metadata"] == {
            "a": "1", "b": "2", "c": "3"}
        resp = await c.delete(f"/servers/{sid}/metadata/a")
        check("servers.delete_server_metadata_item", v, resp.status_code, None)
        resp = await c.put(f"/servers/{sid}/tags", json={"tags": ["x", "y"]})
        check("servers.update_all_tags", v, resp.status_code, resp.json())
        assert (await c.put(f"/servers/{sid}/tags/z")).status_code == 201
        check("servers.list_tags", v, 200, (await c.get(f"/servers/{sid}/tags")).json())
        assert (await c.get("/servers?tags=x,z")).json()["servers"][0]["id"] == sid
        assert (await c.get("/servers?not-tags-any=z")).json()["servers"] == []
        check("servers.list_instance_actions", v, 200,
              (await c.get(f"/servers/{sid}/os-instance-actions")).json())


async def test_list_filters_sorting_and_paging(cloud: Cloud) -> None:
    async with cloud.client() as c:
        ids = [(await cloud.create(c, name=f"n{i}", wait=False))["id"] for i in range(5)]
        for sid in ids:
            await cloud.wait(c, sid, "ACTIVE")
        page = (await c.get("/servers?limit=2&sort_key=display_name&sort_dir=asc")).json()
        assert [s["name"] for s in page["servers"]] == ["n0", "n1"]
        nxt = page["servers_links"][0]["href"].split("/v2.1", 1)[1]
        page2 = (await c.get(nxt)).json()
        assert [s["name"] for s in page2["servers"]] == ["n2", "n3"]
        assert [s["name"] for s in (await c.get("/servers?name=n[34]")).json()["servers"]] \
            in (["n4", "n3"], ["n3", "n4"])
        assert (await c.get("/servers?status=SHUTOFF")).json()["servers"] == []
        assert (await c.get("/servers?sort_key=bogus")).status_code == 400
        assert (await c.get("/servers?marker=nope")).status_code == 400
        assert (await c.get("/servers?limit=-1")).status_code == 400


async def test_regression_list_with_limit_zero_is_empty_not_500(cloud: Cloud) -> None:
    async with cloud.client() as c:
        await cloud.create(c)
        resp = await c.get("/servers?limit=0")
        assert resp.status_code == 200 and resp.json()["servers"] == []


async def test_regression_rebuild_with_a_new_name_is_not_500(cloud: Cloud) -> None:
    async with cloud.client() as c:
        s = await cloud.create(c)
        resp = await cloud.action(c, s["id"], "rebuild", {"imageRef": cloud.image_id,
                                                          "name": "renamed"})
        assert resp.status_code == 202, resp.text
        assert (await cloud.wait(c, s["id"], "ACTIVE"))["name"] == "renamed"


async def test_access_ips_are_validated_and_normalised(cloud: Cloud) -> None:
    async with cloud.client() as c:
        s = await cloud.create(c, accessIPv6="0000:0000:0000:0000:0000:babe:220.12.22.2",
                               accessIPv4="1.2.3.4")
        assert s["accessIPv6"] == "::babe:dc0c:1602" and s["accessIPv4"] == "1.2.3.4"
        resp = await c.put(f"/servers/{s['id']}", json={"server": {"accessIPv4": "nope"}})
        assert resp.status_code == 400


async def test_create_backup_and_unshelve_deletes_the_shelved_image(cloud: Cloud) -> None:
    async with cloud.client() as c:
        s = await cloud.create(c)
        resp = await cloud.action(c, s["id"], "createBackup", {
            "name": "bk", "backup_type": "daily", "rotation": 1})
        assert resp.status_code == 202, resp.text
        backup = resp.json()["image_id"]
        await cloud.wait(c, s["id"], "ACTIVE")
        assert cloud.images.images[backup]["status"] == "active"
        await cloud.action(c, s["id"], "shelve")
        await cloud.wait(c, s["id"], "SHELVED_OFFLOADED")
        shelved = [i for i, v in cloud.images.images.items() if v["name"].endswith("-shelved")]
        assert len(shelved) == 1
        await cloud.action(c, s["id"], "unshelve")
        await cloud.wait(c, s["id"], "ACTIVE")
        assert shelved[0] not in cloud.images.images


async def test_create_backup_rotation_keeps_the_newest(cloud: Cloud) -> None:
    async with cloud.client() as c:
        s = await cloud.create(c)
        made = []
        for n in range(3):
            resp = await cloud.action(c, s["id"], "createBackup", {
                "name": f"bk{n}", "backup_type": "weekly", "rotation": 2})
            assert resp.status_code == 202, resp.text
            made.append(resp.json()["image_id"])
            await cloud.wait(c, s["id"], "ACTIVE")
        left = [i for i, v in cloud.images.images.items() if v.get("backup_type") == "weekly"]
        assert sorted(left) == sorted(made[1:])
