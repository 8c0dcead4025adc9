"""The HTTP edge every API shares: errors, request ids, body cap, metrics."""

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from stratus.api.app import build_app, json_body, json_object
from stratus.api.faults import FaultStyle
from stratus.api.metrics import Metrics
from stratus.errors import Conflict, NotFound


async def echo(request: Request) -> Response:
    body = json_object(await json_body(request), "thing")
    return JSONResponse({"thing": body}, status_code=201)


async def missing(request: Request) -> Response:
    raise NotFound("Thing abc could not be found.", kind="ThingNotFound")


async def conflict(request: Request) -> Response:
    raise Conflict("Cannot 'start' instance while it is in vm_state active")


async def boom(request: Request) -> Response:
    raise RuntimeError("secret internals")


ROUTES = [
    Route("/things", echo, methods=["POST"]),
    Route("/things/{id}", missing, methods=["GET"]),
    Route("/conflict", conflict, methods=["POST"]),
    Route("/boom", boom, methods=["GET"]),
]


def client_for(style: FaultStyle, metrics: Metrics | None = None) -> httpx.AsyncClient:
    app = build_app("test", ROUTES, metrics=metrics or Metrics(), style=style, max_body=4096,
                    extra_request_id_headers=("x-compute-request-id",))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                             base_url="http://test")


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(FaultStyle.NOVA) as c:
        yield c


async def test_valid_json_reaches_the_handler(client: httpx.AsyncClient) -> None:
    r = await client.post("/things", json={"thing": {"a": 1}})
    assert r.status_code == 201 and r.json() == {"thing": {"a": 1}}


async def test_every_response_carries_a_request_id(client: httpx.AsyncClient) -> None:
    r = await client.get("/things/abc")
    rid = r.headers["x-openstack-request-id"]
    assert rid.startswith("req-") and len(rid) == 40
    assert r.headers["x-compute-request-id"] == rid


async def test_malformed_json_is_a_400_fault(client: httpx.AsyncClient) -> None:
    r = await client.post("/things", content=b'{"thing": ', headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert r.json()["badRequest"]["code"] == 400
    assert "Malformed JSON" in r.json()["badRequest"]["message"]


async def test_json_of_the_wrong_shape_is_a_400(client: httpx.AsyncClient) -> None:
    r = await client.post("/things", json=[1, 2])
    assert r.status_code == 400
    r = await client.post("/things", json={"thing": "x"})
    assert r.status_code == 400 and "'thing'" in r.json()["badRequest"]["message"]


async def test_non_json_content_type_is_a_415(client: httpx.AsyncClient) -> None:
    r = await client.post("/things", content=b"<x/>", headers={"content-type": "text/xml"})
    assert r.status_code == 415


async def test_unknown_route_is_a_404_fault(client: httpx.AsyncClient) -> None:
    r = await client.get("/nowhere")
    assert r.status_code == 404 and r.json()["itemNotFound"]["code"] == 404


async def test_wrong_method_is_a_405_fault_with_allow(client: httpx.AsyncClient) -> None:
    r = await client.delete("/things")
    assert r.status_code == 405
    assert r.json()["badMethod"]["code"] == 405
    assert "POST" in r.headers["allow"]


async def test_oversized_body_is_a_413_by_length(client: httpx.AsyncClient) -> None:
    r = await client.post("/things", json={"thing": {"x": "y" * 10_000}})
    assert r.status_code == 413 and r.json()["overLimit"]["code"] == 413


async def test_oversized_chunked_body_is_a_413(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"thing": {"x": "'
        for _ in range(10):
            yield b"y" * 1000
        yield b'"}}'

    r = await client.post("/things", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413


async def test_unexpected_error_is_a_500_without_internals(client: httpx.AsyncClient) -> None:
    r = await client.get("/boom")
    assert r.status_code == 500
    msg = r.json()["computeFault"]["message"]
    assert "secret internals" not in msg
    assert r.headers["x-openstack-request-id"] in msg


@pytest.mark.parametrize(
    ("style", "expected"),
    [
        (FaultStyle.KEYSTONE, {"error": {"code": 404, "title": "Not Found",
                                         "message": "Thing abc could not be found."}}),
        (FaultStyle.NOVA, {"itemNotFound": {"code": 404,
                                            "message": "Thing abc could not be found."}}),
        (FaultStyle.NEUTRON, {"NeutronError": {"type": "ThingNotFound",
                                               "message": "Thing abc could not be found.",
                                               "detail": ""}}),
    ],
)
async def test_each_service_renders_its_own_fault_format(style: FaultStyle, expected: dict) -> None:
    async with client_for(style) as c:
        r = await c.get("/things/abc")
    assert r.status_code == 404 and r.json() == expected


async def test_conflict_is_named_conflicting_request_for_nova(client: httpx.AsyncClient) -> None:
    r = await client.post("/conflict")
    assert r.status_code == 409
    assert "vm_state active" in r.json()["conflictingRequest"]["message"]


async def test_metrics_count_requests_per_route_template() -> None:
    metrics = Metrics()
    async with client_for(FaultStyle.NOVA, metrics) as c:
        await c.get("/things/a")
        await c.get("/things/b")
        text = (await c.get("/metrics")).text
    assert metrics.value("stratus_http_requests_total", {
        "service": "test", "method": "GET", "route": "/things/{id}", "status": "404"}) == 2
    assert 'route="/things/{id}"' in text
    assert "stratus_http_request_duration_seconds_bucket" in text


async def test_health_endpoint_answers(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok"
