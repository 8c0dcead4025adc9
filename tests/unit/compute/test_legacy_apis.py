"""Deprecated Nova APIs clients still call: the images proxy, os-hosts,
extensions, the usage audit log, diagnostics, resetState; bodies match
Tempest's schemas."""

from __future__ import annotations

from tests.unit.compute.conftest import Cloud
from tests.unit.compute.schema_check import check


async def test_images_proxy_lists_shows_and_edits_metadata(cloud: Cloud) -> None:
    async with cloud.client("member-p1", "2.35") as c:
        s = await cloud.create(c)
        resp = await cloud.action(c, s["id"], "createImage", {"name": "snap",
                                                             "metadata": {"k": "v"}})
        snap = resp.headers["Location"].rsplit("/", 1)[-1]
        await cloud.wait(c, s["id"], "ACTIVE")
        check("images.list_images", "2.35", 200, (await c.get("/images")).json())
        body = (await c.get(f"/images/detail?server={s['id']}")).json()
        check("images.list_images_details", "2.35", 200, body)
        assert [i["id"] for i in body["images"]] == [snap]
        assert body["images"][0]["server"]["id"] == s["id"]
        page = (await c.get("/images?limit=1")).json()
        assert len(page["images"]) == 1 and page["images_links"][0]["rel"] == "next"
        check("images.get_image", "2.35", 200, (await c.get(f"/images/{snap}")).json())
        resp = await c.post(f"/images/{snap}/metadata", json={"metadata": {"a": "1"}})
        check("images.image_metadata", "2.35", 200, resp.json())
        assert resp.json()["metadata"]["a"] == "1" and resp.json()["metadata"]["k"] == "v"
        resp = await c.put(f"/images/{snap}/metadata/a", json={"meta": {"a": "2"}})
        check("images.image_meta_item", "2.35", 200, resp.json())
        assert (await c.get(f"/images/{snap}/metadata/a")).json() == {"meta": {"a": "2"}}
        assert (await c.delete(f"/images/{snap}/metadata/a")).status_code == 204
        assert (await c.get(f"/images/{snap}/metadata/a")).status_code == 404
        assert (await c.delete(f"/images/{snap}")).status_code == 204
        assert (await c.get(f"/images/{snap}")).status_code == 404
        assert (await c.get("/images/not-a-uuid")).status_code == 404
    async with cloud.client("member-p1", "2.36") as c:
        assert (await c.get("/images")).status_code == 404


async def test_hosts_extensions_audit_log_and_diagnostics(cloud: Cloud) -> None:
    host = next(iter(cloud.hosts))
    async with cloud.client("admin-p1", "2.1") as c:
        hosts = (await c.get("/os-hosts")).json()
        check("hosts.list_hosts", "2.1", 200, hosts)
        assert {"host_name": host, "service": "compute", "zone": "nova"} in hosts["hosts"]
        assert (await c.get("/os-hosts?zone=nowhere")).json()["hosts"] == []
        check("hosts.get_host_detail", "2.1", 200, (await c.get(f"/os-hosts/{host}")).json())
        assert (await c.get("/os-hosts/nope")).status_code == 404
        assert (await c.put(f"/os-hosts/{host}", json={"status": "bogus"})).status_code == 400
        assert (await c.put(f"/os-hosts/{host}", json={})).status_code == 400
        check("extensions.list_extensions", "2.1", 200, (await c.get("/extensions")).json())
        assert (await c.get("/extensions/os-consoles")).status_code == 200
        check("instance_usage_audit_logs.list_instance_usage_audit_log", "2.1", 200,
              (await c.get("/os-instance_usage_audit_log")).json())
        check("instance_usage_audit_logs.get_instance_usage_audit_log", "2.1", 200,
              (await c.get("/os-instance_usage_audit_log/2026-01-02 03:04:05")).json())
        s = await cloud.create(c)
        resp = await cloud.action(c, s["id"], "os-resetState", {"state": "error"})
        assert resp.status_code == 202
        assert (await c.get(f"/servers/{s['id']}")).json()["server"]["status"] == "ERROR"
        await cloud.action(c, s["id"], "os-resetState", {"state": "active"})
    async with cloud.client("admin-p1", "2.48") as c:
        check("servers.show_server_diagnostics", "2.48", 200,
              (await c.get(f"/servers/{s['id']}/diagnostics")).json())
    async with cloud.client("member-p1", "2.1") as c:
        assert (await c.get("/os-hosts")).status_code == 403
        assert (await c.get(f"/servers/{s['id']}/diagnostics")).status_code in (403, 404)


async def test_default_quota_class_changes_every_projects_defaults(cloud: Cloud) -> None:
    async with cloud.client("admin-p1", "2.1") as c:
        body = (await c.get("/os-quota-class-sets/default")).json()
        check("quota_classes.get_quota_class_set", "2.1", 200, body)
        resp = await c.put("/os-quota-class-sets/default",
                           json={"quota_class_set": {"instances": 77, "fixed_ips": 99}})
        check("quota_classes.update_quota_class_set", "2.1", resp.status_code, resp.json())
        assert resp.json()["quota_class_set"]["instances"] == 77
        assert resp.json()["quota_class_set"]["fixed_ips"] == 99
        quota = (await c.get("/os-quota-sets/project-2")).json()["quota_set"]
        assert quota["instances"] == 77
        defaults = (await c.get("/os-quota-sets/project-2/defaults")).json()["quota_set"]
        assert defaults["instances"] == 77
    async with cloud.client("member-p1", "2.1") as c:
        assert (await c.put("/os-quota-class-sets/default",
                            json={"quota_class_set": {"instances": 1}})).status_code == 403
