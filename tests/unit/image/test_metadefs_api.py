"""The metadata definitions catalog: /v2/metadefs, as Tempest and Horizon use it."""

from __future__ import annotations

from typing import Any

import httpx

from tests.unit.image.conftest import ImageAPI

NS = "/v2/metadefs/namespaces"


async def _create(api: ImageAPI, name: str, who: str = "admin", **body: Any) -> httpx.Response:
    return await api.http.post(NS, json={"namespace": name, **body}, headers=api.as_(who))


async def test_resource_types_are_seeded(api: ImageAPI) -> None:
    resp = await api.http.get("/v2/metadefs/resource_types", headers=api.as_("alice"))
    assert resp.status_code == 200
    names = [t["name"] for t in resp.json()["resource_types"]]
    assert "OS::Glance::Image" in names


async def test_namespace_lifecycle_with_protection(api: ImageAPI) -> None:
    resp = await _create(api, "ns1", visibility="public", protected=True, display_name="N",
                         description="d", resource_type_associations=[
                             {"name": "OS::Glance::Image", "prefix": "hw_"}])
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["namespace"] == "ns1" and body["protected"] is True
    assert body["self"] == f"{NS}/ns1" and body["owner"] == "p-admin"
    assert body["resource_type_associations"][0]["prefix"] == "hw_"
    assert (await _create(api, "ns1")).status_code == 409

    listed = (await api.http.get(NS, headers=api.as_("alice"))).json()
    assert [n["namespace"] for n in listed["namespaces"]] == ["ns1"]
    filtered = await api.http.get(NS, params={"resource_types": "OS::Nova::Flavor"},
                                  headers=api.as_("admin"))
    assert filtered.json()["namespaces"] == []

    assert (await api.http.delete(f"{NS}/ns1", headers=api.as_("admin"))).status_code == 403
    resp = await api.http.put(f"{NS}/ns1", json={"namespace": "ns1", "visibility": "private",
                                                  "protected": False},
                              headers=api.as_("admin"))
    assert resp.status_code == 200, resp.text
    assert resp.json()["visibility"] == "private" and resp.json()["protected"] is False
    # Private now: another project no longer sees it at all.
    assert (await api.http.get(f"{NS}/ns1", headers=api.as_("alice"))).status_code == 404
    assert (await api.http.delete(f"{NS}/ns1", headers=api.as_("admin"))).status_code == 204
    assert (await api.http.get(f"{NS}/ns1", headers=api.as_("admin"))).status_code == 404


async def test_only_admins_manage_the_catalog(api: ImageAPI) -> None:
    assert (await _create(api, "mine", who="alice")).status_code == 403
    assert (await _create(api, "pub", visibility="public")).status_code == 201
    resp = await api.http.post(f"{NS}/pub/objects", json={"name": "o"},
                               headers=api.as_("alice"))
    assert resp.status_code == 403
    assert (await api.http.delete(f"{NS}/pub", headers=api.as_("alice"))).status_code == 403


async def test_objects_crud_and_rename(api: ImageAPI) -> None:
    await _create(api, "ns")
    resp = await api.http.post(f"{NS}/ns/objects", json={
        "name": "obj", "description": "x", "required": ["a"],
        "properties": {"a": {"title": "A", "type": "string"}}}, headers=api.as_("admin"))
    assert resp.status_code == 201, resp.text
    assert resp.json()["self"] == f"{NS}/ns/objects/obj"
    resp = await api.http.put(f"{NS}/ns/objects/obj", json={"name": "obj2"},
                              headers=api.as_("admin"))
    assert resp.status_code == 200 and resp.json()["name"] == "obj2"
    assert (await api.http.get(f"{NS}/ns/objects/obj", headers=api.as_("admin"))
            ).status_code == 404
    listed = (await api.http.get(f"{NS}/ns/objects", headers=api.as_("admin"))).json()
    assert [o["name"] for o in listed["objects"]] == ["obj2"]
    assert (await api.http.delete(f"{NS}/ns/objects/obj2", headers=api.as_("admin"))
            ).status_code == 204


async def test_properties_keyed_by_name_and_prefixed_per_resource_type(api: ImageAPI) -> None:
    await _create(api, "ns", resource_type_associations=[{"name": "OS::Nova::Flavor",
                                                          "prefix": "hw:"}])
    prop = {"name": "cpu_policy", "title": "CPU", "type": "string", "enum": ["a", "b"]}
    resp = await api.http.post(f"{NS}/ns/properties", json=prop, headers=api.as_("admin"))
    assert resp.status_code == 201, resp.text
    assert resp.json() == prop
    listed = (await api.http.get(f"{NS}/ns/properties", headers=api.as_("admin"))).json()
    assert listed["properties"] == {"cpu_policy": {"title": "CPU", "type": "string",
                                                   "enum": ["a", "b"]}}
    shown = (await api.http.get(f"{NS}/ns", params={"resource_type": "OS::Nova::Flavor"},
                                headers=api.as_("admin"))).json()
    assert list(shown["properties"]) == ["hw:cpu_policy"]
    bad = await api.http.post(f"{NS}/ns/properties", json={"name": "x", "title": "X",
                                                           "type": "text"},
                              headers=api.as_("admin"))
    assert bad.status_code == 400


async def test_tags_replace_append_and_single(api: ImageAPI) -> None:
    await _create(api, "ns")
    resp = await api.http.post(f"{NS}/ns/tags", json={"tags": [{"name": "a"}, {"name": "b"}]},
                               headers=api.as_("admin"))
    assert resp.status_code == 201
    resp = await api.http.post(f"{NS}/ns/tags", json={"tags": [{"name": "c"}]},
                               headers={**api.as_("admin"), "X-Openstack-Append": "True"})
    assert sorted(t["name"] for t in resp.json()["tags"]) == ["a", "b", "c"]
    assert (await api.http.post(f"{NS}/ns/tags/d", headers=api.as_("admin"))).status_code == 201
    assert (await api.http.post(f"{NS}/ns/tags/d", headers=api.as_("admin"))).status_code == 409
    resp = await api.http.put(f"{NS}/ns/tags/d", json={"name": "e"}, headers=api.as_("admin"))
    assert resp.json()["name"] == "e"
    assert (await api.http.delete(f"{NS}/ns/tags", headers=api.as_("admin"))).status_code == 204
    assert (await api.http.get(f"{NS}/ns/tags", headers=api.as_("admin"))).json()["tags"] == []


async def test_resource_type_association_created_on_first_use(api: ImageAPI) -> None:
    await _create(api, "ns")
    resp = await api.http.post(f"{NS}/ns/resource_types", json={"name": "OS::Custom::Thing"},
                               headers=api.as_("admin"))
    assert resp.status_code == 201 and resp.json()["name"] == "OS::Custom::Thing"
    listed = await api.http.get(f"{NS}/ns/resource_types", headers=api.as_("admin"))
    assert [a["name"] for a in listed.json()["resource_type_associations"]] == [
        "OS::Custom::Thing"]
    assert (await api.http.delete(f"{NS}/ns/resource_types/OS::Custom::Thing",
                                  headers=api.as_("admin"))).status_code == 204
    assert (await api.http.delete(f"{NS}/ns/resource_types/OS::Custom::Thing",
                                  headers=api.as_("admin"))).status_code == 404


async def test_deleting_a_namespace_removes_its_definitions(api: ImageAPI) -> None:
    await _create(api, "ns", tags=[{"name": "t"}], objects=[{"name": "o"}],
                  properties={"p": {"title": "P", "type": "integer"}})
    assert (await api.http.delete(f"{NS}/ns", headers=api.as_("admin"))).status_code == 204
    await _create(api, "ns")
    shown = (await api.http.get(f"{NS}/ns", headers=api.as_("admin"))).json()
    assert "tags" not in shown and "objects" not in shown and "properties" not in shown


async def test_namespace_pagination(api: ImageAPI) -> None:
    for i in range(3):
        await _create(api, f"ns{i}", visibility="public")
    page = (await api.http.get(NS, params={"limit": 2, "sort_key": "namespace",
                                           "sort_dir": "asc"}, headers=api.as_("admin"))).json()
    assert [n["namespace"] for n in page["namespaces"]] == ["ns0", "ns1"]
    rest = (await api.http.get(page["next"], headers=api.as_("admin"))).json()
    assert [n["namespace"] for n in rest["namespaces"]] == ["ns2"] and "next" not in rest
