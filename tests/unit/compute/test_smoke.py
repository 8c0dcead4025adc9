from __future__ import annotations

from tests.unit.compute.conftest import Cloud
from tests.unit.compute.schema_check import check


async def test_create_show_delete(cloud: Cloud) -> None:
    async with cloud.client() as c:
        server = await cloud.create(c)
        check("servers.get_server", "2.96", 200, {"server": server})
        resp = await c.delete(f"/servers/{server['id']}")
        assert resp.status_code == 204
        await cloud.wait(c, server["id"], "DELETED")
